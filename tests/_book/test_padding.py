"""Tests of dlmath.models.position: the strided networks, their paddings and the border term.

Oracles: torch itself (the shapes a forward pass produces, ``nn.Conv2d`` with each
``padding_mode`` in float64 for the border term), and ``torch.roll`` for invariance.
"""

from __future__ import annotations


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmath.conv import ReceptiveField, receptive_field
from dlmath.data import red_green_box_layouts
from dlmath.data.boxes import BoxLayout
from dlmath.models.position import (
    strided_conv_net,
)
from dlmath._book.padding import boxes_share_a_field, class_predictions


@settings(max_examples=40)
@given(seed=st.integers(0, 1000), r=st.integers(1, 20), S=st.integers(1, 9),
       P=st.integers(0, 20), box=st.integers(1, 5))
def test_boxes_share_a_field_by_enumerating_units(seed, r, S, P, box):
    g = torch.Generator().manual_seed(seed)
    n = 12
    red = torch.randint(0, 28, (n, 2), generator=g)
    green = torch.randint(0, 28, (n, 2), generator=g)
    lay = BoxLayout(torch.zeros(n, dtype=torch.long), red, green, 32, box)
    got = boxes_share_a_field(lay, ReceptiveField(4, r, S, P))

    def meets(w, a):                       # window [w, w + r - 1] meets [a, a + box - 1]
        return w <= a + box - 1 and w + r - 1 >= a

    for i in range(n):
        ok = all(any(meets(u * S - P, int(red[i, ax])) and meets(u * S - P, int(green[i, ax]))
                     for u in range(-40, 80)) for ax in (0, 1))
        assert bool(got[i]) == ok


def test_far_apart_boxes_never_share_the_field_of_full_padding():
    field = receptive_field([(3, 1, 2), (3, 2, 2), (3, 2, 2), (3, 2, 2)])
    lay = red_green_box_layouts(500, 1, 1, seed=0)["train"]
    shared = boxes_share_a_field(lay, field)
    gap = lay.gap()
    assert shared[gap <= 8].all()          # an edge-to-edge span of 12 < 17 always fits
    assert not shared[gap >= 20].any()     # an edge-to-edge span of 17 + 1 never does
    assert 0 < shared.double().mean() < 1


def test_class_predictions_agree_with_argmax():
    nets = [strided_conv_net("zeros2", channels=(2, 2, 4, 4)) for _ in range(2)]
    x = torch.rand(7, 3, 32, 32)
    pred = class_predictions(nets, x, batch_size=3)
    with torch.no_grad():
        expected = torch.stack([n(x).argmax(-1) for n in nets])
    assert torch.equal(pred, expected)
    with pytest.raises(TypeError, match="sequence of nn.Module"):
        class_predictions(nets[0], x)
    with pytest.raises(TypeError, match="BoxLayout"):
        boxes_share_a_field(None, ReceptiveField(1, 3, 1, 1))


def test_zero_padding_agreement_compares_with_zero_padding_of_the_same_amount():
    from dlmath._book.claims.padding import zero_padding_agreement
    from dlmath.data import red_green_boxes

    x = red_green_boxes(2, 2, 24, seed=0).test.inputs[0]
    # zero padding against itself: every layer agrees on every image
    shares, rows = zero_padding_agreement("zeros2", x, seeds=(0,))
    assert shares == [1.0] * 4 and rows == [[]] * 4
    # black top rows: replicate padding by 2 never differs on the top row of a map, while
    # reflect padding mirrors the rows below the edge and does
    _, rep_rows = zero_padding_agreement("replicate2", x, seeds=(0, 1))
    _, ref_rows = zero_padding_agreement("reflect2", x, seeds=(0, 1))
    assert all(0 not in r for r in rep_rows) and any(0 in r for r in ref_rows)
    # on noise the border is not black: replicate padding differs already in the first layer
    noise = torch.rand(4, 3, 32, 32)
    shares, _ = zero_padding_agreement("replicate2", noise, seeds=(0,))
    assert shares[0] == 0.0
    with pytest.raises(ValueError, match="adds no pixels"):
        zero_padding_agreement("valid", x)


def test_border_term_against_torch_counts_every_output():
    from dlmath._book.border_term import border_term_against_torch

    # 5 x 5 image, stride 1: valid gives 3 x 3 outputs, zeros1 5 x 5, zeros2 7 x 7
    checked, worst = border_term_against_torch(shapes=[(5, 5)], paddings=["valid", "zeros1",
                                                                          "zeros2"], strides=[1])
    assert checked == 9 + 25 + 49
    assert worst < 1e-12
