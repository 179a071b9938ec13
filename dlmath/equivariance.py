r"""Translations, what convolutions and pooling do with them, and spatial structure.

Scope: the translation operators on images (circular, :math:`T_t x = \operatorname{roll}(x, t)`,
and with zero fill); the equivariance error :math:`f(T_t x) - T_u f(x)` of any map
:math:`f` and the shift sensitivity of a down-sampling map (how much its output changes, and
how far it is from *any* translate of the old output); pooling on the torus (so that
translations are exact symmetries), anti-aliased max pooling, and the map of impulse
positions whose pooled output survives a shift; the fully connected head of a network
rewritten as convolutions (a linear layer on a flattened :math:`C \times H \times W` map is
a convolution with an :math:`H \times W` kernel), which turns a classifier into a fully
convolutional network that maps a larger image to a map of class scores; and fixed pixel
permutations of images and data sets, with the permutation absorbed by a first linear layer.
Chapter: :ref:`ch-why-convolutions`.

Notation: images are ``(..., H, W)``; a shift :math:`t = (t_y, t_x)` moves content down by
:math:`t_y` rows and right by :math:`t_x` columns.  A permutation :math:`\pi` of the
:math:`HW` pixels acts by :math:`(P_\pi x)_i = x_{\pi(i)}` on the row-major flattened image.

References: Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 9.2
(equivariance of convolution); Zhang, "Making Convolutional Networks Shift-Invariant Again"
(ICML 2019), for aliasing by strided pooling and blurred pooling; Long, Shelhamer & Darrell,
"Fully Convolutional Networks for Semantic Segmentation" (CVPR 2015), for fully connected
layers as convolutions.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlmath._validate import (check_callable, check_choice, check_device, check_dtype,
                              check_entries, check_int, check_number, check_seed, check_tensor,
                              int_shape, int_tuple)


__all__ = [
    "BOUNDARIES",
    "translate",
    "equivariance_error",
    "equivariance_border_band",
    "ShiftSensitivity",
    "shift_sensitivity",
    "fourier_translate",
    "pool2d_circular",
    "antialiased_max_pool2d",
    "impulse_shift_invariance",
    "linear_as_conv2d",
    "fully_convolutional",
    "pixel_permutation",
    "permute_pixels",
    "absorb_input_permutation",
]

#: How :func:`translate` treats content that leaves the frame.
BOUNDARIES = ("circular", "zeros")

Tensor = torch.Tensor


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------
# translations and equivariance
# --------------------------------------------------------------------------------------

def translate(x: Tensor, shift: int | Sequence[int], boundary: str = "circular") -> Tensor:
    r"""Translate images by :math:`t = (t_y, t_x)` pixels: :math:`(T_t x)_{i,j} = x_{i-t_y, j-t_x}`.

    Explanation
    -----------
    With ``boundary="circular"`` the image lives on a torus: indices are taken modulo
    :math:`H` and :math:`W`, so what leaves on one side comes back on the other
    (``torch.roll``).  These translations form a group, :math:`T_s T_t = T_{s+t}` and
    :math:`T_t^{-1} = T_{-t}`, and a convolution with circular padding commutes with each
    of them.  With ``boundary="zeros"`` the image sits on an infinite zero plane and the
    frame crops it: content that leaves is lost and zeros come in, so :math:`T_{-t} T_t`
    erases a band of :math:`|t_y|` rows and :math:`|t_x|` columns.

    Parameters
    ----------
    x : torch.Tensor
        Images of shape ``(..., H, W)``.
    shift : int or (int, int)
        :math:`(t_y, t_x)`; positive moves content down and right.  One int shifts both axes.
    boundary : {"circular", "zeros"}

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ValueError
        Unknown ``boundary``; ``x`` with fewer than two dimensions.
    TypeError
        ``x`` is not a tensor, or a shift is not an int.

    Examples
    --------
    >>> x = torch.arange(9).reshape(3, 3)
    >>> translate(x, (0, 1))
    tensor([[2, 0, 1],
            [5, 3, 4],
            [8, 6, 7]])
    >>> translate(x, (1, 0), boundary="zeros")
    tensor([[0, 0, 0],
            [0, 1, 2],
            [3, 4, 5]])
    >>> translate(x, (0, 1), boundary="reflect")
    Traceback (most recent call last):
    ...
    ValueError: boundary must be one of 'circular', 'zeros', got 'reflect'

    See Also
    --------
    equivariance_error : :math:`f(T_t x) - T_t f(x)` for any map :math:`f`.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    x = check_tensor("x", x, 2)
    ty, tx = int_tuple("shift", shift, 2)
    boundary = check_choice("boundary", boundary, BOUNDARIES)
    if boundary == "circular":
        return torch.roll(x, shifts=(ty, tx), dims=(-2, -1))
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(ty) >= h or abs(tx) >= w:
        return out
    # out[i, j] = x[i - ty, j - tx] where both lie in the frame
    out[..., max(ty, 0):h + min(ty, 0), max(tx, 0):w + min(tx, 0)] = \
        x[..., max(-ty, 0):h - max(ty, 0), max(-tx, 0):w - max(tx, 0)]
    return out


