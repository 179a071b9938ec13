"""Tests of dlmath.hopfield against autograd, torch.func.hessian, SymPy and brute force."""

from __future__ import annotations

import functools
import math

import mpmath
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlmath import hopfield as hf

# torch.func.hessian scripts a decomposition internally and warns about torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

F64 = torch.float64
TOL = dict(rtol=1e-9, atol=1e-10)


def _instance(seed: int, N: int, D: int, batch: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=F64)
    q = torch.randn(*batch, D, generator=g, dtype=F64)
    return X, q


instances = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 5))
betas = st.floats(0.05, 8.0)


# --- energy -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _energy_sym_fn(N: int, D: int):
    E, (Xs, qs, b) = hf.energy_sym(N, D)
    return sp.lambdify((list(Xs), list(qs), b), E, modules="mpmath")


@given(instances, betas)
def test_energy_matches_sympy(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D)
    with mpmath.workdps(30):
        expected = float(_energy_sym_fn(N, D)(X.flatten().tolist(), q.tolist(), beta))
    assert math.isclose(float(hf.energy(X, q, beta)), expected, rel_tol=1e-10, abs_tol=1e-10)


@given(instances, betas)
def test_energy_between_zero_and_two_m_squared_on_the_ball(inst, beta):
    # 0 <= E everywhere and E <= 2 M^2 for ||q|| <= M (Ramsauer et al., Lemma A1)
    seed, N, D = inst
    X, q = _instance(seed, N, D, batch=(8,))
    M = torch.linalg.vector_norm(X, dim=1).max()
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True) * M * torch.rand(8, 1, dtype=F64)
    E = hf.energy(X, q, beta)
    assert (E >= -1e-12).all()
    assert (E <= 2 * M**2 + 1e-12).all()
    assert (hf.energy(X, 3 * q, beta) >= -1e-12).all()


@given(instances, betas)
def test_split_sums_to_energy_and_has_the_right_curvature(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D)
    E1, E2 = hf.energy_split(X, q, beta)
    torch.testing.assert_close(E1 + E2, hf.energy(X, q, beta), **TOL)
    H1 = torch.func.hessian(lambda v: hf.energy_split(X, v, beta)[0])(q)
    H2 = torch.func.hessian(lambda v: hf.energy_split(X, v, beta)[1])(q)
    torch.testing.assert_close(H1, torch.eye(D, dtype=F64), **TOL)        # E1 convex
    assert torch.linalg.eigvalsh(H2).max() <= 1e-10                       # E2 concave


@given(instances, betas)
def test_gradient_matches_autograd(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D, batch=(3,))
    q = q.requires_grad_()
    (g,) = torch.autograd.grad(hf.energy(X, q, beta).sum(), q)
    torch.testing.assert_close(hf.energy_grad(X, q.detach(), beta), g, **TOL)


@given(instances, betas)
def test_hessian_matches_torch_func_hessian(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D, batch=(2,))
    H = hf.energy_hessian(X, q, beta)
    for b in range(2):
        expected = torch.func.hessian(lambda v: hf.energy(X, v, beta))(q[b])
        torch.testing.assert_close(H[b], expected, **TOL)


def test_hessian_matches_sympy():
    E, (Xs, qs, b) = hf.energy_sym(3, 2)
    H_sym = sp.hessian(E, list(qs))
    X, q = _instance(7, 3, 2)
    subs = {Xs[i, j]: float(X[i, j]) for i in range(3) for j in range(2)}
    subs.update({qs[j]: float(q[j]) for j in range(2)} | {b: 1.7})
    H = torch.tensor([[float(H_sym[i, j].subs(subs)) for j in range(2)] for i in range(2)], dtype=F64)
    torch.testing.assert_close(hf.energy_hessian(X, q, 1.7), H, **TOL)


def test_energy_sym_concave_part_hessian_is_covariance():
    # -E2 has Hessian beta X^T (diag p - p p^T) X: check symbolically for N = 2, D = 1
    E, (Xs, qs, b) = hf.energy_sym(2, 1)
    lse = sp.log(sp.exp(b * Xs[0, 0] * qs[0]) + sp.exp(b * Xs[1, 0] * qs[0])) / b
    p0 = sp.exp(b * Xs[0, 0] * qs[0]) / (sp.exp(b * Xs[0, 0] * qs[0]) + sp.exp(b * Xs[1, 0] * qs[0]))
    cov = p0 * (1 - p0) * (Xs[0, 0] - Xs[1, 0]) ** 2
    assert sp.simplify(sp.diff(lse, qs[0], 2) - b * cov) == 0
    assert sp.simplify(sp.diff(E, qs[0], 2) - (1 - sp.diff(lse, qs[0], 2))) == 0


