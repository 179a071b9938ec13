r"""Convolution arithmetic: output sizes, padding, receptive fields.

Scope: the size rules PyTorch applies for ``Conv1d/2d/3d``, ``MaxPool``/``AvgPool`` (with
``ceil_mode``) and ``ConvTranspose``, written once so that they accept Python ints (exact
integer arithmetic with ``//``) or SymPy expressions (symbolic sizes, with ``floor`` and
``ceiling`` where they belong); the paddings that keep a size ("same") or divide it by the
stride ("halving"); the receptive field of a stack of layers by the closed form of Araujo,
Norris & Sim; and two torch-backed oracles (the size torch produces, the gradient of one
output unit with respect to the input).  Every rule acts on one spatial axis: a 2-D or 3-D
layer applies it to each axis with that axis's kernel, stride, padding and dilation.
Chapter: :ref:`ch-conv-arithmetic`.

Notation: input length :math:`n`, kernel :math:`k`, stride :math:`s`, padding :math:`p` on
both sides, dilation :math:`d`, and the *span* :math:`K = d(k-1)+1` of a dilated kernel.

References: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016);
Araujo, Norris & Sim, "Computing receptive fields of convolutional neural networks",
Distill (2019); the shape formulas and argument checks of ``torch.nn.Conv2d``,
``MaxPool2d``, ``AvgPool2d`` and ``ConvTranspose2d`` (PyTorch 2.x).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import sympy as sp

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "conv_output_size",
    "conv_output_size_sym",
    "pool_output_size",
    "conv_transpose_output_size",
    "trailing_unread_inputs",
    "same_padding",
    "halving_padding",
    "ReceptiveField",
    "receptive_field",
    "receptive_field_per_layer",
    "torch_output_size",
    "unit_input_gradient",
]

Size = Union[int, sp.Expr]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _arg(name: str, value: object, minimum: int) -> Size:
    """Validate an int-or-symbol argument and return it as an int or a SymPy expression.

    Integers of any integral type (``numpy.int64``, ...) become Python ints.  SymPy
    expressions are kept; they are rejected only when they are provably not integers or
    provably below ``minimum``.
    """
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise TypeError(f"{name} must be an int or a sympy expression, got {value!r}")
        if value.is_integer is False:
            raise ValueError(f"{name} must be an integer, got {value}")
        if (value - minimum).is_negative:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or a sympy expression, "
                        f"got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what} (>= {minimum}), got {value}")
    return value


def _all_int(*values: object) -> bool:
    return all(_is_int(v) for v in values)


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def conv_output_size(size: Size, kernel: Size, stride: Size = 1, padding: Size = 0,
                     dilation: Size = 1, ceil_mode: bool = False) -> Size:
    r"""Output length of a convolution or pooling window along one axis.

    Explanation
    -----------
    A window of ``kernel`` taps spaced ``dilation`` apart spans :math:`K = d(k-1)+1`
    input positions.  On an input of length :math:`n` padded by :math:`p` on both sides,
    it can start at :math:`0, s, 2s, \dots` as long as it fits, hence

    .. math:: n' = \left\lfloor \frac{n + 2p - K}{s} \right\rfloor + 1 .

    With ``ceil_mode=True`` (pooling only) the floor becomes a ceiling, so a last, partial
    window is kept (even a first one when the kernel is wider than the padded input by
    less than the stride), except that a window may not *start* in the right-hand
    padding: if :math:`(n'-1)s \ge n + p` the last window is dropped.  This is PyTorch's
    rule.  Pooling layers also require :math:`p \le k/2`; :func:`pool_output_size`
    checks that, this function does not (convolutions accept any padding).

    Parameters
    ----------
    size, kernel : int or sympy.Expr
        Input length :math:`n \ge 1` and kernel size :math:`k \ge 1`.
    stride : int or sympy.Expr
        :math:`s \ge 1`.
    padding : int or sympy.Expr
        :math:`p \ge 0`, added on both sides.
    dilation : int or sympy.Expr
        :math:`d \ge 1`.
    ceil_mode : bool
        Use the ceiling rule of pooling layers.

    Returns
    -------
    int or sympy.Expr
        An int when every argument is an int; otherwise a SymPy expression.

    Raises
    ------
    ValueError
        If no window fits (the span is larger than the padded input; in ceil mode, larger
        by the stride or more), or an argument is out of range (non-positive size,
        kernel, stride or dilation; negative padding; a non-integer SymPy number).
    TypeError
        If an argument is neither an integer nor a SymPy expression.

    Examples
    --------
    >>> conv_output_size(32, 5, padding=2)        # "same" for a 5x5 kernel
    32
    >>> conv_output_size(7, 3, stride=2)           # floor((7 - 3) / 2) + 1
    3
    >>> conv_output_size(6, 3, stride=2)           # division not exact: the floor drops a column
    2
    >>> conv_output_size(6, 3, stride=2, ceil_mode=True)
    3
    >>> import sympy as sp
    >>> H = sp.Symbol("H", integer=True, positive=True)
    >>> conv_output_size(H, 2, stride=2)
    floor(H/2)
    >>> conv_output_size(3, 5)
    Traceback (most recent call last):
    ...
    ValueError: kernel 5 (dilation 1, span 5) is larger than padded input 3 (size 3 + 2*padding 0)

    See Also
    --------
    conv_output_size_sym : the same formula with every argument a symbol.
    pool_output_size : the same rule with the checks of pooling layers.
    conv_transpose_output_size : the size rule of the transposed convolution.

    References
    ----------
    Dumoulin & Visin (2016), sections 2, 3 and 5.1.  Chapter: :ref:`ch-conv-arithmetic`.
    """
    size = _arg("size", size, 1)
    kernel = _arg("kernel", kernel, 1)
    stride = _arg("stride", stride, 1)
    padding = _arg("padding", padding, 0)
    dilation = _arg("dilation", dilation, 1)
    ceil_mode = _bool("ceil_mode", ceil_mode)

    span = dilation * (kernel - 1) + 1       # input positions one window covers
    room = size + 2 * padding - span         # how far the window can slide
    if _all_int(size, kernel, stride, padding, dilation):
        if room < 0 and not (ceil_mode and room > -stride):
            raise ValueError(
                f"kernel {kernel} (dilation {dilation}, span {span}) is larger than padded input "
                f"{size + 2 * padding} (size {size} + 2*padding {padding})"
            )
        if not ceil_mode:
            return room // stride + 1
        out = -(-room // stride) + 1                 # ceiling division
        if (out - 1) * stride >= size + padding:     # last window would start in the padding
            out -= 1
        return out

    room = sp.sympify(room)
    limit = 0 if not ceil_mode else 1 - stride     # smallest room that leaves one window
    if (room - limit).is_negative:
        raise ValueError(f"kernel span {span} is larger than padded input {size + 2 * padding}")
    if not ceil_mode:
        return sp.floor(room / stride) + 1
    out = sp.ceiling(room / stride) + 1
    return sp.Piecewise((out - 1, (out - 1) * stride >= size + padding), (out, True))


def conv_output_size_sym(ceil_mode: bool = False) -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """The output-size formula with every argument a positive integer symbol.

    Explanation
    -----------
    Calls :func:`conv_output_size` with the symbols :math:`n, k, s, d` (positive integers)
    and :math:`p` (non-negative integer), so that special cases can be obtained with
    ``subs`` and simplified.

    Parameters
    ----------
    ceil_mode : bool
        The ceiling rule of pooling layers instead of the floor.

    Returns
    -------
    (expr, (n, k, s, p, d))
        The expression and the symbols it is written in.

    Examples
    --------
    >>> expr, (n, k, s, p, d) = conv_output_size_sym()
    >>> expr
    floor((-d*(k - 1) + n + 2*p - 1)/s) + 1
    >>> expr.subs({n: 32, k: 5, s: 1, p: 2, d: 1})
    32
    >>> expr.subs({k: 1, s: 1, p: 0})             # a 1x1 convolution keeps the size
    n

    See Also
    --------
    conv_output_size : numeric or partly symbolic version.

    References
    ----------
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    n, k, s, d = sp.symbols("n k s d", integer=True, positive=True)
    p = sp.Symbol("p", integer=True, nonnegative=True)
    return conv_output_size(n, k, s, p, d, ceil_mode=ceil_mode), (n, k, s, p, d)


