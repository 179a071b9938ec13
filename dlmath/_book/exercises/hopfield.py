"""Exercises of the chapter "Hopfield networks and attention" (:ref:`ch-hopfield`).

The energy :math:`E(q) = -\\operatorname{lse}(\\beta, Xq) + \\tfrac12 q^\\top q` (plus
constants), stored patterns as the rows of :math:`X`.  Oracles: PyTorch's autograd on the
energy written here from ``torch.logsumexp``, SymPy's derivative, and PyTorch's
``scaled_dot_product_attention``.
"""

from __future__ import annotations

import sympy as sp
import torch
import torch.nn.functional as F

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-hopfield"

_SETUP = """X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
q = torch.tensor([1.0, 0.0], dtype=torch.float64)
beta = 2.0
"""


def _patterns() -> tuple[torch.Tensor, torch.Tensor, float]:
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    return X, torch.tensor([1.0, 0.0], dtype=torch.float64), 2.0


def _lse(X: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.logsumexp(beta * (X @ q), 0) / beta


def _update() -> torch.Tensor:
    """q_{t+1} = -grad E_2(q_t) = grad lse(beta, X q) at q_t, by autograd."""
    X, q, beta = _patterns()
    q = q.clone().requires_grad_(True)
    _lse(X, q, beta).backward()
    return q.grad


def _hessian() -> torch.Tensor:
    X, q, beta = _patterns()
    return torch.autograd.functional.hessian(lambda t: -_lse(X, t, beta) + 0.5 * t @ t, q)


def _slip_update_without_beta() -> torch.Tensor:
    X, q, _ = _patterns()
    return X.T @ torch.softmax(X @ q, 0)


def _slip_hessian_sign() -> torch.Tensor:
    X, q, beta = _patterns()
    p = torch.softmax(beta * (X @ q), 0)
    return torch.eye(2, dtype=torch.float64) + beta * X.T @ (torch.diag(p) - torch.outer(p, p)) @ X


def _linearised(q: sp.Rational) -> float:
    """E_2(q) = -log(e^q + e^-q) (patterns 1 and -1, beta = 1), linearised at q_t = 1/2."""
    t = sp.Symbol("t")
    E2 = -sp.log(sp.exp(t) + sp.exp(-t))
    qt = sp.Rational(1, 2)
    return float(E2.subs(t, qt) + sp.diff(E2, t).subs(t, qt) * (q - qt))


def _vec_image() -> torch.Tensor:
    return torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64).T.reshape(-1, 1)


def _attention_output() -> torch.Tensor:
    v = _vec_image()[None]                                     # (1, 4, 1): one sequence
    return F.scaled_dot_product_attention(v, v, v)[0, :, 0]     # (4,)


def _slip_softmax_columns() -> torch.Tensor:
    v = _vec_image()
    return (torch.softmax(v @ v.T, dim=0) @ v)[:, 0]


register(Exercise(
    id="hopfield-update", chapter=CHAPTER, title="One update of a Hopfield network",
    statement="Patterns x1 = (1, 0), x2 = (0, 1), x3 = (1, 1) are stored as the rows of X; "
              "beta = 2. Give the state after one update q <- X^T softmax(beta X q) from "
              "q = (1, 0).",
    kind="tensor", solution=_SETUP + "hopfield.update(X, q, beta)", oracle=_update,
    slips=(
        Slip(_slip_update_without_beta,
             "The inverse temperature beta is missing inside the softmax"),
    )))

register(Exercise(
    id="hopfield-hessian", chapter=CHAPTER, title="The Hessian of the energy",
    statement="For the same patterns, beta and state q = (1, 0), give the Hessian of the "
              "energy E(q) (a 2 x 2 matrix).",
    kind="tensor", solution=_SETUP + "hopfield.energy_hessian(X, q, beta)", oracle=_hessian,
    slips=(
        Slip(_slip_hessian_sign,
             "The sign of the second term: E has -lse, whose Hessian is "
             "-beta X^T (diag(p) - p p^T) X, so the Hessian is I minus that matrix"),
    )))

register(Exercise(
    id="hopfield-linearised", chapter=CHAPTER, title="Linearising the concave part",
    statement="With the one-dimensional patterns 1 and -1 and beta = 1, E_2(q) = "
              "-log(e^q + e^-q). Write its linearisation around q_t = 1/2 as a formula in q.",
    kind="formula", solution="-log(exp(1/2) + exp(-1/2)) - tanh(1/2)*(q - 1/2)",
    oracle=_linearised, grid={"q": [sp.Rational(i, 2) for i in range(-4, 5)]},
    functions=("tanh",),
    slips=(
        Slip("-log(exp(q) + exp(-q)) - tanh(q)*(q - 1/2)",
             "This is report 001's linearisation (Q1.2): it takes lse and the softmax at q "
             "instead of at q_t, so it is not linear in q (and is E_2 itself at q = q_t only)",
             source="report 001 (Q1.2)"),
        Slip("-log(exp(1/2) + exp(-1/2)) + tanh(1/2)*(q - 1/2)",
             "The slope of E_2 is -tanh(q_t): E_2 decreases where q_t > 0"),
    )))

register(Exercise(
    id="attention-identity", chapter=CHAPTER, title="Self-attention on a vectorised image",
    statement="The 2x2 image [[1, 0], [0, 2]] is vectorised column by column into a sequence "
              "of four scalars; self-attention with W_Q = W_K = W_V = 1 (d = 1) maps it to Z = "
              "softmax(v v^T) v. Give Z (four numbers).",
    kind="tensor",
    solution="v = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64).T.reshape(-1, 1)\n"
             "attention.scaled_dot_product_attention(v, v, v)",
    oracle=_attention_output,
    slips=(
        Slip(_slip_softmax_columns,
             "The softmax is taken over the wrong axis: each query's weights must sum to 1 "
             "over the keys (along a row of v v^T)"),
    )))
