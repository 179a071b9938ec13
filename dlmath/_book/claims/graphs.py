"""Claims of report 002 part 3 (adjacency, walks, Laplacian of two small graphs).

The matrices below are the ones the report states (its nodes are numbered from 1; the
matrices are stored 0-based as usual).  The drawings they were read from are not part of
the report's text, so the checks test what can be tested: internal consistency (an
undirected adjacency is symmetric with a zero diagonal), the arithmetic (squares, degrees,
Laplacians) and whether the conclusions follow.  The claimed matrices and counts are
compared with the verified ones (exactly) by :func:`dlmath.check.compare_tensor`, and
:func:`dlmath._book.claims.verdict_of` turns its verdicts into the claim's.  Chapter:
:ref:`ch-graphs`.
"""

from __future__ import annotations

import itertools

import torch

from dlmath import graphs
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_tensor

SOURCE = "002_96e139cf604c0a28"

#: The report's adjacency matrix of its first graph.
REPORT_A1 = ((0, 1, 1, 0, 1), (1, 0, 1, 0, 0), (1, 1, 0, 1, 0), (0, 0, 1, 0, 0), (1, 0, 0, 0, 0))
#: The report's adjacency matrix of its second graph (inconsistent, see the claims).
REPORT_A2 = ((0, 1, 0, 0, 0, 0), (1, 0, 1, 0, 1, 0), (0, 0, 1, 0, 1, 0),
             (0, 0, 1, 0, 1, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0, 1, 1, 0))
#: The report's square of REPORT_A1.
REPORT_A1_SQUARED = ((3, 1, 1, 1, 0), (1, 2, 1, 1, 1), (1, 1, 3, 0, 1), (1, 1, 0, 1, 0),
                     (0, 1, 1, 0, 1))
#: The diagonal of the report's degree matrix of the second graph.
REPORT_D2 = (1, 3, 2, 3, 3, 2)
#: The report's Laplacian of the second graph.
REPORT_L2 = ((1, -1, 0, 0, 0, 0), (-1, 3, -1, 0, -1, 0), (0, -1, 2, 0, -1, 0),
             (0, 0, -1, 3, -1, -1), (0, -1, 0, -1, 3, -1), (0, 0, 0, -1, -1, 2))
#: The nodes (1-based) the report says change most under L X.
REPORT_MOST_CHANGED = (2, 4, 5)

__all__ = ["REPORT_A1", "REPORT_A2", "REPORT_A1_SQUARED", "REPORT_D2", "REPORT_L2",
           "REPORT_MOST_CHANGED", "repaired_graph2"]


def _t(M) -> torch.Tensor:
    return torch.tensor(M, dtype=torch.float64)


def _rows(M) -> str:
    return "[" + ", ".join("[" + ",".join(str(int(x)) for x in row) + "]" for row in M) + "]"


def _brute_walks(A, k: int, u: int, v: int) -> list[tuple[int, ...]]:
    """All walks of length k from u to v, by enumerating every sequence of nodes."""
    n = len(A)
    return [(u, *mid, v) for mid in itertools.product(range(n), repeat=k - 1)
            if all(A[a][b] for a, b in itertools.pairwise((u, *mid, v)))]


def _laplacian_from_edges(A) -> torch.Tensor:
    """L as a sum over edges of (e_u - e_v)(e_u - e_v)^T: an oracle independent of D - A."""
    n = len(A)
    L = torch.zeros(n, n, dtype=torch.float64)
    for u, v in itertools.combinations(range(n), 2):
        if A[u][v]:
            b = torch.zeros(n, dtype=torch.float64)
            b[u], b[v] = 1.0, -1.0
            L += torch.outer(b, b)
    return L


def repaired_graph2() -> torch.Tensor:
    """The one simple undirected graph consistent with the report's second matrix and degrees."""
    (A,) = graphs.undirected_repairs(REPORT_A2, degrees=REPORT_D2)
    return A


def _check_graph1() -> Check:
    problems = graphs.adjacency_problems(REPORT_A1, index_base=1)
    edges = [(u + 1, v + 1) for u, v in graphs.edge_list(REPORT_A1)]
    return Check(verified=f"valid: symmetric 0/1, zero diagonal; edges {edges}",
                 verdict="correct" if not problems else "incorrect",
                 note="Only consistency can be checked (the drawing is not in the text); the "
                      "report's own square of it agrees with it.")


