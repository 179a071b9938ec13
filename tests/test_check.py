"""Tests of dlmath.check: every exercise of the book, and each form of answer.

For every exercise: its reference solution is right (a formula also on the whole grid,
against the oracle, without the exact SymPy shortcut); a wrong answer (a report's where one
exists, else a typical slip) is wrong at the first case, entry or layer stated here by hand;
a malformed answer gets a message that says what was expected.  Then unit tests of the four
forms (number, formula exactly and on the grid, tensor, module), of the verdicts, of
``grade`` and of the whitelist of ``parse_formula``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

from dlmath import check as C
from dlmath._book import exercises
from dlmath._book.exercises.params import cifar_reference
from dlmath.check import (Verdict, check, compare_formula, compare_module, compare_number,
                          compare_tensor, grade, parse_formula)

ALL = exercises.all_exercises()
IDS = [e.id for e in ALL]
BOOK = Path(__file__).resolve().parents[1] / "book" / "chapters"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on shared CPUs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the registry ---------------------------------------------------------------------------

def test_at_least_three_exercises_per_chapter():
    counts = Counter(e.chapter for e in ALL)
    assert set(counts) == set(exercises.CHAPTERS)
    assert min(counts.values()) >= 3 and len(ALL) >= 42
    assert len(IDS) == len(set(IDS))


def test_every_kind_is_used():
    assert {e.kind for e in ALL} == set(exercises.KINDS)


@pytest.mark.parametrize("chapter", exercises.CHAPTERS)
def test_each_chapter_sets_its_exercises(chapter):
    """The chapter's text shows a check(...) call and a glued solution for every exercise."""
    (path,) = [p for p in BOOK.glob("*.md") if f"({chapter})=" in p.read_text()]
    text = path.read_text()
    for ex in exercises.for_chapter(chapter):
        assert f'check("{ex.id}"' in text, f"{path.name} does not call check({ex.id!r}, ...)"
        assert f"ex-{ex.id}" in text, f"{path.name} does not show the solution of {ex.id}"


# --- every exercise: the solution, a wrong answer, a malformed one ------------------------------

@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_reference_solution_is_right(ex):
    answer = ex.answer()
    verdict = check(ex.id, answer)
    assert verdict.ok, verdict
    assert verdict.exercise == ex.id
    if ex.kind == "formula":                     # against the oracle on every case
        on_grid = ex.judge(answer, exact=False)
        assert on_grid.ok and "agrees with the answer in all" in on_grid.message, on_grid


def _slip(ex_id, i=0):
    ex = exercises.get(ex_id)
    value = ex.slips[i].answer
    if ex.kind == "tensor":
        value = exercises.run_code(value) if isinstance(value, str) else value()
    return value


