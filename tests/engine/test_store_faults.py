"""Fault injection on the results store: damaged, foreign, copied and half-written entries,
concurrent writers, and every ingredient of a key.

The rule under test: an entry is served only if it is byte for byte what was written for
exactly the request; anything else is recomputed with a :class:`StoreWarning` naming the
entry and the reason, and never raises.  The entry format is read here from its
description in the store's docstring (magic line, JSON header line, SHA-256 line, payload),
so the forgeries below do not reuse the store's own writer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dlmath.data import mnist
from dlmath.data.tensors import DataSplits, TensorSplit
from dlmath.engine import SGD, Ref, TrainConfig, run, store

MAGIC = b"DLMATH-STORE 2\n"


# --- helpers --------------------------------------------------------------------------------

def split_entry(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(magic, header line, digest line, payload) of an entry file, from the format."""
    magic, rest = data[:len(MAGIC)], data[len(MAGIC):]
    header, rest = rest.split(b"\n", 1)
    digest, payload = rest.split(b"\n", 1)
    return magic, header, digest, payload


def forge(path: Path, *, header=None, payload: bytes | None = None, fix_payload_hash=True,
          fix_header_hash=True, magic=MAGIC) -> None:
    """Rewrite an entry: change its header (a function of the dict) and/or its payload."""
    _, line, digest, old_payload = split_entry(path.read_bytes())
    head = json.loads(line)
    if payload is not None and fix_payload_hash:
        head["payload"].update(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    if header is not None:
        header(head)
    new_line = json.dumps(head, sort_keys=True, separators=(",", ":")).encode() \
        if (header is not None or fix_payload_hash and payload is not None) else line
    new_digest = hashlib.sha256(new_line).hexdigest().encode() if fix_header_hash else digest
    path.write_bytes(magic + new_line + b"\n" + new_digest + b"\n"
                     + (old_payload if payload is None else payload))


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def caught(fn, *matches: str):
    """``fn()``, asserting that it raised nothing and warned one StoreWarning per match
    (one at least), each containing its text."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = fn()
    messages = [str(w.message) for w in seen if issubclass(w.category, store.StoreWarning)]
    assert len(messages) == max(1, len(matches)), messages
    for text, message in zip(matches, messages):
        assert text in message, message
    return value


def quiet(fn):
    """``fn()``, asserting that it warned nothing about the store."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", store.StoreWarning)
        return fn()


SPEC = {"experiment": "faults", "n": 3}


def compute_weights():
    g = torch.Generator().manual_seed(0)
    return {"weights": torch.randn(40, generator=g), "meta": json.dumps({"accuracy": 0.75}),
            "states": [{"w": torch.arange(6.0).reshape(2, 3)}]}


@pytest.fixture
def entry(tmp_path):
    """A stored entry: (root, identity, key, path, its bytes)."""
    assert not store.cached("ns", SPEC, compute_weights, root=tmp_path)[1]
    ident = store.identity(SPEC)
    key = store.spec_key(ident)
    path = store.entry_path("ns", key, tmp_path)
    return tmp_path, ident, key, path, path.read_bytes()


# --- damaged files ----------------------------------------------------------------------------

def test_every_single_bit_flip_is_caught_before_unpickling(entry, monkeypatch):
    root, ident, key, path, good = entry
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    offsets = range(len(good))                                  # every byte, a bit of each
    for i in offsets:
        data = bytearray(good)
        data[i] ^= 1 << (i % 8)
        path.write_bytes(data)
        assert caught(lambda: store.load("ns", key, root, identity=ident)) is None, i
    assert loads == []                 # no damaged byte ever reached the unpickler
    # and at the end, through cached: a recompute, then the repaired entry is a hit
    monkeypatch.undo()
    payload, hit = caught(lambda: store.cached("ns", SPEC, compute_weights, root=root))
    assert not hit and torch.equal(payload["weights"], compute_weights()["weights"])
    assert quiet(lambda: store.cached("ns", SPEC, compute_weights, root=root))[1]
    assert len(good) > 1500, "the entry should span a header and a real payload"


