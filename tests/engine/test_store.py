"""dlmath.engine.store: canonical keys, code fingerprints, atomic and corruption-proof entries."""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from dlmath.engine import store
from dlmath.conv import conv_output_size
from dlmath.engine.store import Ref


# --- Ref and canonical JSON -----------------------------------------------------------

def module_level(a: int = 1, b: int = 2) -> int:
    return a * 10 + b


@dataclasses.dataclass(frozen=True)
class Knobs:
    width: int
    rates: tuple[float, ...] = (0.1, 0.2)


def test_ref_identity_ignores_keyword_order_and_calls_through():
    r1, r2 = Ref(module_level, a=3, b=4), Ref(module_level, b=4, a=3)
    assert r1 == r2 and hash(r1) == hash(r2)
    assert r1() == 34 and r1(b=5) == 35
    assert r1 != Ref(module_level, a=3, b=5)
    assert r1.replace(b=9) == Ref(module_level, a=3, b=9)
    assert {r1: "x"}[r2] == "x"
    with pytest.raises(AttributeError):
        r1.fn = print


def test_ref_rejects_unnameable_callables_and_values():
    def nested():
        return 0

    with pytest.raises(TypeError, match="module level"):
        Ref(nested)
    with pytest.raises(TypeError, match="module level"):
        Ref(lambda: 0)
    with pytest.raises(TypeError, match="no canonical form"):
        Ref(module_level, a=torch.zeros(1))
    with pytest.raises(TypeError, match="no canonical form"):
        Ref(module_level, a=object())
    with pytest.raises(TypeError, match="callable"):
        Ref(3)


def test_a_module_is_not_a_callable():
    with pytest.raises(TypeError, match="fn must be a callable"):
        Ref(store)


def test_canonical_forms_are_idempotent_and_order_free():
    value = {"b": Knobs(3), "a": [1, 2.5, None, "x", (True,)], "r": Ref(module_level, a=1),
             "f": conv_output_size, "d": torch.float32}
    c = store.canonical(value)
    assert store.canonical(c) == c
    assert c["b"] == {"__dataclass__": f"{__name__}:Knobs", "width": 3, "rates": [0.1, 0.2]}
    assert c["f"] == {"__callable__": "dlmath.conv:conv_output_size"}
    assert store.spec_key(value) == store.spec_key(dict(reversed(list(value.items()))))
    assert store.spec_key({"lr": 0.1}) != store.spec_key({"lr": 0.1 + 1e-12})
    with pytest.raises(TypeError, match="non-str key"):
        store.canonical({1: 2})


