"""Graphs as matrices: adjacency, walks, Laplacians, smoothing and graph convolution.

Scope: graphs on the nodes ``0, ..., n-1`` stored as dense torch matrices.  A matrix
argument may be a tensor, an array, nested lists or a networkx ``Graph``/``DiGraph`` (read
in its node order, edge attribute ``"weight"``, default 1); a floating tensor keeps its
dtype and device, anything else becomes float64.
Building and validating adjacency matrices (undirected or directed, weighted or not);
walk counts :math:`A^k` (floating point and exact SymPy); degree matrices and the
combinatorial, symmetric-normalised and random-walk Laplacians; the Dirichlet energy
:math:`x^\\top L x`; connected components read off the spectrum; the smoothing step
:math:`X - \\alpha L X` and the largest stable :math:`\\alpha`; the renormalised propagation
matrix of Kipf & Welling (the layer and network that use it are in
:mod:`dlmath.models.gcn`).  Chapter: :ref:`ch-graphs`.

References: F. R. K. Chung, "Spectral Graph Theory", AMS (1997); T. N. Kipf and M. Welling,
"Semi-Supervised Classification with Graph Convolutional Networks", ICLR (2017).
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import sympy as sp
import torch

from dlmath._validate import (
    check_bool,
    check_choice,
    check_entries,
    check_int,
    check_number,
    is_int,
)

__all__ = [
    "adjacency_matrix",
    "adjacency_problems",
    "validate_adjacency",
    "edge_list",
    "undirected_repairs",
    "walk_counts",
    "walk_counts_sym",
    "degree_matrix",
    "laplacian",
    "laplacian_sym",
    "dirichlet_energy",
    "num_components_spectral",
    "smoothing_stability_limit",
    "laplacian_smoothing",
    "gcn_normalized_adjacency",
]

_NORMALIZATIONS = (None, "sym", "rw")
_MAX_LISTED = 6  # problems quoted in an error message before "... and k more"


# --- input checks -----------------------------------------------------------------------

def _networkx_rows(G: Any) -> list[list[Any]] | None:
    """A networkx graph as nested lists in its node order; None for anything else.

    Entry ``(u, v)`` is the edge's ``"weight"`` (1 without one), set both ways for an
    undirected graph, as ``networkx.to_numpy_array`` does.
    """
    nx = sys.modules.get("networkx")          # a graph object means networkx is imported
    if nx is None or not isinstance(G, nx.Graph):
        return None
    if G.is_multigraph():
        raise TypeError("A is a networkx multigraph; pass nx.Graph(A) or nx.DiGraph(A)")
    index = {u: i for i, u in enumerate(G)}
    rows: list[list[Any]] = [[0] * len(index) for _ in index]
    for u, v, w in G.edges(data="weight", default=1):
        rows[index[u]][index[v]] = w
        if not G.is_directed():
            rows[index[v]][index[u]] = w
    return rows


def _like(*xs: Any) -> dict[str, Any]:
    """The dtype and device of the result: those of the floating tensor arguments.

    float64 on the CPU when no argument is a floating tensor (lists, arrays, int tensors).
    """
    ts = [x for x in xs if isinstance(x, torch.Tensor)]
    floats = [t.dtype for t in ts if t.is_floating_point()]
    return {"dtype": functools.reduce(torch.promote_types, floats) if floats else torch.float64,
            "device": ts[0].device if ts else None}


def _square(name: str, A: Any, dtype: torch.dtype | None = None,
            device: torch.device | None = None) -> torch.Tensor:
    """``A`` as a square floating matrix (dtype and device: :func:`_like` unless given)."""
    if isinstance(A, sp.MatrixBase):
        raise TypeError(f"{name} is a sympy Matrix; use the _sym function or pass numbers")
    rows = _networkx_rows(A)
    like = _like(A)
    try:
        T = torch.as_tensor(A if rows is None else rows)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a square matrix (tensor, array or nested lists), "
                        f"got {type(A).__name__}: {err}") from None
    if T.is_complex():                  # a cast to a real dtype would drop the imaginary parts
        raise TypeError(f"{name} must be real, got complex entries ({T.dtype})")
    T = T.to(dtype=dtype or like["dtype"], device=device or like["device"])
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {tuple(T.shape)}")
    return T


def _fmt(v: float) -> str:
    return str(int(v)) if math.isfinite(v) and v == int(v) else f"{v:g}"


def _flags(**flags: object) -> None:
    for name, value in flags.items():
        check_bool(name, value)


# --- adjacency matrices -----------------------------------------------------------------

def adjacency_problems(A: Any, *, directed: bool = False, self_loops: bool = False,
                       weighted: bool = False, index_base: int = 0) -> list[str]:
    r"""Everything that stops a matrix from being the adjacency matrix of the graph class asked.

    Explanation
    -----------
    An adjacency matrix has :math:`A_{uv} \ne 0` exactly when there is an edge from
    :math:`u` to :math:`v`.  Depending on the class of graph it must also be

    - finite and non-negative (always);
    - 0/1 unless ``weighted``;
    - zero on the diagonal unless ``self_loops``;
    - symmetric, :math:`A_{uv} = A_{vu}`, unless ``directed`` (an undirected edge is one
      edge seen from both ends).

    Each violated entry gives one message; an asymmetric pair gives one message for the
    pair.  Use :func:`validate_adjacency` to raise instead.

    Parameters
    ----------
    A : array_like or networkx graph, shape (n, n)
    directed, self_loops, weighted : bool
        The class of graph: allow asymmetric matrices, non-zero diagonals, entries other
        than 0 and 1.
    index_base : int
        Number of the first node in the messages (0 as in Python; 1 as in most textbooks).

    Returns
    -------
    list of str
        Empty when ``A`` is valid.

    Raises
    ------
    ValueError
        If ``A`` is not a non-empty square matrix.
    TypeError
        If ``A`` is not numeric.

    Examples
    --------
    >>> adjacency_problems([[0, 1], [1, 0]])
    []
    >>> adjacency_problems([[0, 1, 0], [0, 1, 1], [0, 1, 0]], index_base=1)
    ['A[2,2] = 1 is a self-loop', 'A[1,2] = 1 but A[2,1] = 0: not symmetric']
    >>> adjacency_problems([[0, 1], [0, 0]], directed=True)
    []

    See Also
    --------
    validate_adjacency : raise on the first invalid matrix.
    undirected_repairs : the undirected graphs an asymmetric matrix may have meant.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = _square("A", A)
    _flags(directed=directed, self_loops=self_loops, weighted=weighted)
    b = check_int("index_base", index_base, 0)
    out: list[str] = []

    def cells(mask: torch.Tensor) -> list[tuple[int, int]]:
        return [(int(i), int(j)) for i, j in torch.nonzero(mask)]

    finite = torch.isfinite(A)
    out += [f"A[{i+b},{j+b}] = {_fmt(float(A[i, j]))} is not finite" for i, j in cells(~finite)]
    out += [f"A[{i+b},{j+b}] = {_fmt(float(A[i, j]))} is negative" for i, j in cells(finite & (A < 0))]
    if not weighted:
        other = finite & (A > 0) & (A != 1)
        out += [f"A[{i+b},{j+b}] = {_fmt(float(A[i, j]))} is not 0 or 1 (weighted=False)"
                for i, j in cells(other)]
    if not self_loops:
        out += [f"A[{i+b},{i+b}] = {_fmt(float(A[i, i]))} is a self-loop"
                for i in range(A.shape[0]) if A[i, i] != 0]
    if not directed:
        upper = torch.triu(torch.ones_like(A, dtype=torch.bool), diagonal=1)
        asym = upper & finite & finite.T & (A != A.T)
        out += [f"A[{i+b},{j+b}] = {_fmt(float(A[i, j]))} but A[{j+b},{i+b}] = "
                f"{_fmt(float(A[j, i]))}: not symmetric" for i, j in cells(asym)]
    return out