# --- update, CCCP, retrieval ------------------------------------------------------------

@given(instances, betas)
def test_update_is_q_minus_gradient_from_autograd(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D)
    q = q.requires_grad_()
    (g,) = torch.autograd.grad(hf.energy(X, q, beta), q)
    torch.testing.assert_close(hf.update(X, q.detach(), beta), q.detach() - g, **TOL)


@given(instances, betas, st.floats(0.1, 3.0))
def test_majorizer_is_tight_upper_bound_minimised_by_update(inst, beta, spread):
    seed, N, D = inst
    X, q_t = _instance(seed, N, D)
    g = torch.Generator().manual_seed(seed + 1)
    q = q_t + spread * torch.randn(16, D, generator=g, dtype=F64)
    U = hf.energy_majorizer(X, q, q_t, beta)
    assert (U >= hf.energy(X, q, beta) - 1e-10).all()                          # upper bound
    torch.testing.assert_close(hf.energy_majorizer(X, q_t, q_t, beta), hf.energy(X, q_t, beta), **TOL)
    new = hf.update(X, q_t, beta).requires_grad_()
    (grad,) = torch.autograd.grad(hf.energy_majorizer(X, new, q_t, beta), new)
    assert grad.abs().max() <= 1e-10                                            # stationary ...
    assert (U >= hf.energy_majorizer(X, new.detach(), q_t, beta) - 1e-12).all()  # ... and minimal


@given(instances, st.floats(0.05, 30.0))
def test_energy_never_increases_along_retrieval(inst, beta):
    seed, N, D = inst
    X, q = _instance(seed, N, D, batch=(4,))
    r = hf.retrieve(X, 3 * q, beta, max_steps=20, tol=0.0)
    steps = r.energies.diff(dim=0)
    assert (steps <= 1e-12 * (1 + r.energies[:-1].abs())).all()
    assert r.states.shape == (r.steps + 1, 4, D) and r.energies.shape == (r.steps + 1, 4)


def test_retrieve_converges_to_a_stationary_point():
    X, q = _instance(3, 6, 4, batch=(5,))
    r = hf.retrieve(X, q, 2.0, max_steps=500, tol=1e-13)
    assert r.converged and r.steps < 500
    assert hf.energy_grad(X, r.final, 2.0).abs().max() < 1e-10
    torch.testing.assert_close(r.final, r.states[-1])


@given(instances, st.integers(1, 4))
def test_update_is_attention_with_identity_projections(inst, S):
    # one update of S queries = softmax(Q X^T / sqrt(D)) X, torch's attention as the oracle
    seed, N, D = inst
    X, Q = _instance(seed, N, D, batch=(S,))
    Z = F.scaled_dot_product_attention(Q[None], X[None], X[None])[0]
    torch.testing.assert_close(hf.update(X, Q, 1 / math.sqrt(D)), Z, **TOL)


# --- retrieval theory -------------------------------------------------------------------

@given(st.integers(0, 2**31 - 1), st.integers(2, 7), st.integers(1, 5))
def test_separation_brute_force(seed, N, D):
    X, _ = _instance(seed, N, D)
    expected = [min(float(X[i] @ X[i] - X[i] @ X[j]) for j in range(N) if j != i) for i in range(N)]
    torch.testing.assert_close(hf.separation(X), torch.tensor(expected, dtype=F64), **TOL)


@given(instances, st.floats(0.1, 20.0), st.floats(0.0, 2.0))
def test_retrieval_error_is_accurate_and_below_the_bound(inst, beta, spread):
    seed, N, D = inst
    assume(N >= 2)
    X, noise = _instance(seed, N, D)
    i = seed % N
    q = X[i] + spread * noise
    err = hf.retrieval_error(X, q, beta, i)
    direct = torch.linalg.vector_norm(hf.update(X, q, beta) - X[i])
    if direct > 1e-6:
        torch.testing.assert_close(err, direct, rtol=1e-8, atol=0.0)
    assert err <= hf.retrieval_error_bound(X, q, beta, i) * (1 + 1e-9)


