"""Attention written from its formulas: scaled dot-product, multi-head, masks, positions.

Scope: scaled dot-product attention with boolean, additive and causal masks; multi-head
attention from explicit projection matrices; and the small helpers a transformer needs
around them (splitting heads, a causal mask, sinusoidal positional encodings, rotary
position embeddings).  Each is checked against PyTorch in ``tests/test_attention.py``.
Chapter: :ref:`ch-hopfield` (attention as a Hopfield update); the transformer chapter
builds on these functions.

Convention: sequences are rows, ``Q`` of shape ``(..., L, d_k)`` holds L queries, ``K``
``(..., S, d_k)`` and ``V`` ``(..., S, d_v)`` hold S keys and values; projections act on
the right, ``Q = X W_Q`` with ``W_Q`` of shape ``(d_model, h d_k)`` as in Vaswani et al.
(``torch.nn.Linear`` stores the transpose).  A boolean mask is ``True`` where a query may
attend to a key (the convention of ``torch.nn.functional.scaled_dot_product_attention``;
``torch.nn.MultiheadAttention`` uses the opposite one).

References: A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017; J. Su et al.,
"RoFormer: Enhanced transformer with rotary position embedding", Neurocomputing 2024.
"""

from __future__ import annotations

import math

import torch

from dlmath._validate import (
    check_bool,
    check_device,
    check_dtype,
    check_entries,
    check_int,
    check_number,
    check_tensor,
)

__all__ = [
    "attention_weights",
    "scaled_dot_product_attention",
    "causal_mask",
    "split_heads",
    "merge_heads",
    "multi_head_attention",
    "sinusoidal_positional_encoding",
    "rotary_embedding",
]