def validate_adjacency(A: Any, *, directed: bool = False, self_loops: bool = False,
                       weighted: bool = False) -> torch.Tensor:
    """Return ``A`` as a tensor, or raise if it is not a valid adjacency matrix.

    Explanation
    -----------
    The checks are those of :func:`adjacency_problems`; the error message lists the first
    few offending entries (0-based) and how many more there are.

    Parameters
    ----------
    A : array_like or networkx graph, shape (n, n)
    directed, self_loops, weighted : bool
        The class of graph, as in :func:`adjacency_problems`.

    Returns
    -------
    torch.Tensor, shape (n, n)
        The dtype and device of a floating tensor ``A``; float64 otherwise.

    Raises
    ------
    ValueError
        If ``A`` is not square, or is not a valid adjacency of the class asked.
    TypeError
        If ``A`` is not numeric.

    Examples
    --------
    >>> validate_adjacency([[0, 2], [2, 0]], weighted=True)
    tensor([[0., 2.],
            [2., 0.]], dtype=torch.float64)
    >>> validate_adjacency([[0, 1], [0, 0]])
    Traceback (most recent call last):
    ...
    ValueError: A is not the adjacency matrix of an undirected graph without self-loops (unweighted): A[0,1] = 1 but A[1,0] = 0: not symmetric

    See Also
    --------
    adjacency_problems : the list of problems, without raising.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = _square("A", A)
    problems = adjacency_problems(A, directed=directed, self_loops=self_loops, weighted=weighted)
    if problems:
        kind = ("directed" if directed else "undirected") + " graph " + \
            ("with" if self_loops else "without") + " self-loops " + \
            ("(weighted)" if weighted else "(unweighted)")
        listed = "; ".join(problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        raise ValueError(f"A is not the adjacency matrix of an {kind}: {listed}"
                         + (f"; ... and {more} more" if more > 0 else ""))
    return A


def adjacency_matrix(edges: Iterable[Sequence[int]], num_nodes: int, *,
                     weights: Sequence[float] | None = None, directed: bool = False,
                     self_loops: bool = False) -> torch.Tensor:
    r"""The adjacency matrix of a graph given by its edge list.

    Explanation
    -----------
    :math:`A_{uv} = w_{uv}` for each edge :math:`(u, v)` (weight 1 when ``weights`` is
    None) and 0 elsewhere.  An undirected edge sets both :math:`A_{uv}` and :math:`A_{vu}`,
    so the matrix is symmetric.  An edge given twice (for an undirected graph: also as
    ``(v, u)``) is an error rather than being summed or overwritten silently.

    Parameters
    ----------
    edges : iterable of pairs of int
        Node indices in ``0, ..., num_nodes - 1``.
    num_nodes : int
        :math:`n \ge 1`; nodes without edges are isolated.
    weights : sequence of float, optional
        One positive, finite weight per edge.
    directed : bool
        ``(u, v)`` is an arc from ``u`` to ``v`` only.
    self_loops : bool
        Allow edges ``(u, u)``.

    Returns
    -------
    torch.Tensor, shape (n, n), float64

    Raises
    ------
    ValueError
        For a node out of range, a repeated edge, a self-loop when not allowed, a weight
        that is not positive and finite, or a ``weights`` of the wrong length.
    TypeError
        For an edge that is not a pair of ints.

    Examples
    --------
    >>> adjacency_matrix([(0, 1), (1, 2)], 3)
    tensor([[0., 1., 0.],
            [1., 0., 1.],
            [0., 1., 0.]], dtype=torch.float64)
    >>> adjacency_matrix([(0, 1)], 2, directed=True, weights=[0.5]).tolist()
    [[0.0, 0.5], [0.0, 0.0]]
    >>> adjacency_matrix([(0, 1), (1, 0)], 2)
    Traceback (most recent call last):
    ...
    ValueError: edge (1, 0) repeats edge (0, 1) of an undirected graph

    See Also
    --------
    edge_list : the inverse: the edges of an adjacency matrix.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    num_nodes = check_int("num_nodes", num_nodes, 1)
    check_entries(f"the adjacency matrix of num_nodes={num_nodes} nodes", num_nodes**2)
    _flags(directed=directed, self_loops=self_loops)
    if isinstance(edges, (str, bytes)) or not isinstance(edges, (Iterable, torch.Tensor)):
        raise TypeError(f"edges must be a sequence of (u, v) pairs, got {type(edges).__name__}")
    edges = edges.tolist() if isinstance(edges, torch.Tensor) else list(edges)
    if weights is None:
        w = [1.0] * len(edges)
    else:
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        w = [check_number(f"weights[{i}]", x, positive=True) for i, x in enumerate(weights)]
        if len(w) != len(edges):
            raise ValueError(f"weights must have one entry per edge: {len(w)} weights for "
                             f"{len(edges)} edges")
    A = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    for e, wt in zip(edges, w):
        if len(e) != 2 or not all(is_int(x) for x in e):
            raise TypeError(f"each edge must be a pair of ints, got {e!r}")
        u, v = int(e[0]), int(e[1])
        for x in (u, v):
            if not 0 <= x < num_nodes:
                raise ValueError(f"edge {(u, v)} has node {x} outside 0..{num_nodes - 1} "
                                 f"(num_nodes={num_nodes})")
        if u == v and not self_loops:
            raise ValueError(f"edge {(u, v)} is a self-loop; pass self_loops=True to allow it")
        key = (u, v) if directed else (min(u, v), max(u, v))
        if key in seen:
            kind = "directed" if directed else "undirected"
            raise ValueError(f"edge {(u, v)} repeats edge {seen[key]} of an {kind} graph")
        seen[key] = (u, v)
        A[u, v] = wt
        if not directed:
            A[v, u] = wt
    return A


