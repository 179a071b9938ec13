"""Convolution as a matrix: ``vec(z) = M vec(x)``.

Scope: the matrix :math:`M` of a 2-D convolution layer (cross-correlation, as PyTorch's
``conv2d`` computes it, without bias) for any number of channels, stride, padding and
dilation per axis, and the padding modes ``zeros``, ``circular``, ``reflect`` and
``replicate``; both ways of flattening an image (row-major and column-major); a closed-form
formula for a single entry :math:`M_{ij}` (numeric, vectorised or symbolic); padding as a
matrix of its own.  For one channel, stride 1 and zero padding, :math:`M` is doubly block
Toeplitz; with circular "same" padding it is doubly block circulant.

Everything is built with index arithmetic (no Python loop over rows or columns); the sparse
variant never builds the dense matrix.  Chapter: :ref:`ch-conv-matrix`.

Convention: ``vec`` flattens each channel's :math:`H \\times W` image row by row
(``order="row"``, C order, what ``torch.flatten`` does) or column by column
(``order="col"``, the ``vec`` of linear algebra), and stacks the channels one after the
other, so :math:`M` is a :math:`C_{out} \\times C_{in}` grid of one-channel blocks in
either order.  Indices are 0-based.

References: Gray, "Toeplitz and Circulant Matrices: A Review" (2006); Dumoulin & Visin,
"A guide to convolution arithmetic for deep learning" (2016), for transposed convolution.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple, Union

import numpy as np
import sympy as sp
import torch

from dlmath._validate import (
    check_bool,
    check_choice,
    check_dtype,
    check_entries,
    check_int,
    check_size,
    check_tensor,
    int_tuple,
    is_int,
)
from dlmath.conv import _axis, _n_axes, conv_output_size, conv_transpose_output_size, same_padding

__all__ = [
    "PADDING_MODES",
    "ORDERS",
    "AffineMap",
    "vec",
    "unvec",
    "pad_source_index",
    "pad_matrix",
    "conv_matrix",
    "conv_matrix_entry",
    "conv_matrix_entry_sym",
    "conv_transpose_output_padding",
]

#: The padding modes of ``torch.nn.Conv2d``; each is a linear map of the input.
PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
#: How an image is flattened, row by row (C order) or column by column.
ORDERS = ("row", "col")

Index = Union[int, sp.Expr, torch.Tensor]


# --- argument checking ------------------------------------------------------------------


def _shape3(input_shape: object, name: str = "input_shape") -> tuple[int, int, int]:
    """``(C, H, W)`` from an input shape with or without the batch dimension in front."""
    if not isinstance(input_shape, (tuple, list, torch.Size)) or len(input_shape) not in (3, 4):
        raise ValueError(f"{name} must be (C_in, H, W) or (B, C_in, H, W), "
                         f"got {input_shape!r}")
    shape = [check_int(f"{name}[{k}]", v, 1) for k, v in enumerate(input_shape)]
    c, h, w = shape[-3:]
    return c, h, w


def _padding_pairs(padding: object, kernel: tuple[int, int], stride: tuple[int, int],
                   dilation: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(left, right)`` padding per axis (height, width), as ``torch.nn.Conv2d`` reads it.

    An int or a pair pads both sides; ``"valid"`` is no padding; ``"same"`` (stride 1 only)
    pads :math:`d(k-1)` in all, the odd one on the right.
    """
    if isinstance(padding, str):
        check_choice("padding", padding, ("same", "valid"))
        if padding == "valid":
            return (0, 0), (0, 0)
        if stride != (1, 1):
            raise ValueError(f"padding='same' is not supported for strided convolutions "
                             f"(stride {stride}), as in torch")
        return same_padding(kernel, dilation, asymmetric=True)
    ph, pw = int_tuple("padding", padding, 2, 0)
    return (ph, ph), (pw, pw)


def _out_size(axis: str, n: int, k: int, s: int, p: int, d: int) -> int:
    try:
        return conv_output_size(n, k, s, p, d)
    except ValueError as err:
        raise ValueError(f"along the {axis}: {err}") from None


# --- vec and its inverse ----------------------------------------------------------------


def vec(x: torch.Tensor, order: str = "row") -> torch.Tensor:
    """Flatten images channel by channel, each row- or column-major.

    Explanation
    -----------
    For ``x`` of shape ``(C, H, W)`` the result has length :math:`CHW`; entry
    ``c*H*W + r*W + q`` (``order="row"``) or ``c*H*W + q*H + r`` (``order="col"``) holds
    :math:`x_{c,r,q}`.  A leading batch dimension is kept.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(C, H, W)`` or ``(B, C, H, W)``.
    order : {"row", "col"}

    Returns
    -------
    torch.Tensor
        Shape ``(C*H*W,)`` or ``(B, C*H*W)``.

    Raises
    ------
    ValueError
        If ``x`` is not 3-D or 4-D, or ``order`` is unknown.

    Examples
    --------
    >>> x = torch.arange(6).reshape(1, 2, 3)      # [[0, 1, 2], [3, 4, 5]]
    >>> vec(x).tolist(), vec(x, "col").tolist()
    ([0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5])

    See Also
    --------
    unvec : the inverse.
    conv_matrix : the matrix that acts on ``vec(x)``.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    check_choice("order", order, ORDERS)
    check_tensor("x", x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must have shape (C, H, W) or (B, C, H, W), got {tuple(x.shape)}")
    if order == "col":
        x = x.transpose(-1, -2)  # (…, C, W, H): column-major is row-major of the transpose
    return x.flatten(start_dim=-3)


def unvec(v: torch.Tensor, shape: Sequence[int], order: str = "row") -> torch.Tensor:
    """Undo :func:`vec`: turn vectors of length ``C*H*W`` back into ``(C, H, W)`` images.

    Parameters
    ----------
    v : torch.Tensor
        Shape ``(C*H*W,)`` or ``(B, C*H*W)``.
    shape : (C, H, W)
    order : {"row", "col"}

    Returns
    -------
    torch.Tensor
        Shape ``(C, H, W)`` or ``(B, C, H, W)``.

    Raises
    ------
    ValueError
        If the length of ``v`` is not ``C*H*W`` or ``order`` is unknown.

    Examples
    --------
    >>> unvec(torch.tensor([0, 3, 1, 4, 2, 5]), (1, 2, 3), "col").tolist()
    [[[0, 1, 2], [3, 4, 5]]]

    See Also
    --------
    vec : the flattening it inverts.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    check_choice("order", order, ORDERS)
    check_tensor("v", v)
    c, h, w = _shape3(shape, "shape")
    if v.dim() not in (1, 2) or v.shape[-1] != c * h * w:
        raise ValueError(f"v must have last dimension C*H*W = {c * h * w}, "
                         f"got shape {tuple(v.shape)}")
    if order == "col":
        return v.unflatten(-1, (c, w, h)).transpose(-1, -2)
    return v.unflatten(-1, (c, h, w))


