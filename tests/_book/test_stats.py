"""Tests of dlmath._book.stats: Welch's comparison against scipy's ``ttest_ind``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dlmath._book.stats import format_p, welch


@pytest.mark.parametrize("seed", range(8))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.9, 0.02 * (1 + seed), size=int(rng.integers(2, 15)))
    b = rng.normal(0.88, 0.03, size=int(rng.integers(2, 15)))
    d = welch(a, b)
    oracle = stats.ttest_ind(a, b, equal_var=False)
    assert d.diff == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert d.t == pytest.approx(oracle.statistic, rel=1e-10)
    assert d.p == pytest.approx(oracle.pvalue, rel=1e-9)
    assert d.dof == pytest.approx(oracle.df, rel=1e-10)
    assert d.se == pytest.approx(d.diff / oracle.statistic, rel=1e-10)
    assert (d.n_a, d.n_b) == (a.size, b.size)


def test_zero_variance_sides():
    assert welch([1.0, 1.0], [1.0, 1.0]).p == 1.0
    d = welch([1.0, 1.0, 1.0], [0.5, 0.5])
    assert d.p == 0.0 and d.t == np.inf and d.detectable()


def test_swapping_sides_flips_the_sign_only():
    a, b = [0.91, 0.95, 0.9, 0.93], [0.88, 0.9, 0.86]
    d, e = welch(a, b), welch(b, a)
    assert d.diff == -e.diff and d.se == e.se and d.p == e.p


@pytest.mark.parametrize("a", [[1.0], [[1.0, 2.0]], [1.0, np.nan], []])
def test_bad_input(a):
    with pytest.raises(ValueError, match="must be"):
        welch(a, [1.0, 2.0])


def test_format_p():
    assert [format_p(p) for p in (1.0, 0.05, 0.0499, 0.001, 0.000999)] == \
        ["1", "0.05", "0.0499", "0.001", "< 0.001"]
