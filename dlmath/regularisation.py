r"""Regularisation and optimisation, written from their definitions.

Scope: dropout in its two equivalent forms (*inverted*: scale the kept units by
:math:`1/(1-p)` while training, do nothing at test time, as ``torch.nn.Dropout`` does; and
the original form of Srivastava et al.: keep the units unscaled while training, multiply by
the keep probability :math:`1-p` at test time); gradient descent with heavy-ball (Polyak) or
Nesterov momentum on a quadratic :math:`f(x) = \tfrac12 x^\top A x - b^\top x`, its
trajectory, the convergence rate of each eigen-direction and the optimal step and momentum;
per-channel normalisation statistics taken from the training split only; and the accuracy of
a classifier per class (used to see which digits survive a mirror flip).
Chapter: :ref:`ch-regularisation`.

Conventions: ``p`` is the probability of *dropping* a unit (PyTorch's convention; Srivastava
et al. write :math:`p` for the probability of *keeping* it).  Momentum follows
``torch.optim.SGD``: :math:`v_t = \mu v_{t-1} + g_t`, :math:`x_{t+1} = x_t - \eta v_t`
(Nesterov: :math:`x_{t+1} = x_t - \eta(g_t + \mu v_t)`), with :math:`v_{-1} = 0`.

References: Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, "Dropout" (JMLR
2014); Polyak, "Some methods of speeding up the convergence of iteration methods" (1964);
Nesterov (1983); Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
momentum in deep learning" (ICML 2013); Ioffe & Szegedy, "Batch normalization" (ICML 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from dlmath._validate import (
    check_bool,
    check_device,
    check_entries,
    check_generator,
    check_int,
    check_number,
    check_tensor,
    int_sequence,
)
from dlmath.data.tensors import DataSplits, TensorSplit

__all__ = [
    "dropout_mask",
    "inverted_dropout",
    "weight_scaling_dropout",
    "quadratic_gd_trajectory",
    "momentum_rate",
    "optimal_gradient_descent",
    "optimal_heavy_ball",
    "channel_statistics",
    "normalise",
    "normalise_with_train_statistics",
    "class_accuracy",
]


# --------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------

def _mask_for(x: torch.Tensor, p: float, generator: torch.Generator | None,
              mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return dropout_mask(x.shape, p, generator=generator, device=x.device)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got "
                        f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if mask.shape != x.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but x has {tuple(x.shape)}")
    return mask


def dropout_mask(shape: Sequence[int], p: float, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    r"""A random keep-mask: each entry is ``True`` (kept) with probability :math:`1-p`.

    Explanation
    -----------
    Entry :math:`m_i \sim \mathrm{Bernoulli}(1-p)`, independently: :math:`m_i = [u_i \ge p]`
    for :math:`u_i` uniform on :math:`[0, 1)`.

    Parameters
    ----------
    shape : sequence of int
    p : float
        Drop probability in ``[0, 1)``.
    generator : torch.Generator, optional
    device : torch.device or str, optional

    Returns
    -------
    torch.Tensor
        Bool tensor of ``shape``.

    Raises
    ------
    ValueError
        If ``p`` is not in ``[0, 1)``.

    Examples
    --------
    >>> m = dropout_mask((1000,), 0.25, torch.Generator().manual_seed(0))
    >>> m.dtype, round(m.float().mean().item(), 2)
    (torch.bool, 0.75)
    >>> bool(dropout_mask((3,), 0.0).all())
    True

    See Also
    --------
    inverted_dropout, weight_scaling_dropout : the two ways of using the mask.

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    p = check_number("p", p, interval="[0, 1)")
    shape = int_sequence("shape", shape, 0, min_len=0)
    check_entries(f"a mask of shape {shape}", math.prod(shape))
    check_generator("generator", generator)
    device = check_device("device", device)
    u = torch.rand(shape, generator=generator, device=device)
    return u >= p


