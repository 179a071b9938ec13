"""Check an answer: a number, a formula, a matrix or a network, against the right one.

Scope: one call, :func:`check`, judges a reader's answer to an exercise of the book and
returns a :class:`Verdict` that says ``right``, or where the answer goes wrong ("at n=5,
k=3, s=2, p=0 your formula gives 2.5, the answer is 2"); :func:`grade` judges a whole class's
answers and returns a table.  The comparisons themselves are public, for answers to
questions of your own, and the book's errata registry reaches its verdicts on formulas and
counts through them too:

* :func:`compare_number`: a count, a size, a probability (with a stated tolerance);
* :func:`compare_formula`: a formula, as text (read by :func:`parse_formula`, which accepts
  only the declared symbols and the functions ``floor, ceiling, sqrt, exp, log, Max, Min``)
  or a SymPy expression.  Where SymPy proves the difference to the reference formula zero
  the answer is right; otherwise it is evaluated, exactly, on every case of a grid of small
  integers (checked against an oracle: PyTorch, SymPy or brute force), so that a floor for
  a ceiling, an off-by-one or a missing bias shows up, and the first case that differs is
  named;
* :func:`compare_tensor`: a vector, matrix or tensor; the shape first, then the entries
  within a tolerance, naming the first entry that differs (and saying so when the answer
  is the transpose of the right one, or its negative);
* :func:`compare_module`: a ``torch.nn.Module``, traced layer by layer with
  :func:`dlmath.params.trace_shapes`; the first layer whose output shape or parameter count
  differs from the reference network's is named.

**Malformed answers are verdicts, not errors.**  An answer of the wrong type or shape, a
formula with an unknown symbol or one that cannot be read gets the verdict ``malformed``,
whose message says what was expected; ``...`` or ``None`` gets ``unanswered``.  No answer
raises an exception and none ends in a traceback from SymPy or PyTorch.  Exceptions are
kept for mistakes of the caller: an unknown exercise id, a grid or tolerance that is not
one (``ValueError``/``TypeError``, as everywhere in dlmath).

The exercises themselves (statements, reference solutions, oracles, grids) are defined with
the chapters that set them.  Chapter: every chapter ends with exercises; the teachers' page
:ref:`app-grading` shows :func:`grade`.
"""

from __future__ import annotations

import difflib
import io
import itertools
import math
import numbers
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy as sp

from dlmath._validate import check_choice, check_entries, check_number, int_sequence

__all__ = ["STATUSES", "FUNCTIONS", "Verdict", "check", "compare_number", "compare_formula",
           "compare_tensor", "compare_module", "parse_formula", "GradeRow", "Grades", "grade"]

#: The four statuses of a verdict.  ``right``; ``wrong``, a well-formed answer that
#: differs, with the first case, entry or layer where it does; ``malformed``, not an answer
#: of the expected form (wrong type, wrong shape, unknown symbol, unreadable formula);
#: ``unanswered``, the placeholder ``...`` or ``None``.
STATUSES = ("right", "wrong", "malformed", "unanswered")

#: The functions a formula may use, with their SymPy meaning; ``ceil``, ``ln``, ``max`` and
#: ``min`` are read as ``ceiling``, ``log``, ``Max`` and ``Min``, ``x // y`` as
#: ``floor(x/y)`` and ``^`` as a power.
FUNCTIONS = {"floor": sp.floor, "ceiling": sp.ceiling, "sqrt": sp.sqrt, "exp": sp.exp,
             "log": sp.log, "Max": sp.Max, "Min": sp.Min}
_ALIASES = {"ceil": sp.ceiling, "ln": sp.log, "max": sp.Max, "min": sp.Min, "pi": sp.pi}
#: Functions an exercise may allow besides :data:`FUNCTIONS`.
_EXTRA = {"tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh, "sin": sp.sin, "cos": sp.cos,
          "Abs": sp.Abs, "abs": sp.Abs, "Mod": sp.Mod, "binomial": sp.binomial,
          "factorial": sp.factorial}
_OPERATORS = {"+", "-", "*", "/", "**", "//", "%", "^", "(", ")", ","}
_UNICODE = {"\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*"}
_STEP_FUNCTIONS = (sp.floor, sp.ceiling, sp.Max, sp.Min, sp.Piecewise, sp.Mod)
# Okabe-Ito colours, as in the book's figures
_COLOURS = {"right": "#0072B2", "wrong": "#D55E00", "malformed": "#CC79A7",
            "unanswered": "#777777"}


class _Malformed(Exception):
    """Raised inside this module when an answer is not of the expected form."""


