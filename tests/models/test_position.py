"""Tests of dlmath.models.position: the strided networks, their paddings and the border term.

Oracles: torch itself (the shapes a forward pass produces, ``nn.Conv2d`` with each
``padding_mode`` in float64 for the border term), and ``torch.roll`` for invariance.
"""

from __future__ import annotations

import itertools

import pytest
import sympy as sp
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from dlmath.data import red_green_boxes
from dlmath.equivariance import equivariance_error
from dlmath.models.position import (
    PADDINGS, conv_border_term_sym, feature_map_sizes,
    padding_spec, strided_conv_net,
)

SMALL = (4, 4, 8, 8)


@pytest.fixture(scope="module")
def boxes():
    d = red_green_boxes(40, 8, 40, seed=0)
    return d.test.inputs[0]


def roll_invariance_gap(net: nn.Module, x: torch.Tensor, rows: int, cols: int = 0) -> float:
    """max |net(roll(x)) - net(x)| over the batch and the logits."""
    with torch.no_grad():
        return float(equivariance_error(net.eval(), x, (rows, cols), output_shift=0).abs().max())


def conv_stack_sizes(net: nn.Sequential, x: torch.Tensor) -> list[int]:
    sizes = []
    for module in net:
        x = module(x)
        if isinstance(module, nn.Conv2d):
            assert x.shape[-1] == x.shape[-2]
            sizes.append(x.shape[-1])
    return sizes


@pytest.mark.parametrize("padding, global_pool", list(itertools.product(PADDINGS, (True, False))))
def test_output_shapes_and_map_sizes_agree_with_torch(padding, global_pool):
    net = strided_conv_net(padding, global_pool, channels=SMALL, hidden=8, num_classes=3)
    x = torch.rand(5, 3, 32, 32)
    assert net(x).shape == (5, 3)
    assert conv_stack_sizes(net, x) == feature_map_sizes(32, padding)


@settings(max_examples=20)
@given(size=st.integers(16, 48), padding=st.sampled_from(PADDINGS),
       strides=st.lists(st.integers(1, 2), min_size=1, max_size=4))
def test_feature_map_sizes_match_torch(size, padding, strides):
    try:
        expected = feature_map_sizes(size, padding, strides)
    except ValueError:
        assume(False)
    net = strided_conv_net(padding, False, channels=(2,) * len(strides), strides=strides,
                           size=size, hidden=2)
    x = torch.rand(1, 3, size, size)
    assert conv_stack_sizes(net, x) == expected
    assert net.fc.in_features == 2 * expected[-1] ** 2


@pytest.mark.parametrize("padding", PADDINGS)
def test_convolutions_are_bias_free_with_the_named_padding(padding):
    amount, mode = padding_spec(padding)
    net = strided_conv_net(padding, channels=SMALL)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    for c in convs:
        assert c.bias is None and c.kernel_size == (3, 3)
        assert c.padding == (amount, amount) and c.padding_mode == mode


def test_net1_pools_globally_and_net2_does_not():
    net1, net2 = strided_conv_net("zeros1"), strided_conv_net("zeros1", global_pool=False)
    assert any(isinstance(m, nn.AdaptiveMaxPool2d) for m in net1)
    assert not any(isinstance(m, (nn.AdaptiveMaxPool2d, nn.MaxPool2d)) for m in net2)
    # Net2's extra layer reads every position of the last 4x4 map of 64 channels
    assert net2.fc.in_features == 64 * 4 * 4 and net1.out.in_features == 64


@settings(max_examples=12)
@given(seed=st.integers(0, 100), rows=st.integers(-4, 4), cols=st.integers(-4, 4))
def test_circular_net1_is_invariant_to_rolls_by_multiples_of_the_total_stride(seed, rows, cols):
    torch.manual_seed(seed)
    net = strided_conv_net("circular1", channels=SMALL).double()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    assert roll_invariance_gap(net, x, 8 * rows, 8 * cols) < 1e-10


@settings(max_examples=12)
@given(seed=st.integers(0, 100), shift=st.integers(1, 31))
def test_circular_net1_is_not_invariant_to_other_rolls(seed, shift):
    assume(shift % 8)
    torch.manual_seed(seed)
    net = strided_conv_net("circular1", channels=SMALL).double()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    assert roll_invariance_gap(net, x, shift) > 1e-6


@pytest.mark.parametrize("padding", ["circular1", "zeros2"])
def test_net1_gives_the_same_output_on_the_shifted_test_images(boxes, padding):
    # circular: the test images are rolls by 16 rows of images of the training bands;
    # zeros2 (full padding): black background, no bias and ReLU(0) = 0 make the full-padded
    # maps contain every non-zero response, so a shift by 16 = 2 x 8 only moves them.
    for seed in range(3):
        torch.manual_seed(seed)
        net = strided_conv_net(padding, channels=SMALL).double()
        assert roll_invariance_gap(net, boxes.double(), 16) < 1e-10


