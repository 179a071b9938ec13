"""dlmath.softmax against torch (float64) and autograd, and the Jacobian's properties."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from dlmath import softmax as sm

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: one thread avoids thread-pool contention on a shared CPU
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _logits(seed: int, shape: tuple[int, ...], scale: float, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)


seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(1, 9)
batches = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@given(seed=seeds, n=sizes, batch=batches, scale=st.floats(1e-3, 1e3),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_matches_torch(seed, n, batch, scale, dtype):
    z = _logits(seed, batch + (n,), scale, dtype)
    tol = TOL[dtype]
    torch.testing.assert_close(sm.softmax(z), torch.softmax(z, -1), rtol=tol, atol=tol)
    torch.testing.assert_close(sm.log_softmax(z), torch.log_softmax(z, -1), rtol=tol, atol=tol * scale)
    torch.testing.assert_close(sm.logsumexp(z), torch.logsumexp(z, -1), rtol=tol, atol=tol * scale)


@given(seed=seeds, shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       data=st.data())
def test_other_dims_and_keepdim(seed, shape, data):
    z = _logits(seed, shape, 3.0)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    torch.testing.assert_close(sm.softmax(z, dim=dim), torch.softmax(z, dim))
    torch.testing.assert_close(sm.log_softmax(z, dim=dim), torch.log_softmax(z, dim))
    torch.testing.assert_close(sm.logsumexp(z, dim=dim, keepdim=True), torch.logsumexp(z, dim, keepdim=True))


@given(seed=seeds, n=sizes, shift=st.floats(-1e4, 1e4), scale=st.floats(1e-2, 30))
def test_softmax_is_a_distribution_and_shift_invariant(seed, n, shift, scale):
    z = _logits(seed, (n,), scale)
    p = sm.softmax(z)
    assert bool((p >= 0).all())
    assert abs(float(p.sum()) - 1) < 1e-12
    torch.testing.assert_close(sm.softmax(z + shift), p, rtol=1e-9, atol=1e-12)
    assert abs(float(sm.logsumexp(z + shift) - sm.logsumexp(z)) - shift) < 1e-9 * max(1.0, abs(shift))


def test_overflow_and_underflow_are_avoided():
    z = torch.tensor([1000.0, 999.0, -5.0], dtype=torch.float64)
    assert torch.isinf(torch.log(torch.exp(z).sum()))          # the naive formula overflows
    expected = 1000 + np.log1p(np.exp(-1.0) + np.exp(-1005.0))
    assert abs(float(sm.logsumexp(z)) - expected) < 1e-12
    assert torch.isfinite(sm.softmax(z)).all()
    z32 = torch.tensor([100.0, 0.0], dtype=torch.float32)       # e^100 overflows float32
    assert torch.isinf(torch.exp(z32).sum())
    assert abs(float(sm.logsumexp(z32)) - 100.0) < 1e-5
    low = torch.tensor([0.0, -800.0], dtype=torch.float64)      # e^-800 underflows to 0
    assert float(sm.log_softmax(low)[1]) == pytest.approx(-800.0, abs=1e-12)
    assert float(sm.logsumexp(torch.tensor([-1000.0, -1000.0], dtype=torch.float64))) == \
        pytest.approx(-1000 + np.log(2), abs=1e-12)


def test_infinite_logits_follow_torch():
    inf = float("inf")
    for row in ([-inf, -inf], [inf, 1.0], [-inf, 0.0]):
        z = torch.tensor(row, dtype=torch.float64)
        torch.testing.assert_close(sm.logsumexp(z), torch.logsumexp(z, -1), equal_nan=True)


def _autograd_jacobian(z: torch.Tensor) -> torch.Tensor:
    flat = z.reshape(-1, z.shape[-1])
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: torch.softmax(v, -1), row) for row in flat])
    return J.reshape(z.shape + (z.shape[-1],))


@given(seed=seeds, n=sizes, batch=batches, scale=st.floats(1e-2, 20))
def test_jacobian_matches_autograd(seed, n, batch, scale):
    z = _logits(seed, batch + (n,), scale)
    torch.testing.assert_close(sm.softmax_jacobian(z), _autograd_jacobian(z), rtol=1e-10, atol=1e-12)


@given(seed=seeds, n=st.integers(2, 9), scale=st.floats(1e-2, 8), vseed=seeds)
def test_jacobian_psd_rank_and_null_space(seed, n, scale, vseed):
    z = _logits(seed, (n,), scale)
    J = sm.softmax_jacobian(z)
    p = torch.softmax(z, -1)
    assume(float(p.min()) > 1e-8)  # otherwise the rank is n - 1 only up to rounding
    assert torch.equal(J, J.T)
    eig = torch.linalg.eigvalsh(J)
    assert float(eig[0]) > -1e-15                    # positive semidefinite
    assert abs(float(eig[0])) < 1e-15                # singular ...
    assert float(eig[1]) > 1e-10                     # ... of rank exactly n - 1
    assert float(eig[-1]) <= 0.5 + 1e-12             # largest eigenvalue at most 1/2
    assert float((J @ torch.ones(n, dtype=J.dtype)).abs().max()) < 1e-15   # J 1 = 0
    assert sm.is_psd(J)
    # the quadratic form is the variance of v under p, computed as E[(v - E v)^2]
    v = _logits(vseed, (n,), 1.0)
    mean = float((p * v).sum())
    variance = sum(float(p[i]) * (float(v[i]) - mean) ** 2 for i in range(n))
    assert float(v @ J @ v) == pytest.approx(variance, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_symbolic_jacobian_matches_autograd(n):
    Jz, z = sm.softmax_jacobian_sym(n, in_terms_of="z")
    Jp, p = sm.softmax_jacobian_sym(n)
    zval = _logits(n, (n,), 2.0)
    pval = torch.softmax(zval, -1)
    oracle = _autograd_jacobian(zval).numpy()
    num_z = np.array(Jz.subs(dict(zip(z, zval.tolist()))).evalf(30), dtype=float)
    num_p = np.array(Jp.subs(dict(zip(p, pval.tolist()))).evalf(30), dtype=float)
    np.testing.assert_allclose(num_z, oracle, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(num_p, oracle, rtol=1e-12, atol=1e-14)
    assert Jp.free_symbols <= set(p)


def test_symbolic_jacobian_is_derived_not_typed():
    # the z-form is literally the derivative of the symbolic softmax
    probs, z = sm.softmax_sym(3)
    Jz, z2 = sm.softmax_jacobian_sym(3, in_terms_of="z")
    assert z == z2
    for i in range(3):
        for j in range(3):
            assert sp.simplify(Jz[i, j] - sp.diff(probs[i], z[j])) == 0
    # exact PSD of the p-form at rational probabilities, and singular
    Jp, p = sm.softmax_jacobian_sym(3)
    Jr = Jp.subs({p[0]: sp.Rational(1, 2), p[1]: sp.Rational(1, 3), p[2]: sp.Rational(1, 6)})
    assert sm.is_psd(Jr) is True
    assert Jr.det() == 0 and Jr.rank() == 2


@given(seed=seeds, n=st.integers(2, 8), batch=st.integers(1, 4), scale=st.floats(1e-2, 50),
       data=st.data())
def test_cross_entropy_and_gradient_match_torch(seed, n, batch, scale, data):
    z = _logits(seed, (batch, n), scale).requires_grad_()
    y = torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=batch, max_size=batch)))
    ref = F.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(sm.cross_entropy(z.detach(), y), ref.detach(), rtol=1e-12, atol=1e-10)
    (grad,) = torch.autograd.grad(ref.sum(), z)
    torch.testing.assert_close(sm.cross_entropy_grad(z.detach(), y), grad, rtol=1e-10, atol=1e-12)
    # soft targets: torch accepts class probabilities too
    t = torch.softmax(_logits(seed + 1, (batch, n), 1.0), -1)
    ref = F.cross_entropy(z, t, reduction="none")
    torch.testing.assert_close(sm.cross_entropy(z.detach(), t), ref.detach(), rtol=1e-12, atol=1e-10)
    (grad,) = torch.autograd.grad(ref.sum(), z)
    torch.testing.assert_close(sm.cross_entropy_grad(z.detach(), t), grad, rtol=1e-10, atol=1e-12)


@given(seed=seeds, n=st.integers(1, 6), shift=st.floats(-3, 3))
def test_is_psd_numeric(seed, n, shift):
    A = _logits(seed, (n, n), 1.0)
    S = A @ A.T                                      # PSD by construction
    lam = float(np.linalg.eigvalsh(S.numpy())[0])    # numpy as the eigenvalue oracle
    assume(abs(lam + shift) > 1e-6)
    M = S + shift * torch.eye(n, dtype=S.dtype)
    assert sm.is_psd(M) is (lam + shift > 0)
    assert sm.is_psd(M.numpy()) is (lam + shift > 0)


def test_is_psd_batched_and_exact():
    M = torch.stack([torch.eye(2), -torch.eye(2), torch.zeros(2, 2)])
    assert sm.is_psd(M).tolist() == [True, False, True]
    assert sm.is_psd(sp.Matrix([[1, 2], [2, 1]])) is False
    assert sm.is_psd(sp.Matrix([[2, 1], [1, 2]])) is True


@pytest.mark.parametrize("call, error, match", [
    (lambda: sm.softmax(torch.tensor([1, 2])), TypeError, "floating-point"),
    (lambda: sm.softmax(torch.zeros(3), dim=1), ValueError, r"dim must be in \[-1, 0\], got 1"),
    (lambda: sm.softmax(torch.zeros(3), dim=0.0), TypeError, "dim must be an int"),
    (lambda: sm.logsumexp(torch.zeros(2, 0)), ValueError, "at least one entry"),
    (lambda: sm.softmax("abc"), TypeError, "z must be a tensor"),
    (lambda: sm.softmax_sym(0), ValueError, "n must be >= 1"),
    (lambda: sm.softmax_jacobian_sym(2, in_terms_of="q"), ValueError, "in_terms_of"),
    (lambda: sm.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3])), ValueError, r"in \[0, 2\]"),
    (lambda: sm.cross_entropy(torch.zeros(2, 3), torch.tensor([0])), ValueError, "must have shape"),
    (lambda: sm.cross_entropy(torch.zeros(2, 3), torch.zeros(2, 2)), ValueError, "shape of z"),
    (lambda: sm.cross_entropy(torch.zeros(2, 3), [0, 1]), TypeError, "y must be a tensor"),
    (lambda: sm.is_psd(torch.zeros(2, 3)), ValueError, "square"),
    (lambda: sm.is_psd(torch.tensor([[0.0, 1.0], [0.0, 0.0]])), ValueError, "symmetric"),
    (lambda: sm.is_psd(torch.eye(2), tol=-1), ValueError, "tol must be"),
    (lambda: sm.is_psd([[1.0]]), TypeError, "matrix must be"),
    (lambda: sm.is_psd(sp.Matrix([[1, 2], [3, 4]])), ValueError, "symmetric"),
    (lambda: sm.is_psd(sp.Matrix([[sp.Symbol("a"), 0], [0, 1]])), ValueError, "cannot decide"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("value", ["False", 0, None])
def test_keepdim_must_be_bool(value):
    with pytest.raises(TypeError, match="keepdim must be True or False"):
        sm.logsumexp(torch.zeros(2, 3), keepdim=value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    z = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], dtype=dtype)
    y = torch.tensor([2, 0])
    outs = [sm.softmax(z), sm.log_softmax(z), sm.logsumexp(z), sm.softmax_jacobian(z),
            sm.cross_entropy(z, y), sm.cross_entropy_grad(z, y),
            sm.cross_entropy(z, sm.softmax(z))]
    assert [out.dtype for out in outs] == [dtype] * len(outs)
    assert sm.softmax([[1.0, 2.0]]).dtype == torch.float64        # lists are read as float64
