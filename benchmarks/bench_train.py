"""Seeds trained together (dlmath.engine.train, batched) vs one after another with a DataLoader.

For the two CNNs of the chapter "Training CNNs" on the 16x16 digits (Adam, batches of 32),
ten seeds of one config are trained three ways, in the same process, on the same device:

* ``dataloader``: the plain PyTorch loop, ten times: ``DataLoader(TensorDataset(x, y),
  shuffle=True)``, ``model(x)``, ``loss.backward()``, ``optimizer.step()``, with the same
  evaluation on the validation split after each epoch and on the test split at the end;
* ``looped``: dlmath.engine.train with ``mode="looped"`` (index gathers from tensors on the device,
  no collation, still one seed at a time);
* ``batched``: dlmath.engine.train with ``mode="batched"`` (the ten seeds as one network ten times
  as wide, see :mod:`dlmath.engine._stacked`);
* ``batched_vmap``: the same with the wide route switched off, so that the seeds run under
  ``vmap(functional_call(...))`` as any other model would (what the wide route adds).

Each row gives the wall times (best of three interleaved rounds, after a warm-up), the
ratios measured in the same run (target: batched at least 3x faster than the DataLoader
loop on the CPU), the training throughput in examples per second (summed over seeds), and
the process CPU time of each, because on a shared machine wall time also counts time spent
waiting for a core.  ``DLMATH_BENCH_THREADS`` sets torch's intra-op threads (default:
torch's own choice).
"""

from __future__ import annotations

import os
import time
from unittest import mock

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dlmath.engine import _stacked
from dlmath.data import digits
from dlmath.engine import Adam, Ref, TrainConfig
from dlmath.engine import run as train
from dlmath.models.zoo import three_block_cnn

SEEDS = tuple(range(10))
EPOCHS = 3
BATCH = 32
LR = 1e-3

#: The networks of the chapter (16x16 digits): plain, and with batch norm + global pooling.
ARCH = dict(in_channels=1, size=16, channels=(8, 16, 32), hidden=(64, 32), num_classes=10,
            dropout=0.1)
MODELS = {
    "three-block CNN": Ref(three_block_cnn, **ARCH),
    "three-block CNN, BN + GAP": Ref(three_block_cnn, **ARCH, batch_norm=True,
                                     global_pool=True),
}


def _dataloader_runs(model: Ref, data, dev: torch.device, seeds=SEEDS, epochs=EPOCHS) -> float:
    """The seeds, one after another, with the textbook DataLoader loop."""
    x, y = data.train.inputs[0].to(dev), data.train.targets.to(dev)
    start = time.perf_counter()
    for seed in seeds:
        torch.manual_seed(seed)
        net = model().to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        for _ in range(epochs):
            net.train()
            for xb, yb in loader:
                loss = F.cross_entropy(net(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                F.cross_entropy(net(data.val.inputs[0].to(dev)), data.val.targets.to(dev))
        net.eval()
        with torch.no_grad():
            (net(data.test.inputs[0].to(dev)).argmax(1) == data.test.targets.to(dev)).float().mean()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start


def _vmap_only(fn):
    """``fn`` with the engine's wide route switched off (every model under vmap)."""
    def call():
        with mock.patch.object(_stacked, "compile_stacked", lambda *args: None):
            fn()
    return call


def _timed(fns: dict, repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Best wall time and best process CPU time of each function over ``repeats`` rounds.

    The rounds interleave the functions, so that a slow spell of a shared machine slows
    one round of each rather than all the repeats of one.
    """
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            walls[k].append(time.perf_counter() - wall)
            cpus[k].append(time.process_time() - cpu)
    return {k: (min(walls[k]), min(cpus[k])) for k in fns}


def run() -> list[dict]:
    threads = os.environ.get("DLMATH_BENCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    data = digits(size=16)
    rows = []
    for name, model in MODELS.items():
        config = TrainConfig(model=model, data=Ref(digits, size=16),
                             optimizer=Adam(lr=LR), epochs=EPOCHS,
                             batch_size=BATCH, seeds=SEEDS)
        dev = config.resolved_device()
        train(config.replace(seeds=(0, 1), epochs=1), cache=False)      # warm-up: imports,
        train(config.replace(seeds=(0, 1), epochs=1, mode="looped"), cache=False)  # kernels
        _dataloader_runs(model, data, dev, seeds=(0,), epochs=1)
        best = _timed({
            "dataloader": lambda: _dataloader_runs(model, data, dev),
            "looped": lambda: train(config.replace(mode="looped"), cache=False),
            "batched": lambda: train(config.replace(mode="batched"), cache=False),
            "vmap": _vmap_only(lambda: train(config.replace(mode="batched"), cache=False)),
        })
        (dl_wall, dl_cpu), (lo_wall, _), (ba_wall, ba_cpu), (vm_wall, _) = best.values()
        examples = len(SEEDS) * EPOCHS * len(data.train)
        rows.append({
            "model": name, "device": str(dev), "threads": torch.get_num_threads(),
            "seeds": len(SEEDS), "epochs": EPOCHS,
            "dataloader_s": dl_wall, "looped_s": lo_wall, "batched_s": ba_wall,
            "batched_vmap_s": vm_wall,
            "speedup_vs_dataloader": dl_wall / ba_wall, "speedup_vs_looped": lo_wall / ba_wall,
            "vmap_speedup_vs_dataloader": dl_wall / vm_wall,
            "cpu_speedup_vs_dataloader": dl_cpu / ba_cpu,
            "batched_examples_per_s": examples / ba_wall,
            "dataloader_examples_per_s": examples / dl_wall,
        })
    return rows
