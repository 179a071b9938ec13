r"""What a transformer layer costs and why it is built as it is: counts and measurements.

Scope: the matrix-multiply FLOPs of multi-head attention and of the position-wise MLP
(ints or SymPy expressions in the sequence length and width); the time and the peak memory
of an attention implementation measured against the sequence length, with a log-log slope
fit; the variance of a dot product of random vectors (derived with ``sympy.stats`` and
sampled), and how saturated the attention softmax and how small its Jacobian become with and
without the :math:`1/\sqrt{d_k}` scaling; single-head attention scores with no, sinusoidal
or rotary positions, with tests of what they depend on (permutations, shifts, offsets); the
Jacobian of a sequence map split into blocks, which shows which positions an output reads.
Chapter: :ref:`ch-transformers`.

Conventions: a FLOP is one multiplication or one addition, so a product of an
:math:`m\times k` and a :math:`k\times n` matrix costs :math:`2mkn` (the convention of
``torch.utils.flop_counter``); biases, softmax and normalisation are not counted.  Sequences
are rows, ``x`` of shape ``(..., T, d)``, as in :mod:`dlmath.attention`.

References: A. Vaswani et al., "Attention is all you need" (2017), sections 3.2.1 (the
scaling), 3.2.2 (heads), 3.5 and table 1 (positions, cost per layer); J. Su et al.,
"RoFormer" (2024); M. Geva et al., "Transformer feed-forward layers are key-value memories"
(2021).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, NamedTuple, Union

import numpy as np
import sympy as sp
import torch

from dlmath._validate import (check_bool, check_callable, check_choice, check_device,
                              check_dtype, check_entries, check_int, check_number, check_seed,
                              check_size, check_tensor)
from dlmath.attention import rotary_embedding, sinusoidal_positional_encoding
from dlmath.softmax import softmax_jacobian

__all__ = [
    "AttentionFlops",
    "attention_flops",
    "mlp_flops",
    "time_call",
    "peak_allocated_bytes",
    "attention_cost_vs_length",
    "loglog_slope",
    "dot_product_variance_sym",
    "sample_dot_products",
    "SoftmaxSaturation",
    "softmax_saturation",
    "attention_scores",
    "toeplitz_defect",
    "rotary_wavelengths",
    "permutation_equivariance_gap",
    "permutation_invariance_gap",
    "jacobian_block_norms",
]

Size = Union[int, sp.Expr]


# --------------------------------------------------------------------------------------
# FLOP counts
# --------------------------------------------------------------------------------------

class AttentionFlops(NamedTuple):
    """Matrix-multiply FLOPs of one multi-head attention layer, term by term.

    Attributes
    ----------
    projections : int or sympy.Expr
        :math:`QW_Q, KW_K, VW_V` and the output projection :math:`W_O`.
    scores : int or sympy.Expr
        :math:`QK^\\top` for every head.
    mixing : int or sympy.Expr
        The weights times the values, :math:`AV`, for every head.
    total : int or sympy.Expr
        The sum of the three.
    weights : int or sympy.Expr
        Number of attention weights (softmax entries, one exponential each) over all heads:
        the size of the score matrix the plain formula materialises.
    """

    projections: Size
    scores: Size
    mixing: Size
    total: Size
    weights: Size


def attention_flops(seq_len: Size, d_model: Size, num_heads: int = 1,
                    kv_len: Size | None = None) -> AttentionFlops:
    r"""Matrix-multiply FLOPs of multi-head attention on one sequence.

    Explanation
    -----------
    With :math:`L` queries, :math:`S` keys, width :math:`d` and :math:`h` heads of size
    :math:`d/h`, the four projections cost :math:`2d^2` per row they act on, the scores of
    one head :math:`2LS\,d/h` and the mixing as much, so

    .. math:: F = \underbrace{4d^2(L + S)}_{\text{projections}}
                  + \underbrace{2LSd}_{QK^\top} + \underbrace{2LSd}_{AV} ,

    which for self-attention (:math:`S = L = T`) is :math:`8Td^2 + 4T^2d`.  The number of
    heads cancels from every FLOP term; it only multiplies the number of attention weights,
    :math:`hLS`.

    Parameters
    ----------
    seq_len : int or sympy.Expr
        :math:`L \ge 1`, the number of queries.
    d_model : int or sympy.Expr
        :math:`d \ge 1`; an int must be divisible by ``num_heads``.
    num_heads : int
        :math:`h \ge 1`.
    kv_len : int or sympy.Expr, optional
        :math:`S`, the number of keys and values (default :math:`L`, self-attention).

    Returns
    -------
    AttentionFlops
        Ints when every argument is an int, otherwise SymPy expressions.

    Raises
    ------
    ValueError
        If a size is below 1 or ``num_heads`` does not divide an integer ``d_model``.
    TypeError
        If a size is neither an int nor a SymPy expression.

    Examples
    --------
    >>> attention_flops(16, 32, num_heads=4)
    AttentionFlops(projections=131072, scores=16384, mixing=16384, total=163840, weights=1024)
    >>> import sympy as sp
    >>> T, d = sp.symbols("T d", positive=True, integer=True)
    >>> attention_flops(T, d).total
    4*T**2*d + 8*T*d**2

    See Also
    --------
    mlp_flops : the other half of a transformer block.
    dlmath.params.attention_params : the parameters of the same layer.

    References
    ----------
    Vaswani et al. (2017), section 3.2.2 and table 1.  Chapter: :ref:`ch-transformers`.
    """
    L = check_size("seq_len", seq_len)
    d = check_size("d_model", d_model)
    h = check_int("num_heads", num_heads, 1)
    S = L if kv_len is None else check_size("kv_len", kv_len)
    if isinstance(d, int) and d % h:
        raise ValueError(f"d_model {d} is not divisible by num_heads {h}")
    # Q W_Q and O W_O act on L rows, K W_K and V W_V on S rows: 2 d^2 FLOPs per row each
    projections = 2 * d * d * (2 * L + 2 * S)
    # S^(h) = Q^(h) K^(h)T: h heads of (L x d/h)(d/h x S)
    scores = 2 * L * S * d
    # Z^(h) = A^(h) V^(h): h heads of (L x S)(S x d/h)
    mixing = 2 * L * S * d
    out = (projections, scores, mixing, projections + scores + mixing, h * L * S)
    if not all(isinstance(v, int) for v in out):
        out = tuple(sp.expand(v) for v in out)
    return AttentionFlops(*out)


def mlp_flops(seq_len: Size, d_model: Size, d_hidden: Size) -> Size:
    r"""Matrix-multiply FLOPs of the position-wise MLP :math:`W_2\,\phi(W_1 x)` on T tokens.

    Explanation
    -----------
    Each of the :math:`T` tokens goes through a :math:`d \to d_{\text{ff}}` and a
    :math:`d_{\text{ff}} \to d` layer: :math:`2 \cdot 2 T d\,d_{\text{ff}} = 4Td\,d_{\text{ff}}`.
    With the usual :math:`d_{\text{ff}} = 4d` that is :math:`16Td^2`, twice the
    projections of attention.

    Parameters
    ----------
    seq_len, d_model, d_hidden : int or sympy.Expr
        :math:`T, d, d_{\text{ff}} \ge 1`.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`attention_flops`.

    Examples
    --------
    >>> mlp_flops(16, 32, 128)
    262144
    >>> import sympy as sp
    >>> T, d = sp.symbols("T d", positive=True, integer=True)
    >>> mlp_flops(T, d, 4 * d)
    16*T*d**2

    See Also
    --------
    attention_flops

    References
    ----------
    Vaswani et al. (2017), section 3.3.  Chapter: :ref:`ch-transformers`.
    """
    T = check_size("seq_len", seq_len)
    d = check_size("d_model", d_model)
    f = check_size("d_hidden", d_hidden)
    # (T x d)(d x f) then (T x f)(f x d)
    out = 2 * T * d * f + 2 * T * f * d
    return out if isinstance(out, int) else sp.expand(out)


# --------------------------------------------------------------------------------------
# Measuring time and memory
# --------------------------------------------------------------------------------------

def _sync(args: Sequence[Any]) -> None:
    for a in args:
        if isinstance(a, torch.Tensor) and a.device.type == "cuda":
            torch.cuda.synchronize(a.device)
            return


def time_call(fn: Callable, *args: Any, repeats: int = 5, warmup: int = 1) -> float:
    """Shortest wall-clock time of ``fn(*args)`` over several runs, in seconds.

    Explanation
    -----------
    The minimum, not the mean: on a shared machine every disturbance makes a run slower,
    never faster, so the fastest run is the best estimate of the cost of the computation
    itself.  CUDA work is synchronised before the clock is read.

    Parameters
    ----------
    fn : callable
    *args
        Passed to ``fn``.
    repeats : int
        Timed runs, >= 1.
    warmup : int
        Untimed runs first, >= 0.

    Returns
    -------
    float

    Examples
    --------
    >>> t = time_call(torch.mm, torch.ones(8, 8), torch.ones(8, 8), repeats=3)
    >>> 0 < t < 1
    True

    See Also
    --------
    peak_allocated_bytes, attention_cost_vs_length

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    fn = check_callable("fn", fn)
    repeats = check_int("repeats", repeats, 1, limit=10**6)
    warmup = check_int("warmup", warmup, 0, limit=10**6)
    for _ in range(warmup):
        fn(*args)
    _sync(args)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        _sync(args)
        best = min(best, time.perf_counter() - start)
    return best


