"""dlmath.toeplitz against independent oracles: torch's conv2d, F.pad, conv_transpose2d,
autograd, and impulse responses (the columns of M are the responses to unit images)."""

from __future__ import annotations

import functools
import itertools
import operator
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlmath.toeplitz import (
    ORDERS,
    PADDING_MODES,
    conv_matrix,
    conv_matrix_entry,
    conv_matrix_entry_sym,
    conv_transpose_output_padding,
    pad_matrix,
    pad_source_index,
    unvec,
    vec,
)

TOL = 1e-10  # float64, relative to the size of the entries


def assert_near(got, want, tol=TOL):
    """|got - want| <= tol (1 + max|want|), elementwise; cheaper than assert_close."""
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.is_sparse or got.layout == torch.sparse_csr:
        got = got.to_dense()
    err = (got - want).abs().max().item() if want.numel() else 0.0
    assert err <= tol * (1 + want.abs().max().item()), f"max error {err}"


# --- oracles --------------------------------------------------------------------------


def torch_conv(x, weight, stride, padding, dilation, mode):
    """conv2d as torch.nn.Conv2d computes it for each padding mode; x is (B, C, H, W)."""
    if mode == "zeros":
        return F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation)
    ph, pw = padding
    return F.conv2d(F.pad(x, (pw, pw, ph, ph), mode=mode), weight, stride=stride, dilation=dilation)


def impulse_matrix(weight, shape, stride, padding, dilation, mode, order):
    """M built column by column: column j is vec(conv(e_j)), e_j the j-th unit image."""
    n = int(np.prod(shape))
    units = unvec(torch.eye(n, dtype=torch.float64), shape, order)  # (n, C, H, W)
    return vec(torch_conv(units, weight, stride, padding, dilation, mode), order).T


@st.composite
def conv_cases(draw, modes=PADDING_MODES, same_axes=False):
    """A random valid convolution: channels, sizes, kernel, stride, padding, dilation, mode.

    ``same_axes``: one stride, padding and dilation for both axes."""
    c_out, c_in = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if same_axes:
        stride, padding, dilation = ((t[0], t[0]) for t in (stride, padding, dilation))
    mode = draw(st.sampled_from(modes))
    assume(h + 2 * padding[0] >= dilation[0] * (kh - 1) + 1)
    assume(w + 2 * padding[1] >= dilation[1] * (kw - 1) + 1)
    if mode == "reflect":
        assume(padding[0] < h and padding[1] < w)
    if mode == "circular":  # torch refuses to wrap around more than once
        assume(padding[0] <= h and padding[1] <= w)
    return dict(c_out=c_out, shape=(c_in, h, w), kernel=(kh, kw), stride=stride,
                padding=padding, dilation=dilation, mode=mode)


