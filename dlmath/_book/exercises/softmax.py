"""Exercises of the chapter "Softmax and its Jacobian" (:ref:`ch-softmax`).

Oracle: PyTorch's autograd, differentiating ``torch.softmax`` and
``torch.nn.functional.cross_entropy``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-softmax"

_Z = "torch.tensor([0.0, math.log(2), math.log(3)], dtype=torch.float64)"


def _jacobian() -> torch.Tensor:
    z = torch.tensor([0.0, math.log(2), math.log(3)], dtype=torch.float64)
    return torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), z)


def _jacobian_rank(n: int) -> int:
    z = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    J = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), z)
    return int(torch.linalg.matrix_rank(J))


def _ce_grad() -> torch.Tensor:
    z = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    F.cross_entropy(z[None], torch.tensor([0])).backward()
    return z.grad


register(Exercise(
    id="softmax-jacobian", chapter=CHAPTER, title="The Jacobian at a point",
    statement="Write the 3x3 Jacobian of the softmax, J[i, j] = dp_i/dz_j, at "
              "z = (0, ln 2, ln 3), where p = (1/6, 1/3, 1/2).",
    kind="tensor", solution=f"softmax.softmax_jacobian({_Z})", oracle=_jacobian,
    slips=(
        Slip(f"p = torch.softmax({_Z}, 0)\ntorch.diag(p) + torch.outer(p, p)",
             "The outer product enters with a minus sign: J = diag(p) - p p^T"),
        Slip(f"p = torch.softmax({_Z}, 0)\ntorch.diag(p * (1 - p))",
             "These are only the diagonal entries; off the diagonal dp_i/dz_j = -p_i p_j"),
    )))

register(Exercise(
    id="softmax-jacobian-rank", chapter=CHAPTER, title="The rank of the Jacobian",
    statement="What is the rank of the softmax Jacobian of n inputs, at any point z?",
    kind="formula", solution="n - 1", oracle=_jacobian_rank, grid={"n": range(1, 11)},
    slips=(
        Slip("n", "J times the all-ones vector is 0 (adding a constant to z does not change "
                  "p), so the rank is at most n - 1"),
    )))

register(Exercise(
    id="ce-grad", chapter=CHAPTER, title="The gradient of the cross-entropy",
    statement="Give the gradient of the cross-entropy -log softmax(z)_y with respect to the "
              "logits z = (1, 2, 3), for the class y = 0 (the first).",
    kind="tensor",
    solution="softmax.cross_entropy_grad(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), "
             "torch.tensor(0))",
    oracle=_ce_grad,
    slips=(
        Slip("torch.tensor([1.0, 2.0, 3.0]) - torch.tensor([1.0, 0.0, 0.0])",
             "This is report 004's gradient (I-Q15), z - y: the logits stand where their "
             "softmax belongs, p - y",
             source="report 004 (I-Q15)"),
        Slip("torch.tensor([1.0, 0.0, 0.0]) - torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0)",
             "This is y - p, the negative gradient (the descent direction)"),
    )))
