"""Tests of dlmath._book.char_lm: the word data, sampling, sample statistics and n-gram baselines.

Oracles: the word lists of dlmath.data.words decoded back from the tensors, brute-force set
counting, sampling with top-k = 1 against greedy decoding, and an n-gram model written
independently with NumPy count arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath._book import char_lm
from dlmath.data.words import letter_vocab, lm_words, word_lm_splits
from dlmath.models.gpt import GPT, GPTConfig


@pytest.fixture(scope="module")
def small():
    return word_lm_splits(max_letters=5, max_train_words=300)


def test_word_lm_splits_round_trip(small):
    vocab = letter_vocab()
    x, y = small.train.inputs[0], small.train.targets
    assert x.shape == y.shape == (300, 6)
    assert vocab.decode_batch(x) == lm_words("train", max_letters=5)[:300]
    # the targets are the inputs shifted by one: <bos> in front, <eos> (then padding) behind
    assert (x[:, 0] == vocab.bos_id).all()
    assert torch.equal(x[:, 1:], y[:, :-1])
    lengths = torch.tensor([len(w) for w in lm_words("train", max_letters=5)[:300]])
    assert torch.equal(y[torch.arange(300), lengths], torch.full((300,), vocab.eos_id))
    assert small.info["words"]["validation"] == len(lm_words("validation", max_letters=5))
    assert len(small.val) == small.info["words"]["validation"]


def test_word_lm_splits_rejects_bad_input():
    with pytest.raises(ValueError, match="max_train_words"):
        word_lm_splits(max_train_words=0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=29, block_size=13, n_layer=1, n_embd=16, n_head=2)).eval()


def test_sample_words_top1_is_greedy(model):
    greedy = char_lm.sample_words(model, 4, greedy=True)
    top1 = char_lm.sample_words(model, 4, top_k=1, seed=3)
    assert greedy == top1 and len(set(greedy)) == 1


def test_sample_words_seeded_lengths_and_mode(model):
    model.train()
    a = char_lm.sample_words(model, 20, temperature=1.5, seed=1, max_letters=4)
    b = char_lm.sample_words(model, 20, temperature=1.5, seed=1, max_letters=4)
    assert a == b and model.training          # reproducible, and the mode is restored
    model.eval()
    assert all(len(w) <= 5 and set(w) <= set("abcdefghijklmnopqrstuvwxyz") for w in a)
    with pytest.raises(ValueError, match="num_words"):
        char_lm.sample_words(model, 0)


words_st = st.lists(st.sampled_from(["a", "ab", "cat", "dog", "zz", "q"]), min_size=1, max_size=12)


@given(words=words_st, dic=st.sets(st.sampled_from(["a", "ab", "cat", "dog"])),
       train=st.sets(st.sampled_from(["a", "cat", "zz"])))
def test_word_sample_stats_brute_force(words, dic, train):
    s = char_lm.word_sample_stats(words, dic, train)
    n = len(words)
    assert s.num_words == n
    assert s.real == pytest.approx(len([w for w in words if w in dic]) / n)
    assert s.novel == pytest.approx(len([w for w in words if w not in train]) / n)
    assert s.novel_real == pytest.approx(len([w for w in words if w in dic and w not in train]) / n)
    assert s.distinct == pytest.approx(len(set(words)) / n)
    assert s.mean_length == pytest.approx(np.mean([len(w) for w in words]))


def test_word_sample_stats_rejects_empty():
    with pytest.raises(ValueError, match="words"):
        char_lm.word_sample_stats([], set(), set())


def _ngram_oracle(train, test, order, alpha):
    """n-gram cross-entropy with a NumPy count array over (history, next) indices."""
    sym = list("abcdefghijklmnopqrstuvwxyz") + ["$"]          # "$" = <eos>; "^" = <bos>
    idx = {c: i for i, c in enumerate(sym)}
    hist = {}
    counts = np.zeros((0, 27))

    def seqs(words):
        for w in words:
            s = "^" * (order - 1) + w + "$"
            for i in range(order - 1, len(s)):
                yield s[i - order + 1:i], s[i]

    for h, c in seqs(train):
        if h not in hist:
            hist[h] = len(hist)
            counts = np.vstack([counts, np.zeros(27)])
        counts[hist[h], idx[c]] += 1
    logs = []
    for h, c in seqs(test):
        row = counts[hist[h]] if h in hist else np.zeros(27)
        p = (row + alpha) / (row.sum() + 27 * alpha)
        assert abs(p.sum() - 1) < 1e-12
        logs.append(-math.log(p[idx[c]]))
    return float(np.mean(logs))


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_char_ngram_cross_entropy_against_oracle(order, alpha):
    train = lm_words("train", max_letters=6)[:400]
    test = lm_words("validation", max_letters=6)[:100]
    ours = char_lm.char_ngram_cross_entropy(train, test, order, smoothing=alpha)
    assert ours == pytest.approx(_ngram_oracle(train, test, order, alpha), rel=1e-12)


def test_char_ngram_limits_and_errors():
    train = lm_words("train", max_letters=6)[:400]
    # a huge smoothing is the uniform model over 27 symbols
    assert char_lm.char_ngram_cross_entropy(train, ["abc"], 2, smoothing=1e12) == pytest.approx(math.log(27))
    # more context never hurts on the training words themselves (with tiny smoothing)
    ce = [char_lm.char_ngram_cross_entropy(train, train, n, smoothing=1e-6) for n in (1, 2, 3)]
    assert ce[0] > ce[1] > ce[2]
    with pytest.raises(ValueError, match="order"):
        char_lm.char_ngram_cross_entropy(train, ["a"], 0)
    with pytest.raises(ValueError, match="smoothing"):
        char_lm.char_ngram_cross_entropy(train, ["a"], 1, smoothing=0)
    with pytest.raises(ValueError, match="letters"):
        char_lm.char_ngram_cross_entropy(train, ["A"], 1)
    with pytest.raises(ValueError, match="eval_words"):
        char_lm.char_ngram_cross_entropy(train, [], 1)
