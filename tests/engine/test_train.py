"""dlmath.engine.train: batched seeds = looped seeds = a hand-written loop; determinism; the cache."""

from __future__ import annotations

import importlib
import json
import math
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlmath.engine import store
from dlmath.data import random_flip
from dlmath.data.tensors import DataSplits, TensorSplit
from dlmath.engine import (SGD, Adam, AdamW, Classification, Constant, Cosine, OneCycle, Ref,
                          StepDecay, TrainConfig, run)

# --- tiny models and data, at module level so that Refs can name them --------------------


def blobs(n: int = 96, size: int = 6, seed: int = 0) -> DataSplits:
    """Three classes of noisy 1-channel images: a bright row, column or diagonal."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.rand(n, 1, size, size, generator=g)
    x[y == 0, 0, size // 2, :] += 1.0
    x[y == 1, 0, :, size // 2] += 1.0
    x[:, 0] += (y == 2).float()[:, None, None] * torch.eye(size)
    cut1, cut2 = n // 2, 3 * n // 4
    return DataSplits(TensorSplit(x[:cut1], y[:cut1]), TensorSplit(x[cut1:cut2], y[cut1:cut2]),
                      TensorSplit(x[cut2:], y[cut2:]), info={"classes": 3})


def tiny_cnn(batch_norm: bool = False, dropout: float = 0.0) -> nn.Module:
    layers = [nn.Conv2d(1, 3, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(3))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout), nn.Flatten(), nn.Linear(27, 3)]
    return nn.Sequential(*layers)


def tokens(n: int = 48, length: int = 5, vocab: int = 6, seed: int = 0) -> DataSplits:
    """Copy task with padding: targets = inputs, the last two positions padded (id 0)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, vocab, (n, length), generator=g)
    y = x.clone()
    y[:, -2:] = 0
    s = [TensorSplit(x[a:b], y[a:b]) for a, b in ((0, 32), (32, 40), (40, 48))]
    return DataSplits(*s)


class TinyLSTM(nn.Module):
    def __init__(self, vocab: int = 6, hidden: int = 5) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.out(self.rnn(self.emb(x))[0])          # (B, T, V)


class TokenMLP(nn.Module):
    def __init__(self, vocab: int = 6, hidden: int = 5) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.out(torch.tanh(self.emb(x)))           # (B, T, V)


class TiedTokens(nn.Module):
    """Output layer sharing its weight with the embedding (as in GPT-2)."""

    def __init__(self, vocab: int = 6, hidden: int = 4) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.out = nn.Linear(hidden, vocab, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, x):
        return self.out(torch.tanh(self.emb(x)))


def not_a_module():
    return 3


def not_splits():
    return {"train": 1}


def config(**changes) -> TrainConfig:
    base = TrainConfig(model=Ref(tiny_cnn), data=Ref(blobs), optimizer=SGD(lr=0.2, momentum=0.9),
                       epochs=3, batch_size=16, seeds=(0, 1, 2), device="cpu")
    return base.replace(**changes)


def assert_same(a, b, atol=0.0):
    assert a.history.keys() == b.history.keys() and a.test.keys() == b.test.keys()
    for k in a.history:
        np.testing.assert_allclose(a.history[k], b.history[k], atol=atol, rtol=0, err_msg=k)
    for k in a.test:
        np.testing.assert_allclose(a.test[k], b.test[k], atol=atol, rtol=0, err_msg=k)


# --- determinism and the two modes ---------------------------------------------------------

def test_same_config_same_numbers_and_rng_left_alone():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = run(config(model=Ref(tiny_cnn, dropout=0.3)), cache=False)
    assert torch.equal(torch.get_rng_state(), before)
    b = run(config(model=Ref(tiny_cnn, dropout=0.3)), cache=False)
    assert_same(a, b, atol=0.0)
    for sa, sb in zip(a.states, b.states):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.mode == "batched" and a.history["loss"].shape == (3, 3)
    assert len({tuple(r) for r in a.history["loss"]}) == 3       # the seeds differ


