r"""Ensembles of autoregressive models, decoded as one model.

Scope: several trained sequence models (e.g. the seeds of one configuration) combined at
every decoding step, so that :mod:`dlmath.decoding` (greedy, beam search, sampling) runs on
the ensemble exactly as on a single model.  A member is anything with the decoding interface
of :class:`dlmath.models.seq2seq.Seq2Seq`: ``start_state(src)`` and ``step(tokens, state) ->
(logits, state)``.

Two ways to combine the members' next-token distributions :math:`p_1, \dots, p_M`:

* ``"logprob"`` (default): average the log-probabilities,
  :math:`\bar z_v = \frac1M \sum_m \log p_m(v)`.  The decoder's softmax turns this into the
  normalised geometric mean :math:`\prod_m p_m(v)^{1/M} / \sum_u \prod_m p_m(u)^{1/M}`
  (a product of experts: a token must be likely under every member).
* ``"prob"``: average the probabilities, :math:`\bar z_v = \log \frac1M \sum_m p_m(v)`
  (a mixture: a token likely under one member stays possible).

Both scores are valid logits.  By Jensen's inequality (``"prob"``) and by the AM-GM
inequality (``"logprob"``), the cross-entropy of either ensemble on any target token is at
most the members' *average* cross-entropy on it; nothing of the kind holds for accuracy or
error rates.  Chapter: :ref:`ch-seq2seq`.

References: Sutskever, Vinyals & Le (2014) [sutskever2014sequence] decode with an ensemble
of LSTMs by averaging their predictions at every step; Hinton, "Training products of experts
by minimizing contrastive divergence" (2002) for the geometric mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from dlmath._validate import check_choice

__all__ = ["combine_logits", "Ensemble"]

Combine = Literal["logprob", "prob"]
_COMBINE = ("logprob", "prob")


def combine_logits(logits: Sequence[torch.Tensor], combine: Combine = "logprob") -> torch.Tensor:
    r"""Combine the next-token logits of several models into the logits of their ensemble.

    Explanation
    -----------
    Each member's logits :math:`z_m \in \mathbb{R}^{V}` are first normalised,
    :math:`\log p_m = z_m - \operatorname{logsumexp}(z_m)`, so that a member's scale of
    logits does not give it more weight.  Then

    .. math::
        \text{logprob:}\quad \bar z = \frac1M \sum_{m=1}^M \log p_m, \qquad
        \text{prob:}\quad \bar z = \log \frac1M \sum_{m=1}^M p_m
        = \operatorname{logsumexp}_m(\log p_m) - \log M .

    ``softmax(z̄)`` is the normalised geometric mean, respectively the arithmetic mean, of
    the members' distributions.  With one member both return :math:`\log p_1`.

    Parameters
    ----------
    logits : sequence of torch.Tensor
        One tensor per member, all of the same shape ``(..., V)``.
    combine : {"logprob", "prob"}
        Average log-probabilities (geometric mean) or probabilities (arithmetic mean).

    Returns
    -------
    torch.Tensor
        Shape ``(..., V)``; for ``"prob"`` these are log-probabilities (they sum to one after
        ``exp``), for ``"logprob"`` unnormalised log-probabilities.

    Raises
    ------
    ValueError
        If ``logits`` is empty, the shapes differ, or ``combine`` is unknown.
    TypeError
        If an item is not a tensor.

    Examples
    --------
    >>> a = torch.tensor([0.0, 0.0]).log_softmax(-1)       # (1/2, 1/2)
    >>> b = torch.tensor([0.9, 0.1]).log()                 # (0.9, 0.1)
    >>> combine_logits([a, b], "prob").exp()               # arithmetic mean
    tensor([0.7000, 0.3000])
    >>> combine_logits([a, b]).softmax(-1)                 # geometric mean, normalised
    tensor([0.7500, 0.2500])

    See Also
    --------
    Ensemble : decodes several models with these combined logits.

    References
    ----------
    sutskever2014sequence.  Chapter: :ref:`ch-seq2seq`.
    """
    check_choice("combine", combine, _COMBINE)
    if isinstance(logits, (str, bytes, torch.Tensor)) or not isinstance(logits, Sequence):
        raise TypeError(f"logits must be a sequence of tensors, one per member, got "
                        f"{type(logits).__name__}")
    logits = list(logits)
    if not logits:
        raise ValueError("logits is empty: an ensemble needs at least one member")
    for i, z in enumerate(logits):
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"logits[{i}] must be a tensor, got {type(z).__name__}")
        if z.shape != logits[0].shape:
            raise ValueError(f"logits[{i}] has shape {tuple(z.shape)} but logits[0] has "
                             f"{tuple(logits[0].shape)}: the members must share the vocabulary")
    # log p_m = z_m - logsumexp(z_m)
    logp = torch.stack([z.float().log_softmax(dim=-1) for z in logits])      # (M, ..., V)
    if combine == "logprob":
        # z̄_v = (1/M) Σ_m log p_m(v)
        return logp.mean(dim=0)                                              # (..., V)
    # z̄_v = log (1/M) Σ_m p_m(v)
    return torch.logsumexp(logp, dim=0) - math.log(len(logits))              # (..., V)


class Ensemble:
    r"""Several sequence models decoded as one: their next-token distributions averaged.

    Explanation
    -----------
    The ensemble's decoder state is the tuple of the members' states; :meth:`step` advances
    every member by the same tokens and returns :func:`combine_logits` of their logits.
    Since every state tensor keeps the batch first, the decoders of :mod:`dlmath.decoding`
    can select and repeat rows of it (beam search does), so greedy decoding, beam search
    and sampling work on the ensemble unchanged.  Decoding costs :math:`M` times one
    member's.

    Parameters
    ----------
    models : sequence
        The members, each with ``start_state(src)`` and ``step(tokens, state)``, sharing
        the target vocabulary (e.g. trained :class:`dlmath.models.seq2seq.Seq2Seq` models).
    combine : {"logprob", "prob"}
        See :func:`combine_logits`.

    Raises
    ------
    ValueError
        If ``models`` is empty or ``combine`` is unknown.
    TypeError
        If a member lacks ``start_state`` or ``step``.

    Examples
    --------
    >>> from dlmath.models.seq2seq import Seq2Seq
    >>> from dlmath.decoding import greedy_decode
    >>> models = []
    >>> for seed in (0, 1):
    ...     _ = torch.manual_seed(seed)
    ...     models.append(Seq2Seq(10, 12, emb_dim=8, hidden_size=16).eval())
    >>> ens = Ensemble(models)
    >>> src = torch.tensor([[4, 5, 6], [7, 8, 0]])
    >>> logits, state = ens.step(torch.tensor([1, 1]), ens.start_state(src))
    >>> tuple(logits.shape), len(state)                    # (B, V), one state per member
    ((2, 12), 2)
    >>> hyps = greedy_decode(ens.step, ens.start_state(src), bos=1, eos=2, max_len=4)
    >>> len(hyps), all(len(h.tokens) <= 4 for h in hyps)
    (2, True)

    See Also
    --------
    combine_logits : the combination rule.
    dlmath.decoding.beam_search, dlmath.decoding.greedy_decode : decoders that accept
    ``ensemble.step``.
    dlmath._book.spelling.spell : decodes spellings with a model or an ensemble.

    References
    ----------
    sutskever2014sequence.  Chapter: :ref:`ch-seq2seq`.
    """

    def __init__(self, models: Sequence[Any], combine: Combine = "logprob") -> None:
        check_choice("combine", combine, _COMBINE)
        if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
            raise TypeError(f"models must be a sequence of models, got {type(models).__name__}")
        models = list(models)
        if not models:
            raise ValueError("models is empty: an ensemble needs at least one member")
        for i, m in enumerate(models):
            methods = (getattr(m, "start_state", None), getattr(m, "step", None))
            if not all(callable(f) for f in methods):
                raise TypeError(f"models[{i}] ({type(m).__name__}) needs start_state(src) and "
                                f"step(tokens, state) methods")
        self.models = models
        self.combine: Combine = combine

    def __len__(self) -> int:
        return len(self.models)

    def start_state(self, src: torch.Tensor) -> tuple[Any, ...]:
        """The members' initial decoder states for the sources ``src`` ``(B, S)``."""
        return tuple(m.start_state(src) for m in self.models)

    def step(self, tokens: torch.Tensor, state: tuple[Any, ...]
             ) -> tuple[torch.Tensor, tuple[Any, ...]]:
        """Last tokens ``(N,)`` -> combined next-token logits ``(N, V)`` and the new states."""
        if not isinstance(state, tuple) or len(state) != len(self.models):
            raise ValueError(f"state must be a tuple of {len(self.models)} member states, as "
                             f"returned by start_state")
        outs = [m.step(tokens, s) for m, s in zip(self.models, state)]
        logits = combine_logits([z for z, _ in outs], self.combine)             # (N, V)
        return logits, tuple(s for _, s in outs)
