"""Tests of dlmath.equivariance against independent oracles.

Oracles: index loops written from the definitions (translations, pooling on the torus,
pixel permutations), ``torch.roll``, ``torch.nn.Conv2d`` with its own circular padding,
``torch.nn.functional.conv2d``/``max_pool2d`` on windows that do not wrap, ``nn.Linear`` on
flattened maps, and autograd for the gradient of a permuted first layer.  Inputs with small
integer values make the float64 sums exact, so identities that hold in exact arithmetic
are checked with ``==``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from dlmath import equivariance as eq
from dlmath.data import pixel_permuted_digits
from dlmath.models import image_mlp
from dlmath.models.zoo import three_block_cnn

DT = torch.float64


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: extra intra-op threads only slow them down on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def int_images(seed: int, shape, low: int = -3, high: int = 4) -> torch.Tensor:
    """Images with small integer values: every sum of their products is exact in float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=g).to(DT)


def roll_loop(x: torch.Tensor, ty: int, tx: int, circular: bool) -> torch.Tensor:
    """(T_t x)[i, j] = x[i - ty, j - tx] by an explicit loop over pixels."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for i, j in itertools.product(range(h), range(w)):
        si, sj = i - ty, j - tx
        if circular:
            out[..., i, j] = x[..., si % h, sj % w]
        elif 0 <= si < h and 0 <= sj < w:
            out[..., i, j] = x[..., si, sj]
    return out


sizes = st.integers(1, 7)
shifts = st.integers(-9, 9)


# --- translations ----------------------------------------------------------------------

@given(h=sizes, w=sizes, ty=shifts, tx=shifts, seed=st.integers(0, 10**6))
def test_translate_matches_index_loop_and_roll(h, w, ty, tx, seed):
    x = int_images(seed, (2, h, w))
    circ = eq.translate(x, (ty, tx))
    assert torch.equal(circ, roll_loop(x, ty, tx, circular=True))
    assert torch.equal(circ, torch.roll(x, (ty, tx), (-2, -1)))
    assert torch.equal(eq.translate(x, (ty, tx), "zeros"), roll_loop(x, ty, tx, circular=False))


@given(h=sizes, w=sizes, s=st.tuples(shifts, shifts), t=st.tuples(shifts, shifts),
       seed=st.integers(0, 10**6))
def test_circular_translations_form_a_group(h, w, s, t, seed):
    x = int_images(seed, (h, w))
    st_ = (s[0] + t[0], s[1] + t[1])
    assert torch.equal(eq.translate(eq.translate(x, t), s), eq.translate(x, st_))
    assert torch.equal(eq.translate(eq.translate(x, t), (-t[0], -t[1])), x)


def test_translate_rejects_bad_input():
    with pytest.raises(ValueError, match="boundary must be one of"):
        eq.translate(torch.zeros(3, 3), 1, "reflect")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        eq.translate(torch.zeros(3), 1)
    with pytest.raises(TypeError, match="shift"):
        eq.translate(torch.zeros(3, 3), 1.5)
    with pytest.raises(ValueError, match="shift must be an int or a sequence of 2 ints"):
        eq.translate(torch.zeros(3, 3), (1, 2, 3))


# --- convolution: equivariance with circular padding, border band with zeros --------------

@given(h=st.integers(3, 9), w=st.integers(3, 9), r=st.integers(0, 2), cin=st.integers(1, 2),
       cout=st.integers(1, 3), ty=shifts, tx=shifts, seed=st.integers(0, 10**6))
def test_circular_convolution_is_exactly_equivariant(h, w, r, cin, cout, ty, tx, seed):
    k = 2 * r + 1
    assume(r <= min(h, w))
    conv = nn.Conv2d(cin, cout, k, padding=r, padding_mode="circular", dtype=DT)
    with torch.no_grad():  # integer weights: exact sums
        conv.weight.copy_(int_images(seed + 1, conv.weight.shape))
        conv.bias.copy_(int_images(seed + 2, conv.bias.shape))
    x = int_images(seed, (2, cin, h, w))
    with torch.no_grad():
        err = eq.equivariance_error(conv, x, (ty, tx))
    assert torch.equal(err, torch.zeros_like(err))


@given(h=st.integers(3, 10), w=st.integers(3, 10), r=st.integers(1, 2), ty=shifts, tx=shifts,
       seed=st.integers(0, 10**6))
def test_zero_padding_error_lives_in_the_border_band(h, w, r, ty, tx, seed):
    k = 2 * r + 1
    assume(k <= min(h, w))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 1, h, w, dtype=DT, generator=g)
    weight = torch.randn(1, 1, k, k, dtype=DT, generator=g)
    err = eq.equivariance_error(lambda z: F.conv2d(z, weight, padding=r), x, (ty, tx))[0, 0]
    band = eq.equivariance_border_band((h, w), k, (ty, tx))
    outside = err[~band].abs()
    assert outside.numel() == 0 or outside.max() < 1e-12
    if (ty % h, tx % w) != (0, 0):  # a real shift: for a generic input the band does fail
        assert err[band].abs().max() > 1e-6


def test_border_band_rejects_even_kernels():
    with pytest.raises(ValueError, match="kernel must be odd"):
        eq.equivariance_border_band(5, 2, 1)


@settings(max_examples=30)
@given(n=st.sampled_from([4, 6, 8, 12]), stride=st.sampled_from([1, 2, 4]),
       kernel=st.sampled_from([1, 3]), t=st.integers(-8, 8), seed=st.integers(0, 10**6))
def test_strided_circular_convolution_equivariant_to_multiples_of_the_stride(
        n, stride, kernel, t, seed):
    assume(n % stride == 0 and kernel <= n)
    conv = nn.Conv2d(1, 2, kernel, stride=stride, padding=kernel // 2,
                     padding_mode="circular", bias=False, dtype=DT)
    with torch.no_grad():
        conv.weight.copy_(int_images(seed + 1, conv.weight.shape))
        x = int_images(seed, (1, 1, n, n))
        y = conv(x)
        assume(y.abs().sum() > 0)
        # the shift is identifiable only if no non-zero circular shift maps y onto itself
        h, w = y.shape[-2:]
        assume(not any(torch.equal(y, y.roll((a, b), dims=(-2, -1)))
                       for a in range(h) for b in range(w) if (a, b) != (0, 0)))
        res = eq.shift_sensitivity(conv, x, (0, stride * t))
    assert res.residual == 0.0
    assert res.output_shift[1] % (n // stride) == t % (n // stride)


# --- pooling ---------------------------------------------------------------------------

def pool_loop(x, kh, kw, sh, sw, op):
    """Pooling over wrapped windows by loops: the definition of pool2d_circular."""
    h, w = x.shape[-2:]
    ho, wo = -(-h // sh), -(-w // sw)
    out = torch.empty(*x.shape[:-2], ho, wo, dtype=x.dtype)
    for i, j in itertools.product(range(ho), range(wo)):
        rows = [(i * sh + a) % h for a in range(kh)]
        cols = [(j * sw + b) % w for b in range(kw)]
        win = x[..., rows, :][..., cols]
        win = win.reshape(*x.shape[:-2], -1)
        out[..., i, j] = win.amax(-1) if op == "max" else win.mean(-1)
    return out


@given(h=sizes, w=sizes, kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 4),
       sw=st.integers(1, 4), op=st.sampled_from(["max", "avg"]), seed=st.integers(0, 10**6))
def test_pool2d_circular_matches_loops_and_torch_inside(h, w, kh, kw, sh, sw, op, seed):
    assume(kh <= h and kw <= w)
    x = int_images(seed, (2, 1, h, w))
    out = eq.pool2d_circular(x, (kh, kw), (sh, sw), op=op)
    assert torch.allclose(out, pool_loop(x, kh, kw, sh, sw, op), atol=1e-12, rtol=0)
    torch_pool = F.max_pool2d if op == "max" else F.avg_pool2d
    inside = torch_pool(x, (kh, kw), (sh, sw))  # windows that do not wrap
    assert torch.allclose(out[..., :inside.shape[-2], :inside.shape[-1]], inside,
                          atol=1e-12, rtol=0)


@given(k=st.integers(1, 4), t=st.integers(0, 6), reps=st.integers(1, 3))
def test_max_pooling_keeps_an_impulse_only_inside_its_window(k, t, reps):
    w = k * reps
    inv = eq.impulse_shift_invariance(lambda z: F.max_pool2d(z, (1, k)), (1, w), (0, t))[0]
    # brute force: the impulse at p moves to (p + t) mod W; the output is the same iff the
    # window index is the same
    expected = torch.tensor([p // k == ((p + t) % w) // k for p in range(w)])
    assert torch.equal(inv, expected)


def test_global_pooling_is_invariant_to_every_circular_shift():
    x = int_images(0, (3, 2, 7, 5))
    for t in itertools.product(range(-7, 8), range(-5, 6)):
        for pool in (lambda z: z.amax((-2, -1)), lambda z: z.mean((-2, -1))):
            assert torch.equal(pool(eq.translate(x, t)), pool(x))


def test_shift_sensitivity_matches_brute_force_search():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2, 12, 12, dtype=DT, generator=g)
    for stride, t in itertools.product((1, 2, 3, 4), [(0, 1), (1, 2), (3, 3), (0, 4)]):
        f = lambda z, s=stride: eq.pool2d_circular(z, 2, s)  # noqa: E731
        got = eq.shift_sensitivity(f, x, t)
        a, b = f(torch.roll(x, t, (-2, -1))), f(x)
        norms = {u: float((a - torch.roll(b, u, (-2, -1))).norm() / b.norm())
                 for u in itertools.product(range(b.shape[-2]), range(b.shape[-1]))}
        assert got.residual == pytest.approx(min(norms.values()), abs=1e-12)
        assert got.change == pytest.approx(float((a - b).norm() / b.norm()), abs=1e-12)
        if t[0] % stride == 0 and t[1] % stride == 0:
            assert got.residual == 0.0


def test_shift_sensitivity_rejects_zero_output():
    with pytest.raises(ValueError, match="f\\(x\\) is zero"):
        eq.shift_sensitivity(lambda z: z, torch.zeros(1, 1, 4, 4), 1)


@settings(max_examples=25)
@given(stride=st.sampled_from([2, 4]), blur=st.integers(1, 5), u=st.integers(-3, 3),
       seed=st.integers(0, 10**6))
def test_antialiased_pooling(stride, blur, u, seed):
    x = int_images(seed, (1, 2, 8, 8), 0, 9)
    y = eq.antialiased_max_pool2d(x, 2, stride, blur)
    assert y.shape == (1, 2, 8 // stride, 8 // stride)
    # dense max pooling then a normalised blur: the blurred map keeps the mean of the dense one
    dense = pool_loop(x, 2, 2, 1, 1, "max")
    if blur == 1:
        assert torch.equal(y, dense[..., ::stride, ::stride])
    full = eq.antialiased_max_pool2d(x, 2, 1, blur)
    assert torch.allclose(full.mean((-2, -1)), dense.mean((-2, -1)), atol=1e-12)
    # equivariant to shifts by multiples of the stride
    moved = eq.antialiased_max_pool2d(torch.roll(x, stride * u, -1), 2, stride, blur)
    assert torch.allclose(moved, torch.roll(y, u, -1), atol=1e-12, rtol=0)


# --- fully connected layers as convolutions ------------------------------------------------

@given(c=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), o=st.integers(1, 5),
       extra_h=st.integers(0, 3), extra_w=st.integers(0, 3), bias=st.booleans(),
       seed=st.integers(0, 10**6))
def test_linear_as_conv2d_against_nn_linear(c, h, w, o, extra_h, extra_w, bias, seed):
    torch.manual_seed(seed)
    lin = nn.Linear(c * h * w, o, bias=bias, dtype=DT)
    conv = eq.linear_as_conv2d(lin, (c, h, w))
    x = torch.randn(3, c, h + extra_h, w + extra_w, dtype=DT)
    y = conv(x)  # (3, O, extra_h + 1, extra_w + 1)
    assert y.shape == (3, o, extra_h + 1, extra_w + 1)
    for u, v in itertools.product(range(extra_h + 1), range(extra_w + 1)):
        window = x[:, :, u:u + h, v:v + w].flatten(1)
        assert torch.allclose(y[:, :, u, v], lin(window), atol=1e-12, rtol=0)


def test_linear_as_conv2d_rejects_bad_input():
    with pytest.raises(TypeError, match="torch.nn.Linear"):
        eq.linear_as_conv2d(nn.Conv2d(1, 1, 1), (1, 1, 1))
    with pytest.raises(ValueError, match="in_features is 18"):
        eq.linear_as_conv2d(nn.Linear(18, 2), (2, 3, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        eq.linear_as_conv2d(nn.Linear(18, 2), (18,))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_fully_convolutional_three_block_cnn_same_logits(batch_norm):
    torch.manual_seed(0)
    net = three_block_cnn(in_channels=1, size=12, channels=(3, 4), hidden=(6, 5),
                          num_classes=4, batch_norm=batch_norm, dropout=0.0).to(DT)
    x = torch.randn(8, 1, 12, 12, dtype=DT)
    net.train()
    net(x)  # move the batch-norm statistics away from their initial values
    net.eval()
    fcn = fully_convolutional = eq.fully_convolutional(net, (1, 12, 12))
    assert not any(isinstance(m, nn.Linear) for m in fully_convolutional.modules())
    assert torch.allclose(fcn(x).flatten(1), net(x), atol=1e-12, rtol=0)
    assert fcn(torch.randn(2, 1, 20, 28, dtype=DT)).shape == (2, 4, 3, 5)


@settings(max_examples=25)
@given(c=st.integers(1, 2), k1=st.integers(1, 3), k2=st.integers(1, 3), pool=st.integers(1, 2),
       big_h=st.integers(0, 3), big_w=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_fully_convolutional_is_the_sliding_window_classifier(c, k1, k2, pool, big_h, big_w,
                                                              seed):
    # no padding and no floor in the pooling: every score is the classifier on one window
    size = 8
    assume((size - k1 + 1) % pool == 0)
    torch.manual_seed(seed)
    feat = nn.Sequential(nn.Conv2d(c, 3, k1, dtype=DT), nn.ReLU(), nn.MaxPool2d(pool),
                         nn.Conv2d(3, 2, k2, dtype=DT), nn.Tanh())
    fmap = feat(torch.zeros(1, c, size, size, dtype=DT)).shape[1:]
    net = nn.Sequential(feat, nn.Flatten(), nn.Linear(fmap.numel(), 5, dtype=DT), nn.ReLU(),
                        nn.Linear(5, 3, dtype=DT))
    fcn = eq.fully_convolutional(net, (c, size, size))
    x = torch.randn(1, c, size + pool * big_h, size + pool * big_w, dtype=DT)
    scores = fcn(x)  # (1, 3, H', W')
    assert scores.shape[-2:] == (big_h + 1, big_w + 1)
    corners = list(itertools.product(range(big_h + 1), range(big_w + 1)))
    crops = torch.cat([x[..., u * pool:u * pool + size, v * pool:v * pool + size]
                       for u, v in corners])  # (windows, C, size, size)
    expected = net(crops)  # (windows, 3)
    got = torch.stack([scores[0, :, u, v] for u, v in corners])
    assert torch.allclose(got, expected, atol=1e-12, rtol=0)


def test_fully_convolutional_rejects_unconvertible_nets():
    with pytest.raises(TypeError, match="Sequential"):
        eq.fully_convolutional(nn.Linear(4, 2), (1, 2, 2))
    with pytest.raises(ValueError, match="no nn.Flatten"):
        eq.fully_convolutional(nn.Sequential(nn.Conv2d(1, 1, 1)), (1, 2, 2))
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Flatten())
    with pytest.raises(TypeError, match="no convolutional equivalent"):
        eq.fully_convolutional(net, (1, 2, 2))


# --- pixel permutations --------------------------------------------------------------------

@given(h=sizes, w=sizes, seed=st.integers(0, 1000))
def test_permute_pixels_matches_loop_and_is_invertible(h, w, seed):
    x = int_images(seed, (2, 3, h, w))
    p = eq.pixel_permutation(h * w, seed)
    y = eq.permute_pixels(x, p)
    for i in range(h * w):
        src = int(p[i])
        assert torch.equal(y[..., i // w, i % w], x[..., src // w, src % w])
    inverse = torch.argsort(p)
    assert torch.equal(eq.permute_pixels(y, inverse), x)


def test_permute_pixels_rejects_non_permutations():
    with pytest.raises(ValueError, match="permutation of range\\(4\\)"):
        eq.permute_pixels(torch.zeros(2, 2), torch.tensor([0, 1, 1, 2]))
    with pytest.raises(TypeError, match="int64"):
        eq.permute_pixels(torch.zeros(2, 2), torch.tensor([0., 1., 2., 3.]))


@given(c=st.integers(1, 3), hw=st.integers(1, 9), out=st.integers(1, 4),
       seed=st.integers(0, 1000))
def test_absorbed_permutation_same_outputs_and_permuted_gradients(c, hw, out, seed):
    torch.manual_seed(seed)
    lin = nn.Linear(c * hw, out, dtype=DT)
    p = eq.pixel_permutation(hw, seed)
    lin2 = eq.absorb_input_permutation(lin, p)
    x = torch.randn(4, c, 1, hw, dtype=DT)
    xp = eq.permute_pixels(x, p)
    y, y2 = lin(x.flatten(1)), lin2(xp.flatten(1))
    assert torch.allclose(y, y2, atol=1e-12)
    # autograd: the gradient of W' is the gradient of W with the same columns permuted
    target = torch.randn_like(y)
    (y - target).pow(2).sum().backward()
    (y2 - target).pow(2).sum().backward()
    full = (torch.arange(c)[:, None] * hw + p[None, :]).reshape(-1)
    assert torch.allclose(lin2.weight.grad, lin.weight.grad[:, full], atol=1e-12)
    assert torch.allclose(lin2.bias.grad, lin.bias.grad, atol=1e-12)


def test_mlp_training_trajectories_coincide_under_an_absorbed_permutation():
    # same seed: the MLP on the digits and the MLP with the permutation absorbed on the
    # permuted digits take the same steps (torch.optim.Adam, float64)
    data = pixel_permuted_digits(None)
    perm = pixel_permuted_digits(5)
    nets = []
    for seed_perm, d in ((None, data), (5, perm)):
        torch.manual_seed(0)
        net = image_mlp(hidden=(16,), pixel_permutation_seed=seed_perm, dtype=DT)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        x, y = d.train.inputs[0].to(DT), d.train.targets
        for step in range(20):
            idx = torch.arange(step * 32, step * 32 + 32)
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        nets.append((net, d.test.inputs[0].to(DT)))
    (a, xa), (b, xb) = nets
    assert torch.allclose(a(xa), b(xb), atol=1e-10)
    p = eq.pixel_permutation(64, 5)
    assert torch.allclose(b.mlp.fc1.weight, a.mlp.fc1.weight[:, p], atol=1e-10)


def test_pixel_permuted_digits_is_the_permuted_data_set():
    plain, perm = pixel_permuted_digits(None), pixel_permuted_digits(2)
    p = eq.pixel_permutation(64, 2)
    for split in ("train", "val", "test"):
        assert torch.equal(perm[split].inputs[0], eq.permute_pixels(plain[split].inputs[0], p))
        assert torch.equal(perm[split].targets, plain[split].targets)
    # a permutation keeps every image's multiset of pixel values
    a = plain.train.inputs[0].flatten(1).sort(1).values
    b = perm.train.inputs[0].flatten(1).sort(1).values
    assert torch.equal(a, b)


# --- sub-pixel translation -------------------------------------------------------------------

@given(h=st.integers(1, 9), w=st.integers(1, 9), ty=shifts, tx=shifts, seed=st.integers(0, 1000))
def test_fourier_translate_integer_shift_is_roll(h, w, ty, tx, seed):
    x = int_images(seed, (2, h, w))
    assert torch.allclose(eq.fourier_translate(x, (ty, tx)), torch.roll(x, (ty, tx), (-2, -1)),
                          atol=1e-12)


@given(n=st.integers(3, 16), k=st.integers(0, 7), t=st.floats(-5, 5), phase=st.floats(0, 6.3))
def test_fourier_translate_moves_a_band_limited_cosine(n, k, t, phase):
    # below the Nyquist frequency the samples determine the cosine: the oracle is analytic
    assume(2 * k < n)
    j = torch.arange(n, dtype=DT)
    cosine = lambda s: torch.cos(2 * torch.pi * k * (j - s) / n + phase)  # noqa: E731
    moved = eq.fourier_translate(cosine(0.0)[None, :], (0.0, t))[0]
    assert torch.allclose(moved, cosine(t), atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    x = torch.arange(32.0).reshape(2, 1, 4, 4).to(dtype)
    perm = eq.pixel_permutation(16)
    outs = [eq.translate(x, 1), eq.translate(x, (1, -1), "zeros"),
            eq.equivariance_error(lambda z: 2 * z, x, 1), eq.fourier_translate(x, 0.5),
            eq.pool2d_circular(x, 2), eq.pool2d_circular(x, 2, op="avg"),
            eq.antialiased_max_pool2d(x), eq.permute_pixels(x, perm)]
    assert [out.dtype for out in outs] == [dtype] * len(outs)
    assert eq.fourier_translate(torch.arange(4).reshape(2, 2), 1).dtype == torch.float64


def test_impulses_in_the_dtype_of_the_model():
    pool = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.MaxPool2d(2))   # float32 weights
    nn.init.ones_(pool[0].weight)
    m = eq.impulse_shift_invariance(pool, (2, 4), (0, 1), dtype=torch.float32)
    assert m.int().tolist() == [[1, 0, 1, 0], [1, 0, 1, 0]]
