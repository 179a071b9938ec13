"""Exercises of the chapter "Regularisation and optimisation" (:ref:`ch-regularisation`).

Oracles: PyTorch's ``nn.Dropout``, ``optim.Adam`` and ``optim.SGD`` run for a step or
three, and the expectation of a dropout mask computed over its two values.
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import nn

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-regularisation"

_P = [Fraction(i, 10) for i in range(10)]


def _train_scale(p: Fraction) -> float:
    torch.manual_seed(0)
    out = nn.Dropout(float(p)).train()(torch.ones(1000, dtype=torch.float64))
    return float(out.max())                     # every kept unit has the same value


def _test_scale(p: Fraction) -> Fraction:
    """E[m] for a mask m that keeps a unit (1) with probability 1 - p, drops it (0) with p."""
    return sum((value * prob for value, prob in ((1, 1 - p), (0, p))), Fraction(0))


def _adam_first_step() -> float:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.01)
    (0.5 * w).sum().backward()                   # gradient 0.5
    opt.step()
    return float(-w.detach()[0])


def _sgd_momentum() -> float:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        w.sum().backward()                       # gradient 1
        opt.step()
    return float(w.detach()[0])


register(Exercise(
    id="dropout-train-scale", chapter=CHAPTER, title="Inverted dropout in training",
    statement="PyTorch's nn.Dropout(p) drops each unit with probability p during training. By "
              "what factor does it multiply the units it keeps?",
    kind="formula", solution="1/(1 - p)", oracle=_train_scale, grid={"p": _P},
    rtol=1e-12,
    slips=(
        Slip("1 - p", "This is the test-time factor of the original dropout; the inverted "
                      "version divides by the keep probability 1 - p during training instead"),
        Slip("1/p", "p is the probability of dropping a unit; the keep probability is 1 - p"),
    )))

register(Exercise(
    id="dropout-test-scale", chapter=CHAPTER, title="Dropout at test time",
    statement="In the original dropout, units are dropped with probability p in training and "
              "kept as they are. By what factor must the weights be scaled at test time so "
              "that each unit's output equals its expected training output?",
    kind="formula", solution="1 - p", oracle=_test_scale, grid={"p": _P},
    slips=(
        Slip("p",
             "This is report 004's factor (III-Q33): p is the probability that a unit is "
             "dropped, so the expected fraction kept is 1 - p",
             source="report 004 (III-Q33)"),
        Slip("1/(1 - p)", "This is the training-time factor of inverted dropout"),
    )))

register(Exercise(
    id="adam-first-step", chapter=CHAPTER, title="Adam's first step",
    statement="Adam with learning rate 0.01 and the default betas (0.9, 0.999) and eps 1e-8 "
              "starts on a weight whose gradient is 0.5. How far does its first step move the "
              "weight?",
    kind="number", solution="0.01 * 0.5 / (math.sqrt(0.5**2) + 1e-8)",
    oracle=_adam_first_step, rtol=1e-6,
    slips=(
        Slip(0.01 * 0.05 / (0.00025 ** 0.5 + 1e-8),
             "This is the step without the bias correction: m and v start at 0, and dividing "
             "by 1 - 0.9 and 1 - 0.999 at step 1 undoes that start"),
        Slip(0.005, "This is a plain gradient step; Adam divides by the gradient's size"),
    )))

register(Exercise(
    id="momentum-displacement", chapter=CHAPTER, title="Three steps with momentum",
    statement="SGD with learning rate 0.1 and momentum 0.9 (v <- 0.9 v + g, w <- w - 0.1 v) "
              "starts at w = 0 with v = 0 on a loss whose gradient is always 1. Where is w "
              "after three steps?",
    kind="number", solution="-0.1 * (1 + 1.9 + 2.71)", oracle=_sgd_momentum, rtol=1e-9,
    slips=(
        Slip(-0.3, "This is three steps without momentum"),
        Slip(-0.271, "This is the third step alone, 0.1 v after three updates of v"),
    )))