def inverted_dropout(x: torch.Tensor, p: float, *, training: bool = True,
                     generator: torch.Generator | None = None,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Inverted dropout: :math:`x \odot m / (1-p)` while training, :math:`x` at test time.

    Explanation
    -----------
    With :math:`m_i \sim \mathrm{Bernoulli}(1-p)`, :math:`\mathbb{E}[x_i m_i/(1-p)] = x_i`,
    so the training-time output is an unbiased estimate of the input and the test-time
    network needs no change.  This is what ``torch.nn.Dropout`` computes in ``train()`` and
    ``eval()`` modes.

    Parameters
    ----------
    x : torch.Tensor
    p : float
        Drop probability in ``[0, 1)``.
    training : bool
        Apply the mask (training) or return ``x`` unchanged (evaluation).
    generator : torch.Generator, optional
        Draws the mask when ``mask`` is not given.
    mask : torch.Tensor, optional
        Bool keep-mask of ``x``'s shape, to reuse a given mask.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        If ``p`` is out of range or ``mask`` has the wrong shape.
    TypeError
        If ``training`` is not a bool or ``mask`` is not a bool tensor.

    Examples
    --------
    >>> x = torch.ones(6)
    >>> m = torch.tensor([True, False, True, True, False, True])
    >>> inverted_dropout(x, 0.5, mask=m)
    tensor([2., 0., 2., 2., 0., 2.])
    >>> inverted_dropout(x, 0.5, training=False)
    tensor([1., 1., 1., 1., 1., 1.])

    See Also
    --------
    weight_scaling_dropout : the original form, scaled at test time instead.
    dropout_mask : the mask.

    References
    ----------
    Srivastava et al. (2014); ``torch.nn.Dropout``.  Chapter: :ref:`ch-regularisation`.
    """
    check_tensor("x", x, floating=True, real=True)
    p = check_number("p", p, interval="[0, 1)")
    check_generator("generator", generator)
    if not check_bool("training", training):
        return x
    keep = _mask_for(x, p, generator, mask)
    # y = x * m / (1 - p)
    return x * keep.to(x.dtype) / (1.0 - p)


def weight_scaling_dropout(x: torch.Tensor, p: float, *, training: bool = True,
                        generator: torch.Generator | None = None,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Dropout as first published: :math:`x \odot m` while training, :math:`(1-p)\,x` at test.

    Explanation
    -----------
    Srivastava et al. keep each unit with probability :math:`1-p` during training and, at
    test time, multiply the outgoing weights by that *keep* probability, so the test-time
    activation equals the training-time expectation :math:`\mathbb{E}[x_i m_i] = (1-p)x_i`.
    Multiplying by the *drop* probability :math:`p` instead is right only for :math:`p = 1/2`.
    The network it defines is :func:`inverted_dropout`'s times :math:`1-p` at every dropped
    layer, which the next linear layer absorbs: the two forms train the same functions.

    Parameters
    ----------
    x : torch.Tensor
    p : float
        Drop probability in ``[0, 1)``.
    training : bool
    generator : torch.Generator, optional
    mask : torch.Tensor, optional
        Bool keep-mask of ``x``'s shape.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        If ``p`` is out of range or ``mask`` has the wrong shape.
    TypeError
        If ``training`` is not a bool or ``mask`` is not a bool tensor.

    Examples
    --------
    >>> x = torch.ones(4)
    >>> weight_scaling_dropout(x, 0.25, mask=torch.tensor([True, True, False, True]))
    tensor([1., 1., 0., 1.])
    >>> weight_scaling_dropout(x, 0.25, training=False)
    tensor([0.7500, 0.7500, 0.7500, 0.7500])

    See Also
    --------
    inverted_dropout : the form PyTorch uses.

    References
    ----------
    Srivastava et al. (2014), section 2.  Chapter: :ref:`ch-regularisation`.
    """
    check_tensor("x", x, floating=True, real=True)
    p = check_number("p", p, interval="[0, 1)")
    check_generator("generator", generator)
    if not check_bool("training", training):
        # test time: the expectation (1 - p) x of the training output
        return (1.0 - p) * x
    return x * _mask_for(x, p, generator, mask).to(x.dtype)


# --------------------------------------------------------------------------------------
# Momentum on a quadratic
# --------------------------------------------------------------------------------------

def _finite_array(name: str, value: object) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__} "
                        f"{value!r}") from None
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return a