@contextmanager
def _silenced_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ back end logs every start and stop."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_bytes(fn: Callable, args: Sequence[Any]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with _silenced_stderr():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = fn(*args)
    del out
    try:
        roots = prof.profiler.kineto_results.experimental_event_tree()
        allocation = torch._C._profiler._EventType.Allocation
    except AttributeError as err:  # pragma: no cover - depends on the torch version
        raise RuntimeError("this version of torch does not expose the profiler's allocation "
                           "events; peak_allocated_bytes needs torch >= 2.1") from err
    events: list[tuple[int, int]] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.tag == allocation:
            # positive: allocated, negative: freed
            events.append((node.start_time_ns, int(node.extra_fields.alloc_size)))
        stack.extend(node.children)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def peak_allocated_bytes(fn: Callable, *args: Any) -> int:
    """Highest amount of memory that ``fn(*args)`` holds at once, beyond what existed before.

    Explanation
    -----------
    On CUDA: ``torch.cuda.max_memory_allocated`` minus what was allocated before the call.
    On the CPU, PyTorch keeps no such counter, so the call runs under ``torch.profiler``
    with ``profile_memory=True``; every allocation and release made through PyTorch's CPU
    allocator is recorded with its time, and the running sum's maximum is returned.  This
    counts the outputs and every temporary tensor, including the work buffers that fused
    kernels allocate internally; it does not count memory a library allocates outside
    PyTorch's allocator (for example inside a BLAS call), the inputs, or Python objects.
    The profiler's back end logs its start and stop on the process's standard error, so that
    stream is sent to ``/dev/null`` while ``fn`` runs (anything else written to it in that
    time is lost too).

    Parameters
    ----------
    fn : callable
        Called once, as ``fn(*args)``; its result is discarded.
    *args
        Tensors (on one device) and other arguments.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> x = torch.ones(256, 256)                  # the product is 256*256*4 bytes
    >>> peak_allocated_bytes(torch.mm, x, x)
    262144

    See Also
    --------
    time_call, attention_cost_vs_length

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    fn = check_callable("fn", fn)
    cuda = next((a.device for a in args if isinstance(a, torch.Tensor) and a.device.type == "cuda"), None)
    if cuda is None:
        return _cpu_peak_bytes(fn, args)
    torch.cuda.synchronize(cuda)
    torch.cuda.reset_peak_memory_stats(cuda)
    before = torch.cuda.memory_allocated(cuda)
    out = fn(*args)
    torch.cuda.synchronize(cuda)
    del out
    return int(torch.cuda.max_memory_allocated(cuda) - before)


def attention_cost_vs_length(attention: Callable, lengths: Sequence[int], *, d_k: int = 64,
                             batch: int = 1, heads: int = 1, repeats: int = 3,
                             dtype: torch.dtype = torch.float32,
                             device: torch.device | str | None = None,
                             seed: int = 0) -> list[dict[str, float]]:
    r"""Time and peak memory of an attention function as the sequence grows.

    Explanation
    -----------
    For each length :math:`T`, draws :math:`Q, K, V` of shape ``(batch, heads, T, d_k)``
    from a seeded normal distribution and measures ``attention(Q, K, V)`` with
    :func:`time_call` and :func:`peak_allocated_bytes`.  Each row also gives the size of
    one :math:`T \times T` score matrix per head, the memory the plain formula
    :math:`\operatorname{softmax}(QK^\top/\sqrt{d_k})V` must hold at least once.

    Parameters
    ----------
    attention : callable
        ``attention(Q, K, V) -> Tensor``, e.g. ``torch.nn.functional.scaled_dot_product_attention``.
    lengths : sequence of int
        Sequence lengths, each >= 1.
    d_k, batch, heads, repeats : int
        >= 1.
    dtype : torch.dtype
        A floating dtype.
    device : torch.device or str, optional
        Default: the CPU.
    seed : int

    Returns
    -------
    list of dict
        One row per length with keys ``length``, ``seconds``, ``peak_bytes``,
        ``score_bytes``.

    Raises
    ------
    ValueError
        If ``lengths`` is empty or holds a value below 1.

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> rows = attention_cost_vs_length(F.scaled_dot_product_attention, [4, 8], d_k=8, repeats=1)
    >>> [(r["length"], r["score_bytes"]) for r in rows]
    [(4, 64), (8, 256)]

    See Also
    --------
    loglog_slope : the exponent of the growth.
    attention_flops : the count the time follows.

    References
    ----------
    Vaswani et al. (2017), table 1.  Chapter: :ref:`ch-transformers`.
    """
    attention = check_callable("attention", attention)
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise ValueError(f"lengths must be a non-empty sequence of ints >= 1, got {lengths!r}")
    lengths = [check_int(f"lengths[{i}]", T, 1) for i, T in enumerate(lengths)]
    d_k, batch, heads = check_int("d_k", d_k, 1), check_int("batch", batch, 1), check_int("heads", heads, 1)
    for i, T in enumerate(lengths):   # q, k, v of (B, h, T, d_k) and the (B, h, T, T) scores
        check_entries(f"the queries or scores of batch={batch}, heads={heads}, "
                      f"lengths[{i}]={T} and d_k={d_k}", batch * heads * T * max(T, d_k))
    repeats = check_int("repeats", repeats, 1, limit=10**6)
    check_dtype("dtype", dtype, floating=True)
    dev = check_device("device", device) or torch.device("cpu")
    gen = torch.Generator().manual_seed(check_seed("seed", seed))
    itemsize = torch.empty((), dtype=dtype).element_size()
    rows = []
    for T in lengths:
        q, k, v = (torch.randn(batch, heads, T, d_k, generator=gen, dtype=torch.float32)
                   .to(device=dev, dtype=dtype) for _ in range(3))          # (B, h, T, d_k)
        rows.append({
            "length": T,
            "seconds": time_call(attention, q, k, v, repeats=repeats),
            "peak_bytes": peak_allocated_bytes(attention, q, k, v),
            "score_bytes": batch * heads * T * T * itemsize,
        })
    return rows


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`: the exponent :math:`p` in :math:`y \approx c x^p`.

    Parameters
    ----------
    x, y : sequences of positive floats
        At least two points, same length.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If fewer than two points, the lengths differ, or a value is not positive.

    Examples
    --------
    >>> round(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 6)
    2.0

    See Also
    --------
    attention_cost_vs_length

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    try:
        xs = np.asarray(x, dtype=float)
        ys = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"x and y must be sequences of numbers, got {x!r} and {y!r}") from None
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2, got shapes {xs.shape} and {ys.shape}")
    if not (np.all(xs > 0) and np.all(ys > 0)):
        raise ValueError("x and y must be positive to take logarithms")
    slope, _ = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(slope)


# --------------------------------------------------------------------------------------
# Why 1/sqrt(d_k)
# --------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def dot_product_variance_sym() -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    r"""Variance of :math:`q \cdot k = \sum_{i=1}^{d_k} q_i k_i` for independent random entries, derived.

    Explanation
    -----------
    ``sympy.stats`` computes :math:`\operatorname{Var}(q_1 k_1)` for independent
    :math:`q_1 \sim \mathcal N(\mu_q, \sigma_q^2)`, :math:`k_1 \sim \mathcal N(\mu_k,
    \sigma_k^2)`; the :math:`d_k` terms of the sum are independent, so their variances add.
    Only the first two moments enter
    (:math:`\operatorname{Var}(qk) = E[q^2]E[k^2] - E[q]^2E[k]^2`), so the result holds for
    any distribution with these means and variances.  With zero means and unit variances it
    is :math:`d_k`: the scores' standard deviation grows as :math:`\sqrt{d_k}`, which
    dividing by :math:`\sqrt{d_k}` undoes.

    Returns
    -------
    (sympy.Expr, tuple of sympy.Symbol)
        The variance and its symbols :math:`(d_k, \mu_q, \mu_k, \sigma_q, \sigma_k)`.

    Examples
    --------
    >>> var, (d, mq, mk, sq, sk) = dot_product_variance_sym()
    >>> var.subs({mq: 0, mk: 0, sq: 1, sk: 1})
    d_k
    >>> sp.factor(var.subs({mq: 0, mk: 0}))
    d_k*sigma_k**2*sigma_q**2

    See Also
    --------
    sample_dot_products : the same variance, sampled.

    References
    ----------
    Vaswani et al. (2017), footnote 4.  Chapter: :ref:`ch-transformers`.
    """
    from sympy.stats import Normal, variance

    d = sp.Symbol("d_k", positive=True, integer=True)
    mq, mk = sp.symbols("mu_q mu_k", real=True)
    sq, sk = sp.symbols("sigma_q sigma_k", positive=True)
    q, k = Normal("q", mq, sq), Normal("k", mk, sk)
    # Var(sum_i q_i k_i) = d_k Var(q_1 k_1), the terms being independent
    return sp.expand(d * variance(q * k)), (d, mq, mk, sq, sk)


def sample_dot_products(d_k: int, num_samples: int, *, mean: float = 0.0, std: float = 1.0,
                        seed: int = 0) -> torch.Tensor:
    r"""Dot products :math:`q \cdot k` of independent random vectors with i.i.d. normal entries.

    Parameters
    ----------
    d_k : int
        Dimension, >= 1.
    num_samples : int
        Number of pairs, >= 1.
    mean, std : float
        Of every entry of :math:`q` and :math:`k`; ``std`` > 0.
    seed : int

    Returns
    -------
    torch.Tensor of float64, shape (num_samples,)

    Examples
    --------
    >>> s = sample_dot_products(64, 20000, seed=0)
    >>> round(float(s.var() / 64), 1)             # Var(q.k) = d_k
    1.0

    See Also
    --------
    dot_product_variance_sym : the variance, derived.

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    d_k = check_int("d_k", d_k, 1)
    num_samples = check_int("num_samples", num_samples, 1)
    check_entries(f"(num_samples, d_k) = ({num_samples}, {d_k}) samples", num_samples * d_k)
    mean = check_number("mean", mean)
    std = check_number("std", std, positive=True)
    gen = torch.Generator().manual_seed(check_seed("seed", seed))
    q = mean + std * torch.randn(num_samples, d_k, generator=gen, dtype=torch.float64)   # (N, d)
    k = mean + std * torch.randn(num_samples, d_k, generator=gen, dtype=torch.float64)   # (N, d)
    # s_n = sum_i q_ni k_ni
    return torch.einsum("ni,ni->n", q, k)


