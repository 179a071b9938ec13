"""A character-level language model of English spellings: its data and how its samples are judged.

Scope: the words of the CMU Pronouncing Dictionary as next-character prediction data for
:class:`dlmath.models.gpt.GPT` trained by :func:`dlmath.engine.train.run` (:func:`dlmath.data.word_lm_splits`: each
word becomes ``<bos> c_1 ... c_n <eos>``, right-padded; the model reads all but the last
column and is scored on all but the first, padding ignored); drawing words from a trained
model with a temperature, top-k or nucleus filter (:func:`sample_words`); and measuring a
sample against the dictionary and the training words (:func:`word_sample_stats`); and the
cross-entropy of a smoothed character n-gram model on the same data, a baseline for the
model's loss (:func:`char_ngram_cross_entropy`).  The
word splits are those of :func:`dlmath.data.words.lm_words`.  Chapter: :ref:`ch-transformers`.

References: The CMU Pronouncing Dictionary [cmudict]; Holtzman et al., "The curious case of
neural text degeneration" (2020) for top-k and nucleus sampling.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dlmath._validate import check_bool, check_int, check_number
from dlmath.data.words import letter_vocab
from dlmath.decoding import greedy_decode

__all__ = ["sample_words", "WordSampleStats", "word_sample_stats",
           "char_ngram_cross_entropy"]


@torch.no_grad()
def sample_words(model: nn.Module, num_words: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                 seed: int = 0, max_letters: int = 12) -> list[str]:
    """Words drawn from a character language model, each started from ``<bos>``.

    Explanation
    -----------
    Calls ``model.generate`` (:class:`dlmath.models.gpt.GPT`) from a ``<bos>`` prompt, drawing each
    next letter from the model's distribution after the temperature and the top-k or top-p
    filter (:func:`dlmath.decoding.filter_logits`), until ``<eos>`` or ``max_letters + 1``
    tokens.  ``greedy=True`` takes the most likely letter every time instead (then every
    word is the same).

    Parameters
    ----------
    model : nn.Module
        With ``generate`` and ``step``/``start_state`` as :class:`dlmath.models.gpt.GPT`.
    num_words : int
        >= 1.
    temperature, top_k, top_p
        As in :func:`dlmath.decoding.filter_logits`.
    greedy : bool
    seed : int
    max_letters : int

    Returns
    -------
    list of str
        A word that did not end within the limit is returned as generated.

    Examples
    --------
    >>> from dlmath.models.gpt import GPT, GPTConfig
    >>> _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(vocab_size=29, block_size=13)).eval()
    >>> words = sample_words(model, 3, top_k=5, seed=1)
    >>> len(words), all(w.isalpha() or w == "" for w in words)
    (3, True)

    See Also
    --------
    word_sample_stats

    References
    ----------
    holtzman2020curious.  Chapter: :ref:`ch-transformers`.
    """
    check_int("num_words", num_words, 1)
    check_bool("greedy", greedy)
    vocab = letter_vocab()
    was_training = model.training
    model.eval()
    try:
        if greedy:
            hyps = greedy_decode(model.step, model.start_state(num_words), vocab.bos_id, vocab.eos_id,
                                 max_letters + 1)
        else:
            dev = next(model.parameters()).device
            prompt = torch.full((num_words, 1), vocab.bos_id, dtype=torch.long, device=dev)  # (N, 1)
            hyps = model.generate(prompt, max_letters + 1, eos_id=vocab.eos_id,
                                  temperature=temperature, top_k=top_k, top_p=top_p,
                                  generator=torch.Generator(device=dev).manual_seed(seed))
    finally:
        model.train(was_training)
    return [vocab.decode(h.tokens) for h in hyps]


@dataclass(frozen=True)
class WordSampleStats:
    """How a sample of generated words compares with the dictionary and the training words.

    Attributes
    ----------
    num_words : int
    real : float
        Fraction that are dictionary words.
    novel : float
        Fraction not among the training words.
    novel_real : float
        Fraction that are dictionary words *not* among the training words: real words the
        model never saw.
    distinct : float
        Number of different words divided by ``num_words``.
    mean_length : float
        Mean number of letters.
    """

    num_words: int
    real: float
    novel: float
    novel_real: float
    distinct: float
    mean_length: float


def word_sample_stats(words: Sequence[str], dictionary: Collection[str],
                      training: Collection[str]) -> WordSampleStats:
    """Fractions of a sample that are real, novel, real and novel, and distinct.

    Parameters
    ----------
    words : sequence of str
        The sample (non-empty).
    dictionary : collection of str
        The real words (e.g. :func:`dlmath.data.words.dictionary_words`); a set is fastest.
    training : collection of str
        The words the model was trained on.

    Returns
    -------
    WordSampleStats

    Raises
    ------
    ValueError
        If ``words`` is empty.

    Examples
    --------
    >>> s = word_sample_stats(["cat", "cat", "dog", "blorp"], {"cat", "dog"}, {"cat"})
    >>> s.real, s.novel, s.novel_real, s.distinct
    (0.75, 0.5, 0.25, 0.75)

    See Also
    --------
    sample_words

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    words = list(words)
    if not words:
        raise ValueError("words must not be empty")
    n = len(words)
    real = [w in dictionary for w in words]
    seen = [w in training for w in words]
    return WordSampleStats(
        num_words=n,
        real=sum(real) / n,
        novel=sum(not s for s in seen) / n,
        novel_real=sum(r and not s for r, s in zip(real, seen)) / n,
        distinct=len(set(words)) / n,
        mean_length=sum(map(len, words)) / n,
    )


