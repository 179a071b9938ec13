"""dlmath._book.gcn: the graphs chapter's GCN training, deterministic and validated."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from dlmath import graphs as g
from dlmath._book.gcn import train_gcn


def _karate():
    G = nx.karate_club_graph()
    A = g.adjacency_matrix(list(G.edges()), len(G))
    y = torch.tensor([int(G.nodes[u]["club"] != "Mr. Hi") for u in G])
    return A, y


def test_train_gcn_learns_karate_deterministically():
    A, y = _karate()
    state = torch.random.get_rng_state()
    r1 = train_gcn(A, torch.eye(34), y, [0, 33], epochs=100, seed=3, device="cpu")
    assert torch.equal(state, torch.random.get_rng_state())      # global RNG untouched
    r2 = train_gcn(A, torch.eye(34), y, [0, 33], epochs=100, seed=3, device="cpu")
    assert r1.losses == r2.losses and torch.equal(r1.predictions, r2.predictions)
    assert r1.losses[-1] < r1.losses[0]
    assert r1.accuracy >= 0.8
    unlabelled = [u for u in range(34) if u not in (0, 33)]
    right = [int(r1.predictions[u]) == int(y[u]) for u in unlabelled]
    assert r1.accuracy == pytest.approx(sum(right) / len(right))
    assert r1.embedding.shape == (34, 16) and r1.labelled.sum() == 2
    # without edges the model sees one-hot features only: it cannot beat chance on new nodes
    base = train_gcn(torch.zeros(34, 34), torch.eye(34), y, [0, 33], epochs=100, seed=3,
                       device="cpu")
    assert base.accuracy < r1.accuracy


@pytest.mark.parametrize("kwargs, match", [
    ({"labelled": []}, "labelled must be distinct"),
    ({"labelled": [0, 0]}, "labelled must be distinct"),
    ({"labelled": [40]}, "labelled must be distinct"),
    ({"labelled": list(range(34))}, "no unlabelled node"),
    ({"labels": torch.zeros(33, dtype=torch.long)}, "labels must be 34 ints"),
    ({"features": torch.eye(33)}, r"features must have shape \(n, f\)"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
])
def test_train_gcn_rejects(kwargs, match):
    A, y = _karate()
    args = {"A": A, "features": torch.eye(34), "labels": y, "labelled": [0, 33]} | kwargs
    with pytest.raises(ValueError, match=match):
        train_gcn(epochs=1, device="cpu", **args)
