"""Exercises of the chapter "Convolution arithmetic" (:ref:`ch-conv-arithmetic`).

Oracles: the sizes PyTorch's ``conv1d`` and ``max_pool1d`` produce on zero inputs, the
support of the gradient of a real stack of layers, and a search over paddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-conv-arithmetic"


def _conv_size(n: int, k: int, s: int, p: int, d: int = 1) -> int | None:
    if d * (k - 1) + 1 > n + 2 * p:
        return None                                   # torch refuses: the kernel does not fit
    x, w = torch.zeros(1, 1, n), torch.zeros(1, 1, k)
    return int(F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1])


def _pool_ceil_size(n: int, k: int, s: int, p: int) -> int | None:
    if 2 * p > k or k > n + 2 * p:
        return None                                   # torch: padding at most half the kernel
    return int(F.max_pool1d(torch.zeros(1, 1, n), k, stride=s, padding=p,
                            ceil_mode=True).shape[-1])


def _stack_receptive_field() -> int:
    """Width of the input that one output of the stack depends on, from its gradient.

    Average pooling stands in for max pooling: both read the same window, and the
    gradient of an average reaches every input of it (a maximum's only the largest).
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(1, 1, 3), nn.AvgPool1d(2, 2), nn.Conv1d(1, 1, 3),
                        nn.AvgPool1d(2, 2), nn.Conv1d(1, 1, 3)).double()
    with torch.no_grad():
        for q in net.parameters():
            q.abs_().add_(0.1)                         # positive weights: no cancellation
    x = torch.ones(1, 1, 64, dtype=torch.float64, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[-1] // 2].backward()
    support = (x.grad[0, 0] != 0).nonzero().flatten()
    return int(support.max() - support.min()) + 1


def _halving_padding(n: int, k: int) -> int | None:
    """The padding p for which a stride-2 convolution maps n to n/2 (None if none or many)."""
    found = [p for p in range(0, k + 1) if _conv_size(n, k, 2, p) == n // 2]
    return found[0] if len(found) == 1 else None


register(Exercise(
    id="conv-out-dilated", chapter=CHAPTER, title="Output size with dilation",
    statement="Give the output length of a 1-d convolution with kernel size k, stride s, "
              "padding p and dilation d on an input of length n.",
    kind="formula", solution="floor((n + 2*p - d*(k - 1) - 1)/s) + 1",
    oracle=_conv_size,
    grid={"n": range(1, 13), "k": range(1, 6), "s": range(1, 5), "p": range(0, 4),
          "d": range(1, 4)},
    slips=(
        Slip("(n - k + 2*p)/s + 1",
             "This is the size of reports 000 (Q1a) and 004 (I-Q1): without the floor it is "
             "right only when s divides n + 2p - k, and it has no dilation",
             source="reports 000 (Q1a) and 004 (I-Q1)"),
        Slip("floor((n + 2*p - k)/s) + 1",
             "This leaves out the dilation: a kernel of size k with dilation d spans "
             "d(k - 1) + 1 inputs"),
        Slip("ceiling((n + 2*p - d*(k - 1) - 1)/s) + 1",
             "A ceiling where the floor belongs: a convolution drops a last window that does "
             "not fit (pooling keeps it only with ceil_mode=True)"),
    )))

register(Exercise(
    id="pool-out-ceil", chapter=CHAPTER, title="Pooling in ceil mode",
    statement="Give the output length of max pooling with window k, stride s, padding p and "
              "ceil_mode=True on an input of length n, as PyTorch computes it.",
    kind="formula", solution="Min(ceiling((n + 2*p - k)/s) + 1, ceiling((n + p)/s))",
    oracle=_pool_ceil_size,
    grid={"n": range(1, 13), "k": range(1, 6), "s": range(1, 5), "p": range(0, 3)},
    slips=(
        Slip("ceiling((n + 2*p - k)/s) + 1",
             "This is ceil mode without PyTorch's extra rule: a last window that would start "
             "in the right padding is dropped, so no output reads padding only"),
        Slip("floor((n + 2*p - k)/s) + 1", "This is the size with ceil_mode=False"),
    )))

register(Exercise(
    id="receptive-field-stack", chapter=CHAPTER, title="Receptive field of a stack",
    statement="A stack applies a 3-wide convolution, a 2-wide pooling with stride 2, a 3-wide "
              "convolution, a 2-wide pooling with stride 2 and a 3-wide convolution (no "
              "padding, no dilation). How many inputs (along one axis) does one output of the "
              "last layer see?",
    kind="number",
    solution="conv.receptive_field([(3, 1, 0), (2, 2, 0), (3, 1, 0), (2, 2, 0), (3, 1, 0)]).size",
    oracle=_stack_receptive_field,
    slips=(
        Slip(9, "This adds up k - 1 over the layers, 1 + 2 + 1 + 2 + 1 + 2, but each layer's "
                "k - 1 must be multiplied by the product of the strides before it"),
        Slip(13, "This is the sum of the window sizes; the windows of successive layers "
                 "overlap and are spread by the strides before them"),
    )))

register(Exercise(
    id="halving-padding", chapter=CHAPTER, title="The padding that halves",
    statement="Give the padding p (a formula in k, and in n if you need it) for which a "
              "convolution with kernel size k and stride 2 maps every even input length n "
              "to n/2.",
    kind="formula", solution="floor((k - 1)/2)", oracle=_halving_padding,
    grid={"n": range(2, 25, 2), "k": range(1, 8)},
    slips=(
        Slip("(n*2/2 - n + k - 2)/2",
             "This is report 004's halving padding (II-Q9) with s = 2: solved from the size "
             "formula without its floor, it is half an integer, -1/2 for k = 1, for every "
             "odd k",
             source="report 004 (II-Q9)"),
        Slip("(k - 1)/2", "Without the floor this is not an integer for even k; "
                          "floor((k - 1)/2) = k/2 - 1 works there"),
    )))
