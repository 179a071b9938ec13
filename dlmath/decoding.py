"""Decoding autoregressive models: filtering logits, sampling, greedy and beam search.

Scope: everything that turns next-token logits into sequences, shared by the
encoder-decoder of :mod:`dlmath.models.seq2seq` and the language model of :mod:`dlmath.models.gpt`.

* Filters on a logits tensor ``(..., V)``: temperature, top-k, top-p (nucleus); a removed
  token gets logit ``-inf`` (probability exactly 0).
* Decoders over a *step function* ``step(tokens, state) -> (logits, state)``: ``tokens``
  is the ``(N,)`` batch of last tokens, ``logits`` the ``(N, V)`` scores of the next one,
  and ``state`` anything the model carries (a tensor, or nested tuples/lists/dicts of
  tensors, every tensor with the batch as its first dimension, so that a decoder can
  select and repeat rows).  The first call receives the start tokens (usually ``<bos>``).
* Every decoder returns :class:`Hypothesis` objects: the generated tokens (without the
  start token and without ``<eos>``), their log-probability under the model as it is
  (temperature 1, no filtering), and whether ``<eos>`` was produced.

Ties are broken towards the lower token index everywhere (stable sorting), so greedy
decoding and beam search of width 1 choose the same tokens.  Chapters:
:ref:`ch-seq2seq`, :ref:`ch-transformers`.

References: Holtzman et al., "The curious case of neural text degeneration" (2020)
[holtzman2020curious] for nucleus sampling; Sutskever et al. (2014)
[sutskever2014sequence] for left-to-right beam search in sequence-to-sequence models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dlmath._validate import (
    check_callable,
    check_entries,
    check_generator,
    check_int,
    check_number,
    check_tensor,
    is_int,
)

__all__ = [
    "Hypothesis",
    "StepFn",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "filter_logits",
    "sample_next",
    "greedy_decode",
    "sample_decode",
    "sample_distinct",
    "beam_search",
    "length_normalised_score",
]

#: ``step(tokens (N,), state) -> (logits (N, V), state)``; see the module docstring.
StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence.

    Attributes
    ----------
    tokens : tuple of int
        The generated ids, without the start token and without ``<eos>``.
    log_prob : float
        Sum of the log-probabilities of the generated tokens (``<eos>`` included when
        ``finished``) under the unfiltered model at temperature 1.
    finished : bool
        Whether the model produced ``<eos>`` (otherwise ``max_len`` stopped it).
    """

    tokens: tuple[int, ...]
    log_prob: float
    finished: bool

    @property
    def length(self) -> int:
        """Number of generated tokens, counting ``<eos>`` when finished."""
        return len(self.tokens) + int(self.finished)


# --- filters on logits -------------------------------------------------------------------

def _check_logits(logits: torch.Tensor, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last (vocabulary) axis, got shape "
                         f"{tuple(logits.shape)}")
    # -inf marks a removed token; NaN and +inf have no probability
    if bool((torch.isnan(logits) | torch.isposinf(logits)).any()):
        raise ValueError(f"{name} must not hold NaN or +inf (-inf marks a removed token)")


def _check_rows(logits: torch.Tensor, name: str = "logits") -> None:
    """Every row must leave some token possible (a finite logit) to choose from."""
    dead = torch.isneginf(logits).all(dim=-1)
    if bool(dead.any()):
        row = tuple(dead.nonzero()[0].tolist())
        raise ValueError(f"{name}: row {row[0] if len(row) == 1 else row} is all -inf, so no "
                         f"token is possible")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""Divide logits by a temperature :math:`\tau > 0`: :math:`p \propto e^{z/\tau}`.

    Explanation
    -----------
    :math:`\tau < 1` sharpens the distribution (as :math:`\tau \to 0` it tends to the
    argmax, i.e. greedy decoding), :math:`\tau > 1` flattens it towards uniform, and
    :math:`\tau = 1` leaves it unchanged.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(..., V)``.
    temperature : float
        :math:`\tau > 0`.

    Returns
    -------
    torch.Tensor
        Same shape.

    Raises
    ------
    ValueError
        If ``temperature <= 0`` or is not finite.

    Examples
    --------
    >>> z = torch.tensor([2.0, 0.0])
    >>> apply_temperature(z, 0.5).softmax(-1).round(decimals=3)   # sharper than softmax(z)
    tensor([0.9820, 0.0180])

    See Also
    --------
    filter_logits : temperature, top-k and top-p together.

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    _check_logits(logits)
    temperature = check_number("temperature", temperature, positive=True)
    if temperature > torch.finfo(logits.dtype).max:      # inf in the logits' dtype: -inf/inf = nan
        raise ValueError(f"temperature must be representable in {logits.dtype} (at most "
                         f"{torch.finfo(logits.dtype).max:.3g}), got {temperature!r}")
    out = logits / temperature
    if bool((torch.isfinite(logits) & ~torch.isfinite(out)).any()):
        raise ValueError(f"temperature {temperature!r} is so small that logits / temperature "
                         f"overflows {logits.dtype}; for the limit of a temperature near 0 use "
                         f"top_k=1 (greedy decoding)")
    return out


