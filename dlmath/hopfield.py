"""Modern Hopfield networks with continuous states: energy, CCCP update, retrieval.

Scope: the energy of Ramsauer et al. (2021), its gradient and Hessian in closed form, its
split into a convex and a concave part, the update rule that the concave-convex procedure
(CCCP) gives, iterated retrieval, and the quantities of the retrieval theorems (separation
of a pattern, the exponential error bound).  Chapter: :ref:`ch-hopfield`.

Convention: ``X`` of shape ``(N, D)`` holds the N stored patterns as **rows**; a query
(state) ``q`` has shape ``(D,)`` or ``(..., D)`` for a batch of queries; ``M = max_i
||x_i||``; ``lse(beta, z) = beta^-1 log sum_i exp(beta z_i)``.  Ramsauer et al. store the
patterns as columns; every formula here is theirs with ``X`` transposed.

References: H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021;
A. L. Yuille and A. Rangarajan, "The Concave-Convex Procedure", Neural Computation 2003.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
import torch

from dlmath._validate import check_int, check_number

__all__ = [
    "energy",
    "energy_sym",
    "energy_split",
    "energy_grad",
    "energy_hessian",
    "energy_majorizer",
    "update",
    "retrieve",
    "Retrieval",
    "separation",
    "separation_threshold",
    "retrieval_error",
    "retrieval_error_bound",
]


# --- validation -------------------------------------------------------------------------

def _check_patterns(X: object) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape (N, D), got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape (N, D) with N, D >= 1 (patterns as rows), got {tuple(X.shape)}")
    if not X.is_floating_point():
        raise TypeError(f"X must have a floating dtype, got {X.dtype}")
    return X


def _check_pair(X: object, q: object, name: str = "q") -> tuple[torch.Tensor, torch.Tensor]:
    X = _check_patterns(X)
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., D), got {type(q).__name__}")
    if q.ndim < 1 or q.shape[-1] != X.shape[1]:
        raise ValueError(f"{name} must have shape (..., D) with D = {X.shape[1]} (the columns of X), "
                         f"got {tuple(q.shape)}")
    if not q.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {q.dtype}")
    dtype = torch.promote_types(X.dtype, q.dtype)
    return X.to(dtype), q.to(dtype)


def _max_norm(X: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(X, dim=1).max()


# --- energy and its derivatives ---------------------------------------------------------

def energy_split(X: torch.Tensor, q: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The convex part :math:`E_1` and the concave part :math:`E_2` of the energy.

    Explanation
    -----------
    :math:`E = E_1 + E_2` with

    .. math:: E_1(q) = \tfrac12 q^\top q + \beta^{-1}\log N + \tfrac12 M^2, \qquad
              E_2(q) = -\operatorname{lse}(\beta, Xq).

    :math:`E_1` has Hessian :math:`I` (convex); :math:`-E_2` has Hessian
    :math:`\beta X^\top(\operatorname{diag}(p) - pp^\top)X \succeq 0` with
    :math:`p = \operatorname{softmax}(\beta Xq)`, so :math:`E_2` is concave.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
        Stored patterns as rows.
    q : torch.Tensor, shape (..., D)
        Query (state) patterns.
    beta : float
        Inverse temperature, > 0.

    Returns
    -------
    (E1, E2) : tuple of torch.Tensor, each of shape (...)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> E1, E2 = energy_split(X, torch.tensor([1., 0.], dtype=torch.float64), beta=1.0)
    >>> round(float(E1), 4), round(float(E2), 4)      # 1/2 + log 2 + 1/2,  -log(e + 1)
    (1.6931, -1.3133)

    See Also
    --------
    energy : their sum.

    References
    ----------
    Ramsauer et al. (2021), appendix, proof of Theorem 1.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    N = X.shape[0]
    # z = X q                                                     (..., N)
    z = q @ X.T
    # E_2 = -lse(beta, z) = -beta^-1 log sum_i exp(beta z_i)       (...)
    E2 = -torch.logsumexp(beta * z, dim=-1) / beta
    # E_1 = q^T q / 2 + beta^-1 log N + M^2 / 2                    (...)
    E1 = 0.5 * (q * q).sum(-1) + math.log(N) / beta + 0.5 * _max_norm(X) ** 2
    return E1, E2


def energy(X: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Energy of a modern Hopfield network with continuous states.

    Explanation
    -----------
    .. math:: E(q) = -\operatorname{lse}(\beta, Xq) + \tfrac12 q^\top q
              + \beta^{-1}\log N + \tfrac12 M^2 ,

    with :math:`\operatorname{lse}(\beta, z) = \beta^{-1}\log\sum_i e^{\beta z_i}` and
    :math:`M = \max_i \lVert x_i\rVert`.  The constants make :math:`0 \le E \le 2M^2` on the
    convex hull of the patterns (Ramsauer et al., Lemma A1); they do not change the
    gradient.  The log-sum-exp is evaluated stably (``torch.logsumexp``).

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
        Stored patterns as rows.
    q : torch.Tensor, shape (..., D)
        Query (state) patterns; a batch gives a batch of energies.
    beta : float
        Inverse temperature, > 0.

    Returns
    -------
    torch.Tensor, shape (...)

    Raises
    ------
    ValueError
        If the shapes do not match or ``beta`` is not positive.
    TypeError
        If ``X`` or ``q`` is not a floating tensor, or ``beta`` is not a real number.

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> round(float(energy(X, X[0], beta=1.0)), 4)
    0.38
    >>> energy(X, torch.zeros(5, 2, dtype=torch.float64), beta=2.0).shape
    torch.Size([5])

    See Also
    --------
    energy_sym : the same formula in SymPy.
    energy_split : its convex and concave parts.
    energy_grad, energy_hessian : its derivatives in closed form.

    References
    ----------
    Ramsauer et al. (2021), Eq. (2).  Chapter: :ref:`ch-hopfield`.
    """
    E1, E2 = energy_split(X, q, beta)
    return E1 + E2


