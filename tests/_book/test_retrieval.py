"""Tests of dlmath._book.retrieval, the Hopfield chapter's experiment helpers.

Oracles: brute force (pixel counts, explicit loops over the patterns), the definitions of
separation and of the well-separated condition, and the bound itself.
"""

from __future__ import annotations

import math

import pytest
import torch

from dlmath import hopfield
from dlmath._book import retrieval


def test_flip_pixels_flips_about_the_fraction_and_only_negates():
    X = torch.tensor([[1.0, -1.0] * 500, [-1.0, 1.0] * 500])
    Q = retrieval.flip_pixels(X, 0.25, copies=4, seed=0)
    assert Q.shape == (8, 1000)
    same_or_negated = (Q == X.repeat(4, 1)) | (Q == -X.repeat(4, 1))
    assert bool(same_or_negated.all())
    flipped = float((Q != X.repeat(4, 1)).double().mean())
    assert abs(flipped - 0.25) < 0.03                      # 8000 Bernoulli(1/4) draws


def test_flip_pixels_rejects_a_fraction_outside_the_unit_interval():
    with pytest.raises(ValueError, match="fraction"):
        retrieval.flip_pixels(torch.ones(1, 4), 1.5, copies=1, seed=0)


def test_mask_halves_zeroes_each_half_by_brute_force():
    X = torch.arange(1, 2 * 64 + 1, dtype=torch.float64).reshape(2, 64)
    Q = retrieval.mask_halves(X).reshape(4, 2, 8, 8)           # (side, pattern, row, col)
    img = X.reshape(2, 8, 8)
    for k, (rows, cols) in enumerate([(slice(0, 4), slice(None)), (slice(4, 8), slice(None)),
                                      (slice(None), slice(0, 4)), (slice(None), slice(4, 8))]):
        expected = img.clone()
        expected[:, rows, cols] = 0
        assert torch.equal(Q[k], expected)


def test_mask_halves_rejects_a_size_that_is_not_a_square_of_an_even_side():
    with pytest.raises(ValueError, match="side"):
        retrieval.mask_halves(torch.ones(1, 10), side=3)


def test_retrieved_share_counts_sign_matches_after_one_update():
    X = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]], dtype=torch.float64)
    Q = torch.tensor([[1.0, 0.0, -1.0], [1.0, 1.0, -1.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])                             # the second is labelled wrongly
    out = hopfield.update(X, Q, 4.0)
    brute = sum(bool((torch.sign(out[k]) == X[target[k]]).all()) for k in range(2)) / 2
    assert retrieval.retrieved_share(X, Q, target, 4.0) == brute == 0.5


def test_smallest_separating_beta_is_the_first_grid_point_meeting_the_condition():
    gen = torch.Generator().manual_seed(0)
    X = retrieval.unit_patterns(4, 16, gen)
    assert torch.allclose(torch.linalg.vector_norm(X, dim=1), torch.ones(4, dtype=torch.float64))
    grid = [0.5 * 1.1**k for k in range(200)]
    beta = retrieval.smallest_separating_beta(X, grid)
    delta = float(hopfield.separation(X).min())
    ok = [delta >= hopfield.separation_threshold(4, 1.0, b) and 2 * 3 * 4 * b >= 1 for b in grid]
    assert beta == grid[ok.index(True)]


def test_bound_cases_errors_stay_below_the_bound():
    gen = torch.Generator().manual_seed(1)
    X = retrieval.unit_patterns(4, 16, gen)
    beta = retrieval.smallest_separating_beta(X)
    errs, bounds, fixed_ok, in_ball = retrieval.bound_cases(X, beta, gen, n_queries=5)
    assert errs.shape == bounds.shape == (4 * 2 * 5,)
    assert bool((errs <= bounds).all())
    assert 0 <= fixed_ok <= 4 and 0 <= in_ball <= 4


def test_bound_cases_refuses_patterns_that_are_not_well_separated():
    X = torch.tensor([[1.0, 0.0], [0.99, 0.141]], dtype=torch.float64)
    with pytest.raises(ValueError, match="well separated"):
        retrieval.bound_cases(X, 0.1, torch.Generator().manual_seed(0))


def test_fixed_point_weights_large_beta_retrieves_each_pattern():
    X = torch.eye(4, dtype=torch.float64) * 3
    labels = torch.tensor([0, 0, 1, 1])
    k_eff, own, fixed = retrieval.fixed_point_weights(X, labels, beta=20.0)
    assert torch.allclose(fixed, X, atol=1e-8)
    assert torch.allclose(k_eff, torch.ones(4, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(own, torch.ones(4, dtype=torch.float64), atol=1e-8)
    # by hand at the fixed point x_i: weights e^{9 beta} on i, e^0 on the others
    p_i = math.exp(9 * 20.0) / (math.exp(9 * 20.0) + 3)
    assert abs(float(own[0]) - (p_i + (1 - p_i) / 3)) < 1e-12
