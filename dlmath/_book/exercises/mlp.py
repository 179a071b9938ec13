"""Exercises of the chapter "MLPs and backpropagation" (:ref:`ch-mlp-backprop`).

The network of the chapter: :math:`\\tilde h = W_h x + b_h`, :math:`h = \\tanh \\tilde h`,
:math:`\\tilde y = W_y h + b_y`, :math:`\\hat y = \\mathrm{softmax}(\\tilde y)`, cross-entropy
loss.  Oracles: PyTorch's autograd and ``cross_entropy``; counting by enumeration.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import torch
import torch.nn.functional as F

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-mlp-backprop"

_SETUP = """W_h = torch.tensor([[0.5, -0.5], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
W_y = torch.tensor([[1.0, -1.0, 0.5], [0.0, 1.0, -1.0]], dtype=torch.float64)
weights = dict(W_h=W_h, b_h=torch.zeros(3, dtype=torch.float64),
               W_y=W_y, b_y=torch.zeros(2, dtype=torch.float64))
x = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
grads = mlp.mlp_backward(weights, x, torch.tensor([0]))
"""


def _tensors() -> dict[str, torch.Tensor]:
    f64 = dict(dtype=torch.float64)
    return dict(W_h=torch.tensor([[0.5, -0.5], [1.0, 0.0], [0.0, 1.0]], **f64),
                W_y=torch.tensor([[1.0, -1.0, 0.5], [0.0, 1.0, -1.0]], **f64),
                x=torch.tensor([1.0, -1.0], **f64), y=torch.tensor([1.0, 0.0], **f64))


def _autograd(wrt: str) -> torch.Tensor:
    t = _tensors()
    h_tilde = (t["W_h"] @ t["x"]).requires_grad_(wrt == "h_tilde")
    W_y = t["W_y"].requires_grad_(wrt == "W_y")
    loss = F.cross_entropy((W_y @ torch.tanh(h_tilde))[None], torch.tensor([0]))
    loss.backward()
    return (h_tilde if wrt == "h_tilde" else W_y).grad


def _slip_one_minus_h_squared() -> torch.Tensor:
    t = _tensors()
    h = torch.tanh(t["W_h"] @ t["x"])
    p = torch.softmax(t["W_y"] @ h, 0)
    return (t["W_y"].T @ (p - t["y"])) * (1 - h) ** 2


def _slip_logits_for_p() -> torch.Tensor:
    t = _tensors()
    h = torch.tanh(t["W_h"] @ t["x"])
    return torch.outer(t["W_y"] @ h - t["y"], h)


def _init_loss(K: int) -> float:
    return float(F.cross_entropy(torch.zeros(1, K, dtype=torch.float64), torch.tensor([0])))


def _chance_accuracy(K: int) -> Fraction:
    """Accuracy of a uniformly random guess, averaged over every (label, guess) pair."""
    pairs = list(itertools.product(range(K), repeat=2))
    return Fraction(sum(label == guess for label, guess in pairs), len(pairs))


register(Exercise(
    id="mlp-grad-hidden", chapter=CHAPTER, title="Backpropagation to the hidden layer",
    statement="For W_h = [[0.5, -0.5], [1, 0], [0, 1]], W_y = [[1, -1, 0.5], [0, 1, -1]], zero "
              "biases, x = (1, -1) and class 0, give the gradient of the loss with respect to "
              "the hidden pre-activation h~ (a vector of 3).",
    kind="tensor", solution=_SETUP + 'grads["dh_tilde"][0]',
    oracle=lambda: _autograd("h_tilde"),
    slips=(
        Slip(_slip_one_minus_h_squared,
             "This uses report 004's factor (1 - h)^2 (I-Q17); the derivative of tanh is "
             "1 - h^2",
             source="report 004 (I-Q17)"),
    )))

register(Exercise(
    id="mlp-grad-wy", chapter=CHAPTER, title="The gradient of the output weights",
    statement="For the same network and example, give the gradient of the loss with respect "
              "to W_y (a 2 x 3 matrix).",
    kind="tensor", solution=_SETUP + 'grads["dW_y"]', oracle=lambda: _autograd("W_y"),
    slips=(
        Slip(_slip_logits_for_p,
             "This is (y~ - y) h^T, with the logits y~ where their softmax belongs, as in "
             "report 004 (I-Q16); the gradient is (p - y) h^T",
             source="report 004 (I-Q16)"),
    )))

register(Exercise(
    id="loss-at-init", chapter=CHAPTER, title="The loss of an untrained network",
    statement="A network for K classes starts with all logits equal. What is its "
              "cross-entropy loss on any example?",
    kind="formula", solution="log(K)", oracle=_init_loss, grid={"K": range(1, 13)},
    slips=(
        Slip("1/K", "This is the probability of the right class; the loss is minus its "
                    "logarithm"),
        Slip("-log(K)", "The loss is -log(1/K) = log(K), which is positive"),
    )))

register(Exercise(
    id="accuracy-at-init", chapter=CHAPTER, title="The accuracy of an untrained network",
    statement="An untrained network picks each of K classes with equal probability, whatever "
              "the input. What accuracy does it have on balanced data?",
    kind="formula", solution="1/K", oracle=_chance_accuracy, grid={"K": range(2, 13)},
    slips=(
        Slip("1 - 1/K",
             "This is the error rate: report 004 (II-Q17) has an untrained ten-class network "
             "'about 90% correct', where 90% is how often it is wrong",
             source="report 004 (II-Q17)"),
    )))