def test_spec_key_is_the_same_in_another_process():
    code = textwrap.dedent("""
        from dlmath.engine.store import Ref, spec_key
        from dlmath.conv import conv_output_size
        print(spec_key({"m": Ref(conv_output_size, kernel=3), "x": (1, 2.5)}))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert out == store.spec_key({"m": Ref(conv_output_size, kernel=3), "x": (1, 2.5)})


# --- code fingerprints ----------------------------------------------------------------

@pytest.fixture
def temp_package(tmp_path, monkeypatch):
    """A package on sys.path whose modules the test rewrites."""
    pkg = tmp_path / "fp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(textwrap.dedent("""
        from dlmath.conv import conv_output_size

        def width(n=4):
            return conv_output_size(n, 3, padding=1)
    """))
    (pkg / "other.py").write_text("def unrelated():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for name in [m for m in sys.modules if m.startswith("fp_pkg")]:
        del sys.modules[name]


def test_fingerprint_follows_the_source_of_the_modules_involved(temp_package):
    models = importlib.import_module("fp_pkg.models")
    importlib.import_module("fp_pkg.other")
    sources = store.code_sources(models.width)
    assert {"fp_pkg.models", "dlmath.conv", "torch"} <= set(sources)
    assert "fp_pkg.other" not in sources                 # not imported by models.py
    before = store.code_fingerprint(Ref(models.width, n=5))

    (temp_package / "other.py").write_text("def unrelated():\n    return 2\n")
    assert store.code_fingerprint(Ref(models.width, n=5)) == before

    path = temp_package / "models.py"
    path.write_text(path.read_text() + "\n# a comment changes the source\n")
    after = store.code_fingerprint(Ref(models.width, n=5))
    assert after != before
    path.write_text(path.read_text().replace("\n# a comment changes the source\n", ""))
    assert store.code_fingerprint(Ref(models.width, n=5)) == before


def test_dlmath_imports_are_followed_transitively():
    from dlmath.models import zoo

    sources = store.code_sources(zoo.three_block_cnn)
    # zoo imports dlmath.params and dlmath.conv; params imports dlmath.params._rules
    assert {"dlmath.models.zoo", "dlmath.conv", "dlmath.params", "dlmath.params._rules"} <= set(sources)
    assert sources["torch"] == f"torch=={torch.__version__}"
    assert sources["sympy"].startswith("sympy==")


# --- files: atomic writes, corrupt entries ----------------------------------------------

def test_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLMATH_CACHE_DIR", str(tmp_path / "c"))
    assert store.cache_dir() == tmp_path / "c"
    assert store.entry_path("train", "k") == tmp_path / "c" / "train" / "k.pt"
    monkeypatch.delenv("DLMATH_CACHE_DIR")
    assert store.cache_dir() == Path("~/.cache/dlmath").expanduser()


def test_save_load_round_trip(tmp_path):
    payload = {"meta": "{}", "states": [{"w": torch.arange(4.0)}], "n": 3, "x": None}
    store.save("ns", "key1", payload, root=tmp_path)
    back = store.load("ns", "key1", root=tmp_path)
    assert back["n"] == 3 and back["x"] is None and torch.equal(back["states"][0]["w"],
                                                                torch.arange(4.0))
    assert store.load("ns", "other", root=tmp_path) is None
    with pytest.raises(ValueError, match="key must be"):
        store.save("ns", "a/b", payload, root=tmp_path)


def test_a_crash_mid_write_leaves_no_entry(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def dying_fsync(fd):
        raise KeyboardInterrupt                   # the bytes are written, then the build dies

    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        store.save("ns", "k", {"a": 1}, root=tmp_path)
    assert not store.entry_path("ns", "k", tmp_path).exists()
    assert list((tmp_path / "ns").iterdir()) == []    # the temporary file was removed
    assert store.load("ns", "k", root=tmp_path) is None

    monkeypatch.setattr(os, "fsync", real_fsync)
    payload, hit = store.cached("ns", {"x": 1}, lambda: {"a": 2}, root=tmp_path)
    assert (payload["a"], hit) == (2, False)


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04truncated zip"])
def test_a_corrupt_entry_is_ignored_and_recomputed(tmp_path, content):
    spec = {"what": "corrupt"}
    payload, hit = store.cached("ns", spec, lambda: {"v": 1}, root=tmp_path)
    assert not hit
    (path,) = (tmp_path / "ns").glob("*.pt")
    path.write_bytes(content)
    with pytest.warns(store.StoreWarning, match="not an entry of this store's format 2"):
        assert store.load("ns", path.stem, root=tmp_path) is None
    # a stray temporary file from a killed build is never read
    (tmp_path / "ns" / f".{path.stem}.junk.tmp").write_bytes(b"junk")
    with pytest.warns(store.StoreWarning, match=path.name):
        payload, hit = store.cached("ns", spec, lambda: {"v": 2}, root=tmp_path)
    assert (payload["v"], hit) == (2, False)
    assert store.cached("ns", spec, lambda: {"v": 3}, root=tmp_path) == ({"v": 2}, True)


def test_a_truncated_real_entry_is_ignored(tmp_path):
    path = store.save("ns", "k", {"w": torch.randn(1000)}, root=tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(store.StoreWarning, match="truncated"):
        assert store.load("ns", "k", root=tmp_path) is None


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_entries_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"payload\['x'\] is a _Evil"):
        store.save("ns", "evil", {"x": _Evil()}, root=tmp_path)
    # an entry whose hashes are right but whose pickle names os.system is still refused
    with monkeypatch.context() as m:
        m.setattr(store, "_check_payload", lambda value, where: None)
        store.save("ns", "evil", {"x": _Evil()}, root=tmp_path)
    with pytest.warns(store.StoreWarning, match="UnpicklingError"):
        assert store.load("ns", "evil", root=tmp_path) is None
    assert not (tmp_path / "pwned.txt").exists()


def test_foreign_format_is_a_miss(tmp_path):
    path = store.entry_path("ns", "old", tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"__format__": 1, "x": 1}, path)        # the store's format 1
    with pytest.warns(store.StoreWarning, match="an older format"):
        assert store.load("ns", "old", root=tmp_path) is None


def test_cached_key_changes_with_the_code(tmp_path, temp_package):
    models = importlib.import_module("fp_pkg.models")
    spec = Ref(models.width, n=6)
    calls = []

    def compute():
        calls.append(1)
        return {"w": spec()}

    assert store.cached("ns", spec, compute, root=tmp_path) == ({"w": 6}, False)
    assert store.cached("ns", spec, compute, root=tmp_path) == ({"w": 6}, True)
    path = temp_package / "models.py"
    path.write_text(path.read_text() + "\n# changed\n")
    assert store.cached("ns", spec, compute, root=tmp_path)[1] is False
    assert len(calls) == 2
    assert store.cached("ns", spec, compute, root=tmp_path, refresh=True)[1] is False
    assert len(calls) == 3


# --- code defined in a notebook: __main__ callables --------------------------------------

_NOTEBOOK = {
    "imports": "import torch\nfrom torch import nn\n",
    "width": "WIDTH = 8\nSCALE = (0.5, 2.0)\n",
    "helper": textwrap.dedent("""
        def hidden(width):
            layer = nn.Linear(4, width)
            return nn.Sequential(layer, nn.ReLU())
    """),
    "model": textwrap.dedent("""
        if True:                                  # an indented definition: dedented first
            def model(classes=2):
                model = hidden(WIDTH)              # a local named like the global below
                for _ in range(2):
                    pass
                return nn.Sequential(model, nn.Linear(WIDTH, classes))
    """),
    "unrelated": "def unrelated():\n    return WIDTH + 1\n\nmodel_out = object()\n",
}


@pytest.fixture
def notebook():
    """Run cells the way IPython does: each compiled under its own file name in linecache."""
    import linecache

    names = []

    def run_cells(**changes):
        namespace = {"__name__": "__main__"}
        for cell, source in {**_NOTEBOOK, **changes}.items():
            filename = f"<notebook-cell-{len(names)}-{cell}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            names.append(filename)
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- a cell
        return namespace

    yield run_cells
    for filename in names:
        linecache.cache.pop(filename, None)


def _main_fp(namespace, name="model"):
    return store.code_fingerprint(Ref(namespace[name], classes=2))


def test_a_notebook_function_with_an_indented_body_is_fingerprinted(notebook):
    ns = notebook()
    sources = store.code_sources(Ref(ns["model"]))
    assert {"__main__:model", "__main__:hidden", "__main__:WIDTH", "torch"} <= set(sources)
    assert sources["__main__:WIDTH"] == "8"
    # only what the code reads as a global: not the local `model`, not `unrelated`, not
    # SCALE, not builtins (range), not `model_out`
    assert not {"__main__:unrelated", "__main__:SCALE", "__main__:model_out",
                "__main__:range"} & set(sources)
    # the same code run again (new cells, new namespace) has the same fingerprint
    assert _main_fp(notebook()) == _main_fp(ns)


def test_editing_a_helper_or_a_constant_changes_the_fingerprint(notebook):
    before = _main_fp(notebook())
    gelu = _NOTEBOOK["helper"].replace("nn.ReLU()", "nn.GELU()")
    assert _main_fp(notebook(helper=gelu)) != before
    assert _main_fp(notebook(width="WIDTH = 16\nSCALE = (0.5, 2.0)\n")) != before
    assert _main_fp(notebook()) == before


def test_an_unrelated_edit_keeps_the_fingerprint(notebook):
    before = _main_fp(notebook())
    changed = notebook(unrelated="def unrelated():\n    return 0\n\nmodel_out = [1]\n",
                       width="WIDTH = 8\nSCALE = (1.0,)\n")
    assert _main_fp(changed) == before


def test_helpers_are_followed_transitively_and_values_by_content(notebook):
    cells = {
        "helper": textwrap.dedent("""
            from dataclasses import dataclass

            @dataclass(frozen=True)
            class Knobs:                       # no methods: found among the cells' sources
                act: str = "relu"

            class Block(nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(4, width), activation(KNOBS.act))

                def forward(self, x):
                    return self.body(x) * GAIN

            def activation(name):
                return {"relu": nn.ReLU, "tanh": nn.Tanh}[name]()

            KNOBS = Knobs()
            GAIN = torch.ones(1)

            def hidden(width):
                return Block(width)
        """)}
    ns = notebook(**cells)
    sources = store.code_sources(Ref(ns["model"]))
    assert {"__main__:Block", "__main__:activation", "__main__:KNOBS", "__main__:Knobs",
            "__main__:GAIN"} <= set(sources)
    before = _main_fp(ns)
    assert _main_fp(notebook(**cells)) == before
    for old, new in [('"tanh": nn.Tanh', '"tanh": nn.Sigmoid'),    # two helpers down
                     ("* GAIN", "* GAIN * 2"),                        # a method's body
                     ("GAIN = torch.ones(1)", "GAIN = torch.full((1,), 2.0)"),  # a tensor's values
                     ('act: str = "relu"', 'act: str = "tanh"')]:     # a methodless class
        assert _main_fp(notebook(helper=cells["helper"].replace(old, new))) != before, new


def test_a_network_built_in_another_cell_counts_by_its_weights(notebook):
    cells = {"helper": "PRETRAINED = nn.Linear(4, 8)\n\ndef hidden(width):\n"
                       "    return PRETRAINED\n"}
    ns = notebook(**cells)
    before = _main_fp(ns)
    assert _main_fp(ns) == before
    with torch.no_grad():
        ns["PRETRAINED"].weight[0, 0] += 1.0                # trained further in a later cell
    assert _main_fp(ns) != before


def test_a_global_without_a_stable_description_is_a_clear_error(notebook):
    ns = notebook(width="WIDTH = object()\n")
    with pytest.raises(TypeError, match=r"__main__:WIDTH.*memory address.*keyword argument"):
        _main_fp(ns)


# --- seeing and pruning the store --------------------------------------------------------

def test_entries_list_namespace_key_size_time_and_code(tmp_path, temp_package):
    models = importlib.import_module("fp_pkg.models")
    spec = Ref(models.width, n=6)
    store.cached("ns", spec, lambda: {"w": spec()}, root=tmp_path)
    store.cached("other", {"x": 1}, lambda: {"v": 1}, root=tmp_path)
    listed = store.entries(tmp_path)
    assert [(e.namespace, e.status) for e in listed] == [("ns", "ok"), ("other", "ok")]
    ident = store.identity(spec)
    e = listed[0]
    assert (e.key, e.code, e.lineage) == (store.spec_key(ident), ident["code"],
                                          store.spec_key(ident["spec"]))
    assert e.size == e.path.stat().st_size and abs(e.mtime - time.time()) < 600
    assert e.created is not None and e.derived_from == ()
    assert [e.namespace for e in store.entries(tmp_path, "other")] == ["other"]
    assert store.entries(tmp_path / "nowhere") == []


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_prune_removes_old_versions_and_unused_entries(tmp_path, temp_package):
    models = importlib.import_module("fp_pkg.models")
    six, seven = Ref(models.width, n=6), Ref(models.width, n=7)
    store.cached("ns", six, lambda: {"w": six()}, root=tmp_path)          # version 1
    (v1,) = store.entries(tmp_path)
    _age(v1.path, 3600)
    source = temp_package / "models.py"
    source.write_text(source.read_text() + "\n# version 2\n")
    store.cached("ns", six, lambda: {"w": six()}, root=tmp_path)          # same lineage
    store.cached("ns", seven, lambda: {"w": seven()}, root=tmp_path)      # another lineage
    assert len(store.entries(tmp_path)) == 3
    assert [e.path for e in store.prune(tmp_path, keep=1)] == [v1.path]   # a dry run ...
    assert v1.path.exists()
    assert [e.path for e in store.prune(tmp_path, keep=1, dry_run=False)] == [v1.path]
    assert not v1.path.exists() and len(store.entries(tmp_path)) == 2
    assert store.cached("ns", six, lambda: {"w": 0}, root=tmp_path) == ({"w": 6}, True)
    # unused for a while: by seconds, text or timedelta
    seven_path = next(e.path for e in store.entries(tmp_path) if e.lineage ==
                      store.spec_key(store.canonical(seven)))
    _age(seven_path, 2 * 86400)
    assert store.prune(tmp_path, older_than="3d") == []
    for age in (86400, "1d", "24h", datetime.timedelta(days=1)):
        assert [e.path for e in store.prune(tmp_path, older_than=age)] == [seven_path]
    with pytest.raises(ValueError, match="older_than must be a duration"):
        store.prune(tmp_path, older_than="soon")
    with pytest.raises(ValueError, match="keep must be >= 1"):
        store.prune(tmp_path, keep=0)


def test_a_hit_counts_as_a_use(tmp_path):
    store.cached("ns", {"a": 1}, lambda: {"x": 1}, root=tmp_path)
    (e,) = store.entries(tmp_path)
    _age(e.path, 10 * 86400)
    assert store.cached("ns", {"a": 1}, lambda: {"x": 2}, root=tmp_path) == ({"x": 1}, True)
    assert store.prune(tmp_path, older_than="1d") == []


def test_the_command_line_lists_and_prunes(tmp_path, capsys):
    store.cached("ns", {"a": 1}, lambda: {"x": 1}, root=tmp_path)
    junk = tmp_path / "ns" / ".abc.k1ll3d.tmp"
    junk.write_bytes(b"half an entry")
    _age(junk, 3600)
    out = subprocess.run([sys.executable, "-m", "dlmath.engine.store", "list", "--root",
                          str(tmp_path)], capture_output=True, text=True, check=True)
    assert "1 entry, 1 temporary file, 0 damaged" in out.stdout and out.stderr == ""
    assert "temporary" in out.stdout and out.stdout.splitlines()[0].split()[:3] == \
        ["namespace", "key", "size"]
    assert store.main(["prune", "--root", str(tmp_path)]) == 0
    assert "would remove (dry run; --apply to remove): 1 file," in capsys.readouterr().out
    assert junk.exists()
    store.main(["prune", "--root", str(tmp_path), "--apply", "--keep", "1"])
    assert "removed: 1 file," in capsys.readouterr().out and not junk.exists()
    store.main(["list", "--root", str(tmp_path), "--verify"])
    assert "1 entry, 0 temporary files, 0 damaged" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        store.main(["prune", "--root", str(tmp_path), "--older-than", "soon"])
    assert "older_than must be a duration" in capsys.readouterr().err


def test_prune_keeps_the_newest_evaluation_of_each_model(tmp_path):
    from types import SimpleNamespace

    # two versions of one trained model (same lineage, new key), and another model
    v1, v2 = (SimpleNamespace(key=c * 64, lineage="a" * 64) for c in "12")
    other = SimpleNamespace(key="3" * 64, lineage="b" * 64)
    for parent in (v1, v2, other):
        store.cached("eval", {"angles": [0, 90]}, lambda: {"acc": 1.0}, derived_from=[parent],
                     root=tmp_path)
    old = next(e for e in store.entries(tmp_path) if e.derived_from == (v1.key,))
    _age(old.path, 60)
    assert [e.derived_from for e in store.prune(tmp_path, keep=1)] == [(v1.key,)]
    # parents given by key only: each its own lineage, never pruned by keep
    store.cached("eval", {"angles": [0, 90]}, lambda: {"acc": 1.0}, derived_from=["4" * 64],
                 root=tmp_path)
    assert [e.derived_from for e in store.prune(tmp_path, keep=1)] == [(v1.key,)]
