"""book/_ext/dlmath_preexec: notebooks run in worker processes, once, before the read."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))


def _available(name: str) -> bool:
    """Whether ``name`` can be imported, leaving no half-imported package behind.

    A failed ``import sphinx.util`` can leave a namespace package ``sphinx`` in
    ``sys.modules``, and other libraries (scipy) then take Sphinx for present and break.
    """
    before = set(sys.modules)
    try:
        found = importlib.util.find_spec(name) is not None
    except ImportError:
        found = False
    if not found:
        for module in set(sys.modules) - before:
            del sys.modules[module]
    return found


if not (_available("sphinx.util") and _available("myst_nb")):
    pytest.skip("the book's extension needs Sphinx and myst-nb (the book extra)",
                allow_module_level=True)

import dlmath_preexec  # noqa: E402

CONF = f"""
import sys
sys.path.insert(0, {str(ROOT / "book" / "_ext")!r})
extensions = ["myst_nb", "dlmath_preexec"]
exclude_patterns = ["_build", "runs", "_cache", "jupyter_execute"]
nb_execution_mode = "cache"
nb_execution_cache_path = "_cache"
nb_execution_raise_on_error = True
nb_kernel_rgx_aliases = {{".*": "python3"}}
"""

PAGE = """---
file_format: mystnb
kernelspec:
  name: python3
---
# {name}

```{{code-cell}} python3
import os
with open(os.path.join({runs!r}, "{name}"), "a") as f:
    f.write(f"{{os.getppid()}}\\n")
```
"""


def _build(src: Path, jobs: str) -> subprocess.CompletedProcess:
    """Build ``src``; ``returncode``, ``stdout``, ``stderr`` and the builder's ``pid``."""
    env = {**os.environ, "DLMATH_BUILD_JOBS": jobs}
    with subprocess.Popen([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(src),
                           str(src / "_build")], env=env, cwd=src, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        out, err = proc.communicate(timeout=600)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    result.pid = proc.pid
    return result


def test_each_notebook_executes_once_in_a_worker_then_is_read_from_the_cache(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (tmp_path / "conf.py").write_text(CONF)
    names = ["a", "b", "c"]
    (tmp_path / "index.md").write_text(
        "# Index\n\n```{toctree}\n" + "\n".join(names) + "\n```\n")
    for name in names:
        (tmp_path / f"{name}.md").write_text(PAGE.format(name=name, runs=str(runs)))

    first = _build(tmp_path, "2")
    assert first.returncode == 0, first.stderr
    parents = {n: (runs / n).read_text().split() for n in names}
    assert all(len(p) == 1 for p in parents.values())       # executed once each ...
    # ... by kernels that workers started, not the Sphinx process itself
    assert all(p[0] != str(first.pid) for p in parents.values())
    times = tmp_path / "_build" / ".doctrees" / "dlmath-exec-times.json"
    assert times.is_file() and all(n in times.read_text() for n in names)
    for n in names:
        assert f"<h1>{n}" in (tmp_path / "_build" / f"{n}.html").read_text()

    # a changed page is executed again (and alone); the others come from the cache
    (tmp_path / "b.md").write_text(PAGE.format(name="b", runs=str(runs)) + "\nMore.\n"
                                   "```{code-cell} python3\n1 + 1\n```\n")
    second = _build(tmp_path, "2")
    assert second.returncode == 0, second.stderr
    assert [len((runs / n).read_text().split()) for n in names] == [1, 2, 1]

    # with one job, the read itself executes what changed
    (tmp_path / "c.md").write_text(PAGE.format(name="c", runs=str(runs)) + "\nAgain.\n"
                                   "```{code-cell} python3\n2 + 2\n```\n")
    serial = _build(tmp_path, "1")
    assert serial.returncode == 0, serial.stderr
    assert (runs / "c").read_text().split()[-1] == str(serial.pid)


def test_a_failing_notebook_still_fails_the_build(tmp_path):
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "index.md").write_text("# Index\n\n```{toctree}\nbad\ngood\n```\n")
    head = "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n---\n"
    (tmp_path / "bad.md").write_text(head + "# bad\n\n```{code-cell} python3\n1 / 0\n```\n")
    (tmp_path / "good.md").write_text(head + "# good\n\n```{code-cell} python3\n1\n```\n")
    result = _build(tmp_path, "2")
    assert result.returncode != 0
    # it failed in its worker, and again in the read, which reports it
    assert "bad.md: WARNING: Executing notebook failed" in result.stderr


@pytest.mark.parametrize("value,expected", [("1", 1), ("3", 3)])
def test_jobs_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("DLMATH_BUILD_JOBS", value)
    assert dlmath_preexec.jobs() == expected


def test_jobs_default_is_the_cores_capped_at_four(monkeypatch):
    monkeypatch.delenv("DLMATH_BUILD_JOBS", raising=False)
    assert 1 <= dlmath_preexec.jobs() <= 4


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_jobs_rejects_bad_values(monkeypatch, value):
    monkeypatch.setenv("DLMATH_BUILD_JOBS", value)
    with pytest.raises(ValueError, match="DLMATH_BUILD_JOBS must be a positive integer"):
        dlmath_preexec.jobs()
