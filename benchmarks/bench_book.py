"""The book's own costs: a clean build, an unchanged rebuild, per-chapter execution, make test.

Targets (issue 13): the whole book from clean in under 20 minutes on a 2-core CPU, an
unchanged rebuild in under 30 seconds, ``make test`` in under 3 minutes.  The clean build
goes into its own folder (``_build/bench``), so the site in ``_build/html`` is left alone.
Set ``DLMATH_BENCH_BOOK=0`` to skip this benchmark (it takes as long as the book).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build" / "bench"
TARGETS = {"clean make html": 20 * 60, "unchanged make html": 30, "make test": 3 * 60}


def _timed(*args: str, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(["make", *args], cwd=ROOT, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _chapter_times() -> list[tuple[str, float]]:
    from jupyter_cache import get_cache

    caches = [p for p in (BUILD / ".jupyter_cache").iterdir() if p.is_dir()]
    if not caches:
        return []
    records = get_cache(str(caches[0])).list_cache_records()
    return sorted((Path(r.uri).stem, float(r.data.get("execution_seconds", float("nan"))))
                  for r in records)


def run() -> list[dict]:
    if os.environ.get("DLMATH_BENCH_BOOK", "1") == "0":
        return [{"measure": "skipped (DLMATH_BENCH_BOOK=0)", "seconds": 0.0, "target s": "",
                 "met": ""}]
    shutil.rmtree(BUILD, ignore_errors=True)
    env = {"BUILDDIR": str(BUILD)}
    timings = {
        "clean make html": _timed("html", f"BUILDDIR={BUILD}", env=env),
        "unchanged make html": _timed("html", f"BUILDDIR={BUILD}", env=env),
        "make test": _timed("test", f"BUILDDIR={BUILD}", env=env),
    }
    rows = [{"measure": k, "seconds": v, "target s": TARGETS[k], "met": v < TARGETS[k]}
            for k, v in timings.items()]
    rows += [{"measure": f"execute {name}", "seconds": sec, "target s": "", "met": ""}
             for name, sec in _chapter_times()]
    return rows
