"""Rotation of image batches (dlmath.data.tensors.rotate), as the rotation chapter uses it.

Complements tests/test_data_tensors.py.  Oracles: ``torch.rot90`` and ``torch.flip``, which
move whole pixels and involve no interpolation.  Chapter: :ref:`ch-rotation`.
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath.data import random_rotation, rotate

sizes = st.integers(2, 16)
seeds = st.integers(0, 10_000)


def batch(size: int, seed: int, channels: int = 2) -> torch.Tensor:
    return torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(seed))


@given(size=sizes, seed=seeds, k=st.integers(-5, 5))
def test_rotation_by_multiples_of_90_degrees_is_rot90(size, seed, k):
    x = batch(size, seed)
    torch.testing.assert_close(rotate(x, 90 * k), torch.rot90(x, k, dims=(-2, -1)),
                               atol=1e-5, rtol=0)


@given(size=sizes, seed=seeds)
def test_angle_zero_and_full_turn_are_the_identity(size, seed):
    x = batch(size, seed)
    torch.testing.assert_close(rotate(x, 0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(x, 360), x, atol=1e-5, rtol=0)


@given(size=sizes, seed=seeds)
def test_four_quarter_turns_are_the_identity(size, seed):
    x = batch(size, seed)
    y = x
    for _ in range(4):
        y = rotate(y, 90)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@given(size=sizes, seed=seeds)
def test_half_turn_flips_both_axes(size, seed):
    x = batch(size, seed)
    torch.testing.assert_close(rotate(x, 180), x.flip(-1).flip(-2), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(x, -180), rotate(x, 180), atol=1e-5, rtol=0)


def test_other_angles_interpolate_and_lose_the_corners():
    x = torch.ones(1, 1, 9, 9)
    y = rotate(x, 45)
    assert float(y.min()) >= 0 and float(y.max()) <= 1 + 1e-6
    assert y[0, 0, 0, 0] == 0 and y[0, 0, 4, 4] == 1          # corners come from outside
    assert 0 < float(y.sum()) < 81


@given(seed=seeds)
def test_random_rotation_with_full_range_turns_images_by_different_angles(seed):
    x = torch.zeros(16, 1, 9, 9)
    x[:, 0, 0, 4] = 1.0                                        # a dot above the centre
    y = random_rotation(x, torch.Generator().manual_seed(seed), degrees=180)
    assert torch.isclose(y.sum((-2, -1)), torch.ones(16, 1), atol=0.5).all()
    assert len({tuple(img.flatten().round(decimals=3).tolist()) for img in y}) > 8