#: id -> (wrong answer, where it first differs: a grid case, an entry index or None).
#: A report's answer where one exists (the first slip with a source), else a typical slip.
WRONG = {
    "conv-out-dilated": ("(n - k + 2*p)/s + 1", dict(n=1, k=1, s=3, p=1, d=1)),
    "pool-out-ceil": ("ceiling((n + 2*p - k)/s) + 1", dict(n=1, k=2, s=2, p=1)),
    "receptive-field-stack": (9, None),
    "halving-padding": ("(n*2/2 - n + k - 2)/2", dict(n=2, k=1)),
    "toeplitz-column": ("(u + a)*W + v + b", dict(W=5, s=2, u=0, v=1, a=0, b=0)),
    "conv-matrix-2x2": (lambda: _slip("conv-matrix-2x2"), (0, 1)),
    "conv-matrix-nnz": (576, None),
    "params-conv-layer": ("c_out*c_in*k**2", dict(c_in=1, c_out=1, k=1)),
    "params-single-filter-cnn": ("3*floor((H - M + 1)/2*(W - N + 1)/2) + M*N",
                                 dict(H=3, W=3, M=1, N=1)),
    "params-cifar-total": (1_190_000, None),
    "params-module-cifar": (None, "layer 1 (Conv2d)"),          # built in the test
    "fc-same-output": ("x*y*z*(x - k + 1)*(y - k + 1)", dict(x=1, y=1, z=1, k=1)),
    "fully-conv-width": ("W/4 - 1", dict(W=9)),
    "circulant-params": ("2*n - 1", dict(n=2)),
    "pool-halves": ("n/2", dict(n=3)),
    "softmax-jacobian": (lambda: _slip("softmax-jacobian", 1), (0, 1)),
    "softmax-jacobian-rank": ("n", dict(n=1)),
    "ce-grad": (lambda: _slip("ce-grad"), (0,)),
    "mlp-grad-hidden": (lambda: _slip("mlp-grad-hidden"), (0,)),
    "mlp-grad-wy": (lambda: _slip("mlp-grad-wy"), (0, 0)),
    "loss-at-init": ("1/K", dict(K=1)),
    "accuracy-at-init": ("1 - 1/K", dict(K=3)),
    "hopfield-update": (lambda: _slip("hopfield-update"), (0,)),
    "hopfield-hessian": (lambda: _slip("hopfield-hessian"), (0, 0)),
    "hopfield-linearised": ("-log(exp(q) + exp(-q)) - tanh(q)*(q - 1/2)", dict(q=-2)),
    "attention-identity": (lambda: _slip("attention-identity"), (0,)),
    "graph-walks": (lambda: _slip("graph-walks"), (0, 0)),
    "graph-laplacian": (lambda: _slip("graph-laplacian"), (2, 3)),
    "dirichlet-energy": (36, None),
    "flatten-size": ("128*H*W/64", dict(H=8, W=9)),
    "bn-params": (448, None),
    "steps-per-epoch": ("N/B", dict(N=1, B=2)),
    "gap-params-saved": ("1024*128*floor(H/8)**2", dict(H=8)),
    "dropout-train-scale": ("1 - p", dict(p=Fraction(1, 10))),
    "dropout-test-scale": ("p", dict(p=0)),
    "adam-first-step": (0.01 * 0.05 / (0.00025 ** 0.5 + 1e-8), None),
    "momentum-displacement": (-0.3, None),
    "net1-last-side": ("n/8", dict(n=3)),
    "corner-output": ("g00*h00 + g01*h01 + g10*h10 + g11*h11", "first"),
    "net2-fc-params": ("64*64*ceiling(n/8)**2", dict(n=3)),
    "rot90-row": ("n - j", dict(n=1, i=0, j=0)),
    "rot90-matrix": (lambda: _slip("rot90-matrix"), (0, 0)),
    "c4-kernel-params": ("k**2/4", dict(k=1)),
    "attention-flops": ("4*n**2", dict(n=1, d=2)),
    "attention-scale": ("1/d", dict(d=2)),
    "mha-params": ("3*d**2 + 3*d", dict(d=1, h=1)),
    "causal-pairs": ("n**2/2", dict(n=1)),
    "edit-distance": (1, None),
    "cer-micro": (lambda: _slip("cer-micro"), None),
    "nucleus-size": (2, None),
    "beam-search-prob": (0.33, None),
}


def test_every_exercise_has_a_wrong_answer_here():
    assert set(WRONG) == set(IDS)


def _padding_zero_cifar() -> nn.Module:
    net = cifar_reference()
    net[0] = nn.Conv2d(3, 32, 5)                   # the slip: no padding in the first layer
    return net


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_wrong_answer_is_wrong_at_the_right_place(ex):
    answer, where = WRONG[ex.id]
    if ex.kind == "module":
        answer = _padding_zero_cifar()
    elif callable(answer):
        answer = answer()
    verdict = check(ex.id, answer)
    assert verdict.status == "wrong", verdict
    if where == "first":                           # random cases: the very first one differs
        where = ex.table()[0][0]
    assert verdict.case == where, verdict
    if ex.kind == "formula":
        assert re.search(r"your formula gives .+, the answer is ", verdict.message)
    # a known slip is explained, and a report's answer is the one tested where there is one
    report = ex.report_slip()
    if report is not None and ex.kind in ("formula", "number"):
        assert answer == report.answer
    notes = [s.note for s in ex.slips]
    if ex.kind != "module" and any(_same(answer, s) for s in _slip_values(ex)):
        assert any(n in verdict.message for n in notes), verdict


def _slip_values(ex):
    return [_slip(ex.id, i) for i in range(len(ex.slips))]


