"""dlmath.data.toy: shapes, balance, seeding, geometry, and scikit-learn as an oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dlmath.data
from dlmath.data import toy

GENERATORS = [toy.two_moons, toy.circles, toy.blobs]


@pytest.mark.parametrize("make", GENERATORS)
@given(n=st.integers(3, 300), seed=st.integers(0, 2**31 - 1))
def test_shapes_labels_and_balance(make, n, seed):
    X, y = make(n, seed=seed)
    k = 3 if make is toy.blobs else 2
    assert X.shape == (n, 2) and X.dtype == torch.float64
    assert y.shape == (n,) and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=k)
    assert len(counts) == k and int(counts.max() - counts.min()) <= 1
    assert torch.isfinite(X).all()


@pytest.mark.parametrize("make", GENERATORS)
def test_seeded_and_global_state_untouched(make):
    state = torch.get_rng_state()
    a, b, c = make(50, seed=3), make(50, seed=3), make(50, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    X32, _ = make(50, seed=3, dtype=torch.float32)
    assert X32.dtype == torch.float32
    torch.testing.assert_close(X32, a[0].float())


def test_noise_free_geometry():
    X, y = toy.two_moons(400, noise=0.0, seed=1)
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close((X - centres[y]).norm(dim=1), torch.ones(400, dtype=torch.float64))
    assert bool((X[y == 0, 1] >= -1e-12).all()) and bool((X[y == 1, 1] <= 0.5 + 1e-12).all())
    X, y = toy.circles(300, noise=0.0, factor=0.3, seed=1)
    torch.testing.assert_close(X.norm(dim=1), torch.where(y == 0, 1.0, 0.3).double())
    X, y = toy.blobs(60, k=5, std=0.0, radius=2.0, seed=1)
    for c in range(5):
        angle = 2 * math.pi * c / 5
        expected = torch.tensor([2 * math.cos(angle), 2 * math.sin(angle)], dtype=torch.float64)
        torch.testing.assert_close(X[y == c], expected.expand(12, 2))


@pytest.mark.parametrize("make, kwargs", [(toy.two_moons, {}), (toy.circles, {}),
                                           (toy.blobs, {"radius": 2.0})])
def test_noise_has_the_requested_standard_deviation(make, kwargs):
    # the noise is drawn after the clean points, so the difference is the noise alone
    key = "std" if make is toy.blobs else "noise"
    clean, _ = make(4000, seed=5, **kwargs, **{key: 0.0})
    noisy, _ = make(4000, seed=5, **kwargs, **{key: 0.2})
    d = (noisy - clean) / 0.2
    assert abs(float(d.mean())) < 0.05 and abs(float(d.std()) - 1) < 0.05


def test_same_distribution_as_scikit_learn():
    datasets = pytest.importorskip("sklearn.datasets")
    for make, ref, kw in [(toy.two_moons, datasets.make_moons, {}),
                          (toy.circles, datasets.make_circles, {"factor": 0.5})]:
        X, y = make(20000, noise=0.0, seed=0, **kw)
        Xr, yr = ref(20000, noise=0.0, shuffle=False, **kw)
        for c in (0, 1):
            # same curve: class means and spreads agree (angles are random here, evenly spaced there)
            np.testing.assert_allclose(X[y == c].mean(0).numpy(), Xr[yr == c].mean(0), atol=0.02)
            np.testing.assert_allclose(X[y == c].std(0).numpy(), Xr[yr == c].std(0), atol=0.02)


def test_reexported_from_dlmath_data():
    assert dlmath.data.two_moons is toy.two_moons
    assert dlmath.data.circles is toy.circles and dlmath.data.blobs is toy.blobs


@pytest.mark.parametrize("call, error, match", [
    (lambda: toy.two_moons(1), ValueError, "n must be >= 2"),
    (lambda: toy.two_moons(True), TypeError, "n must be an int"),
    (lambda: toy.two_moons(10, noise=-0.1), ValueError, "noise must be >= 0"),
    (lambda: toy.two_moons(10, noise=float("inf")), ValueError, "noise must be a finite number"),
    (lambda: toy.circles(10, factor=1.0), ValueError, r"factor must be in \(0, 1\), got 1.0"),
    (lambda: toy.circles(10, factor=0.0), ValueError, r"factor must be in \(0, 1\), got 0.0"),
    (lambda: toy.blobs(2, k=3), ValueError, "n must be >= 3"),
    (lambda: toy.blobs(10, k=0), ValueError, "k must be >= 1"),
    (lambda: toy.blobs(10, std="a"), TypeError, "std must be a number"),
    (lambda: toy.two_moons(10, seed=-1), ValueError, "seed must be >= 0"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