def edge_list(A: Any, *, directed: bool = False) -> list[tuple[int, int]]:
    """The edges of a graph, read from its adjacency matrix.

    Explanation
    -----------
    For an undirected graph each edge is listed once as ``(u, v)`` with ``u <= v``; for a
    directed graph every non-zero entry ``A[u, v]`` is an arc ``(u, v)``.  The weights are
    ``A[u, v]``.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Validated with self-loops and weights allowed.
    directed : bool

    Returns
    -------
    list of (int, int)
        In row-major order.

    Raises
    ------
    ValueError
        If ``A`` is not a valid adjacency matrix (e.g. asymmetric with ``directed=False``).

    Examples
    --------
    >>> edge_list([[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    [(0, 1), (0, 2)]
    >>> edge_list([[0, 1], [0, 0]], directed=True)
    [(0, 1)]

    See Also
    --------
    adjacency_matrix : the inverse.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = validate_adjacency(A, directed=directed, self_loops=True, weighted=True)
    mask = A != 0
    if not directed:
        mask = torch.triu(mask)
    return [(int(u), int(v)) for u, v in torch.nonzero(mask)]


def undirected_repairs(A: Any, degrees: Sequence[float] | None = None, *,
                       max_free: int = 20) -> list[torch.Tensor]:
    r"""The simple undirected graphs that an inconsistent 0/1 matrix may have meant.

    Explanation
    -----------
    A matrix meant as the adjacency of a simple undirected graph but written with
    mistakes is partly trustworthy: a pair with :math:`A_{uv} = A_{vu}` states the same
    thing twice, a pair with :math:`A_{uv} \ne A_{vu}` contradicts itself, and a diagonal
    entry is wrong whatever it says.  This function keeps every pair on which the matrix
    agrees with itself, tries both values on each contradictory pair, sets the diagonal to
    zero, and returns the candidates whose degree sequence equals ``degrees`` (all
    :math:`2^k` candidates for :math:`k` contradictory pairs when ``degrees`` is None).

    Parameters
    ----------
    A : array_like, shape (n, n)
        Entries 0 or 1; asymmetry and self-loops are allowed (that is the point).
    degrees : sequence of float, optional
        Known degrees of the intended graph (e.g. the diagonal of a stated degree matrix).
    max_free : int
        Refuse more than this many contradictory pairs (the search is exponential).

    Returns
    -------
    list of torch.Tensor
        Symmetric 0/1 matrices with zero diagonal, in the order of enumeration.

    Raises
    ------
    ValueError
        If ``A`` has entries other than 0 and 1, ``degrees`` has the wrong length, or there
        are more than ``max_free`` contradictory pairs.

    Examples
    --------
    >>> A = [[0, 1, 0], [1, 0, 1], [0, 0, 0]]      # A[1,2] = 1 but A[2,1] = 0
    >>> len(undirected_repairs(A))
    2
    >>> undirected_repairs(A, degrees=[1, 2, 1])[0].tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]

    See Also
    --------
    adjacency_problems : which entries are inconsistent.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = validate_adjacency(A, directed=True, self_loops=True, weighted=False)
    check_int("max_free", max_free, 0)
    n = A.shape[0]
    if degrees is not None:
        if hasattr(degrees, "tolist"):                # a tensor or a NumPy array
            degrees = degrees.tolist()
        if isinstance(degrees, (str, bytes)) or not isinstance(degrees, Sequence):
            raise TypeError(f"degrees must be a sequence of numbers, got {type(degrees).__name__}")
        deg = torch.as_tensor([check_number(f"degrees[{i}]", d) for i, d in enumerate(degrees)],
                              dtype=A.dtype, device=A.device)
        if deg.shape != (n,):
            raise ValueError(f"degrees must have one entry per node ({n}), got {deg.shape[0]}")
    base = torch.triu(A * (A == A.T), diagonal=1)        # pairs on which A agrees with itself
    free = [(i, j) for i in range(n) for j in range(i + 1, n) if A[i, j] != A[j, i]]
    if len(free) > max_free:
        raise ValueError(f"{len(free)} contradictory pairs: more than max_free={max_free}")
    out = []
    for choice in itertools.product((0.0, 1.0), repeat=len(free)):
        U = base.clone()
        for (i, j), c in zip(free, choice):
            U[i, j] = c
        S = U + U.T
        if degrees is None or torch.equal(S.sum(dim=1), deg):
            out.append(S)
    return out


