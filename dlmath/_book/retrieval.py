"""The Hopfield chapter's retrieval experiments: corrupted queries, retrieval rates, bound cases.

Private to the book (chapter :ref:`ch-hopfield`): the chapter shows the calls and their
configuration, the loops live here.  The mathematics (energy, update, separation, the bound of
Ramsauer et al., Theorem 5) is in :mod:`dlmath.hopfield`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from dlmath import hopfield

__all__ = ["flip_pixels", "mask_halves", "retrieved_share", "unit_patterns",
           "smallest_separating_beta", "bound_cases", "fixed_point_weights"]


def flip_pixels(X: torch.Tensor, fraction: float, copies: int, seed: int) -> torch.Tensor:
    """``copies`` versions of every row of ``X`` with a random ``fraction`` of its entries negated.

    Returns ``(copies * N, D)``; row ``k`` is a corrupted copy of pattern ``k % N``.

    Examples
    --------
    >>> X = torch.ones(2, 100)
    >>> Q = flip_pixels(X, 0.0, copies=3, seed=0)
    >>> Q.shape, bool((Q == 1).all())
    (torch.Size([6, 100]), True)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    g = torch.Generator().manual_seed(seed)
    Xr = X.repeat(copies, 1)
    return torch.where(torch.rand(Xr.shape, generator=g) < fraction, -Xr, Xr)


def mask_halves(X: torch.Tensor, side: int = 8) -> torch.Tensor:
    """Every ``side x side`` pattern four times, its top, bottom, left or right half set to 0.

    Returns ``(4 * N, side * side)``: the N top-masked patterns first, then bottom, left, right.

    Examples
    --------
    >>> Q = mask_halves(torch.ones(1, 16), side=4)
    >>> Q.reshape(4, 4, 4)[0].sum(dim=1).tolist()      # top half unknown
    [0.0, 0.0, 4.0, 4.0]
    """
    if side % 2 or X.shape[-1] != side * side:
        raise ValueError(f"patterns must have side * side entries with an even side, "
                         f"got {X.shape[-1]} entries and side {side}")
    out = X.reshape(-1, side, side).repeat(4, 1, 1)
    n, h = X.shape[0], side // 2
    out[:n, :h], out[n:2 * n, h:], out[2 * n:3 * n, :, :h], out[3 * n:, :, h:] = 0, 0, 0, 0
    return out.reshape(-1, side * side)


def retrieved_share(X: torch.Tensor, Q: torch.Tensor, target: torch.Tensor, beta: float,
                    steps: int = 1) -> float:
    """Share of queries whose state after ``steps`` updates has exactly the signs of their pattern.

    Examples
    --------
    >>> X = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    >>> retrieved_share(X, X, torch.tensor([0, 1]), beta=5.0)
    1.0
    """
    out = hopfield.retrieve(X, Q, beta, max_steps=steps, tol=0.0).final
    return float((torch.sign(out) == X[target]).all(dim=1).double().mean())


def unit_patterns(N: int, D: int, gen: torch.Generator) -> torch.Tensor:
    """``N`` random patterns on the unit sphere of dimension ``D``, float64, ``(N, D)``."""
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    return X / torch.linalg.vector_norm(X, dim=1, keepdim=True)


def smallest_separating_beta(X: torch.Tensor,
                             grid: Sequence[float] = tuple(np.geomspace(0.1, 1e4, 600))) -> float:
    """The smallest ``beta`` on ``grid`` at which every pattern is well separated.

    Well separated: ``separation >= separation_threshold(N, M, beta)``; also required is
    ``2 (N - 1) N beta M^2 >= 1``, so that the logarithm in the threshold is not negative.

    Raises
    ------
    ValueError
        If no ``beta`` on the grid qualifies.
    """
    N = X.shape[0]
    M = float(torch.linalg.vector_norm(X, dim=1).max())
    delta = float(hopfield.separation(X).min())
    for b in grid:
        if 2 * (N - 1) * N * b * M**2 >= 1 and delta >= hopfield.separation_threshold(N, M, float(b)):
            return float(b)
    raise ValueError("no beta on the grid separates every pattern")


