"""Tests of dlmath._book.mlp_experiments, the MLP chapter's experiment helpers.

Oracles: torch.func (a functional autograd path independent of the nn.Linear oracle), the
definitions of the statistics (NumPy), and hand-made training histories.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlmath import mlp
from dlmath._book import mlp_experiments as mx


def _functional_grads(params, X, y):
    """Gradients of the cross-entropy by torch.func.grad on a functional forward pass."""
    def loss(p):
        h = torch.tanh(X @ p["W_h"].T + p["b_h"])
        return F.cross_entropy(h @ p["W_y"].T + p["b_y"], y)
    return torch.func.grad(loss)(params)


@pytest.mark.parametrize("seed", range(5))
def test_autograd_gradients_agree_with_torch_func(seed):
    params = mlp.init_mlp(3, 5, 4, seed=seed, std=0.8)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(4, (6,), generator=gen)
    mine = mx.autograd_gradients(params, X, y)
    ref = _functional_grads(params, X, y)
    for k in ("W_h", "b_h", "W_y", "b_y"):
        torch.testing.assert_close(mine["d" + k], ref[k])
    assert set(mine) == set(mx.GRADIENTS)


def test_autograd_gradients_rejects_an_unknown_loss():
    with pytest.raises(ValueError, match="loss"):
        mx.autograd_gradients(mlp.init_mlp(2, 2, 2), torch.zeros(1, 2, dtype=torch.float64),
                              torch.tensor([0]), loss="hinge")


def test_worst_gradient_errors_are_rounding_errors_for_both_losses():
    worst = mx.worst_gradient_errors(n=5, seed=3)
    assert set(worst) == {(loss, g) for loss in ("ce", "mse") for g in mx.GRADIENTS}
    assert max(worst.values()) < 1e-12


def test_untrained_statistics_match_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(3, (40,), generator=gen)
    stats = mx.untrained_statistics(X, y, 3, std=0.5, nets=4, n_h=5)
    losses = [float(F.cross_entropy(mlp.mlp_forward(mlp.init_mlp(2, 5, 3, seed=s, std=0.5), X)["y_tilde"], y))
              for s in range(4)]
    assert math.isclose(stats.loss, np.mean(losses), rel_tol=1e-12)
    assert math.isclose(stats.loss_se, np.std(losses) / 2, rel_tol=1e-12)
    assert 0 <= stats.accuracy <= 1 and stats.logit_variance > 0


def test_loss_window_and_first_reaching_on_a_hand_made_history():
    h = SimpleNamespace(examples_seen=[0, 2000, 3500, 4000, 5000], loss=[1.0, 0.5, 0.3, 0.1, 0.05],
                        wall_time=[0.0, 1.0, 2.0, 3.0, 4.0])
    mean, sd = mx.loss_window(h)                     # the points at 3500 and 4000
    assert math.isclose(mean, 0.2) and math.isclose(sd, 0.1)
    assert mx.first_reaching(h, 0.3) == 3500
    assert mx.first_reaching(h, 0.3, by="wall_time") == 2.0
    assert mx.first_reaching(h, 0.01) is None
    with pytest.raises(ValueError, match="by"):
        mx.first_reaching(h, 0.3, by="steps")


def test_compared_words_follow_the_test():
    far = mx.compared([10.0, 10.1, 9.9], [1.0, 1.1, 0.9], "more", "less", "same")
    assert far.startswith("more (difference")
    near = mx.compared([1.0, 2.0, 3.0], [1.1, 2.1, 2.9], "more", "less", "same")
    assert near.startswith("same (difference")