# --- padding as a linear map ------------------------------------------------------------


def pad_source_index(size: int, padding: int | tuple[int, int],
                     mode: str = "zeros") -> torch.Tensor:
    """For each position of a padded 1-D signal, the input position it copies (-1: zero).

    Explanation
    -----------
    Every padding mode is a linear map :math:`\\mathbb{R}^n \\to \\mathbb{R}^{n+p_0+p_1}`
    that copies one input entry (or writes a zero) to each padded position
    :math:`t = -p_0, \\dots, n + p_1 - 1`: ``zeros`` copies :math:`t` if
    :math:`0 \\le t < n`; ``circular`` copies :math:`t \\bmod n`; ``reflect`` mirrors
    about the end samples without repeating them (:math:`|t|`, then
    :math:`2(n-1) - t` beyond the end); ``replicate`` copies the nearest end,
    :math:`\\min(\\max(t, 0), n-1)`.  A 2-D padding is this map along each axis.

    Parameters
    ----------
    size : int
        Input length :math:`n \\ge 1`.
    padding : int or (int, int)
        Entries added before and after (one int: the same on both sides).
    mode : {"zeros", "circular", "reflect", "replicate"}

    Returns
    -------
    torch.Tensor
        int64, shape ``(size + p_0 + p_1,)``, values in ``-1 .. size-1``.

    Raises
    ------
    ValueError
        Unknown ``mode``; negative padding; ``reflect`` padding not smaller than ``size``
        (PyTorch's rule: a mirror image must not repeat).  ``circular`` padding larger
        than ``size`` wraps around more than once (PyTorch refuses it; here it is allowed).

    Examples
    --------
    >>> for mode in PADDING_MODES:
    ...     print(mode, pad_source_index(4, 2, mode).tolist())
    zeros [-1, -1, 0, 1, 2, 3, -1, -1]
    circular [2, 3, 0, 1, 2, 3, 0, 1]
    reflect [2, 1, 0, 1, 2, 3, 2, 1]
    replicate [0, 0, 0, 1, 2, 3, 3, 3]

    See Also
    --------
    pad_matrix : the same map as a matrix.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    n = check_int("size", size, 1)
    p0, p1 = int_tuple("padding", padding, 2, 0)
    check_choice("mode", mode, PADDING_MODES)
    check_entries(f"a signal of size {n} with padding {padding}", n + p0 + p1)
    if mode == "reflect" and max(p0, p1) >= n:
        raise ValueError(f"reflect padding {max(p0, p1)} must be smaller than the size {n}")
    t = torch.arange(-p0, n + p1)  # padded position, in input coordinates
    if mode == "zeros":
        return torch.where((t >= 0) & (t < n), t, -1)
    if mode == "circular":
        return t % n
    if mode == "replicate":
        return t.clamp(0, n - 1)
    t = t.abs()  # reflect about 0, then about n - 1
    return torch.where(t >= n, 2 * (n - 1) - t, t)


def pad_matrix(size: int, padding: int | tuple[int, int], mode: str = "zeros",
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The padding of a 1-D signal as a 0/1 matrix :math:`P` with ``pad(x) = P x``.

    Explanation
    -----------
    Row :math:`t` of :math:`P` has a single one in the column that
    :func:`pad_source_index` names, or is zero.  In 2-D, padding an :math:`H \\times W`
    image is :math:`P_H \\otimes P_W` on the row-major ``vec`` and
    :math:`P_W \\otimes P_H` on the column-major one.

    Parameters
    ----------
    size, padding, mode
        As in :func:`pad_source_index`.
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        Shape ``(size + p_0 + p_1, size)``.

    Raises
    ------
    ValueError
        As :func:`pad_source_index`.

    Examples
    --------
    >>> pad_matrix(3, 1, "replicate", dtype=torch.int64).tolist()
    [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    >>> pad_matrix(3, 1, "zeros").sum().item()
    3.0

    See Also
    --------
    pad_source_index : the index it is built from.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    check_dtype("dtype", dtype)
    src = pad_source_index(size, padding, mode)
    check_entries(f"the padding matrix of a signal of size {size} with padding {padding}",
                  len(src) * size)
    rows = torch.nonzero(src >= 0).flatten()
    out = torch.zeros(len(src), size, dtype=dtype)
    out[rows, src[rows]] = 1
    return out


# --- the convolution matrix -------------------------------------------------------------


def _tap_range(n_out: int, n_in: int, k: int, s: int, p: int, d: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Zero padding, one axis: for each output position i, the taps j in [lo, hi) that read
    an input pixel, i.e. 0 <= i*s - p + j*d < n_in (a contiguous range, possibly empty)."""
    start = np.arange(-p, n_out * s - p, s)  # input position of tap 0
    lo = np.minimum(np.maximum(-(start // d), 0), k)  # ceil(-start / d), within [0, k]
    hi = np.minimum((n_in - 1 - start) // d + 1, k)
    return lo, np.maximum(lo, hi)


def _sparse_zero_padding(weight: torch.Tensor, c_in: int, h: int, w: int, ho: int, wo: int,
                         stride: tuple[int, int], padding: tuple[int, int],
                         dilation: tuple[int, int], order: str, layout: str) -> torch.Tensor:
    """The sparse M for zero padding, written in place and already sorted.

    With zero padding the taps that read a pixel form a rectangle of the kernel for each
    output pixel: a range of taps along each axis.  Along the outer axis of the vec (the
    rows of the image for ``order="row"``) the output positions fall into a few runs with
    the same range (the interior, and the border positions at each end); within a run
    every output position has the same non-zeros up to a shift.  So one template of
    (row, column, weight index) entries per run is found on a small grid, then broadcast
    over the run straight into the index tensors of the result, in sorted order: each
    non-zero is written once per index tensor, and the values are one gather of the
    weights (so the result stays differentiable in ``weight``).  The index arithmetic runs
    in NumPy (a smaller cost per call than torch for the small arrays); the result is moved
    to the device of ``weight``.
    """
    c_out, _, kh, kw = weight.shape
    taps = kh * kw
    ax_h = (ho, h, kh, stride[0], padding[0], dilation[0])
    ax_w = (wo, w, kw, stride[1], padding[1], dilation[1])
    # (outputs, inputs, kernel, stride, padding, dilation) of the outer and the inner axis
    outer, inner = (ax_h, ax_w) if order == "row" else (ax_w, ax_h)
    (nx, _, kx, sx, px, dx), (ny, ny_in, ky, sy, py, dy) = outer, inner
    x_lo, x_hi = _tap_range(*outer)  # (n_x,)
    y_lo, y_hi = _tap_range(*inner)  # (n_y,)

    # runs of outer positions with the same tap range
    key = x_lo * (kx + 1) + x_hi
    bounds = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1, [nx]))
    starts, run_len = bounds[:-1], bounds[1:] - bounds[:-1]  # (G,)
    tx, ty = np.arange(kx), np.arange(ky)
    x_ok = (tx >= x_lo[starts, None]) & (tx < x_hi[starts, None])  # (G, k_x)
    y_ok = (ty >= y_lo[:, None]) & (ty < y_hi[:, None])  # (n_y, k_y)
    # each run's template: the non-zeros of one outer position in (y, c, t_x, t_y) order,
    # the order of the rows within the position and of the columns within a row
    ok = x_ok[:, None, None, :, None] & y_ok[None, :, None, None, :]  # (G, n_y, 1, k_x, k_y)
    if c_in > 1:
        ok = np.broadcast_to(ok, (len(starts), ny, c_in, kx, ky))
    run, y, c, a, b = np.nonzero(ok)
    t_col = c * (h * w) + a * (dx * ny_in) + (y * sy - py + b * dy)  # + (x s_x - p_x) n_y_in
    t_tap = c * taps + (a * ky + b if order == "row" else b * kx + a)  # index into w[o]
    t_len = np.bincount(run, minlength=len(starts))
    n_run = run_len * t_len
    nnz0 = int(n_run.sum())  # per output channel

    # the values: written like the indices, from a NumPy view of the weights, unless the
    # result must carry a gradient (or the dtype has no NumPy twin): then one torch gather
    wmat = weight.reshape(c_out, c_in * taps)
    w_np = None
    if not (wmat.requires_grad and torch.is_grad_enabled()):
        try:
            w_np = wmat.detach().cpu().numpy()
        except TypeError:  # bfloat16 and the like
            pass
    indices = np.empty((2, c_out, nnz0), dtype=np.int64)
    rows, cols = indices[0, 0], indices[1, 0]
    out = np.empty((c_out, nnz0), dtype=w_np.dtype) if w_np is not None else \
        np.empty(nnz0, dtype=np.int64)  # the values, or the weight index of each non-zero
    x = np.arange(nx)
    row_off, col_off = x * ny, (x * sx - px) * ny_in  # (n_x,)
    t0 = e0 = x0 = 0
    for n, t, e in zip(run_len.tolist(), t_len.tolist(), n_run.tolist()):
        if t:
            seg, tseg = slice(e0, e0 + e), slice(t0, t0 + t)
            np.add(row_off[x0:x0 + n, None], y[tseg], out=rows[seg].reshape(n, t))
            np.add(col_off[x0:x0 + n, None], t_col[tseg], out=cols[seg].reshape(n, t))
            if w_np is None:
                out[seg].reshape(n, t)[...] = t_tap[tseg]
            else:  # (C_out, n, t): a view, since only the contiguous last axis is split
                out[:, seg].reshape(c_out, n, t)[...] = w_np[:, None, t_tap[tseg]]
        t0, e0, x0 = t0 + t, e0 + e, x0 + n
    if c_out > 1:  # the same pattern for every output channel, further down the rows
        np.add(rows, (np.arange(1, c_out) * (nx * ny))[:, None], out=indices[0, 1:])
        indices[1, 1:] = cols

    dev = weight.device
    if w_np is None:
        vals = wmat.index_select(1, torch.from_numpy(out).to(dev)).reshape(-1)
    else:
        vals = torch.from_numpy(out).view(-1).to(dev)
    size = (c_out * ho * wo, c_in * h * w)
    if layout == "coo":
        return torch.sparse_coo_tensor(torch.from_numpy(indices).view(2, -1).to(dev), vals,
                                       size, is_coalesced=True, check_invariants=False)
    per_row = c_in * (x_hi - x_lo)[:, None] * (y_hi - y_lo)[None, :]  # (n_x, n_y) non-zeros
    crow = np.zeros(size[0] + 1, dtype=np.int64)
    np.cumsum(np.tile(per_row.reshape(-1), c_out), out=crow[1:])
    col = torch.from_numpy(indices[1]).view(-1).to(dev)
    with warnings.catch_warnings():  # torch calls CSR "beta"; the tensor itself is exact
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(crow).to(dev), col, vals, size,
                                       check_invariants=False)


class AffineMap(NamedTuple):
    """A convolution layer on ``vec``: ``vec(layer(x)) == matrix @ vec(x) + bias``.

    What :func:`conv_matrix` returns for a layer; unpack it as ``M, b = conv_matrix(...)``.

    Attributes
    ----------
    matrix : torch.Tensor
        :math:`M`, dense or sparse, as :func:`conv_matrix` builds it from the weight.
    bias : torch.Tensor
        :math:`b`, shape ``(C_out*H'*W',)``: the layer's bias of channel :math:`o` in each
        of the :math:`H'W'` rows of that channel (zeros for a layer without a bias).
    """

    matrix: torch.Tensor
    bias: torch.Tensor


def conv_matrix(weight: torch.Tensor | torch.nn.Conv2d, input_shape: Sequence[int],
                stride: Any = None, padding: Any = None, dilation: Any = None,
                padding_mode: str | None = None, order: str = "row", sparse: bool | str = False,
                *, groups: int | None = None) -> torch.Tensor | AffineMap:
    """The matrix :math:`M` with ``M @ vec(x) == vec(conv2d(x, weight, ...))``.

    Explanation
    -----------
    Output pixel :math:`(o, u, v)` of a convolution reads, for each input channel
    :math:`c` and kernel tap :math:`(a, b)`, the padded input at
    :math:`(u s_h + a d_h,\\; v s_w + b d_w)`, which the padding map
    (:func:`pad_source_index`) traces back to an input pixel :math:`(c, r, q)` or to a
    zero.  So :math:`M` has the entry :math:`w_{o,c,a,b}` in row ``vec``-index of
    :math:`(o, u, v)` and column ``vec``-index of :math:`(c, r, q)`; where several taps
    reach the same input pixel (reflect, replicate and circular padding near a border)
    their weights add up.  All :math:`C_{out} C_{in} H' W' k_h k_w` index pairs are
    computed at once by broadcasting.

    With zero padding, ``conv2d(x, weight)`` equals ``conv2d`` of the padded input with
    no padding, and for the other modes ``conv2d(F.pad(x, ..., mode), weight)``;
    :math:`M` is the product of the valid convolution's matrix and the padding matrix.
    With ``groups`` :math:`g`, output channels :math:`[jC_{out}/g, (j+1)C_{out}/g)` read
    only input channels :math:`[jC_{in}/g, (j+1)C_{in}/g)`: :math:`M` is block diagonal,
    one block per group.  ``padding="same"`` pads :math:`d(k-1)` along each axis, the odd
    one after (as ``torch.nn.Conv2d`` does), and then :math:`M` is the valid convolution's
    matrix times that padding's.

    The arguments are those of ``torch.nn.functional.conv2d`` (and ``padding_mode`` of
    ``torch.nn.Conv2d``).  Given an ``nn.Conv2d`` instead of a weight, the layer's own
    stride, padding, dilation, groups and padding mode are used, and the result is the
    affine map of the layer: ``M, b = conv_matrix(layer, input_shape)`` with
    ``M @ vec(x) + b == vec(layer(x))``, :math:`b` the layer's bias at every output pixel.

    Parameters
    ----------
    weight : torch.Tensor or torch.nn.Conv2d
        Shape ``(C_out, C_in/groups, k_h, k_w)``; :math:`M` gets its dtype and device (and
        is differentiable in it).  Or a layer, whose weight and bias are used.
    input_shape : (C_in, H, W) or (B, C_in, H, W)
        The batch size, if given, does not matter: :math:`M` acts on each example.
    stride, dilation : int or (int, int), optional
        Per axis (height, width), each >= 1; default 1.
    padding : int, (int, int), "valid" or "same", optional
        Added on both sides of each axis, >= 0; default 0.  ``"same"`` needs stride 1.
    padding_mode : {"zeros", "circular", "reflect", "replicate"}, optional
        Default ``"zeros"``.
    order : {"row", "col"}
        How ``vec`` flattens each channel of the input and of the output (see :func:`vec`).
    sparse : bool or {"coo", "csr"}
        ``False``: a dense tensor.  ``True`` or ``"coo"``: a coalesced sparse COO tensor;
        ``"csr"``: sparse CSR.  Sparse results never allocate the dense matrix: memory is
        proportional to the :math:`C_{out} (C_{in}/g) H' W' k_h k_w` non-zeros.
    groups : int, optional
        :math:`g \\ge 1`, dividing :math:`C_{in}` and :math:`C_{out}`; default 1.

    Returns
    -------
    torch.Tensor or AffineMap
        For a weight, :math:`M`, shape ``(C_out*H'*W', C_in*H*W)`` with :math:`H', W'` from
        :func:`dlmath.conv.conv_output_size`.  For a layer, ``AffineMap(matrix, bias)``.

    Raises
    ------
    ValueError
        The channels of ``weight`` and ``input_shape`` (or ``groups``) disagree; the dilated
        kernel is larger than the padded input; unknown ``padding_mode``, ``order``,
        ``padding`` or ``sparse``; ``padding="same"`` with a stride; reflect padding not
        smaller than the input; an out-of-range stride, padding or dilation.
    TypeError
        ``weight`` is neither a tensor nor an ``nn.Conv2d``; a size is not an int; stride,
        padding, dilation, padding mode or groups given together with a layer.

    Examples
    --------
    >>> w = torch.tensor([[[[1., 2.], [3., 4.]]]])         # one 2x2 kernel
    >>> M = conv_matrix(w, (1, 3, 3))
    >>> M.shape
    torch.Size([4, 9])
    >>> M[0].tolist()                                     # output (0, 0) reads x[0:2, 0:2]
    [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    >>> x = torch.arange(9.).reshape(1, 3, 3)
    >>> (M @ vec(x)).tolist() == torch.nn.functional.conv2d(x, w).flatten().tolist()
    True
    >>> S = conv_matrix(w, (1, 128, 128), sparse=True)     # dense would be 16129 x 16384
    >>> S.layout, S._nnz()
    (torch.sparse_coo, 64516)
    >>> layer = torch.nn.Conv2d(4, 6, 3, padding="same", groups=2).double()
    >>> M, b = conv_matrix(layer, (4, 5, 5))               # block diagonal: 2 groups
    >>> M.shape, M.dtype, b.shape
    (torch.Size([150, 100]), torch.float64, torch.Size([150]))
    >>> x = torch.randn(4, 5, 5, dtype=torch.float64)
    >>> torch.allclose(M @ vec(x) + b, vec(layer(x)))
    True
    >>> conv_matrix(w, (2, 3, 3))
    Traceback (most recent call last):
    ...
    ValueError: weight has C_in=1 input channels but input_shape has 2

    See Also
    --------
    conv_matrix_entry : which weight sits at a given entry, in closed form.
    pad_matrix : the padding modes as matrices.
    conv_transpose_output_padding : ``M.T`` as ``conv_transpose2d``.

    References
    ----------
    Gray (2006) for Toeplitz and circulant matrices.

    Chapter: :ref:`ch-conv-matrix`.
    """
    if isinstance(weight, torch.nn.Conv2d):
        layer = weight
        given = [name for name, v in (("stride", stride), ("padding", padding),
                                      ("dilation", dilation), ("padding_mode", padding_mode),
                                      ("groups", groups)) if v is not None]
        if given:
            raise TypeError(f"conv_matrix reads {', '.join(given)} from the layer "
                            f"{type(layer).__name__}: do not pass them with it")
        if isinstance(layer.weight, torch.nn.parameter.UninitializedParameter):
            raise ValueError(f"{type(layer).__name__} is lazy and not yet materialised: run a "
                             f"forward pass first")
        matrix = _matrix(layer.weight, input_shape, layer.stride, layer.padding, layer.dilation,
                         layer.padding_mode, order, sparse, layer.groups)
        pixels = matrix.shape[0] // layer.out_channels        # H' W' rows per output channel
        bias = layer.bias.repeat_interleave(pixels) if layer.bias is not None else \
            torch.zeros(matrix.shape[0], dtype=layer.weight.dtype, device=layer.weight.device)
        return AffineMap(matrix, bias)
    if isinstance(weight, torch.nn.Module):
        raise TypeError(f"conv_matrix builds the matrix of a 2-d convolution: give a "
                        f"torch.nn.Conv2d or its weight, got {type(weight).__name__}")
    return _matrix(weight, input_shape, 1 if stride is None else stride,
                   0 if padding is None else padding, 1 if dilation is None else dilation,
                   "zeros" if padding_mode is None else padding_mode, order, sparse,
                   1 if groups is None else groups)


def _matrix(weight: torch.Tensor, input_shape: Any, stride: Any, padding: Any, dilation: Any,
            padding_mode: str, order: str, sparse: Any, groups: Any) -> torch.Tensor:
    """Check the arguments of :func:`conv_matrix`; build ``M`` group by group."""
    check_tensor("weight", weight)
    if weight.dim() != 4 or 0 in weight.shape:
        raise ValueError(f"weight must have shape (C_out, C_in, k_h, k_w), each at least 1, "
                         f"got {tuple(weight.shape)}")
    c_in, h, w = _shape3(input_shape)
    c_out, wc_in, kh, kw = weight.shape
    g = check_int("groups", groups, 1)
    if wc_in * g != c_in:
        raise ValueError(f"weight has C_in={wc_in} input channels but input_shape has {c_in}"
                         if g == 1 else f"weight has C_in/groups={wc_in} input channels per "
                         f"group, with groups={g}, but input_shape has {c_in}")
    if c_out % g:
        raise ValueError(f"weight has C_out={c_out} output channels, not divisible by "
                         f"groups={g}")
    s, d = int_tuple("stride", stride, 2, 1), int_tuple("dilation", dilation, 2, 1)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    check_choice("order", order, ORDERS)
    if isinstance(sparse, bool) or type(sparse).__name__ == "bool_":
        layout = "coo" if check_bool("sparse", sparse) else None
    elif isinstance(sparse, str) and sparse in ("coo", "csr"):
        layout = sparse
    else:
        raise ValueError(f"sparse must be False, True, 'coo' or 'csr', got {sparse!r}")
    pads = _padding_pairs(padding, (kh, kw), s, d)
    if layout is None:                           # dense: (C_out H' W') x (C_in H W) entries
        ho, wo = (_out_size(axis, n + right - left, k, st, left, dl)
                  for axis, n, k, st, (left, right), dl
                  in zip(("height", "width"), (h, w), (kh, kw), s, pads, d))
        rows, cols = c_out * ho * wo, c_in * h * w
        check_entries(f"the dense {rows} x {cols} matrix for input_shape {tuple(input_shape)} "
                      f"(padding {padding}, stride {stride}, dilation {dilation})", rows * cols,
                      "pass sparse=True for a sparse matrix (one entry per weight tap and "
                      "output position)")
    symmetric = all(left == right for left, right in pads)
    if g == 1 and symmetric:
        return _conv_matrix(weight, c_in, h, w, s, (pads[0][0], pads[1][0]), d, padding_mode,
                            order, layout)

    def block(wt: torch.Tensor) -> torch.Tensor:     # one group, sparse blocks as COO
        part = None if layout is None else "coo"
        if symmetric:
            return _conv_matrix(wt, wc_in, h, w, s, (pads[0][0], pads[1][0]), d, padding_mode,
                                order, part)
        # asymmetric ("same" with an even span): the valid convolution of the padded image
        (top, bottom), (left, right) = pads
        valid = _conv_matrix(wt, wc_in, h + top + bottom, w + left + right, s, (0, 0), d,
                             "zeros", order, part)
        pad = _pad_map(wc_in, h, w, pads, padding_mode, order, layout is not None, wt.dtype,
                       wt.device)
        return valid @ pad if layout is None else torch.sparse.mm(valid, pad).coalesce()

    per_group = c_out // g
    blocks = [block(weight[j * per_group:(j + 1) * per_group]) for j in range(g)]
    if layout is None:
        return torch.block_diag(*blocks)
    coo = _block_diag_coo(blocks)
    if layout == "coo":
        return coo
    with warnings.catch_warnings():  # torch calls CSR "beta"; the conversion itself is exact
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


def _pad_map(c: int, h: int, w: int, pads: tuple[tuple[int, int], tuple[int, int]], mode: str,
             order: str, sparse: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The padding of ``c`` channels of ``h x w`` images as a 0/1 matrix on ``vec``."""
    src_h = pad_source_index(h, pads[0], mode).to(device)  # (H_p,): input row or -1
    src_w = pad_source_index(w, pads[1], mode).to(device)  # (W_p,)
    hp, wp = len(src_h), len(src_w)
    r, q = torch.arange(hp, device=device)[:, None], torch.arange(wp, device=device)[None, :]
    if order == "row":
        out_pos, in_pos = r * wp + q, src_h[:, None] * w + src_w[None, :]  # (H_p, W_p)
    else:
        out_pos, in_pos = r + q * hp, src_h[:, None] + src_w[None, :] * h
    reads = (src_h[:, None] >= 0) & (src_w[None, :] >= 0)              # not a zero
    ch = torch.arange(c, device=device)[:, None]
    rows = (ch * (hp * wp) + out_pos[reads]).reshape(-1)
    cols = (ch * (h * w) + in_pos[reads]).reshape(-1)
    size = (c * hp * wp, c * h * w)
    ones = torch.ones(len(rows), dtype=dtype, device=device)
    if sparse:
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), ones, size).coalesce()
    return torch.zeros(size, dtype=dtype, device=device).index_put((rows, cols), ones)


def _block_diag_coo(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Coalesced COO blocks on the diagonal of one coalesced COO matrix."""
    indices, values, rows, cols = [], [], 0, 0
    for b in blocks:
        b = b.coalesce()
        offset = torch.tensor([[rows], [cols]], device=b.device)
        indices.append(b.indices() + offset)
        values.append(b.values())
        rows, cols = rows + b.shape[0], cols + b.shape[1]
    return torch.sparse_coo_tensor(torch.cat(indices, 1), torch.cat(values), (rows, cols),
                                   is_coalesced=True, check_invariants=False)


def _conv_matrix(weight: torch.Tensor, c_in: int, h: int, w: int, stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int], padding_mode: str,
                 order: str, layout: str | None) -> torch.Tensor:
    """``M`` of one group, from checked arguments: pairs (height, width), the same padding on
    both sides of an axis, ``layout`` None (dense), ``"coo"`` or ``"csr"``."""
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = _out_size("height", h, kh, sh, ph, dh)
    wo = _out_size("width", w, kw, sw, pw, dw)
    dev = weight.device
    if layout is not None and padding_mode == "zeros":
        return _sparse_zero_padding(weight, c_in, h, w, ho, wo, (sh, sw), (ph, pw), (dh, dw),
                                    order, layout)

    # source pixel of padded row u*s_h + a*d_h (and column v*s_w + b*d_w); -1 means zero
    src_h = pad_source_index(h, ph, padding_mode).to(dev)
    src_w = pad_source_index(w, pw, padding_mode).to(dev)
    u, a = torch.arange(ho, device=dev), torch.arange(kh, device=dev)
    v, b = torch.arange(wo, device=dev), torch.arange(kw, device=dev)
    r = src_h[u[:, None] * sh + a[None, :] * dh]  # (H', k_h)
    q = src_w[v[:, None] * sw + b[None, :] * dw]  # (W', k_w)
    tap = a[:, None] * kw + b[None, :]  # (k_h, k_w): flat index of w[a, b]

    # output pixels P and taps T, each listed in the order of the vec, so that with zero
    # padding the (row, column) pairs come out sorted and distinct (no coalescing needed)
    if order == "row":  # pixels (u, v), taps (a, b): (H', W', k_h, k_w)
        r4, q4 = r[:, None, :, None], q[None, :, None, :]
        out_pos = (u[:, None] * wo + v[None, :]).reshape(-1)  # (P,)
        in_pos = (r4 * w + q4).reshape(ho * wo, kh * kw)  # (P, T)
        tap = tap.reshape(-1)  # (T,)
    else:  # pixels (v, u), taps (b, a): (W', H', k_w, k_h)
        r4, q4 = r[None, :, None, :], q[:, None, :, None]
        out_pos = (v[:, None] * ho + u[None, :]).reshape(-1)  # (P,)
        in_pos = (q4 * h + r4).reshape(wo * ho, kw * kh)  # (P, T)
        tap = tap.T.reshape(-1)  # (T,)
    valid = ((r4 >= 0) & (q4 >= 0)).reshape(in_pos.shape)  # (P, T): tap reads a pixel

    # channel blocks: row o*H'W' + out_pos, column c*HW + in_pos, value w[o, c, tap]
    full = (c_out, len(out_pos), c_in, len(tap))  # (C_out, P, C_in, T)
    keep = valid[None, :, None, :].expand(full)
    o = torch.arange(c_out, device=dev)[:, None, None, None]
    c = torch.arange(c_in, device=dev)[None, None, :, None]
    rows = (o * (ho * wo) + out_pos[None, :, None, None]).expand(full)[keep]  # (nnz,)
    cols = (c * (h * w) + in_pos[None, :, None, :]).expand(full)[keep]  # (nnz,)
    vals = weight.reshape(c_out, c_in, kh * kw)[:, None, :, tap].expand(full)[keep]  # (nnz,)

    size = (c_out * ho * wo, c_in * h * w)
    distinct = padding_mode == "zeros"  # other modes may send several taps to one pixel
    if layout is None:
        dense = torch.zeros(size, dtype=weight.dtype, device=dev)
        return dense.index_put((rows, cols), vals, accumulate=not distinct)
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, size,
                                  is_coalesced=distinct, check_invariants=False)
    if not distinct:
        coo = coo.coalesce()  # sort, and add the weights that reach the same pixel
    if layout == "coo":
        return coo
    with warnings.catch_warnings():  # torch calls CSR "beta"; the conversion itself is exact
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


