"""Tests of dlmath.attention against torch's attention, torch.nn.MultiheadAttention and complex arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from dlmath import attention as at

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)

shapes = st.tuples(
    st.integers(1, 2),   # B
    st.integers(1, 3),   # H
    st.integers(1, 5),   # L
    st.integers(1, 5),   # S
    st.integers(1, 6),   # E
    st.integers(1, 4),   # Ev
)


def _qkv(seed, B, H, L, S, E, Ev):
    g = torch.Generator().manual_seed(seed)
    Q = torch.randn(B, H, L, E, generator=g, dtype=F64)
    K = torch.randn(B, H, S, E, generator=g, dtype=F64)
    V = torch.randn(B, H, S, Ev, generator=g, dtype=F64)
    return Q, K, V, g


@given(st.integers(0, 2**31 - 1), shapes, st.sampled_from(["none", "bool", "float", "causal"]),
       st.one_of(st.none(), st.floats(0.1, 3.0)))
def test_sdpa_matches_torch(seed, shape, kind, scale):
    Q, K, V, g = _qkv(seed, *shape)
    B, H, L, S = shape[:4]
    mask, kwargs = None, {}
    if kind == "bool":
        mask = torch.rand(B, 1, L, S, generator=g) < 0.7                 # broadcast over heads
        mask[..., 0] = True                                              # every query sees a key
    elif kind == "float":
        mask = torch.randn(L, S, generator=g, dtype=F64)
    elif kind == "causal":
        kwargs = dict(is_causal=True)
    expected = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask, scale=scale, **kwargs)
    got = at.scaled_dot_product_attention(Q, K, V, mask, scale=scale, **kwargs)
    torch.testing.assert_close(got, expected, **TOL)


@given(st.integers(0, 2**31 - 1), shapes)
def test_weights_are_probabilities_and_causal_rows_ignore_the_future(seed, shape):
    Q, K, V, _ = _qkv(seed, *shape)
    A = at.attention_weights(Q, K, is_causal=True)
    L, S = shape[2], shape[3]
    torch.testing.assert_close(A.sum(-1), torch.ones(A.shape[:-1], dtype=F64), **TOL)
    future = ~torch.ones(L, S, dtype=torch.bool).tril()
    assert (A[..., future] == 0).all()


def test_fully_masked_row_gives_zeros_like_torch():
    Q, K, V, _ = _qkv(0, 1, 1, 3, 4, 2, 2)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    got = at.scaled_dot_product_attention(Q, K, V, mask)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(Q, K, V, attn_mask=mask), **TOL)
    assert (got[0, 0, 1] == 0).all() and not got.isnan().any()


@pytest.mark.parametrize("L,S", [(3, 3), (2, 5), (5, 2)])
def test_causal_mask_matches_torch_is_causal(L, S):
    Q, K, V, _ = _qkv(1, 1, 2, L, S, 3, 2)
    expected = F.scaled_dot_product_attention(Q, K, V, is_causal=True)
    got = at.scaled_dot_product_attention(Q, K, V, at.causal_mask(L, S))
    torch.testing.assert_close(got, expected, **TOL)


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
       st.integers(1, 4), st.booleans(), st.booleans(), st.sampled_from(["none", "causal", "bool", "padding"]))
def test_multi_head_attention_matches_torch_module(seed, B, H, L, S, bias, kv_dims, kind):
    torch.manual_seed(seed % 10_000)
    E = 2 * H
    kdim, vdim = (3, 5) if kv_dims else (E, E)
    mha = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True, dtype=F64)
    if bias:  # torch initialises the biases to zero; make them count
        with torch.no_grad():
            for p in (mha.in_proj_bias, mha.out_proj.bias):
                p.normal_()
    q_in = torch.randn(B, L, E, dtype=F64)
    k_in = torch.randn(B, S, kdim, dtype=F64)
    v_in = torch.randn(B, S, vdim, dtype=F64)
    if kv_dims:
        W_q, W_k, W_v = mha.q_proj_weight.T, mha.k_proj_weight.T, mha.v_proj_weight.T
    else:
        W_q, W_k, W_v = mha.in_proj_weight.chunk(3)
        W_q, W_k, W_v = W_q.T, W_k.T, W_v.T
    biases = {}
    if bias:
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        biases = dict(b_q=b_q, b_k=b_k, b_v=b_v, b_o=mha.out_proj.bias)
    allowed, torch_kwargs = None, {}
    if kind == "causal":
        assume(L <= S)
        allowed = at.causal_mask(L, S)
        torch_kwargs = dict(attn_mask=~allowed)              # torch: True = not allowed
    elif kind == "bool":
        allowed = torch.rand(L, S) < 0.6
        allowed[:, 0] = True
        torch_kwargs = dict(attn_mask=~allowed)
    elif kind == "padding":
        keep = torch.rand(B, S) < 0.7
        keep[:, 0] = True
        allowed = keep[:, None, None, :]                     # (B, 1, 1, S): same for heads and queries
        torch_kwargs = dict(key_padding_mask=~keep)
    expected, A_expected = mha(q_in, k_in, v_in, need_weights=True, average_attn_weights=False, **torch_kwargs)
    got, A = at.multi_head_attention(q_in, k_in, v_in, W_q, W_k, W_v, mha.out_proj.weight.T, H,
                                     mask=allowed, return_weights=True, **biases)
    torch.testing.assert_close(got, expected, **TOL)
    torch.testing.assert_close(A, A_expected, **TOL)


@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(1, 6), st.integers(1, 4))
def test_split_and_merge_heads_are_inverse_and_slice_columns(seed, H, T, d):
    x = torch.randn(2, T, H * d, generator=torch.Generator().manual_seed(seed))
    s = at.split_heads(x, H)
    assert s.shape == (2, H, T, d)
    for h in range(H):
        assert torch.equal(s[:, h], x[..., h * d:(h + 1) * d])
    assert torch.equal(at.merge_heads(s), x)


# --- positions --------------------------------------------------------------------------

def test_sinusoidal_encoding_matches_its_definition_elementwise():
    T, d = 7, 10
    P = at.sinusoidal_positional_encoding(T, d, dtype=F64)
    for t in range(T):
        for i in range(d // 2):
            w = 10000 ** (-2 * i / d)
            assert math.isclose(P[t, 2 * i], math.sin(t * w), abs_tol=1e-12)
            assert math.isclose(P[t, 2 * i + 1], math.cos(t * w), abs_tol=1e-12)


@given(st.integers(2, 40), st.integers(1, 8), st.integers(0, 30))
def test_sinusoidal_offset_is_a_fixed_rotation(T, half, k):
    d = 2 * half
    P = at.sinusoidal_positional_encoding(T + k, d, dtype=F64)
    a, b = P[:T].unflatten(-1, (half, 2)), P[k:T + k].unflatten(-1, (half, 2))   # (T, d/2, 2)
    # every feature pair is a unit vector ...
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(T, half, dtype=F64), **TOL)
    # ... and the angle from position t to t + k (its cosine and sine) does not depend on t,
    # so P[t + k] = R_k P[t] with one block rotation R_k
    cos = (a * b).sum(-1)
    sin = a[..., 1] * b[..., 0] - a[..., 0] * b[..., 1]
    for c in (cos, sin):
        torch.testing.assert_close(c, c[:1].expand_as(c), rtol=1e-9, atol=1e-9)
    # hence dot products depend only on the offset
    dots = (P[:T] * P[k:T + k]).sum(-1)
    torch.testing.assert_close(dots, dots[:1].expand_as(dots), rtol=1e-9, atol=1e-9)


def _rope_complex(x, positions, base=10000.0):
    """Oracle: multiply each feature pair, read as a complex number, by exp(i m w)."""
    d = x.shape[-1]
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    w = base ** (-torch.arange(0, d, 2, dtype=F64) / d)
    rot = torch.polar(torch.ones_like(w), positions.to(F64)[:, None] * w)
    return torch.view_as_real(z * rot).flatten(-2)


@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 5))
def test_rope_matches_complex_rotation_and_keeps_norms(seed, T, half):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, T, 2 * half, generator=g, dtype=F64)
    pos = torch.randint(0, 1000, (T,), generator=g)
    y = at.rotary_embedding(x, pos)
    torch.testing.assert_close(y, _rope_complex(x, pos), **TOL)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), **TOL)
    torch.testing.assert_close(at.rotary_embedding(x, torch.zeros(T, dtype=torch.long)), x)


@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(0, 50), st.integers(0, 50),
       st.integers(-20, 20))
def test_rope_scores_depend_only_on_the_offset(seed, half, m, n, shift):
    assume(m + shift >= 0 and n + shift >= 0)
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 2 * half, generator=g, dtype=F64)
    def score(a, b):
        return (at.rotary_embedding(q, torch.tensor([a])) * at.rotary_embedding(k, torch.tensor([b]))).sum()
    torch.testing.assert_close(score(m, n), score(m + shift, n + shift), rtol=1e-9, atol=1e-9)


# --- validation -------------------------------------------------------------------------

def test_bad_input_is_rejected_with_clear_messages():
    Q = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="same last dimension d_k"):
        at.attention_weights(Q, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="either mask or is_causal"):
        at.attention_weights(Q, Q, torch.ones(2, 2, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="does not broadcast"):
        at.attention_weights(Q, Q, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean or floating"):
        at.attention_weights(Q, Q, torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="same number of rows S"):
        at.scaled_dot_product_attention(Q, Q, torch.zeros(3, 1))
    with pytest.raises(TypeError, match="Q must have a floating-point dtype"):
        at.scaled_dot_product_attention(Q.long(), Q, Q)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        at.split_heads(torch.zeros(2, 5), 2)
    with pytest.raises(ValueError, match="must divide the columns of W_q"):
        at.multi_head_attention(Q, Q, Q, torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 3),
                                torch.zeros(3, 3), 2)
    with pytest.raises(ValueError, match="dim must be an even int"):
        at.sinusoidal_positional_encoding(4, 3)
    with pytest.raises(ValueError, match="last dimension of x must be even"):
        at.rotary_embedding(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positions must be a tensor of shape"):
        at.rotary_embedding(torch.zeros(2, 4), torch.arange(3))
    with pytest.raises(ValueError, match="L must be >= 1"):
        at.causal_mask(0)


_W = torch.zeros(4, 4)


@pytest.mark.parametrize("call, flag", [
    (lambda v: at.attention_weights(torch.zeros(2, 4), torch.zeros(2, 4), is_causal=v), "is_causal"),
    (lambda v: at.scaled_dot_product_attention(torch.zeros(2, 4), torch.zeros(2, 4),
                                               torch.zeros(2, 4), is_causal=v), "is_causal"),
    (lambda v: at.multi_head_attention(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4),
                                       _W, _W, _W, _W, 2, is_causal=v), "is_causal"),
    (lambda v: at.multi_head_attention(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4),
                                       _W, _W, _W, _W, 2, return_weights=v), "return_weights"),
])
@pytest.mark.parametrize("value", ["False", 0, None])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=g).to(dtype)
    W = torch.randn(4, 4, generator=g).to(dtype)
    additive = torch.zeros(3, 3, dtype=torch.float64)       # a float64 mask does not promote
    outs = [at.attention_weights(x, x), at.attention_weights(x, x, additive),
            at.scaled_dot_product_attention(x, x, x, additive),
            at.scaled_dot_product_attention(x, x, x, is_causal=True),
            *at.multi_head_attention(x, x, x, W, W, W, W, 2, return_weights=True),
            at.split_heads(x, 2), at.merge_heads(at.split_heads(x, 2)), at.rotary_embedding(x)]
    assert [out.dtype for out in outs] == [dtype] * len(outs)
    assert at.sinusoidal_positional_encoding(3, 4, dtype=dtype).dtype == dtype
