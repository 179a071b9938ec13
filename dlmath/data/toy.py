"""Generated two-dimensional classification sets: two moons, circles, Gaussian blobs.

Scope: small labelled point clouds in the plane for training and drawing decision
boundaries.  Each generator is vectorised (no Python loop over points), seeded by its
own ``torch.Generator`` (the global random state is never touched), and returns the
points in a random order as ``(X, y)``: ``X`` of shape ``(n, 2)`` and ``y`` of shape
``(n,)`` with dtype ``int64``.  Classes are as balanced as ``n`` allows.
The shapes follow scikit-learn's ``make_moons`` and ``make_circles``.
Chapter: :ref:`ch-mlp-backprop`.
"""

from __future__ import annotations

import math

import torch

from dlmath._validate import check_dtype, check_entries, check_int, check_number, check_seed

__all__ = ["two_moons", "circles", "blobs"]


def _labels(n: int, k: int) -> torch.Tensor:
    """Balanced labels 0..k-1 in blocks: class c gets n//k or n//k + 1 points."""
    return torch.arange(n) * k // n  # (n,)


def _finish(X: torch.Tensor, y: torch.Tensor, noise: float, gen: torch.Generator,
            dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Add isotropic Gaussian noise and shuffle the points."""
    X = X + noise * torch.randn(X.shape, generator=gen, dtype=torch.float64)
    order = torch.randperm(X.shape[0], generator=gen)
    return X[order].to(dtype), y[order]


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0,
              dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two interleaving half circles, one per class.

    Explanation
    -----------
    Class 0 lies on the upper half of the unit circle centred at :math:`(0, 0)`,
    class 1 on the lower half of the unit circle centred at :math:`(1, \tfrac12)`; the
    angle of each point is uniform on :math:`[0, \pi]`.  Gaussian noise of standard
    deviation ``noise`` is added to both coordinates.  No straight line separates
    the classes, so a linear classifier cannot reach 100 % accuracy.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    noise : float
        Standard deviation of the noise, non-negative.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of ``X``.

    Returns
    -------
    (X, y)
        ``X`` of shape ``(n, 2)``, ``y`` of shape ``(n,)`` with values 0 and 1.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or is out of range.

    Examples
    --------
    >>> X, y = two_moons(7, seed=1)
    >>> X.shape, y.tolist().count(0), y.tolist().count(1)
    (torch.Size([7, 2]), 4, 3)
    >>> bool((two_moons(7, seed=1)[0] == X).all())       # same seed, same points
    True

    See Also
    --------
    circles, blobs

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    check_entries(f"n={n} points", 2 * check_int("n", n, 2))
    noise = check_number("noise", noise, nonnegative=True)
    check_seed("seed", seed)
    check_dtype("dtype", dtype, floating=True)
    gen = torch.Generator().manual_seed(seed)
    y = _labels(n, 2)
    t = math.pi * torch.rand(n, generator=gen, dtype=torch.float64)  # angle on the half circle
    # class 0: (cos t, sin t);  class 1: (1 - cos t, 1/2 - sin t)
    sign = 1.0 - 2.0 * y.to(torch.float64)  # +1 for class 0, -1 for class 1
    X = torch.stack([y + sign * torch.cos(t), 0.5 * y + sign * torch.sin(t)], dim=1)  # (n, 2)
    return _finish(X, y, noise, gen, dtype)


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0,
            dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two concentric circles: class 0 of radius 1, class 1 of radius ``factor``.

    Explanation
    -----------
    The angle of each point is uniform on :math:`[0, 2\pi)`; Gaussian noise of standard
    deviation ``noise`` is then added to both coordinates.  The classes are separated by
    a circle, not by a line.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    noise : float
        Standard deviation of the noise, non-negative.
    factor : float
        Radius of the inner circle, in :math:`(0, 1)`.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of ``X``.

    Returns
    -------
    (X, y)
        ``X`` of shape ``(n, 2)``, ``y`` of shape ``(n,)`` with values 0 (outer) and 1 (inner).

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or is out of range.

    Examples
    --------
    >>> X, y = circles(6, noise=0.0, factor=0.25)
    >>> X.norm(dim=1)[y == 0].round(decimals=6).tolist(), X.norm(dim=1)[y == 1].round(decimals=6).tolist()
    ([1.0, 1.0, 1.0], [0.25, 0.25, 0.25])

    See Also
    --------
    two_moons, blobs

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    check_entries(f"n={n} points", 2 * check_int("n", n, 2))
    noise = check_number("noise", noise, nonnegative=True)
    factor = check_number("factor", factor, interval="(0, 1)")
    check_seed("seed", seed)
    check_dtype("dtype", dtype, floating=True)
    gen = torch.Generator().manual_seed(seed)
    y = _labels(n, 2)
    t = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    radius = torch.where(y == 0, 1.0, factor).to(torch.float64)  # (n,)
    X = radius[:, None] * torch.stack([torch.cos(t), torch.sin(t)], dim=1)  # (n, 2)
    return _finish(X, y, noise, gen, dtype)


def blobs(n: int = 300, k: int = 3, std: float = 0.5, radius: float = 2.0, seed: int = 0,
          dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``k`` isotropic Gaussian clusters with centres evenly spaced on a circle.

    Explanation
    -----------
    Class :math:`c` is drawn from :math:`\mathcal N(\mu_c, \sigma^2 I)` with
    :math:`\mu_c = r(\cos(2\pi c/k), \sin(2\pi c/k))`.  Neighbouring centres are
    :math:`2r\sin(\pi/k)` apart, so the classes overlap more as ``k`` grows.

    Parameters
    ----------
    n : int
        Number of points, at least ``k``.
    k : int
        Number of classes, at least 1.
    std : float
        Standard deviation :math:`\sigma` of each cluster, non-negative.
    radius : float
        Radius :math:`r` of the circle of centres, non-negative.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of ``X``.

    Returns
    -------
    (X, y)
        ``X`` of shape ``(n, 2)``, ``y`` of shape ``(n,)`` with values ``0 .. k-1``.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or is out of range.

    Examples
    --------
    >>> X, y = blobs(10, k=4, std=0.0, radius=1.0)
    >>> X.shape, torch.bincount(y).tolist()
    (torch.Size([10, 2]), [3, 2, 3, 2])
    >>> X[y == 1][0].round(decimals=6).tolist()              # centre of class 1: (0, 1)
    [0.0, 1.0]

    See Also
    --------
    two_moons, circles

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    check_int("k", k, 1)
    check_int("n", n)
    if n < k:
        raise ValueError(f"n must be >= {k} (k = {k} blobs need a point each), got {n}")
    check_entries(f"n={n} points", 2 * n)
    std = check_number("std", std, nonnegative=True)
    radius = check_number("radius", radius, nonnegative=True)
    check_seed("seed", seed)
    check_dtype("dtype", dtype, floating=True)
    gen = torch.Generator().manual_seed(seed)
    y = _labels(n, k)
    angle = 2 * math.pi * y.to(torch.float64) / k
    X = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)
    return _finish(X, y, std, gen, dtype)