def equivariance_error(f: Callable[[Tensor], Tensor], x: Tensor, shift: int | Sequence[int],
                       boundary: str = "circular",
                       output_shift: int | Sequence[int] | None = None) -> Tensor:
    r"""The equivariance error :math:`f(T_t x) - T_u f(x)`, entry by entry.

    Explanation
    -----------
    :math:`f` is equivariant to the translation :math:`T_t` (with output translation
    :math:`T_u`) when :math:`f \circ T_t = T_u \circ f`; for a map that keeps the
    resolution :math:`u = t`, for one that down-samples by a stride :math:`s` the only
    candidate is :math:`u = t/s`, which is a translation only when :math:`s` divides
    :math:`t`.  The returned map is zero exactly where the identity holds, so it shows
    *where* it fails: for a convolution with zero padding, in bands along the borders.

    Parameters
    ----------
    f : callable
        Maps images ``(..., H, W)`` to images ``(..., H', W')``.
    x : torch.Tensor
        Input images.
    shift : int or (int, int)
        The input translation :math:`t`.
    boundary : {"circular", "zeros"}
        Used for both translations (see :func:`translate`).
    output_shift : int or (int, int), optional
        The output translation :math:`u`; default :math:`t`.

    Returns
    -------
    torch.Tensor
        ``f(translate(x, t)) - translate(f(x), u)``, the shape of ``f(x)``.

    Raises
    ------
    TypeError
        ``f`` is not callable or does not return a tensor.
    ValueError
        ``f(translate(x, t))`` and ``f(x)`` have different shapes; see :func:`translate`.

    Examples
    --------
    >>> x = torch.randn(1, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    >>> circ = lambda z: F.conv2d(F.pad(z, (1, 1, 1, 1), mode="circular"), w)
    >>> equivariance_error(circ, x, (2, 1)).abs().max().item()
    0.0
    >>> zero = lambda z: F.conv2d(z, w, padding=1)
    >>> err = equivariance_error(zero, x, (2, 1))
    >>> bool(err[..., 3:5, 2:5].eq(0).all()), bool(err.abs().max() > 0)   # only near the borders
    (True, True)

    See Also
    --------
    translate : the translations.
    shift_sensitivity : the same question for down-sampling maps, with the best :math:`u`.

    References
    ----------
    Goodfellow, Bengio & Courville (2016), section 9.2.  Chapter: :ref:`ch-why-convolutions`.
    """
    check_callable("f", f)
    x = check_tensor("x", x, 2)
    if output_shift is not None:
        int_tuple("output_shift", output_shift, 2)
    u = shift if output_shift is None else output_shift
    moved = f(translate(x, shift, boundary))
    base = f(x)
    if not isinstance(moved, Tensor) or not isinstance(base, Tensor):
        raise TypeError("f must return a torch.Tensor")
    if moved.shape != base.shape:
        raise ValueError(f"f gives shape {tuple(moved.shape)} for the translated input but "
                         f"{tuple(base.shape)} for x; f must keep the output shape")
    return moved - translate(base, u, boundary)