def _weight(case, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(case["c_out"], case["shape"][0], *case["kernel"], generator=g,
                       dtype=torch.float64)


def _build(weight, case, order, sparse=False):
    return conv_matrix(weight, case["shape"], case["stride"], case["padding"], case["dilation"],
                       case["mode"], order, sparse)


# --- the matrix reproduces conv2d -------------------------------------------------------


@given(case=conv_cases(), order=st.sampled_from(ORDERS),
       sparse=st.sampled_from([False, True, "coo", "csr"]), seed=st.integers(0, 2**16))
def test_conv_matrix_matches_conv2d(case, order, sparse, seed):
    w = _weight(case, seed)
    x = torch.randn(2, *case["shape"], generator=torch.Generator().manual_seed(seed + 1),
                    dtype=torch.float64)  # (B, C, H, W)
    z = torch_conv(x, w, case["stride"], case["padding"], case["dilation"], case["mode"])
    M = _build(w, case, order, sparse)
    assert M.shape == (z[0].numel(), x[0].numel())
    assert M.is_sparse == (sparse in (True, "coo")) and M.is_sparse_csr == (sparse == "csr")
    got = (M @ vec(x, order).T).T  # (B, C_out*H'*W')
    assert_near(got, vec(z, order))


@settings(max_examples=30)
@given(case=conv_cases(), order=st.sampled_from(ORDERS), seed=st.integers(0, 2**16))
def test_dense_and_sparse_agree_and_equal_impulse_responses(case, order, seed):
    w = _weight(case, seed)
    dense = _build(w, case, order)
    oracle = impulse_matrix(w, case["shape"], case["stride"], case["padding"], case["dilation"],
                            case["mode"], order)
    assert_near(dense, oracle)
    # equal up to rounding: where taps meet (replicate, reflect) the sums run in another order
    assert_near(_build(w, case, order, "coo").to_dense(), dense)
    assert_near(_build(w, case, order, "csr").to_dense(), dense)


def out_shape(case):
    """(C_out, H', W') as torch computes it."""
    x = torch.zeros(1, *case["shape"], dtype=torch.float64)
    w = torch.zeros(case["c_out"], case["shape"][0], *case["kernel"], dtype=torch.float64)
    return tuple(torch_conv(x, w, case["stride"], case["padding"], case["dilation"],
                            case["mode"]).shape[1:])


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_row_and_col_orders_differ_by_permutations(case, seed):
    # vec_col = vec_row[perm] for a permutation perm, so M_col = M_row[perm_out][:, perm_in]
    w = _weight(case, seed)
    row, col = _build(w, case, "row"), _build(w, case, "col")

    def perm(shape):
        return vec(unvec(torch.arange(int(np.prod(shape))), shape, "row"), "col")

    # equal up to rounding: where taps meet (replicate, reflect) the sums run in another order
    assert_near(col, row[perm(out_shape(case))][:, perm(case["shape"])])


@given(case=conv_cases(), order=st.sampled_from(ORDERS))
def test_sparse_indices_are_sorted_and_distinct(case, order):
    # a COO tensor that says it is coalesced must have sorted, distinct (row, column) pairs;
    # conv_matrix relies on this for zero padding and coalesces for the other modes
    M = _build(torch.ones(case["c_out"], case["shape"][0], *case["kernel"]), case, order, True)
    assert M.is_coalesced()
    key = M.indices()[0] * M.shape[1] + M.indices()[1]
    assert bool((key[1:] > key[:-1]).all())


def test_known_small_matrix():
    # worked by hand: 2x2 kernel on a 3x3 image, row-major; output (u, v) reads x[u:u+2, v:v+2]
    w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = torch.tensor([
        [1, 2, 0, 3, 4, 0, 0, 0, 0],
        [0, 1, 2, 0, 3, 4, 0, 0, 0],
        [0, 0, 0, 1, 2, 0, 3, 4, 0],
        [0, 0, 0, 0, 1, 2, 0, 3, 4],
    ], dtype=torch.float32)
    assert torch.equal(conv_matrix(w, (1, 3, 3)), expected)
    # column-major: rows and columns both visit (0,0), (1,0), (0,1), (1,1) ...
    assert conv_matrix(w, (1, 3, 3), order="col")[0].tolist() == [1, 3, 0, 2, 4, 0, 0, 0, 0]


def test_sparse_never_builds_dense():
    # the dense matrix would take 65536**2 * 8 bytes = 32 GiB; the sparse one holds 254**2 * 9
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    M = conv_matrix(w, (1, 256, 256), sparse=True)
    assert M.shape == (254 * 254, 256 * 256)
    assert M._nnz() == 254 * 254 * 9
    x = torch.randn(1, 1, 256, 256, dtype=torch.float64)
    assert_near(M @ vec(x[0]), F.conv2d(x, w).flatten())


def test_matrix_is_differentiable_in_the_weight():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64, generator=g)
    (conv_matrix(w, (3, 5, 6), stride=(2, 1), padding=1) @ vec(x[0])).square().sum().backward()
    ours, w.grad = w.grad.clone(), None
    F.conv2d(x, w, stride=(2, 1), padding=1).square().sum().backward()
    assert_near(ours, w.grad)