# --- walks --------------------------------------------------------------------------------

def walk_counts(A: Any, k: int) -> torch.Tensor:
    r"""The matrix power :math:`A^k`, whose entry :math:`(u, v)` counts the walks of length k.

    Explanation
    -----------
    A walk of length :math:`k` from :math:`u` to :math:`v` is a sequence of nodes
    :math:`u = w_0, w_1, \dots, w_k = v` with an edge from each :math:`w_{t-1}` to
    :math:`w_t`; nodes and edges may repeat (a *path* is a walk that repeats no node).  By
    the definition of the matrix product,

    .. math:: (A^k)_{uv} = \sum_{w_1, \dots, w_{k-1}} A_{u w_1} A_{w_1 w_2} \cdots A_{w_{k-1} v},

    and each product is 1 exactly for a walk, so :math:`(A^k)_{uv}` counts the walks (for a
    weighted graph it sums the products of the weights along them).  Directed graphs and
    self-loops are allowed.  Entries are exact while they stay below :math:`2^{53}`; use
    :func:`walk_counts_sym` for exact integers beyond.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Any finite non-negative matrix.
    k : int
        :math:`k \ge 0`; :math:`A^0 = I`.

    Returns
    -------
    torch.Tensor, shape (n, n), like A (float64 unless A is a floating tensor)

    Raises
    ------
    ValueError
        If ``A`` is not square or has negative or non-finite entries, or ``k < 0``.
    TypeError
        If ``k`` is not an int.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (1, 2)], 3)        # the path 0 - 1 - 2
    >>> walk_counts(A, 2).int().tolist()
    [[1, 0, 1], [0, 2, 0], [1, 0, 1]]

    See Also
    --------
    walk_counts_sym : exact integer (or symbolic-weight) version with SymPy.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = validate_adjacency(A, directed=True, self_loops=True, weighted=True)
    out = torch.linalg.matrix_power(A, check_int("k", k, 0))
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"the walk counts of length k={k} overflow {A.dtype}; "
                         f"walk_counts_sym computes them exactly")
    return out


def walk_counts_sym(A: Any, k: int) -> sp.Matrix:
    """Exact :math:`A^k` with SymPy: integer walk counts, or polynomials in symbolic weights.

    Parameters
    ----------
    A : sympy.Matrix or nested lists, shape (n, n)
        Integer, rational or symbolic entries.
    k : int
        :math:`k \\ge 0`.

    Returns
    -------
    sympy.Matrix

    Raises
    ------
    ValueError
        If ``A`` is not square or ``k < 0``.
    TypeError
        If ``k`` is not an int.

    Examples
    --------
    >>> walk_counts_sym([[0, 1], [1, 1]], 5)          # Fibonacci numbers
    Matrix([
    [3, 5],
    [5, 8]])
    >>> a = sp.Symbol("a")
    >>> walk_counts_sym([[0, a], [a, 0]], 2)
    Matrix([
    [a**2,    0],
    [   0, a**2]])

    See Also
    --------
    walk_counts : floating-point version with torch.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    M = _square_sym("A", A)
    k = check_int("k", k, 0)
    return M ** k if k > 0 else sp.eye(M.shape[0])