def equivariance_border_band(size: int | Sequence[int], kernel: int | Sequence[int],
                             shift: int | Sequence[int]) -> Tensor:
    r"""Where a zero-padded "same" convolution can violate :math:`f(T_t x) = T_t f(x)`.

    Explanation
    -----------
    A :math:`k_h \times k_w` convolution with "same" zero padding (odd kernel, padding
    :math:`r = (k-1)/2`) computes output pixel :math:`i` exactly as the circular
    convolution does unless its window leaves the frame, i.e. unless :math:`i < r` or
    :math:`i \ge H - r` (per axis).  The circular convolution :math:`g` is equivariant, so
    :math:`f(T_t x)_i = g(T_t x)_i = (T_t g(x))_i = g(x)_{i-t} = f(x)_{i-t} = (T_t f(x))_i`
    whenever *both* pixel :math:`i` and pixel :math:`i - t` (mod the size) are at least
    :math:`r` away from the border, along both axes.  The band returned here is the
    complement: the frame's border band of width :math:`r`, and the same band moved by
    :math:`t` (where the old border lands after the shift).  The equivariance error of a
    zero-padded convolution is zero outside it, for every input.

    Parameters
    ----------
    size : int or (int, int)
        :math:`(H, W)`.
    kernel : int or (int, int)
        Odd kernel size per axis.
    shift : int or (int, int)
        :math:`t`.

    Returns
    -------
    torch.Tensor
        Bool ``(H, W)``, ``True`` inside the band.

    Raises
    ------
    ValueError
        An even kernel or a non-positive size.
    TypeError
        Non-integer arguments.

    Examples
    --------
    >>> equivariance_border_band((6, 6), 3, (0, 2)).int()
    tensor([[1, 1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0, 1],
            [1, 1, 1, 0, 0, 1],
            [1, 1, 1, 0, 0, 1],
            [1, 1, 1, 0, 0, 1],
            [1, 1, 1, 1, 1, 1]], dtype=torch.int32)

    See Also
    --------
    equivariance_error : the error whose support this bounds.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`; the border term is the subject of
    :ref:`ch-padding-position`.
    """
    h, w = int_tuple("size", size, 2, 1)
    check_entries(f"a band of size {size}", h * w)
    kh, kw = int_tuple("kernel", kernel, 2, 1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel must be odd for 'same' padding, got {(kh, kw)}")
    ty, tx = int_tuple("shift", shift, 2)

    def axis(n: int, k: int, t: int) -> Tensor:
        r = (k - 1) // 2
        i = torch.arange(n)
        near = lambda j: (j < r) | (j >= n - r)  # noqa: E731
        return near(i) | near((i - t) % n)

    return axis(h, kh, ty)[:, None] | axis(w, kw, tx)[None, :]


class ShiftSensitivity(NamedTuple):
    """How a map's output responds to a translation of its input (see :func:`shift_sensitivity`)."""

    #: :math:`\|f(T_t x) - f(x)\| / \|f(x)\|`: 0 means invariant.
    change: float
    #: :math:`\min_u \|f(T_t x) - T_u f(x)\| / \|f(x)\|`: 0 means equivariant.
    residual: float
    #: The circular output shift :math:`u` that attains the minimum.
    output_shift: tuple[int, int]


def _circular_cross_correlation(a: Tensor, b: Tensor) -> Tensor:
    # c_u = sum over everything but the last two axes and over (i, j) of a_ij b_(i-u)
    # computed with the FFT on the torus; shape (H', W')
    fa = torch.fft.rfft2(a.double())
    fb = torch.fft.rfft2(b.double())
    prod = (fa * fb.conj()).reshape(-1, *fa.shape[-2:]).sum(0)
    return torch.fft.irfft2(prod, s=a.shape[-2:])


def shift_sensitivity(f: Callable[[Tensor], Tensor], x: Tensor,
                      shift: int | Sequence[int]) -> ShiftSensitivity:
    r"""How much :math:`f(x)` changes under a circular shift, and how far it is from a shift.

    Explanation
    -----------
    Two numbers answer two questions.  The *change*
    :math:`\|f(T_t x) - f(x)\| / \|f(x)\|` is zero when :math:`f` is invariant to
    :math:`T_t`.  The *residual*

    .. math:: \min_u \frac{\|f(T_t x) - T_u f(x)\|}{\|f(x)\|}

    over every circular translation :math:`u` of the output is zero when :math:`f(T_t x)` is
    a translate of :math:`f(x)`, i.e. when :math:`f` is equivariant to :math:`T_t`.  For a
    map with stride :math:`s` on the torus, the residual is zero for every :math:`t` that
    :math:`s` divides (with :math:`u = t/s`) and in general not otherwise: the sub-sampling
    grid does not move with the input, which is aliasing (Zhang, 2019).  The minimising
    :math:`u` is found from the circular cross-correlation of the two outputs (one FFT), and
    the residual is then computed directly, so an exact translate gives exactly 0.

    Parameters
    ----------
    f : callable
        Maps images ``(..., H, W)`` to images ``(..., H', W')`` (same shape for both inputs).
    x : torch.Tensor
        Input images, not all zero after ``f``.
    shift : int or (int, int)
        The circular input translation :math:`t`.

    Returns
    -------
    ShiftSensitivity
        ``(change, residual, output_shift)``.

    Raises
    ------
    ValueError
        ``f(x)`` is zero (nothing to compare), or ``f`` changes the output shape.
    TypeError
        ``f`` is not callable; see :func:`translate`.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(4, 1, 16, 16, dtype=torch.float64, generator=g)
    >>> pool = lambda z: pool2d_circular(z, 2, 2)
    >>> r = shift_sensitivity(pool, x, (0, 2))      # a shift by the stride: equivariant
    >>> r.residual, r.output_shift
    (0.0, (0, 1))
    >>> shift_sensitivity(pool, x, (0, 1)).residual > 0.1   # a shift by one pixel: aliasing
    True

    See Also
    --------
    equivariance_error : the error map for a given output shift.
    pool2d_circular, antialiased_max_pool2d : pooling maps to measure.

    References
    ----------
    Zhang, "Making Convolutional Networks Shift-Invariant Again" (ICML 2019).
    Chapter: :ref:`ch-why-convolutions`.
    """
    check_callable("f", f)
    x = check_tensor("x", x, 2, real=True)
    base = f(x)
    moved = f(translate(x, shift, "circular"))
    if not isinstance(base, Tensor) or not isinstance(moved, Tensor):
        raise TypeError("f must return a torch.Tensor")
    if base.shape != moved.shape or base.dim() < 2:
        raise ValueError(f"f must return images of one shape, got {tuple(base.shape)} and "
                         f"{tuple(moved.shape)}")
    norm = base.double().norm()
    if norm == 0:
        raise ValueError("f(x) is zero: the relative change is undefined; choose another x")
    change = float((moved.double() - base.double()).norm() / norm)
    # ||a - T_u b||^2 = ||a||^2 + ||b||^2 - 2 c_u with c_u = <a, T_u b>: maximise c_u
    corr = _circular_cross_correlation(moved, base)
    h, w = corr.shape
    k = int(torch.argmax(corr))
    uy, ux = k // w, k % w
    uy, ux = (uy - h if uy > h // 2 else uy), (ux - w if ux > w // 2 else ux)
    residual = float((moved.double() - translate(base.double(), (uy, ux))).norm() / norm)
    return ShiftSensitivity(change, residual, (uy, ux))


def fourier_translate(x: Tensor, shift: float | Sequence[float]) -> Tensor:
    r"""Translate images by a possibly fractional shift, by a phase ramp in the Fourier domain.

    Explanation
    -----------
    Translation by :math:`t` multiplies the discrete Fourier coefficient at frequency
    :math:`(f_y, f_x)` (cycles per pixel, ``torch.fft.fftfreq``) by
    :math:`e^{-2\pi i (f_y t_y + f_x t_x)}`.  For integer :math:`t` this is the circular
    translation of :func:`translate` (up to rounding); for fractional :math:`t` it is the
    translation of the band-limited (trigonometric) interpolant of the samples, the
    natural meaning of "half a pixel".  The real part is returned; on an axis of even length
    the Nyquist coefficient cannot be shifted by a fraction and is turned into a cosine.

    Parameters
    ----------
    x : torch.Tensor
        Real images ``(..., H, W)``.
    shift : float or (float, float)
        :math:`(t_y, t_x)` in pixels.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as a floating ``x`` (computed in float64); float64 for
        an integer ``x``.

    Raises
    ------
    TypeError
        ``x`` is not a real tensor, or a shift is not a real number.
    ValueError
        ``x`` has fewer than two dimensions, or a shift is not finite.

    Examples
    --------
    >>> x = torch.tensor([[0., 1., 0., 0., 0.]], dtype=torch.float64)
    >>> fourier_translate(x, (0, 1)).round(decimals=6)          # an integer shift: a roll
    tensor([[0., 0., 1., 0., 0.]], dtype=torch.float64)
    >>> half = fourier_translate(x, (0, 0.5))
    >>> torch.allclose(fourier_translate(half, (0, 0.5)), fourier_translate(x, (0, 1)))
    True

    See Also
    --------
    translate : integer translations.
    shift_sensitivity : compares with integer translates of the output.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    x = check_tensor("x", x, 2, real=True, nonempty=True)
    pair = shift if isinstance(shift, (tuple, list)) else (shift, shift)
    if len(pair) != 2:
        raise ValueError(f"shift must be a number or a pair of numbers, got {shift!r}")
    ts = [check_number(f"shift[{i}]", t) for i, t in enumerate(pair)]
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=x.device)[:, None]  # (H, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=x.device)[None, :]  # (1, W)
    # X_f -> X_f exp(-2 pi i (f_y t_y + f_x t_x))
    phase = torch.exp(-2j * math.pi * (fy * ts[0] + fx * ts[1]))
    out = torch.fft.ifft2(torch.fft.fft2(x.double()) * phase).real
    return out.to(x.dtype) if x.is_floating_point() else out


# --------------------------------------------------------------------------------------
# pooling on the torus
# --------------------------------------------------------------------------------------

def _pad_circular_end(x: Tensor, extra: tuple[int, int], what: str = "kernel") -> Tensor:
    # append the first extra rows / columns after the last ones (wrap around)
    eh, ew = extra
    if eh > x.shape[-2] or ew > x.shape[-1] or 0 in x.shape[-2:]:
        raise ValueError(f"a {what} window of {eh + 1}x{ew + 1} does not fit the image x of "
                         f"{x.shape[-2]}x{x.shape[-1]} on the torus")
    if eh:
        x = torch.cat([x, x[..., :eh, :]], dim=-2)
    if ew:
        x = torch.cat([x, x[..., :ew]], dim=-1)
    return x


def pool2d_circular(x: Tensor, kernel: int | Sequence[int],
                    stride: int | Sequence[int] | None = None, op: str = "max") -> Tensor:
    r"""Max or average pooling on the torus: windows that run off the edge wrap around.

    Explanation
    -----------
    Output :math:`(i, j)` pools the :math:`k_h \times k_w` window whose top-left corner is
    :math:`(i s_h, j s_w)`, indices taken modulo :math:`H` and :math:`W`, so there are
    :math:`\lceil H/s_h \rceil \times \lceil W/s_w \rceil` outputs.  Wrapping (instead of
    PyTorch's cropping, see :ref:`ch-conv-arithmetic`) makes translations exact symmetries:
    with stride 1, :math:`\mathrm{pool}(T_t x) = T_t\,\mathrm{pool}(x)` for every
    :math:`t`; with stride :math:`s` dividing :math:`H` and :math:`W`, the identity holds
    for the shifts that :math:`s` divides, with the output shifted by :math:`t/s`.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    kernel : int or (int, int)
        Window size, at most the image size.
    stride : int or (int, int), optional
        Default: the kernel (non-overlapping windows).
    op : {"max", "avg"}

    Returns
    -------
    torch.Tensor
        ``(B, C, ceil(H / s_h), ceil(W / s_w))``.

    Raises
    ------
    ValueError
        A non-positive kernel or stride, a window larger than the image, an unknown ``op``
        or an input that is not 4-d.
    TypeError
        Non-integer sizes.

    Examples
    --------
    >>> x = torch.tensor([[[[1., 5., 2., 0.]]]])
    >>> pool2d_circular(x, (1, 2))                    # windows (1,5), (2,0)
    tensor([[[[5., 2.]]]])
    >>> pool2d_circular(x, (1, 2), stride=1)          # (1,5), (5,2), (2,0), (0,1): wraps
    tensor([[[[5., 5., 2., 1.]]]])
    >>> pool2d_circular(x, (1, 2), stride=1, op="avg")
    tensor([[[[3.0000, 3.5000, 1.0000, 0.5000]]]])

    See Also
    --------
    antialiased_max_pool2d : max pooling with a blur before sub-sampling.
    shift_sensitivity : measures the aliasing of a stride.
    dlmath.conv.pool_output_size : the sizes of PyTorch's (cropping) pooling.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    x = check_tensor("x", x, 4, real=True)
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    kh, kw = int_tuple("kernel", kernel, 2, 1)
    sh, sw = (kh, kw) if stride is None else int_tuple("stride", stride, 2, 1)
    check_choice("op", op, ("max", "avg"))
    padded = _pad_circular_end(x, (kh - 1, kw - 1))
    h, w = x.shape[-2:]
    pool = F.max_pool2d if op == "max" else F.avg_pool2d
    # a stride beyond the image leaves one window per axis, as a stride of the image size
    out = pool(padded, (kh, kw), (min(sh, h), min(sw, w)))
    return out[..., :math.ceil(h / sh), :math.ceil(w / sw)]


def _binomial(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    row = torch.tensor([math.comb(n - 1, i) for i in range(n)], dtype=dtype, device=device)
    k = row[:, None] * row[None, :]  # (n, n)
    return k / k.sum()


def antialiased_max_pool2d(x: Tensor, kernel: int = 2, stride: int = 2, blur: int = 3) -> Tensor:
    r"""Max pooling with a low-pass filter before sub-sampling (Zhang's MaxBlurPool), on the torus.

    Explanation
    -----------
    Strided max pooling is max pooling with stride 1 followed by sub-sampling, and
    sub-sampling a signal with high frequencies aliases them.  Zhang (2019) inserts a blur
    between the two: dense max pooling, then a convolution with the normalised binomial
    filter :math:`b b^\top / (\mathbf 1^\top b)^2` with :math:`b_i = \binom{n-1}{i}`,
    evaluated only at every ``stride``-th position.  Everything wraps around, so the layer
    stays exactly equivariant to shifts that the stride divides and becomes *nearly*
    equivariant to the others.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    kernel : int
        Window of the dense max pooling.
    stride : int
        Sub-sampling factor.
    blur : int
        Size :math:`n` of the binomial filter; 1 disables the blur.

    Returns
    -------
    torch.Tensor
        ``(B, C, ceil(H / stride), ceil(W / stride))``.

    Raises
    ------
    ValueError, TypeError
        As :func:`pool2d_circular`; ``blur`` must be a positive int.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 8, 8); x[0, 0, 3, 3] = 1.0
    >>> y = antialiased_max_pool2d(x, blur=3)
    >>> y.shape, round(float(y.sum()), 4)               # the blur keeps the total mass
    (torch.Size([1, 1, 4, 4]), 1.0)
    >>> bool(antialiased_max_pool2d(x, blur=1).eq(pool2d_circular(x, 2, 2)).all())
    True

    See Also
    --------
    pool2d_circular : the same without the blur.

    References
    ----------
    Zhang, "Making Convolutional Networks Shift-Invariant Again" (ICML 2019).
    Chapter: :ref:`ch-why-convolutions`.
    """
    check_tensor("x", x, 4, floating=True, real=True)
    check_int("stride", stride, 1)
    n = check_int("blur", blur, 1)
    dense = pool2d_circular(x, kernel, stride=1, op="max")  # (B, C, H, W)
    if n == 1:
        return dense[..., ::stride, ::stride]
    b, c, h, w = dense.shape
    padded = _pad_circular_end(dense, (n - 1, n - 1), "blur")
    k = _binomial(n, dense.dtype, dense.device).expand(c, 1, n, n)
    # y_cij = sum_ab k_ab dense_c,(is+a),(js+b): one depthwise convolution
    out = F.conv2d(padded, k, stride=stride, groups=c)
    return out[..., :math.ceil(h / stride), :math.ceil(w / stride)]


def impulse_shift_invariance(f: Callable[[Tensor], Tensor], size: int | Sequence[int],
                             shift: int | Sequence[int], *, dtype: torch.dtype = torch.float64,
                             device: torch.device | str | None = None) -> Tensor:
    r"""For each pixel :math:`p`, whether :math:`f(T_t e_p) = f(e_p)` for the impulse :math:`e_p`.

    Explanation
    -----------
    An impulse :math:`e_p` (one pixel 1, the rest 0) is the simplest feature.  Max pooling
    with non-overlapping :math:`k \times k` windows returns the same output after a shift
    exactly when the impulse stays in its window: along one axis, for
    :math:`k - t` of every :math:`k` positions when :math:`0 \le t < k`, and never when
    :math:`t \ge k`.  So pooling is invariant to a shift only *for some positions* of the
    feature, the more the larger the window.  The translation is circular.

    Parameters
    ----------
    f : callable
        Maps ``(N, 1, H, W)`` to a tensor with first axis ``N``.
    size : int or (int, int)
        :math:`(H, W)` of the impulse images.
    shift : int or (int, int)
        The translation :math:`t`.
    dtype, device
        Of the impulse images given to ``f`` (those of its parameters, for a module).

    Returns
    -------
    torch.Tensor
        Bool ``(H, W)``: entry :math:`p` is ``True`` when the output is unchanged (exactly).

    Raises
    ------
    ValueError, TypeError
        Non-positive sizes, or ``f`` not callable.

    Examples
    --------
    >>> m = impulse_shift_invariance(lambda z: pool2d_circular(z, 2), (2, 4), (0, 1))
    >>> m.int()
    tensor([[1, 0, 1, 0],
            [1, 0, 1, 0]], dtype=torch.int32)

    See Also
    --------
    shift_sensitivity : the same question for arbitrary images, as a number.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    check_callable("f", f)
    h, w = int_tuple("size", size, 2, 1)
    check_entries(f"the {h * w} impulse images of size {size}", (h * w) ** 2)
    check_dtype("dtype", dtype)
    device = check_device("device", device)
    eye = torch.eye(h * w, dtype=dtype, device=device).reshape(h * w, 1, h, w)  # (HW, 1, H, W)
    before = f(eye).reshape(h * w, -1)
    after = f(translate(eye, shift)).reshape(h * w, -1)
    return (before == after).all(dim=1).reshape(h, w)


# --------------------------------------------------------------------------------------
# fully connected layers as convolutions
# --------------------------------------------------------------------------------------

def linear_as_conv2d(linear: nn.Linear, input_shape: Sequence[int]) -> nn.Conv2d:
    r"""The convolution that computes ``linear(x.flatten(1))`` from a ``(C, H, W)`` map.

    Explanation
    -----------
    ``torch.flatten`` lists a :math:`C \times H \times W` map row by row within each
    channel, so input feature :math:`cHW + hW + w` of the linear layer meets pixel
    :math:`(c, h, w)`:

    .. math:: y_o = b_o + \sum_{c,h,w} W_{o,\,cHW + hW + w}\, x_{c,h,w},

    which is a convolution with :math:`O` filters of size :math:`H \times W` (the kernel
    covers the map), no padding, and weight ``W.reshape(O, C, H, W)``.  On a
    :math:`C \times H \times W` input it has one output position; on a larger input it
    slides, one position per window, with an output of
    :math:`(H_{in} - H + 1) \times (W_{in} - W + 1)` (see :ref:`ch-conv-arithmetic`).  A
    linear layer after another one sees a :math:`C \times 1 \times 1` map: a
    :math:`1 \times 1` convolution.

    Parameters
    ----------
    linear : torch.nn.Linear
    input_shape : (C, H, W)
        The shape of the map the linear layer reads, flattened; ``C*H*W`` must equal
        ``linear.in_features``.

    Returns
    -------
    torch.nn.Conv2d
        A new layer on the same device and dtype, weights copied.

    Raises
    ------
    TypeError
        ``linear`` is not an ``nn.Linear``.
    ValueError
        ``input_shape`` is not three positive ints or does not match ``in_features``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lin = nn.Linear(2 * 3 * 3, 4)
    >>> conv = linear_as_conv2d(lin, (2, 3, 3))
    >>> conv
    Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1))
    >>> x = torch.randn(5, 2, 3, 3)
    >>> torch.allclose(conv(x).flatten(1), lin(x.flatten(1)), atol=1e-6)
    True
    >>> conv(torch.randn(1, 2, 7, 9)).shape           # a larger map: 5 x 7 positions
    torch.Size([1, 4, 5, 7])
    >>> linear_as_conv2d(lin, (3, 3, 3))
    Traceback (most recent call last):
    ...
    ValueError: input_shape (3, 3, 3) has 27 entries but linear.in_features is 18

    See Also
    --------
    fully_convolutional : converts a whole classifier.
    dlmath.params.linear_params, dlmath.params.conv_params : both count the same weights.

    References
    ----------
    Long, Shelhamer & Darrell (CVPR 2015), section 3.1.  Chapter: :ref:`ch-why-convolutions`.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    c, h, w = int_shape("input_shape", input_shape)
    if c * h * w != linear.in_features:
        raise ValueError(f"input_shape {(c, h, w)} has {c * h * w} entries but "
                         f"linear.in_features is {linear.in_features}")
    weight = linear.weight
    conv = nn.Conv2d(c, linear.out_features, (h, w), bias=linear.bias is not None,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.reshape(linear.out_features, c, h, w))  # (O, C, H, W)
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    conv.train(linear.training)
    return conv


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
                nn.Softplus, nn.Identity, nn.Dropout)


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}_{name}" if prefix else name)
    else:
        yield prefix or "layer", module