# --------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Verdict:
    """What :func:`check` and the ``compare_*`` functions return.

    ``str(verdict)`` (and its ``repr``) is ``"right"``, or the status and the message:
    ``"wrong: at n=1, k=1, s=3, p=1 your formula gives 5/3 (≈ 1.667), the answer is 1"``.  A
    notebook shows it as a coloured line.

    Attributes
    ----------
    status : {"right", "wrong", "malformed", "unanswered"}
        See :data:`STATUSES`.
    message : str
        What differs and where, or what was expected; for ``right``, what was checked
        (``"agrees with the answer in all 2,364 cases ..."``).
    case : dict, tuple, str or None
        Where the answer first differs: the grid case (``{"n": 5, "k": 3}``), the entry
        index (``(0, 1)``) or the layer (``"layer 2 (MaxPool2d)"``); ``None`` otherwise.
    got, expected
        The answer's value there and the right one (``None`` where there is none).
    exercise : str or None
        The exercise's id, when the verdict comes from :func:`check`.
    """

    status: str
    message: str = ""
    case: Any = None
    got: Any = None
    expected: Any = None
    exercise: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer is right."""
        return self.status == "right"

    def __str__(self) -> str:
        return "right" if self.ok or not self.message else f"{self.status}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        colour = _COLOURS.get(self.status, "#000000")
        detail = f'<span style="color:#555555">({html.escape(self.message)})</span>' \
            if self.ok and self.message else html.escape(self.message)
        sep = " " if self.ok else ": "
        return (f'<div class="dlmath-verdict" style="border-left:4px solid {colour};'
                f'padding:0.1em 0.6em"><strong style="color:{colour}">{self.status}</strong>'
                f'{sep if detail else ""}{detail}</div>')


def _verdict(status: str, message: str = "", **kw: Any) -> Verdict:
    return Verdict(status, message, **kw)


# --------------------------------------------------------------------------------------
# Showing values
# --------------------------------------------------------------------------------------

def _show(value: Any) -> str:
    """A value as a reader would write it: ``2``, ``2.5``, ``5/3 (≈ 1.667)``, ``1,191,170``."""
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return "undefined" if not math.isfinite(value) else (
            f"{value:,.0f}" if value.is_integer() and abs(value) >= 1e4 else f"{value:.6g}")
    if isinstance(value, sp.Basic) and value.is_Rational or isinstance(value, (int, Fraction)):
        q = Fraction(int(sp.Integer(value.p)), int(value.q)) if isinstance(value, sp.Basic) \
            else Fraction(value)
        if q.denominator == 1:
            return f"{q.numerator:,}"
        d = q.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            return f"{float(q):g}"
        return f"{q.numerator}/{q.denominator} (≈ {float(q):.4g})"
    if isinstance(value, sp.Basic):
        try:
            return f"{sp.sstr(value)} (≈ {float(value):.6g})"
        except (TypeError, ValueError):
            return sp.sstr(value)
    return str(value)


def _show_case(case: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in case.items())


def _show_grid(grid: Mapping[str, Sequence[Any]]) -> str:
    parts = []
    for name, values in grid.items():
        vals = list(values)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in vals)
        if ints and len(vals) > 2 and vals == list(range(vals[0], vals[-1] + 1)):
            parts.append(f"{name} in {vals[0]}..{vals[-1]}")
        elif len(vals) == 1:
            parts.append(f"{name} = {_show(_number(vals[0]))}")
        else:
            parts.append(f"{name} in {{{', '.join(_show(_number(v)) for v in vals)}}}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------

def _number(value: Any) -> sp.Rational | float:
    """An int, fraction or float of any common type as a SymPy rational or a float."""
    if isinstance(value, bool):
        raise _Malformed(f"a bool ({value}) is not a number")
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise _Malformed(f"{sp.sstr(value)} is not a number")
        if value.free_symbols:
            names = ", ".join(sorted(s.name for s in value.free_symbols))
            raise _Malformed(f"{sp.sstr(value)} contains the symbol(s) {names}; "
                             f"the answer is a number")
        if value.is_Rational:
            return value
        if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            return math.nan
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan      # complex or not evaluable: undefined
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Real):
        return float(value)
    raise _Malformed(f"a {type(value).__name__} is not a number")


def _close(got: Any, expected: Any, rtol: float, atol: float) -> bool:
    if isinstance(got, float) and not math.isfinite(got):
        return False
    if isinstance(got, sp.Basic) and isinstance(expected, sp.Basic) and got == expected:
        return True
    g, e = float(got), float(expected)
    return math.isclose(g, e, rel_tol=rtol, abs_tol=atol)


def _tolerances(rtol: Any, atol: Any) -> tuple[float, float]:
    return (check_number("rtol", rtol, nonnegative=True),
            check_number("atol", atol, nonnegative=True))


def _check_slips(slips: Any) -> list[tuple[Any, str]]:
    if isinstance(slips, (str, bytes, Mapping)) or not isinstance(slips, Iterable):
        raise TypeError(f"slips must be a sequence of (answer, explanation) pairs, "
                        f"got {type(slips).__name__}")
    out = []
    for pair in slips:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], str)):
            raise TypeError(f"slips must be a sequence of (answer, explanation) pairs, "
                            f"got {pair!r}"[:200])
        out.append((pair[0], pair[1]))
    return out


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _read_number(answer: Any) -> sp.Rational | float:
    """A number answer of any common form (raises :class:`_Malformed`)."""
    if isinstance(answer, str):
        text = answer.strip().replace("_", "")
        scale = 1
        if text.endswith("%"):
            text, scale = text[:-1].strip(), sp.Rational(1, 100)
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        try:
            value = parse_formula(text, ())
        except ValueError:
            raise _Malformed(f"cannot read {answer!r} as a number (write digits, such as "
                             f"1190000 or 1,190,000, a fraction such as 1/10, or an "
                             f"expression such as log(10))") from None
        return _number(value * scale)
    try:
        import torch

        if isinstance(answer, torch.Tensor):
            if answer.numel() != 1:
                raise _Malformed(f"a tensor of shape {tuple(answer.shape)} is not one number")
            if answer.is_complex():
                raise _Malformed("a complex number is not a real number")
            answer = answer.item()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if type(answer).__module__ == "numpy":
        import numpy as np

        arr = np.asarray(answer)
        if arr.size != 1:
            raise _Malformed(f"an array of shape {arr.shape} is not one number")
        if np.iscomplexobj(arr):
            raise _Malformed("a complex number is not a real number")
        answer = arr.item()
    value = _number(answer)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Malformed(f"{answer!r} is not a finite number")
    return value


def compare_number(answer: Any, expected: Any, *, rtol: float = 0.0, atol: float = 0.0,
                   slips: Sequence[tuple[Any, str]] = ()) -> Verdict:
    r"""Compare a number with the right one, exactly or within a tolerance.

    Explanation
    -----------
    The answer may be an int, a float, a fraction, a NumPy or one-element PyTorch number, a
    SymPy number, or a string: ``"1,191,170"``, ``"85.8%"``, ``"log(10)"``, ``"1/10"``.
    It is right when it equals ``expected`` or when
    :math:`|a - e| \le \max(\mathrm{rtol}\,|e|, \mathrm{atol})`.

    Parameters
    ----------
    answer
        The number to judge.
    expected : int, float, fractions.Fraction or sympy number
        The right value.
    rtol, atol : float
        Relative and absolute tolerance (default 0: exact).
    slips : sequence of (number, str)
        Known wrong answers and what each one is: when the answer equals one, its
        explanation is added to the message.

    Returns
    -------
    Verdict
        ``malformed`` for an answer that is not one finite real number.

    Raises
    ------
    ValueError, TypeError
        If ``expected`` is not a finite number, or a tolerance is negative or not a number.

    Examples
    --------
    >>> compare_number(1191170, 1_191_170)
    right
    >>> compare_number("1,190,000", 1_191_170)
    wrong: your answer is 1,190,000, the answer is 1,191,170
    >>> compare_number(0.33, sp.Rational(1, 3), atol=0.01)
    right
    >>> compare_number([1, 2], 3)
    malformed: a list is not a number; expected one number
    """
    rtol, atol = _tolerances(rtol, atol)
    slips = _check_slips(slips)
    try:
        exp = _read_number(expected)
    except _Malformed as e:
        raise (TypeError if not isinstance(expected, (numbers.Number, sp.Basic, str))
               else ValueError)(f"expected must be a finite number: {e}") from None
    if answer is ... or answer is None:
        return _verdict("unanswered", "no answer yet; expected one number", expected=exp)
    try:
        got = _read_number(answer)
    except _Malformed as e:
        return _verdict("malformed", f"{e}; expected one number", expected=exp)
    if _close(got, exp, rtol, atol):
        tol = f" (within ±{_show(max(rtol * abs(float(exp)), atol))})" if rtol or atol else ""
        return _verdict("right", f"equals {_show(exp)}{tol}", got=got, expected=exp)
    message = f"your answer is {_show(got)}, the answer is {_show(exp)}"
    for value, note in slips:
        try:
            if _close(got, _read_number(value), rtol, atol):
                message += f". {note}"
                break
        except _Malformed:
            continue
    return _verdict("wrong", message, got=got, expected=exp)


# --------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------

def _symbol_table(symbols: Any) -> dict[str, sp.Symbol]:
    if isinstance(symbols, Mapping):
        items = list(symbols.items())
    elif isinstance(symbols, (str, sp.Symbol)):
        raise TypeError(f"symbols must be a sequence of names or SymPy symbols, "
                        f"got {type(symbols).__name__} {symbols!r}")
    else:
        try:
            items = [(s if isinstance(s, str) else getattr(s, "name", None), s)
                     for s in symbols]
        except TypeError:
            raise TypeError(f"symbols must be a sequence of names or SymPy symbols, "
                            f"got {type(symbols).__name__}") from None
    table = {}
    for name, sym in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"symbols must be names or SymPy symbols, got {sym!r}")
        if name in FUNCTIONS or name in _ALIASES or name in _EXTRA:
            raise ValueError(f"symbols: {name!r} is the name of a function")
        table[name] = sym if isinstance(sym, sp.Symbol) else sp.Symbol(name)
    return table


def _function_table(functions: Any) -> dict[str, Any]:
    if isinstance(functions, str):
        functions = (functions,)
    try:
        names = list(functions)
    except TypeError:
        raise TypeError(f"functions must be a sequence of names, "
                        f"got {type(functions).__name__}") from None
    table = {**FUNCTIONS, **_ALIASES}
    for name in names:
        check_choice("functions", name, tuple(_EXTRA))
        table[name] = _EXTRA[name]
    return table


def _allowed_text(symbols: Mapping[str, Any], functions: Mapping[str, Any]) -> str:
    funcs = [f for f in functions if f not in _ALIASES]
    syms = ", ".join(symbols) if symbols else "no symbols (the answer is a number)"
    return f"the symbols {syms} and the functions {', '.join(funcs)}" if symbols else \
        f"{syms} and the functions {', '.join(funcs)}"


def parse_formula(text: str, symbols: Any, functions: Sequence[str] = ()) -> sp.Expr:
    """Read a formula written as text, allowing only the given symbols and functions.

    Explanation
    -----------
    The text is read with ``sympy.parsing.sympy_parser.parse_expr``, after every word in it
    has been checked against a whitelist: the names in ``symbols``, the functions of
    :data:`FUNCTIONS` (and the aliases ``ceil``, ``ln``, ``max``, ``min``, the constant
    ``pi``) and those named in ``functions``.  ``^`` is a power, ``x // y`` is
    ``floor(x/y)``, ``2p`` is ``2*p``, and decimals are read as exact fractions (``0.5`` is
    ``1/2``).  Nothing else is evaluated: no attributes, indexing or strings.

    Parameters
    ----------
    text : str
        The formula, e.g. ``"floor((n + 2*p - k)/s) + 1"``.
    symbols : sequence of str or sympy.Symbol, or a mapping name -> Symbol
        The names the formula may use; a name given as a string becomes a plain symbol.
    functions : sequence of str
        Further functions to allow, among ``tanh, sinh, cosh, sin, cos, Abs, abs, Mod,
        binomial, factorial``.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        If the text uses a name outside the whitelist (the message lists the allowed ones),
        a character that has no place in a formula, or cannot be read as one expression.
    TypeError
        If ``text`` is not a string or ``symbols`` not a sequence of names.

    Examples
    --------
    >>> parse_formula("floor((n + 2p - k)/s) + 1", "nksp")
    floor((-k + n + 2*p)/s) + 1
    >>> parse_formula("n^2 / 2", ["n"])
    n**2/2
    >>> parse_formula("n - q", ["n", "k"])
    Traceback (most recent call last):
    ...
    ValueError: unknown name 'q': a formula here may use the symbols n, k and the functions
    floor, ceiling, sqrt, exp, log, Max, Min
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(symbols, str):            # "nksp" or "n, k, s, p"
        symbols = symbols.replace(",", " ").split() if " " in symbols or "," in symbols \
            else list(symbols)
    table = _symbol_table(symbols)
    funcs = _function_table(functions)
    allowed = _allowed_text(table, funcs)
    for old, new in _UNICODE.items():
        text = text.replace(old, new)
    text = " ".join(text.split())
    if not text:
        raise ValueError("the formula is empty")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        raise ValueError(f"cannot read {text!r}: the parentheses do not match") from None
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.NUMBER):
            continue
        if tok.type == tokenize.NAME:
            if tok.string not in table and tok.string not in funcs:
                hint = ""
                if all(c in table for c in tok.string):
                    hint = f" (for a product write {'*'.join(tok.string)})"
                raise ValueError(f"unknown name {tok.string!r}{hint}: a formula here may use "
                                 f"{allowed}")
            continue
        if tok.type == tokenize.OP and tok.string in _OPERATORS:
            continue
        if tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
            continue
        raise ValueError(f"cannot read {text!r}: {tok.string!r} has no place in a formula "
                         f"(use numbers, + - * / ** ^ // %, parentheses and {allowed})")
    from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication, parse_expr,
                                            rationalize, standard_transformations)

    transformations = standard_transformations + (implicit_multiplication, convert_xor,
                                                  rationalize)
    global_dict = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
                   "Symbol": sp.Symbol, "__builtins__": {}}
    try:
        expr = parse_expr(text, local_dict={**funcs, **table}, global_dict=global_dict,
                          transformations=transformations)
    except Exception as e:  # noqa: BLE001  (any failure of the parser is an unreadable text)
        reason = "it is not one expression" if isinstance(e, SyntaxError) else \
            f"{type(e).__name__}: {e}"
        raise ValueError(f"cannot read {text!r} as a formula: {reason}") from None
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"{text!r} is not one expression (got {type(expr).__name__})")
    return expr