@pytest.mark.parametrize("bit", range(8))
def test_each_bit_of_payload_bytes_is_caught(entry, bit):
    root, ident, key, path, good = entry
    start = len(good) - len(split_entry(good)[3])
    for i in range(start, len(good), 37):
        data = bytearray(good)
        data[i] ^= 1 << bit
        path.write_bytes(data)
        assert caught(lambda: store.load("ns", key, root, identity=ident),
                      "SHA-256 mismatch") is None


def test_truncation_anywhere_is_caught(entry):
    root, ident, key, path, good = entry
    _, line, _, payload = split_entry(good)
    cuts = sorted({0, 1, 5, len(MAGIC) - 1, len(MAGIC), len(MAGIC) + 10,
                   len(MAGIC) + len(line), len(MAGIC) + len(line) + 30,
                   len(good) - len(payload), len(good) - len(payload) + 1,
                   len(good) - 100, len(good) - 22, len(good) - 1})
    for n in cuts:
        path.write_bytes(good[:n])
        assert caught(lambda: store.load("ns", key, root, identity=ident)) is None, n
    path.write_bytes(good + b"\0")                                  # padded, too
    assert caught(lambda: store.load("ns", key, root, identity=ident), "padded") is None


@pytest.mark.parametrize("garbage", [b"", b"\n\n\n", b"PK\x03\x04" + bytes(500),
                                     MAGIC + b"{}\n" + b"0" * 64 + b"\n",
                                     MAGIC + b"not json\n",
                                     MAGIC + bytes(range(256)) * 8])
def test_garbage_is_caught(entry, garbage):
    root, ident, key, path, _ = entry
    path.write_bytes(garbage)
    assert caught(lambda: store.load("ns", key, root, identity=ident)) is None
    assert not caught(lambda: store.cached("ns", SPEC, compute_weights, root=root))[1]
    assert quiet(lambda: store.cached("ns", SPEC, compute_weights, root=root))[1]


def test_random_garbage_payloads_are_caught(entry):
    root, ident, key, path, _ = entry
    rng = np.random.default_rng(0)
    for _ in range(20):
        junk = rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
        forge(path, payload=junk, fix_payload_hash=False)
        assert caught(lambda: store.load("ns", key, root, identity=ident)) is None


def test_an_unreadable_path_is_a_miss_not_an_error(tmp_path):
    ident = store.identity(SPEC)
    path = store.entry_path("ns", store.spec_key(ident), tmp_path)
    path.mkdir(parents=True)                                   # a directory where a file goes
    payload, hit = caught(lambda: store.cached("ns", SPEC, compute_weights, root=tmp_path),
                          "IsADirectoryError", "could not write")
    assert not hit and "weights" in payload


