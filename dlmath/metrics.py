"""Error rates of sequence outputs: edit distance, CER, WER, WER@k, token cross-entropy.

Scope: the Levenshtein distance between two sequences (unit cost for an insertion, a
deletion and a substitution) and the corpus error rates built on it, as used to score a
model that spells a word from its pronunciation; plus the token-level cross-entropy on
padded sequences that the sequence models train with.  Chapter: :ref:`ch-seq2seq`.

Conventions (stated once, used everywhere below):

* An error rate is *micro-averaged* over the corpus by default: the total number of
  edits divided by the total reference length, so a long word weighs more than a short
  one (as in speech-recognition scoring).  ``average="macro"`` gives the mean of the
  per-item rates instead.
* Words are the whitespace-separated pieces of a string (``str.split()``).
* A prediction for one item is a string; ``wer_at_k`` takes a list of candidate strings.

References: V. I. Levenshtein, "Binary codes capable of correcting deletions, insertions,
and reversals" (1966) [levenshtein1966binary].
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from dlmath._validate import check_int, check_tensor

__all__ = [
    "edit_distance",
    "cer",
    "wer",
    "wer_at_k",
    "sequence_cross_entropy",
]

Average = Literal["micro", "macro"]


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    r"""Levenshtein distance: fewest insertions, deletions and substitutions turning a into b.

    Explanation
    -----------
    With :math:`D_{i,j}` the distance between the first :math:`i` items of ``a`` and the
    first :math:`j` items of ``b``, :math:`D_{i,0} = i`, :math:`D_{0,j} = j` and

    .. math:: D_{i,j} = \min\bigl(D_{i-1,j} + 1,\; D_{i,j-1} + 1,\;
              D_{i-1,j-1} + [a_i \ne b_j]\bigr),

    (delete :math:`a_i`, insert :math:`b_j`, substitute or keep).  The answer is
    :math:`D_{|a|,|b|}`, computed row by row in :math:`O(|a|\,|b|)` time and
    :math:`O(|b|)` memory.  It is a metric: zero only for equal sequences, symmetric, and it
    satisfies the triangle inequality.  Items may be characters (a ``str``) or any hashable
    tokens (a list of words, a list of ids).

    Parameters
    ----------
    a, b : sequence of hashable
        The two sequences, e.g. two strings or two lists of words.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a sequence (a set, an int, ...).

    Examples
    --------
    >>> edit_distance("kitten", "sitting")        # k->s, e->i, insert g
    3
    >>> edit_distance("crudites", "cruditay")     # two substitutions
    2
    >>> edit_distance("the cat sat".split(), "the cat".split())
    1

    See Also
    --------
    cer, wer : corpus error rates built on this distance.

    References
    ----------
    levenshtein1966binary.  Chapter: :ref:`ch-seq2seq`.
    """
    for name, seq in (("a", a), ("b", b)):
        if not isinstance(seq, Sequence):
            raise TypeError(f"{name} must be a sequence (str, list or tuple), "
                            f"got {type(seq).__name__}")
    if len(a) < len(b):  # keep the row over the shorter sequence
        a, b = b, a
    previous = list(range(len(b) + 1))            # D_{0, j} = j
    for i, ai in enumerate(a, start=1):
        current = [i]                             # D_{i, 0} = i
        for j, bj in enumerate(b, start=1):
            current.append(min(previous[j] + 1,                  # delete a_i
                               current[j - 1] + 1,               # insert b_j
                               previous[j - 1] + (ai != bj)))    # substitute / keep
        previous = current
    return previous[-1]


def _check_corpus(hypotheses: Sequence[object], references: Sequence[str], name: str,
                  strings: bool = False) -> None:
    """A corpus: as many hypotheses as references (strings, or lists of them when not
    ``strings``), at least one reference."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(f"references must be a list of strings, got {type(references).__name__}")
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise TypeError(f"{name} must be a list, got {type(hypotheses).__name__}")
    if len(hypotheses) != len(references):
        raise ValueError(f"{name} has {len(hypotheses)} items but references has {len(references)}")
    if len(references) == 0:
        raise ValueError("references is empty: an error rate needs at least one reference")
    for what, items in (("references", references), (name, hypotheses if strings else ())):
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"{what} must contain strings, got {type(item).__name__}")