def _as_matrix(hessian: object) -> np.ndarray:
    a = _finite_array("hessian", hessian)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"hessian must be a square matrix, got shape {a.shape}")
    if not np.allclose(a, a.T):
        raise ValueError("hessian must be symmetric")
    return a


def _check_lr_momentum(lr: float, momentum: float, nesterov: bool) -> None:
    check_number("lr", lr, positive=True)
    check_number("momentum", momentum, interval="[0, 1)")
    check_bool("nesterov", nesterov)


def quadratic_gd_trajectory(hessian: Sequence[Sequence[float]] | np.ndarray,
                            start: Sequence[float] | np.ndarray, lr: float,
                            momentum: float = 0.0, steps: int = 100, nesterov: bool = False,
                            linear: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    r"""The iterates of gradient descent with momentum on :math:`f(x) = \tfrac12 x^\top A x - b^\top x`.

    Explanation
    -----------
    With :math:`g_t = A x_t - b`, :math:`v_t = \mu v_{t-1} + g_t` (:math:`v_{-1} = 0`) and

    .. math:: x_{t+1} = x_t - \eta v_t \quad\text{(heavy ball)}, \qquad
              x_{t+1} = x_t - \eta (g_t + \mu v_t) \quad\text{(Nesterov)},

    exactly as ``torch.optim.SGD`` updates.  The heavy-ball form is Polyak's
    :math:`x_{t+1} = x_t - \eta g_t + \mu (x_t - x_{t-1})`; the Nesterov form is
    :math:`x_{t+1} = y_t - \eta \nabla f(y_t)` at the look-ahead point
    :math:`y_t = x_t + \mu(x_t - x_{t-1})`, written in the variable PyTorch stores.
    ``momentum=0`` is plain gradient descent.

    Parameters
    ----------
    hessian : (d, d) array_like
        Symmetric :math:`A`.
    start : (d,) array_like
        :math:`x_0`.
    lr : float
        Step size :math:`\eta > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    steps : int
        Number of updates, ``>= 0``.
    nesterov : bool
    linear : (d,) array_like, optional
        :math:`b` (default zero: the minimum is at the origin when :math:`A` is invertible).

    Returns
    -------
    numpy.ndarray
        ``(steps + 1, d)`` float64: :math:`x_0, \dots, x_{\text{steps}}`.

    Raises
    ------
    ValueError
        If ``hessian`` is not square and symmetric, a vector has the wrong length, or
        ``lr``, ``momentum`` or ``steps`` is out of range.

    Examples
    --------
    >>> A = [[1.0, 0.0], [0.0, 10.0]]
    >>> quadratic_gd_trajectory(A, [1.0, 1.0], lr=0.1, steps=2).round(3).tolist()
    [[1.0, 1.0], [0.9, 0.0], [0.81, 0.0]]
    >>> quadratic_gd_trajectory(A, [1.0, 1.0], lr=0.1, momentum=0.5, steps=2)[-1].round(3).tolist()
    [0.76, -0.5]

    See Also
    --------
    momentum_rate : how fast each eigen-direction converges.
    optimal_heavy_ball : the best step and momentum for given curvatures.

    References
    ----------
    Polyak (1964); Sutskever et al. (2013); ``torch.optim.SGD``.
    Chapter: :ref:`ch-regularisation`.
    """
    a = _as_matrix(hessian)
    d = a.shape[0]
    x = _finite_array("start", start).copy()
    b = np.zeros(d) if linear is None else _finite_array("linear", linear)
    if x.shape != (d,) or b.shape != (d,):
        raise ValueError(f"start and linear must have shape ({d},), got {x.shape} and {b.shape}")
    _check_lr_momentum(lr, momentum, nesterov)
    if nesterov and momentum == 0:
        raise ValueError("nesterov needs momentum > 0")
    check_int("steps", steps, 0, limit=10**6)          # every iterate is kept
    check_entries(f"the trajectory of steps={steps} in {d} dimensions", (steps + 1) * d)
    out = np.empty((steps + 1, d))
    out[0] = x
    v = np.zeros(d)
    for t in range(steps):
        g = a @ x - b                      # gradient of 1/2 x^T A x - b^T x
        v = momentum * v + g               # v_t = mu v_{t-1} + g_t
        x = x - lr * (g + momentum * v if nesterov else v)
        out[t + 1] = x
    return out


def momentum_rate(eigenvalue: float, lr: float, momentum: float = 0.0,
                  nesterov: bool = False) -> float:
    r"""Asymptotic contraction factor per step along an eigen-direction of curvature :math:`\lambda`.

    Explanation
    -----------
    Along an eigenvector of :math:`A` with eigenvalue :math:`\lambda`, the error obeys a
    two-term linear recurrence with characteristic polynomial

    .. math:: z^2 - (1 + \mu - \eta\lambda)\, z + \mu \quad\text{(heavy ball)}, \qquad
              z^2 - (1+\mu)(1 - \eta\lambda)\, z + \mu(1 - \eta\lambda) \quad\text{(Nesterov)},

    and the error shrinks like :math:`\rho^t` with :math:`\rho` the largest modulus of its
    roots.  Without momentum :math:`\rho = |1 - \eta\lambda|`.  Complex roots
    (:math:`\rho = \sqrt{\mu}` for the heavy ball) mean the iterate spirals in.

    Parameters
    ----------
    eigenvalue : float
        :math:`\lambda \ge 0`.
    lr : float
    momentum : float
    nesterov : bool

    Returns
    -------
    float
        :math:`\rho`; the iteration converges along this direction iff :math:`\rho < 1`.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> momentum_rate(1.0, lr=0.1)                      # |1 - 0.1|
    0.9
    >>> round(momentum_rate(1.0, lr=0.1, momentum=0.81), 6)   # complex roots: sqrt(0.81)
    0.9
    >>> momentum_rate(30.0, lr=0.1) > 1                 # step too large: diverges
    True

    See Also
    --------
    quadratic_gd_trajectory : the iterates themselves.
    optimal_heavy_ball : the step and momentum that minimise the worst rate.

    References
    ----------
    Polyak (1964); Sutskever et al. (2013), section 2.  Chapter: :ref:`ch-regularisation`.
    """
    check_number("eigenvalue", eigenvalue, nonnegative=True)
    _check_lr_momentum(lr, momentum, nesterov)
    q = 1.0 - lr * eigenvalue
    if nesterov:
        coeffs = [1.0, -(1.0 + momentum) * q, momentum * q]
    else:
        coeffs = [1.0, -(1.0 + momentum - lr * eigenvalue), momentum]
    return float(np.max(np.abs(np.roots(coeffs))))


def _check_curvatures(smallest: float, largest: float) -> None:
    check_number("smallest", smallest, positive=True)
    check_number("largest", largest, positive=True)
    if smallest > largest:
        raise ValueError(f"smallest ({smallest}) must not exceed largest ({largest})")


def optimal_gradient_descent(smallest: float, largest: float) -> tuple[float, float]:
    r"""Step size minimising the worst rate of plain gradient descent, and that rate.

    Explanation
    -----------
    :math:`\max_{\lambda \in [m, L]} |1 - \eta\lambda|` is smallest when
    :math:`1 - \eta m = \eta L - 1`: :math:`\eta^* = 2/(m + L)`, rate
    :math:`(\kappa - 1)/(\kappa + 1)` with :math:`\kappa = L/m`.

    Parameters
    ----------
    smallest, largest : float
        :math:`0 < m \le L`, the extreme eigenvalues of :math:`A`.

    Returns
    -------
    (float, float)
        :math:`\eta^*` and the rate.

    Raises
    ------
    ValueError
        If the curvatures are not positive or not ordered.

    Examples
    --------
    >>> tuple(round(v, 4) for v in optimal_gradient_descent(1.0, 10.0))
    (0.1818, 0.8182)

    See Also
    --------
    optimal_heavy_ball : with momentum.

    References
    ----------
    Polyak (1964).  Chapter: :ref:`ch-regularisation`.
    """
    _check_curvatures(smallest, largest)
    kappa = largest / smallest
    return 2.0 / (smallest + largest), (kappa - 1.0) / (kappa + 1.0)


def optimal_heavy_ball(smallest: float, largest: float) -> tuple[float, float, float]:
    r"""Polyak's step size and momentum for curvatures in :math:`[m, L]`, and the rate.

    Explanation
    -----------
    :math:`\eta^* = 4/(\sqrt L + \sqrt m)^2` and
    :math:`\mu^* = \bigl((\sqrt\kappa - 1)/(\sqrt\kappa + 1)\bigr)^2` put the roots of every
    eigen-direction on the circle :math:`|z| = \sqrt{\mu^*}`, so the rate is
    :math:`(\sqrt\kappa - 1)/(\sqrt\kappa + 1)`: the condition number enters through its
    square root, against :math:`(\kappa - 1)/(\kappa + 1)` without momentum.

    Parameters
    ----------
    smallest, largest : float
        :math:`0 < m \le L`.

    Returns
    -------
    (float, float, float)
        :math:`\eta^*`, :math:`\mu^*` and the rate.

    Raises
    ------
    ValueError
        If the curvatures are not positive or not ordered.

    Examples
    --------
    >>> tuple(round(v, 4) for v in optimal_heavy_ball(1.0, 100.0))
    (0.0331, 0.6694, 0.8182)

    See Also
    --------
    optimal_gradient_descent : without momentum.
    momentum_rate : the rate of any step and momentum.

    References
    ----------
    Polyak (1964).  Chapter: :ref:`ch-regularisation`.
    """
    _check_curvatures(smallest, largest)
    root_kappa = math.sqrt(largest / smallest)
    lr = 4.0 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2
    rate = (root_kappa - 1.0) / (root_kappa + 1.0)
    return lr, rate ** 2, rate


# --------------------------------------------------------------------------------------
# Normalisation with training statistics
# --------------------------------------------------------------------------------------

def channel_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and standard deviation of each channel of ``(N, C, ...)`` data.

    Explanation
    -----------
    For channel :math:`c`, over all :math:`M` values :math:`x_{n c \dots}` of that channel,
    :math:`\bar x_c = \frac1M \sum x` and
    :math:`s_c = \sqrt{\frac{1}{M-1}\sum (x - \bar x_c)^2}` (the sample standard deviation,
    as ``torch.std``).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(N, C, ...)`` with at least two values per channel.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Each of shape ``(C,)``.

    Raises
    ------
    ValueError
        If ``x`` has fewer than two dimensions or fewer than two values per channel.

    Examples
    --------
    >>> x = torch.tensor([[[0.0, 2.0]], [[4.0, 6.0]]])        # (N=2, C=1, 2)
    >>> channel_statistics(x)
    (tensor([3.]), tensor([2.5820]))

    See Also
    --------
    normalise, normalise_with_train_statistics

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("x must be a tensor of shape (N, C, ...)")
    check_tensor("x", x, floating=True, real=True)
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)            # (C, M)
    if flat.shape[1] < 2:
        raise ValueError(f"x needs at least two values per channel, got {flat.shape[1]}")
    return flat.mean(1), flat.std(1)


