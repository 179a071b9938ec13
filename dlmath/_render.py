"""Tables for the chapters: cells as Markdown (for ``{glue:md}``), HTML or plain text, and sizes
as LaTeX.

Private: the chapters and the trace of :mod:`dlmath.params` use it.  ``size_latex`` writes an
int or a SymPy size the way the book prints it (thousands separated, floors over one
fraction); ``format_table`` lays out rows of already formatted cells.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import sympy as sp

from dlmath._validate import check_choice

__all__ = ["size_latex", "format_table"]

FORMATS = ("markdown", "html", "text")


def size_latex(x: Any) -> str:
    r"""LaTeX for a size or a count: thousands separated, floors over one fraction.

    Explanation
    -----------
    Integers get ``{,}`` separators (``5{,}340{,}742``); each floor's argument is written
    over a common denominator (``\lfloor (H - M + 1)/2 \rfloor`` rather than
    ``\lfloor H/2 - M/2 + 1/2 \rfloor``); ``|`` is avoided because it splits Markdown table
    cells.

    Parameters
    ----------
    x : int or sympy.Expr

    Returns
    -------
    str

    Raises
    ------
    TypeError
        If ``x`` is neither an int nor a SymPy expression.

    Examples
    --------
    >>> size_latex(5340742)
    '5{,}340{,}742'
    >>> import sympy as sp
    >>> H, M = sp.symbols("H M", integer=True, positive=True)
    >>> size_latex(1024 * sp.floor(H / 2 - M / 2 + sp.Rational(1, 2)))
    '1{,}024 \\left\\lfloor{\\frac{H - M + 1}{2}}\\right\\rfloor'

    See Also
    --------
    format_table : the tables whose cells it fills.
    """
    if isinstance(x, bool) or not isinstance(x, (int, sp.Basic)):
        raise TypeError(f"x must be an int or a sympy expression, got {type(x).__name__}")
    if isinstance(x, int) or x.is_Integer:
        return f"{int(x):,}".replace(",", "{,}")
    x = x.replace(lambda e: isinstance(e, sp.floor),                # floor((H - M + 1)/2)
                  lambda e: sp.floor(sp.together(e.args[0]), evaluate=False))
    text = sp.latex(x).replace("|", r"\vert ")
    return re.sub(r"(?<![\\.\d])\d{4,}(?![.\d])",
                  lambda m: f"{int(m.group()):,}".replace(",", "{,}"), text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], fmt: str = "markdown",
                 align: str | None = None) -> str:
    r"""A table as Markdown (for ``{glue:md}``), HTML or plain text.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences of str
        The cells, already formatted; each row as long as ``header``.  Markdown and HTML
        cells may hold ``$...$`` LaTeX.
    fmt : {"markdown", "html", "text"}
        In HTML, ``$...$`` becomes ``\(...\)`` and the table gets the class
        ``mathjax_process`` so MathJax renders it; text is escaped.  ``"text"`` pads the
        columns with spaces for a terminal.
    align : str, optional
        One letter per column, ``l``, ``c`` or ``r`` (default: all left).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a row's length differs from the header's, ``fmt`` or ``align`` is unknown.

    Examples
    --------
    >>> print(format_table(["layer", "parameters"], [["fc", "$2{,}432$"]], align="lr"))
    | layer | parameters |
    |:---|---:|
    | fc | $2{,}432$ |
    >>> format_table(["a"], [["$x<1$"]], fmt="html")
    '<table class="mathjax_process"><thead><tr><th style="text-align:left">a</th></tr></thead><tbody><tr><td style="text-align:left">\\(x&lt;1\\)</td></tr></tbody></table>'
    >>> print(format_table(["layer", "parameters"], [["fc", "2,432"], ["out", "10"]], "text",
    ...                    align="lr"))
    layer  parameters
    -----  ----------
    fc          2,432
    out            10

    See Also
    --------
    size_latex : LaTeX for the sizes in the cells.
    """
    check_choice("fmt", fmt, FORMATS)
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set("lcr"):
        raise ValueError(f"align must have one of l/c/r per column ({len(header)}), got {align!r}")
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(f"row {i} has {len(r)} cells, the header {len(header)}")
    if fmt == "markdown":
        rule = {"l": ":---", "c": ":---:", "r": "---:"}
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "text":
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        just = {"l": str.ljust, "c": str.center, "r": str.rjust}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(just[a](c, n) for c, a, n in zip(cells, align, widths)).rstrip()

        return "\n".join([line(header), line(["-" * n for n in widths]), *map(line, rows)])

    side = {"l": "left", "c": "center", "r": "right"}

    def cell(text: str) -> str:
        parts = re.split(r"(\$[^$]+\$)", text)
        return "".join(rf"\({html.escape(p[1:-1], quote=False)}\)" if p.startswith("$")
                       else html.escape(p, quote=False) for p in parts)

    head = "".join(f'<th style="text-align:{side[a]}">{cell(h)}</th>'
                   for h, a in zip(header, align))
    body = "".join("<tr>" + "".join(f'<td style="text-align:{side[a]}">{cell(c)}</td>'
                                    for c, a in zip(r, align)) + "</tr>" for r in rows)
    return (f'<table class="mathjax_process"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")
