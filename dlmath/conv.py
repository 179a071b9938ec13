r"""Convolution arithmetic: output sizes, padding, receptive fields.

Scope: the size rules PyTorch applies for ``Conv1d/2d/3d``, ``MaxPool``/``AvgPool`` (with
``ceil_mode``) and ``ConvTranspose``, written once so that they accept Python ints (exact
integer arithmetic with ``//``) or SymPy expressions (symbolic sizes, with ``floor`` and
``ceiling`` where they belong); the paddings that keep a size ("same") or divide it by the
stride ("halving"); the receptive field of a stack of layers by the closed form of Araujo,
Norris & Sim; and two torch-backed oracles (the size torch produces, the gradient of one
output unit with respect to the input).  Every rule acts on one spatial axis: a 2-D or 3-D
layer applies it to each axis with that axis's kernel, stride, padding and dilation.  The
arguments are named and read as in the torch layers: ``kernel_size``, ``stride``,
``padding``, ``dilation``, each one value for every axis or a tuple with one per axis, and
``padding="same"``/``"valid"`` where ``Conv2d`` takes them; the receptive field also reads
a torch model directly.  Chapter: :ref:`ch-conv-arithmetic`.

Notation: input length :math:`n`, kernel :math:`k`, stride :math:`s`, padding :math:`p` on
both sides, dilation :math:`d`, and the *span* :math:`K = d(k-1)+1` of a dilated kernel.

References: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016);
Araujo, Norris & Sim, "Computing receptive fields of convolutional neural networks",
Distill (2019); the shape formulas and argument checks of ``torch.nn.Conv2d``,
``MaxPool2d``, ``AvgPool2d`` and ``ConvTranspose2d`` (PyTorch 2.x).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import sympy as sp

from dlmath._validate import (
    check_bool,
    check_choice,
    check_entries,
    check_int,
    check_seed,
    check_size,
    int_tuple,
    is_int,
    one_torch_thread,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

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
#: A size as torch takes one: the same for every spatial axis, or a tuple with one per axis.
Sizes = Union[Size, Sequence[Size]]


def _all_int(*values: object) -> bool:
    return all(is_int(v) for v in values)


def _n_axes(**values: object) -> int | None:
    """The number of axes if some argument is a tuple or list (one entry per axis), else None."""
    lengths = {name: len(v) for name, v in values.items() if isinstance(v, (tuple, list))}
    if not lengths:
        return None
    if len(set(lengths.values())) > 1 or 0 in lengths.values():
        given = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"per-axis arguments must have the same number of entries (>= 1): "
                         f"{given}")
    return next(iter(lengths.values()))


def _axis(value: Any, i: int) -> Any:
    """Entry ``i`` of a per-axis argument; a single value stands for every axis."""
    return value[i] if isinstance(value, (tuple, list)) else value


def _per_axis(fn: Callable, n: int, args: tuple, **flags: Any) -> tuple:
    """``fn`` applied to each axis of int-or-tuple arguments, as torch applies its rules."""
    return tuple(fn(*(_axis(a, i) for a in args), **flags) for i in range(n))


def _string_padding(padding: object, stride: Size) -> str | None:
    """``"same"`` or ``"valid"`` when ``padding`` is one of torch's string paddings, else None.

    As in ``torch.nn.Conv2d``, ``"same"`` is refused for a stride other than 1.
    """
    if not isinstance(padding, str):
        return None
    check_choice("padding", padding, ("same", "valid"))
    if padding == "same" and (sp.sympify(stride) - 1).is_nonzero:
        raise ValueError(f"padding='same' is not supported for strided convolutions (stride "
                         f"{stride}), as in torch: use same_padding or halving_padding")
    return padding


def conv_output_size(size: Sizes, kernel_size: Sizes, stride: Sizes = 1,
                     padding: Sizes | str = 0, dilation: Sizes = 1,
                     ceil_mode: bool = False) -> Size | tuple[Size, ...]:
    r"""Output length of a convolution or pooling window along each axis.

    Explanation
    -----------
    A window of ``kernel_size`` taps spaced ``dilation`` apart spans :math:`K = d(k-1)+1`
    input positions.  On an input of length :math:`n` padded by :math:`p` on both sides,
    it can start at :math:`0, s, 2s, \dots` as long as it fits, hence

    .. math:: n' = \left\lfloor \frac{n + 2p - K}{s} \right\rfloor + 1 .

    With ``ceil_mode=True`` (pooling only) the floor becomes a ceiling, so a last, partial
    window is kept (even a first one when the kernel is wider than the padded input by
    less than the stride), except that a window may not *start* in the right-hand
    padding: if :math:`(n'-1)s \ge n + p` the last window is dropped.  This is PyTorch's
    rule.  Pooling layers also require :math:`p \le k/2`; :func:`pool_output_size`
    checks that, this function does not (convolutions accept any padding).

    The arguments are those of ``torch.nn.Conv1d/2d/3d``: each is one value for every
    axis or a tuple with one value per axis (then the result is a tuple), and ``padding``
    may be ``"valid"`` (no padding) or ``"same"`` (stride 1 only: torch pads
    :math:`K - 1` positions in all, the odd one on the right, so :math:`n' = n`).

    Parameters
    ----------
    size, kernel_size : int, sympy.Expr or tuple of them
        Input length :math:`n \ge 1` and kernel size :math:`k \ge 1`.
    stride : int, sympy.Expr or tuple
        :math:`s \ge 1`.
    padding : int, sympy.Expr, tuple, "valid" or "same"
        :math:`p \ge 0`, added on both sides.
    dilation : int, sympy.Expr or tuple
        :math:`d \ge 1`.
    ceil_mode : bool
        Use the ceiling rule of pooling layers.

    Returns
    -------
    int or sympy.Expr, or a tuple of them
        An int when every argument is an int, otherwise a SymPy expression; a tuple (one
        per axis) when an argument is a tuple.

    Raises
    ------
    ValueError
        If no window fits (the span is larger than the padded input; in ceil mode, larger
        by the stride or more), an argument is out of range (non-positive size, kernel
        size, stride or dilation; negative padding; a non-integer SymPy number), the tuples
        differ in length, or ``padding="same"`` comes with a stride other than 1.
    TypeError
        If an argument is neither an integer nor a SymPy expression, or ``ceil_mode`` is
        not a bool.

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
    >>> conv_output_size((32, 24), (5, 3), stride=(1, 2))    # nn.Conv2d(..., (5, 3), (1, 2))
    (28, 11)
    >>> conv_output_size(10, 4, padding="same"), conv_output_size(10, 4, padding="valid")
    (10, 7)
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
    Dumoulin & Visin (2016), sections 2, 3 and 5.1; ``torch.nn.Conv2d``.
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    n_axes = _n_axes(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                     dilation=dilation)
    if n_axes is not None:
        return _per_axis(conv_output_size, n_axes, (size, kernel_size, stride, padding, dilation),
                         ceil_mode=ceil_mode)
    size = check_size("size", size, 1)
    kernel = check_size("kernel_size", kernel_size, 1)
    stride = check_size("stride", stride, 1)
    dilation = check_size("dilation", dilation, 1)
    ceil_mode = check_bool("ceil_mode", ceil_mode)
    mode = _string_padding(padding, stride)
    if mode == "same":          # torch pads K - 1 positions in all: n' = n + K - 1 - K + 1
        return size
    padding = 0 if mode == "valid" else check_size("padding", padding, 0)

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