def _statistic(name: str, value: object) -> torch.Tensor:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor of numbers, got {type(value).__name__}") from None
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be real numbers, got {t.dtype}")
    return t


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    r"""Shift and scale each channel: :math:`(x_{nc\dots} - \bar x_c)/s_c`.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, ...)``.
    mean, std : torch.Tensor
        ``(C,)``; ``std`` positive.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Raises
    ------
    ValueError
        If the statistics do not have one entry per channel or a std is not positive.

    Examples
    --------
    >>> x = torch.tensor([[[1.0, 3.0]]])
    >>> normalise(x, torch.tensor([2.0]), torch.tensor([0.5]))
    tensor([[[-2.,  2.]]])

    See Also
    --------
    channel_statistics : the statistics.

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("x must be a tensor of shape (N, C, ...)")
    check_tensor("x", x, real=True)
    C = x.shape[1]
    # the statistics follow x: a float64 mean does not turn float32 images into float64
    like = {"dtype": x.dtype if x.is_floating_point() else None, "device": x.device}
    mean, std = (_statistic(name, v).to(**like) for name, v in (("mean", mean), ("std", std)))
    if mean.shape != (C,) or std.shape != (C,):
        raise ValueError(f"mean and std must have shape ({C},), one entry per channel, got "
                         f"{tuple(mean.shape)} and {tuple(std.shape)}")
    if not bool((std > 0).all()):
        raise ValueError("std must be positive in every channel")
    view = (1, C) + (1,) * (x.dim() - 2)
    return (x - mean.view(view)) / std.view(view)


def normalise_with_train_statistics(data: DataSplits) -> DataSplits:
    r"""Normalise every split's first input with the channel statistics of the *training* split.

    Explanation
    -----------
    The statistics are a part of the model: they are estimated, like the weights, from the
    training examples only, and then applied unchanged to validation and test examples.  A
    statistic of the test set would make the prediction for one test example depend on
    the other test examples.  The statistics used are stored in ``info["mean"]`` and
    ``info["std"]`` (lists, one value per channel).

    Parameters
    ----------
    data : DataSplits

    Returns
    -------
    DataSplits

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`~dlmath.data.DataSplits`.

    Examples
    --------
    >>> from dlmath.data import digits
    >>> d = normalise_with_train_statistics(digits())
    >>> round(float(d.train.inputs[0].mean()), 6), round(float(d.train.inputs[0].std()), 6)
    (0.0, 1.0)
    >>> abs(float(d.test.inputs[0].mean())) > 0          # the test split is not centred exactly
    True

    See Also
    --------
    channel_statistics, normalise
    dlmath.data.digits : its ``standardize`` option does the same with one channel.

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    if not isinstance(data, DataSplits):
        raise TypeError(f"data must be a DataSplits, got {type(data).__name__}")
    mean, std = channel_statistics(data.train.inputs[0])

    def apply(split: TensorSplit) -> TensorSplit:
        return TensorSplit((normalise(split.inputs[0], mean, std), *split.inputs[1:]),
                           split.targets)

    info = {**dict(data.info), "mean": mean.tolist(), "std": std.tolist()}
    return DataSplits(apply(data.train), apply(data.val), apply(data.test), info=info)


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------

