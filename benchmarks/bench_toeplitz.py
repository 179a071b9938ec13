"""Benchmark of dlmath.toeplitz.conv_matrix: construction time and memory, and the cost of
applying the sparse matrix against conv2d.

Rows:
- ``build``: constructing M for a one-channel H x W image and a 5x5 kernel with "same"
  padding 2, vectorised (sparse COO, sparse CSR, dense) against two references defined
  here, not in the package: a straightforward loop over output pixels and kernel taps in
  Python, and the textbook dense construction (one Toeplitz block per kernel row, each
  filled diagonal by diagonal, tiled into the doubly blocked matrix); and against the floor,
  ``write non-zeros``: fresh index and value tensors filled from the finished ones and made a
  COO tensor, i.e. only the cost of writing the non-zeros;
- ``apply``: ``M @ vec(x)`` with the sparse matrix against ``torch.nn.functional.conv2d``.

``vs_textbook`` is the time of the textbook dense construction divided by the method's
(above 1: faster); ``x_write`` is the method's time in multiples of ``write non-zeros``.
The second table, ``toeplitz targets``, checks issue 22's targets: sparse COO at least as
fast as the textbook dense construction at every size, and at least 50x faster at 64x64.
The methods are timed in interleaved rounds after a warm-up call (a first, cold call pays
for fresh memory and looks much slower than it is), best of the rounds.

``bytes`` is the memory of the result (sparse: indices and values; dense: the whole
matrix); ``dense_bytes`` is what the dense float64 matrix would take, (H'W')(HW) * 8.
Everything runs on the CPU with one torch thread, float64; times are the best of several
runs.  Run with ``python benchmarks/run.py toeplitz``.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from dlmath.toeplitz import conv_matrix, vec

SIZES = (16, 32, 48, 64, 128)
TARGET_AT = 64  # the size at which the sparse build must beat the textbook by TARGET_X
TARGET_X = 50.0
KERNEL = 5
PADDING = 2
DENSE_LIMIT_BYTES = 512 * 2**20  # build dense matrices only up to 512 MiB
LOOP_LIMIT_ENTRIES = 2_000_000  # Python loop iterations allowed for the reference


def loop_reference(weight: torch.Tensor, shape: tuple[int, int, int], padding: int) -> torch.Tensor:
    """M by plain loops (zero padding, stride 1, row-major), returned as sparse COO."""
    c_out, c_in, kh, kw = weight.shape
    _, h, w = shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    wl = weight.tolist()
    rows, cols, vals = [], [], []
    for o in range(c_out):
        for u in range(ho):
            for v in range(wo):
                i = (o * ho + u) * wo + v
                for c in range(c_in):
                    for a in range(kh):
                        r = u + a - padding
                        if not 0 <= r < h:
                            continue
                        for b in range(kw):
                            q = v + b - padding
                            if 0 <= q < w:
                                rows.append(i)
                                cols.append((c * h + r) * w + q)
                                vals.append(wl[o][c][a][b])
    indices = torch.tensor([rows, cols], dtype=torch.int64)
    values = torch.tensor(vals, dtype=weight.dtype)
    size = (c_out * ho * wo, c_in * h * w)
    return torch.sparse_coo_tensor(indices, values, size, check_invariants=False).coalesce()


def textbook_dense(weight: torch.Tensor, shape: tuple[int, int, int], padding: int) -> torch.Tensor:
    """M the textbook way (one channel, stride 1, zero padding): for each kernel row a, the
    Toeplitz block T_a (W' x W, constant along diagonals: T_a[v, v + b - p] = w[a, b]) is
    copied into block (u, u + a - p) of the H' x H grid of blocks."""
    k = weight[0, 0]
    kh, kw = k.shape
    _, h, w = shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    M = torch.zeros(ho * wo, h * w, dtype=weight.dtype)
    for a in range(kh):
        T = torch.zeros(wo, w, dtype=weight.dtype)
        for b in range(kw):
            T.diagonal(b - padding).fill_(k[a, b])
        for u in range(ho):
            r = u + a - padding
            if 0 <= r < h:
                M[u * wo:(u + 1) * wo, r * w:(r + 1) * w] = T
    return M


def write_nonzeros(m: torch.Tensor) -> torch.Tensor:
    """The floor of any construction of ``m`` (sparse COO): fresh index and value tensors,
    filled by copying the finished ones, made a COO tensor."""
    indices, values = m.indices(), m.values()
    return torch.sparse_coo_tensor(torch.empty_like(indices).copy_(indices),
                                   torch.empty_like(values).copy_(values), m.shape,
                                   is_coalesced=True, check_invariants=False)


def _best_each(fns: dict, repeat: int, rounds: int = 2) -> dict[str, float]:
    """Best time of each function: in each round, one warm-up call and ``repeat`` timed calls
    of each function in turn (rounds, so that a burst of load elsewhere hits all alike)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _nbytes(m: torch.Tensor) -> int:
    if m.layout == torch.sparse_coo:
        parts = (m.indices(), m.values())
        return sum(t.numel() * t.element_size() for t in parts)
    if m.layout == torch.sparse_csr:
        parts = (m.crow_indices(), m.col_indices(), m.values())
        return sum(t.numel() * t.element_size() for t in parts)
    return m.numel() * m.element_size()


def _row(task, n, method, seconds, nbytes, dense_bytes, vs_reference=None, note="",
         textbook=None, write=None):
    return {"task": task, "input": f"1x{n}x{n}", "kernel": f"{KERNEL}x{KERNEL}", "method": method,
            "seconds": seconds, "bytes": nbytes, "dense_bytes": dense_bytes,
            "vs_loop": vs_reference,
            "vs_textbook": textbook / seconds if textbook and seconds else None,
            "x_write": seconds / write if write and seconds else None, "note": note}


def targets(rows: list[dict]) -> list[dict]:
    """Issue 22's targets for the sparse build, from the ``build`` rows."""
    out = []
    for n in SIZES:
        by = {r["method"]: r for r in rows if r["task"] == "build" and r["input"] == f"1x{n}x{n}"}
        coo, book = by["conv_matrix sparse COO"], by.get("textbook dense (Toeplitz blocks)")
        if book is None or book["seconds"] is None:
            continue
        need = TARGET_X if n == TARGET_AT else 1.0
        speedup = book["seconds"] / coo["seconds"]
        out.append({"input": f"1x{n}x{n}", "sparse COO s": coo["seconds"],
                    "textbook dense s": book["seconds"], "speed-up": speedup,
                    "target": f">= {need:g}x", "met": speedup >= need,
                    "write non-zeros s": by["write non-zeros"]["seconds"],
                    "sparse / write": coo["x_write"]})
    return out


def run() -> dict[str, list[dict]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _run()
        return {"toeplitz": rows, "toeplitz targets": targets(rows)}
    finally:
        torch.set_num_threads(threads)


def _run() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(1, 1, KERNEL, KERNEL, dtype=torch.float64, generator=g)
    rows = []
    for n in SIZES:
        shape = (1, n, n)
        dense_bytes = (n * n) ** 2 * 8  # "same" padding: H'W' = HW
        coo = conv_matrix(weight, shape, padding=PADDING, sparse=True)
        csr = conv_matrix(weight, shape, padding=PADDING, sparse="csr")
        fns = {"coo": lambda: conv_matrix(weight, shape, padding=PADDING, sparse=True),
               "csr": lambda: conv_matrix(weight, shape, padding=PADDING, sparse="csr"),
               "write": lambda: write_nonzeros(coo)}
        if dense_bytes <= DENSE_LIMIT_BYTES:
            assert torch.equal(textbook_dense(weight, shape, PADDING), coo.to_dense())
            fns["textbook"] = lambda: textbook_dense(weight, shape, PADDING)
        t = _best_each(fns, 10 if n <= 32 else 5)
        t_coo, t_csr, t_write, t_book = t["coo"], t["csr"], t["write"], t.get("textbook")

        loop_iters = n * n * KERNEL * KERNEL
        if loop_iters <= LOOP_LIMIT_ENTRIES:
            t_loop, ref = _best(lambda: loop_reference(weight, shape, PADDING), 1 if n >= 64 else 3)
            assert torch.equal(ref.indices(), coo.indices())
            assert torch.equal(ref.values(), coo.values())
            rows.append(_row("build", n, "loop reference (sparse COO)", t_loop, _nbytes(ref),
                             dense_bytes, 1.0, "Python loops over output pixels and taps",
                             t_book, t_write))
        else:
            t_loop = None
            rows.append(_row("build", n, "loop reference (sparse COO)", None, None, dense_bytes,
                             None, f"skipped: {loop_iters:,} Python iterations"))
        rows.append(_row("build", n, "conv_matrix sparse COO", t_coo, _nbytes(coo), dense_bytes,
                         t_loop / t_coo if t_loop else None,
                         f"{coo._nnz():,} non-zeros; equal to the loop reference" if t_loop
                         else f"{coo._nnz():,} non-zeros", t_book, t_write))
        rows.append(_row("build", n, "conv_matrix sparse CSR", t_csr, _nbytes(csr), dense_bytes,
                         t_loop / t_csr if t_loop else None, "", t_book, t_write))
        rows.append(_row("build", n, "write non-zeros", t_write, _nbytes(coo), dense_bytes,
                         t_loop / t_write if t_loop else None,
                         "the floor: copy the finished indices and values into new tensors",
                         t_book, t_write))
        if t_book is not None:
            rows.append(_row("build", n, "textbook dense (Toeplitz blocks)", t_book,
                             dense_bytes, dense_bytes, t_loop / t_book if t_loop else None,
                             "one block per kernel row, tiled; equal to the sparse result",
                             t_book, t_write))
        else:
            rows.append(_row("build", n, "textbook dense (Toeplitz blocks)", None, None,
                             dense_bytes, None,
                             f"skipped: the dense matrix needs {dense_bytes / 2**30:.1f} GiB"))
        if dense_bytes <= DENSE_LIMIT_BYTES:
            t_dense, dense = _best(lambda: conv_matrix(weight, shape, padding=PADDING),
                                   3 if n < 64 else 1)
            assert torch.equal(dense, coo.to_dense())
            rows.append(_row("build", n, "conv_matrix dense", t_dense, _nbytes(dense), dense_bytes,
                             t_loop / t_dense if t_loop else None, "equal to the sparse result",
                             t_book, t_write))
            del dense
        else:
            rows.append(_row("build", n, "conv_matrix dense", None, None, dense_bytes, None,
                             f"skipped: the dense matrix needs {dense_bytes / 2**30:.1f} GiB"))

        x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=g)
        t_conv, z = _best(lambda: F.conv2d(x, weight, padding=PADDING), 20)
        t_mv_coo, y_coo = _best(lambda: coo @ vec(x[0]), 10)
        t_mv_csr, y_csr = _best(lambda: csr @ vec(x[0]), 10)
        assert torch.allclose(y_coo, vec(z[0]), rtol=1e-12, atol=1e-12)
        assert torch.allclose(y_csr, vec(z[0]), rtol=1e-12, atol=1e-12)
        rows.append(_row("apply", n, "conv2d", t_conv, None, dense_bytes, None, "the reference"))
        rows.append(_row("apply", n, "sparse COO M @ vec(x)", t_mv_coo, _nbytes(coo), dense_bytes,
                         None, f"{t_mv_coo / t_conv:.1f}x the time of conv2d"))
        rows.append(_row("apply", n, "sparse CSR M @ vec(x)", t_mv_csr, _nbytes(csr), dense_bytes,
                         None, f"{t_mv_csr / t_conv:.1f}x the time of conv2d"))
    return rows


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    for title, table in run().items():
        print_table(title, table)