def _same(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
            a.shape == b.shape and bool(torch.allclose(a.double(), b.double()))
    return a == b


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_malformed_answer_says_what_was_expected(ex):
    if ex.kind == "formula":
        names = ", ".join(ex.grid)
        v = check(ex.id, "zz + 1")
        assert v.status == "malformed"
        assert "unknown name 'zz'" in v.message and f"the symbols {names}" in v.message
        v = check(ex.id, "(1 +")
        assert v.status == "malformed" and "parentheses" in v.message
        v = check(ex.id, [1, 2])
        assert v.status == "malformed" and f"expected a formula in {names}" in v.message
    elif ex.kind == "number":
        v = check(ex.id, [1, 2])
        assert v.status == "malformed" and v.message.endswith("expected one number")
        v = check(ex.id, "one hundred")
        assert v.status == "malformed" and "cannot read 'one hundred' as a number" in v.message
    elif ex.kind == "tensor":
        shape = tuple(ex.expected().shape)
        v = check(ex.id, torch.zeros(7, 7, 7))
        assert v.status == "malformed"
        assert v.message.startswith("expected ") and str(shape[-1]) in v.message
        v = check(ex.id, "a matrix")
        assert v.status == "malformed" and "not an array of numbers" in v.message
    else:
        v = check(ex.id, "a network")
        assert v.status == "malformed" and "is not a network" in v.message
    assert check(ex.id, ...).status == "unanswered"


# --- numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [1191170, 1191170.0, np.int64(1191170), "1,191,170",
                                    "1191170", torch.tensor(1191170), sp.Integer(1191170),
                                    Fraction(1191170)])
def test_number_forms(answer):
    assert compare_number(answer, 1_191_170).ok


def test_number_tolerance_and_expressions():
    assert compare_number(0.1004, 0.1, atol=0.001).ok
    assert compare_number(0.102, 0.1, atol=0.001).status == "wrong"
    assert compare_number("log(10)", math.log(10), rtol=1e-12).ok
    assert compare_number("85.8%", 0.858, rtol=1e-12).ok
    assert compare_number("1/3", sp.Rational(1, 3)).ok
    v = compare_number(0.3333, sp.Rational(1, 3))
    assert v.status == "wrong" and "1/3 (≈ 0.3333)" in v.message


@pytest.mark.parametrize("answer, message", [
    (True, "a bool (True) is not a number"),
    (float("nan"), "not a finite number"),
    (torch.zeros(3), "a tensor of shape (3,) is not one number"),
    (sp.Symbol("n") + 1, "contains the symbol(s) n"),
    ("1 +* 2", "cannot read"),
    ({"a": 1}, "a dict is not a number"),
])
def test_number_malformed(answer, message):
    v = compare_number(answer, 3)
    assert v.status == "malformed" and message in v.message and "expected one number" in v.message


def test_number_slip_note_and_bad_expected():
    v = compare_number(9, 18, slips=[(9, "Forgot the strides")])
    assert str(v) == "wrong: your answer is 9, the answer is 18. Forgot the strides"
    with pytest.raises(ValueError, match="expected must be a finite number"):
        compare_number(1, float("inf"))
    with pytest.raises(ValueError, match="rtol"):
        compare_number(1, 1, rtol=-1)


# --- formulas ---------------------------------------------------------------------------------

GRID = {"n": range(1, 13), "k": range(1, 6), "s": range(1, 5)}


def _torch_size(n, k, s):
    return None if k > n else int(torch.nn.functional.conv1d(
        torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s).shape[-1])


def test_formula_exact_path_and_grid_path():
    v = compare_formula("2*(n + 1)", "2*n + 2", {"n": range(3)})
    assert v.ok and "SymPy" in v.message
    v = compare_formula("(n - k)//s + 1", _torch_size, GRID)
    assert v.ok and "agrees with the answer in all" in v.message
    # floor for ceiling: the first case in the grid's order where they differ
    v = compare_formula("ceiling((n - k)/s) + 1", _torch_size, GRID)
    assert v.status == "wrong" and v.case == dict(n=2, k=1, s=2)
    assert v.got == 2 and v.expected == 1
    assert str(v) == "wrong: at n=2, k=1, s=2 your formula gives 2, the answer is 1"


def test_formula_off_by_one_and_missing_term():
    v = compare_formula("(n - k)//s", _torch_size, GRID)
    assert v.case == dict(n=1, k=1, s=1) and v.got == 0 and v.expected == 1
    v = compare_formula("c*k**2", "c*(k**2 + 1)", {"c": range(1, 4), "k": range(1, 4)})
    assert v.case == dict(c=1, k=1) and "gives 1, the answer is 2" in v.message


