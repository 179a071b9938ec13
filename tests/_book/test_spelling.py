"""Tests of dlmath._book.spelling: the splits, free-running decoding against dlmath.decoding, the
task's metrics against rapidfuzz, and candidate spellings rescored by teacher forcing."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from dlmath.data.words import letter_vocab, phoneme_vocab
from dlmath.decoding import greedy_decode
from dlmath.engine.ensemble import Ensemble
from dlmath._book.spelling import SpellingTask, spell
from dlmath.data import spelling_splits
from dlmath.models import Speller

LV, PV = letter_vocab(), phoneme_vocab()
PRONS = [("K", "AE", "T"), ("D", "AO", "G"), ("R", "IH", "M", "EY", "N", "D", "ER"), ("AY",)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def speller(attention=True, seed=0, max_len=8):
    torch.manual_seed(seed)
    return Speller(len(PV), len(LV), emb_dim=8, hidden_size=16, attention=attention,
                   max_len=max_len).eval()


@pytest.fixture(scope="module")
def data():
    return spelling_splits(max_train_words=300, max_val_words=50, max_test_words=50)


def test_splits_shapes_and_shift(data):
    assert data.sizes() == {"train": 300, "val": 50, "test": 50}
    src, tgt_in = data.train.inputs
    assert tgt_in.shape == data.train.targets.shape
    assert torch.equal(tgt_in[:, 1:], data.train.targets[:, :-1])
    assert bool((tgt_in[:, 0] == LV.bos_id).all())
    assert len(data.val.inputs) == len(data.test.inputs) == 1
    # each target row is a word followed by <eos>, then padding
    for row in data.test.targets.tolist():
        word = LV.decode(row)
        assert word.isalpha() and row[len(word)] == LV.eos_id
    assert data.info["src_vocab_size"] == len(PV) and data.info["max_len"] == 13


def test_splits_hold_different_words(data):
    words = {name: {LV.decode(r) for r in data[name].targets.tolist()}
             for name in ("train", "val", "test")}
    assert not words["train"] & words["test"] and not words["val"] & words["test"]


def test_split_limits_are_checked():
    with pytest.raises(ValueError, match="max_train_words must be >= 1, got 0"):
        spelling_splits(max_train_words=0)


@pytest.mark.parametrize("attention", [True, False])
def test_free_running_argmax_is_greedy_decoding(attention):
    model = speller(attention)
    src = PV.encode_batch(PRONS)
    def letters_step(tokens, state):                                  # <pad>, <bos> excluded
        logits, state = model.step(tokens, state)
        return logits.index_fill(1, torch.tensor([0, 1]), float("-inf")), state

    with torch.no_grad():
        z = model(src)                                                # (B, L, V)
        greedy = greedy_decode(letters_step, model.start_state(src), bos=1, eos=2, max_len=8)
    for row, h in zip(z.argmax(-1).tolist(), greedy):
        assert tuple(row[: len(h.tokens)]) == h.tokens
        if h.finished:
            assert row[len(h.tokens)] == LV.eos_id
    assert z.shape[1] <= 8


def test_teacher_forcing_is_unchanged():
    model = speller()
    src = PV.encode_batch(PRONS)
    tgt_in = LV.encode_batch(["cat", "dog", "remainder", "eye"], bos=True)
    with torch.no_grad():
        a = model(src, tgt_in)
        b = model((src, tgt_in))
        c = super(Speller, model).forward(src, tgt_in)
    assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match="return_attention needs tgt_in"):
        model(src, return_attention=True)
    with pytest.raises(ValueError, match=r"bos_id must be in \[0, 28\], got 40"):
        Speller(len(PV), len(LV), bos_id=40)


word = st.text(alphabet="abcdefghij", min_size=1, max_size=7)


@given(st.lists(st.tuples(word, st.text(alphabet="abcdefghij", max_size=7)), min_size=1,
                max_size=6))
def test_task_metrics_match_rapidfuzz(pairs):
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    targets = LV.encode_batch(refs, eos=True)
    spelled = LV.encode_batch(hyps, eos=True, length=9)
    logits = torch.nn.functional.one_hot(spelled, len(LV)).float() * 3.0
    m = SpellingTask().metrics(logits, targets)
    edits = sum(Levenshtein.distance(h, r) for h, r in pairs)
    assert float(m["cer"][0]) == edits and float(m["cer"][1]) == sum(map(len, refs))
    assert float(m["wer"][0]) == sum(h != r for h, r in pairs) and float(m["wer"][1]) == len(refs)


def test_task_loss_is_cross_entropy_without_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, len(LV), generator=g)
    targets = LV.encode_batch(["cat", "a", "dogs"], eos=True, length=5)
    keep = targets != 0
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(SpellingTask().loss(logits, targets), expected)
    with pytest.raises(ValueError, match="same B"):
        SpellingTask().metrics(logits, targets[:2])


def _teacher_forced_log_prob(model, pron, word):
    src = PV.encode_batch([pron])
    tgt = LV.encode_batch([word], bos=True, eos=True)
    with torch.no_grad():
        logits = model(src, tgt[:, :-1]).double()                     # (1, T, V)
        logp = logits.index_fill(2, torch.tensor([0, 1]), float("-inf")).log_softmax(-1)
    return float(logp[0].gather(1, tgt[0, 1:, None]).sum())


@pytest.mark.parametrize("method,kw", [("greedy", {}), ("beam", {"beam_width": 3}),
                                       ("sample_distinct", {"k": 3, "top_p": 0.95}),
                                       ("sample", {"temperature": 0.7})])
def test_candidates_rescored_by_teacher_forcing(method, kw):
    model = speller(max_len=30)
    cands = spell(model, PRONS, method, max_len=30, **kw)
    assert len(cands) == len(PRONS)
    for pron, cs in zip(PRONS, cands):
        assert len({c.word for c in cs}) == len(cs)
        for c in cs:
            if c.finished:
                assert c.log_prob == pytest.approx(_teacher_forced_log_prob(model, pron, c.word),
                                                   abs=1e-4)


def test_beam_width_one_and_ensemble_of_one_are_greedy():
    model = speller()
    greedy = [c[0].word for c in spell(model, PRONS)]
    assert [c[0].word for c in spell(model, PRONS, "beam", beam_width=1)] == greedy
    assert [c[0].word for c in spell(Ensemble([model]), PRONS)] == greedy
    assert [c[0].word for c in spell(model, PRONS, batch_size=1)] == greedy


def test_sampling_is_seeded():
    model = speller()
    a = spell(model, PRONS, "sample", seed=3)
    assert a == spell(model, PRONS, "sample", seed=3)


def test_bad_arguments():
    model = speller()
    with pytest.raises(ValueError, match="method must be one of"):
        spell(model, PRONS, "viterbi")
    with pytest.raises(ValueError, match="pronunciations is empty"):
        spell(model, [])
    with pytest.raises(ValueError, match="token 'QQ' is not in the vocabulary"):
        spell(model, [("QQ",)])