def _same_kind(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``t`` must have the dtype of ``ref`` and batch dimensions that broadcast with it."""
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name}, {ref.dtype}, got {t.dtype}")
    if t.dim() > 2 and ref.dim() > 2:
        try:
            torch.broadcast_shapes(t.shape[:-2], ref.shape[:-2])
        except RuntimeError:
            raise ValueError(f"the batch dimensions of {name} {tuple(t.shape[:-2])} and "
                             f"{ref_name} {tuple(ref.shape[:-2])} do not broadcast") from None


def attention_weights(Q: torch.Tensor, K: torch.Tensor, mask: torch.Tensor | None = None, *,
                      is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    r"""Attention probabilities :math:`A = \operatorname{softmax}(QK^\top / \sqrt{d_k} + \text{mask})`.

    Explanation
    -----------
    Row :math:`i` of :math:`A` is a probability vector over the keys: how much query
    :math:`i` takes from each value.  A boolean ``mask`` removes the keys where it is
    ``False`` (their score becomes :math:`-\infty`); a floating ``mask`` is added to the
    scores.  ``is_causal=True`` lets query :math:`i` see keys :math:`j \le i` only.  A query
    that may see no key gets a row of zeros (as PyTorch does) instead of ``nan``.

    Parameters
    ----------
    Q : torch.Tensor, shape (..., L, d_k)
    K : torch.Tensor, shape (..., S, d_k)
    mask : torch.Tensor, optional
        Boolean or floating, broadcastable to ``(..., L, S)``.
    is_causal : bool
        Apply :func:`causal_mask`; not together with ``mask``.
    scale : float, optional
        Multiplies the scores; default :math:`1/\sqrt{d_k}`.

    Returns
    -------
    torch.Tensor, shape (..., L, S)

    Examples
    --------
    >>> Q = torch.tensor([[1., 0.], [0., 1.]])
    >>> attention_weights(Q, Q, scale=1.0).round(decimals=4)
    tensor([[0.7311, 0.2689],
            [0.2689, 0.7311]])
    >>> attention_weights(Q, Q, is_causal=True).round(decimals=4)
    tensor([[1.0000, 0.0000],
            [0.3302, 0.6698]])

    See Also
    --------
    scaled_dot_product_attention : multiplies these weights by the values.
    causal_mask

    References
    ----------
    Vaswani et al. (2017), Eq. (1).  Chapter: :ref:`ch-hopfield`.
    """
    Q = check_tensor("Q", Q, 2, floating=True, real=True)
    K = check_tensor("K", K, 2, floating=True, real=True)
    _same_kind("K", K, "Q", Q)
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"Q and K must have the same last dimension d_k, got {Q.shape[-1]} and {K.shape[-1]}")
    if check_bool("is_causal", is_causal) and mask is not None:
        raise ValueError("give either mask or is_causal=True, not both")
    if scale is None:
        scale = 1.0 / math.sqrt(Q.shape[-1])
    else:
        scale = check_number("scale", scale, positive=True)
        if scale > torch.finfo(Q.dtype).max:     # it would be inf in Q's dtype: inf * 0 = nan
            raise ValueError(f"scale must be representable in {Q.dtype} (at most "
                             f"{torch.finfo(Q.dtype).max:.3g}), got {scale!r}")
    L, S = Q.shape[-2], K.shape[-2]
    # S_ij = scale * sum_e Q_ie K_je                               (..., L, S)
    scores = scale * torch.einsum("...ie,...je->...ij", Q, K)
    if is_causal:
        mask = causal_mask(L, S, device=Q.device)
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores "
                             f"of shape {tuple(scores.shape)} (..., L, S)") from None
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, -torch.inf)
        elif mask.is_floating_point():
            scores = scores + mask.to(scores.dtype)      # a float64 mask keeps float32 scores
        else:
            raise TypeError(f"mask must be boolean or floating, got {mask.dtype}")
    # rows in which every key is masked: a row of zeros, not nan
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    # A_ij = exp(S_ij) / sum_j' exp(S_ij')                         (..., L, S)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)


def scaled_dot_product_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                                 mask: torch.Tensor | None = None, *, is_causal: bool = False,
                                 scale: float | None = None) -> torch.Tensor:
    r"""Scaled dot-product attention :math:`\operatorname{softmax}(QK^\top/\sqrt{d_k})\,V`.

    Explanation
    -----------
    Each output row is the average of the value rows weighted by
    :func:`attention_weights`.  With keys and values equal to stored patterns ``X``, a
    single query ``q`` and ``scale = beta`` this is the Hopfield update
    :math:`X^\top\operatorname{softmax}(\beta Xq)` (:func:`dlmath.hopfield.update`).

    Parameters
    ----------
    Q : torch.Tensor, shape (..., L, d_k)
    K : torch.Tensor, shape (..., S, d_k)
    V : torch.Tensor, shape (..., S, d_v)
    mask : torch.Tensor, optional
        Boolean (``True`` = may attend) or additive float mask, broadcastable to (..., L, S).
    is_causal : bool
        Query :math:`i` sees keys :math:`j \le i` only.
    scale : float, optional
        Default :math:`1/\sqrt{d_k}`.

    Returns
    -------
    torch.Tensor, shape (..., L, d_v)

    Raises
    ------
    ValueError
        If the shapes do not fit together or both ``mask`` and ``is_causal`` are given.

    Examples
    --------
    >>> Q = torch.zeros(1, 2); K = torch.zeros(3, 2); V = torch.tensor([[0.], [3.], [6.]])
    >>> scaled_dot_product_attention(Q, K, V)          # equal scores: the mean of the values
    tensor([[3.]])
    >>> scaled_dot_product_attention(torch.ones(2, 4, 5, 8), torch.ones(2, 4, 7, 8),
    ...                              torch.ones(2, 4, 7, 3)).shape
    torch.Size([2, 4, 5, 3])

    See Also
    --------
    attention_weights, multi_head_attention
    dlmath.hopfield.update : the same map read as one step of a Hopfield network.

    References
    ----------
    Vaswani et al. (2017), Eq. (1).  Chapter: :ref:`ch-hopfield`.
    """
    V = check_tensor("V", V, 2, floating=True, real=True)
    K = check_tensor("K", K, 2, floating=True, real=True)
    _same_kind("V", V, "K", K)
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V must hold the same number of rows S, got {K.shape[-2]} and {V.shape[-2]}")
    A = attention_weights(Q, K, mask, is_causal=is_causal, scale=scale)   # (..., L, S)
    # Z_ic = sum_j A_ij V_jc                                       (..., L, d_v)
    return torch.einsum("...ij,...jc->...ic", A, V)


def causal_mask(L: int, S: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    r"""Boolean mask that lets query :math:`i` attend to keys :math:`j \le i`.

    Parameters
    ----------
    L : int
        Number of queries, >= 1.
    S : int, optional
        Number of keys, >= 1; default ``L``.  Aligned at the top left, as
        ``is_causal=True`` in PyTorch.
    device : torch.device or str, optional

    Returns
    -------
    torch.Tensor of bool, shape (L, S)

    Examples
    --------
    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)

    See Also
    --------
    attention_weights

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    L = check_int("L", L, 1)
    S = L if S is None else check_int("S", S, 1)
    check_entries(f"the (L, S) = ({L}, {S}) mask", L * S)
    device = check_device("device", device)
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    r"""Reshape ``(..., T, h*d)`` into ``(..., h, T, d)``: one slice per head.

    Explanation
    -----------
    Head :math:`h` gets the columns :math:`h d, \dots, (h+1)d - 1` of the projected
    features, the layout of ``torch.nn.MultiheadAttention``.

    Parameters
    ----------
    x : torch.Tensor, shape (..., T, h*d)
    num_heads : int
        h >= 1, dividing the last dimension.

    Returns
    -------
    torch.Tensor, shape (..., h, T, d)

    Raises
    ------
    ValueError
        If ``num_heads`` does not divide the last dimension.

    Examples
    --------
    >>> split_heads(torch.arange(12.).reshape(2, 6), num_heads=3)[1]
    tensor([[2., 3.],
            [8., 9.]])

    See Also
    --------
    merge_heads : the inverse.
    multi_head_attention

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    x = check_tensor("x", x, 2, floating=True)
    num_heads = check_int("num_heads", num_heads, 1)
    C = x.shape[-1]
    if C % num_heads:
        raise ValueError(f"the last dimension {C} is not divisible by num_heads {num_heads}")
    # (..., T, h*d) -> (..., T, h, d) -> (..., h, T, d)
    return x.unflatten(-1, (num_heads, C // num_heads)).transpose(-3, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Reshape ``(..., h, T, d)`` into ``(..., T, h*d)``, concatenating the heads.

    Parameters
    ----------
    x : torch.Tensor, shape (..., h, T, d)

    Returns
    -------
    torch.Tensor, shape (..., T, h*d)

    Examples
    --------
    >>> x = torch.randn(2, 5, 12)
    >>> bool((merge_heads(split_heads(x, 4)) == x).all())
    True

    See Also
    --------
    split_heads : the inverse.

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    x = check_tensor("x", x, 3, floating=True)
    # (..., h, T, d) -> (..., T, h, d) -> (..., T, h*d)
    return x.transpose(-3, -2).flatten(-2)


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor, W_o: torch.Tensor,
                         num_heads: int, *, b_q: torch.Tensor | None = None,
                         b_k: torch.Tensor | None = None, b_v: torch.Tensor | None = None,
                         b_o: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                         is_causal: bool = False,
                         return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Multi-head attention from explicit projection matrices.

    Explanation
    -----------
    .. math:: \operatorname{head}_h = \operatorname{Attention}(Q W_Q^{(h)}, K W_K^{(h)}, V W_V^{(h)}),
              \qquad \operatorname{MHA} = [\operatorname{head}_1, \dots, \operatorname{head}_H]\, W_O ,

    where :math:`W_Q^{(h)}` is the h-th block of ``d_k = W_q.shape[1] / num_heads`` columns
    of ``W_q`` (likewise for ``W_k`` and ``W_v``).  Biases, if given, are added after each
    projection.  This equals ``torch.nn.MultiheadAttention(batch_first=True)`` with
    ``in_proj_weight = cat(W_q, W_k, W_v).T`` and ``out_proj.weight = W_o.T``.

    Parameters
    ----------
    query : torch.Tensor, shape (..., L, d_model)
    key : torch.Tensor, shape (..., S, d_key)
    value : torch.Tensor, shape (..., S, d_value)
    W_q : torch.Tensor, shape (d_model, H d_k)
    W_k : torch.Tensor, shape (d_key, H d_k)
    W_v : torch.Tensor, shape (d_value, H d_v)
    W_o : torch.Tensor, shape (H d_v, d_out)
    num_heads : int
        H; must divide the columns of ``W_q`` and ``W_v``.
    b_q, b_k, b_v, b_o : torch.Tensor, optional
        Biases of shapes (H d_k,), (H d_k,), (H d_v,), (d_out,).
    mask : torch.Tensor, optional
        As in :func:`attention_weights`, broadcastable to (..., H, L, S).
    is_causal : bool
    return_weights : bool
        Also return the attention weights of every head.

    Returns
    -------
    torch.Tensor, shape (..., L, d_out)
        And the weights, shape (..., H, L, S), if ``return_weights``.

    Examples
    --------
    >>> x = torch.randn(2, 5, 8)
    >>> W = [torch.randn(8, 8) for _ in range(4)]
    >>> out, A = multi_head_attention(x, x, x, *W, num_heads=2, return_weights=True)
    >>> out.shape, A.shape
    (torch.Size([2, 5, 8]), torch.Size([2, 2, 5, 5]))

    See Also
    --------
    scaled_dot_product_attention, split_heads, merge_heads

    References
    ----------
    Vaswani et al. (2017), section 3.2.2.  Chapter: :ref:`ch-transformers`.
    """
    named = (("query", query), ("key", key), ("value", value), ("W_q", W_q), ("W_k", W_k),
             ("W_v", W_v), ("W_o", W_o))
    for name, t in named:
        check_tensor(name, t, 2, floating=True, real=True, nonempty=True)
        _same_kind(name, t, "query", query)
    check_bool("is_causal", is_causal)
    check_bool("return_weights", return_weights)
    for name, (x, W) in (("query/W_q", (query, W_q)), ("key/W_k", (key, W_k)), ("value/W_v", (value, W_v))):
        if W.ndim != 2 or x.shape[-1] != W.shape[0]:
            raise ValueError(f"{name}: the input's last dimension {x.shape[-1]} must equal the rows of "
                             f"the (2-D) projection, got projection shape {tuple(W.shape)}")
    if W_q.shape[1] != W_k.shape[1]:
        raise ValueError(f"W_q and W_k must have the same number of columns H*d_k, got {W_q.shape[1]} and {W_k.shape[1]}")
    if W_o.ndim != 2 or W_o.shape[0] != W_v.shape[1]:
        raise ValueError(f"W_o must have shape (H*d_v, d_out) with H*d_v = {W_v.shape[1]} (the "
                         f"columns of W_v), got {tuple(W_o.shape)}")
    for name, b, W, w_name in (("b_q", b_q, W_q, "W_q"), ("b_k", b_k, W_k, "W_k"),
                               ("b_v", b_v, W_v, "W_v"), ("b_o", b_o, W_o, "W_o")):
        if b is not None:
            check_tensor(name, b, 1, floating=True, real=True)
            _same_kind(name, b, "query", query)
            if b.shape != (W.shape[1],):
                raise ValueError(f"{name} must have shape ({W.shape[1]},), the columns of "
                                 f"{w_name}, got {tuple(b.shape)}")
    num_heads = check_int("num_heads", num_heads, 1)
    for name, W in (("W_q", W_q), ("W_v", W_v)):
        if W.shape[1] % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide the columns of {name}, {W.shape[1]}")

    def project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        y = x @ W                                   # (..., T, H*d)
        return y if b is None else y + b

    q = split_heads(project(query, W_q, b_q), num_heads)   # (..., H, L, d_k)
    k = split_heads(project(key, W_k, b_k), num_heads)     # (..., H, S, d_k)
    v = split_heads(project(value, W_v, b_v), num_heads)   # (..., H, S, d_v)
    A = attention_weights(q, k, mask, is_causal=is_causal)  # (..., H, L, S)
    heads = torch.einsum("...hij,...hjc->...hic", A, v)    # (..., H, L, d_v)
    out = project(merge_heads(heads), W_o, b_o)            # (..., L, d_out)
    return (out, A) if return_weights else out


