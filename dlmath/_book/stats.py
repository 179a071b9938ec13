"""Comparing two experiments over seeds: the difference of means, its standard error, Welch's test.

Scope: the chapters compare configurations that were each trained from several independent
seeds ("batch norm raised the test accuracy").  :func:`welch` gives the difference of the
two means, the standard error of that difference and Welch's two-sided t-test, which does
not assume equal variances; :meth:`Difference.text` and :meth:`Difference.p_text` write
it for the prose.  With
:math:`\\bar a, \\bar b` the means, :math:`s_a^2, s_b^2` the sample variances (``ddof=1``)
and :math:`n_a, n_b` the numbers of seeds:

.. math::

    d = \\bar a - \\bar b, \\qquad
    \\mathrm{SE}(d) = \\sqrt{s_a^2/n_a + s_b^2/n_b}, \\qquad t = d / \\mathrm{SE}(d),

    \\nu = \\frac{(s_a^2/n_a + s_b^2/n_b)^2}
                {(s_a^2/n_a)^2/(n_a - 1) + (s_b^2/n_b)^2/(n_b - 1)}
    \\quad \\text{(Welch-Satterthwaite)}, \\qquad p = 2\\,P(T_\\nu > |t|).

References: B. L. Welch, "The generalization of 'Student's' problem when several different
population variances are involved", Biometrika 34 (1947); the tests compare with
``scipy.stats.ttest_ind(equal_var=False)``.  Chapters: :ref:`ch-training-cnns`,
:ref:`ch-regularisation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "Difference", "welch", "format_p"]

#: The level below which the book calls a difference "detectable".
ALPHA = 0.05


def format_p(p: float) -> str:
    """``p`` for the prose: two significant digits, ``"< 0.001"`` below 0.001.

    More digits where two would round across :data:`ALPHA` (0.0499 is not written "0.05").

    Examples
    --------
    >>> format_p(0.3312), format_p(0.0123), format_p(0.0499), format_p(2e-7)
    ('0.33', '0.012', '0.0499', '< 0.001')
    """
    if p < 1e-3:
        return "< 0.001"
    for digits in range(2, 8):
        text = f"{p:.{digits}g}"
        if (float(text) < ALPHA) == (p < ALPHA):
            return text
    return repr(p)


@dataclass(frozen=True)
class Difference:
    """Welch's comparison of two sets of per-seed values (see :func:`welch`).

    Attributes
    ----------
    diff : float
        ``mean(a) - mean(b)``.
    se : float
        Standard error of ``diff``.
    t : float
        ``diff / se`` (0 when both are 0, ±inf when only ``se`` is).
    dof : float
        Welch-Satterthwaite degrees of freedom.
    p : float
        Two-sided p-value.
    n_a, n_b : int
        Numbers of values (seeds) on each side.
    """

    diff: float
    se: float
    t: float
    dof: float
    p: float
    n_a: int
    n_b: int

    def detectable(self, alpha: float = ALPHA) -> bool:
        """Whether the test rejects "no difference" at level ``alpha`` (``p < alpha``)."""
        return self.p < alpha

    def text(self, scale: float = 100, unit: str = "points", digits: int = 1) -> str:
        """``"+5.8 ± 2.1 points"``: the difference ± its standard error, scaled.

        Examples
        --------
        >>> d = welch([0.90, 0.91, 0.89], [0.93, 0.95, 0.94])
        >>> d.text(), d.text(unit=""), d.p_text()
        ('−4.0 ± 0.8 points', '−4.0 ± 0.8', 'p = 0.008')
        """
        unit = f" {unit}" if unit else ""
        diff = f"{scale * self.diff:+.{digits}f}".replace("-", "−")
        return f"{diff} ± {scale * self.se:.{digits}f}{unit}"

    def p_text(self) -> str:
        """``"p = 0.33"`` or ``"p < 0.001"`` (see :func:`format_p`)."""
        p = format_p(self.p)
        return f"p {p}" if p.startswith("<") else f"p = {p}"


def welch(a, b) -> Difference:
    """Difference of the means of ``a`` and ``b``, its standard error, and Welch's t-test.

    Explanation
    -----------
    ``a`` and ``b`` are independent samples, e.g. the final test accuracy of each seed of two
    configurations.  The standard error uses the sample variances (``ddof=1``) of each side;
    the test is two-sided.  When both sides have zero variance, ``p`` is 1 if the means are
    equal and 0 otherwise.

    Parameters
    ----------
    a, b : array_like
        One-dimensional, at least two finite values each.

    Returns
    -------
    Difference

    Raises
    ------
    ValueError
        If a side is not one-dimensional, has fewer than two values, or is not finite.

    Examples
    --------
    >>> d = welch([1.0, 2.0, 3.0], [0.0, 1.0])
    >>> round(d.diff, 3), round(d.se, 3), round(d.dof, 2), round(d.p, 3)
    (1.5, 0.764, 2.88, 0.148)
    >>> d.detectable()
    False

    See Also
    --------
    scipy.stats.ttest_ind : with ``equal_var=False``, the same test.
    """
    arrays = []
    for name, x in (("a", a), ("b", b)):
        x = np.asarray(x, dtype=float)
        if x.ndim != 1 or x.size < 2:
            raise ValueError(f"{name} must be one-dimensional with at least two values, got "
                             f"shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} must be finite, got {x}")
        arrays.append(x)
    a, b = arrays
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size      # squared SE of each mean
    diff, se = float(a.mean() - b.mean()), float(np.sqrt(va + vb))
    if se == 0:
        t, dof, p = (0.0 if diff == 0 else np.copysign(np.inf, diff)), float(a.size + b.size - 2), \
            (1.0 if diff == 0 else 0.0)
    else:
        t = diff / se
        dof = float((va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)))
        p = float(2 * stats.t.sf(abs(t), dof))
    return Difference(diff=diff, se=se, t=float(t), dof=dof, p=p, n_a=a.size, n_b=b.size)
