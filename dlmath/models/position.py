r"""Padding and absolute position: strided CNNs and the ways of handling the border.

Scope: :func:`strided_conv_net` builds the two networks of the red/green experiment of
Kayhan & van Gemert (2020), a stack of bias-free 3×3 convolutions with strides followed
either by global max pooling and a linear classifier ("Net1") or by flattening and two
linear layers ("Net2"), for any of the border treatments in :data:`PADDINGS`;
:func:`feature_map_sizes` gives their map sizes; :func:`conv_border_term_sym` writes one
output of a padded convolution as the sum of the taps that fall inside the image and the
*border term* (the taps that fall in the padding).  How far a network is from
invariance to a shift is measured with :func:`dlmath.equivariance.equivariance_error`
(output shift 0).

Convention: PyTorch's cross-correlation,
:math:`f_{i,j} = \sum_{a,b} w_{a,b}\, \tilde x_{is + a - p,\; js + b - p}`, where
:math:`\tilde x` is the input extended by the padding (zeros, the opposite side, a mirror
image without the edge, or the edge repeated).

Chapter: :ref:`ch-padding-position`.

References: Kayhan & van Gemert, "On Translation Invariance in CNNs: Convolutional Layers
can Exploit Absolute Spatial Location", CVPR 2020; Islam, Jia & Bruce, "How Much Position
Information Do Convolutional Neural Networks Encode?", ICLR 2020; the ``padding_mode``
argument of ``torch.nn.Conv2d``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import sympy as sp
from torch import nn

from dlmath._validate import check_bool, check_choice, check_entries, check_int, int_sequence
from dlmath.conv import conv_output_size

__all__ = [
    "PADDINGS",
    "padding_spec",
    "feature_map_sizes",
    "strided_conv_net",
    "conv_border_term_sym",
]

#: The border treatments (no padding first, then a mode with the pixels added on each side).
#: Zero padding of 1 is "same" and of 2 "full" for 3×3 kernels; circular padding wraps
#: around, reflect padding mirrors without repeating the edge, replicate padding repeats
#: the edge.  The code released with Kayhan & van Gemert (2020) and the course network of
#: report 002 pad the last three by 2 pixels; the 1-pixel versions keep the map sizes of
#: "same" padding.
PADDINGS: tuple[str, ...] = ("valid", "zeros1", "zeros2", "circular1", "circular2",
                             "reflect1", "reflect2", "replicate1", "replicate2")

_SPECS = {"valid": (0, "zeros"), "zeros1": (1, "zeros"), "zeros2": (2, "zeros"),
          "circular1": (1, "circular"), "circular2": (2, "circular"),
          "reflect1": (1, "reflect"), "reflect2": (2, "reflect"),
          "replicate1": (1, "replicate"), "replicate2": (2, "replicate")}


def padding_spec(padding: str) -> tuple[int, str]:
    """The amount and the ``torch.nn.Conv2d`` ``padding_mode`` of a named border treatment.

    Parameters
    ----------
    padding : str
        One of :data:`PADDINGS`.

    Returns
    -------
    (int, str)
        Pixels added on each side, and the mode (``"zeros"``, ``"circular"``,
        ``"reflect"`` or ``"replicate"``).

    Raises
    ------
    ValueError
        If ``padding`` is not one of :data:`PADDINGS`.

    Examples
    --------
    >>> [padding_spec(p) for p in ("valid", "zeros2", "reflect1", "replicate2")]
    [(0, 'zeros'), (2, 'zeros'), (1, 'reflect'), (2, 'replicate')]
    >>> padding_spec("same")
    Traceback (most recent call last):
    ...
    ValueError: padding must be one of 'valid', 'zeros1', 'zeros2', 'circular1', 'circular2', 'reflect1', 'reflect2', 'replicate1', 'replicate2', got 'same'

    See Also
    --------
    strided_conv_net : uses it for every layer.

    References
    ----------
    Chapter: :ref:`ch-padding-position`.
    """
    return _SPECS[check_choice("padding", padding, PADDINGS)]


def feature_map_sizes(size: int, padding: str, strides: Sequence[int] = (1, 2, 2, 2),
                      kernel_size: int = 3) -> list[int]:
    """Side of the square feature map after each convolution of a strided stack.

    Explanation
    -----------
    Every layer applies :func:`dlmath.conv.conv_output_size` with the amount of
    ``padding`` (the mode does not change sizes).

    Parameters
    ----------
    size : int
        Side of the input image.
    padding : str
        One of :data:`PADDINGS`.
    strides : sequence of int
        One stride per convolution.
    kernel_size : int

    Returns
    -------
    list of int
        One side per layer.

    Raises
    ------
    ValueError
        For an unknown padding, or when a kernel no longer fits (the message of
        :func:`dlmath.conv.conv_output_size`).

    Examples
    --------
    >>> {p: feature_map_sizes(32, p) for p in ("valid", "zeros1", "zeros2")}
    {'valid': [30, 14, 6, 2], 'zeros1': [32, 16, 8, 4], 'zeros2': [34, 18, 10, 6]}

    See Also
    --------
    dlmath.conv.conv_output_size : the size rule.

    References
    ----------
    Chapter: :ref:`ch-padding-position`.
    """
    amount, _ = padding_spec(padding)
    strides = int_sequence("strides", strides)
    sizes, n = [], check_int("size", size, 1)
    for i, s in enumerate(strides):
        try:
            n = conv_output_size(n, kernel_size, s, amount)
        except ValueError as err:
            if i == 0:
                raise
            raise ValueError(f"layer {i + 1} (after strides {strides[:i]} from size {size}): "
                             f"{err}") from None
        sizes.append(n)
    return sizes


def strided_conv_net(padding: str = "zeros1", global_pool: bool = True, *,
                     in_channels: int = 3, channels: Sequence[int] = (32, 32, 64, 64),
                     strides: Sequence[int] = (1, 2, 2, 2), kernel_size: int = 3,
                     size: int = 32, hidden: int = 64, num_classes: int = 2) -> nn.Sequential:
    r"""Bias-free strided convolutions, then global max pooling (Net1) or an MLP head (Net2).

    Explanation
    -----------
    Layers ``conv1`` ... ``convL`` (``kernel_size``, the given strides, no bias, the
    amount and mode of :func:`padding_spec`), each followed by ``relu{l}``.  Then:

    * ``global_pool=True`` ("Net1"): ``pool`` (``AdaptiveMaxPool2d(1)``), ``flatten`` and
      ``out`` (``Linear(C_L, num_classes)``).  The maximum over all positions forgets
      *where* a feature fired.
    * ``global_pool=False`` ("Net2"): ``flatten`` of the whole last map, ``fc``
      (``Linear(C_L h w, hidden)``), ``relu_fc`` and ``out``.  Each position has its own
      weights, so the head can read absolute position.

    Without biases and with :math:`\mathrm{ReLU}(0) = 0`, a black (all-zero) region stays
    zero in every layer, so zero padding looks exactly like more background.

    Parameters
    ----------
    padding : str
        One of :data:`PADDINGS`, used by every convolution.
    global_pool : bool
        Net1 (True) or Net2 (False).
    in_channels : int
    channels : sequence of int
        Output channels of each convolution.
    strides : sequence of int
        Stride of each convolution (same length as ``channels``).
    kernel_size : int
    size : int
        Input side; needed by Net2 to size ``fc`` (and checked for Net1 too).
    hidden : int
        Width of ``fc`` (Net2 only).
    num_classes : int

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        For an unknown padding, mismatched ``channels`` and ``strides``, non-positive sizes,
        or an input too small for the stack.
    TypeError
        If ``global_pool`` is not a bool.

    Examples
    --------
    >>> import torch
    >>> net = strided_conv_net("valid", channels=(4, 4, 8, 8))
    >>> net(torch.zeros(5, 3, 32, 32)).shape
    torch.Size([5, 2])
    >>> [name for name, _ in net.named_children()][-4:]
    ['relu4', 'pool', 'flatten', 'out']
    >>> net2 = strided_conv_net("zeros2", global_pool=False, channels=(4, 4, 8, 8), hidden=16)
    >>> net2.fc                                      # 8 channels x 6 x 6 positions
    Linear(in_features=288, out_features=16, bias=True)
    >>> net.conv1.bias is None, net2.conv2.padding, net2.conv2.padding_mode
    (True, (2, 2), 'zeros')

    See Also
    --------
    padding_spec, feature_map_sizes
    dlmath.data.red_green_boxes : the data they are trained on.

    References
    ----------
    Kayhan & van Gemert (CVPR 2020), experiment 2.  Chapter: :ref:`ch-padding-position`.
    """
    check_bool("global_pool", global_pool)
    amount, mode = padding_spec(padding)
    channels = int_sequence("channels", channels)
    strides = int_sequence("strides", strides)
    if len(channels) != len(strides):
        raise ValueError(f"channels and strides must have the same length, got "
                         f"{len(channels)} and {len(strides)}")
    for name, value in (("in_channels", in_channels), ("kernel_size", kernel_size),
                        ("hidden", hidden), ("num_classes", num_classes)):
        check_int(name, value, 1)
    side = feature_map_sizes(size, padding, strides, kernel_size)[-1]
    c_in = in_channels
    for i, c in enumerate(channels, start=1):
        check_entries(f"conv{i} of in_channels / channels {c_in} -> {c} and kernel_size "
                      f"{kernel_size}", c_in * c * kernel_size**2)
        c_in = c
    if global_pool:
        check_entries(f"out of channels[-1] = {c_in} -> num_classes = {num_classes}",
                      c_in * num_classes)
    else:
        check_entries(f"fc of {c_in * side * side} inputs (channels[-1], size) -> hidden = "
                      f"{hidden}", c_in * side * side * hidden)
        check_entries(f"out of hidden = {hidden} -> num_classes = {num_classes}",
                      hidden * num_classes)
    layers: list[tuple[str, nn.Module]] = []
    c_in = in_channels
    for i, (c, s) in enumerate(zip(channels, strides), start=1):
        layers.append((f"conv{i}", nn.Conv2d(c_in, c, kernel_size, stride=s, padding=amount,
                                             padding_mode=mode, bias=False)))
        layers.append((f"relu{i}", nn.ReLU()))
        c_in = c
    if global_pool:
        layers += [("pool", nn.AdaptiveMaxPool2d(1)), ("flatten", nn.Flatten()),
                   ("out", nn.Linear(c_in, num_classes))]
    else:
        layers += [("flatten", nn.Flatten()), ("fc", nn.Linear(c_in * side * side, hidden)),
                   ("relu_fc", nn.ReLU()), ("out", nn.Linear(hidden, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def _source_index(i: int, n: int, mode: str) -> int | None:
    """Which input index the padded position ``i`` (may be < 0 or >= n) holds."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "circular":
        return i % n
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    # reflect: mirror about the edge pixel, which is not repeated
    return -i if i < 0 else 2 * (n - 1) - i