def _square_sym(name: str, A: Any) -> sp.Matrix:
    if isinstance(A, torch.Tensor):
        A = A.tolist()
    rows = _networkx_rows(A)
    A = A if rows is None else rows
    try:
        M = sp.Matrix(A)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sympy Matrix or nested lists, got "
                        f"{type(A).__name__}: {err}") from None
    if M.rows != M.cols or M.rows == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {M.shape}")
    return M


# --- degree and Laplacian matrices --------------------------------------------------------

def degree_matrix(A: Any, *, directed: bool = False, self_loops: bool = False) -> torch.Tensor:
    r"""The diagonal degree matrix :math:`D = \operatorname{diag}(A\mathbf 1)`.

    Explanation
    -----------
    :math:`D_{uu} = \sum_v A_{uv}`: the number of neighbours of :math:`u` (the total weight
    of its edges for a weighted graph).  For a directed graph this is the out-degree.  A
    self-loop contributes its weight once, the convention under which :math:`L = D - A`
    ignores self-loops (and the one networkx's ``laplacian_matrix`` uses).

    Parameters
    ----------
    A : array_like, shape (n, n)
        Non-negative, weights allowed.
    directed, self_loops : bool
        Allow an asymmetric matrix, a non-zero diagonal.

    Returns
    -------
    torch.Tensor, shape (n, n), like A (float64 unless A is a floating tensor)

    Raises
    ------
    ValueError
        If ``A`` is not a valid adjacency matrix of the class asked.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (0, 2)], 3)
    >>> torch.diagonal(degree_matrix(A)).tolist()
    [2.0, 1.0, 1.0]

    See Also
    --------
    laplacian : :math:`D - A` and its normalisations.

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    A = validate_adjacency(A, directed=directed, self_loops=self_loops, weighted=True)
    return torch.diag(A.sum(dim=1))


def laplacian(A: Any, normalization: str | None = None, *,
              self_loops: bool = False) -> torch.Tensor:
    r"""The graph Laplacian of an undirected (weighted) graph.

    Explanation
    -----------
    With :math:`D` the degree matrix (:func:`degree_matrix`):

    - ``None``: the combinatorial Laplacian :math:`L = D - A`, so
      :math:`(Lx)_u = \sum_{v} A_{uv}(x_u - x_v)`: each node minus its neighbours;
    - ``"sym"``: :math:`L_\mathrm{sym} = D^{-1/2} L D^{-1/2} = I - D^{-1/2} A D^{-1/2}`,
      symmetric with eigenvalues in :math:`[0, 2]`;
    - ``"rw"``: :math:`L_\mathrm{rw} = D^{-1} L = I - D^{-1} A`, where :math:`D^{-1}A` is the
      transition matrix of the random walk; similar to :math:`L_\mathrm{sym}`.

    For an isolated node (degree 0) the inverse powers of its degree are taken as 0, so its
    row and column of the normalised Laplacians are 0 (networkx's convention).

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric and non-negative; weights allowed.
    normalization : {None, "sym", "rw"}
    self_loops : bool
        Allow a non-zero diagonal (it cancels in :math:`D - A`).

    Returns
    -------
    torch.Tensor, shape (n, n), like A (float64 unless A is a floating tensor)

    Raises
    ------
    ValueError
        If ``A`` is not a symmetric non-negative matrix, or ``normalization`` is unknown.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (1, 2)], 3)
    >>> laplacian(A).int().tolist()
    [[1, -1, 0], [-1, 2, -1], [0, -1, 1]]
    >>> laplacian(A, "rw").tolist()
    [[1.0, -1.0, 0.0], [-0.5, 1.0, -0.5], [0.0, -1.0, 1.0]]

    See Also
    --------
    laplacian_sym : the combinatorial Laplacian with SymPy (symbolic weights).
    degree_matrix, dirichlet_energy, gcn_normalized_adjacency

    References
    ----------
    Chung, "Spectral Graph Theory" (1997), chapter 1.  Chapter: :ref:`ch-graphs`.
    """
    check_choice("normalization", normalization, _NORMALIZATIONS)
    A = validate_adjacency(A, self_loops=self_loops, weighted=True)
    d = A.sum(dim=1)                                    # (n,) degrees
    L = torch.diag(d) - A
    if normalization is None:
        return L
    safe = torch.where(d > 0, d, torch.ones_like(d))
    if normalization == "sym":
        # L_sym = D^{-1/2} L D^{-1/2}, with 0 for isolated nodes
        s = torch.where(d > 0, safe.rsqrt(), torch.zeros_like(d))
        return s[:, None] * L * s[None, :]
    # L_rw = D^{-1} L
    inv = torch.where(d > 0, 1.0 / safe, torch.zeros_like(d))
    return inv[:, None] * L


def laplacian_sym(A: Any) -> sp.Matrix:
    r"""The combinatorial Laplacian :math:`L = D - A` with SymPy (exact or symbolic weights).

    Parameters
    ----------
    A : sympy.Matrix or nested lists, shape (n, n)
        Symmetric; entries may be symbols (weights).

    Returns
    -------
    sympy.Matrix

    Raises
    ------
    ValueError
        If ``A`` is not square or not symmetric.

    Examples
    --------
    >>> a, b = sp.symbols("a b", positive=True)
    >>> laplacian_sym([[0, a, 0], [a, 0, b], [0, b, 0]])
    Matrix([
    [ a,     -a,  0],
    [-a,  a + b, -b],
    [ 0,     -b,  b]])

    See Also
    --------
    laplacian : numeric version (with the normalised variants).

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    M = _square_sym("A", A)
    if not (M - M.T).applyfunc(sp.simplify).is_zero_matrix:
        raise ValueError("A must be symmetric (an undirected graph), got A != A.T")
    n = M.rows
    return sp.diag(*[sum(M.row(i)) for i in range(n)]) - M


