"""Every chapter can be downloaded as an executed notebook that runs in a fresh kernel.

The download menu of each chapter page links the executed ``.ipynb`` (``book/_ext/dlmath_downloads.py``);
the file must exist, hold every cell of the chapter's source (the hidden ones included) with
outputs, and name the project's kernel.  Two chapters are then run top to bottom, as a reader
would after downloading them, in a fresh ``dlmath`` kernel in an empty folder with an empty
results store.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[2] / "book"
CHAPTERS = sorted(p.stem for p in (BOOK / "chapters").glob("[0-9][0-9]_*.md")
                  if "kernelspec:" in p.read_text(encoding="utf-8").split("\n---\n")[0])
RUN = ("03_counting_parameters", "05_softmax")   # no training: each runs in well under a minute


def _downloaded(site_dir: Path, chapter: str) -> Path:
    html = (site_dir / "chapters" / f"{chapter}.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+\.ipynb)"', html)
    assert links, f"{chapter}: the page offers no .ipynb download"
    path = (site_dir / "chapters" / links[0]).resolve()
    assert path.is_file(), f"{chapter}: the download link {links[0]} points at no file"
    return path


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_offers_its_executed_notebook(site_dir, chapter):
    nb = nbformat.read(_downloaded(site_dir, chapter), as_version=4)
    source = jupytext.read(BOOK / "chapters" / f"{chapter}.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    expected = [c for c in source.cells if c.cell_type == "code"]
    assert [c.source.strip() for c in code] == [c.source.strip() for c in expected], \
        f"{chapter}: the download does not hold the chapter's code cells"
    assert nb.metadata["kernelspec"]["name"] == "dlmath"
    assert all(c.get("execution_count") for c in code), f"{chapter}: a cell was not executed"


@pytest.mark.parametrize("chapter", RUN)
def test_downloaded_notebook_runs_in_a_fresh_kernel(site_dir, chapter, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    nb = nbformat.read(_downloaded(site_dir, chapter), as_version=4)
    for cell in nb.cells:               # start from a notebook without outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("DLMATH_CACHE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("MPLBACKEND", "agg")
    NotebookClient(nb, kernel_name="dlmath", timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{chapter}: {errors[0].ename}: {errors[0].evalue}"
    assert all(c.execution_count for c in code)
