"""An IPython start-up file: what each notebook's kernel spends its time on (``make bench``).

``bench_book`` copies this file into the start-up folder of a private ``IPYTHONDIR`` for its
clean build and sets ``DLMATH_BENCH_TRACE`` to a folder; every kernel of that build then
keeps ``<folder>/kernel-<pid>.json`` up to date after each cell: the source and the time of
every cell (the sources tell which notebook the kernel ran), and every training run of
dlmath's engine that was computed rather than loaded from the store (model, seeds, store
key, seconds).  The engine's ``_compute`` is wrapped when its module is imported; nothing
else changes, and without ``DLMATH_BENCH_TRACE`` the file does nothing.
"""


def _dlmath_bench_trace() -> None:
    import importlib.abc
    import importlib.machinery
    import json
    import os
    import sys
    import time

    folder = os.environ.get("DLMATH_BENCH_TRACE")
    try:
        ip = get_ipython()  # noqa: F821 (a builtin in IPython)
    except NameError:
        return
    if not folder or ip is None:
        return
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"kernel-{os.getpid()}.json")
    state = {"pid": os.getpid(), "started": time.time(), "ended": time.time(), "cells": [],
             "runs": []}
    engines = ("dlmath.engine.train", "dlmath.train")
    cell = {}

    def write() -> None:
        state["ended"] = time.time()
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, path)

    def wrap(module) -> None:
        compute = getattr(module, "_compute", None)
        if compute is None or getattr(compute, "_dlmath_bench_traced", False):
            return

        def traced(config, *args, **kwargs):
            t0 = time.perf_counter()
            result = compute(config, *args, **kwargs)
            seconds = time.perf_counter() - t0
            try:
                key = config.key()
            except Exception:  # noqa: BLE001 (a trace must never break a chapter)
                key = None
            state["runs"].append({"model": getattr(config.model, "target", "?"),
                                  "seeds": len(config.seeds), "key": key, "seconds": seconds,
                                  "cell": len(state["cells"])})
            return result

        traced._dlmath_bench_traced = True
        module._compute = traced

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in engines:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            exec_module = spec.loader.exec_module

            def exec_and_wrap(module):
                exec_module(module)
                wrap(module)

            spec.loader.exec_module = exec_and_wrap
            return spec

    sys.meta_path.insert(0, _Finder())
    for name in engines:
        if name in sys.modules:
            wrap(sys.modules[name])

    def pre_run_cell(info=None) -> None:
        cell["t0"] = time.perf_counter()

    def post_run_cell(result=None) -> None:
        seconds = time.perf_counter() - cell.pop("t0", time.perf_counter())
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        state["cells"].append({"seconds": seconds, "source": source})
        try:
            write()
        except OSError:
            pass

    ip.events.register("pre_run_cell", pre_run_cell)
    ip.events.register("post_run_cell", post_run_cell)
    write()


_dlmath_bench_trace()
del _dlmath_bench_trace