def test_a_store_that_cannot_be_written_still_returns_the_result(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    payload, hit = caught(lambda: store.cached("ns", SPEC, compute_weights,
                                               root=tmp_path / "file"), "could not write")
    assert not hit and payload["meta"] == compute_weights()["meta"]


# --- forged, copied and foreign entries -------------------------------------------------------

def test_forged_payloads_are_caught(entry):
    root, ident, key, path, good = entry
    forged = compute_weights()
    forged["meta"] = json.dumps({"accuracy": 1.0})                    # forged metrics
    forged["weights"] = torch.full((40,), float("nan"))               # all-NaN weights
    # written over the old payload, as torch.save would
    forge(path, payload=torch_bytes(forged), fix_payload_hash=False)
    assert caught(lambda: store.load("ns", key, root, identity=ident),
                  "payload is damaged") is None
    # with the payload's hash updated in the header, but not the header's own hash
    path.write_bytes(good)
    forge(path, payload=torch_bytes(forged), fix_header_hash=False)
    assert caught(lambda: store.load("ns", key, root, identity=ident),
                  "header is damaged") is None
    # written with the store's low-level save, which does not know what it was for
    store.save("ns", key, forged, root)
    assert caught(lambda: store.load("ns", key, root, identity=ident),
                  "stored for another spec") is None
    # a new payload of another structure, hashes and all
    path.write_bytes(good)
    forge(path, payload=torch_bytes({**forged, "states": [{"w": torch.zeros(3)}]}))
    assert caught(lambda: store.load("ns", key, root, identity=ident),
                  "structure it was written with") is None


def test_an_entry_copied_under_another_key_is_not_served(tmp_path):
    a, b = {"lr": 0.5}, {"lr": 0.1}
    store.cached("ns", a, lambda: {"lr": 0.5}, root=tmp_path)
    key_a, key_b = (store.spec_key(store.identity(s)) for s in (a, b))
    path_b = store.entry_path("ns", key_b, tmp_path)
    path_b.write_bytes(store.entry_path("ns", key_a, tmp_path).read_bytes())
    payload, hit = caught(lambda: store.cached("ns", b, lambda: {"lr": 0.1}, root=tmp_path),
                          f"written as ns/{key_a}")
    assert (payload, hit) == ({"lr": 0.1}, False)
    # ... also when the forger rewrites the key in the header (and its hash)
    path_b.write_bytes(store.entry_path("ns", key_a, tmp_path).read_bytes())
    forge(path_b, header=lambda h: h.update(key=key_b))
    assert caught(lambda: store.load("ns", key_b, tmp_path, identity=store.identity(b)),
                  "does not hash to its key") is None
    # (a forger who also rewrites the identity, knowing the format, is not stopped: the
    # store guards against damage and mistakes, and holds no secret to sign entries with)
    # namespaces are checked as well
    other = store.entry_path("other", key_a, tmp_path)
    other.parent.mkdir()
    other.write_bytes(store.entry_path("ns", key_a, tmp_path).read_bytes())
    assert caught(lambda: store.load("other", key_a, tmp_path), "written as ns/") is None


def test_the_spec_asked_for_is_compared_with_the_stored_one(tmp_path):
    ident = store.identity({"lr": 0.1})
    key = store.spec_key(ident)
    store.save("ns", key, {"x": 1}, tmp_path, identity=ident)
    wrong = {**ident, "spec": {"lr": 0.5}}
    assert caught(lambda: store.load("ns", key, tmp_path, identity=wrong),
                  "spec.lr is 0.1 in the entry but 0.5 was asked for") is None
    assert quiet(lambda: store.load("ns", key, tmp_path, identity=ident)) == {"x": 1}
    with pytest.raises(ValueError, match="is not spec_key"):
        store.save("ns", "other-key", {"x": 1}, tmp_path, identity=ident)


@pytest.mark.parametrize("change, reason", [
    ({"magic": b"DLMATH-STORE 1\n"}, "an older format"),
    ({"header": lambda h: h.update(format=3)}, "format 3"),
    ({"header": lambda h: h["payload"].update(schema="{}")}, "structure"),
    ({"payload": torch_bytes([1, 2, 3])}, "not a dict"),
    ({"payload": torch_bytes({1: torch.zeros(2)})}, "not a dict"),
    ({"header": lambda h: h.pop("payload")}, "KeyError"),
])
def test_wrong_format_or_schema_is_caught(entry, change, reason):
    root, ident, key, path, _ = entry
    forge(path, **change)
    assert caught(lambda: store.load("ns", key, root, identity=ident), reason) is None


def test_old_format_files_are_listed_as_damaged_and_pruned(tmp_path):
    path = store.entry_path("train", "0" * 64, tmp_path)
    path.parent.mkdir()
    torch.save({"__format__": 1, "meta": "{}", "states": []}, path)   # the store's format 1
    (e,) = store.entries(tmp_path)
    assert e.status.startswith("damaged") and "older format" in e.status
    assert store.prune(tmp_path, dry_run=False) == [e] and not path.exists()


# --- writers that die, writers that race ------------------------------------------------------

def test_a_left_temporary_file_is_ignored_listed_and_pruned(entry):
    root, _, key, path, good = entry
    tmp = path.parent / f".{key}.k1ll3d.tmp"
    tmp.write_bytes(good[: len(good) // 2])                   # a writer killed mid-save
    path.unlink()
    assert not quiet(lambda: store.cached("ns", SPEC, compute_weights, root=root))[1]
    assert quiet(lambda: store.cached("ns", SPEC, compute_weights, root=root))[1]
    listed = {e.path: e for e in store.entries(root)}
    assert listed[tmp].status == "temporary" and listed[tmp].key == key
    assert listed[path].status == "ok"
    assert store.prune(root) == []                            # fresh: maybe a live writer
    old = time.time() - 3 * 3600
    os.utime(tmp, (old, old))
    assert [e.path for e in store.prune(root)] == [tmp] and tmp.exists()   # a dry run
    assert [e.path for e in store.prune(root, dry_run=False)] == [tmp] and not tmp.exists()
    # save() sweeps temporaries abandoned for over an hour in its directory
    tmp.write_bytes(b"junk")
    os.utime(tmp, (old, old))
    store.save("ns", "another", {"x": 1}, root)
    assert not tmp.exists()


_KILLED_WRITER = textwrap.dedent("""
    import sys, torch
    from dlmath.engine import store
    root = sys.argv[1]
    store.save("ns", "big", {"v": torch.tensor(1), "w": torch.zeros(1)}, root)
    print("ready", flush=True)
    w = torch.arange(6_000_000, dtype=torch.float32)
    while True:
        store.save("ns", "big", {"v": torch.tensor(2), "w": w}, root)
""")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:                   # renamed into place meanwhile
        return 0


def test_a_writer_killed_with_sigkill_leaves_a_whole_entry(tmp_path):
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL here")
    folder = tmp_path / "ns"
    killed_mid_write = 0
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 60
            while not any(_size(p) for p in folder.glob(".*.tmp")):
                assert time.monotonic() < deadline, "the writer never wrote"
                time.sleep(0.0005)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        payload = quiet(lambda: store.load("ns", "big", tmp_path))   # whole, never damaged
        assert int(payload["v"]) in (1, 2)
        assert payload["w"].shape == ((1,) if int(payload["v"]) == 1 else (6_000_000,))
        left = list(folder.glob(".*.tmp"))
        assert len(left) <= 1
        if left:
            killed_mid_write += 1
            os.utime(left[0], (0, 0))
            assert [e.status for e in store.prune(tmp_path, dry_run=False)] == ["temporary"]
            break
    assert killed_mid_write, "never caught the writer mid-write in 5 tries"


def _racing_writer(root: str, who: int, start, rounds: int) -> None:
    """One of two processes that store the same key again and again."""
    start.wait()
    for _ in range(rounds):
        store.cached("race", {"same": "key"},
                     lambda: {"who": who, "w": torch.full((300_000,), float(who))},
                     root=root, refresh=True, device="cpu")


def test_two_concurrent_writers_leave_a_valid_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_racing_writer, args=(str(tmp_path), who, start, 25))
             for who in (1, 2)]
    for p in procs:
        p.start()
    start.wait()
    key = store.spec_key(store.identity({"same": "key"}, device="cpu"))
    seen = set()
    with warnings.catch_warnings():                 # a reader while they write: whole or none
        warnings.simplefilter("error", store.StoreWarning)
        while any(p.is_alive() for p in procs):
            payload = store.load("race", key, tmp_path)
            if payload is not None:
                assert torch.equal(payload["w"], torch.full((300_000,), float(payload["who"])))
                seen.add(payload["who"])
            time.sleep(0.002)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    payload, hit = quiet(lambda: store.cached("race", {"same": "key"}, lambda: {"who": 0},
                                              root=tmp_path, device="cpu"))
    assert hit and payload["who"] in (1, 2)
    assert [e.status for e in store.entries(tmp_path)] == ["ok"]      # no temporaries left


# --- every ingredient of the key, and nothing else ------------------------------------------

def flat_linear(pixels: int = 20, classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(pixels, classes))


def tiny_data(n: int = 48) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 4, 5, generator=g), torch.arange(n) % 10
    return DataSplits(TensorSplit(x[:32], y[:32]), TensorSplit(x[32:40], y[32:40]),
                      TensorSplit(x[40:], y[40:]))


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(model=Ref(flat_linear), data=Ref(tiny_data), optimizer=SGD(lr=0.1),
                       epochs=1, batch_size=16, seeds=(0,), device="cpu").replace(**changes)