def pool_output_size(size: Sizes, kernel_size: Sizes, stride: Sizes | None = None,
                     padding: Sizes = 0, dilation: Sizes = 1,
                     ceil_mode: bool = False) -> Size | tuple[Size, ...]:
    r"""Output length of a max- or average-pooling layer along each axis.

    Explanation
    -----------
    The size rule is that of :func:`conv_output_size` (floor, or ceiling with
    ``ceil_mode``), with two differences that PyTorch's pooling layers make: the stride
    defaults to the kernel size, and the padding may be at most half the kernel,
    :math:`2p \le k` (the kernel before dilation), so that no window lies mostly in the
    padding.  ``AvgPool``'s ``count_include_pad`` changes the values, not the size.
    As in ``torch.nn.MaxPool2d``, each argument is one value for every axis or a tuple
    with one per axis (then the result is a tuple); pooling takes no string padding.

    Parameters
    ----------
    size, kernel_size : int, sympy.Expr or tuple of them
        Input length :math:`n \ge 1` and window size :math:`k \ge 1`.
    stride : int, sympy.Expr or tuple, optional
        :math:`s \ge 1`; ``None`` (default) means :math:`s = k`, as in PyTorch.
    padding : int, sympy.Expr or tuple
        :math:`0 \le p \le k/2`.
    dilation : int, sympy.Expr or tuple
        :math:`d \ge 1` (``MaxPool`` only; ``AvgPool`` has none).
    ceil_mode : bool
        Keep a last, partial window.

    Returns
    -------
    int or sympy.Expr, or a tuple of them (one per axis)

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
    >>> pool_output_size((7, 8), 2, ceil_mode=True)          # nn.MaxPool2d(2, ceil_mode=True)
    (4, 4)
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
    n_axes = _n_axes(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                     dilation=dilation)
    if n_axes is not None:
        return _per_axis(pool_output_size, n_axes, (size, kernel_size, stride, padding, dilation),
                         ceil_mode=ceil_mode)
    kernel = check_size("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else check_size("stride", stride, 1)
    padding = check_size("padding", padding, 0)
    excess = sp.sympify(2 * padding - kernel)
    if excess.is_positive:
        raise ValueError(f"padding {padding} is more than half of kernel {kernel}: "
                         f"pooling needs 2*padding <= kernel")
    return conv_output_size(size, kernel, stride, padding, dilation, ceil_mode=ceil_mode)


def conv_transpose_output_size(size: Sizes, kernel_size: Sizes, stride: Sizes = 1,
                               padding: Sizes = 0, output_padding: Sizes = 0,
                               dilation: Sizes = 1) -> Size | tuple[Size, ...]:
    r"""Output length of a transposed convolution along each axis.

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
    function raises in both cases.)  The arguments are those of
    ``torch.nn.ConvTranspose1d/2d/3d``, in its order: each one value for every axis or a
    tuple with one per axis (then the result is a tuple).

    Parameters
    ----------
    size, kernel_size : int, sympy.Expr or tuple of them
        Input length :math:`n \ge 1` and kernel size :math:`k \ge 1`.
    stride, dilation : int, sympy.Expr or tuple
        :math:`s \ge 1`, :math:`d \ge 1`.
    padding : int, sympy.Expr or tuple
        :math:`p \ge 0`: removes :math:`p` positions from each end of the output.
    output_padding : int, sympy.Expr or tuple
        :math:`0 \le r < \max(s, d)`, added at one end.

    Returns
    -------
    int or sympy.Expr, or a tuple of them (one per axis)

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
    >>> conv_transpose_output_size((3, 4), 3, stride=2, padding=1, output_padding=(1, 0))
    (6, 7)
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
    n_axes = _n_axes(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                     output_padding=output_padding, dilation=dilation)
    if n_axes is not None:
        return _per_axis(conv_transpose_output_size, n_axes,
                         (size, kernel_size, stride, padding, output_padding, dilation))
    size = check_size("size", size, 1)
    kernel = check_size("kernel_size", kernel_size, 1)
    stride = check_size("stride", stride, 1)
    padding = check_size("padding", padding, 0)
    output_padding = check_size("output_padding", output_padding, 0)
    dilation = check_size("dilation", dilation, 1)
    if _all_int(stride, dilation, output_padding):
        if output_padding >= max(stride, dilation):
            raise ValueError(f"output_padding {output_padding} must be smaller than "
                             f"max(stride {stride}, dilation {dilation})")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if is_int(out) and out < 1:
        raise ValueError(f"padding {padding} is too large: the output length would be {out}")
    if isinstance(out, sp.Basic) and (out - 1).is_negative:
        raise ValueError(f"padding {padding} is too large: the output length would be {out}")
    return out


