"""The book's exercises: statements, reference solutions, oracles and known slips.

Each chapter ends with exercises whose answers a reader checks with one call,
:func:`dlmath.check.check`.  An exercise is registered here with the form of its answer
(a number, a formula, a tensor or a network), the reference solution written as a reader
would write it with ``dlmath`` (a formula as text, or a short piece of code), and an
*oracle* that computes the right answer without that solution: PyTorch's layers, autograd,
SymPy or brute-force enumeration.  A formula's oracle gives the value at each case of a
grid of small integers; the tests check that the solution agrees with the oracle on the
whole grid.

Slips are known wrong answers (the reports' among them) with a sentence on what each one
is; when a reader's answer equals a slip, the verdict adds that sentence.

Exercises are declared next to their topic, in ``dlmath/_book/exercises/<topic>.py``; each
such module calls :func:`register` at import time.  :func:`all_exercises` imports them all.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import math
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from dlmath import check as _check
from dlmath._validate import check_choice, one_torch_thread

__all__ = ["KINDS", "CHAPTERS", "Slip", "Exercise", "register", "get", "all_exercises",
           "for_chapter", "glue_solutions"]

#: The forms an answer can take.
KINDS = ("number", "formula", "tensor", "module")

#: The chapters' labels, in the order of the book.
CHAPTERS = ("ch-conv-arithmetic", "ch-conv-matrix", "ch-counting-parameters",
            "ch-why-convolutions", "ch-softmax", "ch-mlp-backprop", "ch-hopfield", "ch-graphs",
            "ch-training-cnns", "ch-regularisation", "ch-padding-position", "ch-rotation",
            "ch-transformers", "ch-seq2seq")


@dataclass(frozen=True)
class Slip:
    """A known wrong answer and what it is.

    Attributes
    ----------
    answer
        In the exercise's form: a formula as text, a number; for a tensor, code (text)
        that computes it, or the value.
    note : str
        One or two sentences on what the answer gets wrong, added to the verdict.
    source : str
        Where it was given, e.g. ``"report 004, I-Q1"``; empty for a typical slip.
    """

    answer: Any
    note: str
    source: str = ""


_CACHE: dict[tuple[str, str], Any] = {}


def _namespace() -> dict[str, Any]:
    """What a solution's code may use: torch, math, sympy and dlmath's modules."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import dlmath
    from dlmath.models import zoo

    ns: dict[str, Any] = {"torch": torch, "nn": nn, "F": F, "math": math, "sp": sp,
                          "zoo": zoo, "__builtins__": __builtins__}
    for name in dlmath.MODULES:
        if name != "check":
            ns[name] = getattr(dlmath, name)
    return ns


def run_code(code: str) -> Any:
    """Run a short piece of code and return the value of its last line (an expression)."""
    tree = ast.parse(code, mode="exec")
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise ValueError(f"the code must end with an expression: {code!r}")
    ns = _namespace()
    body, last = tree.body[:-1], tree.body[-1]
    with one_torch_thread():
        exec(compile(ast.Module(body=body, type_ignores=[]), "<solution>", "exec"), ns)
        return eval(compile(ast.Expression(last.value), "<solution>", "eval"), ns)


def _imports(code: str) -> list[str]:
    """The import lines a reader needs to run a solution's code on its own."""
    import dlmath

    tree = ast.parse(code)
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
    assigned = {n.id for n in names if isinstance(n.ctx, ast.Store)}
    used = {n.id for n in names} - assigned
    done = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    out = [f"import {m}" for m in ("math", "torch") if m in used - done]
    modules = sorted(m for m in dlmath.MODULES if m in used and m != "check")
    if modules:
        out.append(f"from dlmath import {', '.join(modules)}")
    if "zoo" in used:
        out.append("from dlmath.models import zoo")
    return out