def char_ngram_cross_entropy(train_words: Sequence[str], eval_words: Sequence[str], order: int,
                             smoothing: float = 1.0) -> float:
    r"""Cross-entropy in nats per character of an add-:math:`\alpha` character n-gram model.

    Explanation
    -----------
    Each word is read as ``<bos>`` :math:`c_1 \dots c_n` ``<eos>``.  The model predicts every
    symbol after ``<bos>`` (the letters and ``<eos>``, exactly the targets the language model
    is scored on) from the :math:`n-1` symbols before it, padded with ``<bos>`` at the start:

    .. math:: p(c \mid h) = \frac{N(h, c) + \alpha}{N(h) + \alpha V}, \qquad V = 27

    (26 letters and ``<eos>``), with counts :math:`N` from ``train_words``.  Order 1 ignores
    the context (letter frequencies).  Returned: the mean of :math:`-\log p` over every
    predicted symbol of ``eval_words``.

    Parameters
    ----------
    train_words, eval_words : sequence of str
        Lower-case letters only; ``eval_words`` non-empty.
    order : int
        :math:`n \ge 1`.
    smoothing : float
        :math:`\alpha > 0`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``order`` < 1, ``smoothing`` <= 0, ``eval_words`` is empty or a word holds a
        character other than a-z.

    Examples
    --------
    >>> round(char_ngram_cross_entropy(["ab"], ["ab"], order=1), 4)   # (2/30, 2/30, 2/30)
    2.7081
    >>> char_ngram_cross_entropy([], ["a"], order=2) == math.log(27)   # no data: uniform
    True

    See Also
    --------
    dlmath.data.word_lm_splits : the same targets, for the transformer.

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    check_int("order", order, 1)
    check_number("smoothing", smoothing, positive=True)
    eval_words = list(eval_words)
    if not eval_words:
        raise ValueError("eval_words must not be empty")
    alphabet = set("abcdefghijklmnopqrstuvwxyz")
    V = len(alphabet) + 1                                          # letters and <eos>

    def events(words):
        for w in words:
            if not set(w) <= alphabet:
                raise ValueError(f"words must hold the letters a-z only, got {w!r}")
            symbols = ["<bos>"] * (order - 1) + list(w) + ["<eos>"]
            for i in range(order - 1, len(symbols)):
                yield tuple(symbols[i - order + 1:i]), symbols[i]     # (history, next symbol)

    joint, context = Counter(), Counter()
    for h, c in events(train_words):
        joint[h, c] += 1
        context[h] += 1
    total, count = 0.0, 0
    for h, c in events(eval_words):
        # p(c | h) = (N(h, c) + alpha) / (N(h) + alpha V)
        total -= math.log((joint[h, c] + smoothing) / (context[h] + smoothing * V))
        count += 1
    return total / count
