"""Convolution arithmetic: output sizes, padding, receptive fields.

Scope: the size rules PyTorch applies for ``Conv1d/2d/3d``, ``MaxPool``/``AvgPool`` (with
``ceil_mode``) and ``ConvTranspose``, written once so that they accept Python ints (exact
integer arithmetic with ``//``) or SymPy expressions (symbolic sizes, with ``floor`` and
``ceiling`` where they belong).  Chapter: :ref:`ch-conv-arithmetic`.

References: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016);
the shape formulas in the PyTorch documentation of ``torch.nn.Conv2d`` and ``MaxPool2d``.
"""

from __future__ import annotations

from typing import Union

import sympy as sp

__all__ = ["conv_output_size", "conv_output_size_sym"]

Size = Union[int, sp.Expr]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check(name: str, value: object, minimum: int) -> None:
    """Validate an int-or-symbol argument; symbols are assumed valid."""
    if isinstance(value, sp.Basic):
        if value.is_number:
            if not value.is_integer:
                raise ValueError(f"{name} must be an integer, got {value}")
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or a sympy expression, got {type(value).__name__} {value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what} (>= {minimum}), got {value}")


def conv_output_size(size: Size, kernel: Size, stride: Size = 1, padding: Size = 0,
                     dilation: Size = 1, ceil_mode: bool = False) -> Size:
    r"""Output length of a convolution or pooling window along one axis.

    Explanation
    -----------
    A window of ``kernel`` taps spaced ``dilation`` apart spans
    :math:`d(k-1)+1` input positions.  On an input of length :math:`n` padded by :math:`p`
    on both sides, it can start at :math:`0, s, 2s, \dots` as long as it fits, hence

    .. math:: n' = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1 .

    With ``ceil_mode=True`` (pooling only) the floor becomes a ceiling, so a last, partial
    window is kept, except that a window may not *start* in the right-hand padding: if
    :math:`(n'-1)s \ge n + p` the last window is dropped.  This is PyTorch's rule.

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
        If the dilated kernel is larger than the padded input, or an argument is out of
        range (non-positive size, kernel, stride or dilation; negative padding).
    TypeError
        If an argument is neither an int nor a SymPy expression.

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
    """
    _check("size", size, 1)
    _check("kernel", kernel, 1)
    _check("stride", stride, 1)
    _check("padding", padding, 0)
    _check("dilation", dilation, 1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {type(ceil_mode).__name__}")

    span = dilation * (kernel - 1) + 1       # input positions one window covers
    room = size + 2 * padding - span         # how far the window can slide
    if all(_is_int(v) for v in (size, kernel, stride, padding, dilation)):
        if room < 0:
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
    if room.is_number and room < 0:
        raise ValueError(f"kernel span {span} is larger than padded input {size + 2 * padding}")
    if not ceil_mode:
        return sp.floor(room / stride) + 1
    out = sp.ceiling(room / stride) + 1
    return sp.Piecewise((out - 1, (out - 1) * stride >= size + padding), (out, True))


def conv_output_size_sym(ceil_mode: bool = False) -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """The output-size formula with every argument a positive integer symbol.

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

    See Also
    --------
    conv_output_size : numeric or partly symbolic version.
    """
    n, k, s, d = sp.symbols("n k s d", integer=True, positive=True)
    p = sp.Symbol("p", integer=True, nonnegative=True)
    return conv_output_size(n, k, s, p, d, ceil_mode=ceil_mode), (n, k, s, p, d)