def _descending(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # stable: among equal logits the lower index comes first
    return torch.sort(logits, dim=-1, descending=True, stable=True)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    r"""Keep the k largest logits of each row; set the others to ``-inf``.

    Explanation
    -----------
    Exactly :math:`\min(k, V)` entries survive in every row.  When several logits tie at
    the boundary, the ones with the lower index are kept (a stable descending sort), so
    the result never holds more than :math:`k` finite entries.  After a softmax the kept
    tokens carry the renormalised probabilities :math:`p_i / \sum_{j \in K} p_j`.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(..., V)``.
    k : int
        :math:`k \ge 1`; values above :math:`V` keep everything.

    Returns
    -------
    torch.Tensor
        Same shape, ``-inf`` outside the kept set.

    Raises
    ------
    ValueError
        If ``k < 1``.

    Examples
    --------
    >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0, 3.0]), 2)
    tensor([-inf, 3., -inf, 3.])
    >>> top_k_filter(torch.tensor([1.0, 1.0, 1.0]), 2)      # a tie: lower indices win
    tensor([1., 1., -inf])

    See Also
    --------
    top_p_filter : keep by probability mass instead of by count.

    References
    ----------
    holtzman2020curious (top-k as the baseline of nucleus sampling).
    Chapter: :ref:`ch-transformers`.
    """
    _check_logits(logits)
    if check_int("k", k, 1) >= logits.shape[-1]:
        return logits.clone()
    _, order = _descending(logits)                                   # (..., V)
    drop = order[..., k:]                                            # (..., V - k)
    return logits.scatter(-1, drop, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    r"""Nucleus filter: keep the smallest set of most likely tokens whose mass reaches p.

    Explanation
    -----------
    Sort the probabilities :math:`\pi = \mathrm{softmax}(z)` in decreasing order,
    :math:`\pi_{(1)} \ge \pi_{(2)} \ge \dots`, and keep the first :math:`m` tokens, with

    .. math:: m = \min\Bigl\{m : \sum_{i \le m} \pi_{(i)} \ge p\Bigr\}.

    Equivalently, token :math:`(i)` is kept when the mass strictly before it,
    :math:`\sum_{j < i} \pi_{(j)}`, is below :math:`p`; so the most likely token is always
    kept.  ``p >= 1`` returns the logits unchanged (the full distribution).  Ties are
    ordered towards the lower index, as in :func:`top_k_filter`.  The comparison is done in
    the logits' floating-point precision.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(..., V)``.
    p : float
        :math:`0 < p \le 1`.

    Returns
    -------
    torch.Tensor
        Same shape, ``-inf`` outside the nucleus.

    Raises
    ------
    ValueError
        If ``p`` is not in ``(0, 1]``.

    Examples
    --------
    >>> z = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    >>> top_p_filter(z, 0.75).isfinite()           # 0.5 < 0.75 <= 0.5 + 0.3
    tensor([ True,  True, False, False])
    >>> top_p_filter(z, 0.5).isfinite()            # the first token alone reaches 0.5
    tensor([ True, False, False, False])

    See Also
    --------
    top_k_filter : keep a fixed number of tokens.

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    _check_logits(logits)
    p = check_number("p", p, interval="(0, 1]")
    if p >= 1:
        return logits.clone()
    sorted_logits, order = _descending(logits)                       # (..., V)
    probs = sorted_logits.softmax(dim=-1)                            # pi_(1) >= pi_(2) >= ...
    # mass strictly before position i: sum_{j<i} pi_(j)
    before = probs.cumsum(dim=-1) - probs                            # (..., V)
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p to logits.

    Explanation
    -----------
    The order matters for top-p only: the nucleus is computed on the distribution after
    the temperature and after top-k (the convention of most libraries).  ``None`` skips a
    filter; with the defaults the logits come back unchanged.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(..., V)``.
    temperature : float
    top_k : int, optional
    top_p : float, optional

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> z = torch.tensor([3.0, 2.0, 1.0, 0.0])
    >>> filter_logits(z, temperature=2.0, top_k=3)
    tensor([1.5000, 1.0000, 0.5000,   -inf])

    See Also
    --------
    apply_temperature, top_k_filter, top_p_filter, sample_next

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    _check_logits(logits)
    temperature = check_number("temperature", temperature, positive=True)
    if top_k is not None:
        check_int("top_k", top_k, 1)
    if top_p is not None:
        check_number("top_p", top_p, interval="(0, 1]")
    out = apply_temperature(logits, temperature) if temperature != 1.0 else logits
    if top_k is not None:
        out = top_k_filter(out, top_k)
    if top_p is not None:
        out = top_p_filter(out, top_p)
    return out


def _stable_argmax(logits: torch.Tensor) -> torch.Tensor:
    return _descending(logits)[1][..., 0]


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row from the filtered softmax of ``logits``.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(N, V)``.
    temperature, top_k, top_p
        As in :func:`filter_logits`.
    generator : torch.Generator, optional
        For reproducible draws (on the logits' device).

    Returns
    -------
    torch.Tensor
        Ids, shape ``(N,)``.

    Raises
    ------
    ValueError
        If ``logits`` is not 2-D.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> z = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0]])
    >>> sample_next(z, top_k=1, generator=g)       # top_k=1 is the argmax
    tensor([1, 0])

    See Also
    --------
    filter_logits, sample_decode

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    _check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, V), got {tuple(logits.shape)}")
    _check_rows(logits)
    check_generator("generator", generator)
    probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(dim=-1)   # (N, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# --- decoders over a step function ---------------------------------------------------------

def _index_state(state: Any, index: torch.Tensor) -> Any:
    """Select rows ``index`` of every tensor in a nested state (batch first)."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, tuple):
        return type(state)(*(_index_state(s, index) for s in state)) if hasattr(state, "_fields") \
            else tuple(_index_state(s, index) for s in state)
    if isinstance(state, list):
        return [_index_state(s, index) for s in state]
    if isinstance(state, dict):
        return {key: _index_state(s, index) for key, s in state.items()}
    if state is None:
        return None
    raise TypeError(f"state must hold tensors in tuples, lists or dicts, "
                    f"got {type(state).__name__}")


def _first_tensor(state: Any) -> torch.Tensor | None:
    if isinstance(state, torch.Tensor):
        return state
    if isinstance(state, dict):
        items = list(state.values())
    elif isinstance(state, (tuple, list)):
        items = list(state)
    else:
        items = []
    for s in items:
        t = _first_tensor(s)
        if t is not None:
            return t
    return None


#: The most tokens a decoder generates per sequence, and rounds of sample_distinct.
MAX_STEPS = 10**6


def _start(step: Any, state: Any, bos: int | torch.Tensor, eos: int | None, max_len: int,
           batch_size: int | None) -> torch.Tensor:
    """Check the common arguments of the decoders; the ``(N,)`` start tokens.

    N comes from bos, batch_size or the state.  ``eos=None`` (no end token) is for
    :meth:`dlmath.models.gpt.GPT.generate` only: the public decoders require an int.
    """
    check_callable("step", step)
    check_int("eos", eos, 0, allow_none=True)
    check_int("max_len", max_len, 1, limit=MAX_STEPS)
    check_int("batch_size", batch_size, 1, allow_none=True)
    ref = _first_tensor(state)
    if ref is not None and ref.dim() == 0:
        raise ValueError("state must hold tensors with the batch as their first dimension, got "
                         "a 0-d tensor")
    dev = ref.device if ref is not None else torch.device("cpu")
    if isinstance(bos, torch.Tensor):
        if bos.dim() != 1:
            raise ValueError(f"bos must be an int or a 1-D tensor of start tokens, got shape "
                             f"{tuple(bos.shape)}")
        check_tensor("bos", bos, integer=True)
        if bool((bos < 0).any()):
            raise ValueError(f"bos must hold token ids >= 0, got {bos.tolist()}")
        return bos.to(dev, torch.long)
    if not is_int(bos):
        raise TypeError(f"bos must be an int or a tensor, got {type(bos).__name__}")
    check_int("bos", bos, 0)
    if batch_size is None:
        if ref is None:
            raise ValueError("batch_size is needed when state holds no tensor")
        batch_size = ref.shape[0]
    check_entries(f"a batch of batch_size={batch_size} start tokens", batch_size)
    return torch.full((batch_size,), bos, dtype=torch.long, device=dev)


def _check_step(logits: Any, n: int, tokens: torch.Tensor, eos: int | None, first: bool) -> None:
    """What ``step`` returned: ``(n, V)`` logits with a possible token in every row."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != n:
        raise ValueError(f"step must return logits of shape (N, V) = ({n}, V), got "
                         f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else logits!r}")
    _check_logits(logits, "the logits that step returned")
    _check_rows(logits, "the logits that step returned")
    V = logits.shape[-1]
    if first:   # the ids the decoder chose (bos, eos) must be tokens of the model
        if eos is not None and eos >= V:
            raise ValueError(f"eos must be a token id in [0, {V}) (V from the logits of step), "
                             f"got {eos}")
        if n and int(tokens.max()) >= V:
            raise ValueError(f"bos must hold token ids in [0, {V}) (V from the logits of "
                             f"step), got {int(tokens.max())}")


def _run(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int | None, max_len: int,
         choose: Callable[[torch.Tensor], torch.Tensor],
         batch_size: int | None) -> list[Hypothesis]:
    """Left-to-right decoding with one choice per row (greedy or sampled)."""
    tokens = _start(step, state, bos, eos, max_len, batch_size)      # (N,)
    n = tokens.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=tokens.device)    # (N,)
    total = torch.zeros(n, device=tokens.device)                     # (N,) log p so far
    out = []
    for t in range(max_len):
        logits, state = step(tokens, state)                         # (N, V)
        _check_step(logits, n, tokens, eos, t == 0)
        logp = logits.float().log_softmax(dim=-1)                    # (N, V)
        nxt = choose(logits)                                         # (N,)
        total = total + torch.where(done, 0.0, logp.gather(1, nxt[:, None]).squeeze(1))
        if eos is not None:
            out.append(torch.where(done, eos, nxt))
            done = done | (nxt == eos)
        else:                                                        # no end token
            out.append(nxt)
        tokens = nxt
        if bool(done.all()):
            break
    seqs = torch.stack(out, dim=1).tolist()                          # (N, L)
    hyps = []
    for row, lp in zip(seqs, total.tolist()):
        finished = eos is not None and eos in row
        hyps.append(Hypothesis(tuple(row[: row.index(eos)] if finished else row), lp, finished))
    return hyps


def greedy_decode(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int, max_len: int,
                  batch_size: int | None = None) -> list[Hypothesis]:
    """Decode by taking the most likely next token at every step.

    Explanation
    -----------
    :math:`y_t = \\arg\\max_v p(v \\mid y_{<t}, x)` until ``<eos>`` or ``max_len`` tokens
    (ties: the lower id).  Greedy decoding is beam search of width 1; it can miss the most
    likely sequence, since an early likely token may lead only to unlikely continuations.

    Parameters
    ----------
    step : StepFn
        ``step(tokens (N,), state) -> (logits (N, V), state)``.
    state : tensor or nested tuple/list/dict of tensors
        The model's initial state, batch first.
    bos : int or torch.Tensor
        Start token for every row, or a ``(N,)`` tensor of start tokens.
    eos : int
        End token.
    max_len : int
        Most tokens to generate (``<eos>`` included).
    batch_size : int, optional
        Needed only if neither ``bos`` nor ``state`` holds a tensor.

    Returns
    -------
    list of Hypothesis
        One per row.

    Examples
    --------
    A two-token model that prefers token 1, then ``<eos>`` (id 0) once it has seen a 1:

    >>> def step(tok, state):
    ...     return torch.stack([(tok == 1).float() * 3, torch.ones(len(tok))], 1), state
    >>> greedy_decode(step, torch.zeros(2), bos=1, eos=0, max_len=5)[0].tokens
    ()
    >>> greedy_decode(step, torch.zeros(1), bos=torch.tensor([0]), eos=0, max_len=5)[0].tokens
    (1,)

    See Also
    --------
    beam_search : keeps several hypotheses.  sample_decode : draws instead of maximising.

    References
    ----------
    sutskever2014sequence.  Chapter: :ref:`ch-seq2seq`.
    """
    check_int("eos", eos, 0)
    return _run(step, state, bos, eos, max_len, _stable_argmax, batch_size)


def sample_decode(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int, max_len: int, *,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  generator: torch.Generator | None = None,
                  batch_size: int | None = None) -> list[Hypothesis]:
    """Decode by sampling each next token from the filtered model distribution.

    Explanation
    -----------
    Each step draws :math:`y_t` from ``filter_logits(logits, temperature, top_k, top_p)``
    (:func:`sample_next`).  The reported ``log_prob`` is that of the sequence under the
    unfiltered model, so candidates drawn with different filters can be compared.

    Parameters
    ----------
    step, state, bos, eos, max_len, batch_size
        As in :func:`greedy_decode`.
    temperature, top_k, top_p
        As in :func:`filter_logits`.
    generator : torch.Generator, optional
        Seeded generator for reproducible samples.

    Returns
    -------
    list of Hypothesis

    Examples
    --------
    >>> def step(tok, state):                          # always uniform over {eos=0, 1, 2}
    ...     return torch.zeros(len(tok), 3), state
    >>> g = torch.Generator().manual_seed(0)
    >>> h = sample_decode(step, torch.zeros(4), bos=1, eos=0, max_len=6, generator=g)
    >>> len(h), all(len(x.tokens) <= 6 for x in h)
    (4, True)

    See Also
    --------
    sample_distinct : k different samples per input.  greedy_decode.

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    check_int("eos", eos, 0)
    return _sample(step, state, bos, eos, max_len, temperature, top_k, top_p, generator,
                   batch_size)


def _sample(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int | None, max_len: int,
            temperature: float, top_k: int | None, top_p: float | None,
            generator: torch.Generator | None, batch_size: int | None) -> list[Hypothesis]:
    """:func:`sample_decode`, where ``eos=None`` means no end token (``GPT.generate``)."""
    filter_logits(torch.zeros(2), temperature, top_k, top_p)         # validate arguments early
    check_generator("generator", generator)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        return sample_next(logits, temperature, top_k, top_p, generator)

    return _run(step, state, bos, eos, max_len, choose, batch_size)


def sample_distinct(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int, max_len: int,
                    k: int, *, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, generator: torch.Generator | None = None,
                    samples_per_round: int | None = None, max_rounds: int = 10,
                    batch_size: int | None = None) -> list[list[Hypothesis]]:
    """Sample until each input has k distinct outputs; return them, most likely first.

    Explanation
    -----------
    Each round draws ``samples_per_round`` sequences (:func:`sample_decode`) for every
    input that still has fewer than ``k`` distinct token sequences, and keeps the new
    ones.  After ``max_rounds`` an input may have fewer than ``k`` candidates (a sharp
    distribution, a small nucleus).  The candidates of an input are sorted by their
    log-probability under the unfiltered model, so the first one is a sensible single
    prediction and the list suits :func:`dlmath.metrics.wer_at_k`.

    Parameters
    ----------
    step, state, bos, eos, max_len, batch_size
        As in :func:`greedy_decode`.
    k : int
        Distinct candidates wanted per input, :math:`k \\ge 1`.
    temperature, top_k, top_p, generator
        As in :func:`sample_decode`.
    samples_per_round : int, optional
        Draws per input and round (default ``2 * k``).
    max_rounds : int

    Returns
    -------
    list of list of Hypothesis
        For each input, at most ``k`` hypotheses with pairwise different ``tokens``.

    Raises
    ------
    ValueError
        If ``k``, ``samples_per_round`` or ``max_rounds`` is below 1.

    Examples
    --------
    >>> def step(tok, state):                          # uniform over {eos=0, 1, 2}
    ...     return torch.zeros(len(tok), 3), state
    >>> g = torch.Generator().manual_seed(0)
    >>> c = sample_distinct(step, torch.zeros(2), bos=1, eos=0, max_len=4, k=3, generator=g)
    >>> [len({h.tokens for h in cands}) for cands in c]
    [3, 3]

    See Also
    --------
    sample_decode, beam_search, dlmath.metrics.wer_at_k

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-seq2seq`.
    """
    check_int("k", k, 1)
    check_int("max_rounds", max_rounds, 1, limit=MAX_STEPS)
    m = 2 * k if samples_per_round is None else check_int("samples_per_round", samples_per_round, 1)
    filter_logits(torch.zeros(2), temperature, top_k, top_p)         # validate arguments early
    check_generator("generator", generator)
    check_int("eos", eos, 0)
    starts = _start(step, state, bos, eos, max_len, batch_size)      # (B,)
    n = starts.shape[0]
    check_entries(f"{n} inputs times samples_per_round={m} samples", n * m)
    found: list[dict[tuple[int, ...], Hypothesis]] = [{} for _ in range(n)]
    for _ in range(max_rounds):
        todo = [b for b in range(n) if len(found[b]) < k]
        if not todo:
            break
        rows = torch.tensor(todo, device=starts.device).repeat_interleave(m)   # (len(todo)*m,)
        hyps = sample_decode(step, _index_state(state, rows), starts[rows], eos, max_len,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=generator)
        for i, h in enumerate(hyps):
            seen = found[todo[i // m]]
            if len(seen) < k and h.tokens not in seen:
                seen[h.tokens] = h
    # most likely first; ties keep the order of discovery (sorted is stable)
    return [sorted(f.values(), key=lambda h: -h.log_prob) for f in found]


def length_normalised_score(log_prob: float, length: int, alpha: float = 1.0) -> float:
    r"""Length-normalised score :math:`\log p(y) / |y|^{\alpha}` used to rank beams.

    Explanation
    -----------
    The log-probability of a sequence is a sum of negative terms, so it favours short
    outputs.  Dividing by :math:`|y|^{\alpha}` (tokens generated, ``<eos>`` included)
    removes the bias: :math:`\alpha = 0` is the raw log-probability, :math:`\alpha = 1`
    the mean log-probability per token.

    Parameters
    ----------
    log_prob : float
    length : int
        :math:`|y| \ge 1`.
    alpha : float
        :math:`\alpha \ge 0`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``length < 1`` or ``alpha < 0``.

    Examples
    --------
    >>> length_normalised_score(-6.0, 3)            # mean per token
    -2.0
    >>> length_normalised_score(-6.0, 3, alpha=0)   # raw log-probability
    -6.0

    See Also
    --------
    beam_search : ranks its finished hypotheses with this score.

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    log_prob = check_number("log_prob", log_prob, finite=False)
    if log_prob > 0:
        raise ValueError(f"log_prob must be <= 0 (a log-probability), got {log_prob!r}")
    check_int("length", length, 1)
    check_number("alpha", alpha, nonnegative=True)
    try:
        return log_prob / length ** alpha
    except OverflowError:
        raise ValueError(f"alpha {alpha!r} is too large: length {length} ** alpha overflows a "
                         f"float") from None


def beam_search(step: StepFn, state: Any, bos: int | torch.Tensor, eos: int, max_len: int,
                beam_width: int, *, alpha: float = 1.0, n_best: int | None = None,
                batch_size: int | None = None) -> list[list[Hypothesis]]:
    r"""Beam search with a shrinking beam and length-normalised ranking.

    Explanation
    -----------
    Per input, keep the ``beam_width`` = :math:`k` partial sequences of highest
    log-probability.  At each step every live beam is extended by every token and the best
    :math:`k - f` extensions are kept, where :math:`f` is the number of hypotheses already
    finished; an extension ending in ``<eos>`` is finished and leaves the beam.  The search
    stops when :math:`k` hypotheses are finished or after ``max_len`` tokens (unfinished
    beams are then returned with ``finished=False``).  The hypotheses are ranked by
    :func:`length_normalised_score` with exponent ``alpha``.

    The beam selection itself uses the raw log-probability; ties go to the earlier beam
    and the lower token id.  With :math:`k = 1` this is exactly :func:`greedy_decode`.

    Parameters
    ----------
    step, state, bos, eos, max_len, batch_size
        As in :func:`greedy_decode`.
    beam_width : int
        :math:`k \ge 1`.
    alpha : float
        Length-normalisation exponent (0: none, 1: per-token mean).
    n_best : int, optional
        Hypotheses returned per input (default and maximum: ``beam_width``).

    Returns
    -------
    list of list of Hypothesis
        Per input, best first by normalised score.

    Raises
    ------
    ValueError
        If ``beam_width < 1`` or ``n_best`` is not in ``[1, beam_width]``.

    Examples
    --------
    Token 1 is likelier first (0.6 vs 0.4), but after it the model is unsure, while
    after token 2 it is certain; beam search finds the likelier sequence ``2, <eos>``:

    >>> P = torch.tensor([[0.0, 0.6, 0.4], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    >>> def step(tok, state):
    ...     return P[tok].log(), state
    >>> greedy_decode(step, torch.zeros(1), bos=0, eos=0, max_len=2)[0].tokens   # p = 0.3
    (1,)
    >>> best = beam_search(step, torch.zeros(1), bos=0, eos=0, max_len=2, beam_width=2, alpha=0)
    >>> import math
    >>> best[0][0].tokens, round(math.exp(best[0][0].log_prob), 2)
    ((2,), 0.4)

    See Also
    --------
    greedy_decode : the width-1 case.  length_normalised_score.

    References
    ----------
    sutskever2014sequence.  Chapter: :ref:`ch-seq2seq`.
    """
    check_int("beam_width", beam_width, 1)
    n_best = beam_width if n_best is None else check_int("n_best", n_best, 1, beam_width)
    check_int("eos", eos, 0)
    starts = _start(step, state, bos, eos, max_len, batch_size)      # (B,)
    length_normalised_score(-1.0, max_len, alpha)     # validate alpha for the longest hypothesis

    k = beam_width
    B, dev = starts.shape[0], starts.device
    check_entries(f"{B} inputs times beam_width={k} beams", B * k)
    rows = torch.arange(B, device=dev).repeat_interleave(k)          # (B*k,) input of each beam
    state = _index_state(state, rows)
    tokens = starts[rows]                                            # (B*k,)
    scores = torch.full((B, k), float("-inf"), device=dev)           # (B, k) log p of each beam
    scores[:, 0] = 0.0                                               # one live beam at the start
    seqs = torch.zeros(B, k, 0, dtype=torch.long, device=dev)        # (B, k, t)
    n_done = torch.zeros(B, dtype=torch.long, device=dev)            # (B,) finished so far
    slot = torch.arange(k, device=dev)                               # (k,)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    alive = scores > float("-inf")                                   # (B, k)
    for t in range(max_len):
        logits, state = step(tokens, state)                         # (B*k, V)
        _check_step(logits, B * k, tokens, eos, t == 0)
        V = logits.shape[-1]
        check_entries(f"{B} inputs times beam_width={k} beams times {V} tokens", B * k * V)
        logp = logits.float().log_softmax(dim=-1).view(B, k, V)      # (B, k, V)
        # score of extending beam j by token v: s_j + log p(v | beam j)
        cand = torch.where(alive[:, :, None], scores[:, :, None] + logp,
                           float("-inf")).view(B, k * V)             # (B, k*V)
        top, idx = _descending(cand)
        top, idx = top[:, :k], idx[:, :k]                            # (B, k) best extensions
        parent, tok = idx // V, idx % V                              # (B, k)
        keep = (slot[None, :] < (k - n_done)[:, None]) & (top > float("-inf"))   # (B, k)
        seqs = torch.cat([seqs.gather(1, parent[:, :, None].expand(-1, -1, seqs.shape[2])),
                          tok[:, :, None]], dim=2)                   # (B, k, t+1)
        ends = keep & (tok == eos)                                   # (B, k)
        for b, j in ends.nonzero().tolist():
            finished[b].append(Hypothesis(tuple(seqs[b, j, :-1].tolist()), top[b, j].item(), True))
        n_done = n_done + ends.sum(dim=1)
        alive = keep & ~ends
        scores = torch.where(alive, top, float("-inf"))
        state = _index_state(state, (torch.arange(B, device=dev)[:, None] * k + parent).view(-1))
        tokens = tok.view(-1)
        if not bool(alive.any()):
            break
    for b, j in alive.nonzero().tolist():
        finished[b].append(Hypothesis(tuple(seqs[b, j].tolist()), scores[b, j].item(), False))
    ranked = []
    for hyps in finished:
        # normalised score, best first; sorted is stable, so ties keep the search order
        hyps = sorted(hyps, key=lambda h: -length_normalised_score(h.log_prob, max(h.length, 1),
                                                                   alpha))
        ranked.append(hyps[:n_best])
    return ranked
