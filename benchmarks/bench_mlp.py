"""The cost of every gradient of a deep tanh MLP: backpropagation vs finite differences.

One row per depth (width 16, batch 32, one CPU thread): CPU seconds for one forward pass,
for backpropagation (``dlmath.mlp.deep_mlp_backprop``) and for forward finite differences
(``dlmath.mlp.finite_difference_grad``, one pass per parameter), and both gradient costs in
units of a forward pass.  Chapter: ch-mlp-backprop.
"""

from __future__ import annotations

import torch

from dlmath.mlp import gradient_timings


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = gradient_timings([1, 2, 4, 8], width=16, batch=32, n_classes=3, repeats=3)
    finally:
        torch.set_num_threads(threads)
    for r in rows:
        r["backprop_passes"] = r["backprop_s"] / r["forward_s"]
        r["finite_diff_in_passes"] = r["finite_diff_s"] / r["forward_s"]
    return rows