class SoftmaxSaturation(NamedTuple):
    """How peaked the attention softmax is, over random queries and keys.

    Attributes
    ----------
    max_weight : float
        Mean of the largest attention weight (1/n when uniform, 1 when one-hot).
    entropy : float
        Mean entropy of the weights in nats (:math:`\\log n` when uniform, 0 when one-hot).
    jacobian_norm : float
        Median spectral norm of the softmax Jacobian :math:`J = \\operatorname{diag}(p) - pp^\\top`
        with respect to the scores: the most of a gradient reaching the weights that passes
        through to the scores.
    query_jacobian_norm : float
        Median spectral norm of :math:`\\partial p / \\partial q = c\\,J K`, the Jacobian of the
        weights with respect to the query, for score scale :math:`c`.
    """

    max_weight: float
    entropy: float
    jacobian_norm: float
    query_jacobian_norm: float


def softmax_saturation(d_k: int, num_keys: int, *, scaled: bool = True, num_samples: int = 256,
                       seed: int = 0) -> SoftmaxSaturation:
    r"""How saturated the attention softmax is for random queries and keys of dimension :math:`d_k`.

    Explanation
    -----------
    Draws a query :math:`q` and :math:`n` keys :math:`k_j` with i.i.d. :math:`\mathcal N(0,1)`
    entries, forms the scores :math:`s_j = c\,q\cdot k_j` with :math:`c = 1/\sqrt{d_k}`
    (``scaled=True``) or :math:`c = 1`, and summarises over ``num_samples`` draws the largest
    weight and the entropy (means), and the spectral norms of the Jacobians of
    :math:`p = \operatorname{softmax}(s)` with respect to :math:`s` (:math:`J`, from
    :func:`dlmath.softmax.softmax_jacobian`) and to :math:`q` (:math:`cJK`) (medians: the
    norms of unscaled scores are tiny for most draws and large for a few, and the median
    describes the typical draw).  Unscaled scores have standard deviation
    :math:`\sqrt{d_k}`, the softmax approaches a one-hot vector, and :math:`J \to 0`.

    Parameters
    ----------
    d_k : int
        >= 1.
    num_keys : int
        :math:`n \ge 2`.
    scaled : bool
        Divide the scores by :math:`\sqrt{d_k}`.
    num_samples : int
        >= 1.
    seed : int

    Returns
    -------
    SoftmaxSaturation

    Examples
    --------
    >>> softmax_saturation(1, 8) == softmax_saturation(1, 8, scaled=False)   # c = 1 either way
    True
    >>> s = softmax_saturation(512, 8, scaled=False)           # scores of std 22.6
    >>> round(s.max_weight, 2), s.jacobian_norm < 1e-3
    (0.95, True)
    >>> round(softmax_saturation(512, 8).max_weight, 2)        # scaled: std 1
    0.35

    See Also
    --------
    dlmath.softmax.softmax_jacobian
    dot_product_variance_sym : why the scores grow as sqrt(d_k).

    References
    ----------
    Vaswani et al. (2017), section 3.2.1.  Chapter: :ref:`ch-transformers`.
    """
    d_k = check_int("d_k", d_k, 1)
    n = check_int("num_keys", num_keys, 2)
    num_samples = check_int("num_samples", num_samples, 1)
    check_entries(f"(num_samples, num_keys, d_k) = ({num_samples}, {n}, {d_k}) keys",
                  num_samples * n * d_k)
    check_bool("scaled", scaled)
    gen = torch.Generator().manual_seed(check_seed("seed", seed))
    q = torch.randn(num_samples, d_k, generator=gen, dtype=torch.float64)      # (N, d)
    K = torch.randn(num_samples, n, d_k, generator=gen, dtype=torch.float64)   # (N, n, d)
    c = 1.0 / math.sqrt(d_k) if scaled else 1.0
    # s_nj = c sum_i K_nji q_ni                                   (N, n)
    s = c * torch.einsum("nji,ni->nj", K, q)
    p = torch.softmax(s, dim=-1)                                               # (N, n)
    J = softmax_jacobian(s)                                                    # (N, n, n)
    # ||J||_2 = largest eigenvalue (J is symmetric positive semidefinite)
    j_norm = torch.linalg.eigvalsh(J)[:, -1]
    # ||c J K||_2^2 = c^2 lambda_max(J G J) with the Gram matrix G_jl = k_j . k_l   (N, n, n)
    G = torch.einsum("nji,nli->njl", K, K)
    jq_norm = c * torch.linalg.eigvalsh(J @ G @ J)[:, -1].clamp_min(0).sqrt()
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return SoftmaxSaturation(float(p.amax(-1).mean()), float(entropy.mean()),
                             float(j_norm.median()), float(jq_norm.median()))