def test_circular_same_convolution_commutes_with_shifts():
    # circular padding, stride 1, "same" size: M is doubly block circulant, i.e. it commutes
    # with the cyclic shift of rows and of columns of the image
    g = torch.Generator().manual_seed(3)
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64, generator=g)
    M = conv_matrix(w, (1, 5, 7), padding=1, padding_mode="circular")
    idx = torch.arange(35).reshape(1, 5, 7)
    for shift in (idx.roll(1, -2), idx.roll(2, -1)):
        S = torch.eye(35, dtype=torch.float64)[shift.flatten()]
        assert_near(M @ S, S @ M)


# --- the entry formula ------------------------------------------------------------------


@settings(max_examples=40)
@given(case=conv_cases(modes=("zeros",)), order=st.sampled_from(ORDERS))
def test_entry_formula_matches_impulse_responses(case, order):
    c_out, (c_in, h, w), (kh, kw) = case["c_out"], case["shape"], case["kernel"]
    # distinct weights, so each entry of M names the weight it holds
    weight = torch.arange(1, c_out * c_in * kh * kw + 1, dtype=torch.float64)
    weight = weight.reshape(c_out, c_in, kh, kw)
    oracle = impulse_matrix(weight, case["shape"], case["stride"], case["padding"],
                            case["dilation"], "zeros", order)
    i = torch.arange(oracle.shape[0])[:, None]
    j = torch.arange(oracle.shape[1])[None, :]
    o, c, a, b, nz = conv_matrix_entry(i, j, case["shape"], weight.shape, case["stride"],
                                       case["padding"], case["dilation"], order)
    o, c, a, b = (torch.as_tensor(t).expand(oracle.shape) for t in (o, c, a, b))
    label = weight[o, c, a.clamp(0, kh - 1), b.clamp(0, kw - 1)]
    assert torch.equal(torch.where(nz, label, 0.0), oracle)


@functools.lru_cache(maxsize=2)
def symbolic_entry(order):
    """The symbolic formula with symbolic stride, padding and dilation, compiled to Python."""
    s, d = sp.symbols("s d", integer=True, positive=True)
    p = sp.Symbol("p", integer=True, nonnegative=True)
    (a, b, nz), (i, j, H, W, kh, kw) = conv_matrix_entry_sym(order, s, p, d)
    # sympy 1.14 prints -s*Mod(i, n) as "-s*i % n", which Python reads as (-s*i) % n: call a
    # function instead of the operator
    mod = sp.Function("mod")
    exprs = [e.replace(sp.Mod, lambda x, y: mod(x, y)) for e in (a, b, nz)]
    return sp.lambdify((i, j, H, W, kh, kw, s, p, d), exprs,
                       modules=[{"mod": operator.mod}, "math"])


@settings(max_examples=30)
@given(case=conv_cases(modes=("zeros",), same_axes=True), order=st.sampled_from(ORDERS))
def test_symbolic_entry_formula_matches_impulse_responses(case, order):
    (kh, kw), (_, h, w) = case["kernel"], case["shape"]
    one = torch.arange(1, kh * kw + 1, dtype=torch.float64).reshape(1, 1, kh, kw)
    oracle = impulse_matrix(one, (1, h, w), case["stride"], case["padding"], case["dilation"],
                            "zeros", order)
    f = symbolic_entry(order)
    sizes = (h, w, kh, kw, case["stride"][0], case["padding"][0], case["dilation"][0])
    for ii in range(oracle.shape[0]):
        for jj in range(oracle.shape[1]):
            a, b, nz = f(ii, jj, *sizes)
            assert oracle[ii, jj] == (one[0, 0, int(a), int(b)] if nz else 0)


def test_entry_formula_reduces_to_the_toeplitz_pattern():
    # stride 1, no padding, column-major: a = (j mod H) - (i mod H'), b = [j/H] - [i/H']
    (a, b, _), (i, j, H, W, kh, kw) = conv_matrix_entry_sym("col")
    assert sp.simplify(a - (sp.Mod(j, H) - sp.Mod(i, H - kh + 1))) == 0
    assert sp.simplify(b - (sp.floor(j / H) - sp.floor(i / (H - kh + 1)))) == 0


