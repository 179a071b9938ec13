"""The MLP chapter's experiments: the autograd oracle, error grids, untrained nets, run summaries.

Private to the book (chapter :ref:`ch-mlp-backprop`): the chapter shows the calls and their
configuration, the loops live here.  The network, its hand-written gradients and the
training loop are in :mod:`dlmath.mlp`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlmath import mlp
from dlmath._book.stats import welch

__all__ = ["GRADIENTS", "autograd_gradients", "worst_gradient_errors", "gradient_error_table",
           "UntrainedStats", "untrained_statistics", "loss_window", "first_reaching", "compared"]

#: The gradients :func:`dlmath.mlp.mlp_backward` returns, in the order of the derivation.
GRADIENTS = ("dy_tilde", "dW_y", "db_y", "dh", "dh_tilde", "dW_h", "db_h")


def autograd_gradients(params: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor,
                       loss: str = "ce") -> dict[str, torch.Tensor]:
    """Every gradient of the two-layer MLP by ``torch.nn.Linear``, torch's losses and autograd.

    The independent oracle for :func:`dlmath.mlp.mlp_backward`: the same parameters copied into
    ``torch.nn.Linear`` layers, the cross-entropy (``loss="ce"``) or the squared error of the
    probabilities (``loss="mse"``, summed over classes, averaged over the batch), and
    ``retain_grad`` on the intermediate tensors.  Keys: :data:`GRADIENTS`.

    Examples
    --------
    >>> p = mlp.init_mlp(2, 3, 2, seed=0)
    >>> g = autograd_gradients(p, torch.zeros(1, 2, dtype=torch.float64), torch.tensor([1]))
    >>> tuple(g["dW_h"].shape), tuple(g["dW_y"].shape)
    ((3, 2), (2, 3))
    """
    if loss not in ("ce", "mse"):
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    n_h, n_x = params["W_h"].shape
    n_y = params["W_y"].shape[0]
    lin1 = torch.nn.Linear(n_x, n_h).double()
    lin2 = torch.nn.Linear(n_h, n_y).double()
    with torch.no_grad():
        lin1.weight.copy_(params["W_h"]), lin1.bias.copy_(params["b_h"])
        lin2.weight.copy_(params["W_y"]), lin2.bias.copy_(params["b_y"])
    h_tilde = lin1(X)
    h = torch.tanh(h_tilde)
    y_tilde = lin2(h)
    for t in (h_tilde, h, y_tilde):
        t.retain_grad()
    if loss == "ce":
        L = F.cross_entropy(y_tilde, y)
    else:
        L = F.mse_loss(torch.softmax(y_tilde, 1), F.one_hot(y, n_y).double(), reduction="sum") / len(X)
    L.backward()
    return {"dy_tilde": y_tilde.grad, "dW_y": lin2.weight.grad, "db_y": lin2.bias.grad,
            "dh": h.grad, "dh_tilde": h_tilde.grad, "dW_h": lin1.weight.grad, "db_h": lin1.bias.grad}


def worst_gradient_errors(n: int = 150, seed: int = 0) -> dict[tuple[str, str], float]:
    """Largest relative error of :func:`dlmath.mlp.mlp_backward` against autograd, per gradient.

    ``n`` random networks and batches (batch 1 to 8, up to 6 inputs, 8 hidden units and 6
    classes, weights of standard deviation 0.8), for both losses.  Keys ``(loss, gradient)``.
    """
    gen = torch.Generator().manual_seed(seed)
    worst = {(loss, g): 0.0 for loss in ("ce", "mse") for g in GRADIENTS}
    for i in range(n):
        B, n_x, n_h = (int(torch.randint(1, hi, (1,), generator=gen)) for hi in (9, 7, 9))
        n_y = int(torch.randint(2, 7, (1,), generator=gen))
        params = mlp.init_mlp(n_x, n_h, n_y, seed=i, std=0.8)
        X = torch.randn(B, n_x, generator=gen, dtype=torch.float64)
        y = torch.randint(n_y, (B,), generator=gen)
        for loss in ("ce", "mse"):
            mine, ref = mlp.mlp_backward(params, X, y, loss=loss), autograd_gradients(params, X, y, loss)
            for g in GRADIENTS:
                rel = float((mine[g] - ref[g]).norm() / ref[g].norm().clamp(min=1e-300))
                worst[(loss, g)] = max(worst[(loss, g)], rel)
    return worst


def gradient_error_table(worst: dict[tuple[str, str], float]):
    """The errors of :func:`worst_gradient_errors` as a Markdown table, one row per gradient."""
    from IPython.display import Markdown

    shapes = {"dy_tilde": "$(B, n_y)$", "dW_y": "$(n_y, n_h)$", "db_y": "$(n_y)$",
              "dh": "$(B, n_h)$", "dh_tilde": "$(B, n_h)$", "dW_h": "$(n_h, n_x)$", "db_h": "$(n_h)$"}
    rows = ["| gradient | shape | cross-entropy | squared error |", "|---|---|---|---|"]
    rows += [f"| `{g}` | {shapes[g]} | {worst[('ce', g)]:.1e} | {worst[('mse', g)]:.1e} |"
             for g in GRADIENTS]
    return Markdown("\n".join(rows))


@dataclass(frozen=True)
class UntrainedStats:
    """Means over untrained networks, with standard errors (SE) of the means."""

    logit_variance: float
    loss: float
    loss_se: float
    accuracy: float
    accuracy_se: float


def untrained_statistics(X: torch.Tensor, y: torch.Tensor, n_classes: int, std: float | None,
                         nets: int = 200, n_h: int = 16) -> UntrainedStats:
    """Loss, accuracy and logit variance of ``nets`` untrained MLPs (seeds ``0..nets-1``).

    ``std`` is the standard deviation of every initial weight (``None``: Glorot).  The logit
    variance is taken across the classes for each input, then averaged.
    """
    losses, accs, variances = [], [], []
    for s in range(nets):
        p = mlp.init_mlp(X.shape[1], n_h, n_classes, seed=s, std=std)
        logits = mlp.mlp_forward(p, X)["y_tilde"]
        losses.append(float(mlp.mlp_loss(p, X, y)))
        accs.append(float((logits.argmax(1) == y).double().mean()))
        variances.append(float(logits.var(dim=1).mean()))
    se = lambda v: float(np.std(v)) / math.sqrt(nets)  # noqa: E731
    return UntrainedStats(float(np.mean(variances)), float(np.mean(losses)), se(losses),
                          float(np.mean(accs)), se(accs))


def loss_window(h: mlp.TrainHistory, start: int = 3000, stop: int = 4000) -> tuple[float, float]:
    """Mean and standard deviation of one run's losses recorded between two example counts."""
    v = [L for e, L in zip(h.examples_seen, h.loss) if start < e <= stop]
    return float(np.mean(v)), float(np.std(v))


