"""Claims about training the three-block CNN: batch norm's parameters, global average pooling.

Reports 001 and 003 (question 2) replace flattening by global average pooling and add batch
norm.  Their parameter counts are checked in ``dlmath/_claims/params.py``; here are the
statements about what the two changes *are*: how many trainable parameters batch norm adds,
and whether global average pooling keeps spatial information.  Chapter:
:ref:`ch-training-cnns`.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_number
from dlmath.params import batchnorm_params, count_params

R001 = "001_ce676efc9e2b3789"
R003 = "003_ffdd02ac6e60fc0f"
CHAPTER = "ch-training-cnns"


def _check_bn_448() -> Check:
    channels = (32, 64, 128)
    layers = [nn.BatchNorm2d(c) for c in channels]
    counted = sum(count_params(m) for m in layers)                   # torch's parameters
    formula = sum(batchnorm_params(c) for c in channels)             # 2C per layer
    buffers = sum(b.numel() for m in layers for b in m.buffers())    # running stats, not trained
    assert counted == formula
    return Check(verified=f"{counted:,}", verdict=verdict_of(compare_number(448, counted)),
                 note=f"A scale and a shift per channel: 2·(32 + 64 + 128). The running mean "
                      f"and variance ({buffers:,} numbers with the batch counters) are buffers "
                      f"updated by averaging, not trained parameters.")


def _gap_permutation_invariance() -> tuple[int, float]:
    # Global average pooling of every spatial permutation of a 3x3 map gives the same output.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 3, generator=g, dtype=torch.float64)    # (B, C, H, W)
    pool = nn.AdaptiveAvgPool2d(1)
    ref = pool(x)
    flat = x.flatten(2)                                              # (B, C, 9)
    worst, count = 0.0, 0
    for perm in itertools.permutations(range(9)):
        y = flat[:, :, list(perm)].view_as(x)
        worst = max(worst, float((pool(y) - ref).abs().max()))
        count += 1
    return count, worst


def _check_gap_spatial() -> Check:
    count, worst = _gap_permutation_invariance()
    keeps_arrangement = worst > 1e-12
    return Check(verified="the output is the same for every rearrangement of the positions",
                 verdict="correct" if keeps_arrangement else "incorrect",
                 note=f"All {count:,} permutations of the 9 positions of a 3×3 map give the same "
                      f"pooled vector (largest difference {worst:.1e}): global average pooling "
                      f"keeps one mean per channel and no spatial arrangement at all. Spatial "
                      f"information survives only through what earlier layers encoded in the "
                      f"channels.")


register(Claim(id="003-Q2.3-bn-params", source=R003, question="Q2.3",
               topic="trainable parameters that batch norm adds after the three convolutions",
               claimed="2 per channel, 448 in total", check=_check_bn_448, chapter=CHAPTER,
               expected="correct"))
register(Claim(id="001-2.4-gap-spatial", source=R001, question="2.4",
               topic="whether global average pooling keeps the spatial relations of features",
               claimed="it maintains the spatial relationship of features",
               check=_check_gap_spatial, chapter=CHAPTER, expected="incorrect"))
register(Claim(id="003-Q2.4-gap-spatial", source=R003, question="Q2.4",
               topic="what adaptive average pooling to 1×1 keeps",
               claimed="global features without the loss of spatial information of fixed pooling",
               check=_check_gap_spatial, chapter=CHAPTER, expected="incorrect"))
