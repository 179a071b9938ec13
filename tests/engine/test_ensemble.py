"""Tests of dlmath.engine.ensemble: combination rules against numpy, decoding an ensemble."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath.decoding import beam_search, greedy_decode
from dlmath.engine.ensemble import Ensemble, combine_logits
from dlmath.models.seq2seq import Seq2Seq

SRC = torch.tensor([[4, 5, 6, 7], [7, 8, 0, 0], [9, 3, 4, 0]])     # right-padded sources
TGT_IN = torch.tensor([[1, 5, 6, 3], [1, 9, 4, 4], [1, 3, 3, 7]])  # <bos> and three tokens


def _members(n, attention=True):
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(Seq2Seq(10, 12, emb_dim=8, hidden_size=16, attention=attention).eval())
    return models


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


logit_sets = st.tuples(st.integers(1, 5), st.integers(2, 7), st.integers(0, 2**31 - 1))


@given(logit_sets)
def test_prob_combination_is_the_arithmetic_mean(case):
    m, v, seed = case
    z = np.random.default_rng(seed).normal(scale=3.0, size=(m, 2, v))
    out = combine_logits([torch.tensor(zi) for zi in z], "prob").double().exp().numpy()
    np.testing.assert_allclose(out, _np_softmax(z).mean(0), rtol=1e-5, atol=1e-7)


@given(logit_sets)
def test_logprob_combination_is_the_normalised_geometric_mean(case):
    m, v, seed = case
    z = np.random.default_rng(seed).normal(scale=3.0, size=(m, 2, v))
    geo = np.prod(_np_softmax(z), axis=0) ** (1.0 / m)               # (2, V)
    expected = geo / geo.sum(-1, keepdims=True)
    out = combine_logits([torch.tensor(zi) for zi in z]).double().softmax(-1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


@given(logit_sets, st.sampled_from(["logprob", "prob"]))
def test_ensemble_cross_entropy_at_most_the_average_member(case, combine):
    m, v, seed = case
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(m, 5, v))
    y = torch.tensor(rng.integers(0, v, size=5))
    members = [torch.nn.functional.cross_entropy(torch.tensor(zi), y).item() for zi in z]
    ens = torch.nn.functional.cross_entropy(combine_logits([torch.tensor(zi) for zi in z],
                                                           combine).double(), y).item()
    assert ens <= np.mean(members) + 1e-5


def test_logit_scale_of_a_member_does_not_matter():
    z = torch.randn(3, 6)
    a = combine_logits([z, z + 5.0, torch.zeros(3, 6)])
    b = combine_logits([z, z, torch.zeros(3, 6)])
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("attention", [True, False])
def test_step_matches_teacher_forced_forward_of_each_member(attention):
    members = _members(3, attention)
    ens = Ensemble(members, combine="prob")
    with torch.no_grad():
        oracle = [m(SRC, TGT_IN) for m in members]                   # (B, T, V) each
        state = ens.start_state(SRC)
        for t in range(TGT_IN.shape[1]):
            logits, state = ens.step(TGT_IN[:, t], state)
            probs = torch.stack([o[:, t].double().softmax(-1) for o in oracle]).mean(0)
            torch.testing.assert_close(logits.double().exp(), probs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("combine", ["logprob", "prob"])
def test_ensemble_of_copies_decodes_like_the_model(combine):
    (model,) = _members(1)
    with torch.no_grad():
        alone = greedy_decode(model.step, model.start_state(SRC), bos=1, eos=2, max_len=6)
        for members in ([model], [model, model, model]):
            ens = Ensemble(members, combine)
            together = greedy_decode(ens.step, ens.start_state(SRC), bos=1, eos=2, max_len=6)
            assert [h.tokens for h in together] == [h.tokens for h in alone]
            for a, b in zip(together, alone):
                assert a.log_prob == pytest.approx(b.log_prob, abs=1e-4)


def test_beam_width_one_is_greedy_on_an_ensemble():
    ens = Ensemble(_members(2))
    with torch.no_grad():
        greedy = greedy_decode(ens.step, ens.start_state(SRC), bos=1, eos=2, max_len=6)
        beams = beam_search(ens.step, ens.start_state(SRC), bos=1, eos=2, max_len=6,
                            beam_width=1)
    assert [b[0].tokens for b in beams] == [g.tokens for g in greedy]


def test_beam_search_runs_on_an_ensemble_state():
    ens = Ensemble(_members(2))
    with torch.no_grad():
        beams = beam_search(ens.step, ens.start_state(SRC), bos=1, eos=2, max_len=5,
                            beam_width=3)
    assert len(beams) == 3 and all(1 <= len(b) <= 3 for b in beams)
    assert all(len({h.tokens for h in b}) == len(b) for b in beams)   # distinct hypotheses


def test_bad_inputs():
    with pytest.raises(ValueError, match="logits is empty"):
        combine_logits([])
    with pytest.raises(ValueError, match="share the vocabulary"):
        combine_logits([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="combine must be one of"):
        combine_logits([torch.zeros(3)], "median")
    with pytest.raises(TypeError, match=r"logits\[1\] must be a tensor"):
        combine_logits([torch.zeros(3), [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="models is empty"):
        Ensemble([])
    with pytest.raises(TypeError, match="needs start_state"):
        Ensemble([torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="combine must be one of"):
        Ensemble(_members(1), combine="vote")
    ens = Ensemble(_members(2))
    with pytest.raises(ValueError, match="tuple of 2 member states"):
        ens.step(torch.tensor([1]), ens.start_state(SRC[:1])[:1])