def pool_output_size(size: Size, kernel: Size, stride: Size | None = None, padding: Size = 0,
                     dilation: Size = 1, ceil_mode: bool = False) -> Size:
    r"""Output length of a max- or average-pooling layer along one axis.

    Explanation
    -----------
    The size rule is that of :func:`conv_output_size` (floor, or ceiling with
    ``ceil_mode``), with two differences that PyTorch's pooling layers make: the stride
    defaults to the kernel size, and the padding may be at most half the kernel,
    :math:`2p \le k` (the kernel before dilation), so that no window lies mostly in the
    padding.  ``AvgPool``'s ``count_include_pad`` changes the values, not the size.

    Parameters
    ----------
    size, kernel : int or sympy.Expr
        Input length :math:`n \ge 1` and window size :math:`k \ge 1`.
    stride : int or sympy.Expr, optional
        :math:`s \ge 1`; ``None`` (default) means :math:`s = k`, as in PyTorch.
    padding : int or sympy.Expr
        :math:`0 \le p \le k/2`.
    dilation : int or sympy.Expr
        :math:`d \ge 1` (``MaxPool`` only; ``AvgPool`` has none).
    ceil_mode : bool
        Keep a last, partial window.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        If ``2 * padding > kernel``, or for the reasons :func:`conv_output_size` gives.
    TypeError
        If an argument is neither an integer nor a SymPy expression.

    Examples
    --------
    >>> pool_output_size(32, 2)                     # 2x2 max pooling halves 32
    16
    >>> pool_output_size(7, 2), pool_output_size(7, 2, ceil_mode=True)
    (3, 4)
    >>> pool_output_size(2, 3, stride=2, ceil_mode=True)   # a window wider than the input
    1
    >>> pool_output_size(8, 3, padding=2)
    Traceback (most recent call last):
    ...
    ValueError: padding 2 is more than half of kernel 3: pooling needs 2*padding <= kernel

    See Also
    --------
    conv_output_size : the rule without the pooling checks.

    References
    ----------
    The argument checks of ``torch.nn.MaxPool2d`` and ``AvgPool2d``.
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    kernel = _arg("kernel", kernel, 1)
    stride = kernel if stride is None else _arg("stride", stride, 1)
    padding = _arg("padding", padding, 0)
    excess = sp.sympify(2 * padding - kernel)
    if excess.is_positive:
        raise ValueError(f"padding {padding} is more than half of kernel {kernel}: "
                         f"pooling needs 2*padding <= kernel")
    return conv_output_size(size, kernel, stride, padding, dilation, ceil_mode=ceil_mode)


def conv_transpose_output_size(size: Size, kernel: Size, stride: Size = 1, padding: Size = 0,
                               output_padding: Size = 0, dilation: Size = 1) -> Size:
    r"""Output length of a transposed convolution along one axis.

    Explanation
    -----------
    The transposed convolution is the adjoint (the gradient with respect to the input)
    of the convolution with the same arguments.  That convolution maps every length
    :math:`m = (n-1)s - 2p + K + r` with :math:`0 \le r < s` to :math:`n`, so the
    transpose must be told which one to produce: ``output_padding`` is :math:`r`,

    .. math:: m = (n-1)s - 2p + d(k-1) + r + 1 .

    PyTorch accepts :math:`r < \max(s, d)`; for :math:`s \le r < d` the result is not a
    length that the forward convolution maps back to :math:`n`.

    A padding so large that :math:`m < 1` is an error.  (PyTorch's 2-D and 3-D layers
    return an empty tensor when :math:`m = 0` exactly, while its 1-D layer raises; this
    function raises in both cases.)

    Parameters
    ----------
    size, kernel : int or sympy.Expr
        Input length :math:`n \ge 1` and kernel size :math:`k \ge 1`.
    stride, dilation : int or sympy.Expr
        :math:`s \ge 1`, :math:`d \ge 1`.
    padding : int or sympy.Expr
        :math:`p \ge 0`: removes :math:`p` positions from each end of the output.
    output_padding : int or sympy.Expr
        :math:`0 \le r < \max(s, d)`, added at one end.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        If ``output_padding >= max(stride, dilation)``, if the output would be empty or
        negative (padding too large), or an argument is out of range.
    TypeError
        If an argument is neither an integer nor a SymPy expression.

    Examples
    --------
    >>> conv_transpose_output_size(16, 2, stride=2)                # undoes 2x2 pooling-like stride
    32
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1)      # 3x3, stride 2 maps 5 and 6 to 3
    5
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    >>> conv_transpose_output_size(3, 3, stride=2, output_padding=2)
    Traceback (most recent call last):
    ...
    ValueError: output_padding 2 must be smaller than max(stride 2, dilation 1)

    See Also
    --------
    conv_output_size : the forward rule this one inverts.

    References
    ----------
    Dumoulin & Visin (2016), section 4; ``torch.nn.ConvTranspose2d``.
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    size = _arg("size", size, 1)
    kernel = _arg("kernel", kernel, 1)
    stride = _arg("stride", stride, 1)
    padding = _arg("padding", padding, 0)
    output_padding = _arg("output_padding", output_padding, 0)
    dilation = _arg("dilation", dilation, 1)
    if _all_int(stride, dilation, output_padding):
        if output_padding >= max(stride, dilation):
            raise ValueError(f"output_padding {output_padding} must be smaller than "
                             f"max(stride {stride}, dilation {dilation})")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if _is_int(out) and out < 1:
        raise ValueError(f"padding {padding} is too large: the output length would be {out}")
    if isinstance(out, sp.Basic) and (out - 1).is_negative:
        raise ValueError(f"padding {padding} is too large: the output length would be {out}")
    return out