# --- the entry formula ------------------------------------------------------------------


def _is_zero(x: Index) -> Any:
    return sp.Eq(x, 0) if isinstance(x, sp.Basic) else x == 0


def _all(conds: list[Any]) -> Any:
    if any(isinstance(cd, torch.Tensor) for cd in conds):
        return functools.reduce(operator.and_, conds)
    if any(isinstance(cd, sp.Basic) for cd in conds):
        return sp.And(*conds)
    return all(conds)


def _entry_one_channel(i: Index, j: Index, h: Any, w: Any, ho: Any, wo: Any, kh: Any, kw: Any,
                       s: tuple, p: tuple, d: tuple, order: str) -> tuple[Any, Any, Any]:
    # row i <-> output pixel (u, v); column j <-> input pixel (r, q)
    if order == "row":
        u, v, r, q = i // wo, i % wo, j // w, j % w
    else:
        u, v, r, q = i % ho, i // ho, j % h, j // h
    # r = u s_h - p_h + a d_h  <=>  a = (r - u s_h + p_h) / d_h, an integer in [0, k_h)
    num_h = r - u * s[0] + p[0]
    num_w = q - v * s[1] + p[1]
    a = num_h if d[0] == 1 else num_h // d[0]
    b = num_w if d[1] == 1 else num_w // d[1]
    nonzero = _all([_is_zero(num_h % d[0]), _is_zero(num_w % d[1]),
                    a >= 0, a < kh, b >= 0, b < kw])
    return a, b, nonzero


