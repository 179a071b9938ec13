r"""A tanh MLP with softmax output, differentiated by hand, and a small SGD trainer.

Scope: the two-layer network

.. math::
    \tilde h = W_h x + b_h,\quad h = \tanh \tilde h,\quad
    \tilde y = W_y h + b_y,\quad \hat y = \operatorname{softmax}(\tilde y),

its cross-entropy (or squared-error) loss, and a backward pass written out by hand (no
autograd) that returns every intermediate gradient by name; a symbolic version of the
loss for checking the gradients with ``sympy.diff``; full-batch, mini-batch and online
SGD; a deep tanh MLP with hand-written backpropagation and finite differences, to
measure what each costs.  Inputs are batched, ``X`` of shape ``(B, n_x)``; weights are
stored as ``torch.nn.Linear`` stores them, ``W_h`` of shape ``(n_h, n_x)``.  The loss of
a batch is the mean over its examples.  Chapter: :ref:`ch-mlp-backprop`.

References: Rumelhart, Hinton & Williams, "Learning representations by back-propagating
errors" (1986); Glorot & Bengio, "Understanding the difficulty of training deep
feedforward neural networks" (2010) for the initialisation; Goodfellow, Bengio &
Courville, *Deep Learning* (2016), chapter 6.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp
import torch

from dlmath._validate import (
    check_callable,
    check_choice,
    check_dtype,
    check_entries,
    check_int,
    check_number,
    check_seed,
    check_tensor,
    int_sequence,
)
from dlmath.softmax import _targets, cross_entropy, softmax, softmax_jacobian

__all__ = [
    "init_mlp",
    "mlp_forward",
    "mlp_loss",
    "mlp_backward",
    "mlp_loss_sym",
    "mlp_predict",
    "TrainHistory",
    "train_mlp",
    "init_deep_mlp",
    "deep_mlp_loss",
    "deep_mlp_backprop",
    "finite_difference_grad",
    "gradient_timings",
]

Params = dict[str, torch.Tensor]
_NAMES = ("W_h", "b_h", "W_y", "b_y")
_LOSSES = ("ce", "mse")


def _glorot(fan_out: int, fan_in: int, std: float | None, gen: torch.Generator,
            dtype: torch.dtype) -> torch.Tensor:
    # Glorot & Bengio (2010): Var W = 2 / (fan_in + fan_out)
    s = math.sqrt(2.0 / (fan_in + fan_out)) if std is None else std
    return s * torch.randn(fan_out, fan_in, generator=gen, dtype=dtype)


def init_mlp(n_x: int, n_h: int, n_y: int, *, seed: int = 0, std: float | None = None,
             dtype: torch.dtype = torch.float64) -> Params:
    r"""Random weights and zero biases for the two-layer MLP.

    Explanation
    -----------
    Weights are drawn from :math:`\mathcal N(0, \sigma^2)` with the Glorot variance
    :math:`\sigma^2 = 2/(n_\text{in} + n_\text{out})` of each layer unless ``std`` is
    given; biases start at 0.

    Parameters
    ----------
    n_x, n_h, n_y : int
        Input size, hidden size, number of classes (all >= 1).
    seed : int
        Seed of a private generator (the global random state is not used).
    std : float, optional
        One standard deviation for every weight, instead of Glorot's.
    dtype : torch.dtype
        Floating dtype of the parameters.

    Returns
    -------
    dict
        ``W_h (n_h, n_x)``, ``b_h (n_h,)``, ``W_y (n_y, n_h)``, ``b_y (n_y,)``.

    Raises
    ------
    TypeError, ValueError
        If a size is not a positive int or ``std`` is not positive.

    Examples
    --------
    >>> p = init_mlp(2, 4, 3)
    >>> {k: tuple(v.shape) for k, v in p.items()}
    {'W_h': (4, 2), 'b_h': (4,), 'W_y': (3, 4), 'b_y': (3,)}

    See Also
    --------
    mlp_forward, init_deep_mlp

    References
    ----------
    Glorot & Bengio (2010).  Chapter: :ref:`ch-mlp-backprop`.
    """
    for name, value in (("n_x", n_x), ("n_h", n_h), ("n_y", n_y)):
        check_int(name, value, 1)
    check_entries(f"W_h of shape (n_h, n_x) = ({n_h}, {n_x})", n_h * n_x)
    check_entries(f"W_y of shape (n_y, n_h) = ({n_y}, {n_h})", n_y * n_h)
    check_seed("seed", seed)
    if std is not None:
        std = check_number("std", std, positive=True)
    check_dtype("dtype", dtype, floating=True)
    gen = torch.Generator().manual_seed(seed)
    W_h = _glorot(n_h, n_x, std, gen, dtype)
    W_y = _glorot(n_y, n_h, std, gen, dtype)
    return {"W_h": W_h, "b_h": torch.zeros(n_h, dtype=dtype),
            "W_y": W_y, "b_y": torch.zeros(n_y, dtype=dtype)}


def _check_params(params: object) -> Params:
    if not isinstance(params, dict) or set(params) != set(_NAMES):
        raise ValueError(f"params must be a dict with keys {_NAMES}, got "
                         f"{sorted(params) if isinstance(params, dict) else type(params).__name__}")
    W_h, b_h, W_y, b_y = (params[k] for k in _NAMES)
    if W_h.dim() != 2 or W_y.dim() != 2 or b_h.shape != (W_h.shape[0],) \
            or b_y.shape != (W_y.shape[0],) or W_y.shape[1] != W_h.shape[0]:
        raise ValueError(f"inconsistent parameter shapes: W_h {tuple(W_h.shape)}, b_h "
                         f"{tuple(b_h.shape)}, W_y {tuple(W_y.shape)}, b_y {tuple(b_y.shape)}")
    return params


def _check_X(X: object, n_x: int) -> torch.Tensor:
    if not isinstance(X, torch.Tensor) or not X.is_floating_point():
        raise TypeError(f"X must be a floating-point tensor, got {getattr(X, 'dtype', type(X).__name__)}")
    if X.dim() != 2 or X.shape[1] != n_x or X.shape[0] == 0:
        raise ValueError(f"X must have shape (B, {n_x}) with B >= 1, got {tuple(X.shape)}")
    return X


def _forward(p: Params, X: torch.Tensor) -> dict[str, torch.Tensor]:
    h_tilde = X @ p["W_h"].T + p["b_h"]          # (B, n_h)   h~ = W_h x + b_h
    h = torch.tanh(h_tilde)                      # (B, n_h)
    y_tilde = h @ p["W_y"].T + p["b_y"]          # (B, n_y)   y~ = W_y h + b_y
    return {"h_tilde": h_tilde, "h": h, "y_tilde": y_tilde, "y_hat": softmax(y_tilde)}


def mlp_forward(params: Params, X: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Forward pass of the two-layer MLP, keeping every intermediate.

    Parameters
    ----------
    params : dict
        As returned by :func:`init_mlp`.
    X : torch.Tensor
        Inputs of shape ``(B, n_x)``.

    Returns
    -------
    dict
        ``h_tilde (B, n_h)``, ``h (B, n_h)``, ``y_tilde (B, n_y)`` (logits),
        ``y_hat (B, n_y)`` (probabilities).

    Raises
    ------
    TypeError, ValueError
        If ``X`` is not a float tensor of shape ``(B, n_x)`` or the parameters disagree.

    Examples
    --------
    >>> import torch
    >>> out = mlp_forward(init_mlp(2, 4, 3), torch.zeros(5, 2, dtype=torch.float64))
    >>> out["y_hat"].shape, out["y_hat"].sum(dim=1).tolist()
    (torch.Size([5, 3]), [1.0, 1.0, 1.0, 1.0, 1.0])

    See Also
    --------
    mlp_backward, mlp_loss

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    p = _check_params(params)
    return _forward(p, _check_X(X, p["W_h"].shape[1]))


def _loss_from_logits(y_tilde: torch.Tensor, t: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "ce":
        return cross_entropy(y_tilde, t).mean()
    return ((softmax(y_tilde) - t) ** 2).sum(dim=1).mean()


def mlp_loss(params: Params, X: torch.Tensor, y: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    r"""Mean loss of the MLP over a batch.

    Explanation
    -----------
    ``"ce"``: cross-entropy :math:`-\sum_k y_k \log \hat y_k`;
    ``"mse"``: squared error :math:`\sum_k (\hat y_k - y_k)^2` of the probabilities.
    Both are averaged over the batch.

    Parameters
    ----------
    params : dict
        As returned by :func:`init_mlp`.
    X : torch.Tensor
        Inputs ``(B, n_x)``.
    y : torch.Tensor
        Class indices ``(B,)`` or target probabilities ``(B, n_y)``.
    loss : {"ce", "mse"}

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    TypeError, ValueError
        On bad shapes, class indices out of range or an unknown ``loss``.

    Examples
    --------
    >>> import torch, math
    >>> p = init_mlp(2, 4, 3)
    >>> _ = p["W_y"].zero_()                 # equal logits: the loss is ln 3
    >>> round(float(mlp_loss(p, torch.ones(6, 2, dtype=torch.float64), torch.tensor([0, 1, 2] * 2))), 6)
    1.098612

    See Also
    --------
    mlp_backward, dlmath.softmax.cross_entropy

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    p = _check_params(params)
    loss = check_choice("loss", loss, _LOSSES)
    cache = _forward(p, _check_X(X, p["W_h"].shape[1]))
    t = _batch_targets(cache["y_tilde"], y)
    return _loss_from_logits(cache["y_tilde"], t, loss)