def trailing_unread_inputs(size: Size, kernel: Size, stride: Size = 1, padding: Size = 0,
                           dilation: Size = 1) -> Size:
    r"""Number of input positions at the end that no window of a convolution reads.

    Explanation
    -----------
    With the floor rule the last window ends at input index
    :math:`(n'-1)s - p + K - 1 = n + p - 1 - ((n + 2p - K) \bmod s)`, so the
    positions after it, :math:`\max(0, ((n + 2p - K) \bmod s) - p)` of them, never
    influence the output: they are silently dropped.  Nothing is dropped when the
    division is exact.  (Positions skipped *between* windows, when the stride exceeds
    the span, or between the taps of a dilated kernel, are not counted.)

    Parameters
    ----------
    size, kernel, stride, padding, dilation : int or sympy.Expr
        As in :func:`conv_output_size` (floor rule).

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_output_size`.

    Examples
    --------
    >>> trailing_unread_inputs(8, 3, stride=2)        # windows at 0, 2, 4 end at index 6
    1
    >>> trailing_unread_inputs(8, 3, stride=2, padding=1)
    0
    >>> trailing_unread_inputs(224, 7, stride=4)       # (224 - 7) mod 4 = 1
    1

    See Also
    --------
    conv_output_size : where the floor comes from.

    References
    ----------
    Dumoulin & Visin (2016), section 2.  Chapter: :ref:`ch-conv-arithmetic`.
    """
    conv_output_size(size, kernel, stride, padding, dilation)   # validates, raises if no window
    room = size + 2 * padding - (dilation * (kernel - 1) + 1)
    if _all_int(size, kernel, stride, padding, dilation):
        return max(0, room % stride - padding)
    return sp.Max(0, sp.Mod(room, stride) - padding)


