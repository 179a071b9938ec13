r"""Softmax, log-softmax, log-sum-exp, the softmax Jacobian and cross-entropy.

Scope: the numerically stable forms of ``softmax``, ``log_softmax`` and ``logsumexp``;
the Jacobian :math:`J = \operatorname{diag}(p) - p p^\top` (numeric and batched, and
symbolic, derived by differentiating); cross-entropy on logits and its gradient
:math:`p - y`; a positive-semidefiniteness test for symmetric matrices (numeric and exact).
Every function works along the last axis unless it has a ``dim`` argument.
Chapter: :ref:`ch-softmax`.

References: Bridle, "Probabilistic interpretation of feedforward classification network
outputs" (1990) for the softmax as a classifier output; Goodfellow, Bengio & Courville,
*Deep Learning* (2016), sections 4.1 (overflow and underflow) and 6.2.2.3 (softmax units).
"""

from __future__ import annotations

from typing import Any

import sympy as sp
import torch

from dlmath._validate import check_bool, check_choice, check_int, check_number, check_tensor

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_sym",
    "softmax_jacobian",
    "softmax_jacobian_sym",
    "cross_entropy",
    "cross_entropy_grad",
    "is_psd",
]


def _float_tensor(name: str, x: Any, min_dim: int = 1) -> torch.Tensor:
    """``x`` as a floating tensor with at least ``min_dim`` axes (lists become float64)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    else:
        try:
            x = torch.as_tensor(x, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor or a nested list of numbers, "
                            f"got {type(x).__name__}") from err
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} axis(es), got shape {tuple(x.shape)}")
    if x.dim() >= 1 and x.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one entry along its last axis, got shape "
                         f"{tuple(x.shape)}")
    return x


def logsumexp(z: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    r"""Log-sum-exp :math:`\log \sum_k e^{z_k}`, computed without overflow.

    Explanation
    -----------
    For any constant :math:`m`, :math:`\log\sum_k e^{z_k} = m + \log\sum_k e^{z_k - m}`.
    With :math:`m = \max_k z_k` every exponent is :math:`\le 0`, so no term overflows,
    and the largest term is :math:`e^0 = 1`, so the sum is at least 1 and its
    logarithm never underflows to :math:`-\infty`.  Computed directly, :math:`e^{z}`
    overflows in float64 for :math:`z > 709.78` (float32: :math:`z > 88.72`).
    Infinite maxima are handled as ``torch.logsumexp`` does: shifting by 0 instead.

    Parameters
    ----------
    z : torch.Tensor or nested list
        Floating-point input (lists are read as float64).
    dim : int
        The axis summed over.
    keepdim : bool
        Keep the summed axis with length 1.

    Returns
    -------
    torch.Tensor
        ``z`` with axis ``dim`` reduced.

    Raises
    ------
    TypeError
        If ``z`` is not floating point.
    ValueError
        If ``dim`` is out of range or the axis is empty.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([1000.0, 1000.0], dtype=torch.float64)
    >>> torch.log(torch.exp(z).sum())           # computed directly: overflow
    tensor(inf, dtype=torch.float64)
    >>> round(float(logsumexp(z)), 6)            # 1000 + log 2
    1000.693147

    See Also
    --------
    log_softmax : :math:`z - \operatorname{logsumexp}(z)`.
    softmax_jacobian : the Hessian of ``logsumexp``.

    References
    ----------
    Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 4.1.
    Chapter: :ref:`ch-softmax`.
    """
    z = _float_tensor("z", z)
    dim = check_int("dim", dim, -z.dim(), z.dim() - 1)
    check_bool("keepdim", keepdim)
    m = z.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # +-inf: shift by 0
    # log Σ_k e^{z_k} = m + log Σ_k e^{z_k - m}
    out = m + torch.log(torch.exp(z - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def log_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Log-probabilities :math:`\log p_i = z_i - \operatorname{logsumexp}(z)`.

    Explanation
    -----------
    Taking the logarithm of :func:`softmax` loses everything below the smallest positive
    float: a probability that underflows to 0 gives :math:`-\infty`.  Subtracting the
    stable :func:`logsumexp` from the logits keeps the exact log-probability.

    Parameters
    ----------
    z : torch.Tensor or nested list
        Logits.
    dim : int
        The axis the probabilities are normalised over.

    Returns
    -------
    torch.Tensor
        Same shape as ``z``.

    Raises
    ------
    TypeError, ValueError
        As :func:`logsumexp`.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([0.0, -800.0], dtype=torch.float64)
    >>> torch.log(softmax(z))                    # the second probability underflowed
    tensor([0., -inf], dtype=torch.float64)
    >>> log_softmax(z)
    tensor([   0., -800.], dtype=torch.float64)

    See Also
    --------
    softmax, logsumexp, cross_entropy

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    z = _float_tensor("z", z)
    dim = check_int("dim", dim, -z.dim(), z.dim() - 1)
    return z - logsumexp(z, dim=dim, keepdim=True)


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Softmax :math:`p_i = e^{z_i} / \sum_k e^{z_k}`, computed without overflow.

    Explanation
    -----------
    Softmax does not change when a constant is added to every logit, so the maximum is
    subtracted first: the exponents are then :math:`\le 0` (no overflow) and the
    denominator is at least 1 (no division by zero).

    Parameters
    ----------
    z : torch.Tensor or nested list
        Logits.
    dim : int
        The axis the probabilities are normalised over.

    Returns
    -------
    torch.Tensor
        Same shape as ``z``; non-negative, summing to 1 along ``dim``.

    Raises
    ------
    TypeError, ValueError
        As :func:`logsumexp`.

    Examples
    --------
    >>> import torch
    >>> softmax(torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64))
    tensor([0.3333, 0.3333, 0.3333], dtype=torch.float64)
    >>> softmax(torch.tensor([1000.0, 1000.0], dtype=torch.float64))   # no overflow
    tensor([0.5000, 0.5000], dtype=torch.float64)

    See Also
    --------
    softmax_sym : the symbolic version.
    log_softmax, softmax_jacobian

    References
    ----------
    Bridle (1990).  Chapter: :ref:`ch-softmax`.
    """
    z = _float_tensor("z", z)
    dim = check_int("dim", dim, -z.dim(), z.dim() - 1)
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))  # exponents <= 0
    return e / e.sum(dim=dim, keepdim=True)