def trailing_unread_inputs(size: Sizes, kernel_size: Sizes, stride: Sizes = 1,
                           padding: Sizes | str = 0,
                           dilation: Sizes = 1) -> Size | tuple[Size, ...]:
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
    size, kernel_size, stride, padding, dilation : int, sympy.Expr or tuple of them
        As in :func:`conv_output_size` (floor rule), ``padding="same"``/``"valid"`` included.

    Returns
    -------
    int or sympy.Expr, or a tuple of them (one per axis)

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
    >>> trailing_unread_inputs((224, 225), 7, stride=4)
    (1, 2)

    See Also
    --------
    conv_output_size : where the floor comes from.

    References
    ----------
    Dumoulin & Visin (2016), section 2.  Chapter: :ref:`ch-conv-arithmetic`.
    """
    n_axes = _n_axes(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                     dilation=dilation)
    if n_axes is not None:
        return _per_axis(trailing_unread_inputs, n_axes,
                         (size, kernel_size, stride, padding, dilation))
    conv_output_size(size, kernel_size, stride, padding, dilation)  # validates; raises if no window
    if padding == "same":       # stride 1: every input position is read
        return 0
    padding = 0 if padding == "valid" else padding
    kernel = kernel_size
    room = size + 2 * padding - (dilation * (kernel - 1) + 1)
    if _all_int(size, kernel, stride, padding, dilation):
        return max(0, room % stride - padding)
    return sp.Max(0, sp.Mod(room, stride) - padding)


def same_padding(kernel_size: Sizes, dilation: Sizes = 1, asymmetric: bool = False) -> Any:
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
    A tuple ``kernel_size`` (or ``dilation``) gives one result per axis.

    Parameters
    ----------
    kernel_size : int, sympy.Expr or tuple of them
        :math:`k \ge 1`.
    dilation : int, sympy.Expr or tuple
        :math:`d \ge 1`.
    asymmetric : bool
        Return ``(left, right)`` (for every span) instead of one symmetric padding.

    Returns
    -------
    int or sympy.Expr, or (left, right); a tuple of them for per-axis arguments
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
    >>> same_padding((3, 5))                        # nn.Conv2d(..., (3, 5), padding=(1, 2))
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
    asymmetric = check_bool("asymmetric", asymmetric)
    n_axes = _n_axes(kernel_size=kernel_size, dilation=dilation)
    if n_axes is not None:
        return _per_axis(same_padding, n_axes, (kernel_size, dilation), asymmetric=asymmetric)
    kernel = check_size("kernel_size", kernel_size, 1)
    dilation = check_size("dilation", dilation, 1)
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


def halving_padding(kernel_size: Sizes, stride: Sizes = 2,
                    dilation: Sizes = 1) -> Size | tuple[Size, ...]:
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
    kernel_size : int, sympy.Expr or tuple of them
        :math:`k \ge 1`; a tuple (here or in the other arguments) gives one result per axis.
    stride : int, sympy.Expr or tuple
        :math:`s \ge 1` (default 2).
    dilation : int, sympy.Expr or tuple
        :math:`d \ge 1`.

    Returns
    -------
    int or sympy.Expr, or a tuple of them (one per axis)

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
    >>> halving_padding((3, 4), stride=(2, 1), dilation=(1, 2))
    (1, 3)
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
    n_axes = _n_axes(kernel_size=kernel_size, stride=stride, dilation=dilation)
    if n_axes is not None:
        return _per_axis(halving_padding, n_axes, (kernel_size, stride, dilation))
    kernel = check_size("kernel_size", kernel_size, 1)
    stride = check_size("stride", stride, 1)
    dilation = check_size("dilation", dilation, 1)
    total = dilation * (kernel - 1)                  # K - 1
    if _all_int(kernel, stride, dilation):
        if stride == 1 and total % 2:
            raise ValueError(f"with stride 1 no padding keeps the size for kernel {kernel} "
                             f"(dilation {dilation}, span {total + 1}): the span must be odd")
        return total // 2
    return sp.floor(total / 2)


@dataclass(frozen=True, repr=False)
class ReceptiveField:
    r"""Receptive field of the units after ``depth`` layers, with respect to the input.

    Output unit :math:`u` of that layer sees the input positions
    :math:`uS - P, \dots, uS - P + r - 1` (indices below 0 or above :math:`n-1` lie in
    the padding).  For a 2-D or 3-D network each of ``size``, ``stride`` and ``padding``
    is a tuple with one entry per spatial axis, as torch writes ``kernel_size``.

    Attributes
    ----------
    depth : int
        Number of layers composed (1 for the first layer); through branches, the most
        convolution and pooling layers on one path.
    size : int, sympy.Expr or tuple of them
        :math:`r`, the number of input positions one unit depends on (its span).
    stride : int, sympy.Expr or tuple of them
        :math:`S`, the distance in the input between neighbouring units' fields.
    padding : int, sympy.Expr or tuple of them
        :math:`P`, how far the field of unit 0 starts before input position 0.
    layer : str, optional
        The name of the layer in a model (``"features.3"``); ``None`` for a list of
        layer tuples.  Not compared.

    Examples
    --------
    >>> rf = ReceptiveField(depth=2, size=7, stride=2, padding=2)
    >>> rf.input_span(0), rf.input_span(3)
    ((-2, 4), (4, 10))
    >>> ReceptiveField(1, (3, 5), (1, 2), (1, 2)).input_span((0, 1))   # (rows, columns)
    ((-1, 1), (0, 4))
    """

    depth: int
    size: Any
    stride: Any
    padding: Any
    layer: str | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        named = "" if self.layer is None else f", layer={self.layer!r}"
        return (f"ReceptiveField(depth={self.depth}, size={self.size}, stride={self.stride}, "
                f"padding={self.padding}{named})")

    def input_span(self, unit: Any) -> Any:
        """First and last input index that output ``unit`` depends on (per axis for tuples)."""
        if isinstance(self.size, tuple):
            units = unit if isinstance(unit, (tuple, list)) else (unit,) * len(self.size)
            return tuple(ReceptiveField(self.depth, r, s, p).input_span(u)
                         for r, s, p, u in zip(self.size, self.stride, self.padding, units))
        start = unit * self.stride - self.padding
        return start, start + self.size - 1


_LAYER_TUPLE = "(kernel_size, stride, padding) or (kernel_size, stride, padding, dilation)"


def _layers(layers: object) -> list[tuple[Any, Any, Any, Any]]:
    """Validate a list of layer tuples; each entry an int, a SymPy expression or a tuple."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a torch module or a sequence of {_LAYER_TUPLE} "
                        f"tuples, got {type(layers).__name__}")
    if len(layers) == 0:
        raise ValueError(f"layers is empty: give at least one {_LAYER_TUPLE}")
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence) \
                or len(layer) not in (3, 4):
            raise ValueError(f"layers[{i}] must be {_LAYER_TUPLE}, got {layer!r}")
        k, s, p, *d = layer
        spec = (k, s, p, d[0] if d else 1)
        names = ("kernel_size", "stride", "padding", "dilation")
        n = _n_axes(**{f"layers[{i}] {name}": v for name, v in zip(names, spec)})
        checked = []
        for name, v, low in zip(names, spec, (1, 1, 0, 1)):
            if n is None:
                checked.append(check_size(f"layers[{i}] {name}", v, low))
            else:
                checked.append(tuple(check_size(f"layers[{i}] {name}[{a}]", _axis(v, a), low)
                                     for a in range(n)))
        out.append(tuple(checked))
    return out


