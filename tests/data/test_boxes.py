"""Tests of dlmath.data.boxes: the red/green box images.

The box positions are read back from the pixels (an independent oracle: ``nonzero`` on each
channel), never taken from the layout that produced them.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import dlmath.data
from dlmath.data.boxes import BoxLayout, red_green_box_layouts, red_green_boxes, render_boxes

SIZE, BOX, SHIFT = 32, 4, 16
BANDS = {0: (3, 10), 1: (3 + SHIFT, 10 + SHIFT)}      # top rows of each class's band


@pytest.fixture(scope="module")
def data():
    return red_green_boxes(300, 200, 200, seed=3)


def boxes_from_pixels(x: torch.Tensor, channel: int) -> torch.Tensor:
    """(N, 4): top, left, bottom, right (inclusive) of the set pixels of one channel."""
    img = x[:, channel] > 0                                      # (N, H, W)
    rows, cols = img.any(2), img.any(1)                          # (N, H), (N, W)
    assert rows.any(1).all(), "a channel without any set pixel"
    n = torch.arange(img.shape[-1])

    def first_last(mask):
        big = img.shape[-1]
        first = torch.where(mask, n, big).min(1).values
        last = torch.where(mask, n, -1).max(1).values
        return first, last

    (top, bottom), (left, right) = first_last(rows), first_last(cols)
    return torch.stack([top, left, bottom, right], 1)


def test_reexported_by_dlmath_data():
    assert dlmath.data.red_green_boxes is red_green_boxes


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_pixels_are_one_red_and_one_green_square(data, split):
    x = data[split].inputs[0]
    assert x.shape[1:] == (3, SIZE, SIZE) and x.dtype == torch.float32
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert (x[:, 2] == 0).all()                                  # no blue
    for c in (0, 1):
        b = boxes_from_pixels(x, c)
        assert (b[:, 2] - b[:, 0] + 1 == BOX).all() and (b[:, 3] - b[:, 1] + 1 == BOX).all()
        assert (x[:, c].sum((1, 2)) == BOX * BOX).all()          # filled, nothing else set
    assert not ((x[:, 0] > 0) & (x[:, 1] > 0)).any()               # the boxes never overlap


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_red_left_of_green_exactly_for_class_0(data, split):
    x, y = data[split].inputs[0], data[split].targets
    red, green = boxes_from_pixels(x, 0), boxes_from_pixels(x, 1)
    red_left = red[:, 3] < green[:, 1]                           # red's right edge before green
    green_left = green[:, 3] < red[:, 1]
    assert (red_left ^ green_left).all()                         # the order is never ambiguous
    assert torch.equal(red_left, y == 0)
    gap = torch.where(red_left, green[:, 1] - red[:, 3], red[:, 1] - green[:, 3]) - 1
    assert gap.min() >= 1                                        # at least one black column


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_bands_and_the_shifted_test_set(data, split):
    x, y = data[split].inputs[0], data[split].targets
    for c in (0, 1):
        top = boxes_from_pixels(x, c)[:, 0]
        for label in (0, 1):
            band = BANDS[label if split != "test" else 1 - label]
            rows = top[y == label]
            assert rows.min() >= band[0] and rows.max() <= band[1]
            # every row of the band occurs (300 images, 8 possible rows)
            if split == "train":
                assert set(rows.tolist()) == set(range(band[0], band[1] + 1))


def test_test_set_is_the_training_distribution_rolled_by_16_rows(data):
    # Rolling the test images back by 16 rows (cyclically) puts every box in its training band.
    x, y = data.test.inputs[0], data.test.targets
    back = torch.roll(x, SHIFT, dims=-2)                         # +16 == -16 mod 32
    assert (back.sum((1, 2, 3)) == x.sum((1, 2, 3))).all()        # nothing wrapped around
    for c in (0, 1):
        top = boxes_from_pixels(back, c)[:, 0]
        for label in (0, 1):
            rows = top[y == label]
            assert rows.min() >= BANDS[label][0] and rows.max() <= BANDS[label][1]


@given(n=st.integers(1, 200), seed=st.integers(0, 1000))
def test_classes_are_balanced(n, seed):
    lay = red_green_box_layouts(n, n, n, seed=seed)
    for split in ("train", "val", "test"):
        counts = torch.bincount(lay[split].labels, minlength=2)
        assert counts.sum() == n and abs(int(counts[0]) - int(counts[1])) <= 1


def test_deterministic_by_seed_and_splits_independent():
    a, b = red_green_boxes(50, 20, 30, seed=7), red_green_boxes(50, 20, 30, seed=7)
    for split in ("train", "val", "test"):
        assert torch.equal(a[split].inputs[0], b[split].inputs[0])
        assert torch.equal(a[split].targets, b[split].targets)
    c = red_green_boxes(50, 20, 30, seed=8)
    assert not torch.equal(a.train.inputs[0], c.train.inputs[0])
    d = red_green_boxes(80, 20, 30, seed=7)                      # more training images ...
    assert torch.equal(a.test.inputs[0], d.test.inputs[0])       # ... same test set
    assert torch.equal(a.val.inputs[0], d.val.inputs[0])
    state = torch.get_rng_state()
    red_green_boxes(10, 10, 10, seed=1)
    assert torch.equal(state, torch.get_rng_state())             # global RNG untouched


def test_layout_geometry_covers_the_allowed_columns():
    lay = red_green_box_layouts(4000, 1, 1, seed=0)["train"]
    left = torch.minimum(lay.red[:, 1], lay.green[:, 1])
    right = torch.maximum(lay.red[:, 1], lay.green[:, 1])
    assert set(left.tolist()) == set(range(0, 10))               # left box in the left part
    assert right.max() == SIZE - BOX - 1 and (right - left >= BOX + 1).all()
    assert torch.equal(lay.gap(), right - left)


@given(seed=st.integers(0, 10_000), size=st.integers(6, 12), box=st.integers(1, 3))
def test_render_matches_a_pixel_by_pixel_painter(seed, size, box):
    g = torch.Generator().manual_seed(seed)
    n = 3
    red = torch.randint(0, size - box + 1, (n, 2), generator=g)
    green = torch.randint(0, size - box + 1, (n, 2), generator=g)
    lay = BoxLayout(torch.zeros(n, dtype=torch.long), red, green, size, box)
    expected = torch.zeros(n, 3, size, size)
    for i in range(n):
        for c, corner in ((0, red[i]), (1, green[i])):
            for r in range(size):
                for col in range(size):
                    if corner[0] <= r < corner[0] + box and corner[1] <= col < corner[1] + box:
                        expected[i, c, r, col] = 1.0
    assert torch.equal(render_boxes(lay), expected)


@given(lo=st.integers(0, 40), hi=st.integers(0, 40), shift=st.integers(0, 40))
def test_bands_that_do_not_fit_are_rejected(lo, hi, shift):
    assume(lo <= hi and hi + shift > SIZE - BOX)
    with pytest.raises(ValueError, match="does not fit"):
        red_green_box_layouts(2, 2, 2, band=(lo, hi), shift=shift)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_train": 0}, ValueError, "n_train must be >= 1"),
    ({"n_val": 2.0}, TypeError, "n_val must be an int"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"band": (5, 3)}, ValueError, "first <= last"),
    ({"band": 3}, ValueError, "band must be a pair"),
    ({"size": 12, "band": (0, 1), "shift": 2}, ValueError, "no room for two boxes"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        red_green_boxes(**{"n_train": 4, "n_val": 4, "n_test": 4, **kwargs})


def test_render_rejects_non_layouts():
    with pytest.raises(TypeError, match="layout must be a BoxLayout"):
        render_boxes({"red": None})