def dirichlet_energy(X: Any, A: Any) -> torch.Tensor:
    r"""The sum over edges :math:`\sum_{\{u,v\}} A_{uv}\,\lVert x_u - x_v \rVert^2`.

    Explanation
    -----------
    It measures how much a signal :math:`X` (one row per node) varies across edges, and it
    equals the quadratic form of the Laplacian, :math:`\operatorname{tr}(X^\top L X)` (for one
    channel :math:`x^\top L x`).  This function computes the edge sum directly, without
    :math:`L`, so the two sides of the identity can be compared.

    Parameters
    ----------
    X : array_like, shape (n,) or (n, c)
    A : array_like, shape (n, n)
        Symmetric and non-negative; weights allowed, self-loops contribute nothing.

    Returns
    -------
    torch.Tensor
        A scalar, the dtype of the floating tensor arguments (float64 if none).

    Raises
    ------
    ValueError
        If the shapes disagree or ``A`` is not a valid undirected adjacency matrix.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (1, 2)], 3)
    >>> float(dirichlet_energy([1.0, 3.0, 0.0], A))      # (1-3)^2 + (3-0)^2
    13.0

    See Also
    --------
    laplacian : :math:`x^\top L x` is the same number.

    References
    ----------
    Chung, "Spectral Graph Theory" (1997), section 1.2.  Chapter: :ref:`ch-graphs`.
    """
    like = _like(X, A)
    A = validate_adjacency(_square("A", A, **like), self_loops=True, weighted=True)
    X = _signal("X", X, A.shape[0], **like)
    n = A.shape[0]
    u, v = torch.triu_indices(n, n, offset=1, device=A.device)    # each unordered pair once
    w = A[u, v]                                          # (E,)
    diff = X[u] - X[v]                                   # (E, c)
    # sum_e w_e ||x_u - x_v||^2
    return (w[:, None] * diff**2).sum()


