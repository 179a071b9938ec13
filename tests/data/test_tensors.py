"""dlmath.data.tensors: splits, stratified splitting, batch augmentations against brute force.

Rotation (as the rotation chapter, :ref:`ch-rotation`, uses it) is checked against
``torch.rot90`` and ``torch.flip``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath.data.tensors import (DataSplits, TensorSplit, random_crop, random_flip,
                                 random_rotation, rotate, stratified_split)


def test_tensor_split_gathers_with_index_tensors():
    x, z, y = torch.arange(10.0).view(5, 2), torch.arange(5) * 10, torch.arange(5)
    s = TensorSplit((x, z), y)
    (xi, zi), yi = s.take(torch.tensor([[4, 0], [1, 1]]))                # (S=2, B=2)
    assert xi.shape == (2, 2, 2) and zi.tolist() == [[40, 0], [10, 10]]
    assert yi.tolist() == [[4, 0], [1, 1]]
    with pytest.raises(ValueError, match="inputs\\[1\\] has 4 rows"):
        TensorSplit((x, z[:4]), y)
    with pytest.raises(TypeError, match="targets must be a torch.Tensor"):
        TensorSplit(x, [0, 1, 2, 3, 4])
    with pytest.raises(TypeError, match="must be a TensorSplit"):
        DataSplits(s, s, "test")
    with pytest.raises(KeyError):
        DataSplits(s, s, s)["dev"]


@given(st.lists(st.integers(0, 4), min_size=1, max_size=60),
       st.sampled_from([(0.5, 0.5), (0.6, 0.2, 0.2), (0.7, 0.1, 0.1, 0.1)]),
       st.integers(0, 5))
def test_stratified_split_is_a_balanced_partition(labels, fractions, seed):
    y = np.array(labels)
    parts = stratified_split(y, fractions, seed)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(y)))               # a partition
    for part, frac in zip(parts, fractions):
        assert np.all(np.diff(part) > 0)                                # sorted, no repeats
        for c in np.unique(y):
            n_c = int((y == c).sum())
            assert abs(int((y[part] == c).sum()) - frac * n_c) <= 1     # stratified
    assert all(np.array_equal(a, b) for a, b in zip(parts, stratified_split(y, fractions, seed)))


def test_stratified_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split([0, 1], (0.5, 0.4))
    with pytest.raises(ValueError, match="1-d"):
        stratified_split(np.zeros((2, 2)), (0.5, 0.5))


def _shift(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    # brute force: out[i, j] = img[i + dy, j + dx], zero outside
    out = torch.zeros_like(img)
    H, W = img.shape[-2:]
    for i in range(H):
        for j in range(W):
            if 0 <= i + dy < H and 0 <= j + dx < W:
                out[..., i, j] = img[..., i + dy, j + dx]
    return out


@pytest.mark.parametrize("padding", [1, 2])
def test_random_crop_is_a_zero_filled_shift(padding):
    x = torch.rand(12, 2, 5, 6) + 0.5          # no zeros inside, so shifts are distinguishable
    y = random_crop(x, torch.Generator().manual_seed(0), padding=padding)
    seen = set()
    for b in range(len(x)):
        hits = [(dy, dx) for dy in range(-padding, padding + 1) for dx in range(-padding, padding + 1)
                if torch.equal(y[b], _shift(x[b], dy, dx))]
        assert len(hits) == 1, b
        seen.add(hits[0])
    assert len(seen) > 1                        # the offsets are random, not one shift for all
    assert torch.equal(random_crop(x, padding=0), x)
    with pytest.raises(ValueError, match="padding"):
        random_crop(x, padding=-1)


def test_random_flip_mirrors_some_images():
    x = torch.rand(32, 1, 3, 4)
    y = random_flip(x, torch.Generator().manual_seed(1))
    flipped = [torch.equal(y[b], x[b].flip(-1)) for b in range(32)]
    kept = [torch.equal(y[b], x[b]) for b in range(32)]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 32
    assert torch.equal(random_flip(x, p=0.0), x)


# --- rotation: oracles torch.rot90 and torch.flip, which move whole pixels ---------------

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


def test_random_rotation_draws_angles_within_range():
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 0, 4] = 1.0                                 # a dot above the centre
    y = random_rotation(x, torch.Generator().manual_seed(0), degrees=30)
    # centre of mass of each rotated dot gives its angle: within [-30, 30] degrees
    rows, cols = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    m = y[:, 0].sum((-2, -1))
    cy, cx = (y[:, 0] * rows).sum((-2, -1)) / m - 4, (y[:, 0] * cols).sum((-2, -1)) / m - 4
    angles = torch.rad2deg(torch.atan2(-cx, -cy))       # counter-clockwise from "up"
    assert float(angles.abs().max()) <= 31 and float(angles.std()) > 5
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(random_rotation(x, g1), random_rotation(x, g2))
    with pytest.raises(ValueError, match="square"):
        rotate(torch.zeros(1, 1, 3, 4), 10)
    with pytest.raises(ValueError, match="image batch"):
        random_flip(torch.zeros(3, 4))