def _compose(specs: Sequence[tuple]) -> list[tuple[Size, Size, Size]]:
    """(r, S, P) after each layer of a one-axis stack: the closed form, one step at a time."""
    rows = []
    size, jump, offset = 1, 1, 0    # r, S and P of the input itself; jump = prod of strides so far
    for k, s, p, d in specs:
        # r_l = r_{l-1} + (K_l - 1) prod_{i<l} s_i ;  P_l = P_{l-1} + p_l prod_{i<l} s_i
        size = size + d * (k - 1) * jump
        offset = offset + p * jump
        jump = jump * s
        rows.append((size, jump, offset))
    return rows


def receptive_field_per_layer(layers: Any, input_shape: Sequence[int] | None = None
                              ) -> list[ReceptiveField]:
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

    ``layers`` is a list of layer tuples, or a torch model.  A model's ``forward`` is
    recorded with ``torch.fx`` and every convolution and pooling layer (``Conv1d/2d/3d``,
    ``MaxPool``, ``AvgPool``, ``LPPool``, and their functional forms) gets a row, in the
    order of the forward pass, with its own kernel size, stride, padding
    (``padding="same"`` pads :math:`\lfloor (K-1)/2 \rfloor` before) and dilation along
    each axis.  Activations, normalisation and dropout keep the field; where two branches
    meet (a residual sum, a concatenation of channels) the field is the union of theirs.
    A layer that mixes all positions (``Linear``, ``Flatten``, global or adaptive pooling,
    upsampling, a transposed convolution, a reshape) ends the spatial fields: a
    convolution after it is an error.  When ``torch.fx`` cannot record the forward pass
    (data-dependent control flow), one forward pass on a zero input of ``input_shape``
    records the layers with hooks instead, and they must form a chain.

    Parameters
    ----------
    layers : sequence of (kernel_size, stride, padding[, dilation]), or torch.nn.Module
        Tuples of ints or SymPy expressions (or per-axis tuples of them), first layer
        first; or a model.
    input_shape : sequence of int, optional
        For a model only: the shape of its input, with or without the batch dimension,
        e.g. ``(3, 224, 224)`` or ``(8, 3, 224, 224)`` for a 2-D network.

    Returns
    -------
    list of ReceptiveField
        One per layer, ``depth`` 1 to ``L``.  For a model, each row names its ``layer``
        and holds one entry per spatial axis.

    Raises
    ------
    ValueError
        If ``layers`` is empty, a layer has not 3 or 4 entries, an entry is out of range
        (the message names it, e.g. ``layers[1] stride``), a model has no convolution or
        pooling layer, a convolution follows a layer that mixes all positions, branches
        with different strides meet, or ``input_shape`` does not fit the first layer.
    TypeError
        If ``layers`` is neither a model nor a sequence, an entry is neither an integer
        nor a SymPy expression, or ``input_shape`` is given with layer tuples.

    Examples
    --------
    >>> for row in receptive_field_per_layer([(3, 1, 1), (3, 1, 1)]):   # two 3x3 convolutions
    ...     print(row)
    ReceptiveField(depth=1, size=3, stride=1, padding=1)
    ReceptiveField(depth=2, size=5, stride=1, padding=2)
    >>> [r.size for r in receptive_field_per_layer([(5, 1, 2), (2, 2, 0)] * 3)]
    [5, 6, 14, 16, 32, 36]
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, (3, 5), padding="same"), nn.ReLU(),
    ...                     nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.Flatten())
    >>> for row in receptive_field_per_layer(net, (3, 32, 32)):
    ...     print(row)
    ReceptiveField(depth=1, size=(3, 5), stride=(1, 1), padding=(1, 2), layer='0')
    ReceptiveField(depth=2, size=(4, 6), stride=(2, 2), padding=(1, 2), layer='2')
    ReceptiveField(depth=3, size=(8, 10), stride=(2, 2), padding=(1, 2), layer='3')

    See Also
    --------
    receptive_field : only the last row.
    unit_input_gradient : the gradient oracle the closed form is checked against.

    References
    ----------
    Araujo, Norris & Sim, Distill (2019): the closed forms for the size, stride and padding.
    Chapter: :ref:`ch-conv-arithmetic`.
    """
    if _is_module(layers):
        return _module_fields(layers, input_shape)
    specs = _layers(layers)
    if input_shape is not None:
        raise TypeError("input_shape is for a torch model; a list of layer tuples needs none")
    n_axes = _n_axes(**{f"layers[{i}]": spec[0] for i, spec in enumerate(specs)})
    if n_axes is None:
        return [ReceptiveField(depth, *row) for depth, row in enumerate(_compose(specs), 1)]
    per_axis = [_compose([tuple(_axis(v, a) for v in spec) for spec in specs])
                for a in range(n_axes)]                          # (axes, layers, 3)
    return [ReceptiveField(depth, *(tuple(col) for col in zip(*rows)))
            for depth, rows in enumerate(zip(*per_axis), 1)]


def receptive_field(layers: Any, input_shape: Sequence[int] | None = None) -> ReceptiveField:
    r"""Receptive field of the last layer of a stack or model, with respect to the input.

    Explanation
    -----------
    The last row of :func:`receptive_field_per_layer`: the size
    :math:`r = 1 + \sum_l (K_l - 1)\prod_{i<l} s_i`, the effective stride
    :math:`S = \prod_l s_l` and the effective padding :math:`P = \sum_l p_l \prod_{i<l} s_i`.
    For a model, the field of the units of its last convolution or pooling layer (the
    layers that mix all positions, such as a classifier head, come after it).

    Parameters
    ----------
    layers : sequence of (kernel_size, stride, padding[, dilation]), or torch.nn.Module
    input_shape : sequence of int, optional
        For a model only, with or without the batch dimension.

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
    >>> from torch import nn
    >>> vgg_block = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
    ...                           nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    >>> receptive_field(vgg_block, (1, 3, 224, 224))
    ReceptiveField(depth=3, size=(6, 6), stride=(2, 2), padding=(2, 2), layer='4')

    See Also
    --------
    receptive_field_per_layer : every layer.

    References
    ----------
    Araujo, Norris & Sim, Distill (2019).  Chapter: :ref:`ch-conv-arithmetic`.
    """
    return receptive_field_per_layer(layers, input_shape)[-1]


# --- the receptive fields of a torch model ---------------------------------------------

def _is_module(x: object) -> bool:
    nn_mod = sys.modules.get("torch.nn")       # no torch import: a module implies torch is loaded
    return nn_mod is not None and isinstance(x, nn_mod.Module)


def _layer_dims(m: nn.Module) -> int:
    """The number of spatial axes of a torch layer class such as ``MaxPool2d``."""
    for cls in type(m).__mro__:
        found = re.search(r"(\d)d$", cls.__name__)
        if found and cls.__module__.startswith("torch.nn"):
            return int(found.group(1))
    raise ValueError(f"cannot tell the dimension of {type(m).__name__}")  # pragma: no cover


def _tuple(value: Any, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _window(m: nn.Module) -> tuple[tuple, tuple, tuple, tuple] | None:
    """(kernel_size, stride, left padding, dilation) per axis of a convolution or pooling layer."""
    from torch import nn

    if isinstance(m, nn.modules.conv._ConvNd) and not m.transposed:
        k, s, d = m.kernel_size, m.stride, m.dilation
        if m.padding == "same":     # torch puts floor((K-1)/2) before, the rest after
            return k, s, tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d)), d
        return k, s, (0,) * len(k) if m.padding == "valid" else tuple(m.padding), d
    pools = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
             nn.modules.pooling._LPPoolNd)
    if isinstance(m, pools):
        n = _layer_dims(m)
        k = _tuple(m.kernel_size, n)
        return (k, _tuple(m.stride or m.kernel_size, n), _tuple(getattr(m, "padding", 0), n),
                _tuple(getattr(m, "dilation", 1), n))
    return None


def _keeps_positions(m: nn.Module) -> bool:
    """Whether each output position of ``m`` depends on the same position of its input only."""
    from torch import nn

    if type(m).__module__ == "torch.nn.modules.activation":
        return not isinstance(m, nn.MultiheadAttention)
    return isinstance(m, (nn.Identity, nn.modules.dropout._DropoutNd,
                          nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                          nn.RMSNorm, nn.LocalResponseNorm))


@dataclass(frozen=True)
class _Mixed:
    """The value of a layer after which every unit depends on every input position."""

    layer: str
    kind: str


@dataclass(frozen=True)
class _Field:
    depth: int
    size: tuple
    stride: tuple
    padding: tuple

    def then(self, window: tuple, name: str) -> _Field:
        rows = [_compose([spec])[0] for spec in zip(*window)]        # each axis's own step
        return _Field(self.depth + 1,
                      tuple(r0 + (r - 1) * s0 for r0, s0, (r, _, _) in
                            zip(self.size, self.stride, rows)),
                      tuple(s0 * s for s0, (_, s, _) in zip(self.stride, rows)),
                      tuple(p0 + p * s0 for p0, s0, (_, _, p) in
                            zip(self.padding, self.stride, rows)))


def _union(values: list, where: str) -> _Field | _Mixed | None:
    """The field of a value computed position by position from ``values`` (a sum, a cat)."""
    fields = [v for v in values if isinstance(v, (_Field, _Mixed))]
    mixed = [v for v in fields if isinstance(v, _Mixed)]
    if not fields or mixed:
        return mixed[0] if mixed else None
    first = fields[0]
    if any(f.stride != first.stride for f in fields):
        raise ValueError(f"{where} combines values whose units are "
                         f"{' and '.join(str(f.stride) for f in fields)} input positions apart: "
                         f"their receptive fields do not line up")
    start = tuple(min(-f.padding[a] for f in fields) for a in range(len(first.size)))
    end = tuple(max(f.size[a] - 1 - f.padding[a] for f in fields)
                for a in range(len(first.size)))
    return _Field(max(f.depth for f in fields), tuple(e - s + 1 for s, e in zip(start, end)),
                  first.stride, tuple(-s for s in start))


def _read_input(field: Any, window: tuple, name: str, kind: str) -> _Field:
    if isinstance(field, _Mixed):
        raise ValueError(f"layer {name!r} ({kind}) reads the output of {field.layer!r} "
                         f"({field.kind}), after which every unit depends on every input "
                         f"position: it has no receptive field of the form (size, stride, "
                         f"padding)")
    if len(window[0]) != len(field.size):
        raise ValueError(f"layer {name!r} ({kind}) has {len(window[0])} spatial axes, the "
                         f"input of the model {len(field.size)}")
    return field.then(window, name)


_MIXING_OPS = {"flatten", "unflatten", "view", "reshape", "permute", "transpose", "matmul",
               "bmm", "linear", "mean", "sum", "amax", "amin", "max", "min", "std", "var",
               "norm", "interpolate", "upsample", "pad", "roll", "flip", "einsum",
               "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
               "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
               "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "unfold", "fold"}
_NOT_TENSORS = {"size", "dim", "numel", "getattr"}


def _call_args(node: Any, names: tuple, defaults: dict) -> dict:
    return {**defaults, **dict(zip(names, node.args)), **node.kwargs}


def _functional_window(node: Any, attrs: dict) -> tuple | None:
    """The window of a call of ``F.conv*d``, ``F.max_pool*d`` or ``F.avg_pool*d``."""
    name = getattr(node.target, "__name__", "")
    found = re.fullmatch(r"(conv|max_pool|avg_pool)([123])d", name)
    if node.op != "call_function" or not found:
        return None
    kind, n = found.group(1), int(found.group(2))
    if kind == "conv":
        a = _call_args(node, ("input", "weight", "bias", "stride", "padding", "dilation"),
                       {"stride": 1, "padding": 0, "dilation": 1})
        if a["weight"] not in attrs:
            raise ValueError(f"{name} in the forward pass has a weight computed at run time")
        k = tuple(attrs[a["weight"]].shape[2:])
    else:                                      # avg_pool has no dilation argument
        names = ("input", "kernel_size", "stride", "padding", "dilation")
        a = _call_args(node, names[:5 if kind == "max_pool" else 4],
                       {"stride": None, "padding": 0, "dilation": 1})
        k = _tuple(a["kernel_size"], n)
        a["stride"] = a["stride"] or k
    s, d = _tuple(a["stride"], n), _tuple(a["dilation"], n)
    p = a["padding"]
    if p == "same":
        p = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
    p = _tuple(0 if p == "valid" else p, n)
    if not all(is_int(v) for v in (*k, *s, *p, *d)):
        raise ValueError(f"{name} in the forward pass has arguments computed at run time")
    return k, s, p, d


class _Untraceable(Exception):
    """torch.fx could not record the forward pass."""


def _attr(model: nn.Module, target: str) -> Any:
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _node_window(model: nn.Module, node: Any, attrs: dict) -> tuple | None:
    if node.op == "call_module":
        return _window(model.get_submodule(node.target))
    return _functional_window(node, attrs)


def _arg_nodes(node: Any, values: dict) -> list:
    """The values of the nodes among ``node``'s arguments."""
    from torch import fx

    found: list = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(values.get(n)))
    return found


