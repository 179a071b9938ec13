"""Exercises of the chapter "Training CNNs" (:ref:`ch-training-cnns`): no training, only the
arithmetic of the three-block CNN of reports 001 and 003 and of its training loop.

Oracles: forward passes of PyTorch layers on zero images, parameter counts of PyTorch
modules, and the length of a ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-training-cnns"


def _flatten_size(H: int, W: int) -> int:
    blocks = [m for _ in range(3) for m in (nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2))]
    with torch.no_grad():
        side = nn.Sequential(*blocks)(torch.zeros(1, 1, H, W)).shape[-2:]
    return 128 * int(side[0]) * int(side[1])


def _batchnorm_params() -> int:
    layers = [nn.BatchNorm2d(c) for c in (32, 64, 128)] + [nn.BatchNorm1d(c) for c in (1024, 512)]
    return sum(p.numel() for m in layers for p in m.parameters() if p.requires_grad)


def _linear(i: int, o: int) -> int:
    return sum(p.numel() for p in nn.Linear(i, o, device="meta").parameters())


def _gap_saving(H: int) -> int:
    side = _flatten_size(H, H) // 128
    return _linear(128 * side, 1024) - _linear(128, 1024)


register(Exercise(
    id="flatten-size", chapter=CHAPTER, title="Features after flattening",
    statement="Three blocks of a 3x3 convolution with padding 1 (32, 64, 128 filters), ReLU "
              "and 2x2 max pooling read a 3 x H x W image. How many features does flattening "
              "the last map give?",
    kind="formula", solution="128*floor(H/8)*floor(W/8)", oracle=_flatten_size,
    grid={"H": range(8, 25), "W": range(8, 25)},
    slips=(
        Slip("128*H*W/64", "Without the floors: each pooling drops the last row or column of "
                           "an odd-sized map, so the map is floor(H/8) x floor(W/8)"),
        Slip("128*H*W", "Each of the three poolings halves both sides"),
    )))

register(Exercise(
    id="bn-params", chapter=CHAPTER, title="What batch norm adds",
    statement="Batch norm is added after each convolution of the three-block CNN (32, 64, 128 "
              "channels) and after its two hidden dense layers (1024 and 512 units). How many "
              "trainable parameters does that add?",
    kind="number",
    solution="(params.count_params(zoo.three_block_cnn(batch_norm=True, global_pool=True))\n"
             " - params.count_params(zoo.three_block_cnn(batch_norm=False, global_pool=True)))",
    oracle=_batchnorm_params,
    slips=(
        Slip(448, "These are the batch norms after the convolutions only (the 448 of report "
                  "003, Q2.3, which lists only those); the two in the dense head add "
                  "2(1024 + 512)"),
        Slip(7040, "The running means and variances are buffers, updated without gradients: "
                   "they are not trainable parameters"),
    )))

register(Exercise(
    id="steps-per-epoch", chapter=CHAPTER, title="Steps in an epoch",
    statement="A DataLoader with batch size B (drop_last=False) goes over N examples. How many "
              "optimiser steps make one epoch?",
    kind="formula", solution="ceiling(N/B)",
    oracle=lambda N, B: len(DataLoader(range(N), batch_size=B)),
    grid={"N": range(1, 41), "B": range(1, 13)},
    slips=(
        Slip("N/B", "Without the ceiling: the last, smaller batch is a step too"),
        Slip("floor(N/B)", "This is drop_last=True, which skips the last, smaller batch"),
    )))

register(Exercise(
    id="gap-params-saved", chapter=CHAPTER, title="What global pooling saves",
    statement="In the three-block CNN on H x H images, the first dense layer (1024 units) reads "
              "the flattened last map (128 channels). How many parameters does it lose when "
              "global average pooling replaces the flattening?",
    kind="formula", solution="1024*128*(floor(H/8)**2 - 1)", oracle=_gap_saving,
    grid={"H": range(8, 49)},
    slips=(
        Slip("1024*128*floor(H/8)**2",
             "This is the whole first layer's weights; after global pooling it still reads "
             "128 features"),
        Slip("1024*128*(H**2/64 - 1)", "Without the floor: the poolings drop odd rows"),
    )))
