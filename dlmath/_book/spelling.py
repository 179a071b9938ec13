"""Spelling a word from its pronunciation: the training task and the decoders of the seq2seq chapter.

Scope: what the encoder-decoder of :mod:`dlmath.models.seq2seq` needs to be trained by
:func:`dlmath.engine.train.run` and judged by error rates, on the pairs of
:func:`dlmath.data.words.cmudict_splits` (ARPAbet phonemes -> lower-case letters).

* :func:`dlmath.data.spelling_splits`: the splits as tensors.  The training split is teacher-forced
  (inputs: phonemes and ``<bos> y_1 ... y_n``; targets: ``y_1 ... y_n <eos>``); the
  validation and test splits hold the phonemes alone, so that a model must spell them
  *free-running*, as at test time.
* :class:`dlmath.models.Speller`: a :class:`~dlmath.models.seq2seq.Seq2Seq` that, called with the source alone,
  decodes greedily and returns the logits of every step it took.
* :class:`SpellingTask`: the training task: cross-entropy under teacher forcing; as metrics
  the CER and WER of the sequences the outputs spell.  Together with :class:`~dlmath.models.Speller`, the
  validation CER of greedy decoding is measured after every epoch by the training loop.
* :func:`spell`: greedy decoding, beam search or sampling of spellings for a list of
  pronunciations, with any model that has ``start_state`` and ``step`` (a trained model, or
  a :class:`dlmath.engine.ensemble.Ensemble`).

Chapter: :ref:`ch-seq2seq`.

References: The CMU Pronouncing Dictionary [cmudict]; Bahdanau, Cho & Bengio (2015)
[bahdanau2015neural]; Levenshtein (1966) [levenshtein1966binary] for the edit distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch

from dlmath._validate import check_int
from dlmath.data.words import letter_vocab, phoneme_vocab
from dlmath.decoding import beam_search, greedy_decode, sample_decode, sample_distinct
from dlmath.metrics import edit_distance, sequence_cross_entropy
from dlmath.models.seq2seq import _no_specials

__all__ = ["SpellingTask", "Spelling", "spell"]

_LETTERS = letter_vocab()
_PHONEMES = phoneme_vocab()


def _cut(ids: Sequence[int], eos_id: int, pad_id: int) -> list[int]:
    out = []
    for i in ids:
        if i == eos_id:
            break
        if i != pad_id:
            out.append(i)
    return out


@dataclass(frozen=True)
class SpellingTask:
    """Teacher-forced cross-entropy for training; CER and WER of the spelled words as metrics.

    Explanation
    -----------
    ``loss(logits, targets)`` is the mean cross-entropy per target token, padding
    (``pad_id``) ignored (:func:`dlmath.metrics.sequence_cross_entropy`).

    ``metrics(logits, targets)`` reads the spelled sequence of each row as the argmax
    tokens up to the first ``<eos>``, and the reference as the target tokens up to
    ``<eos>``; it returns the numerator and denominator of the micro-averaged CER (edit
    distance over reference letters) and of the WER (whole words wrong over words).  On the
    outputs of a free-running :class:`~dlmath.models.Speller` (evaluation splits of
    :func:`~dlmath.data.spelling_splits`) these are the CER and WER of greedy decoding.  The outputs may
    be shorter or longer than the targets.

    Parameters
    ----------
    pad_id, eos_id : int

    Examples
    --------
    >>> task = SpellingTask()
    >>> targets = torch.tensor([[5, 3, 22, 2], [6, 17, 2, 0]])    # "cat", "do"
    >>> spelled = torch.tensor([[5, 3, 22, 2], [6, 17, 17, 2]])   # "cat", "doo"
    >>> logits = torch.nn.functional.one_hot(spelled, 29).float()
    >>> {k: (int(s), int(n)) for k, (s, n) in task.metrics(logits, targets).items()}
    {'cer': (1, 5), 'wer': (1, 2)}

    See Also
    --------
    dlmath.models.Speller, dlmath.metrics.cer, dlmath.metrics.wer

    References
    ----------
    levenshtein1966binary.  Chapter: :ref:`ch-seq2seq`.
    """

    pad_id: int = 0
    eos_id: int = 2

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per non-padding target token."""
        return sequence_cross_entropy(outputs, targets, ignore_index=self.pad_id)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{"cer": (edits, reference letters), "wer": (wrong words, words)}``."""
        if outputs.dim() != 3 or targets.dim() != 2 or outputs.shape[0] != targets.shape[0]:
            raise ValueError(f"outputs must be (B, L, V) and targets (B, T) with the same B, got "
                             f"{tuple(outputs.shape)} and {tuple(targets.shape)}")
        edits = letters = wrong = 0
        for hyp, ref in zip(outputs.argmax(dim=-1).tolist(), targets.tolist()):
            h, r = _cut(hyp, self.eos_id, self.pad_id), _cut(ref, self.eos_id, self.pad_id)
            edits += edit_distance(h, r)
            letters += len(r)
            wrong += h != r
        n = targets.shape[0]
        as_t = lambda v: torch.tensor(float(v), dtype=torch.float64)  # noqa: E731
        return {"cer": (as_t(edits), as_t(letters)), "wer": (as_t(wrong), as_t(n))}


class Spelling(NamedTuple):
    """One candidate spelling: the word, its log-probability under the model, and whether
    the model ended it with ``<eos>`` (instead of running out of steps)."""

    word: str
    log_prob: float
    finished: bool


Method = Literal["greedy", "beam", "sample", "sample_distinct"]
_METHODS = ("greedy", "beam", "sample", "sample_distinct")


@torch.no_grad()
def spell(model: Any, pronunciations: Sequence[Sequence[str]], method: Method = "greedy", *,
          beam_width: int = 5, alpha: float = 1.0, k: int = 3, temperature: float = 1.0,
          top_p: float | None = None, seed: int = 0, max_len: int = 13,
          batch_size: int = 1000) -> list[list[Spelling]]:
    """Candidate spellings of each pronunciation, best first.

    Explanation
    -----------
    ``method`` chooses the decoder of :mod:`dlmath.decoding`:

    * ``"greedy"``: one candidate, the most likely letter at every step;
    * ``"beam"``: the ``beam_width`` hypotheses of beam search, ranked by
      :math:`\\log p(y)/|y|^{\\alpha}`;
    * ``"sample"``: one sample from the filtered distribution (``temperature``,
      nucleus ``top_p``);
    * ``"sample_distinct"``: ``k`` distinct samples (fewer if the distribution is too
      sharp), most likely first.

    A spelling is made of letters and ends with ``<eos>``: the decoders never choose
    ``<pad>`` or ``<bos>`` (their logits are set to :math:`-\\infty`), so each candidate's
    ``log_prob`` is its log-probability under the model's next-token distributions
    renormalised over the letters and ``<eos>`` (no filter, no temperature).  A trained
    model gives those two tokens almost no probability, so this changes nothing visible.
    ``model`` is anything with ``start_state(src)`` and ``step(tokens, state)``: a trained
    :class:`~dlmath.models.seq2seq.Seq2Seq` in evaluation mode or a
    :class:`dlmath.engine.ensemble.Ensemble`.

    Parameters
    ----------
    model : object
    pronunciations : sequence of sequence of str
        ARPAbet phonemes without stress, e.g. ``("K", "AE", "T")``.
    method : {"greedy", "beam", "sample", "sample_distinct"}
    beam_width, alpha : int, float
        Beam search (``"beam"``).
    k, temperature, top_p : int, float, float
        Sampling.
    seed : int
        Seed of the sampling generator (the same seed gives the same samples).
    max_len : int
        Most tokens per spelling, ``<eos>`` included.
    batch_size : int
        Pronunciations decoded at once.

    Returns
    -------
    list of list of Spelling

    Raises
    ------
    ValueError
        If ``method`` is unknown or ``pronunciations`` is empty (and as the decoders).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> from dlmath.models import Seq2Seq
    >>> model = Seq2Seq(42, 29, emb_dim=8, hidden_size=16).eval()
    >>> prons = [("K", "AE", "T"), ("D", "AO", "G")]
    >>> [len(c) for c in spell(model, prons, "beam", beam_width=3, max_len=6)]
    [3, 3]
    >>> c = spell(model, prons, "sample_distinct", k=2, top_p=0.9, max_len=6)
    >>> [len({s.word for s in cands}) for cands in c]
    [2, 2]

    See Also
    --------
    dlmath.decoding.greedy_decode, dlmath.decoding.beam_search,
    dlmath.decoding.sample_distinct, dlmath.engine.ensemble.Ensemble

    References
    ----------
    sutskever2014sequence, holtzman2020curious.  Chapter: :ref:`ch-seq2seq`.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not pronunciations:
        raise ValueError("pronunciations is empty")
    check_int("batch_size", batch_size, 1)
    generator = torch.Generator().manual_seed(seed)
    bos, eos = _LETTERS.bos_id, _LETTERS.eos_id

    def step(tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits, state = model.step(tokens, state)
        return _no_specials(logits, _LETTERS.pad_id, bos), state

    out: list[list[Spelling]] = []
    for start in range(0, len(pronunciations), batch_size):
        chunk = [tuple(p) for p in pronunciations[start:start + batch_size]]
        src = _PHONEMES.encode_batch(chunk)                                 # (B, S)
        state = model.start_state(src)
        if method == "greedy":
            hyps = [[h] for h in greedy_decode(step, state, bos, eos, max_len)]
        elif method == "beam":
            hyps = beam_search(step, state, bos, eos, max_len, beam_width, alpha=alpha)
        elif method == "sample":
            hyps = [[h] for h in sample_decode(step, state, bos, eos, max_len,
                                               temperature=temperature, top_p=top_p,
                                               generator=generator)]
        else:
            hyps = sample_distinct(step, state, bos, eos, max_len, k,
                                   temperature=temperature, top_p=top_p, generator=generator)
        out += [[Spelling(_LETTERS.decode(h.tokens), h.log_prob, h.finished) for h in hs]
                for hs in hyps]
    return out