def _separated_patterns(seed: int, N: int, D: int) -> tuple[torch.Tensor, float]:
    """Unit patterns and a beta at which every one is well separated."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=F64)
    X = X / torch.linalg.vector_norm(X, dim=1, keepdim=True)
    delta = float(hf.separation(X).min())
    assume(delta > 0.2)
    for beta in torch.logspace(-1, 4, 400, dtype=F64).tolist():
        # the smallest beta with 2 (N-1) N beta M^2 >= 1 (where the condition has teeth)
        # at which every pattern is well separated
        if 2 * (N - 1) * N * beta >= 1 and delta >= hf.separation_threshold(N, 1.0, beta):
            return X, beta
    assume(False)


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(6, 12))
def test_theorem_5_bounds_hold_where_its_conditions_hold(seed, N, D):
    X, beta = _separated_patterns(seed, N, D)
    assert (hf.separation(X) >= hf.separation_threshold(N, 1.0, beta)).all()
    g = torch.Generator().manual_seed(seed + 2)
    radius = 1 / (beta * N * 1.0)                                  # S_i
    for i in range(N):
        x_star = hf.retrieve(X, X[i], beta, max_steps=200, tol=1e-15).final
        assert torch.linalg.vector_norm(x_star - X[i]) <= radius    # the fixed point lies in S_i
        u = torch.randn(20, D, generator=g, dtype=F64)
        u = u / torch.linalg.vector_norm(u, dim=1, keepdim=True) * radius * torch.rand(20, 1, generator=g, dtype=F64)
        q = X[i] + u                                                # queries in S_i
        assert (torch.linalg.vector_norm(hf.update(X, q, beta) - X[i], dim=1) <= radius * (1 + 1e-12)).all()
        err = hf.retrieval_error(X, q, beta, i)
        assert (err <= hf.retrieval_error_bound(X, q, beta, i, fixed_point=x_star)).all()
        # second form: ||x_i - x_i*|| <= 2 e (N-1) M exp(-beta Delta_i)
        delta_i = hf.separation(X)[i]
        assert hf.retrieval_error(X, x_star, beta, i) <= 2 * math.e * (N - 1) * torch.exp(-beta * delta_i)


# --- input validation -------------------------------------------------------------------

def test_bad_input_is_rejected_with_clear_messages():
    X = torch.eye(3, dtype=F64)
    with pytest.raises(ValueError, match="beta must be > 0"):
        hf.energy(X, X[0], 0.0)
    with pytest.raises(TypeError, match="beta must be a number"):
        hf.update(X, X[0], "1")
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., D\) with D = 3"):
        hf.energy_grad(X, torch.zeros(4, dtype=F64), 1.0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, D\)"):
        hf.energy(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 1.0)
    with pytest.raises(TypeError, match="floating dtype"):
        hf.energy(torch.eye(3, dtype=torch.int64), X[0], 1.0)
    with pytest.raises(ValueError, match="at least 2 patterns"):
        hf.separation(X[:1])
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\], got 3"):
        hf.retrieval_error(X, X[0], 1.0, 3)
    with pytest.raises(ValueError, match="max_steps"):
        hf.retrieve(X, X[0], 1.0, max_steps=0)
    with pytest.raises(ValueError, match="N must be >= 2"):
        hf.separation_threshold(1, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"N must be in \[1, 10\]"):
        hf.energy_sym(0, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], dtype=dtype)
    q = torch.tensor([0.8, 0.1], dtype=dtype)
    outs = [*hf.energy_split(X, q, 2.0), hf.energy(X, q, 2.0), hf.energy_grad(X, q, 2.0),
            hf.energy_hessian(X, q, 2.0), hf.energy_majorizer(X, q, q, 2.0), hf.update(X, q, 2.0),
            hf.retrieve(X, q, 2.0).states, hf.separation(X), hf.retrieval_error(X, q, 2.0, 0),
            hf.retrieval_error_bound(X, q, 2.0, 0, fixed_point=q)]
    assert [out.dtype for out in outs] == [dtype] * len(outs)