def _check_index(name: str, idx: object, n: int) -> None:
    """A matrix index in [0, n): an int, an integer tensor, or a SymPy expression."""
    if isinstance(idx, torch.Tensor):
        check_tensor(name, idx, integer=True)
        bad = (idx < 0) | (idx >= n)
        if bool(bad.any()):
            raise ValueError(f"{name} must be in [0, {n}), got {idx[bad].flatten()[0].item()}")
    elif isinstance(idx, sp.Basic):
        check_size(name, idx, 0)                 # an integer >= 0 unless provably not
    elif not is_int(idx):
        raise TypeError(f"{name} must be an int, an integer tensor or a sympy expression, "
                        f"got {type(idx).__name__} {idx!r}")
    elif not 0 <= idx < n:
        raise ValueError(f"{name} must be in [0, {n}), got {idx}")


def conv_matrix_entry(i: Index, j: Index, input_shape: Sequence[int],
                      kernel_shape: Sequence[int], stride: Any = 1, padding: Any = 0,
                      dilation: Any = 1, order: str = "row") -> tuple[Any, Any, Any, Any, Any]:
    """Which weight sits at :math:`M_{ij}` (zero padding), in closed form.

    Explanation
    -----------
    Split the row index into output channel and pixel, :math:`i \\mapsto (o, u, v)`, and
    the column index into input channel and pixel, :math:`j \\mapsto (c, r, q)`: with
    ``order="row"``, :math:`o = \\lfloor i / H'W' \\rfloor`,
    :math:`u = \\lfloor (i \\bmod H'W') / W' \\rfloor`, :math:`v = i \\bmod W'`
    (``"col"`` swaps the roles of the two axes).  Output :math:`(u, v)` reads input row
    :math:`r = u s_h - p_h + a d_h`, so

    .. math:: a = \\frac{r - u s_h + p_h}{d_h}, \\qquad b = \\frac{q - v s_w + p_w}{d_w},

    and :math:`M_{ij} = w_{o,c,a,b}` when both are integers with :math:`0 \\le a < k_h`,
    :math:`0 \\le b < k_w`; otherwise :math:`M_{ij} = 0`.

    Only ``//``, ``%`` and comparisons are used, so ``i`` and ``j`` may be ints, integer
    torch tensors (broadcast, to evaluate many entries at once) or SymPy expressions.

    Parameters
    ----------
    i, j : int, torch.Tensor or sympy.Expr
        Row and column of :math:`M` (0-based).
    input_shape : (C_in, H, W) or (B, C_in, H, W)
    kernel_shape : (C_out, C_in, k_h, k_w)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        As in :func:`conv_matrix` (zero padding only); with ``"same"``, :math:`p` is the
        padding before each axis.
    order : {"row", "col"}

    Returns
    -------
    (o, c, a, b, nonzero)
        :math:`M_{ij}` is ``weight[o, c, a, b]`` where ``nonzero`` holds, else 0 (then
        ``a`` or ``b`` may be out of range).  ``nonzero`` is a bool, a bool tensor or a
        SymPy condition.

    Raises
    ------
    ValueError
        Channel mismatch, kernel larger than the padded input, unknown ``order``, or an
        int ``i``/``j`` outside the matrix.

    Examples
    --------
    >>> conv_matrix_entry(0, 4, (1, 3, 3), (1, 1, 2, 2))   # M[0, 4] = w[0, 0, 1, 1]
    (0, 0, 1, 1, True)
    >>> conv_matrix_entry(0, 2, (1, 3, 3), (1, 1, 2, 2))[-1]
    False
    >>> import sympy as sp
    >>> i, j = sp.symbols("i j", integer=True, nonnegative=True)
    >>> o, c, a, b, nz = conv_matrix_entry(i, j, (1, 4, 4), (1, 1, 3, 3), order="col")
    >>> a, b
    (-Mod(i, 2) + Mod(j, 4), -floor(i/2) + floor(j/4))

    See Also
    --------
    conv_matrix_entry_sym : the formula with symbolic sizes.
    conv_matrix : the whole matrix.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    check_choice("order", order, ORDERS)
    c_in, h, w = _shape3(input_shape)
    if not isinstance(kernel_shape, (tuple, list, torch.Size)) or len(kernel_shape) != 4:
        raise ValueError(f"kernel_shape must be (C_out, C_in, k_h, k_w), got {kernel_shape!r}")
    c_out, kc_in, kh, kw = (check_int(f"kernel_shape[{k}]", v, 1)
                            for k, v in enumerate(kernel_shape))
    if kc_in != c_in:
        raise ValueError(f"kernel_shape has C_in={kc_in} input channels but input_shape has {c_in}")
    s, d = int_tuple("stride", stride, 2, 1), int_tuple("dilation", dilation, 2, 1)
    pads = _padding_pairs(padding, (kh, kw), s, d)
    p = (pads[0][0], pads[1][0])                  # the padding before each axis
    ho, wo = (_out_size(axis, n + right - left, k, st, left, dl)   # n + left + right padded
              for axis, n, k, st, (left, right), dl
              in zip(("height", "width"), (h, w), (kh, kw), s, pads, d))
    for name, idx, n in (("i", i, c_out * ho * wo), ("j", j, c_in * h * w)):
        _check_index(name, idx, n)
    # with one channel the split is the identity; skipping it keeps symbolic results short
    o, i_pix = (0, i) if c_out == 1 else (i // (ho * wo), i % (ho * wo))
    c, j_pix = (0, j) if c_in == 1 else (j // (h * w), j % (h * w))
    a, b, nonzero = _entry_one_channel(i_pix, j_pix, h, w, ho, wo, kh, kw, s, p, d, order)
    return o, c, a, b, nonzero


def conv_matrix_entry_sym(order: str = "row", stride: Any = 1, padding: Any = 0,
                          dilation: Any = 1) -> tuple[tuple[sp.Expr, sp.Expr, sp.Basic],
                                                      tuple[sp.Symbol, ...]]:
    """The entry formula of a one-channel convolution matrix with symbolic sizes.

    Explanation
    -----------
    The same formula as :func:`conv_matrix_entry`, for one input and one output channel,
    with the image size :math:`H \\times W` and kernel size :math:`k_h \\times k_w` as
    SymPy symbols (and stride, padding, dilation as given: ints or your own symbols,
    the same on both axes).  :math:`H', W'` come from
    :func:`dlmath.conv.conv_output_size`.

    Parameters
    ----------
    order : {"row", "col"}
    stride, padding, dilation : int or sympy.Expr

    Returns
    -------
    ((a, b, nonzero), (i, j, H, W, k_h, k_w))
        :math:`M_{ij} = w_{a,b}` where ``nonzero`` holds, else 0; and the symbols.

    Raises
    ------
    ValueError
        If ``order`` is unknown.

    Examples
    --------
    >>> (a, b, nz), (i, j, H, W, kh, kw) = conv_matrix_entry_sym("col")
    >>> a
    -Mod(i, H - k_h + 1) + Mod(j, H)
    >>> b
    floor(j/H) - floor(i/(H - k_h + 1))
    >>> nz.subs({i: 0, j: 5, H: 4, W: 4, kh: 3, kw: 3})     # M[0, 5] = w[1, 1]
    True

    See Also
    --------
    conv_matrix_entry : numeric and vectorised version, any number of channels.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    check_choice("order", order, ORDERS)
    i, j = sp.symbols("i j", integer=True, nonnegative=True)
    h, w, kh, kw = sp.symbols("H W k_h k_w", integer=True, positive=True)
    ho = conv_output_size(h, kh, stride, padding, dilation)
    wo = conv_output_size(w, kw, stride, padding, dilation)
    s, p, d = (stride, stride), (padding, padding), (dilation, dilation)
    a, b, nonzero = _entry_one_channel(i, j, h, w, ho, wo, kh, kw, s, p, d, order)
    return (a, b, nonzero), (i, j, h, w, kh, kw)