def same_padding(kernel: Size, dilation: Size = 1,
                 asymmetric: bool = False) -> Size | tuple[Size, Size]:
    r"""The padding with which a stride-1 convolution keeps the input size.

    Explanation
    -----------
    With stride 1, :math:`n' = n + 2p - K + 1 = n` exactly when :math:`2p = K - 1 =
    d(k-1)`.  A symmetric padding exists only when the span :math:`K` is odd (an odd
    kernel, or any kernel with an even dilation); it is :math:`p = d(k-1)/2`.

    For an even span no symmetric padding keeps the size.  By default this is an error;
    with ``asymmetric=True`` the function returns the pair ``(left, right)`` with
    ``left = (K-1) // 2`` and ``right = K - 1 - left``, the extra position on the right,
    which is what ``torch.nn.Conv2d(..., padding="same")`` does.  With a stride above 1
    no constant padding keeps every size (the padding would have to grow with
    :math:`n`): see :func:`halving_padding` for the padding that divides by the stride.

    Parameters
    ----------
    kernel : int or sympy.Expr
        :math:`k \ge 1`.
    dilation : int or sympy.Expr
        :math:`d \ge 1`.
    asymmetric : bool
        Return ``(left, right)`` (for every span) instead of one symmetric padding.

    Returns
    -------
    int or sympy.Expr, or (left, right)
        For symbolic arguments the parity cannot be checked: the result is
        :math:`d(k-1)/2`, valid when it is an integer.

    Raises
    ------
    ValueError
        If the span is even and ``asymmetric`` is false, or an argument is out of range.
    TypeError
        If an argument is neither an integer nor a SymPy expression.

    Examples
    --------
    >>> same_padding(3), same_padding(5), same_padding(3, dilation=2)
    (1, 2, 2)
    >>> same_padding(4, asymmetric=True)
    (1, 2)
    >>> same_padding(4)
    Traceback (most recent call last):
    ...
    ValueError: kernel 4 with dilation 1 spans 4 positions, an even number: no symmetric ...

    See Also
    --------
    halving_padding : the padding that divides the size by the stride.
    conv_output_size : the size rule both come from.

    References
    ----------
    Dumoulin & Visin (2016), section 2 ("half padding").  Chapter: :ref:`ch-conv-arithmetic`.
    """
    kernel = _arg("kernel", kernel, 1)
    dilation = _arg("dilation", dilation, 1)
    asymmetric = _bool("asymmetric", asymmetric)
    total = dilation * (kernel - 1)                  # K - 1 padded positions in all
    if _all_int(kernel, dilation):
        left = total // 2
        if asymmetric:
            return left, total - left
        if total % 2:
            raise ValueError(
                f"kernel {kernel} with dilation {dilation} spans {total + 1} positions, an even "
                f"number: no symmetric padding keeps the size; same_padding({kernel}, {dilation}, "
                f"asymmetric=True) gives the pair (left, right) = ({left}, {total - left})")
        return left
    if asymmetric:
        left = sp.floor(total / 2)
        return left, total - left
    return total / 2


