"""Tests of dlmath.regularisation against independent oracles.

Oracles: ``torch.nn.Dropout`` in train and eval modes (its mask is read off its output);
``torch.optim.SGD`` (heavy ball and Nesterov) stepping a float64 parameter under autograd,
for trajectories and for the one-step transition matrix whose spectral radius is the rate;
NumPy for channel statistics; ``dlmath.data.digits(standardize=True)``, written separately;
scikit-learn's confusion matrix for the per-class accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from dlmath import regularisation as reg
from dlmath.data import DataSplits, TensorSplit, digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


probs = st.floats(0.0, 0.95)
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3)


# ---------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------

@given(p=probs, shape=shapes, seed=st.integers(0, 2**16))
def test_inverted_dropout_matches_nn_dropout_given_its_mask(p, shape, seed):
    torch.manual_seed(seed)
    x = torch.rand(shape, dtype=torch.float64) + 0.5        # no zeros: the mask is readable
    layer = torch.nn.Dropout(p)
    y = layer.train()(x)
    mask = y != 0
    torch.testing.assert_close(reg.inverted_dropout(x, p, mask=mask), y, rtol=1e-12, atol=0)
    # evaluation mode: both are the identity
    torch.testing.assert_close(layer.eval()(x), x)
    assert reg.inverted_dropout(x, p, training=False) is x


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_nn_dropout_p_is_the_drop_probability(p):
    # PyTorch's p is the probability of zeroing; the kept fraction of dropout_mask agrees
    n = 200_000
    torch.manual_seed(0)
    dropped = float((torch.nn.Dropout(p).train()(torch.ones(n)) == 0).double().mean())
    kept = float(reg.dropout_mask((n,), p, torch.Generator().manual_seed(1)).double().mean())
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(dropped - p) < 5 * sigma
    assert abs(kept - (1 - p)) < 5 * sigma


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_training_expectation_equals_test_output(p):
    # both forms: the mean over many masks of the training output is the test output
    x = torch.linspace(-2, 3, 7, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    masks = reg.dropout_mask((40_000, 7), p, gen)
    inv = reg.inverted_dropout(x.expand(40_000, 7), p, mask=masks).mean(0)
    ws = reg.weight_scaling_dropout(x.expand(40_000, 7), p, mask=masks).mean(0)
    tol = 5 * x.abs().max() * math.sqrt(p / (1 - p) / 40_000)
    torch.testing.assert_close(inv, reg.inverted_dropout(x, p, training=False),
                               atol=float(tol), rtol=0)
    torch.testing.assert_close(ws / (1 - p), reg.weight_scaling_dropout(x, p, training=False)
                               / (1 - p), atol=float(tol), rtol=0)
    # scaling the test output by p instead of 1 - p misses the expectation unless p = 1/2
    off = float((ws - p * x).abs().max())
    assert (off > 10 * tol) == (abs(p - 0.5) > 0.05)


@given(p=st.floats(0.0, 0.9), seed=st.integers(0, 2**16))
def test_the_two_forms_define_the_same_networks(p, seed):
    # weight scaling + next layer W  ==  inverted dropout + next layer (1 - p) W
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    lin = torch.nn.Linear(4, 3).double()
    scaled = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        scaled.weight.copy_((1 - p) * lin.weight)
        scaled.bias.copy_(lin.bias)
    mask = reg.dropout_mask(x.shape, p, gen)
    for training in (True, False):
        a = lin(reg.weight_scaling_dropout(x, p, training=training, mask=mask))
        b = scaled(reg.inverted_dropout(x, p, training=training, mask=mask))
        torch.testing.assert_close(a, b)


def test_dropout_errors():
    x = torch.ones(3)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
        reg.inverted_dropout(x, 1.0)
    with pytest.raises(ValueError, match="mask has shape"):
        reg.inverted_dropout(x, 0.5, mask=torch.ones(2, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        reg.weight_scaling_dropout(x, 0.5, mask=torch.ones(3))
    with pytest.raises(TypeError, match="training must be True or False"):
        reg.inverted_dropout(x, 0.5, training=1)


# ---------------------------------------------------------------------------------------
# Momentum
# ---------------------------------------------------------------------------------------

def _torch_sgd_trajectory(A, b, x0, lr, momentum, nesterov, steps):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    At, bt = torch.tensor(A, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum, nesterov=nesterov)
    out = [x.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x @ At @ x - bt @ x).backward()
        opt.step()
        out.append(x.detach().clone())
    return torch.stack(out).numpy()


spd = st.tuples(st.floats(0.1, 10), st.floats(0.1, 10), st.floats(-0.9, 0.9))


@given(curv=spd, lr=st.floats(0.01, 0.3), momentum=st.floats(0.0, 0.95),
       nesterov=st.booleans(), b=st.tuples(st.floats(-2, 2), st.floats(-2, 2)))
def test_trajectory_matches_torch_sgd(curv, lr, momentum, nesterov, b):
    assume(not (nesterov and momentum == 0))
    l1, l2, c = curv
    off = c * math.sqrt(l1 * l2)
    A = [[l1, off], [off, l2]]
    x0 = [1.5, -0.7]
    ours = reg.quadratic_gd_trajectory(A, x0, lr, momentum, steps=25, nesterov=nesterov,
                                       linear=list(b))
    oracle = _torch_sgd_trajectory(A, list(b), x0, lr, momentum, nesterov, 25)
    scale = max(1.0, float(np.abs(oracle).max()))
    np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-9 * scale)


def _torch_transition_matrix(lam, lr, momentum, nesterov):
    """One torch SGD step on f(x) = lam x^2 / 2 as a linear map of the state (x, v)."""
    cols = []
    for x0, v0 in ((1.0, 0.0), (0.0, 1.0)):
        x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([x], lr=lr, momentum=momentum, nesterov=nesterov)
        opt.state[x]["momentum_buffer"] = torch.tensor([v0], dtype=torch.float64)
        (0.5 * lam * x ** 2).sum().backward()
        opt.step()
        cols.append([float(x.detach()), float(opt.state[x]["momentum_buffer"])])
    return torch.tensor(cols, dtype=torch.float64).T


@given(lam=st.floats(0.0, 20), lr=st.floats(0.01, 0.5), momentum=st.floats(0.01, 0.99),
       nesterov=st.booleans())
def test_rate_is_spectral_radius_of_torch_step(lam, lr, momentum, nesterov):
    M = _torch_transition_matrix(lam, lr, momentum, nesterov)
    radius = float(torch.linalg.eigvals(M).abs().max())
    assert reg.momentum_rate(lam, lr, momentum, nesterov) == pytest.approx(radius, rel=1e-6,
                                                                           abs=1e-6)


@given(lam=st.floats(0.0, 30), lr=st.floats(0.01, 0.5))
def test_rate_without_momentum(lam, lr):
    assert reg.momentum_rate(lam, lr) == pytest.approx(abs(1 - lr * lam), abs=1e-12)


@pytest.mark.parametrize("m, L", [(1.0, 10.0), (1.0, 100.0), (0.5, 2.0)])
def test_optimal_parameters_against_torch_and_a_grid(m, L):
    def worst(lr, mu):
        return max(float(torch.linalg.eigvals(_torch_transition_matrix(lam, lr, mu, False))
                         .abs().max()) for lam in np.linspace(m, L, 9))

    lr, mu, rate = reg.optimal_heavy_ball(m, L)
    assert worst(lr, mu) == pytest.approx(rate, rel=1e-5)
    # no (lr, mu) on a grid around the optimum does better
    for f in (0.8, 0.9, 1.1, 1.25):
        for g in (0.8, 0.9, 1.1):
            assert worst(lr * f, min(mu * g, 0.999)) >= rate - 1e-9
    gd_lr, gd_rate = reg.optimal_gradient_descent(m, L)
    assert max(abs(1 - gd_lr * lam) for lam in (m, L)) == pytest.approx(gd_rate)
    grid = np.linspace(0.01, 2.5 / L, 400)
    assert min(max(abs(1 - e * m), abs(1 - e * L)) for e in grid) >= gd_rate - 1e-9
    if L > m:
        assert rate < gd_rate


def test_trajectory_converges_at_the_predicted_rate():
    A = np.diag([1.0, 25.0])
    lr, mu, rate = reg.optimal_heavy_ball(1.0, 25.0)
    traj = _torch_sgd_trajectory(A.tolist(), [0.0, 0.0], [1.0, 1.0], lr, mu, False, 400)
    err = np.linalg.norm(traj, axis=1)
    empirical = (err[400] / err[200]) ** (1 / 200)
    assert empirical == pytest.approx(rate, rel=0.02)


def test_momentum_errors():
    with pytest.raises(ValueError, match="hessian must be a square"):
        reg.quadratic_gd_trajectory([[1.0, 0.0]], [1.0], 0.1)
    with pytest.raises(ValueError, match="hessian must be symmetric"):
        reg.quadratic_gd_trajectory([[1.0, 1.0], [0.0, 1.0]], [1.0, 1.0], 0.1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        reg.momentum_rate(1.0, 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        reg.quadratic_gd_trajectory(np.eye(2), [1.0, 1.0], 0.1, nesterov=True)
    with pytest.raises(ValueError, match="smallest .* must not exceed"):
        reg.optimal_heavy_ball(2.0, 1.0)


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

@given(n=st.integers(1, 5), c=st.integers(1, 4), h=st.integers(1, 4), seed=st.integers(0, 999))
def test_channel_statistics_against_numpy(n, c, h, seed):
    assume(n * h * h >= 2)
    x = torch.randn(n, c, h, h, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64) * 3 + 1
    mean, std = reg.channel_statistics(x)
    a = x.numpy()
    np.testing.assert_allclose(mean.numpy(), a.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.numpy(), a.std(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    z = reg.normalise(x, mean, std).numpy()
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3), ddof=1), 1, rtol=1e-12)


def test_train_statistics_match_digits_standardize():
    ours = reg.normalise_with_train_statistics(digits(size=8))
    theirs = digits(size=8, standardize=True)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(ours[split].inputs[0], theirs[split].inputs[0])
    assert ours.info["mean"][0] == pytest.approx(theirs.info["mean"])


def test_train_statistics_ignore_the_test_split():
    gen = torch.Generator().manual_seed(0)
    train = TensorSplit(torch.rand(20, 2, 3, 3, generator=gen), torch.zeros(20, dtype=torch.long))
    val = TensorSplit(torch.rand(5, 2, 3, 3, generator=gen), torch.zeros(5, dtype=torch.long))
    test_a = TensorSplit(torch.rand(6, 2, 3, 3, generator=gen), torch.zeros(6, dtype=torch.long))
    # the same first test image, with different companions
    test_b = TensorSplit(torch.cat([test_a.inputs[0][:1], 5 + torch.rand(5, 2, 3, 3)]),
                         torch.zeros(6, dtype=torch.long))
    a = reg.normalise_with_train_statistics(DataSplits(train, val, test_a))
    b = reg.normalise_with_train_statistics(DataSplits(train, val, test_b))
    torch.testing.assert_close(a.test.inputs[0][0], b.test.inputs[0][0])
    # with the test split's own statistics, the first image's input would change
    own = [reg.normalise(t.inputs[0], *reg.channel_statistics(t.inputs[0]))[0]
           for t in (test_a, test_b)]
    assert not torch.allclose(own[0], own[1])


def test_normalise_errors():
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="one entry per channel"):
        reg.normalise(x, torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="std must be positive"):
        reg.normalise(x, torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="at least two values per channel"):
        reg.channel_statistics(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="data must be a DataSplits"):
        reg.normalise_with_train_statistics(x)


# ---------------------------------------------------------------------------------------
# Per-class accuracy
# ---------------------------------------------------------------------------------------

@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_class_accuracy_against_confusion_matrix(pairs):
    from sklearn.metrics import confusion_matrix

    pred = torch.tensor([p for p, _ in pairs])
    true = torch.tensor([t for _, t in pairs])
    cm = confusion_matrix(true.numpy(), pred.numpy(), labels=list(range(5)))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.diag(cm) / cm.sum(1)
    got = reg.class_accuracy(pred, true, 5).numpy()
    np.testing.assert_allclose(got, expected, equal_nan=True)
    logits = torch.nn.functional.one_hot(pred, 5).double()
    np.testing.assert_allclose(reg.class_accuracy(logits, true, 5).numpy(), expected,
                               equal_nan=True)


def test_class_accuracy_errors():
    with pytest.raises(ValueError, match="targets must lie in"):
        reg.class_accuracy(torch.tensor([0]), torch.tensor([3]), 3)
    with pytest.raises(ValueError, match="must be \\(N,\\)"):
        reg.class_accuracy(torch.tensor([0, 1]), torch.tensor([0]), 3)


@pytest.mark.parametrize("call, flag", [
    (lambda v: reg.inverted_dropout(torch.ones(3), 0.5, training=v), "training"),
    (lambda v: reg.weight_scaling_dropout(torch.ones(3), 0.5, training=v), "training"),
    (lambda v: reg.quadratic_gd_trajectory(np.eye(2), [1.0, 1.0], 0.1, 0.5, nesterov=v), "nesterov"),
    (lambda v: reg.momentum_rate(1.0, 0.1, 0.5, nesterov=v), "nesterov"),
])
@pytest.mark.parametrize("value", ["False", 0, None])
def test_flags_must_be_bool(call, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        call(value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensors_keep_their_dtype(dtype):
    x = torch.arange(12.0).reshape(3, 2, 2).to(dtype)                 # (N, C, ...)
    mask = torch.tensor([True, False]).expand(3, 2, 2).clone()
    mean, std = reg.channel_statistics(x)
    outs = [reg.inverted_dropout(x, 0.5, mask=mask), reg.weight_scaling_dropout(x, 0.5, mask=mask),
            reg.weight_scaling_dropout(x, 0.5, training=False), mean, std,
            reg.normalise(x, mean, std),
            reg.normalise(x, mean.double(), std.double()),              # float64 statistics
            reg.normalise(x, [5.0, 6.0], [1.0, 2.0])]                   # statistics as lists
    assert [out.dtype for out in outs] == [dtype] * len(outs)
    assert reg.class_accuracy(torch.tensor([0, 1]), torch.tensor([0, 0]), 2).tolist()[0] == 0.5