def _fields_by_fx(model: nn.Module, n_axes: Callable[[int], int]) -> list[ReceptiveField]:
    """Follow the forward pass recorded by torch.fx; ``n_axes(nd)`` checks the input's rank."""
    from torch import fx

    window = _window(model)
    if window is not None:                       # a single layer: fx would trace into it
        nd = n_axes(len(window[0]))
        f = _read_input(_Field(0, (1,) * nd, (1,) * nd, (0,) * nd), window,
                        type(model).__name__, type(model).__name__)
        return [ReceptiveField(f.depth, f.size, f.stride, f.padding, type(model).__name__)]
    try:
        graph = fx.Tracer().trace(model)
    except Exception as err:  # torch.fx raises many kinds of errors on untraceable code
        raise _Untraceable(f"{type(err).__name__}: {err}") from None
    attrs = {n: _attr(model, n.target) for n in graph.nodes if n.op == "get_attr"}
    windows = {n: _node_window(model, n, attrs) for n in graph.nodes
               if n.op in ("call_module", "call_function")}
    nd = next((len(w[0]) for w in windows.values() if w is not None), None)
    if nd is None:
        return []
    n_axes(nd)
    values: dict = {}
    rows: list[ReceptiveField] = []
    for node in graph.nodes:
        if node.op == "output":
            break
        if node.op in ("placeholder", "get_attr"):     # the model's input is the first one
            first = node.op == "placeholder" and not values
            values[node] = _Field(0, (1,) * nd, (1,) * nd, (0,) * nd) if first else None
            continue
        inputs = _arg_nodes(node, values)
        if node.op == "call_module":
            name, m = node.target, model.get_submodule(node.target)
            kind, keeps = type(m).__name__, _keeps_positions(m)
        else:
            name, kind = node.name, getattr(node.target, "__name__", str(node.target))
            keeps = kind not in _MIXING_OPS
        window = windows.get(node)
        field_in = _union(inputs, f"{kind} {name!r}")
        if field_in is None or kind in _NOT_TENSORS:
            values[node] = None                      # sizes, constants: no field
        elif window is not None:
            f = _read_input(field_in, window, name, kind)
            rows.append(ReceptiveField(f.depth, f.size, f.stride, f.padding, name))
            values[node] = f
        else:
            mixed = keeps or isinstance(field_in, _Mixed)    # keep the first layer that mixed
            values[node] = field_in if mixed else _Mixed(name, kind)
    return rows