def softmax_sym(n: int, name: str = "z") -> tuple[list[sp.Expr], tuple[sp.Symbol, ...]]:
    r"""The softmax of ``n`` real symbols, as a list of SymPy expressions.

    Parameters
    ----------
    n : int
        Number of classes, :math:`n \ge 1`.
    name : str
        Prefix of the symbols, which are ``name1 ... name<n>``.

    Returns
    -------
    (p, z)
        ``p[i] = exp(z[i]) / sum(exp(z))`` and the symbols ``z``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int.

    Examples
    --------
    >>> p, z = softmax_sym(2)
    >>> p[0]
    exp(z1)/(exp(z1) + exp(z2))

    See Also
    --------
    softmax : the numeric version.
    softmax_jacobian_sym

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    n = check_int("n", n, 1, limit=200)     # a symbolic softmax is for reading
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__} {name!r}")
    if not name.isidentifier():
        raise ValueError(f"name must be an identifier such as 'z' or 'logit', got {name!r}")
    z = sp.symbols(f"{name}1:{n + 1}", real=True)
    total = sum(sp.exp(zk) for zk in z)
    return [sp.exp(zi) / total for zi in z], tuple(z)


def softmax_jacobian(z: torch.Tensor) -> torch.Tensor:
    r"""Jacobian of the softmax, :math:`J_{ij} = \partial p_i / \partial z_j = p_i(\delta_{ij} - p_j)`.

    Explanation
    -----------
    In matrix form :math:`J = \operatorname{diag}(p) - p p^\top`: symmetric, positive
    semidefinite, of rank :math:`n-1` with null space spanned by :math:`\mathbf 1`
    (softmax ignores a constant added to every logit).  It is also the Hessian of
    :func:`logsumexp` and of the cross-entropy with respect to the logits.

    Parameters
    ----------
    z : torch.Tensor or nested list
        Logits of shape ``(..., n)``; leading axes are a batch.

    Returns
    -------
    torch.Tensor
        Shape ``(..., n, n)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`logsumexp`.

    Examples
    --------
    >>> import torch
    >>> J = softmax_jacobian(torch.zeros(3, dtype=torch.float64))
    >>> (9 * J).round()                                  # (3 I - 1 1^T) / 9
    tensor([[ 2., -1., -1.],
            [-1.,  2., -1.],
            [-1., -1.,  2.]], dtype=torch.float64)
    >>> softmax_jacobian(torch.zeros(5, 4, dtype=torch.float64)).shape
    torch.Size([5, 4, 4])

    See Also
    --------
    softmax_jacobian_sym : derived symbolically.
    is_psd

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    p = softmax(z)  # (..., n)
    # J_ij = p_i δ_ij - p_i p_j
    return torch.diag_embed(p) - torch.einsum("...i,...j->...ij", p, p)


