"""Where a notebook's execution time goes: training runs vs everything else (``make bench``).

``bench_book`` builds the book from clean with :mod:`kernel_trace` as an IPython start-up
file, so that every kernel leaves ``kernel-<pid>.json`` in the trace folder: its cells'
sources and times and the training runs it computed.  Here each trace is matched to the
chapter whose source holds its cells, and set against the notebook's execution time as the
jupyter-cache recorded it (kernel start-up to shutdown):

* ``start-up s``: the execution time outside any cell (starting the kernel, the start-up
  files, shutting it down);
* ``training s``: the engine's training runs (``dlmath.engine.train``'s ``_compute``: data,
  initialisation, training and evaluation of the runs that were not in the store);
* ``other cells s``: the rest of the cells (imports, SymPy, plotting, claims, tables);
* ``slowest other cell``: the cell outside training that took longest, with its first line;
* ``kernels``: how many kernels ran the notebook (more than one when it failed in a worker of
  the parallel execution and the read executed it again; the one whose span matches the
  recorded execution time is counted).

Not a benchmark module itself (no ``bench_`` prefix): ``bench_book`` and ``bench_peak``
import it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_traces(folder: Path) -> list[dict]:
    """The kernel traces under ``folder`` (none if it does not exist)."""
    traces = []
    for path in sorted(Path(folder).glob("kernel-*.json")):
        try:
            traces.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return traces


def chapter_sources(book: Path = ROOT / "book") -> dict[str, str]:
    """The text of every page of the book, by file stem (the jupyter-cache's name)."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(book.rglob("*.md"))}


def chapter_of(trace: dict, sources: dict[str, str]) -> str | None:
    """The page whose text holds the most of the trace's cells (cells of 20+ characters)."""
    votes: dict[str, int] = {}
    for cell in trace["cells"]:
        src = cell["source"].strip()
        if len(src) < 20:
            continue
        for name, text in sources.items():
            if src in text:
                votes[name] = votes.get(name, 0) + 1
    return max(votes, key=votes.get) if votes else None


def run_chapters(traces: list[dict], sources: dict[str, str]) -> dict[str, str]:
    """Store key of each computed training run -> the chapter that computed it."""
    out = {}
    for trace in traces:
        name = chapter_of(trace, sources) or "?"
        for run in trace["runs"]:
            if run.get("key"):
                out[run["key"]] = name
    return out


def _first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    text = lines[0].strip() if lines else ""
    return text if len(text) <= 48 else text[:45] + "..."


def parallel_execution_seconds(log: Path) -> float | None:
    """The time of the notebooks' parallel execution, as ``dlmath_preexec`` logs it."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.findall(r"parallel execution took ([0-9.]+) s", text)
    return float(found[-1]) if found else None


def split_rows(traces: list[dict], exec_seconds: dict[str, float], build_seconds: float | None,
               log: Path | None = None) -> list[dict]:
    """The table "chapter | total s | start-up s | training s | other cells s | ..."."""
    sources = chapter_sources()
    by_chapter: dict[str, list[dict]] = {}
    for trace in sorted(traces, key=lambda t: t["started"]):
        by_chapter.setdefault(chapter_of(trace, sources) or "?", []).append(trace)
    attempts = {name: len(kernels) for name, kernels in by_chapter.items()}
    # a notebook that failed in a worker (or changed under the build) is executed again by
    # the read: keep the kernel whose span is closest to the execution time the cache
    # recorded, else the last (unmatched kernels, "?", are all kept)

    def recorded(name: str, kernels: list[dict]) -> list[dict]:
        if name == "?" or len(kernels) == 1:
            return kernels
        if name not in exec_seconds:
            return kernels[-1:]
        return [min(kernels, key=lambda t: abs(t["ended"] - t["started"] - exec_seconds[name]))]

    by_chapter = {name: recorded(name, kernels) for name, kernels in by_chapter.items()}
    rows = []
    sums = dict.fromkeys(("total s", "start-up s", "training s", "other cells s"), 0.0)
    n_runs = 0
    for name in sorted(set(exec_seconds) | set(by_chapter)):
        kernels = by_chapter.get(name, [])
        cells = [c for t in kernels for c in t["cells"]]
        runs = [r for t in kernels for r in t["runs"]]
        in_cells = sum(c["seconds"] for c in cells)
        training = sum(r["seconds"] for r in runs)
        total = exec_seconds.get(name)
        if total is None:  # executed, but not recorded by the cache: the trace's own span
            total = sum(t["ended"] - t["started"] for t in kernels)
        train_cells = {r["cell"] for t in kernels for r in t["runs"]}
        others = [(c["seconds"], c["source"]) for i, c in enumerate(cells) if i not in train_cells]
        slow = max(others, default=None)
        row = {"chapter": name, "total s": total,
               "start-up s": max(0.0, total - in_cells) if kernels else None,
               "training s": training if kernels else None,
               "other cells s": in_cells - training if kernels else None,
               "training share": training / total if kernels and total else None,
               "runs": len(runs), "kernels": attempts.get(name, 0),
               "slowest other cell": (f"{slow[0]:.1f} s: {_first_line(slow[1])}" if slow else "")}
        rows.append(row)
        for k in sums:
            sums[k] += row[k] or 0.0
        n_runs += len(runs)
    if not rows:
        return []
    rows.append({"chapter": "all notebooks (sum)", **sums,
                 "training share": sums["training s"] / sums["total s"] if sums["total s"] else None,
                 "runs": n_runs, "kernels": sum(attempts.values()), "slowest other cell": ""})
    blank = dict.fromkeys(("start-up s", "training s", "other cells s", "training share",
                           "kernels"))
    parallel = parallel_execution_seconds(log) if log else None
    if parallel is not None:
        rows.append({"chapter": "notebooks, executed in parallel (wall)", "total s": parallel,
                     **blank, "runs": "", "slowest other cell": ""})
    if build_seconds is not None:
        if parallel is not None:
            rows.append({"chapter": "Sphinx and the rest of the build (wall)",
                         "total s": build_seconds - parallel, **blank, "runs": "",
                         "slowest other cell": "reading, rendering, writing the site"})
        rows.append({"chapter": "clean make html (wall)", "total s": build_seconds, **blank,
                     "runs": "", "slowest other cell": ""})
    return rows