def _as_formula(answer: Any, symbols: Mapping[str, sp.Symbol],
                functions: Mapping[str, Any] | Sequence[str]) -> Any:
    """The answer as a SymPy expression in the declared symbols, or a Python callable."""
    if isinstance(answer, str):
        try:
            return parse_formula(answer, symbols, [f for f in functions if f in _EXTRA])
        except ValueError as e:
            raise _Malformed(str(e)) from None
    if isinstance(answer, sp.Basic):
        if not isinstance(answer, sp.Expr) or isinstance(answer, sp.MatrixBase):
            raise _Malformed(f"a {type(answer).__name__} is not a formula")
        unknown = sorted(s.name for s in answer.free_symbols if s.name not in symbols)
        if unknown:
            raise _Malformed(f"unknown symbol(s) {', '.join(unknown)}: a formula here may use "
                             f"{_allowed_text(symbols, _function_table(()))}")
        return answer.xreplace({s: symbols[s.name] for s in answer.free_symbols})
    if isinstance(answer, (numbers.Number, Fraction)) and not isinstance(answer, bool):
        return sp.sympify(_number(answer))
    if callable(answer) and not isinstance(answer, type):
        return answer
    raise _Malformed(f"a {type(answer).__name__} is not a formula")


def _value(formula: Any, case: Mapping[str, Any], symbols: Mapping[str, sp.Symbol]) -> Any:
    """The formula's value at a case: a SymPy rational, a float, or None (undefined)."""
    if isinstance(formula, sp.Expr):
        v = formula.xreplace({symbols[k]: sp.nsimplify(v) if isinstance(v, float) else
                              sp.sympify(v) for k, v in case.items()})
        try:
            return _number(v)
        except _Malformed:
            return None
    try:
        v = formula(**case)
    except Exception as e:  # noqa: BLE001  (the reader's function failed at this case)
        raise _Malformed(f"your function fails at {_show_case(case)}: "
                         f"{type(e).__name__}: {e}") from None
    try:
        return _read_number(v)
    except _Malformed as e:
        raise _Malformed(f"your function returns {v!r} at {_show_case(case)}: {e}") from None


