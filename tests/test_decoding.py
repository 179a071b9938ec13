"""Tests of dlmath.decoding: filters against brute-force set definitions, decoders against
exhaustive enumeration and independent rescoring of the sequences they return."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlmath.decoding import (
    Hypothesis,
    apply_temperature,
    beam_search,
    filter_logits,
    greedy_decode,
    length_normalised_score,
    sample_decode,
    sample_distinct,
    sample_next,
    top_k_filter,
    top_p_filter,
)

EOS = 0


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # tiny models: one thread is much faster than two on a busy 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class ToyRNN:
    """A random recurrent model: the next-token logits depend on the whole history."""

    def __init__(self, vocab: int, seed: int, dim: int = 6, eos_bias: float = 0.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.E = torch.randn(vocab, dim, generator=g)
        self.W = torch.randn(dim, dim, generator=g) / math.sqrt(dim)
        self.U = torch.randn(dim, vocab, generator=g) * 1.5
        self.U[:, EOS] += eos_bias / dim
        self.h0_gen = g

    def start(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.W.shape[0], generator=self.h0_gen)   # (N, d), one per input

    def step(self, tok: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(h @ self.W + self.E[tok])                          # (N, d)
        return h @ self.U, h                                              # (N, V)


def rescore(model: ToyRNN, h0: torch.Tensor, bos: int, hyp: Hypothesis) -> float:
    """Log-probability of a hypothesis, recomputed token by token in float64."""
    seq = list(hyp.tokens) + ([EOS] if hyp.finished else [])
    h, tok, total = h0[None].clone(), torch.tensor([bos]), 0.0
    for y in seq:
        logits, h = model.step(tok, h)
        total += logits.double().log_softmax(-1)[0, y].item()
        tok = torch.tensor([y])
    return total


# --- filters ----------------------------------------------------------------------------------

logit_lists = st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=8)


@given(logit_lists, st.integers(1, 10))
def test_top_k_keeps_exactly_the_k_largest(z, k):
    assume(len(set(z)) == len(z))                                     # ties: next test
    out = top_k_filter(torch.tensor(z, dtype=torch.float64), k)
    expected = set(sorted(range(len(z)), key=lambda i: -z[i])[:k])
    kept = {i for i in range(len(z)) if math.isfinite(out[i].item())}
    assert kept == expected
    assert all(out[i].item() == z[i] for i in kept)                   # values untouched


@given(st.lists(st.integers(0, 2), min_size=1, max_size=8), st.integers(1, 8))
def test_top_k_ties_go_to_the_lower_index(z, k):
    out = top_k_filter(torch.tensor(z, dtype=torch.float32), k)
    expected = set(sorted(range(len(z)), key=lambda i: (-z[i], i))[:k])
    assert {i for i in range(len(z)) if math.isfinite(out[i].item())} == expected


def brute_nucleus_size(probs: list[float], p: float) -> int:
    """Smallest m such that SOME subset of m tokens has mass >= p (all subsets tried)."""
    n = len(probs)
    for m in range(1, n + 1):
        if any(sum(probs[i] for i in c) >= p for c in itertools.combinations(range(n), m)):
            return m
    return n


@given(st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=7),
       st.floats(0.01, 0.99))
def test_top_p_keeps_the_smallest_set_reaching_p(z, p):
    zt = torch.tensor(z, dtype=torch.float64)
    probs = zt.softmax(-1).tolist()
    assume(len({round(q, 9) for q in probs}) == len(probs))            # no ties
    sums = itertools.accumulate(sorted(probs, reverse=True))
    assume(all(abs(s - p) > 1e-9 for s in sums))                      # p not on a boundary
    kept = [i for i, v in enumerate(top_p_filter(zt, p).tolist()) if math.isfinite(v)]
    m = brute_nucleus_size(probs, p)
    assert len(kept) == m
    assert sum(probs[i] for i in kept) >= p
    # and no other set of m tokens has more mass: the kept ones are the most likely
    assert sorted(probs[i] for i in kept) == sorted(probs, reverse=True)[:m][::-1]


@given(st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=50))
def test_top_p_one_keeps_the_full_distribution(z):
    zt = torch.tensor(z)
    assert torch.equal(top_p_filter(zt, 1.0).softmax(-1), zt.softmax(-1))
    assert torch.equal(filter_logits(zt), zt)                        # defaults change nothing


def test_top_p_keeps_the_most_likely_token_for_tiny_p():
    z = torch.tensor([[0.1, 2.0, 0.3], [5.0, 5.0, 0.0]])
    kept = top_p_filter(z, 1e-6).isfinite()
    assert kept.tolist() == [[False, True, False], [True, False, False]]


def test_temperature():
    z = torch.tensor([1.0, 2.0, 4.0])
    assert torch.allclose(apply_temperature(z, 1.0), z)
    p_cold = apply_temperature(z, 0.05).softmax(-1)
    assert p_cold[2] > 0.999                                         # tends to the argmax
    p_hot = apply_temperature(z, 1e4).softmax(-1)
    assert torch.allclose(p_hot, torch.full((3,), 1 / 3), atol=1e-3)  # tends to uniform


def test_filter_errors():
    z = torch.zeros(4)
    for call, match in [(lambda: top_k_filter(z, 0), "k must be >= 1"),
                        (lambda: top_p_filter(z, 0.0), r"p must be in \(0, 1\]"),
                        (lambda: top_p_filter(z, 1.5), r"p must be in \(0, 1\]"),
                        (lambda: apply_temperature(z, 0.0), "temperature must be > 0"),
                        (lambda: sample_next(z, 1.0), r"shape \(N, V\)")]:
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(TypeError, match="floating-point"):
        top_k_filter(torch.zeros(3, dtype=torch.long), 1)


def test_sampling_frequencies_follow_the_filtered_distribution():
    z = torch.log(torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15]))
    g = torch.Generator().manual_seed(0)
    n = 40000
    draws = sample_next(z.expand(n, -1), top_k=3, generator=g)
    freq = torch.bincount(draws, minlength=5).double() / n
    target = torch.tensor([0, 0.4, 0, 0.3, 0.15], dtype=torch.float64) / 0.85
    assert freq[0] == 0 and freq[2] == 0                              # outside top-3: never
    assert torch.allclose(freq, target, atol=0.015)
    draws = sample_next(z.expand(n, -1), top_p=0.65, generator=g)     # nucleus {1, 3}
    freq = torch.bincount(draws, minlength=5).double() / n
    assert torch.allclose(freq, torch.tensor([0, 4 / 7, 0, 3 / 7, 0], dtype=torch.float64),
                          atol=0.015)


# --- decoders ---------------------------------------------------------------------------------

model_args = st.tuples(st.integers(0, 10**6), st.integers(3, 7), st.integers(1, 4),
                       st.integers(1, 8))


@given(model_args)
def test_beam_width_one_is_greedy(args):
    seed, V, B, L = args
    m = ToyRNN(V, seed)
    h0 = m.start(B)
    greedy = greedy_decode(m.step, h0, bos=1, eos=EOS, max_len=L)
    beam = beam_search(m.step, h0, bos=1, eos=EOS, max_len=L, beam_width=1)
    assert [b[0] for b in beam] == greedy                              # tokens, log p, finished


@given(model_args)
def test_greedy_log_prob_and_argmax(args):
    seed, V, B, L = args
    m = ToyRNN(V, seed)
    h0 = m.start(B)
    for b, hyp in enumerate(greedy_decode(m.step, h0, bos=1, eos=EOS, max_len=L)):
        assert hyp.log_prob == pytest.approx(rescore(m, h0[b], 1, hyp), abs=1e-4)
        assert hyp.finished or len(hyp.tokens) == L
        # every chosen token is the argmax given its prefix
        h, tok = h0[b:b + 1], torch.tensor([1])
        for y in list(hyp.tokens) + [EOS] * hyp.finished:
            logits, h = m.step(tok, h)
            assert y == int(logits[0].argmax())
            tok = torch.tensor([y])


@given(st.integers(0, 10**6), st.sampled_from([0.0, 0.5, 1.0]))
def test_full_width_beam_search_is_exhaustive(seed, alpha):
    V, L = 3, 3                                # eos + 2 letters: 7 finished + 8 cut sequences
    m = ToyRNN(V, seed, eos_bias=1.0)
    h0 = m.start(1)
    hyps = beam_search(m.step, h0, bos=1, eos=EOS, max_len=L, beam_width=15, alpha=alpha)[0]
    every = [Hypothesis(seq, 0.0, True)
             for n in range(L) for seq in itertools.product((1, 2), repeat=n)]
    every += [Hypothesis(seq, 0.0, False) for seq in itertools.product((1, 2), repeat=L)]
    scored = {(h.tokens, h.finished): rescore(m, h0[0], 1, h) for h in every}
    assert {(h.tokens, h.finished) for h in hyps} == set(scored)
    for h in hyps:
        assert h.log_prob == pytest.approx(scored[(h.tokens, h.finished)], abs=1e-4)
    best = max(scored, key=lambda key: scored[key] / (len(key[0]) + key[1]) ** alpha)
    assert (hyps[0].tokens, hyps[0].finished) == best


@given(model_args, st.integers(2, 5))
def test_beam_hypotheses_are_scored_right_and_ranked(args, k):
    seed, V, B, L = args
    m = ToyRNN(V, seed)
    h0 = m.start(B)
    out = beam_search(m.step, h0, bos=1, eos=EOS, max_len=L, beam_width=k, alpha=0.7)
    for b, hyps in enumerate(out):
        assert 1 <= len(hyps) <= k
        assert len({(h.tokens, h.finished) for h in hyps}) == len(hyps)
        for h in hyps:                                              # state reordering was right
            assert h.log_prob == pytest.approx(rescore(m, h0[b], 1, h), abs=1e-4)
        scores = [length_normalised_score(h.log_prob, h.length, 0.7) for h in hyps]
        assert scores == sorted(scores, reverse=True)


def test_beam_search_beats_greedy_on_a_garden_path():
    # first token: 1 (0.6) or 2 (0.4); after 1 the model is unsure, after 2 it is sure of <eos>
    P = torch.tensor([[0.0, 0.6, 0.4], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])

    def step(tok, state):
        return P[tok].log(), state

    g = greedy_decode(step, torch.zeros(1), bos=0, eos=0, max_len=3)[0]
    b = beam_search(step, torch.zeros(1), bos=0, eos=0, max_len=3, beam_width=2, alpha=0)[0][0]
    assert g.tokens == (1,) and math.exp(g.log_prob) == pytest.approx(0.3)
    assert b.tokens == (2,) and math.exp(b.log_prob) == pytest.approx(0.4)


@settings(max_examples=30)
@given(model_args)
def test_seeded_sampling_is_reproducible(args):
    seed, V, B, L = args
    m = ToyRNN(V, seed)
    h0 = m.start(B)
    runs = [sample_decode(m.step, h0, bos=1, eos=EOS, max_len=L, top_p=0.9,
                          generator=torch.Generator().manual_seed(seed)) for _ in range(2)]
    assert runs[0] == runs[1]
    for b, hyp in enumerate(runs[0]):                               # unfiltered log p reported
        assert hyp.log_prob == pytest.approx(rescore(m, h0[b], 1, hyp), abs=1e-4)


def test_top_p_one_samples_like_plain_sampling():
    m = ToyRNN(6, 3)
    h0 = m.start(50)
    a = sample_decode(m.step, h0, 1, EOS, 6, generator=torch.Generator().manual_seed(1))
    b = sample_decode(m.step, h0, 1, EOS, 6, top_p=1.0, generator=torch.Generator().manual_seed(1))
    assert a == b


def test_different_seeds_give_different_samples():
    m = ToyRNN(6, 3)
    h0 = m.start(20)
    a = sample_decode(m.step, h0, 1, EOS, 6, generator=torch.Generator().manual_seed(1))
    b = sample_decode(m.step, h0, 1, EOS, 6, generator=torch.Generator().manual_seed(2))
    assert a != b


@settings(max_examples=30)
@given(model_args, st.integers(1, 5))
def test_sample_distinct_candidates_are_distinct(args, k):
    seed, V, B, L = args
    m = ToyRNN(V, seed)
    h0 = m.start(B)
    kwargs = dict(bos=1, eos=EOS, max_len=L, k=k, temperature=1.5, top_k=V - 1)
    out = sample_distinct(m.step, h0, generator=torch.Generator().manual_seed(seed), **kwargs)
    again = sample_distinct(m.step, h0, generator=torch.Generator().manual_seed(seed), **kwargs)
    assert out == again
    assert len(out) == B
    for b, cands in enumerate(out):
        assert 1 <= len(cands) <= k
        assert len({c.tokens for c in cands}) == len(cands)
        logps = [c.log_prob for c in cands]
        assert logps == sorted(logps, reverse=True)
        for c in cands:
            assert c.log_prob == pytest.approx(rescore(m, h0[b], 1, c), abs=1e-4)


def test_sample_distinct_finds_k_when_there_are_enough():
    def step(tok, state):                                             # uniform over 4 tokens
        return torch.zeros(len(tok), 4), state

    out = sample_distinct(step, torch.zeros(3), bos=1, eos=0, max_len=3, k=5,
                          generator=torch.Generator().manual_seed(0))
    assert [len({c.tokens for c in cands}) for cands in out] == [5, 5, 5]


def test_sample_distinct_stops_when_the_nucleus_is_small():
    def step(tok, state):                                             # <eos> is 99% likely
        return torch.log(torch.tensor([[0.99, 0.01]])).expand(len(tok), -1), state

    out = sample_distinct(step, torch.zeros(1), bos=1, eos=0, max_len=3, k=3, top_p=0.9,
                          generator=torch.Generator().manual_seed(0))
    assert [c.tokens for c in out[0]] == [()]                          # only one sequence exists


def test_decoder_errors():
    m = ToyRNN(4, 0)
    h0 = m.start(2)
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        greedy_decode(m.step, h0, 1, EOS, 0)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(m.step, h0, 1, EOS, 3, beam_width=0)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(m.step, h0, 1, EOS, 3, beam_width=2, n_best=3)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(m.step, h0, 1, EOS, 3, beam_width=2, alpha=-1.0)
    with pytest.raises(ValueError, match="k must be"):
        sample_distinct(m.step, h0, 1, EOS, 3, k=0)
    with pytest.raises(ValueError, match="batch_size is needed"):
        greedy_decode(lambda t, s: (torch.zeros(len(t), 3), s), None, 1, EOS, 3)
    with pytest.raises(TypeError, match="state must hold tensors"):
        beam_search(m.step, "state", 1, EOS, 3, beam_width=2, batch_size=1)