def _check_graph2() -> Check:
    problems = graphs.adjacency_problems(REPORT_A2, index_base=1)
    repairs = graphs.undirected_repairs(REPORT_A2, degrees=REPORT_D2)
    row3 = [int(x) for x in repairs[0][2]] if len(repairs) == 1 else None
    return Check(verified=f"not an undirected adjacency: {'; '.join(problems)}",
                 verdict="incorrect" if problems else "correct",
                 note=f"{len(repairs)} simple undirected graph(s) keep the self-consistent "
                      f"entries and have the report's degrees; in it row 3 is {row3}, so the "
                      "report's row 3 is shifted one place to the right.")


def _check_a1_squared() -> Check:
    A = _t(REPORT_A1)
    ours = graphs.walk_counts(A, 2)
    brute = _t([[len(_brute_walks(REPORT_A1, 2, u, v)) for v in range(5)] for u in range(5)])
    if not torch.equal(ours, brute):
        raise RuntimeError("dlmath.graphs.walk_counts disagrees with enumerating the walks")
    full = compare_tensor(_t(REPORT_A1_SQUARED), brute, rtol=0.0, atol=0.0)
    return Check(verified=_rows(brute.int().tolist()),
                 verdict=verdict_of(full),
                 note="Checked by matrix power and by enumerating all walks of length 2.")


def _check_walks_vs_paths() -> Check:
    n = len(REPORT_A1)
    agree = {}                      # k -> the checker's verdict off the diagonal
    for k in (2, 3):
        Ak = graphs.walk_counts(_t(REPORT_A1), k)
        paths = _t([[sum(len(set(w)) == k + 1 for w in _brute_walks(REPORT_A1, k, u, v))
                     for v in range(n)] for u in range(n)])
        off = ~torch.eye(n, dtype=torch.bool)
        agree[k] = compare_tensor(Ak[off], paths[off], rtol=0.0, atol=0.0)
        if k == 3:
            w15 = int(Ak[0, 4])
            p15 = int(paths[0, 4])
    # the claim is for every k; the report does not say that it needs k <= 2
    verdict = verdict_of(agree[3], where_stated=agree[2])
    return Check(verified=f"$(A^k)_{{uv}}$ counts walks (nodes may repeat); graph 1: "
                          f"$(A^3)_{{15}} = {w15}$ but {p15} paths of length 3 from 1 to 5",
                 verdict=verdict,
                 note="True if 'path' means walk (the report's own closed 'path' 1-5-1 suggests "
                      "it does); for paths without repeated nodes it holds only for k <= 2 off "
                      "the diagonal.")


def _check_diagonal() -> Check:
    A = _t(REPORT_A1)
    diag = torch.diagonal(graphs.walk_counts(A, 2))
    closed = _t([len(_brute_walks(REPORT_A1, 2, u, u)) for u in range(5)])
    deg = torch.diagonal(graphs.degree_matrix(A))
    if not torch.equal(diag, closed):
        raise RuntimeError("dlmath.graphs.walk_counts disagrees with enumerating closed walks")
    full = compare_tensor(closed, deg, rtol=0.0, atol=0.0)
    return Check(verified=f"diag($A^2$) = degrees = {[int(x) for x in deg]} (graph 1)",
                 verdict=verdict_of(full),
                 note="In a directed graph the diagonal counts reciprocated arcs instead.")


def _check_degree_matrix() -> Check:
    A = repaired_graph2()
    deg = torch.diagonal(graphs.degree_matrix(A))
    A2 = _t(REPORT_A2)
    full = compare_tensor(_t(REPORT_D2), deg, rtol=0.0, atol=0.0)
    return Check(verified=f"degrees of the repaired graph: {[int(x) for x in deg]}",
                 verdict=verdict_of(full),
                 note=f"They equal the row sums of the report's matrix; its column sums "
                      f"{[int(x) for x in A2.sum(dim=0)]} differ, another sign of its asymmetry.")


