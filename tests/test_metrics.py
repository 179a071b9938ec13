"""Tests of dlmath.metrics against brute-force recursion and rapidfuzz's Levenshtein."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from dlmath.metrics import cer, edit_distance, sequence_cross_entropy, wer, wer_at_k

short = st.text(alphabet="abc", max_size=6)
medium = st.text(alphabet="abcdef", max_size=30)
words = st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "a"]), max_size=8).map(" ".join)


def brute_edit_distance(a: str, b: str) -> int:
    """Exhaustive recursion over the three edits of the first item (no memo, no table)."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    return min(brute_edit_distance(a[1:], b) + 1,                   # delete a[0]
               brute_edit_distance(a, b[1:]) + 1,                   # insert b[0]
               brute_edit_distance(a[1:], b[1:]) + (a[0] != b[0]))  # substitute or keep


@given(short, short)
def test_edit_distance_matches_brute_force(a, b):
    assert edit_distance(a, b) == brute_edit_distance(a, b)


@given(medium, medium)
def test_edit_distance_matches_rapidfuzz(a, b):
    assert edit_distance(a, b) == Levenshtein.distance(a, b)


@given(st.lists(st.integers(0, 4), max_size=15), st.lists(st.integers(0, 4), max_size=15))
def test_edit_distance_on_token_lists_matches_rapidfuzz(a, b):
    assert edit_distance(a, b) == Levenshtein.distance(a, b)


@given(medium, medium, medium)
def test_metric_properties(a, b, c):
    dab, dba = edit_distance(a, b), edit_distance(b, a)
    assert dab == dba                                                   # symmetry
    assert (dab == 0) == (a == b)                                       # identity of indiscernibles
    assert edit_distance(a, c) <= dab + edit_distance(b, c)             # triangle inequality
    assert abs(len(a) - len(b)) <= dab <= max(len(a), len(b))           # simple bounds


def test_edit_distance_known_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("flaw", "lawn") == 2


@given(st.lists(st.tuples(medium, medium.filter(bool)), min_size=1, max_size=6))
def test_cer_micro_and_macro(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    dists = [Levenshtein.distance(h, r) for h, r in pairs]
    assert math.isclose(cer(hyps, refs), sum(dists) / sum(len(r) for r in refs))
    assert math.isclose(cer(hyps, refs, average="macro"),
                        sum(d / len(r) for d, r in zip(dists, refs)) / len(refs))


def test_cer_weighs_long_words_more_when_micro():
    # one error in a 1-letter word and none in a 9-letter word
    assert cer(["x", "remainder"], ["a", "remainder"]) == pytest.approx(1 / 10)
    assert cer(["x", "remainder"], ["a", "remainder"], average="macro") == pytest.approx(0.5)


@given(st.lists(st.tuples(words, words.filter(bool)), min_size=1, max_size=6))
def test_wer_matches_rapidfuzz_on_word_lists(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    dists = [Levenshtein.distance(h.split(), r.split()) for h, r in pairs]
    assert math.isclose(wer(hyps, refs), sum(dists) / sum(len(r.split()) for r in refs))


@given(st.lists(st.tuples(st.text("ab", min_size=1, max_size=3),
                          st.text("ab", min_size=1, max_size=3)), min_size=1, max_size=10))
def test_wer_of_single_words_is_fraction_wrong(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    wrong = sum(h != r for h, r in pairs)
    assert math.isclose(wer(hyps, refs), wrong / len(pairs))


@given(st.lists(st.tuples(st.lists(st.text("ab", min_size=1, max_size=3), max_size=4),
                          st.text("ab", min_size=1, max_size=3)), min_size=1, max_size=10))
def test_wer_at_k_single_words(items):
    cands, refs = [c for c, _ in items], [r for _, r in items]
    missed = sum(r not in c for c, r in items)                        # none of the k is right
    assert math.isclose(wer_at_k(cands, refs), missed / len(items))


@given(st.lists(st.tuples(st.lists(words, min_size=1, max_size=4), words.filter(bool)),
                min_size=1, max_size=5))
def test_wer_at_k_reduces_to_wer_and_decreases_with_k(items):
    cands, refs = [c for c, _ in items], [r for _, r in items]
    assert math.isclose(wer_at_k(cands, refs, k=1), wer([c[0] for c in cands], refs))
    rates = [wer_at_k(cands, refs, k=k) for k in range(1, 5)]
    assert all(x >= y - 1e-12 for x, y in zip(rates, rates[1:]))


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="hypotheses has 1 items but references has 2"):
        cer(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="references is empty"):
        wer([], [])
    with pytest.raises(ValueError, match="total length 0"):
        cer([""], [""])
    with pytest.raises(ValueError, match="average"):
        cer(["a"], ["a"], average="mean")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="references must be a list"):
        cer(["a"], "a")
    with pytest.raises(TypeError, match="sequence"):
        edit_distance({1, 2}, [1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be >= 1"):
        wer_at_k([["a"]], ["a"], k=0)
    with pytest.raises(TypeError, match="list of lists"):
        wer_at_k(["a"], ["a"])


def brute_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore: int) -> float:
    total, count = 0.0, 0
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            y = int(targets[b, t])
            if y == ignore:
                continue
            z = logits[b, t].double()
            total += math.log(sum(math.exp(v) for v in z.tolist())) - float(z[y])
            count += 1
    return total / count


@given(st.integers(0, 2**16))
def test_sequence_cross_entropy_ignores_padding(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    targets = torch.randint(0, 4, (3, 5), generator=g)
    assume(bool((targets != 0).any()))
    got = sequence_cross_entropy(logits, targets, ignore_index=0).item()
    assert got == pytest.approx(brute_cross_entropy(logits, targets, 0), rel=1e-12)
    # what stands at an ignored position cannot matter
    logits2 = logits.clone()
    logits2[targets == 0] = 100.0
    assert sequence_cross_entropy(logits2, targets, ignore_index=0).item() == pytest.approx(got)


def test_sequence_cross_entropy_errors():
    with pytest.raises(ValueError, match="logits must be"):
        sequence_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="every target"):
        sequence_cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), 0)
