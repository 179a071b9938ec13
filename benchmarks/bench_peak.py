"""How close each training run of the book comes to what the machine can do (share of peak).

Two tables:

* ``peak``: the machine's peak FLOP/s measured now, in float32 with torch's default thread
  setting (the one the chapters train with) and with one thread: a large matrix product
  and a large convolution, best of a few runs after a warm-up (the default setting is
  measured before and after the steps are timed, the best kept).  ``peak`` is the larger
  of the two at the default setting.
* ``share of peak``: one row per training run in the store of the clean bench build (what
  ``bench_experiments`` lists; ``DLMATH_BENCH_STORE`` names another store), slowest first.
  The model and the data are rebuilt from the stored config and the FLOPs counted
  analytically, layer by layer, by :mod:`flops` (forward + backward of the matrix products;
  ``check`` is that count over ``torch.utils.flop_counter``'s, on one batch, forward).

  Columns: ``MFLOP/step`` (one optimiser step: all seeds of a batched run, one seed of a
  looped run); ``ms/step`` the time of one step at the run's batch size and
  ``fixed ms/step`` at a batch of 2, both measured here in the engine (the shortest time
  between the ends of consecutive steps of a run stopped after a few steps, so set-up is
  left out and nothing is evaluated);
  ``ms at peak`` the step's FLOPs at the peak; ``% peak (step)`` = ``ms at peak`` /
  ``ms/step``; ``wall s`` and ``% peak (run)`` the whole stored run (training and the
  evaluations, FLOPs over wall time) in the book build, where two notebooks execute at
  once, so a run had about half the machine.

  ``bound``: **overhead** when the fixed part of a step (what a step of 2 examples costs:
  Python, dispatch, optimiser, per-layer launches) is at least half of a real step, so
  that more examples per step would come almost free; **compute** otherwise (the step's
  time grows with its work: arithmetic and memory traffic).  A run left without a
  measurement is marked ``?`` (``DLMATH_BENCH_CALIBRATE_S``, default 600 s, caps the time
  spent measuring, slowest runs first; one measurement serves all runs that differ only in
  their learning rate or the like).

The last row sums all runs.  ``chapter`` comes from the clean build's kernel traces (see
:mod:`timesplit`).  Run ``bench_book`` first (``make bench`` does).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import flops
from timesplit import chapter_sources, load_traces, run_chapters

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build" / "bench"
SAMPLE = 512  # examples over which the FLOPs per example are averaged
STEPS = 24  # steps of each timing run
SKIP = 3  # steps left out: the first ones warm up
SMALL_BATCH = 2
COLUMNS = ("chapter", "model", "seeds", "mode", "batch", "steps", "MFLOP/step", "ms/step",
           "fixed ms/step", "ms at peak", "% peak (step)", "wall s", "GFLOP/s (run)",
           "% peak (run)", "bound", "check")


# --------------------------------------------------------------------------------------
# the machine's peak
# --------------------------------------------------------------------------------------

def _best_rate(fn, flop: float, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flop / best


def measure_peak(threads: int | None = None) -> dict[str, float]:
    """FLOP/s of a 2048^3 float32 matrix product and of a 3x3 convolution, 64 -> 64
    channels on 32 images of 56x56 (the shape of a ResNet stage)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        n = 2048
        a, b = (torch.randn(n, n, generator=g) for _ in range(2))
        x = torch.randn(32, 64, 56, 56, generator=g)
        w = torch.randn(64, 64, 3, 3, generator=g)
        with torch.no_grad():
            mm = _best_rate(lambda: a @ b, 2.0 * n**3)
            conv = _best_rate(lambda: F.conv2d(x, w, padding=1),
                              2.0 * 32 * 56 * 56 * 64 * 64 * 9)
        return {"matmul": mm, "conv2d": conv}
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------
# the stored runs, rebuilt
# --------------------------------------------------------------------------------------

