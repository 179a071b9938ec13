"""Execute the book's notebooks in parallel before Sphinx reads them (a local extension).

Sphinx reads documents one after another, and myst-nb executes a notebook when it reads
it, so a clean build keeps one core busy however many the machine has.  Just before the
read (``env-before-read-docs``), this extension finds the documents about to be read
that are notebooks without an entry in the jupyter-cache, and executes them in a pool of
``DLMATH_BUILD_JOBS`` worker processes (default: the usable cores, at most 4), longest
first (the durations of the last build, else the file size).  Each worker runs exactly
what myst-nb's ``cache`` mode runs for one notebook, so the read that follows finds every
notebook in the cache and only renders.  A notebook that fails in a worker is left out of
the cache; the read then executes it again and reports the error as a build failure.

Only active with ``nb_execution_mode = "cache"`` and at least two jobs; the workers are
spawned (not forked), so no database connection or lock of the parent is shared.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


def jobs() -> int:
    """The number of workers: ``$DLMATH_BUILD_JOBS``, else the usable cores (at most 4)."""
    value = os.environ.get("DLMATH_BUILD_JOBS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"DLMATH_BUILD_JOBS must be a positive integer, got {value!r}")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class _Log:
    """The logger interface myst-nb's clients call, collecting what they say."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _add(self, level: str, msg: str, *args, **kwargs) -> None:
        self.lines.append(f"{level}: {msg}")

    def debug(self, msg, *args, **kwargs):
        self._add("debug", msg)

    def info(self, msg, *args, **kwargs):
        self._add("info", msg)

    def warning(self, msg, *args, **kwargs):
        self._add("warning", msg)

    def error(self, msg, *args, **kwargs):
        self._add("error", msg)

    def critical(self, msg, *args, **kwargs):
        self._add("critical", msg)


def _execute(docname: str, path: str, notebook, nb_config, read_fmt) -> tuple[str, bool, float]:
    """In a worker: execute one notebook into the cache, as myst-nb's cache mode does."""
    from myst_nb.core.execute import create_client

    start = time.perf_counter()
    try:
        with create_client(notebook, path, nb_config, _Log(), read_fmt) as client:
            ok = bool(client.exec_metadata and client.exec_metadata.get("succeeded"))
    except Exception:  # the read executes it again and reports the error
        ok = False
    return docname, ok, time.perf_counter() - start


def _pending(app, env, docnames) -> list[tuple]:
    """The notebooks among ``docnames`` that the cache does not hold yet."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    nb_config = env.mystnb_config
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    pending = []
    try:
        for docname in docnames:
            path = str(env.doc2path(docname))
            text = Path(path).read_text(encoding="utf-8")
            reader = create_nb_reader(path, env.myst_config, nb_config, text)
            if reader is None:
                continue
            notebook = reader.read(text)
            # as myst-nb's parser does before it hashes and executes the notebook
            kernel = notebook.metadata.get("kernelspec", {}).get("name")
            if kernel is not None:
                for rgx, alias in (nb_config.kernel_rgx_aliases or {}).items():
                    if re.fullmatch(rgx, kernel):
                        notebook.metadata["kernelspec"]["name"] = alias
                        break
            try:
                cache.match_cache_notebook(notebook)
            except KeyError:
                pending.append((docname, path, notebook, nb_config, reader.read_fmt))
    finally:
        cache.db.dispose()  # no pooled connection lives on while the workers write
    return pending


def pre_execute(app, env, docnames) -> None:
    nb_config = env.mystnb_config
    n = jobs()
    if nb_config.execution_mode != "cache" or n < 2 or not docnames:
        return
    pending = _pending(app, env, docnames)
    if len(pending) < 2:
        return
    times_file = Path(app.doctreedir) / "dlmath-exec-times.json"
    try:
        last = json.loads(times_file.read_text())
    except (OSError, ValueError):
        last = {}
    # longest first: the last build's time, else the source size as a stand-in
    pending.sort(key=lambda job: (-float(last.get(job[0], 0.0)), -Path(job[1]).stat().st_size))
    n = min(n, len(pending))
    LOGGER.info(f"[dlmath] executing {len(pending)} notebooks in {n} processes")
    start = time.perf_counter()
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_execute, *job) for job in pending]
        for future in futures:
            docname, ok, seconds = future.result()
            last[docname] = seconds
            LOGGER.info(f"[dlmath] {docname}: {'executed' if ok else 'FAILED'} "
                        f"in {seconds:.1f} s")
    LOGGER.info(f"[dlmath] parallel execution took {time.perf_counter() - start:.1f} s")
    times_file.parent.mkdir(parents=True, exist_ok=True)
    times_file.write_text(json.dumps(last, indent=1, sort_keys=True))


def setup(app):
    app.connect("env-before-read-docs", pre_execute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