def test_entry_formula_scalar_and_range():
    # 3x3 kernel on a 4x4 image: row 3 is output (1, 1), column 15 is input (3, 3) = its tap (2, 2)
    assert conv_matrix_entry(3, 15, (1, 4, 4), (1, 1, 3, 3)) == (0, 0, 2, 2, True)
    assert conv_matrix_entry(0, 15, (1, 4, 4), (1, 1, 3, 3))[-1] is False
    with pytest.raises(ValueError, match="i must be in"):
        conv_matrix_entry(4, 0, (1, 4, 4), (1, 1, 3, 3))
    with pytest.raises(ValueError, match="j must be in"):
        conv_matrix_entry(0, 16, (1, 4, 4), (1, 1, 3, 3))


# --- transpose = backward pass ------------------------------------------------------------


@given(case=conv_cases(), order=st.sampled_from(ORDERS), seed=st.integers(0, 2**16))
def test_transpose_is_the_input_gradient(case, order, seed):
    w = _weight(case, seed)
    x = torch.randn(1, *case["shape"], dtype=torch.float64, requires_grad=True)
    z = torch_conv(x, w, case["stride"], case["padding"], case["dilation"], case["mode"])
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(z, x, g)
    M = _build(w, case, order, sparse=True)
    assert_near(M.T @ vec(g[0], order), vec(grad[0], order))


@given(case=conv_cases(modes=("zeros",)), seed=st.integers(0, 2**16))
def test_transpose_is_conv_transpose2d(case, seed):
    w = _weight(case, seed)
    (_, h, wd), (kh, kw) = case["shape"], case["kernel"]
    s, p, d = case["stride"], case["padding"], case["dilation"]
    M = _build(w, case, "row")
    _, ho, wo = out_shape(case)
    assume(all((m - 1) * s_ - 2 * p_ + d_ * (k - 1) + 1 >= 1
               for m, k, s_, p_, d_ in zip((ho, wo), (kh, kw), s, p, d)))
    out_pad = tuple(conv_transpose_output_padding(n, k, s_, p_, d_)
                    for n, k, s_, p_, d_ in zip((h, wd), (kh, kw), s, p, d))
    assume(all(op < max(s_, d_) for op, s_, d_ in zip(out_pad, s, d)))  # torch's own limit
    g = torch.randn(1, *out_shape(case), dtype=torch.float64)  # (1, C_out, H', W')
    t = F.conv_transpose2d(g, w, stride=s, padding=p, output_padding=out_pad, dilation=d)
    assert t.shape[-2:] == (h, wd)
    assert_near(M.T @ g.flatten(), t.flatten())


@given(n=st.integers(1, 30), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3),
       d=st.integers(1, 3))
def test_conv_transpose_output_padding_restores_the_size(n, k, s, p, d):
    assume(n + 2 * p >= d * (k - 1) + 1)
    nz = F.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, k, 1), stride=(s, 1),
                  padding=(p, 0), dilation=(d, 1)).shape[-2]
    if (nz - 1) * s - 2 * p + d * (k - 1) + 1 < 1:  # the transpose has no output to pad
        with pytest.raises(ValueError, match="padding"):
            conv_transpose_output_padding(n, k, s, p, d)
        return
    op = conv_transpose_output_padding(n, k, s, p, d)
    assert 0 <= op < s
    t = F.conv_transpose2d(torch.zeros(1, 1, nz, 1), torch.zeros(1, 1, k, 1), stride=(s, 1),
                           padding=(p, 0), output_padding=(op, 0), dilation=(d, 1))
    assert t.shape[-2] == n


# --- padding as a linear map ----------------------------------------------------------


@given(n=st.integers(1, 9), p0=st.integers(0, 9), p1=st.integers(0, 9),
       mode=st.sampled_from(PADDING_MODES))
