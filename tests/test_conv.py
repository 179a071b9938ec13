"""Tests of dlmath.conv against the shapes and gradients PyTorch actually produces.

Oracles: the layers of torch.nn (sizes, and which arguments torch rejects), autograd on
real float64 stacks (receptive fields, unread inputs), SymPy (special cases of the
symbolic formulas).  Expected values are never computed by the formulas under test.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import sympy as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlmath import conv

# one axis of a layer: (size, kernel, stride, padding, dilation), wide ranges
sizes = st.integers(1, 64)
kernels = st.integers(1, 9)
strides = st.integers(1, 6)
paddings = st.integers(0, 6)
dilations = st.integers(1, 4)
axis = st.tuples(sizes, kernels, strides, paddings, dilations)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on shared CPUs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _zeros(*shape):
    return torch.zeros(shape)


def _shape_or_none(run):
    """Output spatial shape of ``run()``, or None if torch rejects the arguments."""
    try:
        return tuple(run().shape[2:])
    except (RuntimeError, ValueError):
        return None


def _dlmath_or_none(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# output sizes against torch layers
# ---------------------------------------------------------------------------------------

def _conv1d(n, k, s=1, p=0, d=1):
    return F.conv1d(_zeros(1, 1, n), _zeros(1, 1, k), None, s, p, d)      # (B, C, N)


@given(axis)
def test_conv1d_size_matches_torch(a):
    n, k, s, p, d = a
    got = _shape_or_none(lambda: _conv1d(n, k, s, p, d))
    assume(got is not None)
    assert conv.conv_output_size(n, k, s, p, d) == got[0]


@given(axis, axis)
def test_conv2d_size_matches_torch_per_axis(ah, aw):
    (nh, kh, sh, ph, dh), (nw, kw, sw, pw, dw) = ah, aw
    got = _shape_or_none(lambda: F.conv2d(_zeros(1, 1, nh, nw), _zeros(1, 1, kh, kw), None,
                                          (sh, sw), (ph, pw), (dh, dw)))
    assume(got is not None)
    assert (conv.conv_output_size(nh, kh, sh, ph, dh),
            conv.conv_output_size(nw, kw, sw, pw, dw)) == got


@given(axis, axis, st.booleans())
def test_maxpool2d_size_matches_torch(ah, aw, ceil_mode):
    (nh, kh, sh, ph, dh), (nw, kw, sw, pw, dw) = ah, aw
    layer = nn.MaxPool2d((kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=ceil_mode)
    got = _shape_or_none(lambda: layer(_zeros(1, 1, nh, nw)))
    assume(got is not None)
    assert (conv.pool_output_size(nh, kh, sh, ph, dh, ceil_mode),
            conv.pool_output_size(nw, kw, sw, pw, dw, ceil_mode)) == got


@given(axis, st.booleans(), st.booleans(), st.booleans())
def test_avgpool2d_size_matches_torch(a, ceil_mode, count_include_pad, default_stride):
    n, k, s, p, _ = a
    stride = None if default_stride else s
    layer = nn.AvgPool2d(k, stride, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    got = _shape_or_none(lambda: layer(_zeros(1, 1, n, n)))
    assume(got is not None)
    expected = conv.pool_output_size(n, k, stride, p, ceil_mode=ceil_mode)
    assert got == (expected, expected)


@given(axis, axis, st.integers(0, 5), st.integers(0, 5))
def test_conv_transpose2d_size_matches_torch(ah, aw, oph, opw):
    (nh, kh, sh, ph, dh), (nw, kw, sw, pw, dw) = ah, aw
    got = _shape_or_none(lambda: F.conv_transpose2d(
        _zeros(1, 1, nh, nw), _zeros(1, 1, kh, kw), None, (sh, sw), (ph, pw), (oph, opw), 1,
        (dh, dw)))
    assume(got is not None)
    if 0 in got:  # the 2-D layer returns an empty tensor for a length of exactly 0
        with pytest.raises(ValueError, match="too large"):
            conv.conv_transpose_output_size(nh, kh, sh, ph, oph, dh)
            conv.conv_transpose_output_size(nw, kw, sw, pw, opw, dw)
        return
    assert (conv.conv_transpose_output_size(nh, kh, sh, ph, oph, dh),
            conv.conv_transpose_output_size(nw, kw, sw, pw, opw, dw)) == got


@given(axis, st.booleans(), st.integers(0, 5))
def test_torch_rejects_exactly_where_dlmath_raises(a, ceil_mode, op):
    n, k, s, p, d = a
    x, w = _zeros(1, 1, n), _zeros(1, 1, k)
    for run, formula in [
        (lambda: F.conv1d(x, w, None, s, p, d), lambda: conv.conv_output_size(n, k, s, p, d)),
        (lambda: F.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode),
         lambda: conv.pool_output_size(n, k, s, p, d, ceil_mode)),
        (lambda: F.conv_transpose1d(x, w, None, s, p, op, 1, d),
         lambda: conv.conv_transpose_output_size(n, k, s, p, op, d)),
    ]:
        got, ours = _shape_or_none(run), _dlmath_or_none(formula)
        assert got == (None if ours is None else (ours,))


def test_conv_transpose_empty_output_raises():
    # torch: 2-D returns a 0 x 0 tensor, 1-D raises; dlmath raises for both
    assert F.conv_transpose2d(_zeros(1, 1, 1, 1), _zeros(1, 1, 4, 4), padding=2).shape[-1] == 0
    assert _shape_or_none(lambda: F.conv_transpose1d(_zeros(1, 1, 1), _zeros(1, 1, 4),
                                                     padding=2)) is None
    with pytest.raises(ValueError, match="the output length would be 0"):
        conv.conv_transpose_output_size(1, 4, padding=2)


def test_exactly_the_configs_torch_rejects_raise():
    """Exhaustive small grid: dlmath raises ValueError exactly where torch raises."""
    checked = 0
    for n, k, s, p, d in itertools.product(range(1, 7), range(1, 5), range(1, 4), range(4),
                                           range(1, 3)):
        x, w = _zeros(1, 1, n), _zeros(1, 1, k)
        cases = [(lambda: F.conv1d(x, w, None, s, p, d),
                  lambda: conv.conv_output_size(n, k, s, p, d))]
        for c in (False, True):
            cases.append((lambda c=c: F.max_pool1d(x, k, s, p, d, ceil_mode=c),
                          lambda c=c: conv.pool_output_size(n, k, s, p, d, ceil_mode=c)))
            cases.append((lambda c=c: F.avg_pool1d(x, k, s, p, ceil_mode=c),
                          lambda c=c: conv.pool_output_size(n, k, s, p, ceil_mode=c)))
        for op in range(3):
            cases.append((lambda op=op: F.conv_transpose1d(x, w, None, s, p, op, 1, d),
                          lambda op=op: conv.conv_transpose_output_size(n, k, s, p, op, d)))
        for run, formula in cases:
            got = _shape_or_none(run)
            ours = _dlmath_or_none(formula)
            assert (got is None) == (ours is None), (n, k, s, p, d, got, ours)
            if got is not None:
                assert got == (ours,)
            checked += 1
    assert checked == 6 * 4 * 3 * 4 * 2 * 8


@given(axis, st.integers(0, 5))
def test_transpose_then_conv_returns_the_size(a, op):
    n, k, s, p, d = a
    assume(op < s)
    try:
        y = F.conv_transpose1d(_zeros(1, 1, n), _zeros(1, 1, k), None, s, p, op, 1, d)
    except RuntimeError:
        assume(False)
    assert F.conv1d(y, _zeros(1, 1, k), None, s, p, d).shape[-1] == n
    m = conv.conv_transpose_output_size(n, k, s, p, op, d)
    assert conv.conv_output_size(m, k, s, p, d) == n


def test_torch_output_size_oracle_agrees_with_modules():
    for n, k, s, p in itertools.product(range(1, 6), range(1, 4), range(1, 3), range(3)):
        x = _zeros(1, 1, n, n)
        mod = _shape_or_none(lambda: nn.Conv2d(1, 1, k, s, p)(x))
        assert conv.torch_output_size("conv2d", n, k, s, p) == (None if mod is None else mod[0])
        mod = _shape_or_none(lambda: nn.MaxPool2d(k, s, p, ceil_mode=True)(x))
        got = conv.torch_output_size("maxpool2d", n, k, s, p, ceil_mode=True)
        assert got == (None if mod is None else mod[0])


# ---------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------

@given(sizes, kernels, dilations)
def test_same_padding_keeps_size_in_torch(n, k, d):
    assume(d * (k - 1) % 2 == 0)
    assert _conv1d(n, k, 1, conv.same_padding(k, d), d).shape[-1] == n


@given(sizes, kernels, dilations)
def test_asymmetric_same_padding_is_torch_padding_same(n, k, d):
    gen = torch.Generator().manual_seed(n * 100 + k * 10 + d)
    x = torch.randn(1, 1, n, generator=gen, dtype=torch.float64)          # (B, C, N)
    w = torch.randn(1, 1, k, generator=gen, dtype=torch.float64)
    left, right = conv.same_padding(k, d, asymmetric=True)
    ours = F.conv1d(F.pad(x, (left, right)), w, dilation=d)
    with warnings.catch_warnings():   # torch warns that an even span needs a padded copy
        warnings.simplefilter("ignore", UserWarning)
        theirs = F.conv1d(x, w, padding="same", dilation=d)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_same_padding_even_span_raises_and_torch_has_no_symmetric_answer():
    for k, d in [(2, 1), (4, 1), (4, 3), (6, 5)]:
        with pytest.raises(ValueError, match="even number"):
            conv.same_padding(k, d)
        n = 30                    # no symmetric padding keeps this size in torch either
        assert all(_conv1d(n, k, 1, p, d).shape[-1] != n for p in range(d * k + 1))


@given(st.integers(1, 40), kernels, dilations)
def test_halving_padding_halves_even_sizes_and_rounds_odd_ones(m, k, d):
    p = conv.halving_padding(k, 2, d)
    span = d * (k - 1) + 1
    for n in (2 * m, 2 * m + 1):
        out = _shape_or_none(lambda: _conv1d(n, k, 2, p, d))
        if out is None:
            continue  # kernel larger than the padded input: no output at this n
        if n % 2 == 0:
            assert out == (n // 2,)
        else:
            assert out == ((n + 1) // 2 if span % 2 else (n - 1) // 2,)


@given(kernels, dilations)
def test_halving_padding_is_the_only_one_at_stride_2(k, d):
    span = d * (k - 1) + 1
    evens = range(2 * span, 2 * span + 8, 2)

    def halves(p):
        return all(_conv1d(n, k, 2, p, d).shape[-1] == n // 2 for n in evens)

    assert [p for p in range(span + 1) if halves(p)] == [conv.halving_padding(k, 2, d)]


@given(st.integers(1, 30), kernels, st.integers(1, 5), dilations)
def test_halving_padding_divides_by_any_stride(m, k, s, d):
    span = d * (k - 1) + 1
    assume(s > 1 or span % 2 == 1)
    p = conv.halving_padding(k, s, d)
    n = s * m
    assume(n + 2 * p >= span)
    assert _conv1d(n, k, s, p, d).shape[-1] == m
    if span % 2:  # odd span: ceil(n / s) for every n, the "same then subsample" size
        for n in range(max(1, span - 2 * p), 2 * s + span, 3):
            assert _conv1d(n, k, s, p, d).shape[-1] == -(-n // s)


@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 6), st.integers(0, 5))
def test_trailing_unread_inputs_have_zero_gradient(n, k, s, p):
    assume(p < k and n + 2 * p >= k)
    x = torch.zeros(1, 1, n, dtype=torch.float64, requires_grad=True)
    w = torch.ones(1, 1, k, dtype=torch.float64)
    F.conv1d(x, w, None, s, p).sum().backward()
    read = (x.grad[0, 0] != 0).nonzero().flatten()
    unread_at_end = n - 1 - int(read.max()) if len(read) else n
    assert conv.trailing_unread_inputs(n, k, s, p) == unread_at_end


# ---------------------------------------------------------------------------------------
# receptive fields against gradients of real stacks
# ---------------------------------------------------------------------------------------

layer = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(0, 3), st.integers(1, 2))
stacks = st.lists(layer, min_size=1, max_size=4)


def _valid_span(rf, data, extra):
    """Pick an output unit whose field lies inside an input of a suitable length."""
    first = -(-rf.padding // rf.stride)             # first unit whose field starts at >= 0
    u = first + data.draw(st.integers(0, 2))
    start = u * rf.stride - rf.padding
    n = start + rf.size + extra                     # the field ends inside the input
    return u, start, start + rf.size - 1, n


@given(stacks, st.integers(0, 4), st.data())
def test_receptive_field_is_gradient_support_of_conv2d_stack(layers, extra, data):
    rf = conv.receptive_field(layers)
    u, start, end, n = _valid_span(rf, data, extra)
    gen = torch.Generator().manual_seed(len(layers))
    x = torch.zeros(1, 1, n, n, dtype=torch.float64, requires_grad=True)   # (B, C, H, W)
    h = x
    try:
        for k, s, p, d in layers:
            w = 0.5 + torch.rand(1, 1, k, k, generator=gen, dtype=torch.float64)
            h = F.conv2d(h, w, None, s, p, d)
        y = h[0, 0, u, u]
    except (RuntimeError, IndexError):
        pytest.fail(f"a field inside the input implies a valid unit: {layers}, n={n}, u={u}")
    (g,) = torch.autograd.grad(y, x)
    rows = (g[0, 0] != 0).any(dim=1).nonzero().flatten()
    cols = (g[0, 0] != 0).any(dim=0).nonzero().flatten()
    assert (int(rows.min()), int(rows.max())) == (start, end)
    assert (int(cols.min()), int(cols.max())) == (start, end)
    if all(d == 1 and s <= k for k, s, _, d in layers):   # no gaps: the field is solid
        assert len(rows) == rf.size


@given(stacks, st.integers(0, 4), st.data())
def test_every_row_of_the_table_matches_gradients(layers, extra, data):
    rows = conv.receptive_field_per_layer(layers)
    assert [r.depth for r in rows] == list(range(1, len(layers) + 1))
    for depth, rf in enumerate(rows, start=1):
        u, start, end, n = _valid_span(rf, data, extra)
        x = torch.zeros(1, 1, n, dtype=torch.float64, requires_grad=True)   # (B, C, N)
        h = x
        for k, s, p, d in layers[:depth]:
            h = F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), None, s, p, d)
        (g,) = torch.autograd.grad(h[0, 0, u], x)
        support = (g[0, 0] != 0).nonzero().flatten()
        assert (int(support.min()), int(support.max())) == (start, end)


def test_pooling_in_a_stack_counts_like_a_layer():
    # conv 5 (padding 2), 2-wide average pool, twice: the pattern of report 004's network
    layers = [(5, 1, 2), (2, 2, 0), (5, 1, 2), (2, 2, 0)]
    rf = conv.receptive_field(layers)
    n = 32
    x = torch.zeros(1, 1, n, dtype=torch.float64, requires_grad=True)   # (B, C, N)
    w = torch.ones(1, 1, 5, dtype=torch.float64)
    h = F.avg_pool1d(F.conv1d(F.avg_pool1d(F.conv1d(x, w, padding=2), 2), w, padding=2), 2)
    u = 4
    (g,) = torch.autograd.grad(h[0, 0, u], x)
    support = (g[0, 0] != 0).nonzero().flatten()
    assert (int(support.min()), int(support.max())) == rf.input_span(u)


def test_unit_input_gradient_support_is_the_field():
    layers = [(3, 1, 1), (3, 2, 1), (3, 1, 2, 2)]
    rf = conv.receptive_field(layers)
    for weights in ("ones", "random"):
        g = conv.unit_input_gradient(layers, 40, unit=7, weights=weights, seed=3)
        support = (g != 0).nonzero().flatten()
        assert (int(support.min()), int(support.max())) == rf.input_span(7)


# ---------------------------------------------------------------------------------------
# symbolic forms
# ---------------------------------------------------------------------------------------

def test_symbolic_special_cases():
    expr, (n, k, s, p, d) = conv.conv_output_size_sym()
    j, m = sp.symbols("j m", integer=True, positive=True)
    assert sp.simplify(expr.subs({k: 1, s: 1, p: 0})) == n                       # 1x1 conv
    assert sp.simplify(expr.subs({s: 1, p: 0, d: 1})) == n - k + 1               # valid
    assert sp.simplify(expr.subs({s: 1, p: k - 1, d: 1})) == n + k - 1           # full
    same = conv.same_padding(2 * j + 1, d)                                       # odd kernel
    assert sp.simplify(expr.subs({k: 2 * j + 1, p: same, s: 1})) == n
    for kernel in (2 * j, 2 * j + 1):                                            # halving
        half = conv.halving_padding(kernel)
        assert sp.simplify(expr.subs({k: kernel, p: half, s: 2, d: 1, n: 2 * m})) == m
    t = conv.conv_transpose_output_size(n, k)
    assert sp.simplify(t - (n + k - 1)) == 0                                     # full conv size


@given(axis, st.booleans())
def test_symbolic_formula_evaluates_to_torch_sizes(a, ceil_mode):
    n_, k_, s_, p_, d_ = a
    expr, (n, k, s, p, d) = conv.conv_output_size_sym(ceil_mode=ceil_mode)
    x = _zeros(1, 1, n_)
    got = _shape_or_none((lambda: F.max_pool1d(x, k_, s_, p_, d_, ceil_mode=True)) if ceil_mode
                         else (lambda: _conv1d(n_, k_, s_, p_, d_)))
    assume(got is not None)
    assert expr.subs({n: n_, k: k_, s: s_, p: p_, d: d_}) == got[0]


def test_symbolic_receptive_field_of_a_uniform_stack():
    k, s = sp.symbols("k s", integer=True, positive=True)
    for depth in range(1, 5):
        r = conv.receptive_field([(k, s, 0)] * depth).size
        geometric = 1 + (k - 1) * sum(s ** i for i in range(depth))
        assert sp.expand(r - geometric) == 0
        assert conv.receptive_field([(k, 1, 0)] * depth).size == depth * (k - 1) + 1
    k1, k2, s1 = sp.symbols("k1 k2 s1", integer=True, positive=True)
    # two layers (report 004, I-Q7), checked against a gradient for several substitutions
    r2 = conv.receptive_field([(k1, s1, 0), (k2, 1, 0)]).size
    for a, b, c in [(3, 3, 1), (5, 3, 2), (2, 4, 3), (7, 1, 2)]:
        x = torch.zeros(1, 1, 60, dtype=torch.float64, requires_grad=True)
        h = F.conv1d(x, torch.ones(1, 1, a, dtype=torch.float64), None, c)
        h = F.conv1d(h, torch.ones(1, 1, b, dtype=torch.float64))
        (g,) = torch.autograd.grad(h[0, 0, 3], x)
        support = (g[0, 0] != 0).nonzero().flatten()
        assert r2.subs({k1: a, k2: b, s1: c}) == int(support.max() - support.min()) + 1


def test_symbols_of_unknown_sign_are_accepted_and_bad_numbers_rejected():
    x = sp.Symbol("x")
    assert conv.conv_output_size(x, 3, padding=1).free_symbols == {x}
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv.conv_output_size(10, 3, stride=sp.Integer(0))
    with pytest.raises(ValueError, match="size must be an integer"):
        conv.conv_output_size(sp.Rational(7, 2), 3)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        conv.conv_output_size(10, 3, padding=-sp.Symbol("q", positive=True))


# ---------------------------------------------------------------------------------------
# invalid inputs
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(size=3, kernel_size=5), ValueError, "kernel 5 .* larger than padded input 3"),
    (dict(size=0, kernel_size=1), ValueError, "size must be >= 1, got 0"),
    (dict(size=5, kernel_size=0), ValueError, "kernel_size must be >= 1, got 0"),
    (dict(size=5, kernel_size=3, stride=0), ValueError, "stride must be >= 1"),
    (dict(size=5, kernel_size=3, padding=-1), ValueError, "padding must be >= 0"),
    (dict(size=5, kernel_size=3, dilation=0), ValueError, "dilation must be >= 1"),
    (dict(size=5.0, kernel_size=3), TypeError, "size must be an int"),
    (dict(size=5, kernel_size="3"), TypeError, "kernel_size must be an int"),
    (dict(size=5, kernel_size=True), TypeError, "kernel_size must be an int"),
    (dict(size=5, kernel_size=3, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
    (dict(size=5, kernel_size=3, padding="full"), ValueError, "padding must be one of"),
    (dict(size=5, kernel_size=3, stride=2, padding="same"), ValueError, "strided"),
    (dict(size=(5, 5), kernel_size=(3, 3, 3)), ValueError, "same number of entries"),
])
def test_conv_output_size_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv.conv_output_size(**kwargs)


def test_numpy_integers_are_accepted():
    np = pytest.importorskip("numpy")
    out = conv.conv_output_size(np.int64(32), np.int32(5), padding=np.int64(2))
    assert out == 32 and type(out) is int


def test_other_functions_reject_bad_input():
    with pytest.raises(ValueError, match="padding 2 is more than half of kernel 3"):
        conv.pool_output_size(8, 3, padding=2)
    with pytest.raises(ValueError, match="output_padding 2 must be smaller than max"):
        conv.conv_transpose_output_size(4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding 5 is too large"):
        conv.conv_transpose_output_size(2, 3, padding=5)
    with pytest.raises(ValueError, match="output_padding must be >= 0"):
        conv.conv_transpose_output_size(4, 3, output_padding=-1)
    with pytest.raises(ValueError, match="with stride 1 no padding keeps the size"):
        conv.halving_padding(2, stride=1)
    with pytest.raises(TypeError, match="asymmetric must be True or False"):
        conv.same_padding(3, asymmetric="yes")
    with pytest.raises(ValueError, match="layers is empty"):
        conv.receptive_field([])
    with pytest.raises(ValueError, match=r"layers\[1\] must be"):
        conv.receptive_field([(3, 1, 1), (3, 1)])
    with pytest.raises(ValueError, match=r"layers\[1\] stride must be >= 1"):
        conv.receptive_field([(3, 1, 1), (3, 0, 1)])
    with pytest.raises(TypeError, match="layers must be a torch module or a sequence"):
        conv.receptive_field(3)
    with pytest.raises(ValueError, match="unit must be an int in"):
        conv.unit_input_gradient([(3, 1, 0)], size=5, unit=3)
    with pytest.raises(ValueError, match="weights must be"):
        conv.unit_input_gradient([(3, 1, 0)], size=5, weights="zeros")
    with pytest.raises(ValueError, match="layer must be one of"):
        conv.torch_output_size("conv4d", 5, 3)
    with pytest.raises(ValueError, match="kernel 3 .* larger than padded input 2"):
        conv.trailing_unread_inputs(2, 3)


# ---------------------------------------------------------------------------------------
# torch's conventions: kernel_size, int-or-tuple per axis, padding="same"/"valid", models
# ---------------------------------------------------------------------------------------

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


@st.composite
def per_axis(draw, values, dims):
    """One value for every axis (as an int) or a tuple with one per axis, as torch takes them."""
    if draw(st.booleans()):
        return draw(values)
    return tuple(draw(values) for _ in range(dims))


@st.composite
def layer_args(draw, max_size=12):
    dims = draw(st.integers(1, 3))
    size = tuple(draw(st.integers(1, max_size)) for _ in range(dims))
    kw = dict(kernel_size=draw(per_axis(st.integers(1, 4), dims)),
              stride=draw(per_axis(st.integers(1, 3), dims)),
              padding=draw(st.one_of(per_axis(st.integers(0, 3), dims),
                                     st.sampled_from(["same", "valid"]))),
              dilation=draw(per_axis(st.integers(1, 3), dims)))
    return dims, size, kw


def _module_shape(layer, size):
    """Spatial output shape of a torch layer on a zero input, or None if torch refuses."""
    with warnings.catch_warnings():   # torch warns that an even-span "same" pads a copy
        warnings.simplefilter("ignore", UserWarning)
        return _shape_or_none(lambda: layer(torch.zeros(1, 1, *size)))


@given(layer_args())
def test_conv_output_size_reads_arguments_as_torch_conv_layers_do(case):
    dims, size, kw = case
    try:
        layer = CONV[dims](1, 1, **kw)
    except (RuntimeError, ValueError):      # e.g. padding="same" with a stride
        with pytest.raises(ValueError):
            conv.conv_output_size(size, **kw)
        return
    got = _module_shape(layer, size)
    ours = _dlmath_or_none(conv.conv_output_size, size, **kw)
    assert got == ours


@given(layer_args(), st.booleans())
def test_pool_output_size_reads_arguments_as_torch_pool_layers_do(case, ceil_mode):
    dims, size, kw = case
    assume(not isinstance(kw["padding"], str))                 # pooling takes ints only
    got = _module_shape(MAXPOOL[dims](**kw, ceil_mode=ceil_mode), size)
    assert got == _dlmath_or_none(conv.pool_output_size, size, **kw, ceil_mode=ceil_mode)
    avg = {k: v for k, v in kw.items() if k != "dilation"}
    got = _module_shape(AVGPOOL[dims](**avg, ceil_mode=ceil_mode), size)
    assert got == _dlmath_or_none(conv.pool_output_size, size, **avg, ceil_mode=ceil_mode)


@given(layer_args(), st.data())
def test_conv_transpose_output_size_reads_arguments_as_torch_layers_do(case, data):
    dims, size, kw = case
    assume(not isinstance(kw["padding"], str))
    op = data.draw(per_axis(st.integers(0, 2), dims))
    try:
        layer = CONVT[dims](1, 1, **kw, output_padding=op)
    except (RuntimeError, ValueError):
        return
    got = _module_shape(layer, size)
    if got is not None and 0 in got:   # torch's 2-D/3-D layers return an empty tensor
        return
    assert got == _dlmath_or_none(conv.conv_transpose_output_size, size, **kw, output_padding=op)


@given(st.integers(1, 3), st.data())
def test_same_and_halving_padding_per_axis_in_torch_layers(dims, data):
    k = data.draw(per_axis(st.sampled_from([1, 3, 5]), dims))
    d = data.draw(per_axis(st.integers(1, 3), dims))
    size = tuple(data.draw(st.integers(8, 14)) for _ in range(dims))
    layer = CONV[dims](1, 1, k, padding=conv.same_padding(k, d), dilation=d)
    assert _module_shape(layer, size) == size
    assert conv.conv_output_size(size, k, padding="same", dilation=d) == size
    even = tuple(2 * n for n in size)
    layer = CONV[dims](1, 1, k, stride=2, padding=conv.halving_padding(k, 2, d), dilation=d)
    assert _module_shape(layer, even) == size


@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 5), st.integers(1, 5),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from([0, 1, "valid", "same"]))
def test_trailing_unread_inputs_per_axis_have_zero_gradient(nh, nw, kh, kw, sh, sw, p):
    stride = (1, 1) if p == "same" else (sh, sw)
    pad = {"same": 0, "valid": 0}.get(p, p)
    assume(p == "same" or min(nh + 2 * pad - kh, nw + 2 * pad - kw) >= 0)
    assume(pad < min(kh, kw))         # no window entirely in the padding (as above)
    x = torch.zeros(1, 1, nh, nw, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y = F.conv2d(x, torch.ones(1, 1, kh, kw, dtype=torch.float64), None, stride, p)
    (g,) = torch.autograd.grad(y.sum(), x)
    read_rows = (g[0, 0] != 0).any(dim=1).nonzero().flatten()
    read_cols = (g[0, 0] != 0).any(dim=0).nonzero().flatten()
    expected = (nh - 1 - int(read_rows.max()), nw - 1 - int(read_cols.max()))
    assert conv.trailing_unread_inputs((nh, nw), (kh, kw), stride, p) == expected


def test_torch_output_size_takes_3d_layers_and_tuples():
    for name, layer in [("conv3d", nn.Conv3d(1, 1, (3, 1, 2), (1, 2, 1), "valid")),
                        ("maxpool3d", nn.MaxPool3d((3, 1, 2), (1, 2, 1))),
                        ("avgpool3d", nn.AvgPool3d((3, 1, 2), (1, 2, 1)))]:
        got = _module_shape(layer, (5, 6, 7))
        assert conv.torch_output_size(name, (5, 6, 7), (3, 1, 2), (1, 2, 1)) == got
    assert conv.torch_output_size("conv2d", 9, 4, padding="same") == 9
    assert conv.torch_output_size("conv2d", 9, 4, stride=2, padding="same") is None


# --- receptive fields of torch models, against the gradient of the model itself ----------

@st.composite
def conv_nets(draw, dims=2):
    """A random stack of convolution, pooling, activation and normalisation layers."""
    layers, oracle = [], []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "max", "avg", "act"]))
        k = draw(per_axis(st.integers(1, 3), dims))
        s = draw(per_axis(st.integers(1, 2), dims))
        if kind == "conv":
            d = draw(per_axis(st.integers(1, 2), dims))
            p = draw(st.one_of(per_axis(st.integers(0, 2), dims), st.just("same")))
            layer = CONV[dims](1, 1, k, 1 if p == "same" else s, p, d, bias=False)
            oracle.append(layer)
        elif kind in ("max", "avg"):
            kk = conv._tuple(k, dims)
            p = tuple(draw(st.integers(0, n // 2)) for n in kk)
            layer = (MAXPOOL if kind == "max" else AVGPOOL)[dims](kk, s, p)
            oracle.append(AVGPOOL[dims](kk, s, p))   # a max pool's window, every input counted
        else:
            layer = draw(st.sampled_from([nn.ReLU(), nn.Identity(), nn.Dropout(0.5)]))
            oracle.append(layer)
        layers.append(layer)
    return nn.Sequential(*layers).double(), nn.Sequential(*oracle).double()


def _positive(net):
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(p.numel()))
    return net


def _support(net, n, unit):
    """First and last input index, per axis, whose gradient for output ``unit`` is non-zero."""
    x = torch.ones(1, 1, *n, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y = (net.eval() if isinstance(net, nn.Module) else net)(x)
    (g,) = torch.autograd.grad(y[(0, 0, *unit)], x)
    nz = (g[0, 0] != 0).nonzero()
    return tuple((int(nz[:, a].min()), int(nz[:, a].max())) for a in range(len(n)))


@settings(max_examples=60, deadline=None)
@given(conv_nets(), st.data())
def test_receptive_field_of_a_model_is_the_gradient_support(nets, data):
    net, oracle = nets
    oracle.load_state_dict(net.state_dict())
    _positive(oracle)
    try:
        rf = conv.receptive_field(net, (1, 40, 40))
    except ValueError as err:
        assert "no convolution or pooling layer" in str(err)
        assume(False)
    unit = tuple(-(-p // s) + data.draw(st.integers(0, 1)) for p, s in zip(rf.padding, rf.stride))
    span = rf.input_span(unit)
    n = tuple(end + 1 + data.draw(st.integers(0, 2)) for _, end in span)
    assert _support(oracle, n, unit) == span
    assert conv.receptive_field(net, (3, 1, *n)) == rf          # with a batch dimension


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 2), st.integers(1, 3),
       st.integers(1, 2))
def test_receptive_field_of_branches_is_their_union(ka, kb, da, kc, sc):
    class TwoPaths(nn.Module):
        """Two "same" convolutions added: fields of different sizes and offsets."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, (ka, kb), padding="same", dilation=(da, 1), bias=False)
            self.b = nn.Conv2d(1, 1, (kb, ka), padding="same", bias=False)
            self.c = nn.Conv2d(1, 1, kc, stride=sc, bias=False)

        def forward(self, x):
            return self.c(torch.relu(self.a(x) + self.b(x)))

    net = _positive(TwoPaths().double())
    rf = conv.receptive_field(net, (1, 30, 30))
    unit = tuple(-(-p // s) for p, s in zip(rf.padding, rf.stride))
    span = rf.input_span(unit)
    assert _support(net, tuple(end + 3 for _, end in span), unit) == span
    assert rf.depth == 2 and rf.layer == "c"


def test_receptive_field_of_a_model_fx_cannot_record_uses_hooks():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(1, 1, 3, bias=False), nn.Conv1d(1, 1, 2, 2, bias=False)
            self.pool = nn.MaxPool1d(2)

        def forward(self, x):
            if x.sum() < 0:                        # data-dependent: torch.fx cannot record it
                x = -x
            return self.b(self.pool(self.a(x)))

    rows = conv.receptive_field_per_layer(Branchy(), (1, 30))
    assert [r.layer for r in rows] == ["a", "pool", "b"]
    net = _positive(nn.Sequential(nn.Conv1d(1, 1, 3, bias=False), nn.AvgPool1d(2),
                                  nn.Conv1d(1, 1, 2, 2, bias=False)).double())
    unit = (2,)
    assert _support(net, (30,), unit) == rows[-1].input_span(unit)


def test_receptive_field_of_a_model_rejects_what_has_none():
    with pytest.raises(ValueError, match=r"layer '2' \(Conv2d\) reads the output of '0'"):
        conv.receptive_field(nn.Sequential(nn.Flatten(), nn.Unflatten(1, (1, 4, 4)),
                                           nn.Conv2d(1, 1, 3)), (1, 4, 4))
    with pytest.raises(ValueError, match="no convolution or pooling layer"):
        conv.receptive_field(nn.Sequential(nn.Linear(3, 3)), (3,))
    with pytest.raises(ValueError, match=r"does not fit a 2-d layer"):
        conv.receptive_field(nn.Conv2d(1, 1, 3), (10, 10))
    with pytest.raises(TypeError, match="needs its input_shape"):
        conv.receptive_field(nn.Conv2d(1, 1, 3))
    with pytest.raises(TypeError, match="input_shape is for a torch model"):
        conv.receptive_field([(3, 1, 1)], (1, 10))
    with pytest.raises(ValueError, match="same number of entries"):
        conv.receptive_field([((3, 3), 1, (1, 1, 1))])


def test_receptive_field_classifier_head_is_left_out():
    # everything after the last convolution or pooling mixes all positions
    net = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 10))
    rf = conv.receptive_field(net, (3, 32, 32))
    assert rf.layer == "3"
    first = conv.receptive_field(nn.Sequential(net[0], net[2], net[3]), (3, 32, 32))
    assert (rf.size, rf.stride, rf.padding) == (first.size, first.stride, first.padding)


def test_receptive_field_follows_functional_convolutions_and_poolings():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1, 1, 3, 2, dtype=torch.float64))

        def forward(self, x):
            x = F.avg_pool2d(x, 2, 1, 1)                       # (k, s, p) = (2, 1, 1)
            x = F.conv2d(x, self.weight, None, (2, 1), 0, (1, 2))
            return F.max_pool2d(x, 3, stride=2, dilation=1)

    rf = conv.receptive_field(Functional(), (1, 40, 40))
    oracle = lambda x: F.avg_pool2d(F.conv2d(F.avg_pool2d(x, 2, 1, 1),   # noqa: E731
                                             torch.ones(1, 1, 3, 2, dtype=torch.float64),
                                             None, (2, 1), 0, (1, 2)), 3, 2)
    unit = (2, 3)
    assert _support(oracle, (40, 40), unit) == rf.input_span(unit)
    assert rf.layer == "max_pool2d" and rf.depth == 3
