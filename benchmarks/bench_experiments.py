"""The training throughput of every experiment of the book, read from the results store.

Every training run of the book goes through :func:`dlmath.engine.train.run`, which stores its
result with the wall time, the throughput (training examples per second, summed over
seeds) and the device.  This benchmark lists the runs of the clean build that
``bench_book`` has just made (its store, ``_build/bench/.dlmath-cache``), or of the
store named by ``DLMATH_BENCH_STORE``; run on a machine with a GPU after the chapters
have executed there, the same table gives the GPU's numbers.  Nothing is trained here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _short(value) -> str:
    if isinstance(value, dict) and "__ref__" in value:
        name = value["__ref__"].rsplit(":", 1)[-1]
        args = ",".join(f"{k}={_short(v)}" for k, v in value["kwargs"].items())
        return f"{name}({args})"
    if isinstance(value, dict) and "__dataclass__" in value:
        name = value["__dataclass__"].rsplit(":", 1)[-1]
        args = ",".join(f"{k}={_short(v)}" for k, v in value.items() if k != "__dataclass__")
        return f"{name}({args})"
    if isinstance(value, dict) and "__callable__" in value:
        return value["__callable__"].rsplit(":", 1)[-1]
    if isinstance(value, list):
        return "(" + ",".join(_short(v) for v in value) + ")"
    return str(value)


def rows_from_store(root: Path) -> list[dict]:
    """One row per stored training run under ``root/train``, slowest first."""
    rows = []
    from bench_peak import read_entry

    for path in sorted((root / "train").glob("*.pt")):
        payload = read_entry(path)
        if payload is None:
            continue
        meta = json.loads(payload["meta"])
        spec = meta.get("spec")
        if spec is None:          # written before the spec was stored
            continue
        test = meta["test"]
        name = next((k for k in ("accuracy", "cer") if k in test), next(iter(test), "-"))
        values = test.get(name, [float("nan")])
        rows.append({
            "model": _short(spec["model"])[:70],
            "data": _short(spec["data"])[:40],
            "optimizer": _short(spec["optimizer"])[:40],
            "seeds": len(meta["seeds"]), "epochs": spec["epochs"], "mode": meta["mode"],
            "device": meta["device"], "wall_s": meta["wall_time"],
            "examples_per_s": meta["examples_per_second"],
            "test (mean over seeds)": f"{name} {sum(values) / len(values):.3g}",
        })
    return sorted(rows, key=lambda r: -r["wall_s"])


def run() -> list[dict]:
    root = Path(os.environ.get("DLMATH_BENCH_STORE", ROOT / "_build" / "bench" / ".dlmath-cache"))
    rows = rows_from_store(root)
    if not rows:
        return [{"model": f"(no stored runs under {root}: run bench_book first)"}]
    return rows
