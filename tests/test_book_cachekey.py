"""book/_ext/dlmath_cachekey: the execution cache's key follows the code and the environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import dlmath_cachekey as ck  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "dlmath" / "sub").mkdir(parents=True)
    (tmp_path / "dlmath" / "a.py").write_text("x = 1\n")
    (tmp_path / "dlmath" / "sub" / "b.py").write_text("y = 2\n")
    return tmp_path


def test_environment_names_what_the_chapters_depend_on():
    env = ck.environment()
    assert env["python"] == sys.version
    assert env["device"] in ("cpu", "mps") or str(env["device"]).startswith("cuda:")
    dists = env["distributions"]
    assert any(d.startswith("torch==") for d in dists)
    assert any(d.startswith("sympy==") for d in dists)
    assert dists == sorted(dists)


@pytest.mark.parametrize("field, value", [
    ("python", "3.99.0 (other)"),
    ("torch_spec", "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"),
    ("device", "cuda:NVIDIA H100"),
    ("machine", "aarch64"),
])
def test_each_environment_field_changes_the_key(tree, field, value):
    env = ck.environment()
    base = ck.cache_key(tree, env)
    assert ck.cache_key(tree, dict(env)) == base                  # deterministic
    assert ck.cache_key(tree, {**env, field: value}) != base


def test_a_different_distribution_changes_the_key(tree):
    env = ck.environment()
    base = ck.cache_key(tree, env)
    other = [d if not d.startswith("sympy==") else "sympy==0.0.1" for d in env["distributions"]]
    assert ck.cache_key(tree, {**env, "distributions": other}) != base
    missing = [d for d in env["distributions"] if not d.startswith("sympy==")]
    assert ck.cache_key(tree, {**env, "distributions": missing}) != base


def test_the_package_sources_change_the_key_and_nothing_else_does(tree):
    env = ck.environment()
    base = ck.cache_key(tree, env)
    (tree / "notes.txt").write_text("not code\n")                 # outside dlmath/
    (tree / "dlmath" / "data.json").write_text("{}\n")            # not a .py file
    assert ck.cache_key(tree, env) == base
    (tree / "dlmath" / "sub" / "b.py").write_text("y = 3\n")
    assert ck.cache_key(tree, env) != base


def test_the_environment_torch_spec_is_read_from_the_variable(monkeypatch):
    monkeypatch.setenv("TORCH_SPEC", "torch==2.13.0")
    assert ck.environment()["torch_spec"] == "torch==2.13.0"


def test_smoke_import_names_the_broken_module(monkeypatch):
    ck.smoke_import(("math", "json"))
    monkeypatch.setitem(sys.modules, "sympy", None)               # `import sympy` now fails
    with pytest.raises(RuntimeError, match="'sympy', which fails to import"):
        ck.smoke_import(("math", "sympy"))
