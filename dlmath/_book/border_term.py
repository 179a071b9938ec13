"""The border term of a padded convolution, checked against ``torch.nn.Conv2d``.

:func:`dlmath.models.position.conv_border_term_sym` writes one output of a padded
:math:`3 \\times 3` convolution as a SymPy sum: the taps inside the frame plus the border
term, the taps that read the padding.  :func:`border_term_against_torch` evaluates those
expressions at random images and kernels and compares them with what ``nn.Conv2d`` computes
with the same ``padding_mode``, in float64.  Chapter: :ref:`ch-padding-position`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import sympy as sp
import torch
from torch import nn

from dlmath.models import position as pn

__all__ = ["border_term_against_torch"]


def border_term_against_torch(shapes: Sequence[tuple[int, int]] = ((5, 5), (6, 4)),
                              paddings: Sequence[str] = pn.PADDINGS,
                              strides: Sequence[int] = (1, 2)) -> tuple[int, float]:
    """Compare interior + border term with ``nn.Conv2d`` at every output.

    Explanation
    -----------
    For each image shape, padding of :data:`dlmath.models.position.PADDINGS` and stride, a
    random float64 image and :math:`3 \\times 3` kernel (seeded by the case's number) are
    put into the expressions of :func:`~dlmath.models.position.conv_border_term_sym` and
    into ``nn.Conv2d(1, 1, 3, stride, padding, padding_mode, bias=False)``.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Image heights and widths, each at least 3.
    paddings : sequence of str
        Names from :data:`dlmath.models.position.PADDINGS`.
    strides : sequence of int

    Returns
    -------
    (int, float)
        The number of outputs compared and the largest absolute difference.

    Examples
    --------
    >>> checked, worst = border_term_against_torch(shapes=[(4, 4)], paddings=["circular1"],
    ...                                            strides=[1])
    >>> checked, worst < 1e-12          # a 4 x 4 output, every entry equal to torch's
    (16, True)

    See Also
    --------
    dlmath.models.position.conv_border_term_sym
    """
    checked, worst = 0, 0.0
    for (h, w), padding, stride in itertools.product(shapes, paddings, strides):
        amount, mode = pn.padding_spec(padding)
        g = torch.Generator().manual_seed(checked)
        x = torch.randn(h, w, generator=g, dtype=torch.float64)
        k = torch.randn(3, 3, generator=g, dtype=torch.float64)
        layer = nn.Conv2d(1, 1, 3, stride=stride, padding=amount, padding_mode=mode,
                          bias=False).to(torch.float64)
        with torch.no_grad():
            layer.weight.copy_(k[None, None])
            expected = layer(x[None, None])[0, 0]                     # (h', w')
        values = {sp.Symbol(f"x_{{{r},{c}}}"): float(x[r, c]) for r in range(h) for c in range(w)}
        values |= {sp.Symbol(f"w_{{{a},{b}}}"): float(k[a, b]) for a in range(3) for b in range(3)}
        for i, j in itertools.product(range(expected.shape[0]), range(expected.shape[1])):
            inner, border = pn.conv_border_term_sym(h, w, i, j, padding, stride=stride)
            worst = max(worst, abs(float((inner + border).xreplace(values)) - float(expected[i, j])))
            checked += 1
    return checked, worst
