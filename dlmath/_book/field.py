"""The receptive field of a real 2-D network, measured by automatic differentiation.

Private, book-only: the chapter "Counting parameters" (``ch-counting-parameters``) and its
claims (:mod:`dlmath._book.claims.params`) compare stacks of small kernels with one large
kernel at equal receptive field; the field they compare is measured here, independently of
the formula :func:`dlmath.conv.receptive_field`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["measured_receptive_field"]


def measured_receptive_field(net: nn.Module, channels: int, size: int = 41, seed: int = 0) -> int:
    r"""Width of the input region that one central output of ``net`` depends on.

    Explanation
    -----------
    Copies ``net`` in float64 with every weight replaced by its absolute value, feeds a
    positive random ``channels`` × ``size`` × ``size`` input and differentiates the central
    output of the first channel.  With positive weights and inputs every ReLU passes and no
    two paths cancel, so the input columns with a non-zero gradient are exactly those the
    output reads.  ``net`` must keep the spatial size (stride 1, "same" padding).

    Parameters
    ----------
    net : torch.nn.Module
        A 2-D convolutional stack, such as :func:`dlmath.models.zoo.conv_stack`; not modified.
    channels : int
        Input channels of ``net``.
    size : int
        Side of the square input, odd and larger than the field.
    seed : int
        Seed of the random input.

    Returns
    -------
    int
        The width, in input pixels, of the region the central output depends on.

    Raises
    ------
    ValueError
        If ``size`` is not an odd int of at least 3, or ``channels`` not a positive int.

    Examples
    --------
    >>> from dlmath.models.zoo import conv_stack
    >>> measured_receptive_field(conv_stack(2, 3, depth=2), channels=2)   # 2 (3 - 1) + 1
    5
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd int of at least 3, got {size!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    import copy

    net = copy.deepcopy(net).double()
    with torch.no_grad():                 # positive weights and input: every ReLU passes
        for p in net.parameters():
            p.abs_()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size, size, generator=gen, dtype=torch.float64) + 0.1
    x.requires_grad_(True)
    net(x)[0, 0, size // 2, size // 2].backward()
    cols = (x.grad.abs().sum(dim=(0, 1, 2)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)