def _signal(name: str, X: Any, n: int, dtype: torch.dtype, device: torch.device | None
            ) -> torch.Tensor:
    """A node signal as an (n, c) tensor of the given dtype and device."""
    try:
        T = torch.as_tensor(X)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be numeric, got {type(X).__name__}: {err}") from None
    if T.is_complex() or T.dtype == torch.bool:
        raise TypeError(f"{name} must be real numbers, got {T.dtype}")
    T = T.to(dtype=dtype, device=device)
    if T.ndim == 1:
        T = T[:, None]
    if T.ndim != 2 or T.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, c) with n = {n} nodes, "
                         f"got {tuple(T.shape)}")
    return T


# --- spectrum, components and smoothing ---------------------------------------------------

def num_components_spectral(A: Any, *, tol: float = 1e-8) -> int:
    r"""The number of connected components, read off as the multiplicity of eigenvalue 0 of L.

    Explanation
    -----------
    :math:`x^\top L x = \sum_{\{u,v\}} A_{uv}(x_u - x_v)^2` vanishes exactly when :math:`x` is
    constant on each connected component, so the null space of :math:`L` is spanned by the
    indicator vectors of the components and its dimension is their number.  Eigenvalues
    below ``tol`` times :math:`\max(1, \lambda_{\max})` count as zero; for weights spanning
    many orders of magnitude, lower ``tol``.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric and non-negative.
    tol : float
        Relative threshold for a zero eigenvalue, in :math:`(0, 1)`.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``A`` is not a valid undirected adjacency matrix, or ``tol`` is not in (0, 1).

    Examples
    --------
    >>> num_components_spectral(adjacency_matrix([(0, 1), (2, 3)], 5))   # {0,1}, {2,3}, {4}
    3

    See Also
    --------
    laplacian

    References
    ----------
    Chung, "Spectral Graph Theory" (1997), lemma 1.7.  Chapter: :ref:`ch-graphs`.
    """
    check_number("tol", tol, interval="(0, 1)")
    # eigenvalues in float64 whatever the dtype of A: tol is relative to float64 round-off
    A = _square("A", A, dtype=torch.float64)
    lam = torch.linalg.eigvalsh(laplacian(A, self_loops=True))     # ascending
    scale = max(1.0, float(lam[-1]))
    return int((lam <= tol * scale).sum())