# --------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------

_ENCODINGS = ("none", "sinusoidal", "rotary")


def attention_scores(x: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, *,
                     encoding: str = "none", positions: torch.Tensor | None = None,
                     base: float = 10000.0) -> torch.Tensor:
    r"""Scaled scores :math:`S_{mn} = q_m \cdot k_n / \sqrt{d_k}` of one self-attention head, with a position encoding.

    Explanation
    -----------
    ``"none"``: :math:`q_m = x_m W_Q`, :math:`k_n = x_n W_K`; the scores see the tokens,
    not where they are.  ``"sinusoidal"``: the encoding :math:`P_t` of
    :func:`dlmath.attention.sinusoidal_positional_encoding` is added to each token first,
    :math:`q_m = (x_m + P_{t_m})W_Q` (absolute positions, as in Vaswani et al.).
    ``"rotary"``: :math:`q_m = R_{t_m} x_m W_Q`, :math:`k_n = R_{t_n} x_n W_K` with
    :func:`dlmath.attention.rotary_embedding`, so :math:`S_{mn}` depends on the positions
    only through :math:`t_n - t_m`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., T, d)
    W_q, W_k : torch.Tensor, shape (d, d_k)
        ``d_k`` even for ``"rotary"``; ``d`` even for ``"sinusoidal"``.
    encoding : {"none", "sinusoidal", "rotary"}
    positions : torch.Tensor of int, shape (T,), optional
        Position :math:`t_m \ge 0` of each row; default ``0, ..., T-1``.
    base : float
        Of the sinusoids and rotations.

    Returns
    -------
    torch.Tensor, shape (..., T, T)

    Raises
    ------
    ValueError
        For an unknown ``encoding``, shapes that do not fit, or negative positions.

    Examples
    --------
    >>> x = torch.ones(3, 2); W = torch.eye(2)
    >>> attention_scores(x, W, W)                   # equal tokens, no positions: equal scores
    tensor([[1.4142, 1.4142, 1.4142],
            [1.4142, 1.4142, 1.4142],
            [1.4142, 1.4142, 1.4142]])
    >>> S = attention_scores(x, W, W, encoding="rotary")
    >>> bool(torch.allclose(S[0, 1], S[1, 2]))       # the same offset, the same score
    True

    See Also
    --------
    toeplitz_defect : zero exactly when the scores depend on offsets only.
    dlmath.attention.rotary_embedding, dlmath.attention.sinusoidal_positional_encoding

    References
    ----------
    Vaswani et al. (2017), section 3.5; Su et al. (2024).  Chapter: :ref:`ch-transformers`.
    """
    x = check_tensor("x", x, 2, floating=True, real=True)
    W_q = check_tensor("W_q", W_q, 2, floating=True, real=True)
    W_k = check_tensor("W_k", W_k, 2, floating=True, real=True)
    check_choice("encoding", encoding, _ENCODINGS)
    T, d = x.shape[-2], x.shape[-1]
    for name, W in (("W_q", W_q), ("W_k", W_k)):
        if W.ndim != 2 or W.shape[0] != d:
            raise ValueError(f"{name} must have shape ({d}, d_k), d the width of x, got "
                             f"{tuple(W.shape)}")
    if W_q.shape != W_k.shape:
        raise ValueError(f"W_q and W_k must have the same shape, got {tuple(W_q.shape)} and {tuple(W_k.shape)}")
    if positions is None:
        positions = torch.arange(T, device=x.device)
    elif (not isinstance(positions, torch.Tensor) or positions.shape != (T,)
          or positions.is_floating_point() or bool((positions < 0).any())):
        raise ValueError(f"positions must be a tensor of {T} non-negative ints, got {positions!r}")
    if encoding == "sinusoidal":
        if d % 2:
            raise ValueError(f"sinusoidal positions need an even width d, got {d}")
        P = sinusoidal_positional_encoding(int(positions.max()) + 1, d, base, dtype=x.dtype,
                                           device=x.device)                 # (t_max + 1, d)
        x = x + P[positions]                                                  # (..., T, d)
    q = x @ W_q                                                               # (..., T, d_k)
    k = x @ W_k                                                               # (..., T, d_k)
    if encoding == "rotary":
        q = rotary_embedding(q, positions, base)
        k = rotary_embedding(k, positions, base)
    # S_mn = sum_e q_me k_ne / sqrt(d_k)
    return torch.einsum("...me,...ne->...mn", q, k) / math.sqrt(q.shape[-1])