def _convert_after_flatten(name: str, layer: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    if isinstance(layer, nn.Linear):
        return linear_as_conv2d(layer, shape)
    if isinstance(layer, nn.BatchNorm1d):
        ref = next(iter(layer.state_dict().values()), None)  # device and dtype to match
        floating = ref is not None and ref.is_floating_point()
        bn = nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum, layer.affine,
                            layer.track_running_stats,
                            device=ref.device if ref is not None else None,
                            dtype=ref.dtype if floating else None)
        bn.load_state_dict(layer.state_dict())
        bn.train(layer.training)
        return bn
    if isinstance(layer, (nn.Softmax, nn.LogSoftmax)) and layer.dim == 1:
        return layer
    if isinstance(layer, _ELEMENTWISE):
        return layer
    raise TypeError(f"layer {name!r} ({type(layer).__name__}) after the flatten has no "
                    f"convolutional equivalent here; allowed: Linear, BatchNorm1d, "
                    f"Softmax/LogSoftmax(dim=1) and element-wise layers")


def fully_convolutional(net: nn.Module, input_shape: Sequence[int]) -> nn.Sequential:
    r"""Rewrite a classifier ``features -> flatten -> linear layers`` as convolutions only.

    Explanation
    -----------
    The first linear layer after ``nn.Flatten`` becomes a convolution whose kernel covers
    the feature map it read (:func:`linear_as_conv2d`), every later linear layer a
    :math:`1 \times 1` convolution, ``BatchNorm1d`` a ``BatchNorm2d`` with the same
    statistics; element-wise layers stay.  On an input of the original size the result
    returns the original logits as a ``(B, K, 1, 1)`` map.  On a larger input it returns a
    ``(B, K, H', W')`` map of class scores: entry :math:`(u, v)` is the classifier applied
    to the window at :math:`(uS, vS)` of the input, :math:`S` the product of the strides,
    computed with all the work that overlapping windows share.  The equality with the
    classifier on the cropped window is exact when the features use no padding; with
    padding, a crop sees zeros at its border where the large image has neighbours (see
    :ref:`ch-padding-position`).

    Parameters
    ----------
    net : torch.nn.Sequential
        Nested ``Sequential`` containers allowed; the layers run in the listed order.
    input_shape : (C, H, W)
        The input size the classifier was built for (fixes the feature map shape at the
        flatten).

    Returns
    -------
    torch.nn.Sequential
        Flat, layers named by their path (``block1_conv``, ``head_fc1``, ...); the layers
        before the flatten are the original modules (shared, not copied).

    Raises
    ------
    TypeError
        ``net`` is not a ``Sequential`` or a layer after the flatten has no convolutional
        form (e.g. another ``Flatten`` or a recurrent layer).
    ValueError
        No ``nn.Flatten(start_dim=1)``, or the feature map at the flatten is not
        ``(B, C, H, W)``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Flatten(), nn.Linear(4 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 10))
    >>> fcn = fully_convolutional(net, (1, 8, 8))
    >>> [type(m).__name__ for m in fcn]
    ['Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU', 'Conv2d']
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(fcn(x).flatten(1), net(x), atol=1e-6)
    True
    >>> fcn(torch.randn(1, 1, 16, 24)).shape          # scores every 2 pixels
    torch.Size([1, 10, 5, 9])

    See Also
    --------
    linear_as_conv2d : the conversion of one layer.
    dlmath.conv.receptive_field : the window each score sees, and its stride.

    References
    ----------
    Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation"
    (CVPR 2015).  Chapter: :ref:`ch-why-convolutions`.
    """
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"net must be a torch.nn.Sequential (nested ones allowed), got "
                        f"{type(net).__name__}")
    shape = int_shape("input_shape", input_shape)
    check_entries(f"a probe input of input_shape {shape}", math.prod(shape))
    layers: list[tuple[str, nn.Module]] = []
    param = next(net.parameters(), None)
    probe = torch.zeros(1, *shape, dtype=param.dtype if param is not None else torch.float32,
                        device=param.device if param is not None else None)
    flat_shape: tuple[int, ...] | None = None
    training = net.training
    net.eval()  # the probe only measures shapes; no batch-norm statistics may change
    try:
        with torch.no_grad():
            for name, layer in _leaves(net):
                if flat_shape is None:
                    if isinstance(layer, nn.Flatten):
                        if layer.start_dim != 1 or layer.end_dim != -1:
                            raise ValueError(f"layer {name!r} must flatten from dimension 1 to "
                                             f"the end, got start_dim={layer.start_dim}, "
                                             f"end_dim={layer.end_dim}")
                        if probe.dim() != 4:
                            raise ValueError(f"the input of {name!r} has shape "
                                             f"{tuple(probe.shape)}; expected (B, C, H, W)")
                        flat_shape = tuple(probe.shape[1:])
                        continue
                    probe = layer(probe)
                    layers.append((name, layer))
                else:
                    converted = _convert_after_flatten(name, layer, flat_shape)
                    if isinstance(layer, nn.Linear):
                        flat_shape = (layer.out_features, 1, 1)
                    layers.append((name, converted))
    finally:
        net.train(training)
    if flat_shape is None:
        raise ValueError("net has no nn.Flatten: there is no fully connected head to convert")
    return nn.Sequential(OrderedDict(layers)).train(training)