@pytest.mark.parametrize("changes", [
    {},
    {"model": Ref(tiny_cnn, batch_norm=True)},
    {"optimizer": Adam(lr=0.05, weight_decay=1e-3), "schedule": Cosine(warmup_steps=2)},
    {"optimizer": AdamW(lr=0.05), "schedule": OneCycle(), "grad_clip": 0.05},
    {"optimizer": SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
     "schedule": StepDecay(every_epochs=1, gamma=0.5), "augment": Ref(random_flip)},
    {"steps_per_epoch": 4, "batch_size": 20, "eval_splits": ("train", "val")},
], ids=["sgd", "batchnorm", "adam-cosine", "adamw-onecycle-clip", "nesterov-step-augment",
        "steps-per-epoch"])
def test_batched_equals_looped(changes):
    c = config(**changes)
    batched = run(c.replace(mode="batched"), cache=False)
    looped = run(c.replace(mode="looped"), cache=False)
    assert (batched.mode, looped.mode) == ("batched", "looped")
    assert_same(batched, looped, atol=2e-5)
    for sb, sl in zip(batched.states, looped.states):
        assert sb.keys() == sl.keys()
        for k in sb:
            torch.testing.assert_close(sb[k].float(), sl[k].float(), atol=2e-5, rtol=1e-4)


def test_a_seed_trains_the_same_alone_or_in_company():
    alone = run(config(seeds=(5,)), cache=False)
    together = run(config(seeds=(2, 5, 9)), cache=False)
    for k in alone.history:
        np.testing.assert_allclose(alone.history[k][0], together.history[k][1], atol=2e-5)


def test_full_batch_gradient_descent_matches_a_hand_written_loop():
    # With the whole training split as one batch the data order is irrelevant: the engine
    # must then reproduce the textbook loop exactly (same init, same optimiser updates).
    data = blobs()
    x, y = data.train.inputs[0], data.train.targets
    for opt, torch_opt in [(SGD(lr=0.3, momentum=0.5), lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.5)),
                           (Adam(lr=0.02), lambda p: torch.optim.Adam(p, lr=0.02))]:
        res = run(config(optimizer=opt, batch_size=len(x), epochs=6, seeds=(3, 4)), cache=False)
        for i, seed in enumerate((3, 4)):
            torch.manual_seed(seed)
            net = tiny_cnn().double()
            o = torch_opt(net.parameters())
            losses = []
            for _ in range(6):
                loss = F.cross_entropy(net(x.double()), y)
                o.zero_grad()
                loss.backward()
                o.step()
                losses.append(loss.item())
            np.testing.assert_allclose(res.history["loss"][i], losses, rtol=1e-4, atol=1e-5)
            net.eval()
            with torch.no_grad():
                acc = (net(data.test.inputs[0].double()).argmax(1) == data.test.targets).double().mean()
            assert res.test["accuracy"][i] == pytest.approx(float(acc), abs=1e-12)


def test_auto_mode_falls_back_to_looping_for_an_lstm():
    c = TrainConfig(model=Ref(TinyLSTM), data=Ref(tokens), task=Classification(ignore_index=0),
                    optimizer=Adam(lr=0.02), epochs=2, batch_size=8, seeds=(0, 1), device="cpu")
    res = run(c, cache=False)
    assert res.mode == "looped"
    with pytest.raises(RuntimeError):
        run(c.replace(mode="batched"), cache=False)
    assert run(config(), cache=False).mode == "batched"


def test_sequence_task_ignores_padding_in_loss_and_metrics():
    c = TrainConfig(model=Ref(TokenMLP), data=Ref(tokens), task=Classification(ignore_index=0),
                    optimizer=Adam(lr=0.05), epochs=3, batch_size=8, seeds=(0, 1), device="cpu")
    res = run(c, cache=False)
    assert res.mode == "batched"
    model = res.model(1)
    data = tokens()
    with torch.no_grad():
        logits = model(data.test.inputs[0])                            # (8, 5, 6)
    keep = data.test.targets != 0
    oracle = F.cross_entropy(logits[keep], data.test.targets[keep])
    acc = (logits.argmax(-1)[keep] == data.test.targets[keep]).double().mean()
    assert res.test["loss"][1] == pytest.approx(float(oracle), rel=1e-5)
    assert res.test["accuracy"][1] == pytest.approx(float(acc), abs=1e-12)


