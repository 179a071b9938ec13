"""How long ``dlmath.params.trace_shapes`` takes on a VGG-16-sized model (target: under 2 s).

VGG-16 has 13 convolutions, 5 poolings and 3 fully connected layers (138 million
parameters).  It is traced with a numeric input (3×224×224) and a symbolic one (3×H×W),
once with torchvision's adaptive pooling (the classifier's size is fixed) and once without
(the first classifier layer becomes a formula in H and W).  The model is built on the
``meta`` device: tracing reads shapes, not weights.
"""

from __future__ import annotations

import statistics
import time

import sympy as sp
import torch

from dlmath.models import zoo
from dlmath.params import count_params, trace_shapes

TARGET_S = 2.0
REPEATS = 3


def run() -> list[dict]:
    H, W = sp.symbols("H W", integer=True, positive=True)
    rows = []
    for adaptive in (True, False):
        with torch.device("meta"):
            model = zoo.vgg16(adaptive_pool=adaptive)
        for label, shape in (("3x224x224", (3, 224, 224)), ("3xHxW", (3, H, W))):
            times = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                trace = trace_shapes(model, shape)
                times.append(time.perf_counter() - start)
            total = trace.total_params
            if not isinstance(total, int):
                total = total.subs({H: 224, W: 224})
            assert total == count_params(model), "trace and torch disagree"
            rows.append({
                "model": "vgg16" + ("" if adaptive else " (no adaptive pool)"),
                "input": label,
                "rows": len(trace.rows),
                "params": str(trace.total_params),
                "median_s": statistics.median(times),
                "max_s": max(times),
                "target_s": TARGET_S,
                "ok": max(times) < TARGET_S,
            })
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