def test_pad_matrix_matches_F_pad(n, p0, p1, mode):
    if mode == "reflect":
        assume(max(p0, p1) < n)
    if mode == "circular":
        assume(max(p0, p1) <= n)
    x = torch.randn(1, 1, n, dtype=torch.float64)
    torch_mode = "constant" if mode == "zeros" else mode
    assert torch.equal(pad_matrix(n, (p0, p1), mode) @ x.flatten(),
                       F.pad(x, (p0, p1), mode=torch_mode).flatten())


@given(h=st.integers(2, 6), w=st.integers(2, 6), ph=st.integers(0, 1), pw=st.integers(0, 1),
       mode=st.sampled_from(PADDING_MODES), order=st.sampled_from(ORDERS))
def test_2d_padding_is_a_kronecker_product(h, w, ph, pw, mode, order):
    x = torch.randn(1, 1, h, w, dtype=torch.float64)
    padded = F.pad(x, (pw, pw, ph, ph), mode="constant" if mode == "zeros" else mode)
    PH, PW = pad_matrix(h, ph, mode), pad_matrix(w, pw, mode)
    P = torch.kron(PH, PW) if order == "row" else torch.kron(PW, PH)
    assert torch.equal(P @ vec(x[0], order), vec(padded[0], order))


def test_circular_padding_wraps_more_than_once():
    assert pad_source_index(2, 3, "circular").tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


# --- vec ------------------------------------------------------------------------------


@given(c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
       order=st.sampled_from(ORDERS))
def test_vec_matches_numpy_orders_and_unvec_inverts(c, h, w, order):
    x = torch.randn(c, h, w)
    npo = "C" if order == "row" else "F"
    expected = np.concatenate([x[k].numpy().ravel(order=npo) for k in range(c)])
    assert np.array_equal(vec(x, order).numpy(), expected)
    assert torch.equal(unvec(vec(x, order), (c, h, w), order), x)


# --- a fully connected layer is a convolution with a kernel that covers the input -----------


def test_fully_connected_layer_is_a_full_kernel_convolution():
    g = torch.Generator().manual_seed(7)
    lin = torch.nn.Linear(3 * 5 * 4, 6, bias=True).double()
    conv = torch.nn.Conv2d(3, 6, kernel_size=(5, 4)).double()
    with torch.no_grad():
        conv.weight.copy_(lin.weight.reshape(6, 3, 5, 4))
        conv.bias.copy_(lin.bias)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=g)
    assert_near(conv(x).flatten(1), lin(x.flatten(1)))
    # its convolution matrix (H' = W' = 1) is the linear layer's weight matrix itself
    assert torch.equal(conv_matrix(conv.weight.detach(), (3, 5, 4)), lin.weight.detach())


# --- bad input ----------------------------------------------------------------------------


