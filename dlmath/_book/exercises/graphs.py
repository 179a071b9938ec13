"""Exercises of the chapter "Graphs" (:ref:`ch-graphs`).

The two graphs of report 002 (part 3), nodes numbered from 1 in the statements and from 0 in
the code: the first as the report gives it, the second as the one simple graph consistent
with the report's degrees (see the claims of :mod:`dlmath._book.claims.graphs`).  Oracles:
enumeration of walks, and the Laplacian as a sum over edges.
"""

from __future__ import annotations

import itertools

import torch

from dlmath._book.claims.graphs import REPORT_L2
from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-graphs"

#: Edges of the first graph (0-based).
EDGES_1 = ((0, 1), (0, 2), (0, 4), (1, 2), (2, 3))
#: Edges of the second graph (0-based).
EDGES_2 = ((0, 1), (1, 2), (1, 4), (2, 3), (3, 4), (3, 5), (4, 5))


def _neighbours(edges: tuple, n: int) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(n)]
    for u, v in edges:
        out[u].add(v)
        out[v].add(u)
    return out


def _walks(edges: tuple, n: int, k: int, simple: bool = False) -> torch.Tensor:
    """Number of walks (or paths, ``simple``) of length k between every pair of nodes."""
    nb = _neighbours(edges, n)
    counts = torch.zeros(n, n, dtype=torch.float64)
    for seq in itertools.product(range(n), repeat=k + 1):
        if all(b in nb[a] for a, b in itertools.pairwise(seq)) and \
                (not simple or len(set(seq)) == k + 1):
            counts[seq[0], seq[-1]] += 1
    return counts


def _laplacian(edges: tuple, n: int) -> torch.Tensor:
    L = torch.zeros(n, n, dtype=torch.float64)
    for u, v in edges:
        b = torch.zeros(n, dtype=torch.float64)
        b[u], b[v] = 1.0, -1.0
        L += torch.outer(b, b)
    return L


register(Exercise(
    id="graph-walks", chapter=CHAPTER, title="Walks of length 3",
    statement="The first graph of report 002 has the edges 1-2, 1-3, 1-5, 2-3, 3-4. Give the "
              "5 x 5 matrix whose entry (u, v) counts the walks of length 3 from u to v.",
    kind="tensor",
    solution=f"A = graphs.adjacency_matrix({[list(e) for e in EDGES_1]}, 5)\n"
             "graphs.walk_counts(A, 3)",
    oracle=lambda: _walks(EDGES_1, 5, 3),
    slips=(
        Slip(lambda: _walks(EDGES_1, 5, 3, simple=True),
             "This counts paths, which never revisit a node; A^3 counts walks, which may "
             "(1-2-1-5 is a walk of length 3)"),
    )))

register(Exercise(
    id="graph-laplacian", chapter=CHAPTER, title="The Laplacian of a small graph",
    statement="The second graph has the edges 1-2, 2-3, 2-5, 3-4, 4-5, 4-6, 5-6. Give its "
              "Laplacian L = D - A (6 x 6).",
    kind="tensor",
    solution=f"A = graphs.adjacency_matrix({[list(e) for e in EDGES_2]}, 6)\n"
             "graphs.laplacian(A)",
    oracle=lambda: _laplacian(EDGES_2, 6),
    slips=(
        Slip(lambda: torch.tensor(REPORT_L2, dtype=torch.float64),
             "This is report 002's Laplacian (3.1c): its third row has node 3 joined to 5 "
             "instead of 4, following the report's adjacency matrix, whose third row is "
             "shifted one place",
             source="report 002 (3.1c)"),
    )))

register(Exercise(
    id="dirichlet-energy", chapter=CHAPTER, title="How smooth is a signal",
    statement="On the second graph, give x^T L x for the signal x = (1, 2, 3, 4, 5, 6) "
              "(node i carries the value i).",
    kind="number",
    solution=f"A = graphs.adjacency_matrix({[list(e) for e in EDGES_2]}, 6)\n"
             "x = torch.arange(1.0, 7.0, dtype=torch.float64)\n"
             "float(x @ graphs.laplacian(A) @ x)",
    oracle=lambda: sum((u - v) ** 2 for u, v in EDGES_2),
    slips=(
        Slip(36, "Each edge is counted twice, once from each end: x^T L x is a sum over the "
                 "edges, not over ordered pairs of neighbours"),
    )))