def _check_laplacian() -> Check:
    A = repaired_graph2()
    L = graphs.laplacian(A)
    oracle = _laplacian_from_edges(A.tolist())
    if not torch.equal(L, oracle):
        raise RuntimeError("dlmath.graphs.laplacian disagrees with the sum over edges")
    claimed = _t(REPORT_L2)
    wrong = [(int(i) + 1, int(j) + 1) for i, j in torch.nonzero(claimed != L)]
    sym = torch.equal(claimed, claimed.T)
    A2 = _t(REPORT_A2)
    own = [(int(i) + 1, int(j) + 1) for i, j in torch.nonzero(claimed != torch.diag(A2.sum(1)) - A2)]
    full = compare_tensor(claimed, L, rtol=0.0, atol=0.0)
    return Check(verified=f"row 3 of $L$ is {[int(x) for x in L[2]]}; the claimed matrix differs "
                          f"at {wrong}",
                 verdict=verdict_of(full),
                 note=f"The claimed L is {'' if sym else 'not '}symmetric; it is not D - A of the "
                      f"report's own matrix either (they differ at {own}).")


def _check_lx_degree() -> Check:
    A = repaired_graph2()
    L = graphs.laplacian(A)
    deg = torch.diagonal(graphs.degree_matrix(A))
    n = L.shape[0]
    claimed = [i - 1 for i in REPORT_MOST_CHANGED]
    others = [i for i in range(n) if i not in claimed]
    counterexamples = []
    for v in range(n):                       # X = e_v: a signal on one node
        change = (L @ torch.eye(n, dtype=torch.float64)[:, v]).abs()
        if change[others].max() > change[claimed].max():   # strictly more than 2, 4 and 5
            top = others[int(change[others].argmax())] + 1
            counterexamples.append((v + 1, top, float(change.max())))
    v, top, amount = counterexamples[0]
    return Check(verified=f"depends on $X$: for $X = e_{v}$, node {top} (degree {int(deg[top - 1])}) "
                          f"changes most (by {amount:g}); a constant $X$ changes no node",
                 verdict="incorrect" if counterexamples else "correct",
                 note="What degree does bound: $|(LX)_i| \\le 2 d_i \\max|X|$, and for i.i.d. "
                      "entries of variance $\\sigma^2$, $E[(LX)_i^2] = \\sigma^2 d_i(d_i+1)$.")


for _id, _q, _topic, _claimed, _check, _expected in [
    ("002-Q3.1a-graph1-adjacency", "3.1a", "adjacency matrix of the first (undirected) graph",
     _rows(REPORT_A1), _check_graph1, "correct"),
    ("002-Q3.1a-graph2-adjacency", "3.1a", "adjacency matrix of the second (undirected) graph",
     _rows(REPORT_A2), _check_graph2, "incorrect"),
    ("002-Q3.1b-a1-squared", "3.1b", "square of the first graph's adjacency matrix",
     _rows(REPORT_A1_SQUARED), _check_a1_squared, "correct"),
    ("002-Q3.1b-walks-vs-paths", "3.1b", "what the entries of $A^k$ count",
     "$(A^k)_{uv}$ is the number of paths of length $k$ from $u$ to $v$",
     _check_walks_vs_paths, "incomplete"),
    ("002-Q3.1b-diagonal-closed-walks", "3.1b", "diagonal of $A^2$ in an undirected graph",
     "$(A^2)_{uu}$ counts the back-and-forth walks over each edge at $u$",
     _check_diagonal, "correct"),
    ("002-Q3.1c-degree-matrix", "3.1c", "degree matrix of the second graph",
     f"diag{REPORT_D2}", _check_degree_matrix, "correct"),
    ("002-Q3.1c-laplacian", "3.1c", "Laplacian $D - A$ of the second graph",
     _rows(REPORT_L2), _check_laplacian, "incorrect"),
    ("002-Q3.1c-lx-high-degree", "3.1c", "which nodes change most under $F = LX$",
     "nodes 2, 4, 5, because they have the highest degree (3)", _check_lx_degree, "incorrect"),
]:
    register(Claim(id=_id, source=SOURCE, question=_q, topic=_topic, claimed=_claimed,
                   check=_check, chapter="ch-graphs", expected=_expected))