W3 = torch.zeros(1, 1, 3, 3)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(weight=W3, input_shape=(2, 5, 5)), ValueError, "input channels"),
    (dict(weight=W3, input_shape=(1, 2, 5)), ValueError, "along the height: kernel 3"),
    (dict(weight=W3, input_shape=(1, 5, 2)), ValueError, "along the width"),
    (dict(weight=W3, input_shape=(1, 5, 5), padding_mode="mirror"), ValueError, "padding_mode"),
    (dict(weight=W3, input_shape=(1, 5, 5), order="F"), ValueError, "order must be"),
    (dict(weight=W3, input_shape=(1, 5, 5), sparse="bsr"), ValueError, "sparse must be"),
    (dict(weight=W3, input_shape=(1, 5, 5), stride=0), ValueError, "stride"),
    (dict(weight=W3, input_shape=(1, 5, 5), stride=1.5), TypeError, "stride"),
    (dict(weight=W3, input_shape=(1, 5, 5), padding=(1, 2, 3)), ValueError, "padding"),
    (dict(weight=W3, input_shape=(1, 5, 5), padding=-1), ValueError, "padding"),
    (dict(weight=W3, input_shape=(1, 5, 5), dilation=(1, 0)), ValueError, r"dilation\[1\]"),
    (dict(weight=W3, input_shape=(1, 2, 5), padding=2, padding_mode="reflect"), ValueError,
     "reflect padding 2 must be smaller than the size 2"),
    (dict(weight=W3, input_shape=(5, 5)), ValueError, "input_shape"),
    (dict(weight=torch.zeros(3, 3), input_shape=(1, 5, 5)), ValueError, "weight must have shape"),
    (dict(weight=[[1.0]], input_shape=(1, 5, 5)), TypeError, "weight must be a torch.Tensor"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv_matrix(**kwargs)


def test_bad_input_elsewhere():
    with pytest.raises(ValueError, match="^mode must be one of"):
        pad_source_index(4, 1, "wrap")
    with pytest.raises(ValueError, match="order"):
        vec(torch.zeros(1, 2, 2), "fortran")
    with pytest.raises(ValueError, match="last dimension"):
        unvec(torch.zeros(5), (1, 2, 2))
    with pytest.raises(ValueError, match="kernel_shape has C_in=2"):
        conv_matrix_entry(0, 0, (1, 4, 4), (1, 2, 3, 3))
    with pytest.raises(ValueError, match="order"):
        conv_matrix_entry_sym("diagonal")


# --- the sparse construction against the dense one ------------------------------------------


def _grid_cases():
    """A fixed grid: channels, sizes, kernels, strides, paddings, dilations, every mode."""
    for (c_out, shape), kernel, stride, padding, dilation, mode in itertools.product(
            [(1, (1, 6, 7)), (2, (3, 5, 4))], [(1, 1), (3, 2), (4, 3)], [(1, 1), (2, 3)],
            [(0, 0), (2, 1), (3, 3)], [(1, 1), (2, 1)], PADDING_MODES):
        _, h, w = shape
        if (h + 2 * padding[0] < dilation[0] * (kernel[0] - 1) + 1
                or w + 2 * padding[1] < dilation[1] * (kernel[1] - 1) + 1):
            continue
        if mode == "reflect" and (padding[0] >= h or padding[1] >= w):
            continue
        if mode == "circular" and (padding[0] > h or padding[1] > w):
            continue
        yield dict(c_out=c_out, shape=shape, kernel=kernel, stride=stride, padding=padding,
                   dilation=dilation, mode=mode)


def test_sparse_equals_dense_on_a_grid():
    cases = list(_grid_cases())
    assert len(cases) > 250
    for k, case in enumerate(cases):
        w = _weight(case, k)
        for order in ORDERS:
            dense = _build(w, case, order)
            coo, csr = _build(w, case, order, "coo"), _build(w, case, order, "csr")
            assert coo.is_coalesced() and coo.shape == csr.shape == dense.shape
            if case["mode"] == "zeros":  # every entry is one weight: exactly equal
                assert torch.equal(coo.to_dense(), dense), (case, order)
                assert torch.equal(csr.to_dense(), dense), (case, order)
                assert coo._nnz() == int((dense != 0).sum())  # no explicit zeros stored
            else:  # where taps meet, the sums run in another order
                assert_near(coo.to_dense(), dense)
                assert_near(csr.to_dense(), dense)
            ref = coo.to_sparse_csr()
            assert torch.equal(csr.crow_indices(), ref.crow_indices())
            assert torch.equal(csr.col_indices(), ref.col_indices())
            assert torch.equal(csr.values(), ref.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sparse", ["coo", "csr"])
def test_sparse_keeps_the_dtype(dtype, sparse):
    w = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(1)).to(dtype)
    M = conv_matrix(w, (3, 6, 5), stride=(1, 2), padding=1, sparse=sparse)
    assert M.dtype == dtype
    assert torch.equal(M.to_dense(), conv_matrix(w, (3, 6, 5), stride=(1, 2), padding=1))


def test_sparse_matrix_is_differentiable_in_the_weight():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64, generator=g)
    M = conv_matrix(w, (3, 5, 6), stride=(2, 1), padding=1, sparse=True)
    assert M.requires_grad
    torch.sparse.mm(M, vec(x[0])[:, None]).square().sum().backward()
    ours, w.grad = w.grad.clone(), None
    F.conv2d(x, w, stride=(2, 1), padding=1).square().sum().backward()
    assert_near(ours, w.grad)
    with torch.no_grad():
        assert not conv_matrix(w, (3, 5, 6), padding=1, sparse=True).requires_grad


