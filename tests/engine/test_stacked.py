"""dlmath.engine._stacked: S seeds as one wide network = the S separate modules, or no plan at all."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from dlmath.engine import _stacked
from dlmath.data import digits
from dlmath.engine.train import Adam, AdamW, Ref, TrainConfig, _Batched, _fused, run
from dlmath.models.zoo import mlp, three_block_cnn

S = 3


def conv_zoo(variant: str) -> nn.Module:
    """Sequentials that exercise every layer type and option the plan accepts."""
    if variant == "three-block":
        return three_block_cnn(in_channels=2, size=8, channels=(4, 6, 8), hidden=(10,),
                               num_classes=5, dropout=0.0)
    if variant == "bn-gap":
        return three_block_cnn(in_channels=2, size=8, channels=(4, 6, 8), hidden=(10, 7),
                               num_classes=5, dropout=0.0, batch_norm=True, global_pool=True)
    if variant == "options":
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(4, affine=False, momentum=None),
            nn.LeakyReLU(0.1),
            nn.Conv2d(4, 6, 3, padding="same", dilation=2, groups=2),
            nn.BatchNorm2d(6, track_running_stats=False),
            nn.GELU(),
            nn.Sequential(nn.ReLU(), nn.Identity(), nn.MaxPool2d(3, stride=1, padding=1)),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Dropout2d(0.0),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 7, bias=False),
            nn.LayerNorm(7),
            nn.Tanh(),
            nn.BatchNorm1d(7),
            nn.Linear(7, 3))
    if variant == "image-out":                  # a fully convolutional net: (S, B, C, H, W)
        return nn.Sequential(nn.Conv2d(2, 3, 1), nn.Sigmoid(), nn.AdaptiveAvgPool2d(2))
    if variant == "mlp":
        return nn.Sequential(nn.Flatten(), mlp(sizes=(128, 9, 4), activation=nn.Softplus))
    raise ValueError(variant)


VARIANTS = ["three-block", "bn-gap", "options", "image-out", "mlp"]


def stacked(variant: str):
    models = []
    for s in range(S):
        torch.manual_seed(s)
        m = conv_zoo(variant).double()      # float64: BN on tiny batches amplifies rounding
        for buf_name, buf in m.named_buffers():      # non-trivial running statistics
            if buf.dtype.is_floating_point:
                buf.uniform_(0.5, 1.5)
        models.append(m)
    p, b = stack_module_state(models)
    p = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
    b = {k: v.detach().clone() for k, v in b.items()}
    return models, p, b


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_wide_network_equals_the_separate_models(variant, training):
    models, p, b = stacked(variant)
    plan = _stacked.compile_stacked(models[0], p, b)
    assert plan is not None
    g = torch.Generator().manual_seed(7)
    x = torch.randn(S, 6, 2, 8, 8, generator=g, dtype=torch.float64)   # a batch per seed
    for m in models:
        m.train(training)
    out = plan(p, b, x, shared=False, training=training)
    refs = [m(x[s]) for s, m in enumerate(models)]
    assert out.shape == (S, *refs[0].shape)
    for s in range(S):
        torch.testing.assert_close(out[s], refs[s], atol=1e-10, rtol=1e-10)
    # gradients: the sum over seeds of each seed's own loss
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * weights).sum().backward()
    sum((r * weights[s]).sum() for s, r in enumerate(refs)).backward()
    for s, m in enumerate(models):
        for name, prm in m.named_parameters():
            torch.testing.assert_close(p[name].grad[s], prm.grad, atol=1e-9, rtol=1e-9,
                                       msg=f"{variant}: grad of {name}")
        for name, buf in m.named_buffers():                # running statistics, counts
            torch.testing.assert_close(b[name][s], buf, atol=1e-12, rtol=1e-12,
                                       msg=f"{variant}: buffer {name}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_shared_batch_for_all_seeds(variant):
    models, p, b = stacked(variant)
    plan = _stacked.compile_stacked(models[0], p, b)
    x = torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        out = plan(p, b, x, shared=True, training=False)
        for s, m in enumerate(models):
            torch.testing.assert_close(out[s], m.eval()(x), atol=1e-10, rtol=1e-10)


def test_a_one_channel_input_stays_channels_last():
    # the first convolution of the book's CNNs sees one channel, where torch cannot tell the
    # two layouts apart; the plan must still hand pooling a channels-last tensor
    models, p, b = stacked("three-block")
    seen = []
    hook = torch.nn.functional.max_pool2d
    try:
        torch.nn.functional.max_pool2d = lambda h, *a, **k: (
            seen.append(h.is_contiguous(memory_format=torch.channels_last)) or hook(h, *a, **k))
        plan = _stacked.compile_stacked(models[0], p, b)
        plan(p, b, torch.randn(4, 2, 8, 8, dtype=torch.float64), shared=True, training=False)
    finally:
        torch.nn.functional.max_pool2d = hook
    assert seen and all(seen)


def test_relu_before_max_pooling_is_applied_after_it():
    models, p, b = stacked("three-block")
    plan = _stacked.compile_stacked(models[0], p, b)
    assert "relu_after_pool" in plan.steps and "relu" in plan.steps     # the head's ReLU


@pytest.mark.parametrize("p_drop", [0.2, 0.5])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_dropout_keeps_with_probability_one_minus_p_and_rescales(p_drop, layout):
    torch.manual_seed(0)
    h = torch.rand(64, 12, 9, 9) + 0.5
    if layout == "channels_last":
        h = h.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        h = h.transpose(2, 3)
    out = _stacked._dropout(h, p_drop, training=True)
    kept = out != 0
    # every kept value is scaled by exactly 1/(1-p), every other one is 0
    torch.testing.assert_close(out[kept], h[kept] / (1 - p_drop))
    n = h.numel()
    sd = math.sqrt(n * p_drop * (1 - p_drop))
    assert abs(int((~kept).sum()) - n * p_drop) < 5 * sd
    assert _stacked._dropout(h, p_drop, training=False) is h
    assert torch.equal(_stacked._dropout(h, 1.0, training=True), torch.zeros_like(h))


def test_channel_dropout_drops_whole_maps():
    torch.manual_seed(1)
    h = torch.rand(200, 6, 4, 4) + 0.5
    out = _stacked._dropout(h, 0.5, training=True, per_channel=True)
    zero_maps = (out == 0).flatten(2).all(2)
    kept_maps = (out != 0).flatten(2).all(2)
    assert bool((zero_maps | kept_maps).all())
    assert 0.4 < float(zero_maps.float().mean()) < 0.6


class OwnForward(nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2


class Custom(nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.Flatten()),
    OwnForward(nn.Linear(3, 2)),
    nn.Sequential(nn.Linear(3, 2), Custom()),
    nn.Sequential(nn.Linear(3, 2), nn.Conv2d(1, 1, 1)),       # a convolution after features
    nn.Sequential(nn.ReLU(), nn.Linear(3, 2)),                # the layout is unknown at first
    nn.Sequential(nn.MaxPool2d(2, return_indices=True)),
    nn.Sequential(nn.BatchNorm1d(3, momentum=None), nn.Linear(3, 2)),
    nn.Sequential(),
], ids=["circular", "own-forward", "custom", "conv-after-linear", "act-first", "indices",
        "bn-first", "empty"])
def test_anything_else_gets_no_plan(model):
    p, b = stack_module_state([model, model])
    assert _stacked.compile_stacked(model, p, b) is None


def _hook(module, args, output):
    return output * 2 if module.training else output


@pytest.mark.parametrize("how", ["forward-hook", "pre-hook", "instance-forward", "global"])
def test_a_hook_or_a_replaced_forward_gets_no_plan(how):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    p, b = stack_module_state([model, model])
    assert _stacked.compile_stacked(model, p, b) is not None
    handle = None
    if how == "forward-hook":
        handle = model[2].register_forward_hook(_hook)
    elif how == "pre-hook":
        handle = model[0].register_forward_pre_hook(lambda m, args: (args[0] + 1,))
    elif how == "instance-forward":
        model[1].forward = lambda x: x
    else:
        handle = nn.modules.module.register_module_forward_hook(_hook)
    try:
        assert _stacked.compile_stacked(model, p, b) is None
    finally:
        if handle is not None:
            handle.remove()


def test_the_plan_reports_whether_training_draws_random_numbers():
    for dropout, stochastic in ((0.0, False), (0.2, True)):
        models, p, b = stacked("three-block")
        for m in models[0].modules():
            if isinstance(m, nn.Dropout):
                m.p = dropout
        assert _stacked.compile_stacked(models[0], p, b).stochastic is stochastic


def test_a_tied_weight_gets_no_plan():
    a = nn.Linear(4, 4)
    model = nn.Sequential(a, nn.ReLU(), a)
    p, b = stack_module_state([model, model])
    assert "2.weight" not in p
    assert _stacked.compile_stacked(model, p, b) is None


def token_mlp() -> nn.Module:
    """Linear layers on (B, T, F) inputs: per token, not the (S, B, F) the plan assumes."""
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def tokens_data():
    from dlmath.data.tensors import DataSplits, TensorSplit
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, 3, generator=g)
    y = (x.sum(-1) > 0).long()
    return DataSplits(TensorSplit(x[:20], y[:20]), TensorSplit(x[20:30], y[20:30]),
                      TensorSplit(x[30:], y[30:]))


def small_cnn(seed: int, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return three_block_cnn(in_channels=1, size=8, channels=(2, 3, 4), hidden=(5,),
                           num_classes=10, **kw)


@pytest.mark.parametrize("kw", [{}, {"batch_norm": True, "dropout": 0.0},
                                {"batch_norm": True, "global_pool": True}])
def test_the_engine_keeps_the_plan_for_the_books_cnns(kw):
    task = TrainConfig(model=Ref(mlp, sizes=(1, 1)), data=Ref(digits)).task
    batched = _Batched([small_cnn(s, **kw) for s in range(3)], task)
    before = {k: v.clone() for k, v in batched.buffers.items()}
    rng = torch.get_rng_state()
    batched.check_plan(digits(size=8).train, torch.device("cpu"))
    assert batched.plan is not None
    assert all(torch.equal(before[k], batched.buffers[k]) for k in before)
    assert torch.equal(rng, torch.get_rng_state())


def test_the_check_catches_a_plan_that_differs_only_in_training():
    task = TrainConfig(model=Ref(mlp, sizes=(1, 1)), data=Ref(digits)).task
    batched = _Batched([small_cnn(s, batch_norm=True, dropout=0.0) for s in range(2)], task)
    plan = batched.plan

    def off_in_training(p, b, x, *, shared, training):
        return plan(p, b, x, shared=shared, training=training) * (1.01 if training else 1.0)

    off_in_training.stochastic = False
    batched.plan = off_in_training
    batched.check_plan(digits(size=8).train, torch.device("cpu"))
    assert batched.plan is None


def frozen_first_layer() -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    net[1].requires_grad_(False)
    return net


@pytest.mark.parametrize("mode", ["batched", "looped"])
def test_a_frozen_layer_stays_frozen(mode):
    res = run(TrainConfig(model=Ref(frozen_first_layer), data=Ref(digits), epochs=1,
                          batch_size=64, seeds=(0, 1), device="cpu", mode=mode,
                          optimizer=Adam(lr=0.05)), cache=False)
    for i in range(2):
        start, end = res.initial_model(i), res.model(i)
        assert torch.equal(start[1].weight, end[1].weight)
        assert not torch.equal(start[3].weight, end[3].weight)


def test_the_engine_uses_the_plan_and_falls_back_to_vmap_when_shapes_do_not_fit():
    cnn = small_cnn(0)
    data = digits(size=8)
    batched = _Batched([cnn, cnn], TrainConfig(model=Ref(mlp, sizes=(1, 1)),
                                               data=Ref(digits)).task)
    batched.check_plan(data.train, torch.device("cpu"))
    assert batched.plan is not None
    batched = _Batched([token_mlp(), token_mlp()], batched.task)
    assert batched.plan is not None                      # compiled, but wrong for (B, T, F)
    batched.check_plan(tokens_data().train, torch.device("cpu"))
    assert batched.plan is None
    res = run(TrainConfig(model=Ref(token_mlp), data=Ref(tokens_data), epochs=2, batch_size=8,
                          seeds=(0, 1), device="cpu", mode="batched"), cache=False)
    looped = run(TrainConfig(model=Ref(token_mlp), data=Ref(tokens_data), epochs=2,
                             batch_size=8, seeds=(0, 1), device="cpu", mode="looped"),
                 cache=False)
    torch.testing.assert_close(torch.tensor(res.history["loss"]),
                               torch.tensor(looped.history["loss"]), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("opt", [Adam(lr=0.01, weight_decay=1e-3), AdamW(lr=0.01)])
def test_the_fused_optimiser_takes_the_default_steps(opt):
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
    grads = [[torch.randn(t.shape, generator=g) for t in start] for _ in range(5)]
    finals = []
    for fused in (False, True):
        params = [t.clone().requires_grad_(True) for t in start]
        o = _fused(opt, params, torch.device("cpu")) if fused else opt.build(params)
        assert bool(o.defaults["fused"]) == fused
        for step in grads:
            for prm, gr in zip(params, step):
                prm.grad = gr.clone()
            o.step()
        finals.append(params)
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
