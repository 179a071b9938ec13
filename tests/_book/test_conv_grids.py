"""Tests of the grid checks in dlmath._book.claims.conv, on small grids.

Each grid function compares a rule of dlmath.conv with an oracle (the sizes torch produces,
or the input gradient that autograd computes).  The tests run each one on a small grid,
where every case must agree, and once with the rule deliberately broken, where the
comparison must notice: a check that cannot fail checks nothing.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from dlmath import conv
from dlmath._book.claims import conv as grids

# n, k, s, p, d: the largest input, kernel, stride, padding and dilation of the size grid
SMALL = {"n": 3, "k": 2, "s": 2, "p": 1, "d": 2}


def _n_configs(n, k, s, p, d):
    return n * k * s * (p + 1) * d


def test_sizes_agree_with_torch_on_a_small_grid():
    rows = {r["layer"]: r for r in grids.sizes_against_torch(**SMALL)}
    full = _n_configs(**SMALL)
    no_dilation = _n_configs(**{**SMALL, "d": 1})
    # options per layer: none; ceil_mode; ceil_mode x count_include_pad; output_padding 0..2
    assert {name: r["checked"] for name, r in rows.items()} == {
        "conv1d": full, "conv2d": full, "maxpool2d": 2 * full,
        "avgpool2d": 4 * no_dilation, "convtranspose2d": 3 * full}
    for r in rows.values():
        assert r["agree"] == r["checked"], r
        assert 0 < r["rejected"] < r["checked"], r     # the grid has both kinds of case


def test_sizes_notice_a_ceiling_for_the_floor(monkeypatch):
    real = conv.conv_output_size
    monkeypatch.setattr(conv, "conv_output_size",
                        lambda *args, **kw: real(*args, **{**kw, "ceil_mode": True}))
    rows = {r["layer"]: r for r in grids.sizes_against_torch(**SMALL)}
    assert rows["conv1d"]["agree"] < rows["conv1d"]["checked"]
    assert rows["convtranspose2d"]["agree"] == rows["convtranspose2d"]["checked"]  # untouched


def test_receptive_fields_agree_with_autograd_on_a_small_grid():
    result = grids.receptive_fields_against_autograd(k=3, s=2, p=1, d=2)
    assert result["checked"] == (3 * 2 * 2 * 2) ** 2
    assert result["agree"] == result["checked"]


def test_receptive_fields_notice_a_wrong_size(monkeypatch):
    real = conv.receptive_field

    def one_too_wide(layers, input_shape=None):
        rf = real(layers, input_shape)
        return dataclasses.replace(rf, size=rf.size + 1)

    monkeypatch.setattr(conv, "receptive_field", one_too_wide)
    result = grids.receptive_fields_against_autograd(k=2, s=2, p=1, d=1)
    assert result["agree"] == 0 < result["checked"]


def test_unread_positions_agree_with_autograd_on_a_small_grid():
    result = grids.unread_against_autograd(n=7, k=3, s=3)
    expected = sum(1 for n, k, s in itertools.product(range(1, 8), range(1, 4), range(1, 4))
                   for p in range(k) if n + 2 * p >= k)
    assert result["checked"] == expected
    assert result["agree"] == result["checked"]


def test_unread_positions_notice_a_wrong_count(monkeypatch):
    monkeypatch.setattr(conv, "trailing_unread_inputs", lambda n, k, s=1, p=0, d=1: 0)
    result = grids.unread_against_autograd(n=7, k=3, s=3)
    assert 0 < result["agree"] < result["checked"]     # right only where nothing is dropped


def test_paddings_agree_with_torch_on_a_small_grid():
    result = grids.paddings_against_torch(k=4, d=2, n=9)
    assert result["checked"] > 0
    assert result["agree"] == result["checked"]


@pytest.mark.parametrize("name", ["same_padding", "halving_padding"])
def test_paddings_notice_a_wrong_padding(monkeypatch, name):
    real = getattr(conv, name)
    monkeypatch.setattr(conv, name, lambda k, *args: real(k, *args) + 1)
    result = grids.paddings_against_torch(k=4, d=2, n=9)
    assert result["agree"] < result["checked"]
