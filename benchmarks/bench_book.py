"""The book's own costs: a clean build, an unchanged rebuild, per-chapter execution, make test.

Targets (issue 13): the whole book from clean in under 20 minutes on a 2-core CPU, an
unchanged rebuild in under 30 seconds, ``make test`` in under 3 minutes.  The clean build
goes into its own folder (``_build/bench``), so the site in ``_build/html`` is left alone.
Set ``DLMATH_BENCH_BOOK=0`` to skip this benchmark (it takes as long as the book).

The clean build runs with :mod:`kernel_trace` as an IPython start-up file (a private
``IPYTHONDIR`` under the build folder; the chapters are executed as always), so that the
second table, ``book time split``, can say per chapter how much of the notebook's execution
was training and how much everything else (see :mod:`timesplit`); its last rows split the
whole clean build into the notebooks' parallel execution and the rest (Sphinx).  With
``DLMATH_BENCH_BOOK=0`` that table is made from the last bench build's traces, if any.
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
TRACES = BUILD / "kernel-traces"  # one JSON per kernel of the clean build (kernel_trace.py)
LOG = BUILD / "clean-html.log"  # the clean build's output
TIMES = BUILD / "clean-html-seconds.txt"  # its wall time, for DLMATH_BENCH_BOOK=0 later


def _timed(*args: str, env: dict | None = None, log: Path | None = None) -> float:
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") if log else open(os.devnull, "w") as out:
        subprocess.run(["make", *args], cwd=ROOT, check=True, env={**os.environ, **(env or {})},
                       stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def _trace_env() -> dict[str, str]:
    """A private IPYTHONDIR whose start-up file traces every kernel into TRACES."""
    startup = BUILD / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("kernel_trace.py"),
                    startup / "00-dlmath-bench-trace.py")
    TRACES.mkdir(parents=True, exist_ok=True)
    return {"IPYTHONDIR": str(BUILD / "ipython"), "DLMATH_BENCH_TRACE": str(TRACES)}


def time_split(build_seconds: float | None = None) -> list[dict]:
    """Per chapter: execution time, training, the rest (from the clean build's traces)."""
    from timesplit import load_traces, split_rows

    traces = load_traces(TRACES)
    if not traces:
        return [{"chapter": f"(no kernel traces under {TRACES}: run bench_book)"}]
    if build_seconds is None and TIMES.exists():
        build_seconds = float(TIMES.read_text())
    return split_rows(traces, dict(_chapter_times()), build_seconds, LOG)


def _chapter_times() -> list[tuple[str, float]]:
    from jupyter_cache import get_cache

    if not (BUILD / ".jupyter_cache").is_dir():
        return []
    caches = [p for p in (BUILD / ".jupyter_cache").iterdir() if p.is_dir()]
    if not caches:
        return []
    records = get_cache(str(caches[0])).list_cache_records()
    return sorted((Path(r.uri).stem, float(r.data.get("execution_seconds", float("nan"))))
                  for r in records)


def run() -> dict[str, list[dict]]:
    if os.environ.get("DLMATH_BENCH_BOOK", "1") == "0":
        return {"book": [{"measure": "skipped (DLMATH_BENCH_BOOK=0)", "seconds": 0.0,
                          "target s": "", "met": ""}],
                "book time split": time_split()}
    shutil.rmtree(BUILD, ignore_errors=True)
    env = {"BUILDDIR": str(BUILD)}
    clean_env = {**env, **_trace_env()}
    timings = {
        "clean make html": _timed("html", f"BUILDDIR={BUILD}", env=clean_env, log=LOG),
        "unchanged make html": _timed("html", f"BUILDDIR={BUILD}", env=env),
        "make test": _timed("test", f"BUILDDIR={BUILD}", env=env),
    }
    rows = [{"measure": k, "seconds": v, "target s": TARGETS[k], "met": v < TARGETS[k]}
            for k, v in timings.items()]
    rows += [{"measure": f"execute {name}", "seconds": sec, "target s": "", "met": ""}
             for name, sec in _chapter_times()]
    TIMES.write_text(str(timings["clean make html"]))
    return {"book": rows, "book time split": time_split(timings["clean make html"])}