def test_tied_weights_stay_tied_and_reload():
    c = TrainConfig(model=Ref(TiedTokens), data=Ref(tokens), task=Classification(ignore_index=0),
                    optimizer=Adam(lr=0.05), epochs=2, batch_size=8, seeds=(0, 1), device="cpu")
    batched, looped = run(c.replace(mode="batched"), cache=False), run(c.replace(mode="looped"),
                                                                        cache=False)
    assert_same(batched, looped, atol=2e-5)
    model = batched.model(1)                                 # strict load of both keys
    assert model.out.weight is model.emb.weight
    torch.testing.assert_close(batched.states[1]["out.weight"], looped.states[1]["emb.weight"])


# --- the task's loss against torch ---------------------------------------------------------

@pytest.mark.parametrize("ignore_index,smoothing", [(None, 0.0), (0, 0.0), (2, 0.1), (None, 0.2)])
def test_classification_loss_is_cross_entropy(ignore_index, smoothing):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 7, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (4, 7), generator=g)
    task = Classification(ignore_index=ignore_index, label_smoothing=smoothing)
    oracle = F.cross_entropy(z.reshape(-1, 5), y.reshape(-1), label_smoothing=smoothing,
                             ignore_index=-100 if ignore_index is None else ignore_index)
    torch.testing.assert_close(task.loss(z, y), oracle)
    # the same under vmap, seed by seed
    zs, ys = torch.stack([z, 2 * z]), torch.stack([y, y.flip(0)])
    batched = torch.func.vmap(task.loss)(zs, ys)
    torch.testing.assert_close(batched, torch.stack([task.loss(zs[i], ys[i]) for i in range(2)]))


def test_classification_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match targets"):
        Classification().loss(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))


# --- schedules against torch's schedulers ---------------------------------------------------

def _torch_factors(make, total):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("total,spe", [(100, 10), (37, 5), (12, 12)])
def test_schedules_match_torch(total, spe):
    lr = torch.optim.lr_scheduler
    ours = lambda s: np.array([s.factor(t, total, spe) for t in range(total)])  # noqa: E731
    np.testing.assert_allclose(ours(StepDecay(every_epochs=2, gamma=0.3)),
                               _torch_factors(lambda o: lr.StepLR(o, 2 * spe, 0.3), total),
                               rtol=1e-12)
    np.testing.assert_allclose(ours(Cosine(final=0.1)),
                               _torch_factors(lambda o: lr.CosineAnnealingLR(o, total, 0.1), total),
                               atol=1e-9)
    np.testing.assert_allclose(
        ours(OneCycle(pct_start=0.25, div_factor=10, final_div_factor=100)),
        _torch_factors(lambda o: lr.OneCycleLR(o, 1.0, total_steps=total, pct_start=0.25,
                                               div_factor=10, final_div_factor=100,
                                               cycle_momentum=False), total), atol=1e-9)
    np.testing.assert_allclose(ours(Constant()), np.ones(total))


def test_warmup_is_linear():
    w = [Cosine(warmup_steps=4).factor(t, 20, 5) for t in range(5)]
    assert w == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert StepDecay(every_epochs=1, warmup_steps=2).factor(0, 10, 5) == 0.5


# --- augmentation -------------------------------------------------------------------------------

def test_augmentation_is_applied_with_each_seeds_generator():
    plain = run(config(), cache=False)
    flipped = run(config(augment=Ref(random_flip, p=1.0)), cache=False)
    assert not np.allclose(plain.history["loss"], flipped.history["loss"])
    # p=1 flips every image: the same as training on mirrored data
    def mirrored_blobs_equal():
        return run(config(data=Ref(mirrored_blobs)), cache=False)
    assert_same(flipped, mirrored_blobs_equal(), atol=1e-6)


def mirrored_blobs() -> DataSplits:
    d = blobs()
    return DataSplits(TensorSplit(d.train.inputs[0].flip(-1), d.train.targets), d.val, d.test)


# --- the cache -----------------------------------------------------------------------------------

def test_cache_hit_miss_and_weights(tmp_path):
    c = config(epochs=2)
    first = run(c, root=tmp_path)
    second = run(c, root=tmp_path)
    assert (first.cached, second.cached) == (False, True)
    assert_same(first, second)
    assert second.wall_time == first.wall_time and second.code == first.code
    x = blobs().test.inputs[0]
    with torch.no_grad():
        torch.testing.assert_close(first.model(2)(x), second.model(2)(x), rtol=0, atol=0)
    assert run(c.replace(epochs=3), root=tmp_path).cached is False
    assert run(c, root=tmp_path, refresh=True).cached is False
    assert {"dlmath.engine.train", "dlmath.engine.store", "dlmath.data.tensors", __name__} <= set(first.code)