def _rate(errors: list[int], lengths: list[int], average: str) -> float:
    if average == "micro":
        total = sum(lengths)
        if total == 0:
            raise ValueError("the references have total length 0: the error rate is undefined")
        return sum(errors) / total
    if average == "macro":
        if any(n == 0 for n in lengths):
            raise ValueError("a reference has length 0: its own rate (needed by average='macro') "
                             "is undefined")
        return sum(e / n for e, n in zip(errors, lengths)) / len(lengths)
    raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")


def cer(hypotheses: Sequence[str], references: Sequence[str], average: Average = "micro") -> float:
    r"""Character error rate of a corpus of predicted strings.

    Explanation
    -----------
    With :math:`d` the edit distance (:func:`edit_distance`) on characters and
    :math:`|r|` the reference length,

    .. math:: \mathrm{CER}_{\text{micro}} = \frac{\sum_n d(h_n, r_n)}{\sum_n |r_n|},
              \qquad
              \mathrm{CER}_{\text{macro}} = \frac1N \sum_n \frac{d(h_n, r_n)}{|r_n|}.

    The default is micro-averaging (total edits over total reference characters).  A CER
    can exceed 1 (a long wrong output needs more edits than the reference has characters).

    Parameters
    ----------
    hypotheses, references : list of str
        Predicted and reference strings, aligned item by item.
    average : {"micro", "macro"}
        Corpus average (see above).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the lists differ in length, are empty, or the references have length 0 (macro:
        any reference of length 0); or ``average`` is unknown.
    TypeError
        If the arguments are not lists of strings.

    Examples
    --------
    >>> cer(["cat", "dgo"], ["cat", "dog"])         # 0 + 2 edits over 3 + 3 characters
    0.3333333333333333
    >>> cer(["a", "abcd"], ["b", "abcd"], average="macro")   # (1/1 + 0/4) / 2
    0.5
    >>> cer(["a", "abcd"], ["b", "abcd"])                     # 1 / 5
    0.2

    See Also
    --------
    wer : the same rate on words.  edit_distance : the distance it sums.

    References
    ----------
    levenshtein1966binary.  Chapter: :ref:`ch-seq2seq`.
    """
    _check_corpus(hypotheses, references, "hypotheses", strings=True)
    errors = [edit_distance(h, r) for h, r in zip(hypotheses, references)]
    return _rate(errors, [len(r) for r in references], average)


def wer(hypotheses: Sequence[str], references: Sequence[str], average: Average = "micro") -> float:
    r"""Word error rate of a corpus of predicted strings.

    Explanation
    -----------
    The edit distance on *words* (``str.split()``) summed over the corpus, divided by the
    total number of reference words (micro; ``average="macro"`` averages per-item rates):

    .. math:: \mathrm{WER} = \frac{\sum_n d(\mathrm{words}(h_n), \mathrm{words}(r_n))}
                                  {\sum_n |\mathrm{words}(r_n)|}.

    When every reference and every prediction is a single word, the word edit distance is
    0 for an exact match and 1 otherwise (one substitution), so the WER is the fraction of
    words not spelled exactly right.  An empty prediction counts as one deletion.

    Parameters
    ----------
    hypotheses, references : list of str
    average : {"micro", "macro"}

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`cer`; in particular when the references contain no word at all.
    TypeError
        If the arguments are not lists of strings.

    Examples
    --------
    >>> wer(["cat", "dgo", "bird"], ["cat", "dog", "bird"])      # one word in three wrong
    0.3333333333333333
    >>> wer(["the cat sat on mat"], ["the cat sat on the mat"])  # one deletion in six words
    0.16666666666666666

    See Also
    --------
    cer : the same rate on characters.  wer_at_k : best of k candidates.

    References
    ----------
    levenshtein1966binary.  Chapter: :ref:`ch-seq2seq`.
    """
    _check_corpus(hypotheses, references, "hypotheses", strings=True)
    errors = [edit_distance(h.split(), r.split()) for h, r in zip(hypotheses, references)]
    return _rate(errors, [len(r.split()) for r in references], average)


