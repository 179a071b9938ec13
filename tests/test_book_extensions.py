"""book/_ext: the cell counts, the proof list, the chapter cards and the notebook downloads."""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import dlmath_cards as cards  # noqa: E402
import dlmath_cellstats as cs  # noqa: E402
import dlmath_downloads as dl  # noqa: E402
import dlmath_proofs as proofs  # noqa: E402

FENCE = "`" * 3


def _cell(code: str, tags: str | None = None, yaml: bool = False) -> str:
    if tags and yaml:
        head = f"---\ntags: [{tags}]\n---\n"
    elif tags:
        head = f":tags: [{tags}]\n"
    else:
        head = ""
    return f"{FENCE}{{code-cell}} ipython3\n{head}{code}\n{FENCE}\n"


def _chapter(tmp_path, *cells: str, exercises: str = "") -> Path:
    text = "# Title\n\nProse.\n\n" + "\n".join(cells)
    if exercises:
        text += "\n## Exercises\n\n" + exercises
    path = tmp_path / "01_example.md"
    path.write_text(text)
    return path


def test_cells_are_counted_by_what_reaches_the_reader(tmp_path):
    path = _chapter(
        tmp_path,
        _cell("import torch", "remove-cell"),
        _cell("x = 1\nassert x == 1\nx", None),
        _cell("fig = draw()\nfig", "hide-input"),
        _cell("y = 2\n\n\ny", "remove-output"),
        _cell("glue('a', 1)", "remove-input", yaml=True),
        exercises=_cell("check('ex', ...)") * 5,      # the reader's cells: not counted
    )
    s = cs.chapter_stats(path)
    assert (s.cells, s.visible, s.expandable, s.hidden) == (5, 2, 1, 2)
    assert s.checks == 1                    # the assert; the exercises' check( is excluded
    assert s.median_lines == 2.5            # 3 and 2 non-blank lines
    assert s.shown_share == pytest.approx(3 / 5)
    assert s.doctests == 0
    assert s.misses() == [f"1 visible cells check something (< {cs.MIN_CHECKS})",
                          f"0 doctest blocks (< {cs.MIN_DOCTESTS})"]


def test_a_chapter_that_hides_its_work_misses_the_targets(tmp_path):
    long_cell = "\n".join(f"a{i} = {i}" for i in range(15)) + "\nassert a0 == 0"
    path = _chapter(tmp_path, *[_cell("x = 1", "remove-cell")] * 5, long_cell and _cell(long_cell))
    miss = cs.chapter_stats(path).misses()
    assert any("1 of 6 cells shown" in m for m in miss)
    assert any("16 lines at the median" in m for m in miss)


def test_the_book_table_has_a_row_per_numbered_chapter():
    stats = cs.book_stats()
    names = {s.name for s in stats}
    chapters = {p.stem for p in (ROOT / "book" / "chapters").glob("[0-9][0-9]_*.md")}
    assert names <= chapters and "01_conv_arithmetic" in names
    table = cs.markdown_table(stats)
    assert table.count("\n") == len(stats) + 1


def test_proof_list_reads_titles_and_labels():
    src = (f"{FENCE}{{prf:theorem}} Output size\n:label: thm-a\n\nText.\n{FENCE}\n"
           f"{FENCE}{{prf:proof}}\nNo label.\n{FENCE}\n"
           f":::{{prf:definition}}\n:label: def-b\n:::\n"
           f"{FENCE}{{prf:theorem}} Unlabelled\n\nText\n{FENCE}\n")
    assert proofs.statements(src) == [("theorem", "Output size", "thm-a"),
                                      ("definition", "def-b", "def-b")]


def test_every_labelled_statement_of_the_book_is_listed():
    text, files = proofs.proof_list_markdown(ROOT / "book")
    for path in files:
        for _kind, _title, label in proofs.statements(path.read_text()):
            assert f"<{label}>`" in text


def test_chapter_cards_name_existing_chapters_and_glued_figures():
    chapters = {p.stem: p.read_text() for p in (ROOT / "book" / "chapters").glob("[0-9][0-9]_*.md")}
    numbered = {name for name in chapters if not name.startswith("00_")}
    assert set(cards.CARDS) == numbered, "every chapter gets a card, and only chapters"
    for name, (key, question) in cards.CARDS.items():
        assert f"{{glue:figure}} {key}" in chapters[name], f"{name} shows no figure glued as {key}"
        assert question.endswith("?")
    md = cards.card_markdown([("chapters/01_x", "One", "Why?", True)])
    assert ":link: chapters/01_x" in md and "_static/cards/01_x.svg" in md and "Why?" in md


def test_download_merges_outputs_from_the_execution_cache(tmp_path):
    from jupyter_cache import get_cache

    source = tmp_path / "page.md"
    import nbformat
    from jupyter_cache.base import CacheBundleIn

    header = (ROOT / "book" / "chapters" / "05_softmax.md").read_text().split("\n---\n")[0]
    source.write_text(header + "\n---\n\n# Page\n\n" + _cell("1 + 1", "remove-cell"))
    assert dl.executed(source, str(tmp_path / "cache")) is None       # no cache yet
    nb = jupytext.read(source)
    (cell,) = [c for c in nb.cells if c.cell_type == "code"]
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"},
                                           execution_count=1)]
    cell.execution_count = 1
    get_cache(str(tmp_path / "cache")).cache_notebook_bundle(CacheBundleIn(nb, uri="x"),
                                                             check_validity=False)
    got = dl.executed(source, str(tmp_path / "cache"))
    code = [c for c in got.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["data"]["text/plain"] == "2"          # the hidden cell, with output
    assert got.metadata["kernelspec"]["name"] == "dlmath"
    source.write_text(source.read_text().replace("1 + 1", "1 + 2"))   # changed code: no match
    assert dl.executed(source, str(tmp_path / "cache")) is None
