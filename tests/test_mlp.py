"""dlmath.mlp: the hand-written backward pass against autograd, finite differences and sympy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from dlmath import mlp
from dlmath.data import toy


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: one thread avoids thread-pool contention on a shared CPU
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _instance(seed, B, n_x, n_h, n_y):
    gen = torch.Generator().manual_seed(seed)
    params = mlp.init_mlp(n_x, n_h, n_y, seed=seed % 1000, std=0.8)
    params["b_h"] += 0.3 * torch.randn(n_h, generator=gen, dtype=torch.float64)
    params["b_y"] += 0.3 * torch.randn(n_y, generator=gen, dtype=torch.float64)
    X = torch.randn(B, n_x, generator=gen, dtype=torch.float64)
    y = torch.randint(n_y, (B,), generator=gen)
    return params, X, y


def _autograd(params, X, y, loss):
    """The oracle: torch.nn layers, F.cross_entropy / F.mse_loss and autograd."""
    n_h, n_x = params["W_h"].shape
    n_y = params["W_y"].shape[0]
    net = torch.nn.Sequential(torch.nn.Linear(n_x, n_h), torch.nn.Tanh(),
                              torch.nn.Linear(n_h, n_y)).double()
    with torch.no_grad():
        net[0].weight.copy_(params["W_h"]); net[0].bias.copy_(params["b_h"])
        net[2].weight.copy_(params["W_y"]); net[2].bias.copy_(params["b_y"])
    h_tilde = net[0](X); h_tilde.retain_grad()
    h = net[1](h_tilde); h.retain_grad()
    y_tilde = net[2](h); y_tilde.retain_grad()
    if loss == "ce":
        L = F.cross_entropy(y_tilde, y)
    else:   # squared error summed over classes, averaged over the batch
        L = F.mse_loss(torch.softmax(y_tilde, 1), F.one_hot(y, n_y).double(), reduction="sum") / X.shape[0]
    L.backward()
    return L.detach(), {
        "dW_h": net[0].weight.grad, "db_h": net[0].bias.grad,
        "dW_y": net[2].weight.grad, "db_y": net[2].bias.grad,
        "dh_tilde": h_tilde.grad, "dh": h.grad, "dy_tilde": y_tilde.grad,
    }, y_tilde.detach()


shapes = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 5),
                   st.integers(1, 6), st.integers(2, 5))


@given(shape=shapes, loss=st.sampled_from(["ce", "mse"]))
def test_backward_matches_autograd(shape, loss):
    params, X, y = _instance(*shape)
    L_ref, grads_ref, logits_ref = _autograd(params, X, y, loss)
    torch.testing.assert_close(mlp.mlp_forward(params, X)["y_tilde"], logits_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mlp.mlp_loss(params, X, y, loss=loss), L_ref, rtol=1e-12, atol=1e-12)
    grads = mlp.mlp_backward(params, X, y, loss=loss)
    assert set(grads) == set(grads_ref)
    for name, ref in grads_ref.items():
        torch.testing.assert_close(grads[name], ref, rtol=1e-10, atol=1e-12, msg=name)


@given(shape=shapes)
def test_one_hot_targets_and_cache_give_the_same_gradients(shape):
    params, X, y = _instance(*shape)
    T = F.one_hot(y, params["W_y"].shape[0]).double()
    a = mlp.mlp_backward(params, X, y)
    b = mlp.mlp_backward(params, X, T, cache=mlp.mlp_forward(params, X))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


class _HandWritten(torch.autograd.Function):
    """The loss with mlp_backward as its backward, for torch.autograd.gradcheck."""

    @staticmethod
    def forward(ctx, X, y, W_h, b_h, W_y, b_y, loss):
        params = {"W_h": W_h, "b_h": b_h, "W_y": W_y, "b_y": b_y}
        ctx.save_for_backward(X, y, W_h, b_h, W_y, b_y)
        ctx.loss = loss
        return mlp.mlp_loss(params, X, y, loss=loss)

    @staticmethod
    def backward(ctx, grad_out):
        X, y, W_h, b_h, W_y, b_y = ctx.saved_tensors
        g = mlp.mlp_backward({"W_h": W_h, "b_h": b_h, "W_y": W_y, "b_y": b_y}, X, y, loss=ctx.loss)
        # ∂L/∂x_bi = Σ_j ∂L/∂h~_bj W_h,ji: not returned by mlp_backward, derived here for gradcheck
        dX = g["dh_tilde"] @ W_h
        return (grad_out * dX, None, grad_out * g["dW_h"], grad_out * g["db_h"],
                grad_out * g["dW_y"], grad_out * g["db_y"], None)


@pytest.mark.parametrize("seed, shape", [(0, (3, 2, 4, 3)), (1, (1, 3, 2, 2)), (2, (5, 1, 3, 4))])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_gradcheck_finite_differences(seed, shape, loss):
    params, X, y = _instance(seed, *shape)
    inputs = (X.requires_grad_(), y, *(params[k].requires_grad_() for k in ("W_h", "b_h", "W_y", "b_y")),
              loss)
    assert torch.autograd.gradcheck(_HandWritten.apply, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("sizes, target, loss", [((2, 2, 2), 1, "ce"), ((1, 2, 3), 2, "ce"),
                                                 ((2, 1, 3), 0, "mse")])
def test_sympy_derivatives_of_a_tiny_network(sizes, target, loss):
    n_x, n_h, n_y = sizes
    L, sym = mlp.mlp_loss_sym(n_x, n_h, n_y, target=target, loss=loss)
    params, X, _ = _instance(7, 1, n_x, n_h, n_y)
    values = {s: float(v) for k in ("W_h", "W_y") for s, v in zip(sym[k], params[k].reshape(-1))}
    values |= {s: float(v) for k in ("b_h", "b_y") for s, v in zip(sym[k], params[k])}
    values |= {s: float(v) for s, v in zip(sym["x"], X[0])}
    grads = mlp.mlp_backward(params, X, torch.tensor([target]), loss=loss)
    assert float(L.subs(values)) == pytest.approx(float(mlp.mlp_loss(params, X, torch.tensor([target]), loss)),
                                                  rel=1e-12)
    for name in ("W_h", "b_h", "W_y", "b_y"):
        derived = np.array([float(sp.diff(L, s).subs(values)) for s in sym[name]])
        np.testing.assert_allclose(grads["d" + name].reshape(-1).numpy(), derived, rtol=1e-10, atol=1e-13)


def test_mse_and_ce_gradients_point_the_same_way_but_mse_saturates():
    # a confidently wrong two-class prediction: the true class 0 has logit -8
    z = torch.tensor([[-8.0, 0.0]], dtype=torch.float64, requires_grad=True)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(z, torch.tensor([0])), z)
    (g_mse,) = torch.autograd.grad(((torch.softmax(z, 1) - torch.tensor([[1.0, 0.0]])) ** 2).sum(), z)
    params = {"W_h": torch.zeros(1, 1, dtype=torch.float64), "b_h": torch.zeros(1, dtype=torch.float64),
              "W_y": torch.zeros(2, 1, dtype=torch.float64), "b_y": z.detach()[0].clone()}
    X = torch.zeros(1, 1, dtype=torch.float64)
    torch.testing.assert_close(mlp.mlp_backward(params, X, torch.tensor([0]))["dy_tilde"], g_ce)
    torch.testing.assert_close(mlp.mlp_backward(params, X, torch.tensor([0]), loss="mse")["dy_tilde"], g_mse)
    assert g_ce[0, 0] < 0 and g_mse[0, 0] < 0                # both raise the true logit
    assert abs(float(g_mse[0, 0])) < 0.01 * abs(float(g_ce[0, 0]))


@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=5), B=st.integers(1, 5),
       seed=st.integers(0, 10_000))
def test_deep_backprop_matches_autograd(widths, B, seed):
    widths[-1] = max(widths[-1], 2)
    params = mlp.init_deep_mlp(widths, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(B, widths[0], generator=gen, dtype=torch.float64)
    y = torch.randint(widths[-1], (B,), generator=gen)
    net = torch.nn.Sequential(*[m for a, b in zip(widths[:-1], widths[1:])
                                for m in (torch.nn.Linear(a, b), torch.nn.Tanh())][:-1]).double()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            lin.weight.copy_(params[2 * i]); lin.bias.copy_(params[2 * i + 1])
    ref = F.cross_entropy(net(X), y)
    ref.backward()
    ref = ref.detach()
    loss, grads = mlp.deep_mlp_backprop(params, X, y)
    assert float(loss) == pytest.approx(float(ref), rel=1e-12)
    assert float(mlp.deep_mlp_loss(params, X, y)) == pytest.approx(float(ref), rel=1e-12)
    for i, lin in enumerate(linears):
        torch.testing.assert_close(grads[2 * i], lin.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grads[2 * i + 1], lin.bias.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scheme, tol", [("central", 1e-8), ("forward", 1e-5)])
def test_finite_differences_match_autograd(scheme, tol):
    params = mlp.init_deep_mlp([3, 4, 3], seed=2)
    X = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    y = torch.tensor([0, 2])
    before = [p.clone() for p in params]
    fd = mlp.finite_difference_grad(lambda: mlp.deep_mlp_loss(params, X, y), params, scheme=scheme)
    assert all(torch.equal(a, b) for a, b in zip(params, before))   # restored
    leaves = [p.clone().requires_grad_() for p in params]
    mlp.deep_mlp_loss(leaves, X, y).backward()
    for g, leaf in zip(fd, leaves):
        torch.testing.assert_close(g, leaf.grad, rtol=tol, atol=tol)


def test_gradient_timings_rows():
    rows = mlp.gradient_timings([1, 3], width=3, batch=2, n_classes=2, repeats=1)
    for row in rows:
        L = row["layers"]
        net = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(L - 1)], torch.nn.Linear(3, 2))
        assert row["parameters"] == sum(p.numel() for p in net.parameters())
        assert row["finite_diff_passes"] == row["parameters"] + 1
        assert min(row["forward_s"], row["backprop_s"], row["finite_diff_s"]) >= 0


def test_one_full_batch_step_is_one_torch_sgd_step():
    X, y = toy.two_moons(40, seed=1)
    start = mlp.init_mlp(2, 5, 2, seed=3)
    hist = mlp.train_mlp(X, y, n_h=5, lr=0.7, epochs=1, params=start)
    net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(start["W_h"]); net[0].bias.copy_(start["b_h"])
        net[2].weight.copy_(start["W_y"]); net[2].bias.copy_(start["b_y"])
    opt = torch.optim.SGD(net.parameters(), lr=0.7)
    F.cross_entropy(net(X), y).backward()
    opt.step()
    torch.testing.assert_close(hist.params["W_h"], net[0].weight.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hist.params["b_y"], net[2].bias.detach(), rtol=1e-12, atol=1e-12)
    assert hist.loss[0] == pytest.approx(float(mlp.mlp_loss(start, X, y)), rel=1e-12)
    assert torch.equal(start["W_h"], mlp.init_mlp(2, 5, 2, seed=3)["W_h"])   # input not modified


@pytest.mark.parametrize("batch_size", [None, 8, 1])
def test_training_is_deterministic_and_learns(batch_size):
    X, y = toy.two_moons(60, noise=0.1, seed=0)
    epochs = {None: 200, 8: 40, 1: 10}[batch_size]
    a = mlp.train_mlp(X, y, n_h=8, batch_size=batch_size, lr=0.5, epochs=epochs, seed=4, eval_every=30)
    b = mlp.train_mlp(X, y, n_h=8, batch_size=batch_size, lr=0.5, epochs=epochs, seed=4, eval_every=30)
    assert a.loss == b.loss and a.accuracy == b.accuracy
    assert a.examples_seen[0] == 0 and a.examples_seen[-1] == 60 * epochs
    # recorded at the first step that reaches each multiple of eval_every
    marks = [e // 30 for e in a.examples_seen]
    assert marks == sorted(set(marks)) and marks[-1] == 2 * epochs
    assert a.loss[-1] < 0.5 * a.loss[0] and a.accuracy[-1] > 0.8
    assert a.wall_time == sorted(a.wall_time)
    assert a.batch_size == (60 if batch_size is None else batch_size)


def test_untrained_network_has_loss_near_ln_k():
    X, y = toy.blobs(500, k=10, seed=0)
    losses = [float(mlp.mlp_loss(mlp.init_mlp(2, 16, 10, seed=s, std=0.01), X, y)) for s in range(5)]
    assert max(abs(v - math.log(10)) for v in losses) < 1e-3


@pytest.mark.parametrize("call, error, match", [
    (lambda: mlp.init_mlp(0, 2, 2), ValueError, "n_x must be >= 1"),
    (lambda: mlp.init_mlp(2, 2, 2, std=-1.0), ValueError, "std must be > 0"),
    (lambda: mlp.mlp_forward({"W_h": torch.zeros(2, 2)}, torch.zeros(1, 2)), ValueError, "keys"),
    (lambda: mlp.mlp_forward(mlp.init_mlp(2, 3, 2), torch.zeros(4, 3, dtype=torch.float64)),
     ValueError, r"shape \(B, 2\)"),
    (lambda: mlp.mlp_forward(mlp.init_mlp(2, 3, 2), torch.zeros(4, 2, dtype=torch.int64)),
     TypeError, "floating-point"),
    (lambda: mlp.mlp_loss(mlp.init_mlp(2, 3, 2), torch.zeros(4, 2, dtype=torch.float64),
                          torch.tensor([0, 1, 2, 0])), ValueError, r"in \[0, 1\]"),
    (lambda: mlp.mlp_loss(mlp.init_mlp(2, 3, 2), torch.zeros(4, 2, dtype=torch.float64),
                          torch.tensor([0, 1])), ValueError, "4 rows"),
    (lambda: mlp.mlp_backward(mlp.init_mlp(2, 3, 2), torch.zeros(1, 2, dtype=torch.float64),
                              torch.tensor([0]), loss="l1"), ValueError, "loss must be one of"),
    (lambda: mlp.mlp_loss_sym(1, 1, 2, target=2), ValueError, r"target must be in \[0, 1\]"),
    (lambda: mlp.train_mlp(torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 1, 0]), batch_size=4),
     ValueError, "larger than the number of examples 3"),
    (lambda: mlp.train_mlp(torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 1, 0]), lr=0),
     ValueError, "lr must be > 0"),
    (lambda: mlp.train_mlp(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3)), TypeError,
     "integer class indices"),
    (lambda: mlp.train_mlp(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([0, 1, 0])), ValueError,
     "N = len"),
    (lambda: mlp.init_deep_mlp([3]), ValueError, "widths must be a sequence of at least 2 ints"),
    (lambda: mlp.deep_mlp_loss([torch.zeros(2, 2)], torch.zeros(1, 2), torch.tensor([0])), ValueError,
     "even length"),
    (lambda: mlp.finite_difference_grad(lambda: 0.0, [torch.zeros(1)], eps=0), ValueError, "eps"),
    (lambda: mlp.finite_difference_grad(lambda: 0.0, [torch.zeros(1)], scheme="back"), ValueError, "scheme"),
    (lambda: mlp.gradient_timings([0]), ValueError, r"depths\[0\] must be >= 1"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
