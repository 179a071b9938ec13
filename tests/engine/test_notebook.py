"""Training from a notebook: factories defined in cells, cached by the code of the cells they use.

A real notebook (nbformat) is written to a temporary directory and executed with nbclient in
the ``dlmath`` Jupyter kernel (``make install`` registers it).  Its model factory calls a
helper defined in another cell and reads a module-level constant ``WIDTH``; the results store
must re-train after an edit of either, and load the stored result when the code is as before.
"""

from __future__ import annotations

import json
import textwrap
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

KERNEL = "dlmath"

CELLS = {
    "imports": """
        import json

        import torch
        from torch import nn

        from dlmath.data import DataSplits, TensorSplit
        from dlmath.engine import Adam, Ref, TrainConfig, run
    """,
    "width": """
        WIDTH = 8
    """,
    "helper": """
        def hidden(width):
            layers = [nn.Linear(4, width), nn.ReLU()]
            return nn.Sequential(*layers)
    """,
    "data": """
        def points(n=96, seed=0):
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 4, generator=g)
            y = (x[:, 0] + x[:, 1] > 0).long()
            a, b = n // 2, 3 * n // 4
            return DataSplits(TensorSplit(x[:a], y[:a]), TensorSplit(x[a:b], y[a:b]),
                              TensorSplit(x[b:], y[b:]), info={"classes": 2})
    """,
    "model": """
        def model(classes=2):
            body = hidden(WIDTH)
            return nn.Sequential(body, nn.Linear(WIDTH, classes))
    """,
    "unrelated": """
        def unrelated():
            return "not used by the model"
    """,
    "train": """
        config = TrainConfig(model=Ref(model), data=Ref(points), optimizer=Adam(lr=0.01),
                             epochs=2, batch_size=16, seeds=(0, 1), device="cpu")
        result = run(config, cache=True, progress=False)
        net = result.model(0)
        print(json.dumps({"cached": result.cached, "key": config.key(),
                          "width": net[0][0].out_features, "act": type(net[0][1]).__name__,
                          "accuracy": float(result.test["accuracy"].mean())}))
    """,
}


def _kernel_or_skip() -> None:
    try:
        kernelspec.KernelSpecManager().get_kernel_spec(KERNEL)
    except kernelspec.NoSuchKernel:
        pytest.skip(f"the Jupyter kernel {KERNEL!r} is not installed; `make install` (which "
                    f"`make test` runs first) registers it")


def _write(path, **edits: tuple[str, str]):
    """Write the notebook, each edit replacing a text in one cell; read it back from disk."""
    cells = []
    for name, source in CELLS.items():
        source = textwrap.dedent(source).strip()
        if name in edits:
            old, new = edits[name]
            assert old in source, (name, old)
            source = source.replace(old, new)
        cells.append(nbformat.v4.new_code_cell(source, metadata={"name": name}))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": KERNEL, "display_name": "Python (dlmath)", "language": "python"}})
    nbformat.write(nb, path)
    return nbformat.read(path, as_version=4)


def _execute(client, nb) -> dict:
    """Run every cell of ``nb`` in the client's kernel; the JSON the last cell printed."""
    client.nb = nb
    for index, cell in enumerate(nb.cells):
        client.execute_cell(cell, index)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


def test_a_model_factory_defined_in_a_notebook_is_cached_by_the_code_it_uses(tmp_path,
                                                                             monkeypatch):
    _kernel_or_skip()
    monkeypatch.setenv("DLMATH_CACHE_DIR", str(tmp_path / "cache"))   # the kernels inherit it
    path = tmp_path / "train.ipynb"
    original = _write(path)
    timings = {}

    def client_for(nb):
        return nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120,
                                       resources={"metadata": {"path": str(tmp_path)}})

    # 1. a fresh kernel trains; 2. another fresh kernel (another process, another hash
    # seed, other cell file names) finds the stored result
    t = time.perf_counter()
    client = client_for(original)
    with client.setup_kernel():
        first = _execute(client, original)
    timings["first run (train)"] = time.perf_counter() - t
    assert first["cached"] is False
    assert (first["width"], first["act"]) == (8, "ReLU")

    t = time.perf_counter()
    client = client_for(original)
    with client.setup_kernel():
        again = _execute(client, original)
        timings["second kernel (hit)"] = time.perf_counter() - t
        assert again["cached"] is True and again["key"] == first["key"]
        assert again["accuracy"] == first["accuracy"]

        # 3. the helper's source is edited (another activation): re-trained, with the edit
        t = time.perf_counter()
        tanh = _execute(client, _write(path, helper=("nn.ReLU()", "nn.Tanh()")))
        timings["helper edited"] = time.perf_counter() - t
        assert tanh["cached"] is False and tanh["act"] == "Tanh"
        assert tanh["key"] != first["key"]

        # 4. the constant is edited: re-trained at the new width
        t = time.perf_counter()
        wide = _execute(client, _write(path, width=("WIDTH = 8", "WIDTH = 12")))
        timings["WIDTH edited"] = time.perf_counter() - t
        assert wide["cached"] is False and wide["width"] == 12
        assert len({first["key"], tanh["key"], wide["key"]}) == 3

        # 5. back to the original code (and an edit of a function the model does not use):
        # the first result again, loaded, in the kernel that ran the edited cells
        t = time.perf_counter()
        back = _execute(client, _write(path, unrelated=("not used", "still not used")))
        timings["restored (hit)"] = time.perf_counter() - t
        assert back["cached"] is True and back["key"] == first["key"]
        assert (back["width"], back["act"]) == (8, "ReLU")

    entries = sorted(p.name for p in (tmp_path / "cache" / "train").glob("*.pt"))
    assert len(entries) == 3                                   # original, tanh, wide
    print("timings (s):", {k: round(v, 2) for k, v in timings.items()})
