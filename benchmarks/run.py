"""Run dlmath's benchmarks: ``make bench``.

Every ``benchmarks/bench_*.py`` module defines ``run()``, which returns either one table,
``list[dict]`` (each dict one row, the same keys in every row), or several,
``dict[str, list[dict]]`` (title -> table).  This script runs them all (or the ones named on
the command line), prints the tables, and writes everything, with the machine it ran on,
to a JSON file (``rows`` for one table, ``tables`` for several).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}\n")
    if not rows:
        print("(no rows)")
        return
    keys = list(rows[0])
    cells = [[_fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print(" | ".join(k.ljust(w) for k, w in zip(keys, widths)))
    print("-|-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (e.g. toeplitz); default all")
    parser.add_argument("--out", default="_build/bench.json", help="JSON file to write")
    args = parser.parse_args(argv)

    files = sorted(HERE.glob("bench_*.py"))
    if args.names:
        wanted = {n.removeprefix("bench_") for n in args.names}
        unknown = wanted - {f.stem.removeprefix("bench_") for f in files}
        if unknown:
            parser.error(f"unknown benchmarks {sorted(unknown)}")
        files = [f for f in files if f.stem.removeprefix("bench_") in wanted]

    import torch

    report = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "benchmarks": {},
    }
    for path in files:
        name = path.stem.removeprefix("bench_")
        start = time.perf_counter()
        result = _load(path).run()
        seconds = time.perf_counter() - start
        if isinstance(result, dict):
            report["benchmarks"][name] = {"tables": result, "seconds": seconds}
            for title, rows in result.items():
                print_table(title, rows)
        else:
            report["benchmarks"][name] = {"rows": result, "seconds": seconds}
            print_table(name, result)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