def _fields_by_hooks(model: nn.Module, shape: tuple, n_axes: Callable[[int], int],
                     why: str) -> list[ReceptiveField]:
    """One forward pass with hooks on every layer; the convolutions and poolings must chain."""
    import torch

    calls: list = []
    hooks = []
    for name, m in model.named_modules():
        if _window(m) is not None or not (list(m.children()) or _keeps_positions(m)):
            hooks.append(m.register_forward_hook(
                lambda mod, args, out, name=name: calls.append((name, mod, _first_shape(args),
                                                                _first_shape(out)))))
    first = next((m for m in model.modules() if _window(m) is not None), None)
    if first is None:
        return []
    nd = len(_window(first)[0])
    batched = len(shape) == n_axes(nd) + 2
    param = next(model.parameters(), None)
    x = torch.zeros(shape if batched else (1, *shape),
                    dtype=param.dtype if param is not None and param.is_floating_point()
                    else torch.get_default_dtype(),
                    device=param.device if param is not None else None)
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as err:
        raise ValueError(f"torch.fx cannot record the forward pass ({why}), and a forward pass "
                         f"on a zero input of shape {tuple(x.shape)} failed: "
                         f"{type(err).__name__}: {err}") from None
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes.items():
            m.train(mode)
    f: Any = _Field(0, (1,) * nd, (1,) * nd, (0,) * nd)
    last_shape = tuple(x.shape)
    rows = []
    for name, m, in_shape, out_shape in calls:
        window = _window(m)
        name = name or type(m).__name__
        if window is None:
            f = _Mixed(name, type(m).__name__)
            continue
        if isinstance(f, _Field) and in_shape[-nd:] != last_shape[-nd:]:
            raise ValueError(f"torch.fx cannot record the forward pass ({why}), and the layers "
                             f"do not form a chain: {name!r} ({type(m).__name__}) reads a "
                             f"{in_shape} tensor after a {last_shape} one")
        f = _read_input(f, window, name, type(m).__name__)
        rows.append(ReceptiveField(f.depth, f.size, f.stride, f.padding, name))
        last_shape = out_shape
    return rows


