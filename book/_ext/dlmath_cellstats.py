"""How much of its work each chapter shows: code cells visible, expandable and hidden.

The book's rule (issue "chapters that show their work"): in every chapter with code, at least
60 % of the code cells reach the reader, shown or folded behind a click; at least three
visible cells check something; the formulas carry at least two ``{doctest}`` blocks (run by
``make test``); and a visible cell is short (at most 10 lines at the median), the size
a reader would type.  ``hidden`` is ``remove-cell`` or ``remove-input`` (the code never
reaches the page), ``expandable`` is ``hide-input`` or ``hide-cell``, everything else is
``visible``.  A visible cell *checks* when it asserts, compares (``allclose``, ``testing``)
or calls the checker or the claims registry.  The exercises at the end of a chapter (from its
``## Exercises`` heading on) are the reader's cells, not the chapter's work: they are left out
of the counts.

As a Sphinx extension it provides the directive ``{chapter-cell-stats}`` (the table of the
execution appendix, re-read whenever a chapter changes) and warns, which fails the strict
build, for every chapter in the build that misses a target.  On the command line::

    python book/_ext/dlmath_cellstats.py          # table, exit 1 when a chapter misses a target
"""

from __future__ import annotations

import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1]
MIN_SHOWN = 0.6          # share of code cells visible or expandable
MAX_MEDIAN_LINES = 10    # median length of the visible cells
MIN_CHECKS = 3           # visible cells that check something
MIN_DOCTESTS = 2         # {doctest} blocks (the formulas' examples, run by `make test`)

_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_HIDDEN = {"remove-cell", "remove-input"}
_FOLDED = {"hide-input", "hide-cell"}
_CHECK = re.compile(r"\bassert\b|allclose|torch\.testing|\bcheck\(|\bgrade\(|verdict\(|"
                    r"claim_check\(|claims_table\(|compare_\w+\(|isclose|array_equal")


@dataclass(frozen=True)
class Cell:
    tags: frozenset[str]
    lines: int            # non-blank source lines, without the cell's metadata

    @property
    def kind(self) -> str:
        if self.tags & _HIDDEN:
            return "hidden"
        if self.tags & _FOLDED:
            return "expandable"
        return "visible"


@dataclass(frozen=True)
class Stats:
    name: str
    cells: int
    visible: int
    expandable: int
    hidden: int
    checks: int
    median_lines: float
    doctests: int = 0

    @property
    def shown_share(self) -> float:
        return (self.visible + self.expandable) / self.cells if self.cells else 1.0

    def misses(self) -> list[str]:
        """The targets this chapter misses, in words (empty when it meets them all)."""
        out = []
        if self.shown_share < MIN_SHOWN:
            out.append(f"{self.visible + self.expandable} of {self.cells} cells shown "
                       f"({self.shown_share:.0%} < {MIN_SHOWN:.0%})")
        if self.checks < MIN_CHECKS:
            out.append(f"{self.checks} visible cells check something (< {MIN_CHECKS})")
        if self.doctests < MIN_DOCTESTS:
            out.append(f"{self.doctests} doctest blocks (< {MIN_DOCTESTS})")
        if self.median_lines > MAX_MEDIAN_LINES:
            out.append(f"visible cells {self.median_lines:g} lines at the median "
                       f"(> {MAX_MEDIAN_LINES})")
        return out


def _parse(source: str) -> tuple[list[Cell], list[str]]:
    cells, bodies = [], []
    for body in _CELL.findall(source):
        lines = body.splitlines()
        tags: set[str] = set()
        start = 0
        if lines and lines[0].strip() == "---":          # YAML options block
            end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
            meta = "\n".join(lines[1:end])
            start = end + 1
        else:                                              # ":key: value" option lines
            while start < len(lines) and re.match(r"^:\w[\w-]*:", lines[start]):
                start += 1
            meta = "\n".join(lines[:start])
        m = re.search(r"tags:\s*\[([^\]]*)\]", meta)
        if m:
            tags = {t.strip().strip("'\"") for t in m.group(1).split(",") if t.strip()}
        code = [ln for ln in lines[start:] if ln.strip()]
        cells.append(Cell(frozenset(tags), len(code)))
        bodies.append("\n".join(lines[start:]))
    return cells, bodies


def chapter_stats(path: Path) -> Stats:
    """The counts of one chapter's source file, up to its ``## Exercises`` heading."""
    text = Path(path).read_text(encoding="utf-8")
    doctests = len(re.findall(r"^```\{doctest\}", text, re.M))
    text = re.split(r"^## Exercises\s*$", text, maxsplit=1, flags=re.M)[0]
    cells, bodies = _parse(text)
    kinds = [c.kind for c in cells]
    visible = [(c, b) for c, b in zip(cells, bodies) if c.kind == "visible"]
    lengths = [c.lines for c, _ in visible]
    return Stats(
        name=Path(path).stem,
        cells=len(cells),
        visible=kinds.count("visible"),
        expandable=kinds.count("expandable"),
        hidden=kinds.count("hidden"),
        checks=sum(1 for _, b in visible if _CHECK.search(b)),
        median_lines=float(statistics.median(lengths)) if lengths else 0.0,
        doctests=doctests,
    )


def book_stats(book: Path = BOOK) -> list[Stats]:
    """The counts of every numbered chapter (``book/chapters/[0-9][0-9]_*.md`` with code)."""
    out = []
    for path in sorted((Path(book) / "chapters").glob("[0-9][0-9]_*.md")):
        s = chapter_stats(path)
        if s.cells >= 3:   # the introduction and the notation page carry no worked code
            out.append(s)
    return out


def markdown_table(stats: list[Stats]) -> str:
    """The counts as a Markdown table."""
    rows = ["| chapter | code cells | visible | folded | hidden | shown | visible checks "
            "| median lines | doctest blocks |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in stats:
        rows.append(f"| {s.name} | {s.cells} | {s.visible} | {s.expandable} | {s.hidden} | "
                    f"{s.shown_share:.0%} | {s.checks} | {s.median_lines:g} | {s.doctests} |")
    return "\n".join(rows)


def _in_build(env) -> list[Stats]:
    return [s for s in book_stats(Path(env.srcdir)) if f"chapters/{s.name}" in env.found_docs]


def setup(app):
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxDirective

    logger = logging.getLogger(__name__)

    class ChapterCellStats(SphinxDirective):
        """The table of :func:`book_stats` for the chapters in this build."""

        def run(self):
            stats = _in_build(self.env)
            for s in stats:
                self.env.note_dependency(str(Path(self.env.srcdir) / "chapters" / f"{s.name}.md"))
            return self.parse_text_to_nodes(markdown_table(stats))

    def check(app, env):
        for s in _in_build(env):
            for miss in s.misses():
                logger.warning(f"chapter {s.name} does not show its work: {miss} "
                               f"(book/_ext/dlmath_cellstats.py)",
                               location=f"chapters/{s.name}", type="dlmath", subtype="cells")

    app.add_directive("chapter-cell-stats", ChapterCellStats)
    app.connect("env-check-consistency", check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main() -> int:
    bad = 0
    print(f"{'chapter':28s} cells visible fold hidden shown checks median doctests")
    for s in book_stats():
        miss = s.misses()
        bad += bool(miss)
        print(f"{s.name:28s} {s.cells:5d} {s.visible:7d} {s.expandable:4d} {s.hidden:6d} "
              f"{s.shown_share:5.0%} {s.checks:6d} {s.median_lines:6g} {s.doctests:8d}"
              + ("   MISSES: " + "; ".join(miss) if miss else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