def softmax_jacobian_sym(n: int, in_terms_of: str = "p") -> tuple[sp.Matrix, tuple[sp.Symbol, ...]]:
    r"""The softmax Jacobian, derived by differentiating the softmax with SymPy.

    Explanation
    -----------
    Entry :math:`(i, j)` is ``sympy.diff(p_i, z_j)`` of the expressions of
    :func:`softmax_sym`: nothing is typed in.  With ``in_terms_of="p"``, every
    :math:`e^{z_k}` is then replaced by :math:`p_k` and the normaliser
    :math:`\sum_k p_k` by 1 (softmax is invariant to scaling all :math:`e^{z_k}`), which
    exposes the form :math:`p_i(\delta_{ij} - p_j)`.

    Parameters
    ----------
    n : int
        Number of classes, :math:`n \ge 1`.
    in_terms_of : {"p", "z"}
        Express the entries in the probabilities ``p1..pn`` or in the logits ``z1..zn``.

    Returns
    -------
    (J, symbols)
        An ``n x n`` SymPy matrix and the symbols it is written in.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int or ``in_terms_of`` is not "p" or "z".

    Examples
    --------
    >>> J, p = softmax_jacobian_sym(2)
    >>> J
    Matrix([
    [-p1*(p1 - 1),       -p1*p2],
    [      -p1*p2, -p2*(p2 - 1)]])
    >>> J, z = softmax_jacobian_sym(2, in_terms_of="z")
    >>> J[0, 1]
    -exp(z1)*exp(z2)/(exp(z1) + exp(z2))**2

    See Also
    --------
    softmax_jacobian : the numeric, batched version.
    softmax_sym

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    check_choice("in_terms_of", in_terms_of, ("p", "z"))
    n = check_int("n", n, 1, limit=20)      # n^2 symbolic derivatives: 20 take seconds
    probs, z = softmax_sym(n)
    J = sp.Matrix(n, n, lambda i, j: sp.diff(probs[i], z[j]))
    if in_terms_of == "z":
        return J, z
    p = sp.symbols(f"p1:{n + 1}", positive=True)
    J = J.subs({sp.exp(zk): pk for zk, pk in zip(z, p)})  # e^{z_k} -> p_k (scale invariance)
    J = J.subs(sum(p), 1).applyfunc(sp.factor)             # Σ_k p_k = 1
    return J, tuple(p)


def _targets(z: torch.Tensor, y: Any) -> torch.Tensor:
    """Targets as a float tensor shaped like ``z``: one-hot rows from class indices."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a tensor of class indices or of target probabilities, "
                        f"got {type(y).__name__}")
    n = z.shape[-1]
    if y.is_floating_point():
        if y.shape != z.shape:
            raise ValueError(f"y of target probabilities must have the shape of z "
                             f"{tuple(z.shape)}, got {tuple(y.shape)}")
        return y.to(z.dtype)
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"y must hold integer class indices or float probabilities, got {y.dtype}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"y of class indices must have shape {tuple(z.shape[:-1])} "
                         f"(z without its last axis), got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n):
        raise ValueError(f"class indices in y must lie in [0, {n - 1}], got "
                         f"{int(y.min())}..{int(y.max())}")
    return torch.nn.functional.one_hot(y.long(), n).to(z.dtype)