def _first_shape(value: Any) -> tuple | None:
    if hasattr(value, "shape"):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        for v in value:
            found = _first_shape(v)
            if found is not None:
                return found
    return None


def _module_fields(model: nn.Module, input_shape: Any) -> list[ReceptiveField]:
    if input_shape is None:
        raise TypeError(f"receptive_field of a model needs its input_shape, e.g. (3, 224, 224) "
                        f"for {type(model).__name__}")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"input_shape must be a sequence of ints, got {input_shape!r}")
    shape = tuple(check_int(f"input_shape[{i}]", v, 1) for i, v in enumerate(input_shape))

    def n_axes(nd: int) -> int:
        if len(shape) not in (nd + 1, nd + 2):
            raise ValueError(f"input_shape {shape} does not fit a {nd}-d layer: it reads "
                             f"(C, {nd} sizes) or (B, C, {nd} sizes)")
        return nd

    try:
        rows = _fields_by_fx(model, n_axes)
    except _Untraceable as err:
        rows = _fields_by_hooks(model, shape, n_axes, str(err))
    if not rows:
        raise ValueError(f"{type(model).__name__} has no convolution or pooling layer on the "
                         f"path of its input: no receptive field to compute")
    return rows


_TORCH_LAYERS = tuple(f"{kind}{n}d" for kind in ("conv", "maxpool", "avgpool", "convtranspose")
                      for n in (1, 2, 3))