def halving_padding(kernel: Size, stride: Size = 2, dilation: Size = 1) -> Size:
    r"""The padding with which a layer of stride ``s`` divides the size by ``s``.

    Explanation
    -----------
    At the default stride 2 this is the padding that halves every even size.  For
    :math:`n` a multiple of :math:`s`, :math:`n' = n/s` holds exactly when
    :math:`n - s \le n + 2p - K < n`, that is :math:`K - s \le 2p \le K - 1`.  The
    largest such padding is

    .. math::
        p = \left\lfloor \frac{K-1}{2} \right\rfloor
          = \left\lfloor \frac{d(k-1)}{2} \right\rfloor,

    the one returned; for :math:`s = 2` it is the only one (``k=2, p=0``;
    ``k=3, p=1``; ``k=4, p=1``; ``k=5, p=2``...).  It does not depend on :math:`n`.

    Sizes that :math:`s` does not divide: with an odd span the output is
    :math:`\lceil n/s \rceil` for every :math:`n` (the "same then subsample" size), with
    an even span it is :math:`\lceil (n-1)/s \rceil`.  At :math:`s = 2` an odd
    :math:`n` gives :math:`(n+1)/2` (odd span) or :math:`(n-1)/2` (even span).  At
    :math:`s = 1` this is :func:`same_padding` and needs an odd span.

    Parameters
    ----------
    kernel : int or sympy.Expr
        :math:`k \ge 1`.
    stride : int or sympy.Expr
        :math:`s \ge 1` (default 2).
    dilation : int or sympy.Expr
        :math:`d \ge 1`.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        If ``stride`` is 1 and the span is even (no padding keeps the size), or an
        argument is out of range.
    TypeError
        If an argument is neither an integer nor a SymPy expression.

    Examples
    --------
    >>> [halving_padding(k) for k in (1, 2, 3, 4, 5, 7)]
    [0, 0, 1, 1, 2, 3]
    >>> n = 32; conv_output_size(n, 3, stride=2, padding=halving_padding(3))
    16
    >>> halving_padding(4, stride=1)
    Traceback (most recent call last):
    ...
    ValueError: with stride 1 no padding keeps the size for kernel 4 (dilation 1, span 4): ...

    See Also
    --------
    same_padding : the stride-1 case.
    conv_output_size : the size rule it is derived from.

    References
    ----------
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    kernel = _arg("kernel", kernel, 1)
    stride = _arg("stride", stride, 1)
    dilation = _arg("dilation", dilation, 1)
    total = dilation * (kernel - 1)                  # K - 1
    if _all_int(kernel, stride, dilation):
        if stride == 1 and total % 2:
            raise ValueError(f"with stride 1 no padding keeps the size for kernel {kernel} "
                             f"(dilation {dilation}, span {total + 1}): the span must be odd")
        return total // 2
    return sp.floor(total / 2)


@dataclass(frozen=True)
class ReceptiveField:
    r"""Receptive field of the units after ``depth`` layers, with respect to the input.

    Output unit :math:`u` of that layer sees the input positions
    :math:`uS - P, \dots, uS - P + r - 1` (indices below 0 or above :math:`n-1` lie in
    the padding).

    Attributes
    ----------
    depth : int
        Number of layers composed (1 for the first layer).
    size : int or sympy.Expr
        :math:`r`, the number of input positions one unit depends on (its span).
    stride : int or sympy.Expr
        :math:`S`, the distance in the input between neighbouring units' fields.
    padding : int or sympy.Expr
        :math:`P`, how far the field of unit 0 starts before input position 0.

    Examples
    --------
    >>> rf = ReceptiveField(depth=2, size=7, stride=2, padding=2)
    >>> rf.input_span(0), rf.input_span(3)
    ((-2, 4), (4, 10))
    """

    depth: int
    size: Size
    stride: Size
    padding: Size

    def input_span(self, unit: Size) -> tuple[Size, Size]:
        """First and last input index that output ``unit`` depends on."""
        start = unit * self.stride - self.padding
        return start, start + self.size - 1


def _layers(layers: object) -> list[tuple[Size, Size, Size, Size]]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of (kernel, stride, padding[, dilation]) "
                        f"tuples, got {type(layers).__name__}")
    if len(layers) == 0:
        raise ValueError("layers is empty: give at least one (kernel, stride, padding[, dilation])")
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence) \
                or len(layer) not in (3, 4):
            raise ValueError(f"layers[{i}] must be (kernel, stride, padding) or "
                             f"(kernel, stride, padding, dilation), got {layer!r}")
        k, s, p, *d = layer
        out.append((_arg(f"layers[{i}] kernel", k, 1), _arg(f"layers[{i}] stride", s, 1),
                    _arg(f"layers[{i}] padding", p, 0),
                    _arg(f"layers[{i}] dilation", d[0] if d else 1, 1)))
    return out


def receptive_field_per_layer(layers: Sequence[Sequence[Size]]) -> list[ReceptiveField]:
    r"""Receptive field size, effective stride and effective padding after every layer.

    Explanation
    -----------
    For layers :math:`l = 1, \dots, L` with span :math:`K_l = d_l(k_l-1)+1`, stride
    :math:`s_l` and padding :math:`p_l`, the closed form of Araujo, Norris & Sim (2019)
    gives, after layer :math:`L`,

    .. math::
        r_L = 1 + \sum_{l=1}^{L} (K_l - 1) \prod_{i=1}^{l-1} s_i, \qquad
        S_L = \prod_{l=1}^{L} s_l, \qquad
        P_L = \sum_{l=1}^{L} p_l \prod_{i=1}^{l-1} s_i .

    Each layer adds :math:`K_l - 1` of its own input positions to the field, and one of
    its input positions is :math:`S_{l-1}` input pixels apart.  Pooling layers count as
    layers with their window, stride and padding.  The sizes are those of the
    unclipped field: near a border part of it lies in the padding.

    Parameters
    ----------
    layers : sequence of (kernel, stride, padding) or (kernel, stride, padding, dilation)
        Ints or SymPy expressions, first layer first.

    Returns
    -------
    list of ReceptiveField
        One per layer, ``depth`` 1 to ``L``.

    Raises
    ------
    ValueError
        If ``layers`` is empty, a layer has not 3 or 4 entries, or an entry is out of
        range (the message names it, e.g. ``layers[1] stride``).
    TypeError
        If ``layers`` is not a sequence, or an entry is neither an integer nor a SymPy
        expression.

    Examples
    --------
    >>> for row in receptive_field_per_layer([(3, 1, 1), (3, 1, 1)]):   # two 3x3 convolutions
    ...     print(row)
    ReceptiveField(depth=1, size=3, stride=1, padding=1)
    ReceptiveField(depth=2, size=5, stride=1, padding=2)
    >>> [r.size for r in receptive_field_per_layer([(5, 1, 2), (2, 2, 0)] * 3)]
    [5, 6, 14, 16, 32, 36]

    See Also
    --------
    receptive_field : only the last row.
    unit_input_gradient : the gradient oracle the closed form is checked against.

    References
    ----------
    Araujo, Norris & Sim, Distill (2019): the closed forms for the size, stride and padding.
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    rows = []
    size, jump, offset = 1, 1, 0    # r, S and P of the input itself; jump = prod of strides so far
    for depth, (k, s, p, d) in enumerate(_layers(layers), start=1):
        # r_l = r_{l-1} + (K_l - 1) prod_{i<l} s_i ;  P_l = P_{l-1} + p_l prod_{i<l} s_i
        size = size + d * (k - 1) * jump
        offset = offset + p * jump
        jump = jump * s
        rows.append(ReceptiveField(depth, size, jump, offset))
    return rows