def _provably_equal(a: Any, b: Any) -> bool:
    """Whether SymPy shows a - b = 0 (False when it cannot decide or it is not)."""
    if not (isinstance(a, sp.Expr) and isinstance(b, sp.Expr)):
        return False
    try:
        d = a - b
        if d == 0 or sp.expand(d) == 0:
            return True
        if d.has(*_STEP_FUNCTIONS):
            return False          # the grid decides floors, ceilings and maxima
        return sp.simplify(d) == 0
    except Exception:  # noqa: BLE001  (SymPy could not decide)
        return False


def _grid_cases(grid: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(grid, Mapping) or not grid:
        raise TypeError(f"grid must be a non-empty mapping from symbol names to values, "
                        f"got {type(grid).__name__} {grid!r}"[:200])
    names = list(grid)
    values = []
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid: {name!r} is not a symbol name")
        vals = grid[name]
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable):
            raise TypeError(f"grid[{name!r}] must be a sequence of numbers, got {vals!r}")
        vals = list(vals)
        if not vals:
            raise ValueError(f"grid[{name!r}] is empty")
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (numbers.Real, Fraction, sp.Rational)):
                raise TypeError(f"grid[{name!r}] must hold numbers, got {v!r}")
        values.append(vals)
    if math.prod(len(v) for v in values) > 10**6:
        raise ValueError("grid has more than 10**6 cases")
    return names, [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _grid_symbols(grid: Mapping[str, Sequence[Any]]) -> dict[str, sp.Symbol]:
    """Symbols for the names of a grid, with the assumptions its values allow.

    Integers only: ``integer=True``; all at least 1: ``positive``; at least 0:
    ``nonnegative``; otherwise ``real=True``.
    """
    out = {}
    for name, values in grid.items():
        vals = list(values)
        ints = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in vals)
        kw: dict[str, bool] = {"integer": True} if ints else {"real": True}
        if all(v > 0 for v in vals):
            kw["positive"] = True
        elif all(v >= 0 for v in vals):
            kw["nonnegative"] = True
        out[name] = sp.Symbol(name, **kw)
    return out


def _table(expected: Any, names: list[str], cases: list[dict[str, Any]],
           symbols: Mapping[str, sp.Symbol], valid: Callable[..., bool] | None,
           functions: Sequence[str]) -> list[tuple[dict[str, Any], Any]]:
    if isinstance(expected, str):
        expected = parse_formula(expected, symbols, functions)
    if not (isinstance(expected, sp.Expr) or callable(expected)):
        raise TypeError(f"expected must be a formula (str or SymPy expression) or a function "
                        f"of {', '.join(names)}, got {type(expected).__name__}")
    if isinstance(expected, sp.Expr):
        unknown = sorted(s.name for s in expected.free_symbols if s.name not in symbols)
        if unknown:
            raise ValueError(f"expected uses symbols that are not in the grid: {unknown}")
        expected = expected.xreplace({s: symbols[s.name] for s in expected.free_symbols})
    if valid is not None and not callable(valid):
        raise TypeError(f"valid must be a function of the grid's symbols, got {valid!r}")
    table = []
    for case in cases:
        if valid is not None and not valid(**case):
            continue
        if isinstance(expected, sp.Expr):
            value = _value(expected, case, symbols)
        else:
            value = expected(**case)
            if value is None:
                continue             # the oracle says the case is invalid
            value = _number(value)
        table.append((case, value))
    if not table:
        raise ValueError("the grid has no valid case")
    return table


