"""dlmath.models.zoo: the reference networks run in torch, and their counts as formulas.

Oracles: real forward passes (shapes), ``numel()`` of the parameters torch allocates,
gradients (receptive fields) and published parameter counts of VGG-16.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from dlmath.models import zoo
from dlmath.params import count_params, count_params_sym, trace_shapes

H, W, M, N = sp.symbols("H W M N", integer=True, positive=True)


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("global_pool", [False, True])
def test_three_block_cnn_runs_and_formula_matches_built_networks(batch_norm, global_pool):
    net = zoo.three_block_cnn(batch_norm=batch_norm, global_pool=global_pool).eval()
    assert net(torch.zeros(2, 3, 48, 48)).shape == (2, 6)
    f = sp.sympify(count_params_sym(net, (3, H, W)))     # an int with global pooling
    for h, w in [(48, 48), (16, 40), (61, 23)]:
        built = zoo.three_block_cnn(size=(h, w), batch_norm=batch_norm, global_pool=global_pool)
        assert built.eval()(torch.zeros(1, 3, h, w)).shape == (1, 6)
        assert f.subs({H: h, W: w}) == numel(built)
    assert (f.free_symbols == set()) == global_pool


def test_three_block_cnn_layer_names_are_stable():
    plain = {r.name for r in trace_shapes(zoo.three_block_cnn(), (3, 48, 48)).rows}
    full = {r.name for r in trace_shapes(zoo.three_block_cnn(batch_norm=True, global_pool=True),
                                         (3, 48, 48)).rows}
    assert full - plain == {"block1.bn", "block2.bn", "block3.bn", "head.gap", "head.bn1",
                            "head.bn2"}
    assert plain - full == set()


def test_cifar_cnn_shapes():
    net = zoo.cifar_cnn()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    trace = trace_shapes(net, (3, 32, 32))
    assert [trace.row(f"pool{i}").output_shape for i in (1, 2, 3)] == \
        [(32, 16, 16), (64, 8, 8), (64, 4, 4)]
    assert trace.total_params == numel(net)


def test_vgg16_matches_published_counts():
    # Simonyan & Zisserman (2015) table 2 gives 138M; torchvision lists 138,357,544 and,
    # for the batch-norm variant, 138,365,992.
    with torch.device("meta"):
        assert count_params(zoo.vgg16()) == 138_357_544
        assert count_params(zoo.vgg16(batch_norm=True)) == 138_365_992
        fixed = zoo.vgg16(adaptive_pool=False)
    assert numel(fixed) == 138_357_544
    f = count_params_sym(fixed, (3, H, W))
    with torch.device("meta"):
        assert f.subs({H: 100, W: 100}) == numel(zoo.vgg16(adaptive_pool=False, size=100))
    assert f.subs({H: 224, W: 224}) == 138_357_544


def test_mlp_and_single_filter_cnn():
    net = zoo.mlp([12, 5, 3], bias=False)
    assert net(torch.zeros(4, 12)).shape == (4, 3)
    assert count_params(net) == numel(net)
    cnn = zoo.single_filter_cnn(28, 28, 5)
    assert cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 5), st.booleans())
def test_single_filter_formula_matches_torch(h, w, m, n, k, bias):
    if h - m + 1 < 2 or w - n + 1 < 2:
        with pytest.raises(ValueError):
            zoo.single_filter_cnn(h, w, (m, n), k, bias)
        return
    net = zoo.single_filter_cnn(h, w, (m, n), k, bias)
    assert net(torch.zeros(1, 1, h, w)).shape == (1, k)
    expr = zoo.single_filter_cnn_params_sym(H, W, M, N, k, bias)
    assert expr.subs({H: h, W: w, M: m, N: n}) == numel(net)
    assert zoo.single_filter_cnn_params_sym(h, w, m, n, k, bias) == numel(net)
    fc = zoo.single_filter_fc(h, w, (m, n), k, bias)
    assert fc(torch.zeros(1, 1, h, w)).shape == (1, k)
    assert fc.fc1.out_features == net.out.in_features
    fc_expr = zoo.single_filter_fc_params_sym(H, W, M, N, k, bias)
    assert fc_expr.subs({H: h, W: w, M: m, N: n}) == numel(fc) > numel(net)


@pytest.mark.parametrize("k, depth", [(3, 1), (3, 2), (3, 3), (5, 2), (7, 1)])
def test_conv_stack_receptive_field_by_gradient(k, depth):
    torch.manual_seed(0)
    net = zoo.conv_stack(2, k, depth).double()
    with torch.no_grad():                  # positive weights and input: every ReLU passes
        for p in net.parameters():
            p.abs_()
    x = torch.rand(1, 2, 31, 31, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 15, 15].backward()
    touched = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
    extent = (touched.max(dim=0).values - touched.min(dim=0).values + 1).tolist()
    assert extent == [depth * (k - 1) + 1] * 2
    assert count_params(net) == numel(net)


@pytest.mark.parametrize("call, message", [
    (lambda: zoo.three_block_cnn(kernel_size=4), "kernel_size must be odd"),
    (lambda: zoo.three_block_cnn(size=5), "larger than padded input"),
    (lambda: zoo.three_block_cnn(dropout=1.0), "dropout must be in"),
    (lambda: zoo.three_block_cnn(batch_norm=1), "batch_norm must be True or False"),
    (lambda: zoo.cifar_cnn(size=0), "size must be >= 1, got 0"),
    (lambda: zoo.mlp([3]), "sizes must be a sequence of at least 2 ints"),
    (lambda: zoo.conv_stack(2, 2, 1), "kernel_size must be odd"),
    (lambda: zoo.single_filter_cnn(3, 3, (3, 3)), "larger than padded input"),
])
def test_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("call, flag", [
    (lambda v: zoo.three_block_cnn(batch_norm=v), "batch_norm"),
    (lambda v: zoo.three_block_cnn(global_pool=v), "global_pool"),
    (lambda v: zoo.vgg16(batch_norm=v), "batch_norm"),
    (lambda v: zoo.vgg16(adaptive_pool=v), "adaptive_pool"),
    (lambda v: zoo.mlp([2, 3], bias=v), "bias"),
    (lambda v: zoo.conv_stack(2, 3, 1, bias=v), "bias"),
    (lambda v: zoo.single_filter_cnn(6, 6, 3, bias=v), "bias"),
    (lambda v: zoo.single_filter_cnn_params_sym(6, 6, 3, 3, bias=v), "bias"),
    (lambda v: zoo.single_filter_fc(6, 6, 3, bias=v), "bias"),
    (lambda v: zoo.single_filter_fc_params_sym(6, 6, 3, 3, bias=v), "bias"),
])
@pytest.mark.parametrize("value", ["False", 0, None])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)