def bound_cases(X: torch.Tensor, beta: float, gen: torch.Generator, n_queries: int = 20):
    """One-step errors and Theorem 5 bounds for queries near every pattern, and the fixed points.

    For each pattern ``x_i``: the fixed point ``x_i*`` (iterating from ``x_i``); ``n_queries``
    queries uniform in direction at distance up to the radius ``1/(beta N M)`` of the ball
    ``S_i``, and as many up to ``1/(2 beta M)``.

    Returns
    -------
    errors, bounds : torch.Tensor
        ``||f(q) - x_i||`` and the bound of :func:`dlmath.hopfield.retrieval_error_bound`.
    fixed_ok : int
        Patterns whose fixed point satisfies ``||x_i* - x_i|| <= 2 e (N - 1) M exp(-beta Delta_i)``.
    fixed_in_ball : int
        Patterns whose fixed point lies in ``S_i``.

    Raises
    ------
    ValueError
        If some pattern is not well separated at ``beta``.
    """
    N, D = X.shape
    M = float(torch.linalg.vector_norm(X, dim=1).max())
    delta = hopfield.separation(X)
    if not bool((delta >= hopfield.separation_threshold(N, M, beta)).all()):
        raise ValueError(f"not every pattern is well separated at beta = {beta}")
    errs, bounds, fixed_ok, fixed_in_ball = [], [], 0, 0
    for i in range(N):
        x_star = hopfield.retrieve(X, X[i], beta, max_steps=500, tol=1e-15).final
        fixed_in_ball += float(torch.linalg.vector_norm(x_star - X[i])) <= 1 / (beta * N * M)
        fixed_ok += float(hopfield.retrieval_error(X, x_star, beta, i)) <= (
            2 * math.e * (N - 1) * M * math.exp(-beta * float(delta[i])))
        for radius in (1 / (beta * N * M), 1 / (2 * beta * M)):
            u = torch.randn(n_queries, D, generator=gen, dtype=X.dtype)
            u = u / torch.linalg.vector_norm(u, dim=1, keepdim=True)
            q = X[i] + u * radius * torch.rand(n_queries, 1, generator=gen, dtype=X.dtype)
            errs.append(hopfield.retrieval_error(X, q, beta, i))
            bounds.append(hopfield.retrieval_error_bound(X, q, beta, i, fixed_point=x_star))
    return torch.cat(errs), torch.cat(bounds), fixed_ok, fixed_in_ball


def fixed_point_weights(X: torch.Tensor, labels: torch.Tensor, beta: float,
                        max_steps: int = 1500, tol: float = 1e-9):
    """Run the update from every stored pattern to its fixed point; weigh the patterns there.

    Returns
    -------
    k_eff : torch.Tensor
        ``(N,)`` effective number of patterns averaged, ``1 / sum_i p_i^2``.
    own : torch.Tensor
        ``(N,)`` softmax weight on the patterns of the starting pattern's class.
    fixed : torch.Tensor
        ``(N, D)`` the fixed points.

    Raises
    ------
    RuntimeError
        If some state still moves by more than ``tol`` after ``max_steps`` updates.

    Examples
    --------
    >>> X = torch.eye(3, dtype=torch.float64)
    >>> k_eff, own, _ = fixed_point_weights(X, torch.tensor([0, 1, 2]), beta=1e-6)
    >>> [round(v, 3) for v in k_eff.tolist()]        # tiny beta: all three averaged
    [3.0, 3.0, 3.0]
    """
    r = hopfield.retrieve(X, X, beta, max_steps=max_steps, tol=tol)
    if not r.converged:
        raise RuntimeError(f"no fixed point within tol {tol:g} after {max_steps} updates at beta {beta:g}")
    p = torch.softmax(beta * r.final @ X.T, dim=-1)                  # (N, N)
    same_class = (labels[:, None] == labels[None, :]).to(X.dtype)
    return 1 / (p**2).sum(-1), (p * same_class).sum(-1), r.final