def energy_sym(N: int, D: int) -> tuple[sp.Expr, tuple[sp.Matrix, sp.Matrix, sp.Symbol]]:
    r"""The energy as a SymPy expression in the pattern entries, the query and :math:`\beta`.

    Parameters
    ----------
    N, D : int
        Number of patterns and their dimension (both >= 1).

    Returns
    -------
    (E, (X, q, beta))
        ``X`` is an ``N x D`` matrix of real symbols ``x_{i j}``, ``q`` a ``D x 1`` matrix
        of real symbols ``q_j`` and ``beta`` a positive symbol.  ``M`` is written as
        ``Max`` of the pattern norms.

    Examples
    --------
    >>> E, (X, q, beta) = energy_sym(2, 1)
    >>> E
    q0**2/2 + Max(Abs(x00), Abs(x10))**2/2 - log(exp(beta*q0*x00) + exp(beta*q0*x10))/beta + log(2)/beta
    >>> sp.simplify(sp.diff(E, q[0], 2).subs({X[0, 0]: 1, X[1, 0]: 1}))
    1

    See Also
    --------
    energy : numeric version (torch).

    References
    ----------
    Chapter: :ref:`ch-hopfield`.
    """
    # the symbol names x{i}{j} are unambiguous for single-digit indices (x1_11 = x11_1 beyond)
    check_int("N", N, 1, 10)
    check_int("D", D, 1, 10)
    X = sp.Matrix(N, D, lambda i, j: sp.Symbol(f"x{i}{j}", real=True))
    q = sp.Matrix(D, 1, lambda j, _: sp.Symbol(f"q{j}", real=True))
    beta = sp.Symbol("beta", positive=True)
    z = X * q
    lse = sp.log(sum(sp.exp(beta * z[i]) for i in range(N))) / beta
    M = sp.Max(*[sp.sqrt(sum(X[i, j] ** 2 for j in range(D))) for i in range(N)])
    E = -lse + (q.T * q)[0] / 2 + sp.log(N) / beta + M ** 2 / 2
    return E, (X, q, beta)


