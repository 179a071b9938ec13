"""Exercises of the chapter "Counting parameters" (:ref:`ch-counting-parameters`).

Oracles: the ``numel()`` of the parameters of PyTorch modules built here layer by layer
(on the ``meta`` device where only the count matters), with map sizes from a forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-counting-parameters"


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv_layer(c_in: int, c_out: int, k: int) -> int:
    return _numel(nn.Conv2d(c_in, c_out, k, device="meta"))


def _single_filter_cnn(H: int, W: int, M: int, N: int) -> int | None:
    """Weights of conv (one M x N filter) -> 2x2 max pooling -> 3 linear outputs, no biases."""
    if H - M + 1 < 2 or W - N + 1 < 2:
        return None                                   # the pooled map would be empty
    features = nn.Sequential(nn.Conv2d(1, 1, (M, N), bias=False), nn.MaxPool2d(2))
    with torch.no_grad():
        units = features(torch.zeros(1, 1, H, W)).numel()
    return _numel(features) + _numel(nn.Linear(units, 3, bias=False, device="meta"))


def cifar_reference() -> nn.Sequential:
    """Report 004's CIFAR-10 network, written out layer by layer."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 1000), nn.ReLU(), nn.Linear(1000, 10))


register(Exercise(
    id="params-conv-layer", chapter=CHAPTER, title="One convolution layer",
    statement="How many parameters does nn.Conv2d(c_in, c_out, k) hold (weights and biases)?",
    kind="formula", solution="c_out*(c_in*k**2 + 1)", oracle=_conv_layer,
    grid={"c_in": range(1, 5), "c_out": range(1, 5), "k": range(1, 6)},
    slips=(
        Slip("c_out*c_in*k**2", "The c_out biases, one per filter, are missing"),
        Slip("c_in*k**2 + 1", "This is one filter; the layer has c_out of them"),
    )))

register(Exercise(
    id="params-single-filter-cnn", chapter=CHAPTER, title="One filter, pooling, three outputs",
    statement="An H x W image goes through one M x N convolution filter (stride 1, no "
              "padding), 2x2 max pooling with stride 2 and a linear layer with 3 outputs. "
              "Count the weights, without biases.",
    kind="formula", solution="M*N + 3*floor((H - M + 1)/2)*floor((W - N + 1)/2)",
    oracle=_single_filter_cnn,
    grid={"H": range(2, 10), "W": range(2, 10), "M": range(1, 5), "N": range(1, 5)},
    slips=(
        Slip("3*floor((H - M + 1)/2*(W - N + 1)/2) + M*N",
             "This is report 000's count (Q1c): one floor around the product instead of one "
             "per side of the pooled map; it is right only when both sides are even or one "
             "of them is 2",
             source="report 000 (Q1c)"),
        Slip("M*N + 3*(H - M + 1)*(W - N + 1)/4",
             "Without floors: pooling drops the last row or column of an odd-sized map"),
    )))

register(Exercise(
    id="params-cifar-total", chapter=CHAPTER, title="The CIFAR-10 network of report 004",
    statement="Count all trainable parameters (weights and biases) of the CIFAR-10 network: "
              "three blocks of a 5x5 convolution with padding 2 (32, 64, 64 filters), ReLU and "
              "2x2 max pooling, then linear layers 1024 -> 1000 -> 10, on 3 x 32 x 32 inputs.",
    kind="number", solution="params.count_params(zoo.cifar_cnn())",
    oracle=lambda: _numel(cifar_reference()),
    slips=(
        Slip(1_190_000,
             "This is report 004's total (II-Q11): the sum of its per-layer counts, which "
             "leave out the 1,170 biases (32 + 64 + 64 + 1000 + 10)",
             source="report 004 (II-Q11)"),
    )))

register(Exercise(
    id="params-module-cifar", chapter=CHAPTER, title="The CIFAR-10 network as code",
    statement="Write report 004's CIFAR-10 network as a torch.nn.Module for 3 x 32 x 32 "
              "inputs; the checker compares it with the reference layer by layer.",
    kind="module", solution="zoo.cifar_cnn()", oracle=cifar_reference,
    input_shape=(3, 32, 32)))