def test_sparse_matrix_with_no_non_zeros():
    # stride 2 over a padded 1x1 image: no output position reads the pixel
    w = torch.ones(1, 1, 1, 1)
    for sparse in ("coo", "csr"):
        M = conv_matrix(w, (1, 1, 1), stride=2, padding=3, sparse=sparse)
        assert M.shape == (16, 1) and M._nnz() == 0
        assert torch.equal(M.to_dense(), conv_matrix(w, (1, 1, 1), stride=2, padding=3))


# --- a layer in, its affine map out: against the layer's own forward ---------------------


@st.composite
def conv_layers(draw):
    """A random nn.Conv2d (groups, bias, stride, padding or "same"/"valid", dilation, mode)
    and an input shape it accepts."""
    g = draw(st.integers(1, 3))
    c_in, c_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    stride = 1 if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    mode = draw(st.sampled_from(PADDING_MODES))
    layer = torch.nn.Conv2d(c_in, c_out, k, stride, padding, d, g, draw(st.booleans()), mode)
    shape = (c_in, draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return layer.double(), shape


def _layer_out(layer, x):
    """The layer's output, or None where torch refuses the input (too small, reflect...)."""
    try:
        with warnings.catch_warnings():   # torch warns that an even-span "same" pads a copy
            warnings.simplefilter("ignore", UserWarning)
            return layer(x)
    except (RuntimeError, ValueError, NotImplementedError):
        return None


@given(case=conv_layers(), order=st.sampled_from(ORDERS),
       sparse=st.sampled_from([False, "coo", "csr"]), seed=st.integers(0, 2**16))
def test_conv_matrix_of_a_layer_is_its_affine_map(case, order, sparse, seed):
    layer, shape = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *shape, dtype=torch.float64, generator=gen)  # (B, C, H, W)
    z = _layer_out(layer, x)
    assume(z is not None)
    M, b = conv_matrix(layer, shape, order=order, sparse=sparse)
    assert M.shape == (z[0].numel(), x[0].numel()) and b.shape == (z[0].numel(),)
    assert M.is_sparse == (sparse == "coo") and M.is_sparse_csr == (sparse == "csr")
    with torch.no_grad():
        got = (M @ vec(x, order).T).T + b  # (B, C_out*H'*W')
        assert_near(got, vec(z, order))
    if layer.bias is None:
        assert not b.any()


