"""dlmath.graphs against independent oracles: networkx, brute-force enumeration, SymPy."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from dlmath import graphs as g

TOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on shared CPUs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- strategies and oracles -----------------------------------------------------------------

@st.composite
def nx_graphs(draw, max_nodes: int = 8, weighted: bool = False, min_nodes: int = 1) -> nx.Graph:
    """A random simple undirected networkx graph on nodes 0..n-1 (isolated nodes allowed)."""
    n = draw(st.integers(min_nodes, max_nodes))
    pairs = list(itertools.combinations(range(n), 2))
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for u, v in edges:
        G.add_edge(u, v, weight=draw(st.floats(0.1, 10.0)) if weighted else 1.0)
    return G


def nx_adjacency(G: nx.Graph) -> np.ndarray:
    return nx.to_numpy_array(G, nodelist=range(G.number_of_nodes()), weight="weight")


def ours(G: nx.Graph) -> torch.Tensor:
    edges = list(G.edges())
    return g.adjacency_matrix(edges, G.number_of_nodes(),
                              weights=[G.edges[e].get("weight", 1.0) for e in edges])


def brute_force_walks(A: np.ndarray, k: int) -> np.ndarray:
    """Count walks of length k by listing every sequence of k + 1 nodes."""
    n = A.shape[0]
    W = np.zeros((n, n))
    for seq in itertools.product(range(n), repeat=k + 1):
        W[seq[0], seq[-1]] += all(A[a, b] for a, b in itertools.pairwise(seq))
    return W


zero_one = st.integers(1, 6).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, 1), min_size=n, max_size=n), min_size=n,
                       max_size=n))


# --- adjacency matrices and validation --------------------------------------------------------

@given(nx_graphs(weighted=True))
def test_adjacency_matches_networkx(G):
    np.testing.assert_array_equal(ours(G).numpy(), nx_adjacency(G))


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), unique=True))))
def test_directed_adjacency_matches_networkx(case):
    n, arcs = case
    D = nx.DiGraph()
    D.add_nodes_from(range(n))
    D.add_edges_from(arcs)
    A = g.adjacency_matrix(arcs, n, directed=True, self_loops=True)
    np.testing.assert_array_equal(A.numpy(), nx.to_numpy_array(D, nodelist=range(n)))
    assert g.edge_list(A, directed=True) == sorted(arcs)


@given(nx_graphs())
def test_edge_list_round_trip(G):
    A = ours(G)
    assert g.edge_list(A) == sorted(tuple(sorted(e)) for e in G.edges())


@given(zero_one)
def test_problems_found_exactly(rows):
    A = np.array(rows)
    problems = g.adjacency_problems(A)
    asym = sum(A[i, j] != A[j, i] for i, j in itertools.combinations(range(len(A)), 2))
    loops = int(np.trace(A))
    assert sum("not symmetric" in p for p in problems) == asym
    assert sum("self-loop" in p for p in problems) == loops
    assert (problems == []) == (np.array_equal(A, A.T) and loops == 0)
    assert g.adjacency_problems(A, directed=True, self_loops=True) == []


@pytest.mark.parametrize("A, kwargs, match", [
    ([[0, 1], [0, 0]], {}, r"A\[0,1\] = 1 but A\[1,0\] = 0: not symmetric"),
    ([[1, 0], [0, 0]], {}, r"A\[0,0\] = 1 is a self-loop"),
    ([[0, 2], [2, 0]], {}, r"is not 0 or 1 \(weighted=False\)"),
    ([[0, -1], [-1, 0]], {"weighted": True}, "is negative"),
    ([[0, float("nan")], [float("nan"), 0]], {"weighted": True}, "is not finite"),
    ([[0, 1, 0]], {}, r"non-empty square matrix, got shape \(1, 3\)"),
    ([], {}, "non-empty square matrix"),
])
def test_validate_rejects(A, kwargs, match):
    with pytest.raises(ValueError, match=match):
        g.validate_adjacency(A, **kwargs)


def test_validate_lists_a_few_and_counts_the_rest():
    A = np.triu(np.ones((6, 6)), 1)                    # 15 asymmetric pairs
    with pytest.raises(ValueError, match=r"\.\.\. and 9 more"):
        g.validate_adjacency(A)


def test_validate_type_errors():
    with pytest.raises(TypeError, match="A must be a square matrix"):
        g.validate_adjacency("not a matrix")
    with pytest.raises(TypeError, match="sympy Matrix"):
        g.validate_adjacency(sp.Matrix([[0, 1], [1, 0]]))


@pytest.mark.parametrize("edges, n, kwargs, err, match", [
    ([(0, 2)], 2, {}, ValueError, "node 2 outside 0..1"),
    ([(0, 1), (0, 1)], 2, {"directed": True}, ValueError, "repeats edge"),
    ([(1, 1)], 2, {}, ValueError, "self-loop"),
    ([(0, 1)], 2, {"weights": [1, 2]}, ValueError, "one entry per edge"),
    ([(0, 1)], 2, {"weights": [0.0]}, ValueError, r"weights\[0\] must be > 0, got 0.0"),
    ([(0, 1)], 2, {"weights": [float("inf")]}, ValueError, r"weights\[0\] must be a finite"),
    ([(0, 1.5)], 2, {}, TypeError, "pair of ints"),
    ([(0, 1)], 0, {}, ValueError, "num_nodes must be >= 1"),
])
def test_adjacency_matrix_rejects(edges, n, kwargs, err, match):
    with pytest.raises(err, match=match):
        g.adjacency_matrix(edges, n, **kwargs)


# --- repairs ---------------------------------------------------------------------------------

@given(st.integers(1, 4).flatmap(lambda n: st.lists(
    st.lists(st.integers(0, 1), min_size=n, max_size=n), min_size=n, max_size=n)),
    st.booleans())
def test_repairs_match_exhaustive_search(rows, with_degrees):
    A = np.array(rows)
    n = len(A)
    pairs = list(itertools.combinations(range(n), 2))
    # every simple graph on n nodes, kept if it agrees with A wherever A agrees with A^T
    every = []
    for bits in itertools.product((0, 1), repeat=len(pairs)):
        G = nx.Graph()
        G.add_nodes_from(range(n))
        G.add_edges_from(p for p, b in zip(pairs, bits) if b)
        S = nx.to_numpy_array(G, nodelist=range(n))
        if all(S[i, j] == A[i, j] for i, j in pairs if A[i, j] == A[j, i]):
            every.append(S)
    degrees = None
    if with_degrees and every:
        degrees = every[-1].sum(axis=1)
        every = [S for S in every if np.array_equal(S.sum(axis=1), degrees)]
    found = g.undirected_repairs(A, degrees=degrees)
    assert sorted(S.numpy().tobytes() for S in found) == sorted(S.tobytes() for S in every)


def test_repairs_limits():
    with pytest.raises(ValueError, match="more than max_free=2"):
        g.undirected_repairs(np.triu(np.ones((4, 4)), 1), max_free=2)
    with pytest.raises(ValueError, match="one entry per node"):
        g.undirected_repairs([[0, 1], [0, 0]], degrees=[1])


# --- walks -----------------------------------------------------------------------------------

@given(zero_one, st.integers(0, 4))
def test_walk_counts_match_enumeration(rows, k):
    A = np.array(rows, dtype=float)
    assume(len(A) ** (k + 1) <= 5000)
    np.testing.assert_array_equal(g.walk_counts(A, k).numpy(), brute_force_walks(A, k))


@given(zero_one, st.integers(0, 6))
def test_walk_counts_sym_agrees(rows, k):
    exact = np.array(g.walk_counts_sym(rows, k).tolist(), dtype=float)
    np.testing.assert_array_equal(exact, g.walk_counts(rows, k).numpy())


@pytest.mark.parametrize("n, k", [(5, 40), (7, 25)])
def test_walk_counts_sym_exact_beyond_float(n, k):
    # closed walks in the complete graph K_n: ((n-1)^k + (n-1)(-1)^k) / n (eigenvalues n-1, -1)
    A = [[int(i != j) for j in range(n)] for i in range(n)]
    count = ((n - 1) ** k + (n - 1) * (-1) ** k) // n
    assert count > 2**53
    assert g.walk_counts_sym(A, k)[0, 0] == count


def test_walk_errors():
    with pytest.raises(ValueError, match="k must be >= 0"):
        g.walk_counts([[0]], -1)
    with pytest.raises(TypeError, match="k must be an int"):
        g.walk_counts_sym([[0]], 1.0)
    with pytest.raises(ValueError, match="non-empty square"):
        g.walk_counts_sym([[0, 1]], 2)


# --- degree and Laplacian matrices -------------------------------------------------------------

@given(nx_graphs(weighted=True))
def test_laplacians_match_networkx(G):
    A = ours(G)
    L = nx.laplacian_matrix(G, nodelist=range(len(G))).toarray()
    np.testing.assert_allclose(g.laplacian(A).numpy(), L, atol=TOL)
    N = nx.normalized_laplacian_matrix(G, nodelist=range(len(G))).toarray()
    np.testing.assert_allclose(g.laplacian(A, "sym").numpy(), N, atol=TOL)
    # random walk: I - P with P the transition matrix (networkx's google matrix at alpha = 1)
    P = nx.google_matrix(G, alpha=1.0, nodelist=range(len(G)))
    rows = [u for u in G if G.degree(u) > 0]               # isolated rows: ours are 0
    np.testing.assert_allclose(g.laplacian(A, "rw").numpy()[rows],
                               (np.eye(len(G)) - P)[rows], atol=TOL)
    deg = np.array([G.degree(u, weight="weight") for u in range(len(G))])
    np.testing.assert_allclose(np.diag(g.degree_matrix(A).numpy()), deg, atol=TOL)


@given(nx_graphs(weighted=True))
def test_laplacian_psd_and_quadratic_form(G):
    A = ours(G)
    L = nx.laplacian_matrix(G, nodelist=range(len(G))).toarray()
    assert np.linalg.eigvalsh(g.laplacian(A).numpy()).min() > -1e-9
    assert np.linalg.eigvalsh(g.laplacian(A, "sym").numpy()).max() < 2 + 1e-9
    X = np.random.default_rng(len(G)).normal(size=(len(G), 3))
    edge_sum = sum(w * np.sum((X[u] - X[v]) ** 2) for u, v, w in G.edges(data="weight"))
    assert float(g.dirichlet_energy(X, A)) == pytest.approx(edge_sum, rel=1e-12, abs=1e-12)
    assert float(g.dirichlet_energy(X, A)) == pytest.approx(np.trace(X.T @ L @ X), abs=1e-9)


def test_quadratic_form_identity_symbolic():
    # every weighted graph on 4 nodes: K_4 with a symbol per edge (weight 0 removes the edge)
    n = 4
    w = {p: sp.Symbol(f"w{p[0]}{p[1]}") for p in itertools.combinations(range(n), 2)}
    W = sp.Matrix(n, n, lambda i, j: w[(min(i, j), max(i, j))] if i != j else 0)
    x = sp.Matrix(sp.symbols(f"x0:{n}"))
    lhs = (x.T * g.laplacian_sym(W) * x)[0, 0]
    rhs = sum(wij * (x[i] - x[j]) ** 2 for (i, j), wij in w.items())
    assert sp.expand(lhs - rhs) == 0


def test_laplacian_sym_matches_numeric_and_rejects_asymmetric():
    A = [[0, 2, 1], [2, 0, 0], [1, 0, 0]]
    np.testing.assert_array_equal(np.array(g.laplacian_sym(A).tolist(), dtype=float),
                                  g.laplacian(A).numpy())
    with pytest.raises(ValueError, match="must be symmetric"):
        g.laplacian_sym([[0, 1], [0, 0]])
    with pytest.raises(ValueError, match="normalization must be"):
        g.laplacian(A, "symmetric")


@given(nx_graphs(max_nodes=10))
def test_zero_eigenvalues_count_components(G):
    assert g.num_components_spectral(ours(G)) == nx.number_connected_components(G)


@given(nx_graphs(max_nodes=10, weighted=True))
def test_components_weighted(G):
    assert g.num_components_spectral(ours(G)) == nx.number_connected_components(G)


def test_path_graph_laplacian_is_minus_second_difference():
    n = 12
    A = ours(nx.path_graph(n))
    x = np.random.default_rng(0).normal(size=n)
    Lx = (g.laplacian(A) @ torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(Lx[1:-1], -np.diff(x, 2), atol=TOL)
    np.testing.assert_allclose(Lx[[0, -1]], [x[0] - x[1], x[-1] - x[-2]], atol=TOL)


# --- smoothing ---------------------------------------------------------------------------------

@given(nx_graphs(max_nodes=8, weighted=True), st.floats(0.0, 0.3))
def test_smoothing_step_is_neighbour_averaging(G, alpha):
    A = ours(G)
    x = np.random.default_rng(1).normal(size=len(G))
    expected = np.array([x[u] + alpha * sum(w * (x[v] - x[u]) for v, w in
                                            ((v, d["weight"]) for v, d in G[u].items()))
                         for u in range(len(G))])
    got = g.laplacian_smoothing(x, A, alpha).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert got.sum() == pytest.approx(x.sum(), abs=1e-9)      # 1^T L = 0: the mean is kept


@given(nx_graphs(max_nodes=8, min_nodes=2))
def test_stability_limit(G):
    assume(G.number_of_edges() > 0)
    A = ours(G)
    L = nx.laplacian_matrix(G, nodelist=range(len(G))).toarray()
    lam, Q = np.linalg.eigh(L)
    limit = g.smoothing_stability_limit(A)
    assert limit == pytest.approx(2 / lam[-1], rel=1e-10)
    x = Q[:, -1] + 0.1 * np.random.default_rng(2).normal(size=len(G))   # has a top component
    steps = 60
    for factor, grows in ((0.95, False), (1.1, True)):
        y = g.laplacian_smoothing(x, A, factor * limit, steps=steps).numpy()
        top = abs(Q[:, -1] @ y) / abs(Q[:, -1] @ x)
        assert top == pytest.approx(abs(1 - factor * limit * lam[-1]) ** steps, rel=1e-6)
        assert (top > 1) == grows
    assert g.smoothing_stability_limit(np.zeros((3, 3))) == float("inf")


def test_smoothing_errors():
    A = [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        g.laplacian_smoothing([1.0, 0.0], A, alpha=-0.1)
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, c\) with n = 2"):
        g.laplacian_smoothing([1.0, 0.0, 0.0], A, alpha=0.1)
    with pytest.raises(TypeError, match="steps must be an int"):
        g.laplacian_smoothing([1.0, 0.0], A, alpha=0.1, steps=1.5)


# --- graph convolution -------------------------------------------------------------------------

@given(nx_graphs(weighted=True))
def test_gcn_adjacency_is_identity_minus_normalized_laplacian_with_loops(G):
    H = G.copy()
    H.add_edges_from((u, u, {"weight": 1.0}) for u in H)
    N = nx.normalized_laplacian_matrix(H, nodelist=range(len(H))).toarray()
    A_hat = g.gcn_normalized_adjacency(ours(G)).numpy()
    np.testing.assert_allclose(A_hat, np.eye(len(G)) - N, atol=TOL)
    lam = np.linalg.eigvalsh(A_hat)
    assert lam.min() > -1 and lam.max() == pytest.approx(1.0)


def test_gcn_adjacency_rejects_self_loops():
    with pytest.raises(ValueError, match="self-loop"):
        g.gcn_normalized_adjacency([[1, 1], [1, 0]])


# --- argument types: flags, networkx graphs, dtypes -----------------------------------------------

P3 = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]                    # the path 0 - 1 - 2


@pytest.mark.parametrize("call, flag", [
    (lambda v: g.adjacency_problems(P3, directed=v), "directed"),
    (lambda v: g.adjacency_problems(P3, self_loops=v), "self_loops"),
    (lambda v: g.adjacency_problems(P3, weighted=v), "weighted"),
    (lambda v: g.validate_adjacency(P3, directed=v), "directed"),
    (lambda v: g.adjacency_matrix([(0, 1)], 2, directed=v), "directed"),
    (lambda v: g.adjacency_matrix([(0, 1)], 2, self_loops=v), "self_loops"),
    (lambda v: g.edge_list(P3, directed=v), "directed"),
    (lambda v: g.degree_matrix(P3, directed=v), "directed"),
    (lambda v: g.degree_matrix(P3, self_loops=v), "self_loops"),
    (lambda v: g.laplacian(P3, self_loops=v), "self_loops"),
])
@pytest.mark.parametrize("value", ["False", 0, 1, None])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)


@pytest.mark.parametrize("make, directed", [(nx.Graph, False), (nx.DiGraph, True)])
def test_networkx_graph_in_its_node_order(make, directed):
    G = make()
    G.add_nodes_from(["c", "a", "b"])                          # node order c, a, b
    G.add_edge("c", "a", weight=2.5)
    G.add_edge("a", "b")
    expected = nx.to_numpy_array(G, weight="weight")          # the same node order
    np.testing.assert_array_equal(g.validate_adjacency(G, directed=directed, weighted=True).numpy(),
                                  expected)
    np.testing.assert_array_equal(g.walk_counts(G, 2).numpy(), expected @ expected)
    np.testing.assert_array_equal(np.array(g.walk_counts_sym(G, 1).tolist(), dtype=float),
                                  expected)
    assert g.edge_list(G, directed=directed) == ([(0, 1), (1, 2)])


def test_networkx_graph_everywhere_a_matrix_is_taken():
    G = nx.karate_club_graph()
    A = torch.as_tensor(nx.to_numpy_array(G, weight=None))
    H = nx.Graph()                                             # the same graph without weights
    H.add_nodes_from(G)
    H.add_edges_from(G.edges())
    assert torch.equal(g.laplacian(H, "sym"), g.laplacian(A, "sym"))
    assert torch.equal(g.gcn_normalized_adjacency(H), g.gcn_normalized_adjacency(A))
    assert g.num_components_spectral(H) == 1
    assert g.smoothing_stability_limit(H) == g.smoothing_stability_limit(A)
    x = torch.arange(34, dtype=torch.float64)
    assert torch.equal(g.dirichlet_energy(x, H), g.dirichlet_energy(x, A))


def test_networkx_multigraph_is_refused():
    with pytest.raises(TypeError, match="multigraph"):
        g.validate_adjacency(nx.MultiGraph([(0, 1)]))


def test_nested_lists_and_edge_tensors():
    assert torch.equal(g.laplacian(P3), g.laplacian(torch.tensor(P3)))
    edges = torch.tensor([[0, 1], [1, 2]])
    assert torch.equal(g.adjacency_matrix(edges, 3), g.laplacian(P3).diag().diag() - g.laplacian(P3))
    assert torch.equal(g.adjacency_matrix(np.array([[0, 1], [1, 2]]), np.int64(3)),
                       g.adjacency_matrix([(0, 1), (1, 2)], 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    A = torch.tensor(P3, dtype=dtype)
    x = torch.tensor([1.0, 3.0, 0.0], dtype=dtype)
    outs = [g.validate_adjacency(A), g.walk_counts(A, 2), g.degree_matrix(A), g.laplacian(A),
            g.laplacian(A, "sym"), g.laplacian(A, "rw"), g.gcn_normalized_adjacency(A),
            g.dirichlet_energy(x, A), g.laplacian_smoothing(x, A, 0.25),
            *g.undirected_repairs(A)]
    assert all(out.dtype == dtype and out.device == A.device for out in outs)
    assert float(g.dirichlet_energy(x, A)) == 13.0
    assert g.num_components_spectral(A) == 1
    assert g.smoothing_stability_limit(A) == pytest.approx(2 / 3)


def test_lists_and_int_tensors_give_float64():
    assert g.laplacian(P3).dtype == torch.float64
    assert g.laplacian(torch.tensor(P3)).dtype == torch.float64
    # a float32 signal on a list adjacency: the tensor argument decides
    assert g.laplacian_smoothing(torch.ones(3), P3, 0.1).dtype == torch.float32
