"""dlmath.models.gcn: the graph convolution layer against a loop over neighbours."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from dlmath import graphs as g
from dlmath.models.gcn import GraphConv


def test_graph_conv_against_neighbour_loop_and_permutation():
    G = nx.karate_club_graph()
    n = len(G)
    A = g.adjacency_matrix(list(G.edges()), n)
    A_hat = g.gcn_normalized_adjacency(A)
    torch.manual_seed(0)
    layer = GraphConv(5, 3).double()
    with torch.no_grad():
        layer.bias.normal_()
    X = torch.randn(n, 5, dtype=torch.float64)
    H = layer(X, A_hat).detach().numpy()
    W = layer.linear.weight.detach().numpy().T
    b = layer.bias.detach().numpy()
    deg = dict(G.degree())
    for v in G:            # h_v = sum over v and its neighbours of x_u W / sqrt((d_u+1)(d_v+1))
        acc = sum((X[u].numpy() @ W) / np.sqrt((deg[u] + 1) * (deg[v] + 1))
                  for u in [v, *G[v]])
        np.testing.assert_allclose(H[v], acc + b, atol=1e-10)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    Hp = layer(X[perm], A_hat[perm][:, perm]).detach()
    torch.testing.assert_close(Hp, torch.as_tensor(H)[perm], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="X must be"):
        layer(X[:3], A_hat)


@pytest.mark.parametrize("value", ["False", 0, None])
def test_bias_must_be_bool(value):
    with pytest.raises(TypeError, match="bias must be True or False"):
        GraphConv(2, 2, bias=value)
    assert GraphConv(2, 2, bias=False).bias is None


def test_gcn_dropout_range():
    from dlmath.models.gcn import GCN

    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        GCN(2, 2, 2, dropout=1.0)