def class_accuracy(predictions: torch.Tensor, targets: torch.Tensor,
                   num_classes: int) -> torch.Tensor:
    r"""Fraction of the examples of each class that are predicted as that class.

    Parameters
    ----------
    predictions : torch.Tensor
        Predicted labels ``(N,)``, or logits ``(N, K)`` (their arg-max is taken).
    targets : torch.Tensor
        True labels ``(N,)`` in ``0..num_classes-1``.
    num_classes : int

    Returns
    -------
    torch.Tensor
        ``(num_classes,)`` float64; NaN for a class with no example.

    Raises
    ------
    ValueError
        If the shapes do not match or a label is out of range.

    Examples
    --------
    >>> class_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    tensor([1.0000, 1.0000, 0.5000], dtype=torch.float64)

    See Also
    --------
    dlmath.data.random_flip : the transform whose effect per class the chapter measures.

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    check_int("num_classes", num_classes, 1)
    check_entries(f"the per-class counts of num_classes={num_classes}", num_classes)
    check_tensor("predictions", predictions, 1, real=True)
    check_tensor("targets", targets, 1, integer=True)
    if predictions.dim() == 1:
        check_tensor("predictions", predictions, integer=True)   # class indices; logits are 2-d
    if predictions.dim() == 2:
        predictions = predictions.argmax(1)
    if predictions.shape != targets.shape or targets.dim() != 1:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets "
                         f"{tuple(targets.shape)} must be (N,) (or logits (N, K))")
    if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"targets must lie in 0..{num_classes - 1}")
    hit = (predictions == targets).double()                                 # (N,)
    correct = torch.zeros(num_classes, dtype=torch.float64, device=targets.device)
    correct.index_add_(0, targets, hit)
    count = torch.bincount(targets, minlength=num_classes).double()
    return correct / count
