"""Tests of dlmath._book.rotation: predictions and accuracy of classifiers on rotated images.

Oracle: ``torch.rot90`` (exact for quarter turns) followed by the model, one image at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlmath.data import TensorSplit
from dlmath._book.rotation import accuracy_by_angle, predictions_under_rotation


def linear_model(seed: int, size: int = 6, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(size * size, classes))


@settings(max_examples=20)
@given(seed=st.integers(0, 1000), k=st.integers(-3, 3))
def test_quarter_turns_agree_with_rot90_then_the_model(seed, k):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(7, 1, 6, 6, generator=g)
    y = torch.randint(0, 4, (7,), generator=g)
    models = [linear_model(seed), linear_model(seed + 1)]
    pred = predictions_under_rotation(models, TensorSplit(x, y), [90 * k, 0], batch_size=3)
    for s, m in enumerate(models):
        with torch.no_grad():
            logits = torch.stack([m(torch.rot90(x[i:i + 1], k, dims=(-2, -1)))[0]
                                  for i in range(7)])
            plain = m(x)
        # a near-tie of two logits could flip under interpolation rounding: skip those images
        top2 = logits.topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) > 1e-4
        assert torch.equal(pred[s, 0][clear], logits.argmax(-1)[clear])
        assert torch.equal(pred[s, 1], plain.argmax(-1))


def test_accuracy_is_the_mean_of_correct_predictions():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 6, 6, generator=g), torch.randint(0, 4, (20,), generator=g)
    models = [linear_model(0), linear_model(1), linear_model(2)]
    split = TensorSplit(x, y)
    angles = [-180, -45, 0, 30, 180]
    acc = accuracy_by_angle(models, split, angles)
    pred = predictions_under_rotation(models, split, angles)
    assert acc.shape == (3, 5) and acc.dtype == np.float64
    assert np.array_equal(acc, (pred == y).double().mean(-1).numpy())
    assert np.array_equal(acc[:, 0], acc[:, 4])                  # -180 and 180 are one angle


def test_rotation_invariant_model_has_a_flat_curve():
    # mean brightness decides the class: a quarter turn changes nothing
    class Brightness(nn.Module):
        def forward(self, x):
            m = x.mean((1, 2, 3))
            return torch.stack([m, 0.5 - m + 0 * m], -1)

    x = torch.rand(30, 1, 5, 5)
    y = (x.mean((1, 2, 3)) > 0.25).long()
    acc = accuracy_by_angle([Brightness()], TensorSplit(x, y), [0, 90, 180, 270])
    assert np.allclose(acc, acc[0, 0])


def test_models_keep_their_training_mode():
    m = linear_model(0).train()
    predictions_under_rotation([m], TensorSplit(torch.rand(2, 1, 6, 6), torch.zeros(2).long()),
                               [10])
    assert m.training


@pytest.mark.parametrize("call, error, match", [
    (lambda s: predictions_under_rotation(linear_model(0), s, [0]), TypeError, "sequence of"),
    (lambda s: predictions_under_rotation([], s, [0]), TypeError, "non-empty"),
    (lambda s: predictions_under_rotation([linear_model(0)], s, []), ValueError, "angles"),
    (lambda s: predictions_under_rotation([linear_model(0)], (s.inputs, s.targets), [0]),
     TypeError, "TensorSplit"),
    (lambda s: predictions_under_rotation([linear_model(0)], s, [0], batch_size=0), ValueError,
     "batch_size"),
])
def test_bad_arguments(call, error, match):
    split = TensorSplit(torch.rand(2, 1, 6, 6), torch.zeros(2).long())
    with pytest.raises(error, match=match):
        call(split)
