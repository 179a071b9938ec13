"""Tests of dlmath.transformer_cost against independent oracles.

Oracles: ``torch.utils.flop_counter.FlopCounterMode`` on torch layers (FLOPs), the sizes of
tensors whose allocation is known (memory), Monte Carlo with NumPy's generator (variance),
``torch.autograd`` (Jacobians), a complex-number implementation of rotary embeddings, and
brute-force loops (Toeplitz test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlmath import transformer_cost as tc
from dlmath.attention import scaled_dot_product_attention, sinusoidal_positional_encoding


def _flops(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops()


# --------------------------------------------------------------------------------------
# FLOP counts
# --------------------------------------------------------------------------------------

@given(T=st.integers(1, 12), S=st.integers(1, 12), head_dim=st.integers(1, 6), h=st.integers(1, 4))
def test_attention_flops_matches_flop_counter_on_torch_layer(T, S, head_dim, h):
    d = head_dim * h
    mha = nn.MultiheadAttention(d, h, batch_first=True)
    x, y = torch.randn(1, T, d), torch.randn(1, S, d)
    # need_weights=True takes the explicit bmm path, which the flop counter sees on the CPU
    counted = _flops(lambda: mha(x, y, y, need_weights=True))
    assert tc.attention_flops(T, d, num_heads=h, kv_len=S).total == counted


def test_attention_flops_terms_and_heads():
    one = tc.attention_flops(64, 128, num_heads=1)
    eight = tc.attention_flops(64, 128, num_heads=8)
    assert one[:4] == eight[:4]                     # FLOPs do not depend on the heads
    assert eight.weights == 8 * one.weights == 8 * 64 * 64
    assert one.total == one.projections + one.scores + one.mixing


def test_attention_flops_symbolic_agrees_with_ints():
    T, d, S = sp.symbols("T d S", positive=True, integer=True)
    sym = tc.attention_flops(T, d, kv_len=S)
    for values in [(3, 8, 5), (10, 16, 10)]:
        num = tc.attention_flops(values[0], values[1], kv_len=values[2])
        subs = dict(zip((T, d, S), values))
        assert [int(e.subs(subs)) for e in sym] == list(num)


@given(T=st.integers(1, 10), d=st.integers(1, 12), f=st.integers(1, 24))
def test_mlp_flops_matches_flop_counter(T, d, f):
    mlp = nn.Sequential(nn.Linear(d, f), nn.GELU(), nn.Linear(f, d))
    assert tc.mlp_flops(T, d, f) == _flops(mlp, torch.randn(T, d))


@pytest.mark.parametrize("args, err", [((0, 8), ValueError), ((4, 6, 4), ValueError),
                                       ((4.0, 8), TypeError), ((4, 8, 0), ValueError),
                                       ((True, 8), TypeError)])
def test_attention_flops_rejects_bad_input(args, err):
    with pytest.raises(err):
        tc.attention_flops(*args)


def test_mlp_flops_rejects_bad_input():
    with pytest.raises(ValueError, match="d_hidden"):
        tc.mlp_flops(2, 3, 0)
    with pytest.raises(TypeError, match="seq_len"):
        tc.mlp_flops("2", 3, 4)


# --------------------------------------------------------------------------------------
# Time and memory
# --------------------------------------------------------------------------------------

def test_time_call_runs_warmup_plus_repeats():
    calls = []
    t = tc.time_call(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and t >= 0
    with pytest.raises(ValueError, match="repeats"):
        tc.time_call(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="fn"):
        tc.time_call(3)


@pytest.mark.parametrize("shape", [(64, 32), (128, 100)])
def test_peak_allocated_bytes_of_known_allocations(shape):
    x = torch.ones(*shape)                          # float32: 4 bytes an entry
    size = x.numel() * 4
    # one output
    assert tc.peak_allocated_bytes(torch.neg, x) == size
    # a and b are alive together with a + b, then freed: three buffers at the peak
    assert tc.peak_allocated_bytes(lambda z: (z * 2) + (z * 3), x) == 3 * size
    # a temporary freed before the next one is made: one buffer at a time
    def sequential(z):
        for _ in range(3):
            (z * 2).sum()
    assert size <= tc.peak_allocated_bytes(sequential, x) < 2 * size


def test_attention_cost_vs_length_rows():
    rows = tc.attention_cost_vs_length(scaled_dot_product_attention, [8, 16, 32], d_k=4,
                                       batch=2, heads=3, repeats=1)
    assert [r["length"] for r in rows] == [8, 16, 32]
    for r in rows:
        assert r["score_bytes"] == 2 * 3 * r["length"] ** 2 * 4
        # the plain formula materialises the scores at least once
        assert r["peak_bytes"] >= r["score_bytes"]
        assert r["seconds"] > 0
    with pytest.raises(ValueError, match="lengths"):
        tc.attention_cost_vs_length(F.scaled_dot_product_attention, [])
    with pytest.raises(ValueError, match="lengths"):
        tc.attention_cost_vs_length(F.scaled_dot_product_attention, [4, 0])


def test_fused_attention_holds_less_than_the_score_matrix():
    # The fused CPU kernel keeps small working buffers per thread (about 2 MB with 16
    # threads); at T = 2048 the 16 MB score matrix dwarfs them on any machine.
    T = 2048
    rows = tc.attention_cost_vs_length(F.scaled_dot_product_attention, [T], d_k=16, repeats=1)
    plain = tc.attention_cost_vs_length(scaled_dot_product_attention, [T], d_k=16, repeats=1)
    assert rows[0]["peak_bytes"] < rows[0]["score_bytes"] <= plain[0]["peak_bytes"]


@given(p=st.floats(-3, 3), c=st.floats(0.1, 10), n=st.integers(2, 8))
def test_loglog_slope_of_power_laws(p, c, n):
    x = np.geomspace(1, 100, n)
    assert tc.loglog_slope(x, c * x ** p) == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("x, y", [([1], [1]), ([1, 2], [1, 2, 3]), ([1, 2], [1, 0]), ([0, 1], [1, 2])])
def test_loglog_slope_rejects_bad_input(x, y):
    with pytest.raises(ValueError):
        tc.loglog_slope(x, y)


# --------------------------------------------------------------------------------------
# Dot products and the softmax
# --------------------------------------------------------------------------------------

def test_dot_product_variance_sym_against_monte_carlo():
    var, (d, mq, mk, sq, sk) = tc.dot_product_variance_sym()
    rng = np.random.default_rng(1)
    for dim, m_q, m_k, s_q, s_k in [(8, 0.0, 0.0, 1.0, 1.0), (5, 0.5, -1.0, 2.0, 0.5),
                                    (3, 1.0, 1.0, 1.0, 1.0)]:
        q = rng.normal(m_q, s_q, size=(100_000, dim))
        k = rng.normal(m_k, s_k, size=(100_000, dim))
        sample = (q * k).sum(1).var()
        exact = float(var.subs({d: dim, mq: m_q, mk: m_k, sq: s_q, sk: s_k}))
        assert sample == pytest.approx(exact, rel=0.03)


def test_dot_product_variance_sym_zero_mean_is_d_sigma2():
    var, (d, mq, mk, sq, sk) = tc.dot_product_variance_sym()
    assert sp.simplify(var.subs({mq: 0, mk: 0}) - d * sq**2 * sk**2) == 0


@pytest.mark.parametrize("d_k, mean, std", [(1, 0.0, 1.0), (64, 0.0, 1.0), (16, 0.3, 0.7)])
def test_sample_dot_products_moments(d_k, mean, std):
    s = tc.sample_dot_products(d_k, 100_000, mean=mean, std=std, seed=3).numpy()
    # oracle moments by direct computation: E = d m^2, Var = d ((s^2+m^2)^2 - m^4)
    assert s.mean() == pytest.approx(d_k * mean**2, abs=0.05 * math.sqrt(d_k) * std**2 + 1e-3)
    assert s.var() == pytest.approx(d_k * ((std**2 + mean**2) ** 2 - mean**4), rel=0.03)


def test_sample_dot_products_is_seeded_and_checks_input():
    assert torch.equal(tc.sample_dot_products(4, 10, seed=5), tc.sample_dot_products(4, 10, seed=5))
    with pytest.raises(ValueError, match="std"):
        tc.sample_dot_products(4, 10, std=0.0)
    with pytest.raises(ValueError, match="d_k"):
        tc.sample_dot_products(0, 10)


@pytest.mark.parametrize("d_k, n, scaled", [(1, 4, True), (16, 6, False), (16, 6, True), (64, 3, False)])
def test_softmax_saturation_single_draw_against_autograd(d_k, n, scaled):
    stats = tc.softmax_saturation(d_k, n, scaled=scaled, num_samples=1, seed=7)
    # reproduce the draw (same generator, same order), then differentiate with autograd
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(1, d_k, generator=gen, dtype=torch.float64)[0]
    K = torch.randn(1, n, d_k, generator=gen, dtype=torch.float64)[0]
    c = 1 / math.sqrt(d_k) if scaled else 1.0
    s = c * K @ q
    p = torch.softmax(s, -1)
    J_s = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, -1), s)
    J_q = torch.autograd.functional.jacobian(lambda v: torch.softmax(c * K @ v, -1), q)
    assert stats.max_weight == pytest.approx(float(p.max()))
    assert stats.entropy == pytest.approx(float(-(p * p.log()).sum()))
    assert stats.jacobian_norm == pytest.approx(float(torch.linalg.matrix_norm(J_s, 2)), rel=1e-9, abs=1e-15)
    assert stats.query_jacobian_norm == pytest.approx(float(torch.linalg.matrix_norm(J_q, 2)), rel=1e-6, abs=1e-15)


def test_softmax_saturation_trends():
    n = 16
    small = tc.softmax_saturation(1, n, num_samples=128)
    assert small == tc.softmax_saturation(1, n, scaled=False, num_samples=128)
    big = tc.softmax_saturation(512, n, scaled=False, num_samples=128)
    big_scaled = tc.softmax_saturation(512, n, scaled=True, num_samples=128)
    assert big.max_weight > 0.9 and big.entropy < 0.3
    assert big.jacobian_norm < 1e-2 < big_scaled.jacobian_norm <= 0.5   # ||J|| <= 1/2 always
    # scaling makes the statistics independent of d_k (the scores are N(0, 1)-like)
    mid_scaled = tc.softmax_saturation(8, n, scaled=True, num_samples=128)
    assert abs(mid_scaled.max_weight - big_scaled.max_weight) < 0.05


def test_softmax_saturation_rejects_bad_input():
    with pytest.raises(ValueError, match="num_keys"):
        tc.softmax_saturation(4, 1)
    with pytest.raises(TypeError, match="scaled"):
        tc.softmax_saturation(4, 4, scaled=1)


# --------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------

def _rope_complex(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Oracle: pairs as complex numbers, multiplied by exp(i t omega)."""
    d = x.shape[-1]
    z = torch.complex(x[..., 0::2], x[..., 1::2])
    omega = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = z * torch.polar(torch.ones_like(omega), positions[:, None].double() * omega)
    return torch.stack((z.real, z.imag), -1).flatten(-2)