# --------------------------------------------------------------------------------------
# pixel permutations
# --------------------------------------------------------------------------------------

def pixel_permutation(num_pixels: int, seed: int = 0) -> Tensor:
    r"""A fixed random permutation :math:`\pi` of ``range(num_pixels)``, from its own generator.

    Explanation
    -----------
    Drawn with ``torch.randperm`` from a ``torch.Generator`` seeded with ``seed``, so it does
    not touch (or depend on) the global random state and is the same on every machine.

    Parameters
    ----------
    num_pixels : int
        :math:`HW`, at least 1.
    seed : int

    Returns
    -------
    torch.Tensor
        int64 ``(num_pixels,)``.

    Raises
    ------
    ValueError, TypeError
        ``num_pixels`` not a positive int, ``seed`` not an int.

    Examples
    --------
    >>> p = pixel_permutation(64, seed=1)
    >>> p.shape, sorted(p.tolist()) == list(range(64))
    (torch.Size([64]), True)
    >>> torch.equal(p, pixel_permutation(64, seed=1))
    True

    See Also
    --------
    permute_pixels : applies it to images.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    n = check_entries(f"a permutation of num_pixels={num_pixels}",
                      check_int("num_pixels", num_pixels, 1))
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    return torch.randperm(n, generator=g)


def _permutation(name: str, permutation: object, n: int) -> Tensor:
    if not isinstance(permutation, Tensor) or permutation.dim() != 1 \
            or permutation.dtype != torch.int64:
        raise TypeError(f"{name} must be a 1-d int64 tensor")
    if permutation.numel() != n or not torch.equal(
            torch.sort(permutation.cpu()).values, torch.arange(n)):
        raise ValueError(f"{name} must be a permutation of range({n}), got "
                         f"{permutation.numel()} entries")
    return permutation


def permute_pixels(x: Tensor, permutation: Tensor) -> Tensor:
    r"""Rearrange the pixels of every image and channel by one permutation: :math:`x' = P_\pi x`.

    Explanation
    -----------
    Each ``H x W`` image is flattened row by row, entry :math:`i` of the result is entry
    :math:`\pi(i)` of the input, and the result is reshaped to ``H x W``.  The same
    :math:`\pi` acts on every image and every channel, so nothing is lost (it is
    invertible, :math:`P_\pi^{-1} = P_\pi^\top`), only the arrangement: neighbouring
    pixels are no longer neighbours.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    permutation : torch.Tensor
        int64 permutation of ``range(H * W)``.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Raises
    ------
    TypeError
        ``permutation`` is not a 1-d int64 tensor, ``x`` not a tensor.
    ValueError
        ``permutation`` is not a permutation of ``range(H * W)``.

    Examples
    --------
    >>> x = torch.arange(4).reshape(1, 2, 2)
    >>> permute_pixels(x, torch.tensor([3, 2, 1, 0]))
    tensor([[[3, 2],
             [1, 0]]])

    See Also
    --------
    pixel_permutation : a fixed random permutation.
    absorb_input_permutation : the first layer of an MLP undoes it.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    x = check_tensor("x", x, 2, nonempty=True)
    h, w = x.shape[-2:]
    permutation = _permutation("permutation", permutation, h * w)
    flat = x.reshape(*x.shape[:-2], h * w)  # (..., HW)
    return flat[..., permutation.to(x.device)].reshape(x.shape)