def smoothing_stability_limit(A: Any, normalization: str | None = None) -> float:
    r"""The bound :math:`2/\lambda_{\max}(L)` on the step of the smoothing :math:`X - \alpha L X`.

    Explanation
    -----------
    In the eigenbasis of the symmetric :math:`L = \sum_i \lambda_i q_i q_i^\top` one step
    :math:`X \mapsto (I - \alpha L) X` multiplies the component along :math:`q_i` by
    :math:`1 - \alpha\lambda_i`.  Repeated steps stay bounded for every :math:`X` iff
    :math:`|1 - \alpha\lambda_i| \le 1` for all :math:`i`, i.e. :math:`0 \le \alpha \le
    2/\lambda_{\max}`; with strict inequality every non-constant component decays.  Returns
    ``inf`` for a graph without edges (:math:`L = 0`).  For ``"rw"`` the eigenvalues are
    those of the similar matrix ``"sym"``.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric and non-negative.
    normalization : {None, "sym", "rw"}
        Which Laplacian the smoothing uses.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``A`` is not a valid undirected adjacency matrix.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (1, 2)], 3)       # eigenvalues of L: 0, 1, 3
    >>> round(smoothing_stability_limit(A), 4)
    0.6667

    See Also
    --------
    laplacian_smoothing

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    check_choice("normalization", normalization, _NORMALIZATIONS)
    L = laplacian(_square("A", A, dtype=torch.float64),
                  "sym" if normalization == "rw" else normalization)
    lam_max = float(torch.linalg.eigvalsh(L)[-1])
    return math.inf if lam_max <= 0 else 2.0 / lam_max


def laplacian_smoothing(X: Any, A: Any, alpha: float, steps: int = 1,
                        normalization: str | None = None) -> torch.Tensor:
    r"""Apply ``steps`` times the smoothing step :math:`X \leftarrow X - \alpha L X`.

    Explanation
    -----------
    :math:`(X - \alpha L X)_u = x_u + \alpha \sum_v A_{uv}(x_v - x_u)`: each node moves
    towards its neighbours, a step of gradient descent on the Dirichlet energy
    :math:`\tfrac12 \operatorname{tr}(X^\top L X)` (a heat-equation step).  For the
    combinatorial Laplacian it preserves the sum of each channel (:math:`\mathbf 1^\top L =
    0`).  It is stable for :math:`\alpha \le 2/\lambda_{\max}`
    (:func:`smoothing_stability_limit`); larger steps are computed too (they diverge).

    Parameters
    ----------
    X : array_like, shape (n,) or (n, c)
    A : array_like, shape (n, n)
        Symmetric and non-negative.
    alpha : float
        Non-negative step.
    steps : int
        Number of steps, :math:`\ge 0`.
    normalization : {None, "sym", "rw"}
        Which Laplacian to use.

    Returns
    -------
    torch.Tensor
        The shape of ``X``, the dtype of the floating tensor arguments (float64 if none).

    Raises
    ------
    ValueError
        If shapes disagree, ``alpha`` is negative or not finite, or ``steps < 0``.
    TypeError
        If ``steps`` is not an int.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1), (1, 2)], 3)
    >>> laplacian_smoothing([0.0, 3.0, 0.0], A, alpha=0.25).tolist()
    [0.75, 1.5, 0.75]

    See Also
    --------
    smoothing_stability_limit, dirichlet_energy

    References
    ----------
    Chapter: :ref:`ch-graphs`.
    """
    check_choice("normalization", normalization, _NORMALIZATIONS)
    alpha = check_number("alpha", alpha, nonnegative=True)
    steps = check_int("steps", steps, 0, limit=10**6)       # one matrix product per step
    like = _like(X, A)
    L = laplacian(_square("A", A, **like), normalization)
    Y = _signal("X", X, L.shape[0], **like)             # (n, c)
    one_dim = torch.as_tensor(X).ndim == 1
    for _ in range(steps):
        Y = Y - alpha * (L @ Y)
    return Y[:, 0] if one_dim else Y


# --- graph convolutional networks ---------------------------------------------------------

def gcn_normalized_adjacency(A: Any) -> torch.Tensor:
    r"""The propagation matrix :math:`\hat A = \tilde D^{-1/2}(A + I)\tilde D^{-1/2}` of a GCN.

    Explanation
    -----------
    Kipf and Welling's "renormalisation trick": add a self-loop to every node
    (:math:`\tilde A = A + I`, degrees :math:`\tilde D = D + I`) and normalise symmetrically.
    :math:`\hat A = I - \tilde L_\mathrm{sym}`, where :math:`\tilde L_\mathrm{sym}` is the
    normalised Laplacian of the graph with the self-loops, so its eigenvalues lie in
    :math:`(-1, 1]`: multiplying by :math:`\hat A` is a smoothing step that cannot blow up.
    An empty graph gives :math:`\hat A = I` (a GCN becomes an MLP).

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric, non-negative, zero diagonal (the self-loops are added here).

    Returns
    -------
    torch.Tensor, shape (n, n), like A (float64 unless A is a floating tensor)

    Raises
    ------
    ValueError
        If ``A`` is not a valid undirected adjacency matrix without self-loops.

    Examples
    --------
    >>> A = adjacency_matrix([(0, 1)], 3)
    >>> gcn_normalized_adjacency(A).tolist()
    [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]

    See Also
    --------
    laplacian : the ``"sym"`` normalisation without the added self-loops.
    dlmath.models.gcn.GraphConv

    References
    ----------
    Kipf and Welling (2017), equation (2).  Chapter: :ref:`ch-graphs`.
    """
    A = validate_adjacency(A, weighted=True)
    At = A + torch.eye(A.shape[0], dtype=A.dtype, device=A.device)   # A~ = A + I
    s = At.sum(dim=1).rsqrt()                            # diag of D~^{-1/2}, D~ >= 1
    return s[:, None] * At * s[None, :]