def sinusoidal_positional_encoding(num_positions: int, dim: int, base: float = 10000.0, *,
                                   dtype: torch.dtype = torch.float32,
                                   device: torch.device | str | None = None) -> torch.Tensor:
    r"""The sinusoidal positional encodings of Vaswani et al.

    Explanation
    -----------
    .. math:: P_{t, 2i} = \sin(t\,\omega_i), \quad P_{t, 2i+1} = \cos(t\,\omega_i),
              \qquad \omega_i = \text{base}^{-2i/d} .

    Each pair of columns turns at its own frequency, so :math:`P_{t+k}` is :math:`P_t`
    rotated pair by pair by angles :math:`k\omega_i`: a fixed linear map of :math:`P_t`
    that depends on the offset :math:`k` only, and :math:`P_t^\top P_{t+k}` depends only
    on :math:`k`.

    Parameters
    ----------
    num_positions : int
        Positions :math:`t = 0, \dots, T-1`, T >= 1.
    dim : int
        Even encoding dimension :math:`d` >= 2.
    base : float
        > 1.
    dtype, device
        Of the result.

    Returns
    -------
    torch.Tensor, shape (num_positions, dim)

    Examples
    --------
    >>> sinusoidal_positional_encoding(2, 4).round(decimals=4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])

    See Also
    --------
    rotary_embedding : rotates queries and keys instead of adding a vector.

    References
    ----------
    Vaswani et al. (2017), section 3.5.  Chapter: :ref:`ch-transformers`.
    """
    check_int("num_positions", num_positions, 1)
    if check_int("dim", dim, 2) % 2:
        raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
    check_entries(f"the (num_positions, dim) = ({num_positions}, {dim}) encoding",
                  num_positions * dim)
    base = check_number("base", base, interval="(1, inf)")
    check_dtype("dtype", dtype, floating=True)     # sines and cosines in [-1, 1]
    device = check_device("device", device)
    t = torch.arange(num_positions, dtype=torch.float64, device=device)       # (T,)
    # omega_i = base^(-2i/d)                                       (d/2,)
    omega = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angle = t[:, None] * omega[None, :]                                      # (T, d/2)
    # interleave: column 2i is sin, column 2i+1 is cos             (T, d)
    P = torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(-2)
    return P.to(dtype)