def _run_layer(layer, dims, x, w, kernel, stride, padding, dilation, ceil_mode,
               output_padding, count_include_pad):
    """Apply the functional form of ``layer`` (a name in ``_TORCH_LAYERS``) to ``x``."""
    import torch.nn.functional as F

    if layer.startswith("conv") and not layer.startswith("convtranspose"):
        return getattr(F, f"conv{dims}d")(x, w, None, stride, padding, dilation)
    if layer.startswith("convtranspose"):
        return getattr(F, f"conv_transpose{dims}d")(x, w, None, stride, padding, output_padding,
                                                     1, dilation)
    if layer.startswith("maxpool"):
        return getattr(F, f"max_pool{dims}d")(x, kernel, stride, padding, dilation,
                                              ceil_mode=ceil_mode)
    return getattr(F, f"avg_pool{dims}d")(x, kernel, stride, padding, ceil_mode=ceil_mode,
                                          count_include_pad=count_include_pad)


def torch_output_size(layer: str, size: Sizes, kernel_size: Sizes, stride: Any = None,
                      padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                      output_padding: Any = 0,
                      count_include_pad: bool = True) -> int | tuple[int, ...] | None:
    r"""The output size PyTorch actually produces, or ``None`` if it rejects the arguments.

    Explanation
    -----------
    An oracle for the size rules: runs the functional form of ``layer`` on a zero input
    of length ``size`` (a ``size x size`` image for 2-D layers when ``size`` is one int)
    with the arguments as given, which torch reads as one value for every axis or one per
    axis, and returns the output size, or ``None`` when PyTorch raises.

    Parameters
    ----------
    layer : str
        ``"conv1d"``, ``"conv2d"``, ``"conv3d"``, ``"maxpool1d"`` ... ``"avgpool3d"``,
        ``"convtranspose1d"`` ... ``"convtranspose3d"``.
    size, kernel_size : int or tuple of int
        The input's spatial size and the kernel size, each ``>= 1``.
    stride : int or tuple, optional
        ``None``: 1 for convolutions, the kernel size for pooling (PyTorch's defaults).
    padding, dilation : int, tuple or str
        Passed to torch as they are (``padding="same"`` included); ``dilation`` is ignored
        by average pooling, which has none.
    ceil_mode : bool
        Pooling only.
    output_padding : int or tuple
        Transposed convolutions only.
    count_include_pad : bool
        Average pooling only (it changes the values, not the size).

    Returns
    -------
    int, tuple of int, or None
        The output length along the last axis when no argument is a tuple (all axes are
        then alike), else the output's spatial shape.

    Raises
    ------
    ValueError
        If ``layer`` is not one of the names above, or ``size`` or ``kernel_size`` is not
        a positive integer (the input and the weights could not be built).
    TypeError
        If ``ceil_mode`` or ``count_include_pad`` is not a bool.

    Examples
    --------
    >>> torch_output_size("conv2d", 7, 3, stride=2)
    3
    >>> torch_output_size("maxpool2d", 7, 2, ceil_mode=True)
    4
    >>> torch_output_size("conv2d", (32, 24), (5, 3), stride=(1, 2))
    (28, 11)
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

    check_choice("layer", layer, _TORCH_LAYERS)
    ceil_mode = check_bool("ceil_mode", ceil_mode)
    count_include_pad = check_bool("count_include_pad", count_include_pad)
    dims = int(layer[-2])
    sizes = int_tuple("size", size, dims, 1)
    kernel = int_tuple("kernel_size", kernel_size, dims, 1)
    per_axis = any(isinstance(v, (tuple, list)) for v in
                   (size, kernel_size, stride, padding, dilation, output_padding))
    if stride is None:
        stride = kernel_size if "pool" in layer else 1
    check_entries(f"an input of size {size}", math.prod(sizes))
    check_entries(f"a kernel of kernel_size {kernel_size}", math.prod(kernel))
    x = torch.zeros((1, 1) + sizes)          # (B, C, *spatial)
    w = torch.zeros((1, 1) + kernel)         # (C_out, C_in, *kernel)
    with one_torch_thread():
        try:
            y = _run_layer(layer, dims, x, w, kernel_size, stride, padding, dilation, ceil_mode,
                           output_padding, count_include_pad)
        except (RuntimeError, ValueError, TypeError):
            return None
    return tuple(int(n) for n in y.shape[2:]) if per_axis else int(y.shape[-1])


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
    layers : sequence of (kernel_size, stride, padding[, dilation]) ints
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
    if not all(is_int(v) for spec in specs for v in spec):
        raise TypeError(f"unit_input_gradient builds a 1-D stack: every entry of a layer must "
                        f"be an int, got {list(layers)!r}")
    check_choice("weights", weights, ("ones", "random"))
    n = check_entries(f"an input of size {size}", check_int("size", size, 1))
    seed = check_seed("seed", seed)
    for k, s, p, d in specs:                         # validates every layer, raises if too small
        n = conv_output_size(n, k, s, p, d)
    if unit is None:
        unit = n // 2
    if not is_int(unit) or not 0 <= unit < n:
        raise ValueError(f"unit must be an int in [0, {n - 1}], got {unit!r}")
    gen = torch.Generator().manual_seed(seed)
    with one_torch_thread():
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