def energy_grad(X: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Gradient of the energy: :math:`\nabla E(q) = q - X^\top \operatorname{softmax}(\beta Xq)`.

    Explanation
    -----------
    :math:`\nabla E_1 = q` and :math:`\nabla(-E_2) = X^\top p` with
    :math:`p = \operatorname{softmax}(\beta X q)`: the chain rule through
    :math:`\partial \operatorname{lse}(\beta, z)/\partial z = \operatorname{softmax}(\beta z)`
    and :math:`\partial z/\partial q = X`.  Stationary points satisfy :math:`q = X^\top p`,
    i.e. they are the fixed points of :func:`update`.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
    beta : float

    Returns
    -------
    torch.Tensor, shape (..., D)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> energy_grad(X, torch.tensor([0.5, 0.5], dtype=torch.float64), beta=1.0)
    tensor([0., 0.], dtype=torch.float64)

    See Also
    --------
    energy, energy_hessian, update

    References
    ----------
    Ramsauer et al. (2021), appendix A.1.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    # p = softmax(beta X q)                                        (..., N)
    p = torch.softmax(beta * (q @ X.T), dim=-1)
    # grad E = q - X^T p                                           (..., D)
    return q - p @ X


def energy_hessian(X: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Hessian of the energy: :math:`I - \beta X^\top(\operatorname{diag}(p) - pp^\top)X`.

    Explanation
    -----------
    Differentiating :math:`X^\top \operatorname{softmax}(\beta Xq)` once more gives the
    softmax Jacobian :math:`\operatorname{diag}(p) - pp^\top` sandwiched by :math:`X`, times
    :math:`\beta` from the inner derivative.  The second term is the covariance of the
    patterns under the weights :math:`p`, so it is positive semi-definite: :math:`E_2` is
    concave, and :math:`E` is convex wherever that covariance has spectral norm
    :math:`\le 1/\beta`.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
    beta : float

    Returns
    -------
    torch.Tensor, shape (..., D, D)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> energy_hessian(X, torch.tensor([0., 0.], dtype=torch.float64), beta=4.0)
    tensor([[0., 1.],
            [1., 0.]], dtype=torch.float64)

    See Also
    --------
    energy_grad
    energy_sym : differentiate it twice with :func:`sympy.hessian` for the symbolic check.

    References
    ----------
    Ramsauer et al. (2021), appendix A.1.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    D = X.shape[1]
    # p = softmax(beta X q)                                        (..., N)
    p = torch.softmax(beta * (q @ X.T), dim=-1)
    # m_d = sum_n p_n X_nd  (the weighted mean of the patterns)    (..., D)
    m = p @ X
    # S_de = sum_n p_n X_nd X_ne                                   (..., D, D)
    S = torch.einsum("...n,nd,ne->...de", p, X, X)
    # H = I - beta (S - m m^T)                                     (..., D, D)
    eye = torch.eye(D, dtype=X.dtype, device=X.device)
    return eye - beta * (S - m[..., :, None] * m[..., None, :])


def energy_majorizer(X: torch.Tensor, q: torch.Tensor, q_t: torch.Tensor, beta: float) -> torch.Tensor:
    r"""The CCCP upper bound of the energy built at :math:`q_t`.

    Explanation
    -----------
    Replacing the concave part by its tangent plane at :math:`q_t`,

    .. math:: U(q; q_t) = E_1(q) + E_2(q_t) + \nabla E_2(q_t)^\top (q - q_t),

    gives a function with :math:`U(q; q_t) \ge E(q)` for every :math:`q` (a concave function
    lies below its tangent planes) and :math:`U(q_t; q_t) = E(q_t)`.  It is a strictly convex
    quadratic in :math:`q` whose unique minimiser is :func:`update` of :math:`q_t`.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
        Where to evaluate.
    q_t : torch.Tensor, shape (..., D)
        The point the tangent plane touches (broadcast against ``q``).
    beta : float

    Returns
    -------
    torch.Tensor, shape (...)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]], dtype=torch.float64)
    >>> q_t = torch.tensor([0.3, -0.2], dtype=torch.float64)
    >>> bool(torch.isclose(energy_majorizer(X, q_t, q_t, 2.0), energy(X, q_t, 2.0)))
    True

    See Also
    --------
    update : its minimiser.
    energy_split

    References
    ----------
    Yuille & Rangarajan (2003); Ramsauer et al. (2021), Theorem 1.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    X, q_t = _check_pair(X, q_t, "q_t")
    E1, _ = energy_split(X, q, beta)
    _, E2_t = energy_split(X, q_t, beta)
    # grad E_2(q_t) = -X^T softmax(beta X q_t)                     (..., D)
    g = -update(X, q_t, beta)
    return E1 + E2_t + (g * (q - q_t)).sum(-1)


# --- update and retrieval ---------------------------------------------------------------

def update(X: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    r"""One CCCP step: :math:`q \leftarrow X^\top \operatorname{softmax}(\beta X q)`.

    Explanation
    -----------
    The new state is the average of the stored patterns weighted by
    :math:`p = \operatorname{softmax}(\beta Xq)`.  For a batch ``q`` of shape ``(S, D)``
    this is :math:`\operatorname{softmax}(\beta\, q X^\top) X` with a row-wise softmax:
    one attention step with queries ``q``, keys and values ``X``.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
    beta : float

    Returns
    -------
    torch.Tensor, shape (..., D)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> update(X, torch.tensor([1., 0.], dtype=torch.float64), beta=1.0).round(decimals=4)
    tensor([0.7311, 0.2689], dtype=torch.float64)

    See Also
    --------
    retrieve : iterate it.
    energy_majorizer : the bound it minimises.
    dlmath.attention.scaled_dot_product_attention : the same map with ``beta = 1/sqrt(D)``.

    References
    ----------
    Ramsauer et al. (2021), Eq. (3).  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    # p = softmax(beta X q)                                        (..., N)
    p = torch.softmax(beta * (q @ X.T), dim=-1)
    # q_new = X^T p                                                (..., D)
    return p @ X


@dataclass(frozen=True)
class Retrieval:
    """The result of :func:`retrieve`.

    Attributes
    ----------
    states : torch.Tensor, shape (steps + 1, ..., D)
        The query and every state after it.
    energies : torch.Tensor, shape (steps + 1, ...)
        The energy of each state.
    steps : int
        Number of updates made.
    converged : bool
        Whether the last update moved every query by at most ``tol`` (max-norm).
    """

    states: torch.Tensor
    energies: torch.Tensor
    steps: int
    converged: bool

    @property
    def final(self) -> torch.Tensor:
        """The last state, shape (..., D)."""
        return self.states[-1]


def retrieve(X: torch.Tensor, q: torch.Tensor, beta: float, max_steps: int = 100,
             tol: float = 1e-10) -> Retrieval:
    r"""Iterate :func:`update` from ``q`` until it stops moving.

    Explanation
    -----------
    The energy never increases along the iteration (CCCP), and the iteration converges to
    a stationary point of the energy (Ramsauer et al., Theorems 1 and 2).  The loop stops
    after ``max_steps`` updates or as soon as one update moves every query of the batch by
    at most ``tol`` in every coordinate.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
    beta : float
    max_steps : int
        At least 1.
    tol : float
        Non-negative.

    Returns
    -------
    Retrieval
        The trajectory (``states``), its ``energies``, ``steps`` and ``converged``.

    Examples
    --------
    >>> X = torch.tensor([[1., 1.], [1., -1.], [-1., 1.]], dtype=torch.float64)
    >>> r = retrieve(X, torch.tensor([0.8, 0.6], dtype=torch.float64), beta=8.0)
    >>> r.final.round(decimals=3), r.converged
    (tensor([1., 1.], dtype=torch.float64), True)
    >>> bool((r.energies.diff() <= 0).all())
    True

    See Also
    --------
    update, energy

    References
    ----------
    Ramsauer et al. (2021), Theorems 1 and 2.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    max_steps = check_int("max_steps", max_steps, 1, limit=10**6)   # one state per step is kept
    tol = check_number("tol", tol, nonnegative=True)
    states, energies = [q], [energy(X, q, beta)]
    converged = False
    for _ in range(max_steps):
        new = update(X, states[-1], beta)
        states.append(new)
        energies.append(energy(X, new, beta))
        if float((new - states[-2]).abs().max()) <= tol:
            converged = True
            break
    return Retrieval(torch.stack(states), torch.stack(energies), len(states) - 1, converged)


# --- retrieval theory -------------------------------------------------------------------

def separation(X: torch.Tensor) -> torch.Tensor:
    r"""Separation of each pattern from the others: :math:`\Delta_i = x_i^\top x_i - \max_{j\ne i} x_i^\top x_j`.

    Explanation
    -----------
    :math:`\Delta_i > 0` means that :math:`x_i` is the pattern most aligned with itself;
    the larger :math:`\beta\Delta_i`, the closer one update from near :math:`x_i` lands to
    :math:`x_i` (see :func:`retrieval_error_bound`).  For patterns of equal norm,
    :math:`\Delta_i = \tfrac12 \min_{j\ne i}\lVert x_i - x_j\rVert^2`.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D), N >= 2

    Returns
    -------
    torch.Tensor, shape (N,)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.], [0., -2.]], dtype=torch.float64)
    >>> separation(X)
    tensor([1., 1., 4.], dtype=torch.float64)

    See Also
    --------
    separation_threshold, retrieval_error_bound

    References
    ----------
    Ramsauer et al. (2021), Eq. (7).  Chapter: :ref:`ch-hopfield`.
    """
    X = _check_patterns(X)
    if X.shape[0] < 2:
        raise ValueError(f"X must hold at least 2 patterns to define a separation, got N = {X.shape[0]}")
    # G_ij = x_i^T x_j                                             (N, N)
    G = X @ X.T
    off = G.masked_fill(torch.eye(X.shape[0], dtype=torch.bool, device=X.device), -torch.inf)
    return G.diagonal() - off.max(dim=1).values


def separation_threshold(N: int, M: float, beta: float) -> float:
    r"""The separation above which a pattern is "well separated" in Ramsauer et al.

    Explanation
    -----------
    .. math:: \Delta_i \ge \frac{2}{\beta N} + \frac1\beta \ln\bigl(2(N-1)N\beta M^2\bigr).

    Under this condition the update maps the ball
    :math:`S_i = \{\xi : \lVert\xi - x_i\rVert \le 1/(\beta N M)\}` into itself and is a
    contraction there, so it has a unique fixed point :math:`x_i^*` in :math:`S_i`
    (their Lemmas A5-A7).

    Parameters
    ----------
    N : int
        Number of patterns, >= 2.
    M : float
        Largest pattern norm, > 0.
    beta : float

    Returns
    -------
    float

    Examples
    --------
    >>> round(separation_threshold(N=10, M=1.0, beta=20.0), 4)
    0.4194

    See Also
    --------
    separation

    References
    ----------
    Ramsauer et al. (2021), appendix, Lemma A5.  Chapter: :ref:`ch-hopfield`.
    """
    N = check_int("N", N, 2)
    M = check_number("M", M, positive=True)
    beta = check_number("beta", beta, positive=True)
    # the logarithm of the product, as a sum: no overflow for a large N, beta or M
    log_term = math.log(2) + math.log(N - 1) + math.log(N) + math.log(beta) + 2 * math.log(M)
    return 2 / (beta * N) + log_term / beta


def retrieval_error(X: torch.Tensor, q: torch.Tensor, beta: float, index: int) -> torch.Tensor:
    r"""The distance :math:`\lVert f(q) - x_i\rVert` after one update, computed without cancellation.

    Explanation
    -----------
    Since the weights :math:`p` sum to one,
    :math:`f(q) - x_i = \sum_{k\ne i} p_k (x_k - x_i)`: each term is small when
    :math:`p_i \approx 1`, so the difference keeps its relative accuracy even when it is far
    below the rounding error of :math:`x_i` itself (forming ``update(X, q) - X[i]`` would
    lose it).

    Parameters
    ----------
    X : torch.Tensor, shape (N, D)
    q : torch.Tensor, shape (..., D)
    beta : float
    index : int
        The pattern :math:`i`.

    Returns
    -------
    torch.Tensor, shape (...)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> f"{float(retrieval_error(X, X[0], 50.0, 0)):.4e}"     # sqrt(2) / (1 + e^50)
    '2.7277e-22'

    See Also
    --------
    retrieval_error_bound, update

    References
    ----------
    Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    i = check_int("index", index, 0, X.shape[0] - 1)
    # p = softmax(beta X q)                                        (..., N)
    p = torch.softmax(beta * (q @ X.T), dim=-1)
    # f(q) - x_i = sum_k p_k (x_k - x_i)                           (..., D)
    return torch.linalg.vector_norm(p @ (X - X[i]), dim=-1)


