"""dlmath._validate: the one module of argument checks (messages name the parameter)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from dlmath import _validate as v


@pytest.mark.parametrize("call, expected", [
    (lambda: v.check_int("n", np.int64(3), 1), 3),
    (lambda: v.check_int("n", None, 1, allow_none=True), None),
    (lambda: v.check_int("dim", -2, -2, 1), -2),
    (lambda: v.check_size("d", 4), 4),
    (lambda: v.check_number("lr", np.float32(0.5), positive=True), 0.5),
    (lambda: v.check_number("p", 0.0, interval="[0, 1)"), 0.0),
    (lambda: v.check_number("base", 1e6, interval="(1, inf)"), 1e6),
    (lambda: v.check_bool("flag", np.bool_(True)), True),
    (lambda: v.check_choice("mode", None, (None, "sym")), None),
    (lambda: v.int_tuple("k", [3, 5], 2, 1), (3, 5)),
    (lambda: v.int_shape("s", torch.Size([1, 8, 8])), (1, 8, 8)),
    (lambda: v.int_sequence("w", (4, 8)), (4, 8)),
    (lambda: v.check_fractions("f", (1, 0, 0), ("a", "b", "c")), (1.0, 0.0, 0.0)),
])
def test_accepts(call, expected):
    out = call()
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("call, error, match", [
    (lambda: v.check_int("n", True), TypeError, "n must be an int, got bool True"),
    (lambda: v.check_int("n", 2.0), TypeError, "n must be an int, got float"),
    (lambda: v.check_int("n", None), TypeError, "n must be an int, got NoneType"),
    (lambda: v.check_int("n", "3", allow_none=True), TypeError, "n must be an int or None"),
    (lambda: v.check_int("n", 0, 1), ValueError, "n must be >= 1, got 0"),
    (lambda: v.check_int("n", 9, maximum=8), ValueError, "n must be <= 8, got 9"),
    (lambda: v.check_int("dim", 1, -1, 0), ValueError, r"dim must be in \[-1, 0\], got 1"),
    (lambda: v.check_size("d", sp.Rational(1, 2)), ValueError, "d must be an integer"),
    (lambda: v.check_size("d", sp.Symbol("d", negative=True)), ValueError, "d must be >= 1"),
    (lambda: v.check_size("d", 2.5), TypeError, "d must be an int or a sympy expression"),
    (lambda: v.check_number("lr", "0.1"), TypeError, "lr must be a number, got str"),
    (lambda: v.check_number("lr", False), TypeError, "lr must be a number, got bool"),
    (lambda: v.check_number("lr", float("inf")), ValueError, "lr must be a finite number"),
    (lambda: v.check_number("lr", 0.0, positive=True), ValueError, "lr must be > 0"),
    (lambda: v.check_number("tol", -1.0, nonnegative=True), ValueError, "tol must be >= 0"),
    (lambda: v.check_number("p", 1.0, interval="[0, 1)"), ValueError, r"p must be in \[0, 1\)"),
    (lambda: v.check_number("p", 0.0, interval="(0, 1]"), ValueError, r"p must be in \(0, 1\]"),
    (lambda: v.check_bool("directed", "False"), TypeError, "directed must be True or False"),
    (lambda: v.check_bool("directed", 0), TypeError, "directed must be True or False, got int"),
    (lambda: v.check_choice("mode", True, (1, 2)), ValueError, "mode must be one of 1, 2"),
    (lambda: v.check_choice("mode", [], ("a",)), ValueError, "mode must be one of 'a'"),
    (lambda: v.check_tensor("x", [1.0]), TypeError, "x must be a torch.Tensor, got list"),
    (lambda: v.check_tensor("x", torch.zeros(3), 2), ValueError, "x must have at least 2"),
    (lambda: v.check_tensor("x", torch.zeros(3, 3, dtype=torch.long), 2, floating=True),
     TypeError, "x must have a floating-point dtype"),
    (lambda: v.check_callable("f", 3), TypeError, "f must be callable, got int"),
    (lambda: v.int_tuple("k", (1, 2, 3), 2), ValueError, "k must be an int or a sequence of 2"),
    (lambda: v.int_tuple("k", (1, 0), 2, 1), ValueError, r"k\[1\] must be >= 1"),
    (lambda: v.int_shape("s", (8, 8)), ValueError, r"s must be \(C, H, W\), got \(8, 8\)"),
    (lambda: v.int_shape("s", "abc"), ValueError, r"s must be \(C, H, W\)"),
    (lambda: v.int_sequence("w", []), ValueError, "w must be a sequence of at least 1 int"),
    (lambda: v.int_sequence("w", 4), ValueError, "w must be a sequence"),
    (lambda: v.check_fractions("f", (0.5, 0.5), ("a", "b", "c")), ValueError,
     r"f must hold 3 numbers \(a, b, c\)"),
    (lambda: v.check_fractions("f", (0.5, 0.6)), ValueError, "f must be non-negative and sum to 1"),
    (lambda: v.check_fractions("f", (1.0, 0.0), positive=True), ValueError, "f must be positive"),
])
def test_rejects_naming_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_one_torch_thread_restores_the_setting_also_as_a_decorator():
    before = torch.get_num_threads()

    @v.one_torch_thread()
    def inside() -> int:
        return torch.get_num_threads()

    assert inside() == 1 and inside() == 1            # reusable
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), v.one_torch_thread():
        raise RuntimeError
    assert torch.get_num_threads() == before