@pytest.fixture
def head():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 8, generator=gen, dtype=torch.float64)
    W_q = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    W_k = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    return x, W_q, W_k


def test_attention_scores_none_and_sinusoidal_against_torch(head):
    x, W_q, W_k = head
    V = torch.randn(7, 3, dtype=torch.float64)
    for enc, inp in [("none", x), ("sinusoidal", x + sinusoidal_positional_encoding(7, 8, dtype=torch.float64))]:
        S = tc.attention_scores(x, W_q, W_k, encoding=enc)
        expected = F.scaled_dot_product_attention(inp @ W_q, inp @ W_k, V)
        torch.testing.assert_close(torch.softmax(S, -1) @ V, expected)


def test_attention_scores_rotary_against_complex_oracle(head):
    x, W_q, W_k = head
    pos = torch.tensor([0, 3, 1, 9, 4, 4, 20])
    S = tc.attention_scores(x, W_q, W_k, encoding="rotary", positions=pos, base=50.0)
    q, k = _rope_complex(x @ W_q, pos, 50.0), _rope_complex(x @ W_k, pos, 50.0)
    torch.testing.assert_close(S, q @ k.T / math.sqrt(6))


@given(shift=st.integers(1, 500))
def test_rotary_scores_are_shift_invariant_sinusoidal_are_not(shift):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    W_q, W_k = (torch.randn(8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    pos = torch.arange(5)
    rot = [tc.attention_scores(x, W_q, W_k, encoding="rotary", positions=p) for p in (pos, pos + shift)]
    torch.testing.assert_close(rot[0], rot[1])
    sin = [tc.attention_scores(x, W_q, W_k, encoding="sinusoidal", positions=p) for p in (pos, pos + shift)]
    assert (sin[0] - sin[1]).abs().max() > 1e-3


def test_attention_scores_rejects_bad_input(head):
    x, W_q, W_k = head
    with pytest.raises(ValueError, match="encoding"):
        tc.attention_scores(x, W_q, W_k, encoding="learned")
    with pytest.raises(ValueError, match="W_q"):
        tc.attention_scores(x, W_q[:5], W_k)
    with pytest.raises(ValueError, match="positions"):
        tc.attention_scores(x, W_q, W_k, positions=torch.arange(6))
    with pytest.raises(ValueError, match="positions"):
        tc.attention_scores(x, W_q, W_k, positions=torch.arange(7) - 1)
    with pytest.raises(TypeError, match="x"):
        tc.attention_scores(x.long(), W_q, W_k)


@given(M=st.integers(1, 6), N=st.integers(1, 6), data=st.data())
def test_toeplitz_defect_against_brute_force(M, N, data):
    vals = data.draw(st.lists(st.integers(-3, 3), min_size=M * N, max_size=M * N))
    S = torch.tensor(vals, dtype=torch.float64).reshape(M, N)
    spread = 0.0
    for off in range(-(M - 1), N):
        entries = [float(S[m, n]) for m in range(M) for n in range(N) if n - m == off]
        spread = max(spread, max(entries) - min(entries))
    assert tc.toeplitz_defect(S) == spread


@pytest.mark.parametrize("dim, base", [(2, 10.0), (8, 10000.0), (16, 500.0)])
def test_rotary_wavelengths_are_periods_of_rotary_embedding(dim, base):
    lam = tc.rotary_wavelengths(dim, base)
    x = torch.randn(1, dim, dtype=torch.float64)
    for i, period in enumerate(lam):
        y = torch.nn.functional.pad(x, (0, 0))
        out = _rope_complex(y, torch.tensor([0]), base)  # unrotated reference
        turned = _rope_complex(y, torch.tensor([1]), base)
        assert not torch.allclose(turned[0, 2 * i:2 * i + 2], out[0, 2 * i:2 * i + 2])
        from dlmath.attention import rotary_embedding
        back = rotary_embedding(x, positions=period.reshape(1), base=base)
        torch.testing.assert_close(back[0, 2 * i:2 * i + 2], x[0, 2 * i:2 * i + 2])
    with pytest.raises(ValueError, match="dim"):
        tc.rotary_wavelengths(3)
    with pytest.raises(ValueError, match="base"):
        tc.rotary_wavelengths(4, base=1.0)


# --------------------------------------------------------------------------------------
# Symmetries and dependencies
# --------------------------------------------------------------------------------------

@pytest.fixture
def mha():
    torch.manual_seed(0)
    return nn.MultiheadAttention(8, 2, batch_first=True).double()


torch.manual_seed(0)
_LAYER = nn.MultiheadAttention(8, 2, batch_first=True).double().requires_grad_(False)
_X = torch.randn(1, 6, 8, dtype=torch.float64)


@given(perm=st.permutations(list(range(6))))
def test_self_attention_is_permutation_equivariant_not_invariant(perm):
    x = _X
    f = lambda z: _LAYER(z, z, z, need_weights=False)[0]  # noqa: E731
    assert tc.permutation_equivariance_gap(f, x, perm) < 1e-12
    assume(perm != list(range(6)))
    assert tc.permutation_invariance_gap(f, x, perm) > 1e-3


def test_causal_attention_is_not_permutation_equivariant(mha):
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)   # torch: True = blocked
    f = lambda z: mha(z, z, z, attn_mask=mask, need_weights=False)[0]  # noqa: E731
    assert tc.permutation_equivariance_gap(f, x, [5, 4, 3, 2, 1, 0]) > 1e-3


def test_permutation_gaps_reject_non_permutations():
    x = torch.randn(3, 2)
    for bad in ([0, 0, 1], [0, 1], [0, 1, 3]):
        with pytest.raises(ValueError, match="perm"):
            tc.permutation_equivariance_gap(torch.tanh, x, bad)
        with pytest.raises(ValueError, match="perm"):
            tc.permutation_invariance_gap(torch.tanh, x, bad)


def test_jacobian_block_norms_positionwise_causal_and_full(mha):
    torch.manual_seed(0)
    T, d = 5, 8
    x = torch.randn(T, d, dtype=torch.float64)
    deep = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(d, d), nn.Tanh())]).double()
    N = tc.jacobian_block_norms(deep, x)
    assert torch.equal(N - torch.diag(torch.diagonal(N)), torch.zeros(T, T, dtype=torch.float64))
    assert (torch.diagonal(N) > 0).all()
    causal = lambda z: scaled_dot_product_attention(z, z, z, is_causal=True)  # noqa: E731
    Nc = tc.jacobian_block_norms(causal, x)
    lower = torch.ones(T, T, dtype=torch.bool).tril()
    assert (Nc[~lower] == 0).all() and (Nc[lower] > 0).all()
    full = lambda z: mha(z[None], z[None], z[None], need_weights=False)[0][0]  # noqa: E731
    assert (tc.jacobian_block_norms(full, x) > 0).all()


def test_jacobian_block_norms_against_finite_differences():
    torch.manual_seed(1)
    x = torch.randn(4, 3, dtype=torch.float64)
    f = lambda z: torch.softmax(z @ z.T, -1) @ z  # noqa: E731
    N = tc.jacobian_block_norms(f, x)
    eps = 1e-6
    fd = torch.zeros(4, 4, dtype=torch.float64)
    for s in range(4):
        cols = []
        for a in range(3):
            e = torch.zeros_like(x)
            e[s, a] = eps
            cols.append((f(x + e) - f(x - e)) / (2 * eps))      # (T, d')
        block = torch.stack(cols, -1)                            # (T, d', d)
        fd[:, s] = block.flatten(1).norm(dim=1)
    torch.testing.assert_close(N, fd, rtol=1e-6, atol=1e-8)


def test_jacobian_block_norms_rejects_bad_input():
    with pytest.raises(ValueError, match="x"):
        tc.jacobian_block_norms(torch.tanh, torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="f must map"):
        tc.jacobian_block_norms(lambda z: z.sum(0), torch.randn(3, 4))