def test_a_train_entry_copied_under_another_configs_key_is_not_served(tmp_path):
    fast, slow = tiny_config(optimizer=SGD(lr=0.5)), tiny_config(optimizer=SGD(lr=0.1))
    src = store.entry_path("train", run(fast, root=tmp_path).key, tmp_path)
    dst = store.entry_path("train", slow.key(), tmp_path)
    dst.write_bytes(src.read_bytes())
    result = caught(lambda: run(slow, root=tmp_path), "written as train/")
    assert not result.cached
    assert result.states[0]["1.weight"].ne(run(fast, root=tmp_path).states[0]["1.weight"]).any()


def test_the_default_dtype_is_part_of_the_key(tmp_path):
    c = tiny_config()
    zeros = lambda: {"x": torch.zeros(1)}
    first = run(c, root=tmp_path)
    assert first.states[0]["1.weight"].dtype == torch.float32
    assert not store.cached("ns", {"n": 1}, zeros, root=tmp_path)[1]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        wide = quiet(lambda: run(c, root=tmp_path))
        assert not wide.cached and wide.states[0]["1.weight"].dtype == torch.float64
        assert quiet(lambda: run(c, root=tmp_path)).cached
        payload, hit = quiet(lambda: store.cached("ns", {"n": 1}, zeros, root=tmp_path))
        assert not hit and payload["x"].dtype == torch.float64
    finally:
        torch.set_default_dtype(old)
    again = run(c, root=tmp_path)
    assert again.cached and again.key == first.key
    payload, hit = store.cached("ns", {"n": 1}, zeros, root=tmp_path)
    assert hit and payload["x"].dtype == torch.float32