def _batch_targets(y_tilde: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if isinstance(y, torch.Tensor) and y.shape[:1] != y_tilde.shape[:1]:
        raise ValueError(f"y must have {y_tilde.shape[0]} rows like X, got shape {tuple(y.shape)}")
    return _targets(y_tilde, y)


def _backward(p: Params, X: torch.Tensor, t: torch.Tensor, c: dict[str, torch.Tensor],
              loss: str) -> dict[str, torch.Tensor]:
    B = X.shape[0]
    if loss == "ce":
        # ∂L/∂y~_bk = (ŷ_bk - y_bk) / B
        dy_tilde = (c["y_hat"] - t) / B                                   # (B, n_y)
    else:
        # ∂L/∂ŷ_bk = 2 (ŷ_bk - y_bk) / B, then through the softmax: J is symmetric
        dy_hat = 2.0 * (c["y_hat"] - t) / B                               # (B, n_y)
        dy_tilde = torch.einsum("bkj,bj->bk", softmax_jacobian(c["y_tilde"]), dy_hat)
    # ∂L/∂W_y,kj = Σ_b ∂L/∂y~_bk h_bj
    dW_y = torch.einsum("bk,bj->kj", dy_tilde, c["h"])                    # (n_y, n_h)
    db_y = dy_tilde.sum(dim=0)                                            # (n_y,)
    # ∂L/∂h_bj = Σ_k ∂L/∂y~_bk W_y,kj
    dh = dy_tilde @ p["W_y"]                                              # (B, n_h)
    # ∂L/∂h~_bj = ∂L/∂h_bj (1 - h_bj^2)      since tanh' = 1 - tanh^2
    dh_tilde = dh * (1.0 - c["h"] ** 2)                                   # (B, n_h)
    # ∂L/∂W_h,ji = Σ_b ∂L/∂h~_bj x_bi
    dW_h = torch.einsum("bj,bi->ji", dh_tilde, X)                         # (n_h, n_x)
    db_h = dh_tilde.sum(dim=0)                                            # (n_h,)
    return {"dy_tilde": dy_tilde, "dW_y": dW_y, "db_y": db_y, "dh": dh,
            "dh_tilde": dh_tilde, "dW_h": dW_h, "db_h": db_h}


def mlp_backward(params: Params, X: torch.Tensor, y: torch.Tensor, loss: str = "ce",
                 cache: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    r"""Every gradient of the mean batch loss, computed by hand (no autograd).

    Explanation
    -----------
    With :math:`\delta^y = \partial L/\partial \tilde y` (per example, row :math:`b`):

    * cross-entropy: :math:`\delta^y_b = (\hat y_b - y_b)/B`;
      squared error: :math:`\delta^y_b = J(\tilde y_b)\, 2(\hat y_b - y_b)/B`, with the
      softmax Jacobian :math:`J`;
    * :math:`\partial L/\partial W_y = \sum_b \delta^y_b h_b^\top`,
      :math:`\partial L/\partial b_y = \sum_b \delta^y_b`;
    * :math:`\partial L/\partial h_b = W_y^\top \delta^y_b` (a sum over the outputs);
    * :math:`\delta^h_b = \partial L/\partial \tilde h_b = (1 - h_b^2) \odot W_y^\top \delta^y_b`;
    * :math:`\partial L/\partial W_h = \sum_b \delta^h_b x_b^\top`,
      :math:`\partial L/\partial b_h = \sum_b \delta^h_b`.

    Parameters
    ----------
    params : dict
        As returned by :func:`init_mlp`.
    X : torch.Tensor
        Inputs ``(B, n_x)``.
    y : torch.Tensor
        Class indices ``(B,)`` or target probabilities ``(B, n_y)``.
    loss : {"ce", "mse"}
    cache : dict, optional
        The output of :func:`mlp_forward` for ``X``, to avoid recomputing it.

    Returns
    -------
    dict
        ``dy_tilde (B, n_y)``, ``dW_y``, ``db_y``, ``dh (B, n_h)``, ``dh_tilde (B, n_h)``,
        ``dW_h``, ``db_h`` (each parameter gradient has its parameter's shape).

    Raises
    ------
    TypeError, ValueError
        As :func:`mlp_loss`.

    Examples
    --------
    >>> import torch
    >>> p = init_mlp(2, 3, 2, seed=1)
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64).reshape(4, 2)
    >>> g = mlp_backward(p, X, torch.tensor([0, 1, 1, 0]))
    >>> sorted(g), tuple(g["dW_h"].shape)
    (['dW_h', 'dW_y', 'db_h', 'db_y', 'dh', 'dh_tilde', 'dy_tilde'], (3, 2))
    >>> round(float(g["db_y"].sum()), 12)    # Σ_k (ŷ_k - y_k) = 1 - 1 for every example
    0.0

    See Also
    --------
    mlp_forward, mlp_loss, mlp_loss_sym : the oracle of the tests.

    References
    ----------
    Rumelhart, Hinton & Williams (1986).  Chapter: :ref:`ch-mlp-backprop`.
    """
    p = _check_params(params)
    loss = check_choice("loss", loss, _LOSSES)
    X = _check_X(X, p["W_h"].shape[1])
    if cache is not None and (not isinstance(cache, dict) or "y_tilde" not in cache):
        raise TypeError(f"cache must be the dict that mlp_forward returns, got "
                        f"{type(cache).__name__}")
    c = _forward(p, X) if cache is None else cache
    return _backward(p, X, _batch_targets(c["y_tilde"], y), c, loss)


def mlp_loss_sym(n_x: int, n_h: int, n_y: int, target: int = 0,
                 loss: str = "ce") -> tuple[sp.Expr, dict[str, sp.Matrix]]:
    r"""The loss of one example as a SymPy expression in every weight and input.

    Explanation
    -----------
    Written from the forward equations only; differentiating it with ``sympy.diff``
    gives gradients that owe nothing to :func:`mlp_backward`.  Keep the sizes tiny:
    the expression grows with :math:`n_y n_h n_x`.

    Parameters
    ----------
    n_x, n_h, n_y : int
        Sizes (>= 1).
    target : int
        The true class, in ``[0, n_y)``.
    loss : {"ce", "mse"}

    Returns
    -------
    (L, symbols)
        The loss and a dict of symbol matrices ``W_h, b_h, W_y, b_y, x`` (biases and
        ``x`` are column vectors).

    Raises
    ------
    TypeError, ValueError
        If a size or ``target`` is out of range, or ``loss`` is unknown.

    Examples
    --------
    >>> L, s = mlp_loss_sym(1, 1, 2, target=1)
    >>> L
    -log(exp(W_y2_1*tanh(W_h1_1*x1 + b_h1) + b_y2)/(exp(W_y1_1*tanh(W_h1_1*x1 + b_h1) + b_y1) + exp(W_y2_1*tanh(W_h1_1*x1 + b_h1) + b_y2)))

    See Also
    --------
    mlp_backward : the hand-written gradients it checks.
    dlmath.softmax.softmax_sym

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    for name, value in (("n_x", n_x), ("n_h", n_h), ("n_y", n_y)):
        check_int(name, value, 1)
    weights = n_h * (n_x + 1) + n_y * (n_h + 1)
    if weights > 1000:                 # (20, 20, 20): 840 symbols, about a second
        raise ValueError(f"n_x={n_x}, n_h={n_h}, n_y={n_y} give {weights} weights; a symbolic "
                         f"loss in more than 1000 takes minutes")
    check_int("target", target, 0, n_y - 1)
    loss = check_choice("loss", loss, _LOSSES)
    s = {
        "W_h": sp.Matrix(n_h, n_x, lambda j, i: sp.Symbol(f"W_h{j + 1}_{i + 1}", real=True)),
        "b_h": sp.Matrix(n_h, 1, lambda j, _: sp.Symbol(f"b_h{j + 1}", real=True)),
        "W_y": sp.Matrix(n_y, n_h, lambda k, j: sp.Symbol(f"W_y{k + 1}_{j + 1}", real=True)),
        "b_y": sp.Matrix(n_y, 1, lambda k, _: sp.Symbol(f"b_y{k + 1}", real=True)),
        "x": sp.Matrix(n_x, 1, lambda i, _: sp.Symbol(f"x{i + 1}", real=True)),
    }
    h = (s["W_h"] * s["x"] + s["b_h"]).applyfunc(sp.tanh)
    y_tilde = s["W_y"] * h + s["b_y"]
    e = y_tilde.applyfunc(sp.exp)
    y_hat = e / sum(e)
    if loss == "ce":
        return -sp.log(y_hat[target]), s
    return sum((y_hat[k] - (1 if k == target else 0)) ** 2 for k in range(n_y)), s


def mlp_predict(params: Params, X: torch.Tensor) -> torch.Tensor:
    """Predicted classes: the index of the largest logit.

    Parameters
    ----------
    params : dict
        As returned by :func:`init_mlp`.
    X : torch.Tensor
        Inputs ``(B, n_x)``.

    Returns
    -------
    torch.Tensor
        ``(B,)`` int64.

    Raises
    ------
    TypeError, ValueError
        As :func:`mlp_forward`.

    Examples
    --------
    >>> import torch
    >>> p = init_mlp(2, 3, 2)
    >>> p["b_y"] += torch.tensor([0.0, 100.0], dtype=torch.float64)
    >>> mlp_predict(p, torch.zeros(3, 2, dtype=torch.float64)).tolist()
    [1, 1, 1]

    See Also
    --------
    mlp_forward

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    return mlp_forward(params, X)["y_tilde"].argmax(dim=1)


@dataclass(frozen=True)
class TrainHistory:
    """What :func:`train_mlp` records at each evaluation point.

    Attributes
    ----------
    params : dict
        The final parameters.
    examples_seen : list of int
        Training examples processed (counting repeats) at each evaluation; starts at 0.
    loss, accuracy : list of float
        Mean loss and accuracy on the whole training set at each evaluation.
    wall_time : list of float
        Seconds spent training (evaluations excluded) at each evaluation.
    batch_size : int
    lr : float
    """

    params: Params
    examples_seen: list[int]
    loss: list[float]
    accuracy: list[float]
    wall_time: list[float]
    batch_size: int
    lr: float


def train_mlp(X: torch.Tensor, y: torch.Tensor, n_h: int = 16, *, batch_size: int | None = None,
              lr: float = 0.1, epochs: int = 100, seed: int = 0, loss: str = "ce",
              eval_every: int | None = None, params: Params | None = None) -> TrainHistory:
    r"""Train the two-layer MLP by SGD with the hand-written gradients.

    Explanation
    -----------
    Each epoch visits every example once in a new random order, in batches of
    ``batch_size`` (the last batch may be smaller); each batch takes one step
    :math:`\theta \leftarrow \theta - \eta\, \nabla_\theta L_\text{batch}`.
    ``batch_size=None`` (all examples) is full-batch gradient descent, ``1`` is online
    SGD.  The training-set loss and accuracy are recorded every ``eval_every``
    examples; the time they take is not counted in ``wall_time``.  Everything random
    comes from generators seeded with ``seed``, so the losses are reproducible.

    Parameters
    ----------
    X : torch.Tensor
        Inputs ``(N, n_x)``.
    y : torch.Tensor
        Class indices ``(N,)``; the number of classes is ``y.max() + 1``.
    n_h : int
        Hidden units.
    batch_size : int, optional
        Examples per step, 1..N; default N.
    lr : float
        Learning rate :math:`\eta > 0`.
    epochs : int
        Passes over the data (>= 1).
    seed : int
        Seed of the initialisation and of the shuffling.
    loss : {"ce", "mse"}
    eval_every : int, optional
        Examples between evaluations; default N (once per epoch).
    params : dict, optional
        Initial parameters (copied); default :func:`init_mlp` with ``seed``.

    Returns
    -------
    TrainHistory

    Raises
    ------
    TypeError, ValueError
        If an argument is out of range or the shapes disagree.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> hist = train_mlp(X, torch.tensor([0, 1]), n_h=2, lr=1.0, epochs=50)
    >>> hist.examples_seen[:3], hist.loss[0] > hist.loss[-1], hist.accuracy[-1]
    ([0, 2, 4], True, 1.0)

    See Also
    --------
    mlp_backward : the gradients it uses.

    References
    ----------
    Goodfellow, Bengio & Courville (2016), section 8.1.3.  Chapter: :ref:`ch-mlp-backprop`.
    """
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dim() != 1:
        raise TypeError("y must be a 1-D tensor of integer class indices")
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must have shape (N, n_x) with N = len(y) = {y.shape[0]}, got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    check_tensor("X", X, floating=True, real=True, nonempty=True)
    N = X.shape[0]
    check_int("n_h", n_h, 1)
    batch_size = N if batch_size is None else batch_size
    check_int("batch_size", batch_size, 1)
    if batch_size > N:
        raise ValueError(f"batch_size {batch_size} is larger than the number of examples {N}")
    lr = check_number("lr", lr, positive=True)
    check_int("epochs", epochs, 1, limit=10**6)
    check_seed("seed", seed)
    loss = check_choice("loss", loss, _LOSSES)
    eval_every = N if eval_every is None else eval_every
    check_int("eval_every", eval_every, 1)
    n_y = int(y.max()) + 1
    if params is None:
        p = init_mlp(X.shape[1], n_h, n_y, seed=seed, dtype=X.dtype)
    else:
        p = {k: v.detach().clone() for k, v in _check_params(params).items()}
    _check_X(X, p["W_h"].shape[1])
    T = _targets(torch.empty(N, p["W_y"].shape[0], dtype=X.dtype), y)  # (N, n_y) one-hot
    gen = torch.Generator().manual_seed(seed + 1)

    seen, clock = 0, 0.0
    hist: dict[str, list] = {"examples_seen": [], "loss": [], "accuracy": [], "wall_time": []}

    def record() -> None:
        c = _forward(p, X)
        hist["examples_seen"].append(seen)
        hist["loss"].append(float(_loss_from_logits(c["y_tilde"], T, loss)))
        hist["accuracy"].append(float((c["y_tilde"].argmax(dim=1) == y).double().mean()))
        hist["wall_time"].append(clock)

    record()
    next_eval = eval_every
    for _ in range(epochs):
        order = torch.randperm(N, generator=gen)
        start = time.perf_counter()
        for i in range(0, N, batch_size):
            idx = order[i:i + batch_size]
            Xb = X[idx]
            g = _backward(p, Xb, T[idx], _forward(p, Xb), loss)
            for name in _NAMES:                      # θ <- θ - η ∇θ L
                p[name].sub_(lr * g["d" + name])
            seen += idx.shape[0]
            if seen >= next_eval:
                clock += time.perf_counter() - start
                record()
                next_eval += eval_every * ((seen - next_eval) // eval_every + 1)
                start = time.perf_counter()
        clock += time.perf_counter() - start
    return TrainHistory(params=p, batch_size=batch_size, lr=lr, **hist)


# --- deep tanh MLPs: the cost of backpropagation --------------------------------------


def init_deep_mlp(widths: Sequence[int], *, seed: int = 0,
                  dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    r"""Parameters ``[W_1, b_1, ..., W_L, b_L]`` of a tanh MLP with the given widths.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``: input size, hidden sizes, number of classes
        (at least two entries, all >= 1).
    seed : int
        Seed of a private generator.
    dtype : torch.dtype

    Returns
    -------
    list of torch.Tensor
        ``W_l`` of shape ``(n_l, n_{l-1})`` (Glorot normal), ``b_l`` zeros ``(n_l,)``.

    Raises
    ------
    TypeError, ValueError
        If ``widths`` has fewer than two entries or a width is not a positive int.

    Examples
    --------
    >>> [tuple(t.shape) for t in init_deep_mlp([2, 8, 3])]
    [(8, 2), (8,), (3, 8), (3,)]

    See Also
    --------
    deep_mlp_loss, deep_mlp_backprop, init_mlp

    References
    ----------
    Glorot & Bengio (2010).  Chapter: :ref:`ch-mlp-backprop`.
    """
    widths = list(int_sequence("widths", widths, 1, min_len=2))
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]), 1):
        check_entries(f"W_{i} of shape (widths[{i}], widths[{i - 1}]) = ({n_out}, {n_in})",
                      n_in * n_out)
    check_seed("seed", seed)
    check_dtype("dtype", dtype, floating=True)
    gen = torch.Generator().manual_seed(seed)
    params: list[torch.Tensor] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        params += [_glorot(n_out, n_in, None, gen, dtype), torch.zeros(n_out, dtype=dtype)]
    return params


def _check_deep(params: object, X: object) -> list[torch.Tensor]:
    if not isinstance(params, (list, tuple)) or len(params) < 2 or len(params) % 2 \
            or not all(isinstance(t, torch.Tensor) for t in params):
        raise ValueError("params must be a list [W_1, b_1, ..., W_L, b_L] of tensors, of even "
                         "length >= 2")
    W = params[0]
    check_tensor("X", X, floating=True, real=True)
    if X.dim() != 2 or W.dim() != 2 or X.shape[1] != W.shape[1] or X.dtype != W.dtype:
        raise ValueError(f"X must have shape (B, n_0) = (B, {W.shape[-1]}) and the dtype of "
                         f"W_1, {W.dtype}; got shape {tuple(X.shape)} and {X.dtype}")
    return list(params)


def deep_mlp_loss(params: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean cross-entropy of a deep MLP: tanh after every layer except the last.

    Parameters
    ----------
    params : list of torch.Tensor
        As returned by :func:`init_deep_mlp`.
    X : torch.Tensor
        Inputs ``(B, n_0)``.
    y : torch.Tensor
        Class indices ``(B,)``.

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    TypeError, ValueError
        On a malformed parameter list or bad targets.

    Examples
    --------
    >>> import torch, math
    >>> params = init_deep_mlp([2, 5, 5, 4])
    >>> _ = params[-2].zero_()                # last layer zero: uniform prediction
    >>> round(float(deep_mlp_loss(params, torch.ones(3, 2, dtype=torch.float64), torch.tensor([0, 1, 3]))), 6) == round(math.log(4), 6)
    True

    See Also
    --------
    deep_mlp_backprop, finite_difference_grad

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    params = _check_deep(params, X)
    a = X
    for l in range(0, len(params) - 2, 2):
        a = torch.tanh(a @ params[l].T + params[l + 1])   # (B, n_l)
    z = a @ params[-2].T + params[-1]                     # (B, n_L)
    return cross_entropy(z, y).mean()


def deep_mlp_backprop(params: Sequence[torch.Tensor], X: torch.Tensor,
                      y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r"""Loss and gradients of :func:`deep_mlp_loss` by backpropagation, written by hand.

    Explanation
    -----------
    One forward pass stores the activations :math:`a_0 = x, a_1, \dots`; one backward
    pass carries :math:`\delta_l = \partial L/\partial z_l` down the layers:
    :math:`\delta_L = (\hat y - y)/B`, :math:`\partial L/\partial W_l = \delta_l^\top
    a_{l-1}`, :math:`\delta_{l-1} = (\delta_l W_l) \odot (1 - a_{l-1}^2)`.  Each
    step costs about what the forward step of that layer costs, so the gradient of
    every parameter costs a small multiple of one forward pass.

    Parameters
    ----------
    params, X, y
        As :func:`deep_mlp_loss`.

    Returns
    -------
    (loss, grads)
        The scalar loss and one gradient per parameter, in the order of ``params``.

    Raises
    ------
    TypeError, ValueError
        As :func:`deep_mlp_loss`.

    Examples
    --------
    >>> import torch
    >>> params = init_deep_mlp([2, 4, 4, 3])
    >>> loss, grads = deep_mlp_backprop(params, torch.ones(5, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1]))
    >>> [tuple(g.shape) for g in grads] == [tuple(p.shape) for p in params]
    True

    See Also
    --------
    deep_mlp_loss, finite_difference_grad, mlp_backward

    References
    ----------
    Rumelhart, Hinton & Williams (1986).  Chapter: :ref:`ch-mlp-backprop`.
    """
    params = _check_deep(params, X)
    acts = [X]
    for l in range(0, len(params) - 2, 2):
        acts.append(torch.tanh(acts[-1] @ params[l].T + params[l + 1]))   # (B, n_l)
    z = acts[-1] @ params[-2].T + params[-1]                              # (B, n_L)
    loss = cross_entropy(z, y).mean()
    delta = (softmax(z) - _targets(z, y)) / X.shape[0]                    # ∂L/∂z_L  (B, n_L)
    grads: list[torch.Tensor] = [torch.empty(0)] * len(params)
    for l in range(len(params) - 2, -1, -2):
        a_prev = acts[l // 2]                                             # (B, n_{l-1})
        grads[l] = delta.T @ a_prev                                       # ∂L/∂W = δᵀ a
        grads[l + 1] = delta.sum(dim=0)
        if l:
            delta = (delta @ params[l]) * (1.0 - a_prev ** 2)             # tanh' = 1 - a^2
    return loss, grads


def finite_difference_grad(f: Callable[[], torch.Tensor | float], tensors: Sequence[torch.Tensor],
                           eps: float = 1e-6, scheme: str = "central") -> list[torch.Tensor]:
    r"""Gradient of ``f()`` with respect to every entry of ``tensors`` by finite differences.

    Explanation
    -----------
    The naive way to differentiate: perturb one parameter at a time and re-evaluate
    the whole function.  ``"forward"``: :math:`(f(\theta + \epsilon e_i) - f(\theta))/\epsilon`,
    one extra evaluation per parameter, error :math:`O(\epsilon)`; ``"central"``:
    :math:`(f(\theta + \epsilon e_i) - f(\theta - \epsilon e_i))/2\epsilon`, two
    evaluations per parameter, error :math:`O(\epsilon^2)`.  The tensors are modified
    in place during the call and restored afterwards.

    Parameters
    ----------
    f : callable
        ``f()`` returns a scalar computed from ``tensors``.
    tensors : sequence of torch.Tensor
        The parameters (floating point).
    eps : float
        Step :math:`0 < \epsilon \le 1`.
    scheme : {"central", "forward"}

    Returns
    -------
    list of torch.Tensor
        One gradient per tensor.

    Raises
    ------
    ValueError
        If ``eps`` is not positive or ``scheme`` is unknown.
    TypeError
        If a tensor is not floating point.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> [g.round(decimals=6).tolist() for g in finite_difference_grad(lambda: (w ** 2).sum(), [w])]
    [[2.0, 4.0]]

    See Also
    --------
    deep_mlp_backprop : the same gradient in about one forward and one backward pass.

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    check_callable("f", f)
    eps = check_number("eps", eps, interval="(0, 1]")    # a larger step is no derivative
    check_choice("scheme", scheme, ("central", "forward"))
    if not isinstance(tensors, (list, tuple)) or \
            not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in tensors):
        raise TypeError("tensors must be a list of floating-point torch.Tensor")
    base = float(f()) if scheme == "forward" else 0.0
    grads = []
    for t in tensors:
        flat, g = t.view(-1), torch.empty(t.numel(), dtype=t.dtype)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + eps
            up = float(f())
            if scheme == "forward":
                g[i] = (up - base) / eps
            else:
                flat[i] = old - eps
                g[i] = (up - float(f())) / (2 * eps)
            flat[i] = old
        grads.append(g.view_as(t))
    return grads


def gradient_timings(depths: Sequence[int], width: int = 8, batch: int = 16, n_classes: int = 3,
                     repeats: int = 3, seed: int = 0) -> list[dict]:
    r"""CPU seconds to get every gradient of a deep tanh MLP: backprop vs finite differences.

    Explanation
    -----------
    For each depth :math:`L` (number of weight layers, all ``width`` wide), time one
    forward pass, one :func:`deep_mlp_backprop` and one forward-difference
    :func:`finite_difference_grad` (:math:`P + 1` forward passes for :math:`P`
    parameters).  Times are CPU time of this process (``time.process_time``), so that
    other programs sharing the CPU do not inflate them; each is the minimum of ``repeats``
    runs.  Since :math:`P` grows like :math:`L` and each pass
    like :math:`L`, finite differences grow like :math:`L^2`, backprop like :math:`L`.

    Parameters
    ----------
    depths : sequence of int
        Numbers of weight layers, each >= 1.
    width, batch, n_classes, repeats, seed : int
        Hidden width (also the input size), batch size, classes, repetitions, seed.

    Returns
    -------
    list of dict
        One row per depth: ``layers``, ``parameters``, ``forward_s``, ``backprop_s``,
        ``finite_diff_s``, ``finite_diff_passes``.

    Raises
    ------
    TypeError, ValueError
        If an argument is not a positive int.

    Examples
    --------
    >>> rows = gradient_timings([1, 2], width=4, batch=2, repeats=1)
    >>> [(r["layers"], r["parameters"], r["finite_diff_passes"]) for r in rows]
    [(1, 15, 16), (2, 35, 36)]

    See Also
    --------
    deep_mlp_backprop, finite_difference_grad

    References
    ----------
    Chapter: :ref:`ch-mlp-backprop`.
    """
    for name, value in (("width", width), ("batch", batch), ("n_classes", n_classes)):
        check_int(name, value, 1)
    depths = int_sequence("depths", depths, 1)
    for i, L in enumerate(depths):
        check_int(f"depths[{i}]", L, 1, limit=1000)    # finite differences cost O(P^2) per row
    check_entries(f"X of shape (batch, width) = ({batch}, {width})", batch * width)
    check_entries(f"a hidden layer of width {width}", width * width)
    check_entries(f"the last layer of shape (n_classes, width) = ({n_classes}, {width})",
                  n_classes * width)
    check_int("repeats", repeats, 1, limit=1000)
    check_seed("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    y = torch.randint(n_classes, (batch,), generator=gen)

    def best(fn: Callable[[], object], k: int) -> float:
        times = []
        for _ in range(k):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return min(times)

    rows = []
    for L in depths:
        params = init_deep_mlp([width] * L + [n_classes], seed=seed)
        P = sum(t.numel() for t in params)
        rows.append({
            "layers": L,
            "parameters": P,
            "forward_s": best(lambda: deep_mlp_loss(params, X, y), repeats),
            "backprop_s": best(lambda: deep_mlp_backprop(params, X, y), repeats),
            "finite_diff_s": best(lambda: finite_difference_grad(
                lambda: deep_mlp_loss(params, X, y), params, scheme="forward"), repeats),
            "finite_diff_passes": P + 1,
        })
    return rows