@given(case=conv_layers(), seed=st.integers(0, 2**16))
def test_conv_matrix_with_groups_matches_functional_conv2d(case, seed):
    layer, shape = case
    assume(layer.padding_mode == "zeros")
    w = torch.randn(layer.weight.shape, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    x = torch.randn(1, *shape, dtype=torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            z = F.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    except RuntimeError:
        assume(False)
    M = conv_matrix(w, (1, *shape), layer.stride, layer.padding, layer.dilation,
                    groups=layer.groups)          # a batch dimension in input_shape is fine
    assert_near(M @ vec(x[0]), vec(z[0]))
    # block diagonal: no output channel of one group reads an input channel of another
    g, (c_out, c_in) = layer.groups, (w.shape[0], shape[0])
    blocks = M.reshape(g, M.shape[0] // g, g, M.shape[1] // g)
    off = ~torch.eye(g, dtype=torch.bool)
    assert not blocks.permute(0, 2, 1, 3)[off].any()
    assert M.shape[0] % c_out == 0 and M.shape[1] == c_in * shape[1] * shape[2]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("sparse", [False, "coo", "csr"])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_matrix_has_the_weights_dtype(dtype, sparse, mode):
    layer = torch.nn.Conv2d(4, 2, 3, padding=1, groups=2, padding_mode=mode).to(dtype)
    M, b = conv_matrix(layer, (4, 5, 6), sparse=sparse)
    assert M.dtype == b.dtype == dtype
    assert conv_matrix(layer.weight.detach(), (4, 5, 6), groups=2, sparse=sparse).dtype == dtype
    x = torch.randn(1, 4, 5, 6).to(dtype)
    if dtype in (torch.float32, torch.float64):
        with torch.no_grad():
            assert_near((M @ vec(x[0]) + b).double(), vec(layer(x)[0]).double(), tol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("sparse", [False, "coo", "csr"])
def test_matrix_is_on_the_weights_device(sparse):
    layer = torch.nn.Conv2d(2, 4, 3, padding="same", groups=2).double().cuda()
    M, b = conv_matrix(layer, (2, 6, 5), sparse=sparse)
    assert M.device == b.device == layer.weight.device
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        assert_near((M @ vec(x[0]) + b).cpu(), vec(layer(x)[0]).cpu())


def test_entry_formula_with_same_padding_matches_impulse_responses():
    for kh, kw, d in [(2, 3, 1), (4, 4, 1), (3, 2, 2)]:
        weight = torch.arange(1, kh * kw + 1, dtype=torch.float64).reshape(1, 1, kh, kw)
        layer = torch.nn.Conv2d(1, 1, (kh, kw), padding="same", dilation=d, bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(weight)
        n = 5 * 6
        units = unvec(torch.eye(n, dtype=torch.float64), (1, 5, 6))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            oracle = vec(layer(units).detach()).T
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        _, _, a, b, nz = conv_matrix_entry(i, j, (1, 5, 6), weight.shape, padding="same",
                                           dilation=d)
        label = weight[0, 0, a.clamp(0, kh - 1), b.clamp(0, kw - 1)]
        assert torch.equal(torch.where(nz, label, 0.0), oracle)


def test_conv_transpose_output_padding_per_axis():
    for n, k, s in [((7, 8), 3, 2), ((9, 10), (3, 2), (3, 2))]:
        op = conv_transpose_output_padding(n, k, s)
        z = F.conv2d(torch.zeros(1, 1, *n), torch.zeros(1, 1, *((k,) * 2 if isinstance(k, int)
                                                                 else k)), stride=s)
        t = F.conv_transpose2d(z, torch.zeros(1, 1, *((k,) * 2 if isinstance(k, int) else k)),
                               stride=s, output_padding=op)
        assert tuple(t.shape[-2:]) == n


@pytest.mark.parametrize("call, exc, match", [
    (lambda: conv_matrix(torch.nn.Conv2d(1, 1, 3), (1, 5, 5), stride=2), TypeError,
     "reads stride from the layer"),
    (lambda: conv_matrix(torch.nn.Conv1d(1, 1, 3), (1, 5)), TypeError, "torch.nn.Conv2d"),
    (lambda: conv_matrix(torch.nn.LazyConv2d(1, 3), (1, 5, 5)), ValueError, "lazy"),
    (lambda: conv_matrix(W3, (2, 5, 5), groups=2), ValueError, "C_out=1 .* groups=2"),
    (lambda: conv_matrix(torch.zeros(2, 1, 3, 3), (3, 5, 5), groups=2), ValueError,
     "per group"),
    (lambda: conv_matrix(W3, (1, 5, 5), stride=2, padding="same"), ValueError, "strided"),
    (lambda: conv_matrix(W3, (1, 5, 5), padding="full"), ValueError, "padding must be one of"),
    (lambda: conv_matrix(W3, (1, 5, 5), sparse=1), ValueError, "sparse must be"),
    (lambda: conv_matrix(W3, (1, 5, 5), groups=0), ValueError, "groups must be >= 1"),
])
def test_bad_layer_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
