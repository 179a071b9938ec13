"""Exercises of the chapter "Why convolutions" (:ref:`ch-why-convolutions`).

Oracles: parameter counts of PyTorch layers on the ``meta`` device, map sizes from forward
passes on zero images, and the dimension of a space of matrices found by a rank.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-why-convolutions"


def _fc_same_output(x: int, y: int, z: int, k: int) -> int | None:
    """Parameters of the linear layer with the input and output of Conv2d(z, 1, k)."""
    if k > x or k > y:
        return None
    out = nn.Conv2d(z, 1, k, device="meta")(torch.zeros(1, z, x, y, device="meta")).numel()
    return sum(p.numel() for p in nn.Linear(x * y * z, out, device="meta").parameters())


def _score_map_width(W: int) -> int | None:
    """Width of the score map of the fully convolutional digit classifier on 8 x W."""
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 10, 2))        # the Linear(16*2*2, 10) as a 2x2 convolution
    with torch.no_grad():
        return int(net(torch.zeros(1, 1, 8, W)).shape[-1])


def _commutant_dimension(n: int) -> int:
    """Dimension of {M : M S = S M} for the cyclic shift S of length n (by a rank)."""
    S = torch.roll(torch.eye(n, dtype=torch.float64), 1, dims=0)
    eye = torch.eye(n, dtype=torch.float64)
    # vec(M S - S M) = (S^T kron I - I kron S) vec(M), vec by columns
    constraint = torch.kron(S.T.contiguous(), eye) - torch.kron(eye, S)
    return n * n - int(torch.linalg.matrix_rank(constraint))


def _pool_size(n: int) -> int:
    return int(F.max_pool1d(torch.zeros(1, 1, n), 2).shape[-1])


register(Exercise(
    id="fc-same-output", chapter=CHAPTER, title="A fully connected layer in place of a filter",
    statement="A Conv2d(z, 1, k) (stride 1, no padding) maps an x x y x z input to one output "
              "channel. How many parameters (weights and biases) has a fully connected layer "
              "with the same input and output sizes?",
    kind="formula", solution="x*y*z*(x - k + 1)*(y - k + 1) + (x - k + 1)*(y - k + 1)",
    oracle=_fc_same_output,
    grid={"x": range(1, 7), "y": range(1, 7), "z": range(1, 4), "k": range(1, 5)},
    slips=(
        Slip("x*y*z*(x - k + 1)*(y - k + 1)",
             "This is report 004's count (I-Q1): the weights only; the layer also has one "
             "bias per output, as the convolution has its +1",
             source="report 004 (I-Q1)"),
        Slip("k**2*z + 1", "This is the convolution's count, the point of comparison"),
    )))

register(Exercise(
    id="fully-conv-width", chapter=CHAPTER, title="The score map of a fully convolutional net",
    statement="A digit classifier reads 8x8 images: conv 3x3 (padding 1), ReLU, 2x2 max pool, "
              "conv 3x3 (padding 1), ReLU, 2x2 max pool, then its linear layer becomes a 2x2 "
              "convolution. How wide is its map of class scores on an 8 x W strip?",
    kind="formula", solution="floor(W/4) - 1", oracle=_score_map_width,
    grid={"W": range(8, 41)},
    slips=(
        Slip("W/4 - 1", "Without the floors: each pooling drops the last column of an odd "
                        "width"),
        Slip("W - 7", "This is the number of 8-wide windows at stride 1; the poolings make "
                      "the windows 4 pixels apart"),
    )))

register(Exercise(
    id="circulant-params", chapter=CHAPTER, title="Linear maps that commute with shifts",
    statement="How many free parameters has a linear map of signals of length n that commutes "
              "with every circular shift of its input?",
    kind="formula", solution="n", oracle=_commutant_dimension, grid={"n": range(1, 9)},
    slips=(
        Slip("2*n - 1",
             "This counts the Toeplitz matrices of a convolution with zero padding, which do "
             "not commute with circular shifts; only circular convolutions do, and a "
             "circular kernel has n entries"),
        Slip("n**2", "This is a general linear map; commuting with shifts ties its entries"),
    )))

register(Exercise(
    id="pool-halves", chapter=CHAPTER, title="Does pooling halve?",
    statement="What is the output length of 2-wide max pooling with stride 2 (no padding) on "
              "an input of length n?",
    kind="formula", solution="floor(n/2)", oracle=_pool_size, grid={"n": range(2, 41)},
    slips=(
        Slip("n/2",
             "This is report 001's 'each pooling layer halves the spatial dimensions' (2.5): "
             "true for even sizes, but an odd size loses its last row or column",
             source="report 001 (2.5)"),
        Slip("ceiling(n/2)", "This is ceil mode; by default the partial last window is "
                             "dropped"),
    )))