def _judge_formula(answer: Any, table: Sequence[tuple[dict[str, Any], Any]],
                   symbols: Mapping[str, sp.Symbol], functions: Sequence[str],
                   grid_text: str, *, reference: Any = None, rtol: float = 1e-9,
                   atol: float = 1e-12, slips: Sequence[tuple[Any, str]] = ()) -> Verdict:
    """The verdict on a formula, given the cases and their right values."""
    names = ", ".join(symbols)
    form = f"a formula in {names} (a string or a SymPy expression)"
    if answer is ... or answer is None:
        return _verdict("unanswered", f"no answer yet; expected {form}")
    try:
        formula = _as_formula(answer, symbols, functions)
    except _Malformed as e:
        return _verdict("malformed", f"{e}; expected {form}")
    if isinstance(reference, str):
        reference = parse_formula(reference, symbols, functions)
    if reference is not None and _provably_equal(formula, reference):
        return _verdict("right", "equal to the answer: SymPy simplifies the difference to 0",
                        got=formula, expected=reference)
    try:
        for case, expected in table:
            got = _value(formula, case, symbols)
            if got is None or not _close(got, expected, rtol, atol):
                what = "your formula" if isinstance(formula, sp.Expr) else "your function"
                message = (f"at {_show_case(_relevant(case, formula, reference))} {what} gives "
                           f"{_show(got)}, the answer is "
                           f"{_show(expected)}")
                message += _slip_note(formula, table, symbols, functions, rtol, atol, slips)
                return _verdict("wrong", message, case=dict(case), got=got, expected=expected)
    except _Malformed as e:
        return _verdict("malformed", str(e))
    return _verdict("right", f"agrees with the answer in all {len(table):,} cases with "
                             f"{grid_text}", got=formula)


def _relevant(case: Mapping[str, Any], *formulas: Any) -> Mapping[str, Any]:
    """The values of a case that matter: all of them, or (for many symbols) those used."""
    if len(case) <= 6:
        return case
    used = {s.name for f in formulas if isinstance(f, sp.Expr) for s in f.free_symbols}
    return {k: v for k, v in case.items() if k in used} or case


def _slip_note(formula: Any, table: Sequence[tuple[dict[str, Any], Any]],
               symbols: Mapping[str, sp.Symbol], functions: Sequence[str], rtol: float,
               atol: float, slips: Sequence[tuple[Any, str]]) -> str:
    """The explanation of the first known slip the formula agrees with everywhere."""
    for slip, note in slips:
        try:
            other = _as_formula(slip, symbols, functions)
            if _provably_equal(formula, other) or all(
                    _close_or_both_undefined(_value(formula, c, symbols),
                                             _value(other, c, symbols), rtol, atol)
                    for c, _ in table):
                return f". {note}"
        except _Malformed:
            continue
    return ""