def test_a_corrupt_cache_entry_is_recomputed(tmp_path):
    c = config(epochs=1)
    run(c, root=tmp_path)
    (path,) = (tmp_path / "train").glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(store.StoreWarning, match="truncated"):
        res = run(c, root=tmp_path)
    assert res.cached is False and run(c, root=tmp_path).cached is True
    # a well-formed entry, stored for this config, with the wrong shapes is also a miss
    meta = {"seeds": [0], "history": {}, "test": {}}
    store.save("train", c.key(), {"meta": json.dumps(meta), "states": []}, root=tmp_path,
               identity=c.identity())
    with pytest.warns(store.StoreWarning, match=r"does not fit the request \(seeds \(0,\)"):
        assert run(c, root=tmp_path).cached is False


def test_changing_the_model_code_retrains(tmp_path, monkeypatch):
    pkg = tmp_path / "train_fp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    source = textwrap.dedent("""
        from torch import nn

        def net():
            return nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    """)
    (pkg / "nets.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        nets = importlib.import_module("train_fp_pkg.nets")
        c = config(model=Ref(nets.net), epochs=1)
        root = tmp_path / "cache"
        assert run(c, root=root).cached is False
        assert run(c, root=root).cached is True
        (pkg / "nets.py").write_text(source + "\n# edited\n")
        assert run(c, root=root).cached is False              # new code, new key
        assert run(c, root=root).cached is True
        (pkg / "nets.py").write_text(source)
        assert run(c, root=root).cached is True               # the old entry is still there
    finally:
        for name in [m for m in sys.modules if m.startswith("train_fp_pkg")]:
            del sys.modules[name]


def test_results_derived_from_a_run_are_keyed_by_it(tmp_path):
    c = config(epochs=1)
    first = run(c, root=tmp_path)
    assert first.key == c.key() == run(c, root=tmp_path).key == run(c, cache=False).key
    calls = []

    def evaluate(result):
        calls.append(result.key)
        return {"accuracy": torch.from_numpy(result.test["accuracy"])}

    def derived(result):
        return store.cached("eval", {"split": "test"}, lambda: evaluate(result),
                            derived_from=[result], root=tmp_path)

    assert derived(first)[1] is False
    payload, hit = derived(run(c, root=tmp_path))         # the same model, loaded: a hit
    assert hit and payload["accuracy"].tolist() == first.test["accuracy"].tolist()
    other = run(c.replace(optimizer=SGD(lr=0.05)), root=tmp_path)
    assert derived(other)[1] is False                        # another model: evaluated again
    assert derived(first)[1] is True and calls == [first.key, other.key]
    (entry,) = [e for e in store.entries(tmp_path, "eval") if e.derived_from == (first.key,)]
    assert entry.status == "ok"
    # the evaluations of two models are two lineages: keep=1 keeps both
    assert {e.lineage for e in store.entries(tmp_path, "train")} == {first.lineage,
                                                                      other.lineage}
    assert store.prune(tmp_path, keep=1) == []
    with pytest.raises(TypeError, match=r"derived_from\[0\] must be a key"):
        store.cached("eval", {}, dict, derived_from=[object()], root=tmp_path)
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        store.cached("eval", {}, dict, derived_from=["abc"], root=tmp_path)


# --- results and errors -------------------------------------------------------------------------

def test_result_statistics_and_summary():
    res = run(config(), cache=False)
    acc = res.test["accuracy"]
    mean, std = res.mean_std("test_accuracy")
    assert mean == pytest.approx(acc.mean()) and std == pytest.approx(acc.std(ddof=1))
    assert res.values("val_accuracy").tolist() == res.history["val_accuracy"][:, -1].tolist()
    assert res.values("loss", epoch=0).tolist() == res.history["loss"][:, 0].tolist()
    epochs, mean, std = res.curve("val_accuracy")
    assert epochs.tolist() == [1, 2, 3]
    np.testing.assert_allclose(mean, res.history["val_accuracy"].mean(0))
    np.testing.assert_allclose(std, res.history["val_accuracy"].std(0, ddof=1))
    assert math.isnan(run(config(seeds=(0,)), cache=False).mean_std("test_accuracy")[1])
    row = res.summary()
    assert row["seeds"] == 3 and row["device"] == "cpu" and row["examples_per_s"] > 0
    with pytest.raises(KeyError, match="no metric"):
        res.values("test_f1")
    with pytest.raises(IndexError):
        res.model(3)


def test_evaluate_on_another_split_and_initial_model():
    res = run(config(), cache=False)
    data = blobs()
    same = res.evaluate(data.test)
    np.testing.assert_allclose(same["accuracy"], res.test["accuracy"], atol=1e-12)
    np.testing.assert_allclose(same["loss"], res.test["loss"], rtol=1e-6)
    flipped = TensorSplit(data.test.inputs[0].transpose(-1, -2), data.test.targets)
    for i in range(3):                      # oracle: the trained model, run by hand
        with torch.no_grad():
            pred = res.model(i)(flipped.inputs[0]).argmax(1)
        acc = (pred == flipped.targets).double().mean()
        assert res.evaluate(flipped)["accuracy"][i] == pytest.approx(float(acc), abs=1e-12)
    torch.manual_seed(1)
    init = tiny_cnn()
    assert all(torch.equal(a, b) for a, b in zip(init.state_dict().values(),
                                                  res.initial_model(1).state_dict().values()))
    with pytest.raises(TypeError, match="TensorSplit"):
        res.evaluate(data)


def test_progress_bar_only_when_asked_or_watched(capsys, monkeypatch):
    monkeypatch.delenv("DLMATH_PROGRESS", raising=False)
    run(config(epochs=1), cache=False)
    assert capsys.readouterr().err == ""                   # pytest's stderr is not a terminal
    run(config(epochs=1), cache=False, progress=True)
    err = capsys.readouterr().err
    assert "tiny_cnn x3 (batched)" in err and "100%" in err   # tqdm's bar, to the end
    monkeypatch.setenv("DLMATH_PROGRESS", "1")
    run(config(epochs=1), cache=False)
    assert "tiny_cnn x3 (batched)" in capsys.readouterr().err
    monkeypatch.setenv("DLMATH_PROGRESS", "0")
    monkeypatch.setitem(sys.modules, "ipykernel", sys)      # as if in a Jupyter kernel
    run(config(epochs=1), cache=False)
    assert capsys.readouterr().err == ""                   # the book's builds: off
    monkeypatch.delenv("DLMATH_PROGRESS")
    run(config(epochs=1), cache=False)
    assert "tiny_cnn x3 (batched)" in capsys.readouterr().err


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="seeds must be distinct"):
        config(seeds=(1, 1))
    with pytest.raises(ValueError, match="mode must be"):
        config(mode="parallel")
    with pytest.raises(TypeError, match="model must be a dlmath.engine.store.Ref"):
        config(model=tiny_cnn)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        config(epochs=0)
    with pytest.raises(ValueError, match="eval_splits"):
        config(eval_splits=("test",))
    with pytest.raises(ValueError, match="momentum"):
        SGD(lr=0.1, momentum=1.0)
    with pytest.raises(TypeError, match="must build an nn.Module"):
        run(config(model=Ref(not_a_module)), cache=False)
    with pytest.raises(TypeError, match="must return a DataSplits"):
        run(config(data=Ref(not_splits)), cache=False)


@pytest.mark.parametrize("call, flag", [
    (lambda v: SGD(lr=0.1, momentum=0.9, nesterov=v), "nesterov"),
    (lambda v: config(drop_last=v), "drop_last"),
    (lambda v: run(config(epochs=1), cache=v), "cache"),
    (lambda v: run(config(epochs=1), cache=False, refresh=v), "refresh"),
    (lambda v: run(config(epochs=1), cache=False, progress=v), "progress"),
])
@pytest.mark.parametrize("value", ["False", 0])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)


@pytest.mark.parametrize("call, match", [
    (lambda: Adam(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\)"),
    (lambda: Cosine(final=1.5), r"final must be in \[0, 1\]"),
    (lambda: OneCycle(pct_start=1.0), r"pct_start must be in \(0, 1\)"),
    (lambda: Classification(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
    (lambda: SGD(lr=0.0), "lr must be > 0"),
    (lambda: config(batch_size=0), "batch_size must be >= 1"),
])
def test_numbers_out_of_range(call, match):
    with pytest.raises(ValueError, match=match):
        call()
