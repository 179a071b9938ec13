"""Tests of dlmath._book.rotation.rotation_curves against its parts, recomputed by hand.

Oracle: ``torch.rot90`` for the half turn (exact, no interpolation) and the models' own
argmax, image by image.
"""

from __future__ import annotations

import torch
from torch import nn

from dlmath._book.rotation import rotation_curves
from dlmath.data import TensorSplit, rotate


def _split(seed: int = 0, n: int = 9) -> TensorSplit:
    g = torch.Generator().manual_seed(seed)
    return TensorSplit(torch.rand(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _models() -> list[nn.Module]:
    torch.manual_seed(0)
    return [nn.Sequential(nn.Flatten(), nn.Linear(36, 3)) for _ in range(2)]


def test_predictions_match_rot90_and_argmax():
    split, models = _split(), _models()
    out = rotation_curves(models, split, [0.0, 180.0])
    x, y = split.inputs[0], split.targets
    with torch.no_grad():
        for s, m in enumerate(models):
            assert torch.equal(out["pred0"][s], m(x).argmax(-1))
            half = m(torch.rot90(x, 2, dims=(-2, -1)))
            # rotate(x, 180) equals rot90 up to rounding; compare where the margin is clear
            top2 = half.topk(2, dim=-1).values
            clear = (top2[:, 0] - top2[:, 1]) > 1e-4
            assert torch.equal(out["pred180"][s][clear], half.argmax(-1)[clear])
            acc0 = (m(x).argmax(-1) == y).double().mean()
            assert torch.isclose(out["acc"][s, 0], acc0)


def test_back45_is_the_accuracy_after_two_rotations():
    split, models = _split(1), _models()
    out = rotation_curves(models, split, [0.0])
    xb = rotate(rotate(split.inputs[0], 45), -45)
    with torch.no_grad():
        expected = [float((m(xb).argmax(-1) == split.targets).double().mean()) for m in models]
    assert out["back45"] == expected
    assert out["acc"].dtype == torch.float64 and out["acc"].shape == (2, 1)
