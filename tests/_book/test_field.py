"""Tests of dlmath._book.field: the receptive field measured by autograd.

Oracle: brute force.  Changing one input column changes the central output exactly when the
column lies in the field; the positive-weight copy makes every path count, as in the function.
"""

from __future__ import annotations

import copy

import pytest
import torch

from dlmath._book.field import measured_receptive_field
from dlmath.models.zoo import conv_stack


def _field_by_perturbation(net, channels, size=21):
    net = copy.deepcopy(net).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    x = torch.rand(1, channels, size, size, dtype=torch.float64) + 0.1
    with torch.no_grad():
        base = net(x)[0, 0, size // 2, size // 2]
        hit = []
        for col in range(size):
            y = x.clone()
            y[..., col] += 1.0
            if net(y)[0, 0, size // 2, size // 2] != base:
                hit.append(col)
    return max(hit) - min(hit) + 1


@pytest.mark.parametrize("k, depth", [(3, 1), (3, 2), (3, 3), (5, 1), (5, 2), (7, 1)])
def test_matches_perturbation(k, depth):
    torch.manual_seed(k * 10 + depth)
    net = conv_stack(2, k, depth)
    assert measured_receptive_field(net, 2, size=21) == _field_by_perturbation(net, 2) \
        == depth * (k - 1) + 1


def test_does_not_modify_net():
    net = conv_stack(2, 3, 2)
    before = [p.detach().clone() for p in net.parameters()]
    measured_receptive_field(net, 2)
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert next(net.parameters()).dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"size": 1}, {"size": True}, {"channels": 0}])
def test_bad_arguments(kwargs):
    args = {"channels": 2, **kwargs}
    with pytest.raises(ValueError):
        measured_receptive_field(conv_stack(2, 3, 1), **args)