def receptive_field(layers: Sequence[Sequence[Size]]) -> ReceptiveField:
    r"""Receptive field of the last layer of a stack, with respect to the input.

    Explanation
    -----------
    The last row of :func:`receptive_field_per_layer`: the size
    :math:`r = 1 + \sum_l (K_l - 1)\prod_{i<l} s_i`, the effective stride
    :math:`S = \prod_l s_l` and the effective padding :math:`P = \sum_l p_l \prod_{i<l} s_i`.

    Parameters
    ----------
    layers : sequence of (kernel, stride, padding) or (kernel, stride, padding, dilation)

    Returns
    -------
    ReceptiveField

    Raises
    ------
    ValueError, TypeError
        As :func:`receptive_field_per_layer`.

    Examples
    --------
    >>> receptive_field([(3, 1, 1)] * 2).size == receptive_field([(5, 1, 2)]).size
    True
    >>> receptive_field([(3, 1, 2 ** i, 2 ** i) for i in range(4)])   # dilations 1, 2, 4, 8
    ReceptiveField(depth=4, size=31, stride=1, padding=15)
    >>> import sympy as sp
    >>> k1, k2, s1 = sp.symbols("k1 k2 s1", integer=True, positive=True)
    >>> sp.expand(receptive_field([(k1, s1, 0), (k2, 1, 0)]).size)
    k1 + k2*s1 - s1

    See Also
    --------
    receptive_field_per_layer : every layer.

    References
    ----------
    Araujo, Norris & Sim, Distill (2019).  Chapter: :ref:`ch-conv-arithmetic`.
    """
    return receptive_field_per_layer(layers)[-1]


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run tiny tensor ops on one thread, restoring the setting afterwards.

    Intra-op threads only add overhead on tensors of a few dozen entries, and on a busy
    shared CPU they can make each call a hundred times slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_TORCH_LAYERS = ("conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d",
                 "convtranspose1d", "convtranspose2d")