def test_the_python_version_is_part_of_the_key(tmp_path, monkeypatch):
    c = tiny_config()
    key, ident = c.key(), store.identity(SPEC)
    monkeypatch.setattr(platform, "python_version", lambda: "3.99.0")
    assert c.key() != key and store.identity(SPEC) != ident
    assert store.identity(SPEC)["environment"]["python"].endswith(" 3.99.0")
    monkeypatch.undo()
    assert c.key() == key and store.identity(SPEC) == ident


CUDA_FLAGS = [(torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32"),
              (torch.backends.cudnn, "deterministic"), (torch.backends.cudnn, "benchmark")]


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch answering as if an H100 were there (nothing runs on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    return monkeypatch


@pytest.mark.parametrize("module, flag", CUDA_FLAGS, ids=["matmul.allow_tf32", "cudnn.allow_tf32",
                                                          "cudnn.deterministic",
                                                          "cudnn.benchmark"])
def test_gpu_flags_are_part_of_a_gpu_key_and_only_of_it(fake_gpu, module, flag):
    gpu, cpu = tiny_config(device="cuda"), tiny_config(device="cpu")
    keys, cpu_env = (gpu.key(), cpu.key()), store.environment("cpu")
    old = getattr(module, flag)
    try:
        setattr(module, flag, not old)
        assert gpu.key() != keys[0]                       # a GPU result depends on it
        changed = {k for k, v in store.environment("cpu").items() if cpu_env[k] != v}
        if flag == "allow_tf32" and module is torch.backends.cuda.matmul:
            # torch ties this flag to the global float32 matmul precision, which CPU
            # matmuls read too: that, and only that, changes a CPU key
            assert changed == {"float32_matmul_precision"}
        else:
            assert not changed and cpu.key() == keys[1]   # a CPU result does not
    finally:
        setattr(module, flag, old)
    assert (gpu.key(), cpu.key()) == keys


def test_the_gpu_model_is_part_of_a_gpu_key(fake_gpu, tmp_path):
    gpu, cpu = tiny_config(device="cuda"), tiny_config(device="cpu")
    keys = gpu.key(), cpu.key()
    env = store.environment("cuda")
    assert (env["gpu"], env["capability"], env["cuda.matmul.fp32"], env["cudnn.conv.fp32"]) \
        == ("NVIDIA H100", "9.0", "ieee", "tf32")               # torch's defaults
    fake_gpu.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100")
    assert gpu.key() != keys[0] and cpu.key() == keys[1]
    # store.cached for a computation on the GPU: a miss on another GPU, a hit back on this one
    compute = lambda: {"x": 1}
    assert not store.cached("ns", SPEC, compute, device="cuda", root=tmp_path)[1]
    fake_gpu.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    assert not store.cached("ns", SPEC, compute, device="cuda", root=tmp_path)[1]
    assert store.cached("ns", SPEC, compute, device="cuda", root=tmp_path)[1]


def _mnist_writers():
    """``write_mnist`` and ``idx_bytes`` of the loader tests (an IDX writer from the spec)."""
    path = Path(__file__).resolve().parents[1] / "data" / "test_loaders.py"
    spec = importlib.util.spec_from_file_location("_loader_test_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_contents_of_data_files_under_a_loader_root_are_part_of_the_key(tmp_path):
    helpers = _mnist_writers()
    data_root, other = tmp_path / "mnist", tmp_path / "elsewhere"
    data_root.mkdir()
    other.mkdir()
    helpers.write_mnist(data_root, n_train=60, n_test=20, rows=4, cols=5)
    c = tiny_config(data=Ref(mnist, root=str(data_root)))
    first = run(c, root=tmp_path / "store")
    assert not first.cached and run(c, root=tmp_path / "store").cached
    # unrelated changes: a new mtime with the same bytes, a file elsewhere: still a hit
    os.utime(data_root / "train-labels-idx1-ubyte")
    (other / "notes.txt").write_text("unrelated")
    assert quiet(lambda: run(c, root=tmp_path / "store")).cached
    # every label rewritten to 0, same size, within the same second: a miss
    labels = data_root / "train-labels-idx1-ubyte"
    before = labels.stat().st_size
    labels.write_bytes(helpers.idx_bytes(np.zeros(60, dtype=np.uint8)))
    assert labels.stat().st_size == before
    relabelled = quiet(lambda: run(c, root=tmp_path / "store"))
    assert not relabelled.cached and relabelled.key != first.key
    assert not torch.equal(relabelled.states[0]["1.weight"], first.states[0]["1.weight"])
    assert run(c, root=tmp_path / "store").cached
    # a pathlib.Path root counts the same way
    as_path = tiny_config(data=Ref(mnist, root=data_root))
    assert as_path.key() == c.key()
    assert store.input_files(as_path.data) == store.input_files(c.data)


def test_a_data_factory_reading_a_named_file_is_keyed_by_its_bytes(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("1 2 3")
    assert store.input_files({"label": str(path)}) == {}     # not named like a path
    assert store.input_files(Ref(np.loadtxt, fname=path)) == \
        store.input_files(Ref(np.loadtxt, fname=str(path)))     # a Path, or a str as fname
    spec = {"file": str(path), "columns": 3}
    digest = store.input_files(spec)[str(path)]
    assert digest == f"sha256:{hashlib.sha256(b'1 2 3').hexdigest()}"

    def compute():
        return {"sum": sum(float(v) for v in path.read_text().split())}

    assert store.cached("ns", spec, compute, root=tmp_path)[0] == {"sum": 6.0}
    assert store.cached("ns", spec, compute, root=tmp_path)[1]
    path.write_text("1 2 4")
    assert store.cached("ns", spec, compute, root=tmp_path) == ({"sum": 7.0}, False)
    path.unlink()
    assert store.input_files(spec) == {str(path): "missing"}