def retrieval_error_bound(X: torch.Tensor, q: torch.Tensor, beta: float, index: int,
                          fixed_point: torch.Tensor | None = None) -> torch.Tensor:
    r"""Upper bound on :math:`\lVert f(q) - x_i\rVert` (Ramsauer et al., Theorem 5).

    Explanation
    -----------
    .. math:: \lVert f(q) - x_i\rVert \le 2(N-1)\,M\,
              \exp\bigl(-\beta(\Delta_i - 2 r M)\bigr),

    with :math:`r = \max\{\lVert q - x_i\rVert, \lVert x_i^* - x_i\rVert\}` in the theorem
    (``fixed_point`` given) and :math:`r = \lVert q - x_i\rVert` otherwise.  The second form
    holds for every query: since :math:`\sum_k p_k = 1`,
    :math:`\lVert f(q) - x_i\rVert \le (1 - p_i)\max_k\lVert x_k - x_i\rVert \le 2M(1-p_i)`,
    and :math:`1 - p_i \le (N-1)e^{-\beta c}` with
    :math:`c = \min_{j\ne i}(x_i - x_j)^\top q \ge \Delta_i - 2M\lVert q - x_i\rVert`
    (Cauchy-Schwarz).  The max over the fixed point only enlarges the bound.  It is
    informative when :math:`\beta(\Delta_i - 2rM) > \ln(N-1)`.

    Parameters
    ----------
    X : torch.Tensor, shape (N, D), N >= 2
    q : torch.Tensor, shape (..., D)
    beta : float
    index : int
        The pattern :math:`i`.
    fixed_point : torch.Tensor, shape (D,), optional
        The fixed point :math:`x_i^*` near :math:`x_i`.

    Returns
    -------
    torch.Tensor, shape (...)

    Examples
    --------
    >>> X = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    >>> f"{float(retrieval_error_bound(X, X[0], 50.0, 0)):.4e}"   # 2 e^-50
    '3.8575e-22'

    See Also
    --------
    retrieval_error : the quantity it bounds.
    separation, separation_threshold

    References
    ----------
    Ramsauer et al. (2021), Theorem 5 and appendix Lemma A4.  Chapter: :ref:`ch-hopfield`.
    """
    X, q = _check_pair(X, q)
    beta = check_number("beta", beta, positive=True)
    i = check_int("index", index, 0, X.shape[0] - 1)
    N = X.shape[0]
    M = _max_norm(X)
    delta = separation(X)[i]
    r = torch.linalg.vector_norm(q - X[i], dim=-1)
    if fixed_point is not None:
        X, fixed_point = _check_pair(X, fixed_point, "fixed_point")
        if fixed_point.ndim != 1:
            raise ValueError(f"fixed_point must have shape (D,), got {tuple(fixed_point.shape)}")
        r = torch.clamp(r, min=torch.linalg.vector_norm(fixed_point - X[i]))
    return 2 * (N - 1) * M * torch.exp(-beta * (delta - 2 * r * M))