def _resolve(target: str):
    module, qualname = target.split(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def decode(value):
    """The inverse of ``dlmath.engine.store.canonical``: Refs, dataclasses, callables,
    enums, dtypes, tuples."""
    from dlmath.engine.store import Ref

    if isinstance(value, dict):
        if "__ref__" in value:
            return Ref(_resolve(value["__ref__"]), **{k: decode(v) for k, v in value["kwargs"].items()})
        if "__dataclass__" in value:
            return _resolve(value["__dataclass__"])(
                **{k: decode(v) for k, v in value.items() if k != "__dataclass__"})
        if "__callable__" in value:
            return _resolve(value["__callable__"])
        if "__enum__" in value:
            return getattr(_resolve(value["__enum__"]), value["name"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if isinstance(value, str) and value.startswith("torch."):
        dtype = getattr(torch, value[6:], None)
        if isinstance(dtype, torch.dtype):
            return dtype
    return value


def read_entry(path: Path) -> dict | None:
    """A stored training result, through the store's own checked reader when it has one."""
    import warnings

    from dlmath.engine import store

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        payload = store.load("train", path.stem, path.parent.parent)
        if payload is None:  # an entry written before the store had a header
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001
                return None
    return payload if isinstance(payload, dict) and "meta" in payload else None


def stored_runs(root: Path) -> list[dict]:
    """Each stored training run: its key, meta and rebuilt TrainConfig (None if it fails)."""
    from dlmath.engine.train import TrainConfig

    runs = []
    for path in sorted((root / "train").glob("*.pt")):
        payload = read_entry(path)
        if payload is None:
            continue
        meta = json.loads(payload["meta"])
        spec = meta.get("spec")
        if spec is None:
            continue
        try:
            fields = {f.name for f in dataclasses.fields(TrainConfig)}
            config = TrainConfig(**{k: decode(v) for k, v in spec.items() if k in fields})
        except Exception as err:  # noqa: BLE001 (a config whose code has moved)
            config = f"{type(err).__name__}: {err}"
        runs.append({"key": path.stem, "meta": meta, "config": config})
    return runs


def _examples_per_epoch(n: int, config) -> int:
    if config.steps_per_epoch:
        return config.steps_per_epoch * config.batch_size
    return n - (n % config.batch_size if config.drop_last else 0)


def _steps_per_epoch(n: int, config) -> int:
    if config.steps_per_epoch:
        return config.steps_per_epoch
    return n // config.batch_size if config.drop_last else -(-n // config.batch_size)


def count_run(config) -> dict:
    """FLOPs per training and per evaluated example, the split sizes, and the check against
    ``torch.utils.flop_counter`` on one batch."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(config.seeds[0])
    model = config.model()
    data = config.data().to("cpu")
    train = data.train
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(train), generator=g)[:SAMPLE]
    total = flops.Flops()
    for i in range(0, len(idx), config.batch_size):
        inputs, _ = train.take(idx[i:i + config.batch_size])
        total = total + flops.count(model, inputs)
    per_example = total.scaled(1.0 / len(idx))
    inputs, _ = train.take(idx[:config.batch_size])
    with sdpa_kernel(SDPBackend.MATH):  # CPU flash attention hides its products from the oracle
        ours = flops.count(model, inputs).matmul
        oracle = flops.counted(model, inputs)
    sizes = {name: len(split) for name, split in
             (("train", data.train), ("val", data.val), ("test", data.test))}
    return {"per_example": per_example, "sizes": sizes,
            "check": ours / oracle if oracle else float("nan")}


class _Enough(Exception):
    """Raised by the step clock once it has seen enough steps: ends a timing run early."""


def calibrate(config, looped: bool) -> dict[str, float]:
    """Seconds per optimiser step at the run's batch size and at a batch of 2, measured in
    the engine itself: a run of the config with the engine's progress bar replaced by a
    clock that notes when each step ends and stops the run after ``STEPS`` steps (so no
    evaluation, and no more training than that); the shortest gap after the first ``SKIP``
    steps (best of, as every timing here: the gaps leave out data and set-up, and the
    shortest leaves out bursts of other work on the machine).  A looped run steps one seed
    after the other, so one seed is enough to time its steps."""
    from dlmath.engine import train as engine

    progress = engine._Progress
    marks: list[float] = []

    class _Clock(progress):  # the same bar, never drawn, that notes the end of each step
        def update(self, k=1, loss=None):
            marks.append(time.perf_counter())
            if len(marks) >= STEPS:
                raise _Enough

    seeds = config.seeds[:1] if looped else config.seeds

    def step_time(batch: int) -> float:
        marks.clear()
        engine._Progress = _Clock
        try:
            engine.run(config.replace(epochs=1, steps_per_epoch=STEPS, batch_size=batch,
                                      eval_splits=(), seeds=seeds, device="cpu"),
                       cache=False, progress=False)
        except _Enough:
            pass
        finally:
            engine._Progress = progress
        gaps = [b - a for a, b in zip(marks[SKIP:], marks[SKIP + 1:])]
        return min(gaps)

    return {"step": step_time(config.batch_size), "fixed": step_time(SMALL_BATCH)}


def _short(config) -> str:
    kw = ",".join(f"{k}={v}" for k, v in config.model.kwargs.items()
                  if k not in ("in_channels", "num_classes"))
    text = f"{config.model.target.rsplit(':', 1)[-1]}({kw})"
    return text if len(text) <= 44 else text[:41] + "..."


def share_rows(root: Path, peaks: dict[str, float]) -> list[dict]:
    """The rows of ``share of peak``.  ``peaks`` (kernel -> FLOP/s) is measured once more
    after the steps are timed, and the best of both kept (in place): a burst of other work
    during one measurement would otherwise lower the peak and raise every share."""
    runs = stored_runs(root)
    chapters = run_chapters(load_traces(BUILD / "kernel-traces"), chapter_sources())
    budget = float(os.environ.get("DLMATH_BENCH_CALIBRATE_S", "600"))
    spent = 0.0
    counts: dict[str, dict] = {}
    timed: dict[str, dict] = {}
    rows, sums = [], {"flop": 0.0, "wall": 0.0}
    for r in sorted(runs, key=lambda r: -r["meta"]["wall_time"]):
        meta, config = r["meta"], r["config"]
        if isinstance(config, str):
            rows.append({"chapter": chapters.get(r["key"], ""), "model": config[:44]})
            continue
        what = json.dumps({"model": config.model.target, "kw": repr(config.model.kwargs),
                           "data": repr(config.data)})
        if what not in counts:
            try:
                counts[what] = count_run(config)
            except Exception as err:  # noqa: BLE001 (a data set or model that fails now)
                counts[what] = f"{type(err).__name__}: {err}"
        c = counts[what]
        if isinstance(c, str):
            rows.append({"chapter": chapters.get(r["key"], ""), "model": _short(config),
                         "wall s": meta["wall_time"], "bound": c[:60]})
            continue
        S, n = len(config.seeds), c["sizes"]["train"]
        looped = meta["mode"] != "batched" and S > 1
        per_step_examples = config.batch_size * (1 if looped else S)
        step_flop = c["per_example"].train * per_step_examples
        steps = config.epochs * _steps_per_epoch(n, config) * (S if looped else 1)
        evaluated = S * (config.epochs * sum(c["sizes"][s] for s in config.eval_splits)
                         + c["sizes"]["test"])
        run_flop = (c["per_example"].train * S * config.epochs * _examples_per_epoch(n, config)
                    + c["per_example"].matmul * evaluated)
        # one measurement per model, data, seeds, mode, augmentation and batch size
        when = json.dumps({"what": what, "S": S, "mode": config.mode, "aug": repr(config.augment),
                           "B": config.batch_size, "opt": type(config.optimizer).__name__})
        if when not in timed and spent < budget:
            t0 = time.perf_counter()
            try:
                timed[when] = calibrate(config, looped)
            except Exception as err:  # noqa: BLE001
                timed[when] = {"error": f"{type(err).__name__}: {err}"}
            spent += time.perf_counter() - t0
        t = timed.get(when, {})
        step_s, fixed_s = t.get("step"), t.get("fixed")
        bound = "?" if step_s is None else "overhead" if fixed_s >= 0.5 * step_s else "compute"
        wall = meta["wall_time"]
        rows.append({
            "chapter": chapters.get(r["key"], ""), "model": _short(config), "seeds": S,
            "mode": meta["mode"], "batch": config.batch_size, "steps": steps,
            "MFLOP/step": step_flop / 1e6,
            "ms/step": step_s * 1e3 if step_s else None,
            "fixed ms/step": fixed_s * 1e3 if fixed_s is not None else None,
            "wall s": wall, "GFLOP/s (run)": run_flop / wall / 1e9, "bound": bound,
            "check": c["check"], "step_flop": step_flop,
        })
        sums["flop"] += run_flop
        sums["wall"] += wall
    for kernel, rate in measure_peak().items():
        peaks[kernel] = max(peaks[kernel], rate)
    peak = max(peaks.values())
    for row in rows:  # the shares, now that the peak is final
        if "step_flop" in row:
            flop, step_s = row.pop("step_flop"), row.get("ms/step")
            row["ms at peak"] = flop / peak * 1e3
            row["% peak (step)"] = 100 * flop / peak / (step_s / 1e3) if step_s else None
            row["% peak (run)"] = 100 * row["GFLOP/s (run)"] * 1e9 / peak
    if sums["wall"]:
        rows.append({"chapter": "all runs", "model": f"{len(rows)} runs", "wall s": sums["wall"],
                     "GFLOP/s (run)": sums["flop"] / sums["wall"] / 1e9,
                     "% peak (run)": 100 * sums["flop"] / sums["wall"] / peak,
                     "bound": f"{sum(r.get('bound') == 'overhead' for r in rows)} overhead, "
                              f"{sum(r.get('bound') == 'compute' for r in rows)} compute"})
    return [{k: row.get(k) for k in COLUMNS} for row in rows]


def run() -> dict[str, list[dict]]:
    threads = torch.get_num_threads()
    default = measure_peak()
    one = measure_peak(1)
    root = Path(os.environ.get("DLMATH_BENCH_STORE", BUILD / ".dlmath-cache"))
    if not (root / "train").is_dir():
        share = None
    else:
        share = share_rows(root, default)  # the peak, measured again after the runs' timing
    peak = max(default.values())
    peak_rows = [{"kernel": k, "threads": threads, "GFLOP/s": v / 1e9,
                  "is peak": v == peak} for k, v in default.items()]
    peak_rows += [{"kernel": k, "threads": 1, "GFLOP/s": v / 1e9, "is peak": False}
                  for k, v in one.items()]
    if share is None:
        share = [{"model": f"(no stored runs under {root}: run bench_book first)"}]
    return {"peak": peak_rows, "share of peak": share}
