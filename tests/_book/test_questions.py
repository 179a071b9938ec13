"""The map of the questions: complete, consistently numbered, and every link points somewhere."""

import re
from pathlib import Path

import pytest

from dlmath._book import questions

ROOT = Path(__file__).resolve().parents[2]
# the reports sit beside the repository on the authors' machines (in it, or next to it)
SOURCES = next((d for d in (ROOT / "shared" / "sources", ROOT.parent / "shared" / "sources")
                if d.is_dir()), ROOT / "shared" / "sources")
PAGE = ROOT / "book" / "appendix" / "questions.md"
ALL = questions.all_questions()
IDS = [f"{q.report} {q.number}" for q in ALL]


def _successor(prev, nxt):
    """Whether question number ``nxt`` comes right after ``prev`` (keys of number_key).

    At some level k the two agree before k, ``nxt`` goes one past ``prev`` there (past the end
    of a range such as a-b), and every part of ``nxt`` after k is a first one (1, a or i).
    """
    for k in range(min(len(prev), len(nxt))):
        if nxt[:k] != prev[:k]:
            break
        if nxt[k][0] == prev[k][1] + 1 and all(lo == 1 for lo, _ in nxt[k + 1:]):
            return True
    return False


def test_every_report_has_questions_and_numbers_are_unique():
    groups = questions.by_report()
    assert set(groups) == set(questions.REPORTS)
    for report, qs in groups.items():
        assert qs, f"report {report} has no questions"
        numbers = [q.number for q in qs]
        assert len(numbers) == len(set(numbers)), f"report {report}: duplicate numbers"


@pytest.mark.parametrize("report", list(questions.REPORTS))
def test_numbering_has_no_gaps(report):
    """In report order each number follows the one before, except where the report skips one."""
    qs = questions.by_report()[report]
    skipped = {n for (r, n) in questions.SKIPPED if r == report}
    seen = {}
    for q in qs:
        family, key = questions.number_key(q.number)
        if family in seen:
            prev_number, prev = seen[family]
            ok = _successor(prev, key)
            if not ok:   # a number the report skips sits in between
                ok = any(_successor(prev, questions.number_key(s)[1])
                         and _successor(questions.number_key(s)[1], key) for s in skipped)
            assert ok, f"report {report}: {q.number} does not follow {prev_number}"
        else:
            # a report may start at a later question (003 has no question 1), but each part
            # below the first level starts at 1, a or i
            assert all(lo == 1 for lo, _ in key[1:]), f"report {report}: {q.number} is not a first part"
        seen[family] = (q.number, key)


@pytest.mark.skipif(not SOURCES.is_dir(), reason="the reports sit beside the repository")
def test_report_004_numbers_match_the_report():
    """Report 004 numbers its questions "Question N"; read them off the report itself."""
    text = next(SOURCES.glob("004_*.txt")).read_text(encoding="utf-8")
    found = [int(n) for n in re.findall(r"Question (\d+)\s*:", text)]
    split = next(i for i in range(1, len(found)) if found[i] < found[i - 1])   # the second part I
    mlp, conv = found[:split], found[split:]
    listed = questions.by_report()["004"]
    assert [questions.number_key(q.number)[1][0][0] for q in listed if q.number.startswith("MLP")] == mlp
    assert [questions.number_key(q.number)[1][0][0] for q in listed if not q.number.startswith("MLP")] == conv
    parts = {"I": range(1, 8), "II": range(8, 19), "III": range(19, 35)}   # the report's parts
    for q in listed:
        if not q.number.startswith("MLP"):
            part, _, n = q.number.partition("-Q")
            assert int(n) in parts[part], f"{q.number}: question {n} is not in part {part}"


@pytest.mark.skipif(not SOURCES.is_dir(), reason="the reports sit beside the repository")
def test_sources_exist():
    stems = {p.stem for p in SOURCES.glob("*.txt")}
    assert set(questions.REPORTS.values()) <= stems


@pytest.mark.parametrize("q", ALL, ids=IDS)
def test_entry_is_well_formed(q):
    assert q.status in questions.STATUSES
    if q.status != "answered":
        assert q.reason.strip(), f"{q.number}: {q.status} needs a reason"
    if q.status != "not covered":
        assert q.targets, f"{q.number}: {q.status} needs a target"
    assert q.question.strip().endswith(("?", ".")), f"{q.number}: the question is one sentence"


@pytest.mark.parametrize("q", ALL, ids=IDS)
def test_every_target_exists_in_the_book(q):
    """Each label is a '(label)=' of the book's sources; each anchor a heading MyST slugs so."""
    found = questions.targets_in_book()
    for target in q.targets:
        assert target in found, (f"{q.report} {q.number}: target {target!r} is not a label or "
                                 f"heading anchor of book/")
        doc = found[target][0]
        assert (ROOT / "book" / f"{doc}.md").is_file()
    if q.targets:
        assert questions.where_cell(q).count("{ref}`") >= 1


def test_targets_in_book_is_independent_of_the_registry():
    """The lookup finds labels and anchors by reading the sources: spot checks by grep."""
    questions.targets_in_book.cache_clear()   # read the sources as they are now
    found = questions.targets_in_book()
    for path in sorted((ROOT / "book" / "chapters").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for label in re.findall(r"^\(([^()\s]+)\)=\s*$", text, flags=re.MULTILINE):
            assert label in found and found[label][0] == f"chapters/{path.stem}"
        # a plain heading: its GitHub slug is the lower-cased title with spaces as hyphens
        for title in re.findall(r"^## ([A-Za-z ]+)$", text, flags=re.MULTILINE):
            slug = title.lower().replace(" ", "-")
            assert any(t.startswith(f"chapters/{path.name}#{slug}") for t in found), title


def test_missing_target_is_reported_clearly():
    with pytest.raises(KeyError, match="neither a label"):
        questions.resolve("sec-does-not-exist")


def test_bad_entries_are_rejected():
    stem = questions.REPORTS["000"]
    with pytest.raises(ValueError, match="status must be one of"):
        questions.Question(stem, "Q1.2", "What?", "maybe", ("ch-softmax",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a reason"):
        questions.Question(stem, "Q1.2", "What?", "partly", ("ch-softmax",))
    with pytest.raises(ValueError, match="needs at least one target"):
        questions.Question(stem, "Q1.2", "What?", "answered")
    with pytest.raises(ValueError, match="is not of the form"):
        questions.Question(stem, "question 2", "What?", "answered", ("ch-softmax",))


def test_counts_add_up():
    c = questions.counts()
    assert sum(c.values()) == len(ALL)
    for report, qs in questions.by_report().items():
        for status in questions.STATUSES:
            assert c[report, status] == sum(q.status == status for q in qs)


def test_page_counts_come_from_the_registry():
    """The page glues its counts and tables from the registry and types no count by hand."""
    text = PAGE.read_text(encoding="utf-8")
    assert "questions.counts()" in text and "questions.markdown_table(" in text
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    prose = re.sub(r"\{glue:text\}`[^`]*`|```\{glue:md\}[^`]*```", "", summary)
    assert not re.search(r"\d", prose), "the summary states a number that is not glued"
    for key in ("qmap-n", "qmap-n-answered", "qmap-n-partly", "qmap-n-not-covered"):
        assert f"{{glue:text}}`{key}`" in summary
    for report in questions.REPORTS:
        assert f"qmap-table-{report}" in text


def test_tables_render_every_question():
    for report, qs in questions.by_report().items():
        table = questions.markdown_table(report)
        rows = table.splitlines()[2:]
        assert [r.split(" | ")[0].lstrip("| ") for r in rows] == [q.number for q in qs]