def test_formula_as_sympy_expression_and_callable():
    n, k, s = sp.symbols("n k s")                 # no assumptions: matched by name
    assert compare_formula(sp.floor((n - k) / s) + 1, _torch_size, GRID).ok
    assert compare_formula(lambda n, k, s: (n - k) // s + 1, _torch_size, GRID).ok
    v = compare_formula(lambda n, k, s: (n - k) / s + 1, _torch_size, GRID)
    assert v.status == "wrong" and "your function gives 1.5" in v.message
    v = compare_formula(lambda n: n, _torch_size, GRID)
    assert v.status == "malformed" and "your function fails at n=1, k=1, s=1" in v.message
    v = compare_formula(sp.Symbol("q") * n, _torch_size, GRID)
    assert v.status == "malformed" and "unknown symbol(s) q" in v.message


def test_formula_undefined_values_are_wrong_not_errors():
    v = compare_formula("1/(n - 1)", "n", {"n": range(1, 4)})
    assert v.status == "wrong" and "gives undefined" in v.message
    v = compare_formula("sqrt(n - 3)", "n", {"n": range(1, 4)})
    assert v.status == "wrong" and v.case == {"n": 1}


def test_formula_irrational_values_use_the_tolerance():
    assert compare_formula("log(K)", lambda K: math.log(K), {"K": range(1, 9)}).ok
    v = compare_formula("log(K)/log(10)", lambda K: math.log(K), {"K": range(1, 9)})
    assert v.status == "wrong" and v.case == {"K": 2}


def test_formula_grid_and_expected_are_checked():
    with pytest.raises(TypeError, match="grid"):
        compare_formula("n", "n", ["n"])
    with pytest.raises(ValueError, match=r"grid\['n'\] is empty"):
        compare_formula("n", "n", {"n": []})
    with pytest.raises(ValueError, match="no valid case"):
        compare_formula("n", lambda n: None, {"n": range(3)})
    with pytest.raises(TypeError, match="expected must be"):
        compare_formula("n", 3, {"n": range(3)})


# --- parse_formula's whitelist --------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2p + 1", "2*p + 1"), ("n^2", "n**2"), ("n // 2", "floor(n/2)"), ("ceil(n/2)", "ceiling(n/2)"),
    ("0.5 n", "n/2"), ("ln(n)", "log(n)"), ("max(n, p)", "Max(n, p)"), ("n \u2212 1", "n - 1"),
])
def test_parse_formula_reads_what_students_write(text, expected):
    n, p = sp.symbols("n p")
    assert parse_formula(text, "np") == sp.sympify(expected, locals={"n": n, "p": p})


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "unknown name '__import__'"),
    ("n.func", "'.' has no place in a formula"),
    ("[n]", "'[' has no place"),
    ("'n'", "has no place in a formula"),
    ("n == 1", "has no place"),
    ("sin(n)", "unknown name 'sin'"),
    ("nk", "for a product write n*k"),
    ("", "empty"),
    ("n +", "cannot read 'n +' as a formula"),
    ("floor(n", "parentheses"),
])
def test_parse_formula_refuses_everything_else(text, message):
    with pytest.raises(ValueError) as info:
        parse_formula(text, ["n", "k"])
    assert message in str(info.value)


def test_parse_formula_extra_functions():
    q = sp.Symbol("q")
    assert parse_formula("tanh(q)", ["q"], ["tanh"]) == sp.tanh(q)
    with pytest.raises(ValueError, match="functions must be one of"):
        parse_formula("q", ["q"], ["eval"])


# --- tensors --------------------------------------------------------------------------------------

L = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]])
J = torch.tensor([[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("answer", [L, L.numpy(), L.tolist(), sp.Matrix(L.tolist()),
                                    L.double(), L.int()])
def test_tensor_forms(answer):
    assert compare_tensor(answer, L).ok


def test_tensor_first_differing_entry_and_hints():
    bad = L.clone()
    bad[1, 2], bad[2, 0] = 5.0, 7.0
    v = compare_tensor(bad, L)
    assert v.case == (1, 2) and v.got == 5.0 and v.expected == -1.0
    assert str(v) == "wrong: entry [1, 2] is 5 in your answer, the answer is -1"
    v = compare_tensor(J.T, J)
    assert v.case == (0, 1) and "transpose" in v.message
    v = compare_tensor(-J, J)
    assert "wrong sign" in v.message
    assert compare_tensor(J + 1e-9, J).ok and compare_tensor(J + 0.01, J, atol=0.1).ok


def test_tensor_shape_first():
    v = compare_tensor(torch.zeros(3, 2), torch.zeros(2, 3))
    assert v.status == "malformed"
    assert v.message == "expected a 2 × 3 matrix, got a 3 × 2 matrix (the transposed shape)"
    assert compare_tensor([[1], [2]], [1, 2]).ok                  # a column for a vector
    v = compare_tensor([1, 2, 3], [1, 2])
    assert v.status == "malformed" and "a vector of length 2" in v.message


@pytest.mark.parametrize("answer, message", [
    ([[1, 2], [3]], "not a rectangular array"),
    (torch.zeros(2, 2, dtype=torch.complex64), "complex"),
    (sp.Matrix([[sp.Symbol("x"), 0], [0, 0]]), "contains the symbol(s) x"),
    ("J", "a str, not an array"),
])
def test_tensor_malformed(answer, message):
    v = compare_tensor(answer, J)
    assert v.status == "malformed" and message in v.message


# --- networks -----------------------------------------------------------------------------

def _ref():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def test_module_right_whatever_the_names_and_activations():
    class Mine(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.tanh(self.conv(x)), 2)
            return self.fc(x.flatten(1))

    v = compare_module(Mine(), _ref(), (1, 8, 8))
    assert v.ok, v


def test_module_first_differing_layer():
    mine = _ref()
    mine[0] = nn.Conv2d(1, 4, 3, padding=1, bias=False)
    v = compare_module(mine, _ref(), (1, 8, 8))
    assert v.case == "layer 1 (Conv2d)"
    assert "36 parameters in yours, 40 in the reference" in v.message
    mine = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2, 1), nn.Flatten(),
                         nn.Linear(196, 10))
    v = compare_module(mine, _ref(), (1, 8, 8))
    assert v.case == "layer 2 (MaxPool2d)" and v.got == ((4, 7, 7), 0)
    assert v.expected == ((4, 4, 4), 0)


def test_module_missing_extra_and_failing_layers():
    v = compare_module(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2),
                                     nn.Flatten()), _ref(), (1, 8, 8))
    assert "stops after 3 layers" in v.message and "Linear" in v.message
    v = compare_module(nn.Sequential(*_ref(), nn.Linear(10, 2)), _ref(), (1, 8, 8))
    assert "1 more layer(s)" in v.message
    # a network that fails: the first layer that differs before the failure, then the failure
    broken = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(64, 10))
    v = compare_module(broken, _ref(), (1, 8, 8))
    assert v.status == "wrong" and v.case == "layer 1 (Conv2d)"
    assert "4×6×6 in yours, 4×8×8 in the reference" in v.message
    assert "then your network fails on an input of shape (1, 8, 8)" in v.message
    broken = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(65, 10))
    v = compare_module(broken, _ref(), (1, 8, 8))
    assert v.status == "wrong" and v.message.startswith("your network fails on an input")
    assert "in_features=65" in v.message


def test_module_malformed_and_bad_reference():
    assert compare_module(3, _ref(), (1, 8, 8)).status == "malformed"
    with pytest.raises(TypeError, match="reference"):
        compare_module(_ref(), "net", (1, 8, 8))


# --- verdicts, check and grade ------------------------------------------------------------

def test_verdict_text_and_html():
    v = Verdict("wrong", "at n=5 your formula gives 2.5, the answer is 2")
    assert str(v) == repr(v) == "wrong: at n=5 your formula gives 2.5, the answer is 2"
    assert not v.ok and "#D55E00" in v._repr_html_() and "2.5" in v._repr_html_()
    right = Verdict("right", "all 4 entries agree")
    assert str(right) == "right" and right.ok and "all 4 entries" in right._repr_html_()
    assert set(C.STATUSES) == {"right", "wrong", "malformed", "unanswered"}


def test_check_rejects_unknown_ids_with_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'conv-out-dilated'"):
        check("conv-out-dilate", "n")
    with pytest.raises(TypeError, match="exercise must be an exercise id"):
        check(3, "n")


def test_grade_a_small_class():
    answers = [
        ("ana", "conv-out-dilated", "floor((n + 2*p - d*(k - 1) - 1)/s) + 1"),
        ("ana", "params-cifar-total", 1_191_170),
        ("ben", "conv-out-dilated", "(n - k + 2*p)/s + 1"),
        ("ben", "params-cifar-total", "1,190,000"),
        {"student": "cy", "exercise": "graph-laplacian", "answer": [[1, -1], [-1, 1]]},
        ("cy", "params-cifar-total", ...),
    ]
    grades = grade(answers)
    assert [r.status for r in grades] == ["right", "right", "wrong", "wrong", "malformed",
                                          "unanswered"]
    assert grades.scores() == {"ana": (2, 2), "ben": (0, 2), "cy": (0, 2)}
    text = str(grades)
    assert text.splitlines()[0].split() == ["student", "exercise", "verdict", "details"]
    assert "<table" in grades._repr_html_() and "| ben |" in grades.to_table("markdown")
    with pytest.raises(ValueError, match="row 1: exercise must be the id"):
        grade([("ana", "conv-out-dilated", "n"), ("ben", "no-such-exercise", 3)])
    with pytest.raises(ValueError, match="row 0 must be"):
        grade([("ana", "conv-out-dilated")])
    with pytest.raises(TypeError, match="answers must be"):
        grade("ana")