def first_reaching(h: mlp.TrainHistory, level: float, by: str = "examples_seen"):
    """The first ``h.examples_seen`` (or ``h.wall_time``, ``by="wall_time"``) with loss <= level.

    ``None`` if the run never gets there.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> h = SimpleNamespace(loss=[0.7, 0.3, 0.1], examples_seen=[0, 10, 20], wall_time=[0, 1, 2])
    >>> first_reaching(h, 0.3), first_reaching(h, 0.05)
    (10, None)
    """
    if by not in ("examples_seen", "wall_time"):
        raise ValueError(f"by must be 'examples_seen' or 'wall_time', got {by!r}")
    return next((x for x, v in zip(getattr(h, by), h.loss) if v <= level), None)


def compared(a: Sequence[float], b: Sequence[float], more: str, less: str, same: str,
             digits: int = 2, unit: str = "") -> str:
    """Welch's test of per-seed values of two runs (``a`` minus ``b``), in words that follow it.

    ``more`` if ``a`` is detectably larger, ``less`` if detectably smaller, else ``same``,
    followed by the difference and the test's p-value in parentheses.
    """
    d = welch(a, b)
    words = (more if d.diff > 0 else less) if d.detectable() else same
    return (f"{words} (difference {d.text(scale=1, unit=unit, digits=digits)}, Welch's test "
            f"over {d.n_a} and {d.n_b} seeds, {d.p_text()})")
