"""dlmath._render: the chapters' tables, against the formats' own rules (Markdown rows,
HTML parsed by the standard library, aligned text) and SymPy's LaTeX."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import sympy as sp

from dlmath._render import format_table, size_latex

H = sp.Symbol("H", integer=True, positive=True)
ROWS = [["fc", "$2{,}432$"], ["out", "x < 1"]]


class _Cells(HTMLParser):
    """The text of every cell of an HTML table, row by row."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_markdown_html_and_text_hold_the_same_cells():
    md = format_table(["layer", "parameters"], ROWS, align="lr").splitlines()
    assert [[c.strip() for c in line.strip("|").split("|")] for line in md[2:]] == ROWS
    assert md[1] == "|:---|---:|"
    parser = _Cells()
    parser.feed(format_table(["layer", "parameters"], ROWS, fmt="html"))
    assert parser.rows == [["layer", "parameters"], ["fc", r"\(2{,}432\)"], ["out", "x < 1"]]
    text = format_table(["layer", "parameters"], ROWS, fmt="text", align="lr").splitlines()
    assert [line.split(None, 1) for line in text[2:]] == [[a, b] for a, b in ROWS]
    assert len({len(line) for line in text}) == 1            # right-aligned: one width


def test_format_table_errors():
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        format_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="fmt must be one of"):
        format_table(["a"], [["x"]], fmt="latex")
    with pytest.raises(ValueError, match="align must have"):
        format_table(["a"], [["x"]], align="lr")


def test_size_latex_is_sympy_latex_without_bars():
    assert size_latex(sp.Abs(H - 3) + 12345).count("|") == 0
    assert "12{,}345" in size_latex(sp.Abs(H - 3) + 12345)
    assert size_latex(H**2) == sp.latex(H**2)
    assert size_latex(1234567) == "1{,}234{,}567"
    with pytest.raises(TypeError, match="int or a sympy expression"):
        size_latex(1.5)
