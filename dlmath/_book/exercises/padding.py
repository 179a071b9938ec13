"""Exercises of the chapter "Padding and absolute position" (:ref:`ch-padding-position`).

Net1 and Net2 are the networks of report 002 (part 1): four bias-free 3x3 convolutions with
strides 1, 2, 2, 2 and 32, 32, 64, 64 channels, then global max pooling (Net1) or a dense
head of 64 units (Net2).  Oracles: forward passes of PyTorch layers on zero images, and
``torch.nn.functional.conv2d`` evaluated at random integer images and filters.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-padding-position"

_G = [f"g{i}{j}" for i in range(3) for j in range(3)]
_H = [f"h{i}{j}" for i in range(4) for j in range(4)]


def _last_side(n: int, padding: int = 1) -> int:
    layers = [nn.Conv2d(1, 1, 3, stride=s, padding=padding, bias=False) for s in (1, 2, 2, 2)]
    with torch.no_grad():
        return int(nn.Sequential(*layers)(torch.zeros(1, 1, n, n)).shape[-1])


def _net2_fc_params(n: int) -> int:
    side = _last_side(n)
    return sum(p.numel() for p in nn.Linear(64 * side * side, 64, device="meta").parameters())


def _corner_cases() -> list[dict[str, int]]:
    rng = random.Random(0)
    return [{name: rng.randint(-3, 3) for name in _G + _H} for _ in range(30)]


def _corner_output(**values: int) -> float:
    g = torch.tensor([values[n] for n in _G], dtype=torch.float64).reshape(1, 1, 3, 3)
    h = torch.tensor([values[n] for n in _H], dtype=torch.float64).reshape(1, 1, 4, 4)
    return float(F.conv2d(h, g, padding=1)[0, 0, 0, 0])


register(Exercise(
    id="net1-last-side", chapter=CHAPTER, title="The last feature map with padding 1",
    statement="Net1's four 3x3 convolutions have strides 1, 2, 2, 2 and zero padding 1. What "
              "is the side of the last feature map for an n x n input?",
    kind="formula", solution="ceiling(n/8)", oracle=_last_side, grid={"n": range(3, 41)},
    slips=(
        Slip("n/8", "Without the ceiling: with padding 1 a 3x3 convolution with stride 2 "
                    "maps n to ceiling(n/2), so an odd size rounds up"),
        Slip("floor(n/8)", "A floor where the ceiling belongs: with padding 1 a stride-2 "
                           "layer keeps a window for the last odd pixel"),
    )))

register(Exercise(
    id="corner-output", chapter=CHAPTER, title="The output at the corner",
    statement="A 3x3 filter g (entries g00 to g22, centre g11) is applied as PyTorch's Conv2d "
              "does (a correlation) with zero padding 1 to a 4x4 image h (entries h00 to "
              "h33). Write the output at the top-left pixel in terms of the gij and hij.",
    kind="formula", solution="g11*h00 + g12*h01 + g21*h10 + g22*h11",
    oracle=_corner_output, grid={name: range(-3, 4) for name in _G + _H},
    cases=_corner_cases,
    slips=(
        Slip("g00*h00 + g01*h01 + g10*h10 + g11*h11",
             "This places the filter's corner, not its centre, on the pixel: that is the "
             "output without padding, one pixel further in"),
        Slip("g11*h00 + g10*h01 + g01*h10 + g00*h11",
             "This flips the filter (a convolution in the strict sense); Conv2d correlates"),
    )))

register(Exercise(
    id="net2-fc-params", chapter=CHAPTER, title="The dense layer of Net2",
    statement="Net2 flattens its last map (64 channels, padding 1 everywhere) into a dense "
              "layer of 64 units. How many parameters has that layer, for n x n inputs?",
    kind="formula", solution="64*64*ceiling(n/8)**2 + 64", oracle=_net2_fc_params,
    grid={"n": range(3, 41)},
    slips=(
        Slip("64*64*ceiling(n/8)**2", "The 64 biases are missing"),
        Slip("64*64*(n/8)**2 + 64", "Without the ceiling on the map's side"),
    )))