def _close_or_both_undefined(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return _close(a, b, rtol, atol)


def compare_formula(answer: Any, expected: Any, grid: Mapping[str, Sequence[Any]], *,
                    valid: Callable[..., bool] | None = None, reference: Any = None,
                    functions: Sequence[str] = (), rtol: float = 1e-9,
                    atol: float = 1e-12) -> Verdict:
    r"""Compare a formula with the right one: exactly where SymPy can, else on a grid.

    Explanation
    -----------
    The answer (text, read by :func:`parse_formula`; a SymPy expression, whose symbols are
    matched by name; or a Python function of the grid's names) is first compared with
    ``reference`` (or with ``expected`` when that is a formula): if SymPy simplifies the
    difference to 0 the answer is right.  Otherwise (floors, ceilings and maxima are never
    simplified: they are what the grid is for) it is evaluated exactly, in rationals, on
    every case of the product of the grid's values, in order, skipping the cases that
    ``valid`` rejects or where ``expected`` returns ``None``; the first case where the two
    differ by more than the tolerance is reported.

    Parameters
    ----------
    answer
        The formula to judge.
    expected : str, sympy.Expr or callable
        The right formula, or a function of the grid's names returning the right value
        (``None`` for a case to skip): an oracle such as PyTorch.
    grid : mapping of str to sequence of numbers
        The symbols and the values each takes, e.g. ``{"n": range(1, 13), "k": range(1, 6)}``.
        Symbols get the assumptions their values allow (integer, positive).
    valid : callable, optional
        ``valid(**case) -> bool``: the cases to keep.
    reference : str or sympy.Expr, optional
        A formula known to equal ``expected`` on the grid, for the exact comparison.
    functions : sequence of str
        Functions allowed besides :data:`FUNCTIONS` (see :func:`parse_formula`).
    rtol, atol : float
        Tolerance for values that are not rational (``log``, ``sqrt``); rationals that
        differ are always reported.

    Returns
    -------
    Verdict
        ``wrong`` with ``case``, ``got`` and ``expected`` set at the first difference;
        ``malformed`` for an answer that cannot be read or uses unknown names.

    Raises
    ------
    TypeError, ValueError
        If ``grid``, ``expected``, ``valid`` or a tolerance is not of the documented form,
        or no case of the grid is valid.

    Examples
    --------
    >>> grid = {"n": range(1, 13), "k": range(1, 6), "s": range(1, 5)}
    >>> compare_formula("(n - k)/s + 1", "floor((n - k)/s) + 1", grid,
    ...                 valid=lambda n, k, s: k <= n)
    wrong: at n=2, k=1, s=2 your formula gives 1.5, the answer is 1
    >>> compare_formula("(n - k)//s + 1", "floor((n - k)/s) + 1", grid)
    right
    >>> compare_formula("n + q", "n", {"n": range(3)})
    malformed: unknown name 'q': a formula here may use the symbols n and the functions floor,
    ceiling, sqrt, exp, log, Max, Min; expected a formula in n (a string or a SymPy expression)
    """
    rtol, atol = _tolerances(rtol, atol)
    names, cases = _grid_cases(grid)
    symbols = _grid_symbols(grid)
    functions = list(_function_table(functions))
    extra = [f for f in functions if f in _EXTRA]
    if isinstance(expected, str):
        try:
            expected = parse_formula(expected, symbols, extra)
        except ValueError as e:
            raise ValueError(f"expected: {e}") from None
    if isinstance(reference, str):
        try:
            reference = parse_formula(reference, symbols, extra)
        except ValueError as e:
            raise ValueError(f"reference: {e}") from None
    elif reference is not None and not isinstance(reference, sp.Expr):
        raise TypeError(f"reference must be a formula (str or SymPy expression) or None, "
                        f"got {type(reference).__name__}")
    table = _table(expected, names, cases, symbols, valid, extra)
    if reference is None and isinstance(expected, sp.Expr):
        reference = expected
    if isinstance(reference, sp.Expr):
        reference = reference.xreplace({s: symbols[s.name] for s in reference.free_symbols
                                        if s.name in symbols})
    return _judge_formula(answer, table, symbols, extra, _show_grid(grid),
                          reference=reference, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------

def _as_tensor(value: Any, what: str) -> Any:
    """A real float64 tensor on the CPU (raises :class:`_Malformed`)."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise _Malformed(f"{what} is complex")
        return value.detach().to("cpu", torch.float64)
    if isinstance(value, sp.MatrixBase):
        if value.free_symbols:
            names = ", ".join(sorted(s.name for s in value.free_symbols))
            raise _Malformed(f"{what} contains the symbol(s) {names}; expected numbers")
        try:
            value = np.array(value.evalf(), dtype=np.float64)
        except TypeError:
            raise _Malformed(f"{what} has entries that are not real numbers") from None
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        raise _Malformed(f"{what} is a {type(value).__name__}, not an array of numbers")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Malformed(f"{what} ({type(value).__name__}) is not a rectangular array of real "
                         f"numbers") from None
    return torch.from_numpy(arr.copy())


def _shape_text(shape: tuple) -> str:
    if len(shape) == 1:
        return f"a vector of length {shape[0]}"
    if len(shape) == 2:
        return f"a {shape[0]} × {shape[1]} matrix"
    return f"a tensor of shape {shape}" if shape else "a single number"


def compare_tensor(answer: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-8,
                   slips: Sequence[tuple[Any, str]] = ()) -> Verdict:
    r"""Compare a vector, matrix or tensor with the right one: shape, then entries.

    Explanation
    -----------
    The answer may be a PyTorch tensor, a NumPy array, a nested list or a numeric SymPy
    matrix.  Its shape must be the expected one (size-1 dimensions aside: a column
    ``(4, 1)`` is accepted for a vector of length 4); then every entry must satisfy
    :math:`|a - e| \le \mathrm{atol} + \mathrm{rtol}\,|e|`.  The first entry that does not,
    in row-major order, is reported with its index (from 0, as in Python), and the message
    says when the whole answer is the transpose or the negative of the right one.

    Parameters
    ----------
    answer
        The tensor to judge.
    expected : tensor, array or nested list
        The right value.
    rtol, atol : float
        Tolerances, as in ``torch.isclose``.
    slips : sequence of (tensor, str)
        Known wrong answers and their explanation (added when the answer equals one).

    Returns
    -------
    Verdict
        ``malformed`` for an answer that is not an array of real numbers or whose shape
        differs; ``wrong`` with ``case`` the index of the first differing entry.

    Raises
    ------
    TypeError, ValueError
        If ``expected`` is not an array of real numbers, or a tolerance is invalid.

    Examples
    --------
    >>> L = [[1, -1, 0], [-1, 2, -1], [0, -1, 1]]
    >>> compare_tensor(L, L)
    right
    >>> compare_tensor([[1, -1, 0], [-1, 2, 1], [0, -1, 1]], L)
    wrong: entry [1, 2] is 1 in your answer, the answer is -1
    >>> compare_tensor([1, 2], L)
    malformed: expected a 3 × 3 matrix, got a vector of length 2
    """
    import torch

    rtol, atol = _tolerances(rtol, atol)
    slips = _check_slips(slips)
    try:
        exp = _as_tensor(expected, "expected")
    except _Malformed as e:
        raise TypeError(f"expected must be an array of real numbers: {e}") from None
    if exp.dim() == 0 or exp.numel() == 0:
        raise ValueError(f"expected must be an array with at least one entry, got shape "
                         f"{tuple(exp.shape)} (for one number use compare_number)")
    if not bool(torch.isfinite(exp).all()):
        raise ValueError("expected must hold finite numbers, got NaN or infinite entries")
    form = _shape_text(tuple(exp.shape))
    if answer is ... or answer is None:
        return _verdict("unanswered", f"no answer yet; expected {form}")
    try:
        got = _as_tensor(answer, "your answer")
    except _Malformed as e:
        return _verdict("malformed", f"{e}; expected {form}")
    if got.shape != exp.shape:
        if got.numel() == exp.numel() and got.squeeze().shape == exp.squeeze().shape:
            got = got.reshape(exp.shape)
        else:
            hint = " (the transposed shape)" if got.dim() == 2 and exp.dim() == 2 and \
                tuple(got.shape) == tuple(exp.shape)[::-1] else ""
            return _verdict("malformed", f"expected {form}, got "
                                         f"{_shape_text(tuple(got.shape))}{hint}",
                            got=tuple(got.shape), expected=tuple(exp.shape))

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.isclose(a, b, rtol=rtol, atol=atol).all())

    if same(got, exp):
        tol = f" within {atol:g} + {rtol:g}·|entry|" if rtol or atol else ""
        return _verdict("right", f"all {exp.numel():,} entries agree{tol}", got=got,
                        expected=exp)
    bad = (~torch.isclose(got, exp, rtol=rtol, atol=atol)).nonzero()[0]
    index = tuple(int(i) for i in bad)
    g, e = float(got[index]), float(exp[index])
    where = f"entry {list(index)}" if index else "the value"
    message = f"{where} is {_show(g)} in your answer, the answer is {_show(e)}"
    if exp.dim() == 2 and exp.shape[0] == exp.shape[1] and same(got.T, exp):
        message += " (your matrix is the transpose of the answer)"
    elif same(-got, exp):
        message += " (every entry has the wrong sign)"
    for value, note in slips:
        try:
            other = _as_tensor(value, "slip")
        except _Malformed:
            continue
        if other.shape == got.shape and same(got, other):
            message += f". {note}"
            break
    return _verdict("wrong", message, case=index, got=g, expected=e)


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layer:
    type: str
    input_shape: tuple
    output_shape: tuple
    params: int


def _layers(trace: Any) -> list[_Layer]:
    """The rows of a trace that hold parameters or change the shape."""
    return [_Layer(r.type, r.input_shape, r.output_shape, int(r.params)) for r in trace.rows
            if not r.shared and (r.params or r.output_shape != r.input_shape)]


def _leaf_layers(module: Any, input_shape: tuple) -> tuple[list[_Layer], Exception | None]:
    """The layer modules a forward pass on zeros calls, until it ends or fails.

    For a network that fails on the input, this finds the layers before the failure (the
    trace of :func:`dlmath.params.trace_shapes` stops at the first mismatch).  Only
    modules are seen, not functions called in ``forward``.
    """
    import torch

    rows: list[_Layer] = []

    def hook(m: Any, args: tuple, out: Any) -> None:
        if isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            params = sum(p.numel() for p in m.parameters(recurse=False))
            ins, outs = tuple(args[0].shape[1:]), tuple(out.shape[1:])
            if params or ins != outs:
                rows.append(_Layer(type(m).__name__, ins, outs, params))

    check_entries(f"an input of shape {input_shape}", math.prod(input_shape))
    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    first = next(module.parameters(), None)
    x = torch.zeros((1, *input_shape), dtype=first.dtype if first is not None and
                    first.is_floating_point() else torch.float32,
                    device=first.device if first is not None else "cpu")
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(x)
        error = None
    except Exception as e:  # noqa: BLE001  (the failure is what is reported)
        error = e
    finally:
        for h in handles:
            h.remove()
        module.train(training)
    return rows, error


def _first_difference(mine: list[_Layer], ref: list[_Layer]) -> Verdict | None:
    for i, (a, b) in enumerate(zip(mine, ref), start=1):
        if a.output_shape == b.output_shape and a.params == b.params:
            continue
        if a.output_shape != b.output_shape:
            what = f"outputs {_shape(a.output_shape)} in yours, {_shape(b.output_shape)} " \
                   f"in the reference"
            what += f" (both with {a.params:,} parameters)" if a.params == b.params else \
                f", with {a.params:,} and {b.params:,} parameters"
        else:
            what = f"has {a.params:,} parameters in yours, {b.params:,} in the reference"
        name = a.type if a.type == b.type else f"{a.type}; the reference's is {b.type}"
        return _verdict("wrong", f"layer {i} ({name}) {what}", case=f"layer {i} ({a.type})",
                        got=(a.output_shape, a.params), expected=(b.output_shape, b.params))
    return None


def _shape(shape: tuple) -> str:
    return "×".join(str(s) for s in shape) if shape else "a scalar"


def compare_module(answer: Any, reference: Any, input_shape: Sequence[int]) -> Verdict:
    """Compare a network with a reference network, layer by layer.

    Explanation
    -----------
    Both networks are traced with :func:`dlmath.params.trace_shapes` on one example of
    shape ``input_shape``.  The layers compared are those that hold parameters or change
    the shape (convolutions, poolings, flattening, linear layers, normalisations), in the
    order the forward pass calls them, so names, activations and dropout do not matter.
    The first layer whose output shape or parameter count differs is reported; then a
    missing or extra layer.  A network that fails on the input (a linear layer built for
    another size) is run up to the failure, and the first layer that differs before it is
    reported with the failure.

    Parameters
    ----------
    answer
        The network to judge (a ``torch.nn.Module``).
    reference : torch.nn.Module
        The right network.
    input_shape : sequence of int
        One example's shape, without the batch, e.g. ``(3, 32, 32)``.

    Returns
    -------
    Verdict
        ``malformed`` if the answer is not a module; ``wrong`` if it differs or fails on the
        input, with ``case`` naming the first layer that differs and ``got`` and
        ``expected`` as (output shape, parameters).

    Raises
    ------
    TypeError, ValueError
        If ``reference`` is not a module, ``input_shape`` not a shape, or the reference
        itself fails on it.

    Examples
    --------
    >>> from torch import nn
    >>> ref = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    >>> mine = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
    ...                      nn.Flatten(), nn.Linear(4 * 3 * 3, 10))
    >>> compare_module(mine, ref, (1, 8, 8))
    wrong: layer 1 (Conv2d) outputs 4×6×6 in yours, 4×8×8 in the reference (both with 40
    parameters)
    """
    from torch import nn

    from dlmath.params import trace_shapes

    if not isinstance(reference, nn.Module):
        raise TypeError(f"reference must be a torch.nn.Module, got {type(reference).__name__}")
    input_shape = int_sequence("input_shape", input_shape, minimum=1)
    ref = _layers(trace_shapes(reference, input_shape))
    form = f"a torch.nn.Module that reads inputs of shape {tuple(input_shape)}"
    if answer is ... or answer is None:
        return _verdict("unanswered", f"no answer yet; expected {form}")
    if not isinstance(answer, nn.Module):
        return _verdict("malformed", f"a {type(answer).__name__} is not a network; "
                                     f"expected {form}")
    try:
        mine = _layers(trace_shapes(answer, input_shape))
    except Exception as e:  # noqa: BLE001  (the reader's network fails on the input)
        # where does it first differ, before it fails?  Both networks by a forward pass.
        failure = f"fails on an input of shape {tuple(input_shape)}: {e}"
        partial, _ = _leaf_layers(answer, tuple(input_shape))
        ref_leaves, _ = _leaf_layers(reference, tuple(input_shape))
        first = _first_difference(partial, ref_leaves)
        if first is None:
            return _verdict("wrong", f"your network {failure}")
        return Verdict("wrong", f"{first.message}; then your network {failure}", first.case,
                       first.got, first.expected)
    first = _first_difference(mine, ref)
    if first is not None:
        return first
    if len(mine) != len(ref):
        if len(mine) < len(ref):
            nxt = ref[len(mine)]
            message = (f"your network stops after {len(mine)} layers; the reference goes on "
                       f"with a {nxt.type} ({_shape(nxt.output_shape)}, {nxt.params:,} "
                       f"parameters)")
        else:
            nxt = mine[len(ref)]
            message = (f"your network has {len(mine) - len(ref)} more layer(s) than the "
                       f"reference, from layer {len(ref) + 1} ({nxt.type})")
        return _verdict("wrong", message, case=f"layer {min(len(mine), len(ref)) + 1}")
    total = sum(r.params for r in ref)
    return _verdict("right", f"the same {len(ref)} layers: output {_shape(ref[-1].output_shape)}"
                             f", {total:,} parameters")


# --------------------------------------------------------------------------------------
# Exercises
# --------------------------------------------------------------------------------------

def _exercise(exercise: Any) -> Any:
    from dlmath._book import exercises

    if isinstance(exercise, exercises.Exercise):
        return exercise
    if not isinstance(exercise, str):
        raise TypeError(f"exercise must be an exercise id (str), got "
                        f"{type(exercise).__name__}")
    return exercises.get(exercise)


def check(exercise: str, answer: Any) -> Verdict:
    """Check an answer to one of the book's exercises.

    Explanation
    -----------
    Each exercise states the form of its answer: a number, a formula (a string such as
    ``"floor((n - k)/s) + 1"`` or a SymPy expression, in the symbols the exercise names),
    a tensor, or a ``torch.nn.Module``.  The answer is compared with the exercise's
    reference, computed by an oracle (PyTorch, SymPy or brute force), with
    :func:`compare_number`, :func:`compare_formula`, :func:`compare_tensor` or
    :func:`compare_module`.  When a wrong answer is a known slip (a missing floor, a
    forgotten bias, an answer given in one of the reports) the message says so.

    Parameters
    ----------
    exercise : str
        The exercise's id, shown next to its statement (e.g. ``"conv-out-dilated"``).
    answer
        Your answer; ``...`` (the placeholder of the book's cells) is ``unanswered``.

    Returns
    -------
    Verdict
        ``right``; ``wrong``, with the first case, entry or layer where the answer differs;
        ``malformed``, with what was expected; or ``unanswered``.

    Raises
    ------
    ValueError
        If no exercise has this id (the message suggests the nearest ones).
    TypeError
        If ``exercise`` is not a string.

    Examples
    --------
    >>> check("conv-out-dilated", "floor((n + 2*p - d*(k - 1) - 1)/s) + 1")
    right
    >>> check("conv-out-dilated", "floor((n + 2*p - k)/s) + 1")
    wrong: at n=1, k=2, s=1, p=1, d=2 your formula gives 2, the answer is 1. This leaves out ...
    >>> check("conv-out-dilated", "floor((n + 2p - k)/s + 1")
    malformed: cannot read 'floor((n + 2p - k)/s + 1': the parentheses do not match; ...
    """
    ex = _exercise(exercise)
    verdict = ex.judge(answer)
    return Verdict(verdict.status, verdict.message, verdict.case, verdict.got,
                   verdict.expected, ex.id)


# --------------------------------------------------------------------------------------
# Grading a class
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradeRow:
    """One answer of one student and its verdict (a row of :class:`Grades`).

    Attributes
    ----------
    student : str
    exercise : str
        The exercise's id.
    verdict : Verdict
    """

    student: str
    exercise: str
    verdict: Verdict

    @property
    def status(self) -> str:
        """The verdict's status."""
        return self.verdict.status

    @property
    def ok(self) -> bool:
        """Whether the answer is right."""
        return self.verdict.ok


@dataclass(frozen=True)
class Grades:
    """The verdicts on a class's answers, in the order given: what :func:`grade` returns.

    Iterating gives the :class:`GradeRow` objects; ``str()`` is a plain-text table and a
    notebook shows an HTML one.

    Attributes
    ----------
    rows : tuple of GradeRow
    """

    rows: tuple

    def __iter__(self) -> Iterator[GradeRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> GradeRow:
        return self.rows[i]

    def scores(self) -> dict[str, tuple[int, int]]:
        """``{student: (right answers, answers)}``, students in the order they first appear."""
        out: dict[str, list[int]] = {}
        for r in self.rows:
            s = out.setdefault(r.student, [0, 0])
            s[0] += r.ok
            s[1] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}

    def to_table(self, fmt: str = "text") -> str:
        """The table: student, exercise, verdict, message (``fmt``: text, markdown, html)."""
        from dlmath._render import format_table

        rows = [[r.student, r.exercise, r.status, r.verdict.message] for r in self.rows]
        if fmt == "markdown":
            rows = [[c.replace("|", "\\|").replace("*", "\\*") for c in row] for row in rows]
        return format_table(["student", "exercise", "verdict", "details"], rows, fmt)

    def __str__(self) -> str:
        return self.to_table("text")

    def _repr_html_(self) -> str:
        return self.to_table("html")


def _rows(answers: Any) -> Iterator[tuple[str, str, Any]]:
    if isinstance(answers, (str, bytes, Mapping)) or not isinstance(answers, Iterable):
        raise TypeError(f"answers must be a sequence of (student, exercise, answer) rows, got "
                        f"{type(answers).__name__}")
    for i, row in enumerate(answers):
        if isinstance(row, Mapping):
            missing = {"student", "exercise", "answer"} - set(row)
            if missing:
                raise ValueError(f"answers: row {i} lacks {sorted(missing)}")
            student, exercise, answer = row["student"], row["exercise"], row["answer"]
        elif isinstance(row, (tuple, list)) and len(row) == 3:
            student, exercise, answer = row
        else:
            raise ValueError(f"answers: row {i} must be (student, exercise, answer), got "
                             f"{row!r}"[:200])
        if not isinstance(student, str) or not isinstance(exercise, str):
            raise TypeError(f"answers: row {i}: student and exercise must be strings, got "
                            f"{student!r}, {exercise!r}")
        yield student, exercise, answer


def grade(answers: Iterable[Any]) -> Grades:
    """Check a class's answers: (student, exercise, answer) rows in, a table of verdicts out.

    Explanation
    -----------
    Every row is judged by :func:`check`; a malformed answer is a row with the verdict
    ``malformed`` (it does not stop the grading).  The exercise ids are all checked before
    any answer is, so a typo in an id fails at once with its row number.

    Parameters
    ----------
    answers : iterable of (str, str, answer) or of mappings
        Rows ``(student, exercise, answer)``, or mappings with the keys ``student``,
        ``exercise`` and ``answer`` (the rows of a ``csv.DictReader``).

    Returns
    -------
    Grades
        One :class:`GradeRow` per answer, in the order given; ``scores()`` counts the right
        answers per student.

    Raises
    ------
    ValueError
        If a row is not a triple, or names no exercise (the message gives the row).
    TypeError
        If ``answers`` is not a sequence of rows or a student or exercise is not a string.

    Examples
    --------
    >>> grades = grade([("ana", "params-cifar-total", 1191170),
    ...                 ("ben", "params-cifar-total", "1,190,000"),
    ...                 ("ben", "conv-out-dilated", "floor((n - k)/s + 1")])
    >>> [r.status for r in grades]
    ['right', 'wrong', 'malformed']
    >>> grades.scores()
    {'ana': (1, 1), 'ben': (0, 2)}
    """
    rows = list(_rows(answers))
    from dlmath._book import exercises

    for i, (_, exercise, _) in enumerate(rows):
        try:
            exercises.get(exercise)
        except ValueError as e:
            raise ValueError(f"answers: row {i}: {e}") from None
    return Grades(tuple(GradeRow(s, e, check(e, a)) for s, e, a in rows))


def _nearest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
