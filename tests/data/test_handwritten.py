"""dlmath.data.handwritten: ``digits()`` splits scikit-learn's digits into a stratified partition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import dlmath
from dlmath.data import digits

RAW = load_digits()


def _bytes(t: torch.Tensor) -> list[bytes]:
    return [r.tobytes() for r in t.reshape(len(t), -1).numpy().astype(np.float32)]


def test_the_splits_partition_the_data_set():
    d = digits()
    sizes = d.sizes()
    assert sum(sizes.values()) == len(RAW.images) == 1797
    together = torch.cat([d.train.inputs[0], d.val.inputs[0], d.test.inputs[0]])
    labels = torch.cat([d.train.targets, d.val.targets, d.test.targets])
    # the same multiset of (image, label) pairs as scikit-learn's arrays
    ours = sorted(zip(_bytes(together), labels.tolist()))
    theirs = sorted(zip(_bytes(torch.from_numpy(RAW.images / 16)), RAW.target.tolist()))
    assert ours == theirs


@pytest.mark.parametrize("fractions", [(0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.8, 0.1, 0.1)])
def test_each_split_is_stratified(fractions):
    d = digits(fractions=fractions, seed=3)
    per_class = np.bincount(RAW.target, minlength=10)
    for split, frac in zip(("train", "val", "test"), fractions):
        counts = np.bincount(d[split].targets.numpy(), minlength=10)
        assert np.all(np.abs(counts - frac * per_class) <= 1), (split, counts)


def test_the_seed_fixes_the_split():
    a, b, c = digits(seed=0), digits(seed=0), digits(seed=1)
    assert torch.equal(a.train.inputs[0], b.train.inputs[0])
    assert not torch.equal(a.test.targets, c.test.targets)


def _bilinear_numpy(img: np.ndarray, size: int) -> np.ndarray:
    # Independent oracle: separable linear interpolation at the pixel centres,
    # source coordinate (i + 0.5) * n / size - 0.5, clamped to the image (align_corners=False).
    n = img.shape[0]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    rows = np.stack([np.interp(src, np.arange(n), img[:, j]) for j in range(n)], axis=1)
    return np.stack([np.interp(src, np.arange(n), rows[i]) for i in range(size)], axis=0)


@pytest.mark.parametrize("size", [16, 12, 32])
def test_upsampling_is_bilinear(size):
    small, big = digits(), digits(size=size)
    assert big.train.inputs[0].shape[1:] == (1, size, size)
    assert torch.equal(small.train.targets, big.train.targets)
    for i in (0, 7, 500):
        expected = _bilinear_numpy(small.train.inputs[0][i, 0].double().numpy(), size)
        np.testing.assert_allclose(big.train.inputs[0][i, 0].numpy(), expected, atol=1e-6)
    x = big.train.inputs[0]
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_standardize_uses_training_pixels_only():
    d, raw = digits(standardize=True), digits()
    x = d.train.inputs[0]
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-4)
    mean, std = d.info["mean"], d.info["std"]
    assert mean == pytest.approx(float(raw.train.inputs[0].mean()))
    torch.testing.assert_close(d.test.inputs[0] * std + mean, raw.test.inputs[0])


def test_digits_is_the_function_however_it_is_reached():
    import dlmath.data.handwritten as module

    assert dlmath.data.digits is module.digits is digits
    a, b = dlmath.data.digits(), module.digits()
    assert torch.equal(a.val.targets, b.val.targets)
    assert a.info["classes"] == 10 and a.train.targets.dtype == torch.int64


@pytest.mark.parametrize("kwargs,error,match", [
    ({"size": 1}, ValueError, "size must be >= 2, got 1"),
    ({"size": 8.0}, TypeError, "size must be an int, got float"),
    ({"fractions": (0.5, 0.5)}, ValueError, r"hold 3 numbers \(train, val, test\)"),
    ({"fractions": (0.5, 0.4, 0.2)}, ValueError, "sum to 1"),
    ({"fractions": (1.0, 0.0, 0.0)}, ValueError, "positive"),
    ({"standardize": 1}, TypeError, "standardize must be True or False"),
    ({"standardize": "False"}, TypeError, "standardize must be True or False"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        digits(**kwargs)