def rotary_embedding(x: torch.Tensor, positions: torch.Tensor | None = None,
                     base: float = 10000.0) -> torch.Tensor:
    r"""Rotary position embedding (RoPE): rotate each pair of features by a position angle.

    Explanation
    -----------
    For a vector :math:`x` at position :math:`m`, the pair
    :math:`(x_{2i}, x_{2i+1})` is rotated by the angle :math:`m\,\omega_i`,
    :math:`\omega_i = \text{base}^{-2i/d}`.  Rotations are orthogonal and compose
    additively, so for a query at :math:`m` and a key at :math:`n`,
    :math:`\langle R_m q, R_n k\rangle = \langle q, R_{n-m} k\rangle` depends on the
    positions only through :math:`n - m`.  (Adjacent pairs as in Su et al.; some code bases
    pair feature :math:`i` with :math:`i + d/2` instead, a fixed permutation of this one.)

    Parameters
    ----------
    x : torch.Tensor, shape (..., T, d)
        Queries or keys; ``d`` even.
    positions : torch.Tensor, shape (T,), optional
        The position of each row (integers or reals); default ``0, ..., T-1``.
    base : float
        > 1.

    Returns
    -------
    torch.Tensor, shape (..., T, d)

    Examples
    --------
    >>> x = torch.tensor([[1., 0.], [1., 0.]])
    >>> rotary_embedding(x, base=10.).round(decimals=4)        # position 1 turns by 1 rad
    tensor([[1.0000, 0.0000],
            [0.5403, 0.8415]])

    See Also
    --------
    sinusoidal_positional_encoding : the same angles, added instead of applied.

    References
    ----------
    Su et al. (2024), Eq. (13) and (34).  Chapter: :ref:`ch-transformers`.
    """
    x = check_tensor("x", x, 2, floating=True, real=True)
    T, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError(f"the last dimension of x must be even, got {d}")
    base = check_number("base", base, interval="(1, inf)")
    if positions is None:
        positions = torch.arange(T, device=x.device)
    elif not isinstance(positions, torch.Tensor) or positions.shape != (T,):
        raise ValueError(f"positions must be a tensor of shape ({T},), got "
                         f"{tuple(positions.shape) if isinstance(positions, torch.Tensor) else type(positions).__name__}")
    omega = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)   # (d/2,)
    angle = (positions.to(torch.float64)[:, None] * omega[None, :]).to(x.dtype)        # (T, d/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]                                                 # (..., T, d/2)
    # (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos)
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)              # (..., T, d/2, 2)
    return out.flatten(-2)
