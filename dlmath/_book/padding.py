"""The padding chapter's experiment: predictions of many trained nets, and box pairs one field sees."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlmath._validate import check_int
from dlmath.conv import ReceptiveField
from dlmath.data.boxes import BoxLayout

__all__ = ["class_predictions", "boxes_share_a_field"]


def class_predictions(models: Sequence[nn.Module], x: torch.Tensor,
                      batch_size: int = 1024) -> torch.Tensor:
    """The class each model predicts for each input (largest logit), ``(S, N)`` int64.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        E.g. ``[result.model(i) for i in range(len(result.seeds))]``; run in evaluation
        mode without gradients (their mode is restored afterwards).
    x : torch.Tensor
        ``(N, ...)`` inputs.
    batch_size : int

    Returns
    -------
    torch.Tensor

    Raises
    ------
    TypeError
        If ``models`` is not a non-empty sequence of modules.
    ValueError
        If ``batch_size`` is not a positive int.

    Examples
    --------
    >>> from dlmath.models import strided_conv_net
    >>> nets = [strided_conv_net("zeros1", channels=(2, 2, 2, 2)) for _ in range(3)]
    >>> class_predictions(nets, torch.rand(5, 3, 32, 32), batch_size=2).shape
    torch.Size([3, 5])

    See Also
    --------
    dlmath.models.strided_conv_net

    References
    ----------
    Chapter: :ref:`ch-padding-position`.
    """
    if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models \
            or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("models must be a non-empty sequence of nn.Module")
    check_int("batch_size", batch_size, 1)
    out = torch.empty(len(models), x.shape[0], dtype=torch.long)
    modes = [m.training for m in models]
    try:
        with torch.no_grad():
            for s, m in enumerate(models):
                m.eval()
                for i in range(0, x.shape[0], batch_size):
                    out[s, i:i + batch_size] = m(x[i:i + batch_size]).argmax(-1).cpu()
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    return out


def boxes_share_a_field(layout: BoxLayout, field: ReceptiveField) -> torch.Tensor:
    r"""Whether some unit's receptive field holds a pixel of both boxes, per image.

    Explanation
    -----------
    Along one axis unit :math:`u` sees input positions :math:`[uS - P, uS - P + r - 1]`
    (``field``: size :math:`r`, stride :math:`S`, padding :math:`P`).  It meets a box
    occupying :math:`[a, a + b - 1]` and one occupying :math:`[c, c + b - 1]` exactly when
    its first position :math:`w = uS - P` lies in
    :math:`[\max(a, c) - r + 1,\; \min(a, c) + b - 1]`; such a :math:`w` exists when the
    interval contains a number congruent to :math:`-P` modulo :math:`S`.  Rows and columns
    are independent, so both must hold.  Units are not limited to a map: this is the
    field of a network that sees the whole plane (full zero padding on a black
    background, see the chapter).

    Parameters
    ----------
    layout : BoxLayout
    field : ReceptiveField
        E.g. ``dlmath.conv.receptive_field([(3, 1, 2), (3, 2, 2), (3, 2, 2), (3, 2, 2)])``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` bool.

    Raises
    ------
    TypeError
        If ``layout`` is not a BoxLayout or ``field`` not a ReceptiveField.

    Examples
    --------
    >>> from dlmath.conv import ReceptiveField
    >>> lay = BoxLayout(torch.tensor([0, 0]), torch.tensor([[4, 0], [4, 0]]),
    ...                 torch.tensor([[4, 8], [4, 20]]), size=32, box=4)
    >>> boxes_share_a_field(lay, ReceptiveField(depth=4, size=17, stride=8, padding=16)).tolist()
    [True, False]

    See Also
    --------
    dlmath.conv.receptive_field : the size, stride and padding of a stack's field.

    References
    ----------
    Chapter: :ref:`ch-padding-position`.
    """
    if not isinstance(layout, BoxLayout):
        raise TypeError(f"layout must be a BoxLayout, got {type(layout).__name__}")
    if not isinstance(field, ReceptiveField):
        raise TypeError(f"field must be a ReceptiveField, got {type(field).__name__}")
    r, S, P, b = int(field.size), int(field.stride), int(field.padding), layout.box
    lo = torch.maximum(layout.red, layout.green) - r + 1                  # (N, 2)
    hi = torch.minimum(layout.red, layout.green) + b - 1                  # (N, 2)
    # some w = u S - P in [lo, hi]  <=>  floor((hi + P) / S) >= ceil((lo + P) / S)
    fits = torch.div(hi + P, S, rounding_mode="floor") >= -torch.div(-(lo + P), S,
                                                                      rounding_mode="floor")
    return fits.all(1)