def conv_border_term_sym(height: int, width: int, row: int, col: int, padding: str,
                         kernel_size: int = 3, stride: int = 1
                         ) -> tuple[sp.Expr, sp.Expr]:
    r"""One output of a padded convolution, split into the interior and the border term.

    Explanation
    -----------
    Output :math:`(i, j)` reads input :math:`(is + a - p,\, js + b - p)` with tap
    :math:`w_{a,b}`.  Taps that land inside the image form the *interior* sum; the others
    land in the padding and form the *border term*, whose value is what the padding
    puts there: 0 (zeros), the pixel on the opposite side (circular), the mirror pixel
    :math:`x_{-r}` or :math:`x_{2(n-1)-r}` (reflect), or the nearest edge pixel
    (replicate).  Symbols: image pixels ``x_{r,c}`` and kernel taps ``w_{a,b}``, both
    0-based.

    Parameters
    ----------
    height, width : int
        Image size.
    row, col : int
        Output position (0-based).
    padding : str
        One of :data:`PADDINGS`.
    kernel_size, stride : int

    Returns
    -------
    (sympy.Expr, sympy.Expr)
        The interior sum and the border term; their sum is the output.

    Raises
    ------
    ValueError
        For an unknown padding, an output position outside the output map, or reflect
        padding as wide as the image.

    Examples
    --------
    >>> inner, border = conv_border_term_sym(4, 4, 0, 0, "zeros1")
    >>> inner
    w_{1,1}*x_{0,0} + w_{1,2}*x_{0,1} + w_{2,1}*x_{1,0} + w_{2,2}*x_{1,1}
    >>> border
    0
    >>> conv_border_term_sym(4, 4, 0, 0, "replicate1")[1]
    w_{0,0}*x_{0,0} + w_{0,1}*x_{0,0} + w_{0,2}*x_{0,1} + w_{1,0}*x_{0,0} + w_{2,0}*x_{1,0}
    >>> conv_border_term_sym(4, 4, 9, 0, "zeros1")
    Traceback (most recent call last):
    ...
    ValueError: output position (row, col) = (9, 0) is outside the 4x4 output map

    See Also
    --------
    strided_conv_net : where the padding modes are used.
    dlmath.toeplitz : the whole convolution as a matrix.

    References
    ----------
    Chapter: :ref:`ch-padding-position`.
    """
    amount, mode = padding_spec(padding)
    for name, value in (("height", height), ("width", width), ("kernel_size", kernel_size),
                        ("stride", stride)):
        check_int(name, value, 1)
    if mode == "reflect" and amount >= min(height, width):
        raise ValueError(f"reflect padding {amount} needs an image larger than {amount} on "
                         f"both sides, got {height}x{width}")
    out_h = conv_output_size(height, kernel_size, stride, amount)
    out_w = conv_output_size(width, kernel_size, stride, amount)
    check_int("row", row)
    check_int("col", col)
    if not (0 <= row < out_h and 0 <= col < out_w):
        raise ValueError(f"output position (row, col) = ({row}, {col}) is outside the "
                         f"{out_h}x{out_w} output map")

    class _Pixels:              # the symbols x_{r,c} that are read, not the whole image
        def __getitem__(self, rc: tuple[int, int]) -> sp.Symbol:
            return sp.Symbol(f"x_{{{rc[0]},{rc[1]}}}")

    x = _Pixels()
    w = sp.Matrix(kernel_size, kernel_size, lambda a, b: sp.Symbol(f"w_{{{a},{b}}}"))
    inner, border = sp.Integer(0), sp.Integer(0)
    for a in range(kernel_size):
        for b in range(kernel_size):
            r, c = row * stride + a - amount, col * stride + b - amount
            src_r, src_c = _source_index(r, height, mode), _source_index(c, width, mode)
            if 0 <= r < height and 0 <= c < width:
                inner += w[a, b] * x[r, c]
            elif src_r is not None and src_c is not None:
                border += w[a, b] * x[src_r, src_c]
    return inner, border