def wer_at_k(candidates: Sequence[Sequence[str]], references: Sequence[str], k: int | None = None,
             average: Average = "micro") -> float:
    r"""Oracle word error rate of k candidates: an item counts as right if any candidate is.

    Explanation
    -----------
    Each item has a list of candidate strings (e.g. the k distinct samples or the k beams
    of a decoder).  Its error is the *smallest* word edit distance of a candidate to the
    reference, and the rate is micro-averaged as in :func:`wer`:

    .. math:: \mathrm{WER@}k = \frac{\sum_n \min_{c \in C_n^{(k)}}
              d(\mathrm{words}(c), \mathrm{words}(r_n))}{\sum_n |\mathrm{words}(r_n)|}.

    For single words this is the fraction of words that none of the first :math:`k`
    candidates spells exactly right.  With one candidate per item it equals :func:`wer`,
    and it can only decrease as :math:`k` grows.  An item with no candidate counts as
    an empty prediction.

    Parameters
    ----------
    candidates : list of list of str
        For each item, its candidates, best first.
    references : list of str
    k : int, optional
        Use only the first ``k`` candidates of each item (default: all of them).
    average : {"micro", "macro"}

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``k < 1``, or as :func:`wer`.
    TypeError
        If ``candidates`` is not a list of lists of strings.

    Examples
    --------
    >>> cands = [["remender", "remainder"], ["scaur", "skeer"], ["slogger"]]
    >>> wer_at_k(cands, ["remainder", "scare", "slogger"])           # 'scare' is missed
    0.3333333333333333
    >>> wer_at_k(cands, ["remainder", "scare", "slogger"], k=1)      # = wer of the first ones
    0.6666666666666666

    See Also
    --------
    wer : the rate of a single prediction per item.

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    _check_corpus(candidates, references, "candidates")
    check_int("k", k, 1, allow_none=True)
    errors = []
    for cands, r in zip(candidates, references):
        if isinstance(cands, str) or not isinstance(cands, Sequence):
            raise TypeError(f"candidates must be a list of lists of strings, got an item of type "
                            f"{type(cands).__name__}")
        cands = list(cands[:k]) if k is not None else list(cands)
        for c in cands:
            if not isinstance(c, str):
                raise TypeError(f"candidates must contain strings, got {type(c).__name__}")
        ref_words = r.split()
        errors.append(min((edit_distance(c.split(), ref_words) for c in cands),
                          default=len(ref_words)))
    return _rate(errors, [len(r.split()) for r in references], average)


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                           ignore_index: int = -100) -> torch.Tensor:
    r"""Mean cross-entropy per target token of padded sequences, skipping padding.

    Explanation
    -----------
    For logits :math:`z_{b,t} \in \mathbb{R}^V` and target ids :math:`y_{b,t}`, the loss is

    .. math:: L = \frac{1}{|M|} \sum_{(b,t) \in M}
              \Bigl(\log \sum_v e^{z_{b,t,v}} - z_{b,t,y_{b,t}}\Bigr),
              \qquad M = \{(b, t) : y_{b,t} \ne \text{ignore\_index}\},

    the average over real (non-padding) target tokens, so a batch of short words is not
    down-weighted by its padding.  Its exponential is the per-token perplexity.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(B, T, V)``.
    targets : torch.Tensor
        Integer ids, shape ``(B, T)``; positions equal to ``ignore_index`` are skipped.
    ignore_index : int
        The padding id of the targets (the models of dlmath pass their ``pad_id``).

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    ValueError
        If the shapes do not match, or every target is ``ignore_index``.

    Examples
    --------
    >>> logits = torch.zeros(1, 3, 4)                 # uniform over 4 tokens
    >>> targets = torch.tensor([[2, 1, 0]])           # the last position is padding (id 0)
    >>> round(sequence_cross_entropy(logits, targets, ignore_index=0).item(), 4)  # ln 4
    1.3863

    See Also
    --------
    dlmath.models.seq2seq.Seq2Seq.loss : the encoder-decoder's loss, which calls it.
    dlmath.models.gpt.GPT.loss : the GPT's loss, which calls it.

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    check_tensor("logits", logits, floating=True, real=True)
    check_tensor("targets", targets, integer=True)
    ignore_index = check_int("ignore_index", ignore_index)
    if logits.dim() != 3 or targets.dim() != 2 or logits.shape[:2] != targets.shape \
            or logits.shape[-1] == 0:
        raise ValueError(f"logits must be (B, T, V) with V >= 1 and targets (B, T); got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    real = targets != ignore_index
    if not bool(real.any()):
        raise ValueError(f"every target equals ignore_index {ignore_index}: nothing to average")
    V = logits.shape[-1]
    if bool(((targets < 0) | (targets >= V))[real].any()):
        raise ValueError(f"targets must be token ids in [0, {V}) (V from logits) or "
                         f"ignore_index {ignore_index}, got {targets[real].min().item()} .. "
                         f"{targets[real].max().item()}")
    # (B*T, V) against (B*T,); padding positions contribute nothing to sum or count
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=ignore_index)