def toeplitz_defect(S: torch.Tensor) -> float:
    r"""Largest spread :math:`\max - \min` of a matrix along any of its diagonals.

    Explanation
    -----------
    Zero exactly when :math:`S_{mn}` depends on :math:`n - m` only (a Toeplitz matrix): the
    test of whether attention scores depend on the offset between two positions rather than
    on where they are.  Leading axes are a batch; the largest spread over all is returned.

    Parameters
    ----------
    S : torch.Tensor, shape (..., M, N)

    Returns
    -------
    float

    Examples
    --------
    >>> toeplitz_defect(torch.tensor([[1., 2., 3.], [0., 1., 2.]]))
    0.0
    >>> toeplitz_defect(torch.tensor([[1., 2.], [0., 5.]]))
    4.0

    See Also
    --------
    attention_scores

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    S = check_tensor("S", S, 2, floating=True, real=True, nonempty=True, finite=True)
    M, N = S.shape[-2], S.shape[-1]
    spread = 0.0
    for offset in range(-(M - 1), N):
        diag = torch.diagonal(S, offset=offset, dim1=-2, dim2=-1)             # (..., len)
        spread = max(spread, float((diag.amax(-1) - diag.amin(-1)).max()))
    return spread


def rotary_wavelengths(dim: int, base: float = 10000.0) -> torch.Tensor:
    r"""Wavelength :math:`2\pi/\omega_i` in positions of each rotating pair of a rotary (or sinusoidal) encoding.

    Explanation
    -----------
    Pair :math:`i` turns by :math:`\omega_i = \text{base}^{-2i/d}` per position, so it
    returns to its starting angle after :math:`2\pi/\omega_i` positions.  A pair whose
    wavelength exceeds the longest offset seen in training has, at longer offsets, angles
    the model never saw.

    Parameters
    ----------
    dim : int
        Even :math:`d \ge 2`.
    base : float
        > 1.

    Returns
    -------
    torch.Tensor of float64, shape (dim // 2,)

    Examples
    --------
    >>> rotary_wavelengths(4, base=100.).round(decimals=3)     # 2 pi, then 2 pi * 10
    tensor([ 6.2830, 62.8320], dtype=torch.float64)

    See Also
    --------
    dlmath.attention.rotary_embedding

    References
    ----------
    Su et al. (2024); Vaswani et al. (2017), section 3.5.  Chapter: :ref:`ch-transformers`.
    """
    if check_int("dim", dim, 2) % 2:
        raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
    check_entries(f"the wavelengths of dim={dim}", dim // 2)
    base = check_number("base", base, interval="(1, inf)")
    # omega_i = base^(-2i/d)
    omega = float(base) ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return 2 * math.pi / omega


# --------------------------------------------------------------------------------------
# Symmetries and dependencies of sequence maps
# --------------------------------------------------------------------------------------

def _permutation_args(f: Any, x: Any, perm: Any) -> tuple[Callable, torch.Tensor, torch.Tensor]:
    """``f`` and ``x`` checked, ``perm`` as a permutation of the T rows of ``x`` on its device."""
    f = check_callable("f", f)
    x = check_tensor("x", x, 2, floating=True, nonempty=True)
    T = x.shape[-2]
    try:
        perm = torch.as_tensor(perm)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"perm must be a sequence of ints, got {perm!r}") from None
    if perm.dtype not in (torch.int64, torch.int32) or perm.shape != (T,) or \
            not torch.equal(perm.sort().values.cpu(), torch.arange(T)):
        raise ValueError(f"perm must be a permutation of 0..{T - 1}, got {perm.tolist()}")
    return f, x, perm.to(x.device)


def permutation_equivariance_gap(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                                 perm: Any) -> float:
    r"""Largest entry of :math:`|f(Px) - P f(x)|`: zero when permuting the tokens permutes the outputs.

    Parameters
    ----------
    f : callable
        Maps ``(..., T, d)`` to ``(..., T, d')``.
    x : torch.Tensor, shape (..., T, d)
    perm : sequence of int or torch.Tensor
        A permutation of ``0, ..., T-1`` applied to the rows.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``perm`` is not a permutation of the rows.

    Examples
    --------
    >>> x = torch.randn(4, 3)
    >>> permutation_equivariance_gap(torch.tanh, x, [2, 0, 3, 1])     # acts row by row
    0.0
    >>> permutation_equivariance_gap(lambda z: z.cumsum(-2), x, [1, 0, 2, 3]) > 0
    True

    See Also
    --------
    permutation_invariance_gap

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    f, x, p = _permutation_args(f, x, perm)
    return float((f(x[..., p, :]) - f(x)[..., p, :]).detach().abs().max())


def permutation_invariance_gap(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                               perm: Any) -> float:
    r"""Largest entry of :math:`|f(Px) - f(x)|`: zero when permuting the tokens changes nothing.

    Parameters
    ----------
    f, x, perm
        As :func:`permutation_equivariance_gap`.

    Returns
    -------
    float

    Examples
    --------
    >>> x = torch.tensor([[1.], [2.], [4.]])
    >>> permutation_invariance_gap(lambda z: z.sum(-2), x, [2, 1, 0])   # a sum ignores order
    0.0
    >>> permutation_invariance_gap(torch.tanh, x, [2, 1, 0]) > 0          # rows move
    True

    See Also
    --------
    permutation_equivariance_gap

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    f, x, p = _permutation_args(f, x, perm)
    return float((f(x[..., p, :]) - f(x)).detach().abs().max())


def jacobian_block_norms(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""Norms :math:`N_{ts} = \lVert \partial f(x)_t / \partial x_s \rVert_F` of the blocks of a sequence map's Jacobian.

    Explanation
    -----------
    :math:`N_{ts} = 0` for every input means output :math:`t` does not read token :math:`s`.
    A position-wise map has a diagonal :math:`N` whatever its depth; a causal layer a lower
    triangular one; one self-attention layer a full one.  Computed by
    ``torch.autograd.functional.jacobian`` at ``x``.

    Parameters
    ----------
    f : callable
        Maps ``(T, d)`` to ``(T, d')``.
    x : torch.Tensor, shape (T, d)

    Returns
    -------
    torch.Tensor, shape (T, T)

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or ``f(x)`` does not have ``T`` rows.

    Examples
    --------
    >>> x = torch.ones(3, 2, dtype=torch.float64)
    >>> jacobian_block_norms(lambda z: z.cumsum(0), x)     # output t reads tokens s <= t
    tensor([[1.4142, 0.0000, 0.0000],
            [1.4142, 1.4142, 0.0000],
            [1.4142, 1.4142, 1.4142]], dtype=torch.float64)

    See Also
    --------
    permutation_equivariance_gap

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    f = check_callable("f", f)
    x = check_tensor("x", x, 2, floating=True, real=True, nonempty=True)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (T, d), got {tuple(x.shape)}")
    J = torch.autograd.functional.jacobian(f, x)                        # (T, d', T, d)
    if J.ndim != 4 or J.shape[0] != x.shape[0]:
        raise ValueError(f"f must map (T, d) to (T, d') with T = {x.shape[0]}, got output shape {tuple(J.shape[:-2])}")
    # N_ts = sqrt(sum_{a,b} J_tasb^2)
    return torch.linalg.vector_norm(J, dim=(1, 3))
