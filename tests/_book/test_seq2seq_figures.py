"""The traced beam search against dlmath.decoding.beam_search; the attention weights of one word."""

import matplotlib

matplotlib.use("agg")

import itertools

import matplotlib.pyplot as plt
import pytest
import torch

from dlmath._book.seq2seq_figures import (
    attention_weights,
    beam_tree,
    draw_attention_links,
    draw_beam_tree,
)
from dlmath._book.spelling import spell
from dlmath.models import Seq2Seq

PRONS = [("K", "AE", "T"), ("D", "AO", "G"), ("S", "T", "R", "IY", "T"), ("AH",)]


def _model(seed: int, attention: bool = True) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(42, 29, emb_dim=8, hidden_size=16, attention=attention).eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_beam_tree_finds_what_beam_search_finds(seed, k):
    model = _model(seed, attention=seed != 2)
    for pron in PRONS:
        tree = beam_tree(model, pron, k, max_len=6, pruned_per_beam=2)
        ours = sorted((n.prefix, round(n.log_prob, 4)) for step in tree for n in step
                      if n.kept and n.finished)
        ref = sorted((c.word, round(c.log_prob, 4)) for c in spell(model, [pron], "beam",
                                                                   beam_width=k, max_len=6)[0]
                     if c.finished)
        assert ours == ref


def test_beam_tree_kept_are_the_best_and_pruned_are_worse():
    tree = beam_tree(_model(0), ("K", "AE", "T"), 3, max_len=6, pruned_per_beam=2)
    for step in tree:
        kept = [n.log_prob for n in step if n.kept]
        pruned = [n.log_prob for n in step if not n.kept]
        assert kept == sorted(kept, reverse=True)
        assert not pruned or max(pruned) <= min(kept) + 1e-12
    # a cumulative log-probability never rises along a branch
    for prev, step in itertools.pairwise(tree):
        parents = [n for n in prev if n.kept and not n.finished]
        for n in step:
            assert n.log_prob <= parents[n.parent].log_prob + 1e-12
            assert n.prefix == parents[n.parent].prefix + parents[n.parent].token


def test_attention_weights_are_distributions_and_drawings_run():
    model = _model(0)
    a = attention_weights(model, ("K", "AE", "T"), "cat")
    torch.testing.assert_close(a.sum(1), torch.ones(4))
    fig, (ax1, ax2) = plt.subplots(1, 2)
    draw_attention_links(ax1, ["K", "AE", "T"], list("cat") + ["<eos>"], a, hidden_size=16)
    draw_beam_tree(ax2, beam_tree(model, ("K", "AE", "T"), 2, max_len=5))
    with pytest.raises(ValueError, match="shape"):
        draw_attention_links(ax1, ["K", "AE"], list("cat"), a)
    plt.close(fig)