@pytest.mark.parametrize("padding", ["valid", "zeros1", "circular2", "reflect1", "reflect2",
                                     "replicate1", "replicate2"])
def test_other_paddings_see_the_shift(boxes, padding):
    torch.manual_seed(0)
    net = strided_conv_net(padding, channels=SMALL).double()
    assert roll_invariance_gap(net, boxes.double(), 16) > 1e-4


def test_net2_sees_the_shift_even_with_circular_padding(boxes):
    torch.manual_seed(0)
    net = strided_conv_net("circular1", global_pool=False, channels=SMALL).double()
    assert roll_invariance_gap(net, boxes.double(), 16) > 1e-4


@settings(max_examples=30)
@given(h=st.integers(2, 5), w=st.integers(2, 5), padding=st.sampled_from(PADDINGS),
       stride=st.integers(1, 2), seed=st.integers(0, 1000))
def test_border_term_plus_interior_is_torchs_padded_convolution(h, w, padding, stride, seed):
    amount, mode = padding_spec(padding)
    assume(h + 2 * amount >= 3 and w + 2 * amount >= 3)
    assume(mode != "reflect" or amount < min(h, w))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(h, w, generator=g, dtype=torch.float64)
    k = torch.randn(3, 3, generator=g, dtype=torch.float64)
    conv = nn.Conv2d(1, 1, 3, stride=stride, padding=amount, padding_mode=mode,
                     bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(k[None, None])
        expected = conv(x[None, None])[0, 0]
    values = {sp.Symbol(f"x_{{{r},{c}}}"): float(x[r, c]) for r in range(h) for c in range(w)}
    values |= {sp.Symbol(f"w_{{{a},{b}}}"): float(k[a, b]) for a in range(3) for b in range(3)}
    for i, j in itertools.product(range(expected.shape[0]), range(expected.shape[1])):
        inner, border = conv_border_term_sym(h, w, i, j, padding, stride=stride)
        assert float((inner + border).xreplace(values)) == pytest.approx(float(expected[i, j]),
                                                                      abs=1e-12)


def test_border_term_vanishes_inside_and_for_zero_padding():
    for padding in PADDINGS:
        inner, border = conv_border_term_sym(6, 6, 2, 2, padding if padding != "valid" else
                                             "zeros1")
        assert border == 0 and len(inner.args) == 9
    for i, j in itertools.product(range(6), range(6)):
        assert conv_border_term_sym(6, 6, i, j, "zeros1")[1] == 0
        assert conv_border_term_sym(6, 6, i, j, "zeros2")[1] == 0


def test_corner_with_zero_padding_keeps_four_of_nine_taps():
    inner, border = conv_border_term_sym(5, 5, 0, 0, "zeros1")
    assert border == 0 and len(inner.args) == 4
    inner_c, border_c = conv_border_term_sym(5, 5, 0, 0, "circular1")
    assert inner_c == inner and len(border_c.args) == 5
    # the circular border term reads the last row and column
    assert sp.Symbol("x_{4,4}") in border_c.free_symbols


def test_full_padding_reads_every_pixel_with_every_tap():
    # count, per input pixel, the taps that read it over all outputs (stride 1)
    for padding, corner_reads in (("valid", 1), ("zeros1", 4), ("zeros2", 9)):
        amount, _ = padding_spec(padding)
        n_out = 6 + 2 * amount - 2
        reads = {}
        for i, j in itertools.product(range(n_out), range(n_out)):
            inner, _ = conv_border_term_sym(6, 6, i, j, padding)
            for term in sp.Add.make_args(inner):
                for s in term.free_symbols:
                    if s.name.startswith("x"):
                        reads[s.name] = reads.get(s.name, 0) + 1
        assert reads["x_{0,0}"] == corner_reads and reads["x_{2,3}"] == 9


@pytest.mark.parametrize("call, error, match", [
    (lambda: padding_spec("same"), ValueError, "padding must be one of"),
    (lambda: strided_conv_net("zeros1", global_pool=1), TypeError, "global_pool must be True or False"),
    (lambda: strided_conv_net(channels=(4, 4), strides=(1, 2, 2)), ValueError,
     "same length"),
    (lambda: strided_conv_net(channels=(4, 0)), ValueError, r"channels\[1\] must be >= 1"),
    (lambda: strided_conv_net("valid", size=8), ValueError, "larger than padded input"),
    (lambda: strided_conv_net(hidden=0), ValueError, "hidden must be >= 1, got 0"),
    (lambda: conv_border_term_sym(4, 4, 4, 0, "zeros1"), ValueError, "outside the 4x4"),
    (lambda: conv_border_term_sym(1, 4, 0, 0, "reflect1"), ValueError, "reflect padding 1"),
    (lambda: conv_border_term_sym(2, 4, 0, 0, "reflect2"), ValueError, "reflect padding 2"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("value", ["False", 0, None])
def test_global_pool_must_be_bool(value):
    with pytest.raises(TypeError, match="global_pool must be True or False"):
        strided_conv_net("zeros1", global_pool=value)