def cross_entropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy of logits ``z`` against targets ``y``, one value per example.

    Explanation
    -----------
    :math:`\ell(z, y) = -\sum_k y_k \log p_k(z) = (\textstyle\sum_k y_k)\,
    \operatorname{logsumexp}(z) - y^\top z`; for a one-hot target of class :math:`c`
    this is :math:`\operatorname{logsumexp}(z) - z_c`.  Computed in this form no
    probability is formed, so nothing overflows or underflows.

    Parameters
    ----------
    z : torch.Tensor
        Logits, shape ``(..., n)``.
    y : torch.Tensor
        Integer class indices of shape ``(...)`` in ``[0, n)``, or float target
        probabilities of shape ``(..., n)``.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: not averaged.

    Raises
    ------
    TypeError
        If ``z`` is not floating point or ``y`` is not a tensor of ints or floats.
    ValueError
        If the shapes do not match or a class index is out of range.

    Examples
    --------
    >>> import torch, math
    >>> z = torch.zeros(2, 4, dtype=torch.float64)
    >>> torch.allclose(cross_entropy(z, torch.tensor([0, 3])), torch.tensor(math.log(4)).double())
    True
    >>> cross_entropy(torch.tensor([1000.0, 0.0], dtype=torch.float64), torch.tensor(1))
    tensor(1000., dtype=torch.float64)

    See Also
    --------
    cross_entropy_grad : its gradient with respect to ``z``.
    logsumexp

    References
    ----------
    Goodfellow, Bengio & Courville (2016), section 6.2.2.3.  Chapter: :ref:`ch-softmax`.
    """
    z = _float_tensor("z", z)
    t = _targets(z, y)  # (..., n)
    # ℓ = (Σ_k y_k) lse(z) - Σ_k y_k z_k
    return t.sum(-1) * logsumexp(z) - (t * z).sum(-1)


def cross_entropy_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Gradient of :func:`cross_entropy` with respect to the logits: :math:`p - y`.

    Explanation
    -----------
    :math:`\partial \ell / \partial z_j = (\sum_k y_k)\, p_j - y_j`, which is
    :math:`p_j - y_j` for a target distribution (one-hot or soft).  Each row of
    the gradient of a one-hot target sums to 0.

    Parameters
    ----------
    z, y : torch.Tensor
        As :func:`cross_entropy`.

    Returns
    -------
    torch.Tensor
        Shape of ``z``: the gradient of each example's loss.

    Raises
    ------
    TypeError, ValueError
        As :func:`cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> cross_entropy_grad(torch.zeros(4, dtype=torch.float64), torch.tensor(2))
    tensor([ 0.2500,  0.2500, -0.7500,  0.2500], dtype=torch.float64)

    See Also
    --------
    cross_entropy, softmax

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    z = _float_tensor("z", z)
    t = _targets(z, y)
    # ∂ℓ/∂z_j = (Σ_k y_k) p_j - y_j
    return t.sum(-1, keepdim=True) * softmax(z) - t


def is_psd(matrix: Any, tol: float = 1e-10) -> bool | torch.Tensor:
    r"""Whether a symmetric matrix is positive semidefinite.

    Explanation
    -----------
    Numeric input (a tensor or array, possibly batched ``(..., n, n)``): the smallest
    eigenvalue from ``torch.linalg.eigvalsh`` (in float64) must be at least
    :math:`-\mathrm{tol}\cdot\max(1, \|M\|_{\max})`: rounding makes an exactly singular
    PSD matrix show eigenvalues like :math:`-10^{-17}`.  A SymPy matrix is decided
    exactly (``Matrix.is_positive_semidefinite``); its entries must be numbers or
    symbols whose assumptions settle the question.

    Parameters
    ----------
    matrix : torch.Tensor, numpy.ndarray or sympy.Matrix
        Square, symmetric (within ``tol`` for numeric input).
    tol : float
        Relative tolerance (to :math:`\max(1, \max_{ij} |M_{ij}|)`), in ``[0, 1)``.

    Returns
    -------
    bool or torch.Tensor
        A bool for one matrix; a bool tensor of the batch shape for a batch.

    Raises
    ------
    ValueError
        If the matrix is not square or not symmetric, ``tol`` is negative, or SymPy
        cannot decide.
    TypeError
        If ``matrix`` is of another type.

    Examples
    --------
    >>> import torch, sympy as sp
    >>> is_psd(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))       # eigenvalues 0 and 2
    True
    >>> is_psd(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))         # eigenvalues -1 and 3
    False
    >>> is_psd(sp.Matrix([[sp.Rational(2, 9), sp.Rational(-1, 9)],
    ...                   [sp.Rational(-1, 9), sp.Rational(2, 9)]]))
    True
    >>> is_psd(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    Traceback (most recent call last):
    ...
    ValueError: matrix must be symmetric; largest |M - M^T| entry is 1

    See Also
    --------
    softmax_jacobian : a PSD matrix of rank n - 1.

    References
    ----------
    Chapter: :ref:`ch-softmax`.
    """
    # relative to max(1, max |M_ij|): a tolerance of 1 or more would accept any matrix
    check_number("tol", tol, interval="[0, 1)")
    if isinstance(matrix, sp.MatrixBase):
        if not matrix.is_square:
            raise ValueError(f"matrix must be square, got shape {matrix.shape}")
        if not (matrix - matrix.T).applyfunc(sp.simplify).is_zero_matrix:
            raise ValueError("matrix must be symmetric")
        answer = matrix.is_positive_semidefinite
        if answer is None:
            raise ValueError("sympy cannot decide whether this matrix is positive semidefinite")
        return bool(answer)
    if not isinstance(matrix, torch.Tensor):
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy is a dependency
            np = None
        if np is None or not isinstance(matrix, np.ndarray):
            raise TypeError(f"matrix must be a torch.Tensor, numpy.ndarray or sympy.Matrix, "
                            f"got {type(matrix).__name__}")
        matrix = torch.from_numpy(matrix)
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2] or matrix.shape[-1] == 0:
        raise ValueError(f"matrix must be square (..., n, n) with n >= 1, got shape "
                         f"{tuple(matrix.shape)}")
    check_tensor("matrix", matrix, real=True, finite=True)
    m = matrix.to(torch.float64)
    scale = m.abs().amax(dim=(-2, -1)).clamp(min=1.0)  # (...)
    asym = (m - m.transpose(-1, -2)).abs().amax(dim=(-2, -1))
    if bool((asym > tol * scale).any()):
        raise ValueError(f"matrix must be symmetric; largest |M - M^T| entry is {float(asym.max()):g}")
    smallest = torch.linalg.eigvalsh(m)[..., 0]  # eigenvalues in ascending order
    ok = smallest >= -tol * scale
    return bool(ok) if ok.dim() == 0 else ok