def conv_transpose_output_padding(size: Any, kernel_size: Any, stride: Any = 1,
                                  padding: Any = 0, dilation: Any = 1) -> Any:
    """The ``output_padding`` for which ``conv_transpose2d`` returns the input size.

    Explanation
    -----------
    ``conv_transpose2d(g, weight, stride, padding, output_padding, dilation)`` computes
    :math:`M^\\top g` (the gradient of the convolution with respect to its input).  Its
    output length is :math:`(n'-1)s - 2p + d(k-1) + 1 + \\text{output\\_padding}`; the
    convolution's floor may have dropped up to :math:`s-1` input positions, which
    ``output_padding`` restores:
    :math:`n - [(n'-1)s - 2p + d(k-1) + 1] = (n + 2p - d(k-1) - 1) \\bmod s`.

    Parameters
    ----------
    size, kernel_size, stride, padding, dilation : int, sympy.Expr or tuple of them
        As in :func:`dlmath.conv.conv_output_size` (a tuple: one per axis).

    Returns
    -------
    int or sympy.Expr, or a tuple of them (one per axis)
        In ``0 .. stride-1``.

    Raises
    ------
    ValueError, TypeError
        As :func:`dlmath.conv.conv_output_size`, and when the padding is so large that the
        transposed convolution would have no output before ``output_padding``.

    Examples
    --------
    >>> conv_transpose_output_padding(7, 3, stride=2)
    0
    >>> conv_transpose_output_padding(8, 3, stride=2)      # floor((8-3)/2) drops one column
    1
    >>> conv_transpose_output_padding((7, 8), 3, stride=2)  # per axis, as ConvTranspose2d takes it
    (0, 1)

    See Also
    --------
    conv_matrix : the matrix whose transpose ``conv_transpose2d`` applies.
    dlmath.conv.conv_transpose_output_size : the size ``conv_transpose2d`` returns.

    References
    ----------
    Chapter: :ref:`ch-conv-matrix`.
    """
    n_axes = _n_axes(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                     dilation=dilation)
    if n_axes is not None:
        return tuple(conv_transpose_output_padding(*(_axis(v, i) for v in
                                                     (size, kernel_size, stride, padding,
                                                      dilation)))
                     for i in range(n_axes))
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    return size - conv_transpose_output_size(out, kernel_size, stride, padding, 0, dilation)
