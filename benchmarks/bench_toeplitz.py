"""Benchmark of dlmath.toeplitz.conv_matrix: construction time and memory, and the cost of
applying the sparse matrix against conv2d.

Rows:
- ``build``: constructing M for a one-channel H x W image and a 5x5 kernel with "same"
  padding 2, vectorised (sparse COO, sparse CSR, dense) against a straightforward reference
  that loops over output pixels and kernel taps in Python (defined here, not in the package);
- ``apply``: ``M @ vec(x)`` with the sparse matrix against ``torch.nn.functional.conv2d``.

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

SIZES = (16, 32, 64, 128)
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


def _row(task, n, method, seconds, nbytes, dense_bytes, vs_reference=None, note=""):
    return {"task": task, "input": f"1x{n}x{n}", "kernel": f"{KERNEL}x{KERNEL}", "method": method,
            "seconds": seconds, "bytes": nbytes, "dense_bytes": dense_bytes,
            "vs_loop": vs_reference, "note": note}


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run()
    finally:
        torch.set_num_threads(threads)


def _run() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(1, 1, KERNEL, KERNEL, dtype=torch.float64, generator=g)
    rows = []
    for n in SIZES:
        shape = (1, n, n)
        dense_bytes = (n * n) ** 2 * 8  # "same" padding: H'W' = HW
        repeat = 5 if n <= 64 else 3
        t_coo, coo = _best(lambda: conv_matrix(weight, shape, padding=PADDING, sparse=True), repeat)
        t_csr, csr = _best(lambda: conv_matrix(weight, shape, padding=PADDING, sparse="csr"),
                           repeat)

        loop_iters = n * n * KERNEL * KERNEL
        if loop_iters <= LOOP_LIMIT_ENTRIES:
            t_loop, ref = _best(lambda: loop_reference(weight, shape, PADDING), 1 if n >= 64 else 3)
            assert torch.equal(ref.indices(), coo.indices())
            assert torch.equal(ref.values(), coo.values())
            rows.append(_row("build", n, "loop reference (sparse COO)", t_loop, _nbytes(ref),
                             dense_bytes, 1.0, "Python loops over output pixels and taps"))
        else:
            t_loop = None
            rows.append(_row("build", n, "loop reference (sparse COO)", None, None, dense_bytes,
                             None, f"skipped: {loop_iters:,} Python iterations"))
        rows.append(_row("build", n, "conv_matrix sparse COO", t_coo, _nbytes(coo), dense_bytes,
                         t_loop / t_coo if t_loop else None,
                         f"{coo._nnz():,} non-zeros; equal to the loop reference" if t_loop
                         else f"{coo._nnz():,} non-zeros"))
        rows.append(_row("build", n, "conv_matrix sparse CSR", t_csr, _nbytes(csr), dense_bytes,
                         t_loop / t_csr if t_loop else None, ""))
        if dense_bytes <= DENSE_LIMIT_BYTES:
            t_dense, dense = _best(lambda: conv_matrix(weight, shape, padding=PADDING),
                                   3 if n < 64 else 1)
            assert torch.equal(dense, coo.to_dense())
            rows.append(_row("build", n, "conv_matrix dense", t_dense, _nbytes(dense), dense_bytes,
                             t_loop / t_dense if t_loop else None, "equal to the sparse result"))
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

    print_table("toeplitz", run())