def _run_layer(layer, dims, x, w, kernel, stride, padding, dilation, ceil_mode,
               output_padding, count_include_pad):
    """Apply the functional form of ``layer`` (a name in ``_TORCH_LAYERS``) to ``x``."""
    import torch.nn.functional as F

    if layer in ("conv1d", "conv2d"):
        conv = F.conv1d if dims == 1 else F.conv2d
        return conv(x, w, None, stride, padding, dilation)
    if layer.startswith("convtranspose"):
        convt = F.conv_transpose1d if dims == 1 else F.conv_transpose2d
        return convt(x, w, None, stride, padding, output_padding, 1, dilation)
    if layer.startswith("maxpool"):
        pool = F.max_pool1d if dims == 1 else F.max_pool2d
        return pool(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    pool = F.avg_pool1d if dims == 1 else F.avg_pool2d
    return pool(x, kernel, stride, padding, ceil_mode=ceil_mode,
                count_include_pad=count_include_pad)


def torch_output_size(layer: str, size: int, kernel: int, stride: int | None = None,
                      padding: int = 0, dilation: int = 1, ceil_mode: bool = False,
                      output_padding: int = 0, count_include_pad: bool = True) -> int | None:
    r"""The output length PyTorch actually produces, or ``None`` if it rejects the arguments.

    Explanation
    -----------
    An oracle for the size rules: runs the functional form of ``layer`` on a zero input
    of length ``size`` (a ``size x size`` image for 2-D layers, with the same arguments on
    both axes) and returns the output length, or ``None`` when PyTorch raises.

    Parameters
    ----------
    layer : str
        One of ``"conv1d"``, ``"conv2d"``, ``"maxpool1d"``, ``"maxpool2d"``, ``"avgpool1d"``,
        ``"avgpool2d"``, ``"convtranspose1d"``, ``"convtranspose2d"``.
    size, kernel, padding, dilation : int
        ``dilation`` is ignored by average pooling, which has none.
    stride : int, optional
        ``None``: 1 for convolutions, the kernel size for pooling (PyTorch's defaults).
    ceil_mode : bool
        Pooling only.
    output_padding : int
        Transposed convolutions only.
    count_include_pad : bool
        Average pooling only (it changes the values, not the size).

    Returns
    -------
    int or None

    Raises
    ------
    ValueError
        If ``layer`` is not one of the names above, or ``size`` or ``kernel`` is not a
        positive integer (the input and the weights could not be built).

    Examples
    --------
    >>> torch_output_size("conv2d", 7, 3, stride=2)
    3
    >>> torch_output_size("maxpool2d", 7, 2, ceil_mode=True)
    4
    >>> torch_output_size("conv1d", 3, 5) is None               # kernel larger than input
    True

    See Also
    --------
    conv_output_size, pool_output_size, conv_transpose_output_size : the formulas.

    References
    ----------
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    import torch

    if layer not in _TORCH_LAYERS:
        raise ValueError(f"layer must be one of {_TORCH_LAYERS}, got {layer!r}")
    size, kernel = int(_arg("size", size, 1)), int(_arg("kernel", kernel, 1))
    dims = 2 if layer.endswith("2d") else 1
    pool = "pool" in layer
    if stride is None:
        stride = kernel if pool else 1
    x = torch.zeros((1, 1) + (size,) * dims)          # (B, C, *spatial)
    w = torch.zeros((1, 1) + (kernel,) * dims)        # (C_out, C_in, *kernel)
    with _one_torch_thread():
        try:
            y = _run_layer(layer, dims, x, w, kernel, stride, padding, dilation, ceil_mode,
                           output_padding, count_include_pad)
        except (RuntimeError, ValueError):
            return None
    return int(y.shape[-1])


def unit_input_gradient(layers: Sequence[Sequence[int]], size: int, unit: int | None = None,
                        weights: str = "ones", seed: int = 0) -> torch.Tensor:
    r"""Gradient of one output unit of a 1-D convolution stack with respect to the input.

    Explanation
    -----------
    Builds the stack of ``Conv1d`` layers (one channel, no bias, no nonlinearity) given
    by ``layers``, in float64, and returns :math:`\partial y_u / \partial x`.  With
    positive weights every path from input to output carries a positive product, so no
    contributions cancel and the non-zero entries are exactly the input positions that
    unit :math:`u` depends on: the measured receptive field.  (An average-pooling layer
    is a convolution with constant positive weights, so it is covered by a layer tuple.)
    With ``weights="ones"`` the entries count the paths: their profile is the
    "effective receptive field" (Luo et al., 2016).

    Parameters
    ----------
    layers : sequence of (kernel, stride, padding[, dilation]) ints
    size : int
        Input length.
    unit : int, optional
        Output index; default the middle unit of the output.
    weights : {"ones", "random"}
        All ones, or uniform in [0.5, 1.5) drawn from ``torch.Generator`` seeded by ``seed``.
    seed : int

    Returns
    -------
    torch.Tensor
        Shape ``(size,)``, float64, on the CPU.

    Raises
    ------
    ValueError
        If a layer's arguments are out of range or leave no output, ``unit`` is outside
        the output, or ``weights`` is unknown.

    Examples
    --------
    >>> g = unit_input_gradient([(3, 1, 0), (3, 1, 0)], size=9)
    >>> g.tolist()                      # two 3-tap box filters: a triangle over 5 inputs
    [0.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 0.0]

    See Also
    --------
    receptive_field : the closed form this gradient confirms.

    References
    ----------
    Luo, Li, Urtasun & Zemel (2016).  Chapter: :ref:`ch-conv-arithmetic`.
    """
    import torch
    import torch.nn.functional as F

    specs = _layers(layers)
    if weights not in ("ones", "random"):
        raise ValueError(f"weights must be 'ones' or 'random', got {weights!r}")
    n = _arg("size", size, 1)
    for k, s, p, d in specs:                         # validates every layer, raises if too small
        n = conv_output_size(n, k, s, p, d)
    if unit is None:
        unit = n // 2
    if not _is_int(unit) or not 0 <= unit < n:
        raise ValueError(f"unit must be an int in [0, {n - 1}], got {unit!r}")
    gen = torch.Generator().manual_seed(seed)
    with _one_torch_thread():
        x = torch.zeros(1, 1, size, dtype=torch.float64, requires_grad=True)   # (B, C, N)
        h = x
        for k, s, p, d in specs:
            if weights == "ones":
                w = torch.ones(1, 1, k, dtype=torch.float64)            # (C_out, C_in, k)
            else:
                w = 0.5 + torch.rand(1, 1, k, generator=gen, dtype=torch.float64)
            h = F.conv1d(h, w, None, s, p, d)
        (grad,) = torch.autograd.grad(h[0, 0, unit], x)
    return grad[0, 0]