@dataclass(frozen=True, eq=False)
class Exercise:
    """One exercise.

    Attributes
    ----------
    id : str
        Stable identifier, used in ``check(id, answer)``: lower case and hyphens.
    chapter : str
        The label of the chapter that sets it (one of :data:`CHAPTERS`).
    title : str
        A short title.
    statement : str
        The question in one or two sentences (the chapter states it with its formulas).
    kind : {"number", "formula", "tensor", "module"}
    solution : str
        The reference solution as a reader writes it: for a formula, the formula as text;
        otherwise code whose last line is the answer (it may use ``torch``, ``math``,
        ``sp`` and dlmath's modules).
    oracle : callable
        Computes the right answer without the solution.  Formula: ``oracle(**case)``, the
        value at one case of the grid (``None`` to skip an invalid case); number, tensor:
        ``oracle()``; module: ``oracle()`` returns the reference network.
    grid : mapping of str to sequence, optional
        Formula only: the symbols and their values; the cases are the product, in order.
    valid : callable, optional
        Formula only: ``valid(**case) -> bool``, the cases to keep.
    cases : callable, optional
        Formula only: ``cases() -> list of dict``, explicit cases instead of the product of
        the grid (the grid still declares the symbols and their kind).
    functions : tuple of str
        Functions a formula may use besides floor, ceiling, sqrt, exp, log, Max, Min.
    rtol, atol : float
        Tolerances for numbers, formulas with irrational values, and tensors.
    input_shape : tuple of int
        Module only: one example's shape.
    slips : tuple of Slip
    """

    id: str
    chapter: str
    title: str
    statement: str
    kind: str
    solution: str
    oracle: Callable[..., Any] = field(repr=False)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict, repr=False)
    valid: Callable[..., bool] | None = field(default=None, repr=False)
    cases: Callable[[], list[dict[str, Any]]] | None = field(default=None, repr=False)
    functions: tuple = ()
    rtol: float = 0.0
    atol: float = 0.0
    input_shape: tuple = ()
    slips: tuple = field(default=(), repr=False)

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_choice("chapter", self.chapter, CHAPTERS)
        if not self.id or self.id != self.id.lower() or " " in self.id:
            raise ValueError(f"id must be lower case without spaces, got {self.id!r}")
        if (self.kind == "formula") != bool(self.grid):
            raise ValueError(f"{self.id}: a formula exercise needs a grid, others none")
        if self.kind == "module" and not self.input_shape:
            raise ValueError(f"{self.id}: a module exercise needs an input_shape")

    # --- the reference -------------------------------------------------------------------

    @property
    def symbols(self) -> dict[str, sp.Symbol]:
        """The formula's symbols, with the assumptions their grid values allow."""
        return _check._grid_symbols(self.grid)

    def table(self) -> list[tuple[dict[str, Any], Any]]:
        """Formula: every valid case and the oracle's value there (computed once)."""
        key = (self.id, "table")
        if key not in _CACHE:
            if self.cases is not None:
                cases = list(self.cases())
            else:
                names = list(self.grid)
                cases = [dict(zip(names, c)) for c in itertools.product(*self.grid.values())]
            with one_torch_thread():
                _CACHE[key] = _check._table(self.oracle, list(self.grid), cases, self.symbols,
                                            self.valid, self.functions)
        return _CACHE[key]

    def expected(self) -> Any:
        """Number, tensor, module: the oracle's answer (computed once)."""
        key = (self.id, "expected")
        if key not in _CACHE:
            with one_torch_thread():
                _CACHE[key] = self.oracle()
        return _CACHE[key]

    def answer(self) -> Any:
        """The reference solution's value: the formula text, or what the code computes."""
        return self.solution if self.kind == "formula" else run_code(self.solution)

    def report_slip(self) -> Slip | None:
        """The first slip that a report gave, if any."""
        return next((s for s in self.slips if s.source), None)

    def _slips(self) -> list[tuple[Any, str]]:
        out = []
        for s in self.slips:
            value = s.answer
            if self.kind == "tensor" and isinstance(value, str):
                value = run_code(value)
            elif callable(value) and self.kind != "formula":
                value = value()
            out.append((value, s.note))
        return out

    # --- judging ---------------------------------------------------------------------------

    def judge(self, answer: Any, *, exact: bool = True) -> _check.Verdict:
        """The verdict on an answer (what :func:`dlmath.check.check` returns).

        With ``exact=False`` a formula is judged on the grid alone, against the oracle,
        even where SymPy could show it equal to the reference solution (for the tests).
        """
        if self.kind == "formula":
            grid_text = _check._show_grid(self.grid) if self.cases is None else \
                "random values of " + ", ".join(self.grid)
            return _check._judge_formula(
                answer, self.table(), self.symbols, self.functions, grid_text,
                reference=_check.parse_formula(self.solution, self.symbols, self.functions)
                if exact else None,
                rtol=self.rtol or 1e-9, atol=self.atol or 1e-12,
                slips=[(s.answer, s.note) for s in self.slips])
        if self.kind == "number":
            return _check.compare_number(answer, self.expected(), rtol=self.rtol,
                                         atol=self.atol, slips=self._slips())
        if self.kind == "tensor":
            return _check.compare_tensor(answer, self.expected(), rtol=self.rtol or 1e-6,
                                         atol=self.atol or 1e-9, slips=self._slips())
        with one_torch_thread():
            return _check.compare_module(answer, self.expected(), self.input_shape)

    def solution_markdown(self) -> str:
        """The reference solution as Markdown: the call a reader would make, and the value."""
        if self.kind == "formula":
            return f'```python\ncheck("{self.id}", "{self.solution}")\n```'
        lines = self.solution.strip().splitlines()
        code = "\n".join([*_imports(self.solution), *lines[:-1], f"answer = {lines[-1]}",
                          f'check("{self.id}", answer)'])
        text = f"```python\n{code}\n```"
        value = self.answer()
        if self.kind == "number":
            text += f"\n\nThe answer is {_check._show(_check._read_number(value))}."
        elif self.kind == "tensor":
            import torch

            shown = torch.as_tensor(value, dtype=torch.float64).round(decimals=4)
            text += f"\n\ngives\n\n```text\n{shown.tolist()}\n```"
        return text


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry; its id must be new."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"exercise must be an Exercise, got {type(exercise).__name__}")
    if exercise.id in _REGISTRY:
        raise ValueError(f"exercise id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"dlmath._book.exercises.{info.name}")


def all_exercises() -> list[Exercise]:
    """Every exercise, in the order of the chapters and of registration."""
    _load_all()
    order = {c: i for i, c in enumerate(CHAPTERS)}
    return sorted(_REGISTRY.values(), key=lambda e: order[e.chapter])


def get(exercise_id: str) -> Exercise:
    """The exercise with this id (``ValueError`` naming the nearest ids if there is none)."""
    _load_all()
    try:
        return _REGISTRY[exercise_id]
    except (KeyError, TypeError):
        raise ValueError(f"exercise must be the id of an exercise; there is no "
                         f"{exercise_id!r}{_check._nearest(str(exercise_id), _REGISTRY)}"
                         ) from None


def for_chapter(chapter: str) -> list[Exercise]:
    """The exercises of one chapter, in order."""
    check_choice("chapter", chapter, CHAPTERS)
    return [e for e in all_exercises() if e.chapter == chapter]


def glue_solutions(chapter: str) -> None:
    """For a chapter's build: check every reference solution and glue it for its dropdown.

    Asserts that ``check(id, solution)`` is right for every exercise of the chapter, and
    glues the solution's code block under ``ex-<id>`` for ``{glue:md}``.
    """
    from IPython.display import Markdown
    from myst_nb import glue

    for ex in for_chapter(chapter):
        verdict = _check.check(ex.id, ex.answer())
        assert verdict.ok, f"{ex.id}: the reference solution is {verdict}"
        glue(f"ex-{ex.id}", Markdown(ex.solution_markdown()), display=False)