def absorb_input_permutation(linear: nn.Linear, permutation: Tensor) -> nn.Linear:
    r"""The linear layer :math:`W' = W P_\pi^\top` with :math:`W' P_\pi x = W x` for all :math:`x`.

    Explanation
    -----------
    If the inputs are permuted, :math:`x'_i = x_{\pi(i)}`, then

    .. math:: (W' x')_o = \sum_i W'_{o,i}\, x_{\pi(i)} = \sum_j W_{o,j}\, x_j
              \quad\text{for}\quad W'_{o,i} = W_{o,\pi(i)},

    i.e. ``W' = W[:, π]``.  The gradient of a loss with respect to :math:`W'` is
    :math:`g x'^\top = g x^\top P_\pi^\top`, the gradient with respect to :math:`W` with its
    columns permuted in the same way; so gradient descent from :math:`W'_0 = W_0 P_\pi^\top`
    on permuted data keeps :math:`W'_t = W_t P_\pi^\top` at every step, and the two networks
    compute the same function throughout training.  (The same holds for any optimiser that
    acts entry by entry, such as momentum or Adam.)  For ``in_features = C H W`` with
    :math:`\pi` a permutation of the :math:`HW` pixels, the columns of every channel are
    permuted alike, matching :func:`permute_pixels`.

    Parameters
    ----------
    linear : torch.nn.Linear
    permutation : torch.Tensor
        int64 permutation of ``range(in_features)`` or of ``range(in_features // C)`` pixels
        of each of :math:`C` channels.

    Returns
    -------
    torch.nn.Linear
        A new layer (weights copied, columns permuted, bias unchanged).

    Raises
    ------
    TypeError
        ``linear`` is not an ``nn.Linear``, or ``permutation`` not an int64 vector.
    ValueError
        The permutation's length does not divide ``in_features``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lin = nn.Linear(4, 2)
    >>> p = torch.tensor([2, 0, 3, 1])
    >>> lin2 = absorb_input_permutation(lin, p)
    >>> x = torch.randn(3, 4)
    >>> torch.allclose(lin2(x[:, p]), lin(x), atol=1e-6)
    True

    See Also
    --------
    permute_pixels : the permutation of the inputs.
    dlmath.models.zoo.image_mlp : an MLP built with this permutation absorbed.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    if not isinstance(permutation, Tensor):
        raise TypeError("permutation must be a 1-d int64 tensor")
    n, d = permutation.numel(), linear.in_features
    if n == 0 or d % n:
        raise ValueError(f"permutation has {n} entries, which does not divide "
                         f"linear.in_features = {d}")
    permutation = _permutation("permutation", permutation, n)
    # column index c*HW + i of W' reads column c*HW + π(i) of W
    full = (torch.arange(d // n)[:, None] * n + permutation.cpu()[None, :]).reshape(-1)
    out = nn.Linear(d, linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        out.weight.copy_(linear.weight[:, full.to(linear.weight.device)])
        if linear.bias is not None:
            out.bias.copy_(linear.bias)
    return out.train(linear.training)


