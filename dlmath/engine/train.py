"""One training loop for every experiment of the book: a frozen config in, a result out.

Scope: supervised training of any ``torch.nn.Module`` on in-memory tensors
(:class:`dlmath.data.DataSplits`), for classification and for sequence models, with
several seeds of one config trained *together*, deterministic on the CPU, and cached in
the results store (:mod:`dlmath.engine.store`) under the config and the source of the code.

The pieces
----------
* :class:`TrainConfig` (frozen): ``model`` and ``data`` are :class:`~dlmath.engine.store.Ref`\\ s
  (a module-level factory plus keyword arguments), ``task`` the loss and metrics
  (:class:`Classification` covers class labels and padded token sequences), ``optimizer``
  one of :class:`SGD`, :class:`Adam`, :class:`AdamW`, ``schedule`` one of
  :class:`Constant`, :class:`StepDecay`, :class:`Cosine`, :class:`OneCycle` (a factor of
  the learning rate as a function of the step, with optional linear warm-up), ``augment``
  an optional Ref to a batch transform ``f(x, generator, **kwargs)`` (see
  :mod:`dlmath.data.tensors`), and ``seeds``.
* :func:`run` trains and returns a :class:`Result`: per-epoch training loss and validation
  metrics ``(S, E)``, final test metrics ``(S,)``, mean ± std over seeds, the trained
  weights of every seed (:meth:`Result.model`), wall time, throughput, device, torch
  version, and whether it came from the cache.

How seeds are batched
---------------------
Seed ``s`` initialises its model after ``torch.manual_seed(s)`` and draws its data order
(and its augmentation) from its own generators, so the seeds are independent runs.  In
``"batched"`` mode the S models are stacked (:func:`torch.func.stack_module_state`: every
parameter becomes one tensor of shape ``(S, ...)``), one step gathers an ``(S, B)`` index
tensor of examples and computes the S losses in one pass; their sum is back-propagated (the
seeds share no parameter, so each gets its own gradient) and one optimiser steps the stacked
tensors.  SGD (with momentum, Nesterov, weight decay), Adam and AdamW act element by
element, so on stacked tensors they are exactly S separate optimisers (Adam and AdamW use
torch's fused kernel, the same update in one call); gradient clipping by norm is done per
seed.  The pass itself takes one of two routes:

* a plain ``nn.Sequential`` of convolutions, pooling, batch norm, activations, dropout,
  flattening and linear layers (the CNNs and MLPs of the book) runs as one network S times
  as wide (``dlmath.engine._stacked``): a convolution becomes a grouped convolution over the S
  seeds' channels, a linear layer a batched matrix product, images stay channels-last on
  the CPU; no per-layer reshuffling, which is where most of vmap's time goes on a CPU;
* any other model runs under ``vmap(functional_call(...), randomness="different")``.

Before training, the wide network is compared with vmap on a few examples (evaluation, and
one training pass with its batch-norm updates when the model has no dropout) and dropped if
they differ (a model whose linear layers see ``(B, T, F)`` token inputs, say); a model with
hooks never takes it.  Parameters the model factory froze stay frozen.  Batch norm works
batched: each seed keeps its own running statistics.  ``"looped"`` mode trains the seeds one
after another with the plain module; ``"auto"`` (the default) tries one batched step on two
examples and falls back to looping when neither route can batch the model (``nn.LSTM`` and
``nn.GRU`` have no vmap rule).  Both modes follow the same data order and initialisation, so
for a model without dropout they give the same numbers up to float rounding (a test checks
it); with dropout the masks come from different random streams.

Determinism and the cache
-------------------------
All randomness is seeded from the config; the caller's global RNG state is restored
afterwards.  The same config on the same device gives identical numbers run after run on
the CPU (CUDA kernels may not be bitwise deterministic).  :func:`run` stores each result
under :meth:`TrainConfig.key`, the hash of :meth:`TrainConfig.identity`: the config (with
the device type instead of the device), the code behind it
(:func:`dlmath.engine.store.code_sources`: this module, the store, the data module, the
model factory's module, their dlmath imports, torch's version), the bytes of the data
files its Refs name (``root=``, see :func:`dlmath.engine.store.input_files`) and the
numerical environment (:func:`dlmath.engine.store.environment`: default dtype, GPU model,
TF32 and cuDNN flags, Python): an unchanged rebuild loads it, a change to any of them
re-trains.  A stored result is checked before it is used (its SHA-256, that it was stored
for this identity, its shapes); a failed check re-trains with a warning.  A result derived
from a trained one (an evaluation) is cached with ``store.cached(...,
derived_from=[result])``, keyed by the ``key`` of the :class:`Result`.

Sequence models and custom tasks
--------------------------------
The model is called as ``model(*inputs)``, so a split with inputs ``(src, tgt_in)`` and
targets ``tgt_out`` trains an encoder-decoder, and ``Classification(ignore_index=PAD)``
averages the cross-entropy and the accuracy over the non-padding target tokens only.  A
typical language-model config::

    TrainConfig(model=Ref(GPT, config=GPTConfig(vocab_size=V)), data=Ref(lm_windows, ...),
                task=Classification(ignore_index=PAD), optimizer=AdamW(lr=3e-3),
                schedule=Cosine(warmup_steps=100), grad_clip=1.0,
                steps_per_epoch=200, epochs=10, batch_size=64, seeds=(0, 1, 2))

Any other loss is a frozen dataclass with ``loss(outputs, targets) -> scalar`` (written
without data-dependent Python control flow, so that it works under ``vmap``) and
``metrics(outputs, targets) -> {name: (sum, count)}``; define it at module level so that
the cache can name it.  After training, :meth:`Result.model` rebuilds any seed's trained
network (for sampling, decoding, activation maps), :meth:`Result.initial_model` its
initialisation, and :meth:`Result.evaluate` measures every seed on another split (a
shifted or rotated test set).

Example
-------
>>> from dlmath.engine.train import TrainConfig, Ref, SGD, run
>>> from dlmath.models.zoo import three_block_cnn
>>> from dlmath.data import digits
>>> config = TrainConfig(
...     model=Ref(three_block_cnn, in_channels=1, size=8, channels=(4, 8, 8), hidden=(16,),
...               num_classes=10, dropout=0.0),
...     data=Ref(digits, size=8),
...     optimizer=SGD(lr=0.1, momentum=0.9), epochs=2, batch_size=64, seeds=(0, 1, 2))
>>> result = run(config, cache=False)
>>> result.history["val_accuracy"].shape, result.test["accuracy"].shape, result.mode
((3, 2), (3,), 'batched')
>>> mean, std = result.mean_std("test_accuracy")
>>> 0.0 <= mean <= 1.0
True
>>> result.model(1).head.out
Linear(in_features=16, out_features=10, bias=True)

Sweep a learning rate with ``config.replace(optimizer=SGD(lr=lr))``.  Chapter:
:ref:`ch-training-cnns`.

References: Paszke et al., "PyTorch" (2019), for the optimisers whose update rules are used
as they are; the ``torch.func`` documentation, "Model ensembling", for stacking models
under ``vmap``; Loshchilov & Hutter (2017) for cosine schedules; Smith & Topin (2019) for
the one-cycle schedule, as in ``torch.optim.lr_scheduler.OneCycleLR``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from dlmath._validate import check_bool, check_choice, check_device, check_int, check_number
from dlmath.engine import _stacked, store
from dlmath.engine.hardware import device as _default_device
from dlmath.data.tensors import DataSplits, TensorSplit
from dlmath.engine.store import Ref

__all__ = [
    "Ref",
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "StepDecay",
    "Cosine",
    "OneCycle",
    "Classification",
    "TrainConfig",
    "Result",
    "run",
]


# --------------------------------------------------------------------------------------
# Optimisers: frozen descriptions of torch.optim optimisers
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    Explanation
    -----------
    ``torch.optim.SGD``: with gradient :math:`g_t` (plus :math:`\\lambda w_t` for weight
    decay :math:`\\lambda`), :math:`v_t = \\mu v_{t-1} + g_t` and :math:`w_{t+1} = w_t -
    \\eta v_t` (Nesterov: :math:`w_{t+1} = w_t - \\eta (g_t + \\mu v_t)`).

    Examples
    --------
    >>> SGD(lr=0.1, momentum=0.9).build([torch.zeros(2, requires_grad=True)]).defaults["momentum"]
    0.9
    >>> SGD(lr=0.1, nesterov=True)
    Traceback (most recent call last):
    ...
    ValueError: nesterov needs momentum > 0
    """

    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_number("lr", self.lr, positive=True)
        check_number("momentum", self.momentum, interval="[0, 1)")
        check_bool("nesterov", self.nesterov)
        check_number("weight_decay", self.weight_decay, nonnegative=True)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")

    def build(self, params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
        """The torch optimiser over ``params``."""
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient.

    Examples
    --------
    >>> Adam(lr=1e-3).build([torch.zeros(2, requires_grad=True)]).defaults["betas"]
    (0.9, 0.999)
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_number("lr", self.lr, positive=True)
        check_number("eps", self.eps, positive=True)
        check_number("weight_decay", self.weight_decay, nonnegative=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(check_number(f"betas[{i}]", b, interval="[0, 1)")
                                                for i, b in enumerate(self.betas)))

    def build(self, params: Sequence[torch.Tensor], fused: bool = False
              ) -> torch.optim.Optimizer:
        """The torch optimiser over ``params`` (``fused``: torch's one-kernel update)."""
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps,
                                weight_decay=self.weight_decay, fused=fused or None)


@dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay, :math:`w \\leftarrow w - \\eta\\lambda w`.

    Explanation
    -----------
    ``torch.optim.AdamW`` (Loshchilov & Hutter, "Decoupled weight decay regularization",
    2019): the decay is applied to the weights directly instead of being added to the
    gradient, so Adam's normalisation does not rescale it.

    Examples
    --------
    >>> AdamW().weight_decay
    0.01
    """

    weight_decay: float = 0.01

    def build(self, params: Sequence[torch.Tensor], fused: bool = False
              ) -> torch.optim.Optimizer:
        """The torch optimiser over ``params`` (``fused``: torch's one-kernel update)."""
        return torch.optim.AdamW(params, lr=self.lr, betas=self.betas, eps=self.eps,
                                 weight_decay=self.weight_decay, fused=fused or None)


Optimizer = Union[SGD, Adam, AdamW]


# --------------------------------------------------------------------------------------
# Learning-rate schedules: factor(step) multiplies the optimiser's lr
# --------------------------------------------------------------------------------------

def _warmup(step: int, warmup_steps: int) -> float:
    # linear warm-up: (step + 1) / warmup_steps for the first warmup_steps steps
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


@dataclass(frozen=True)
class Constant:
    """The learning rate itself, after an optional linear warm-up.

    Examples
    --------
    >>> [Constant(warmup_steps=4).factor(s, total=10, steps_per_epoch=5) for s in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_int("warmup_steps", self.warmup_steps, 0)

    def factor(self, step: int, total: int, steps_per_epoch: int) -> float:
        """Multiplier of the learning rate at ``step`` (0-based) of ``total``."""
        return _warmup(step, self.warmup_steps)


@dataclass(frozen=True)
class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``every_epochs`` epochs.

    Explanation
    -----------
    Factor :math:`\\gamma^{\\lfloor t / (e \\cdot n) \\rfloor}` at step :math:`t` with
    :math:`n` steps per epoch; ``torch.optim.lr_scheduler.StepLR`` with
    ``step_size = every_epochs * steps_per_epoch`` stepped once per batch.

    Examples
    --------
    >>> s = StepDecay(every_epochs=2, gamma=0.5)
    >>> [s.factor(t, total=30, steps_per_epoch=5) for t in (0, 9, 10, 20)]
    [1.0, 1.0, 0.5, 0.25]
    """

    every_epochs: int
    gamma: float = 0.1
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_int("every_epochs", self.every_epochs, 1)
        check_number("gamma", self.gamma, positive=True)
        check_int("warmup_steps", self.warmup_steps, 0)

    def factor(self, step: int, total: int, steps_per_epoch: int) -> float:
        """Multiplier of the learning rate at ``step`` (0-based) of ``total``."""
        return self.gamma ** (step // (self.every_epochs * steps_per_epoch)) \
            * _warmup(step, self.warmup_steps)


@dataclass(frozen=True)
class Cosine:
    """Linear warm-up, then a half cosine from 1 down to ``final``.

    Explanation
    -----------
    After :math:`w` warm-up steps, with :math:`u = (t - w)/(T - w)`, the factor is
    :math:`f + (1 - f)(1 + \\cos \\pi u)/2`: ``CosineAnnealingLR(T_max=T, eta_min=f*lr)``
    when :math:`w = 0`.

    Examples
    --------
    >>> c = Cosine(final=0.1)
    >>> [round(c.factor(t, total=10, steps_per_epoch=5), 3) for t in (0, 5, 10)]
    [1.0, 0.55, 0.1]
    """

    warmup_steps: int = 0
    final: float = 0.0

    def __post_init__(self) -> None:
        check_int("warmup_steps", self.warmup_steps, 0)
        check_number("final", self.final, interval="[0, 1]")

    def factor(self, step: int, total: int, steps_per_epoch: int) -> float:
        """Multiplier of the learning rate at ``step`` (0-based) of ``total``."""
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        u = min(1.0, (step - self.warmup_steps) / max(1, total - self.warmup_steps))
        return self.final + (1 - self.final) * (1 + math.cos(math.pi * u)) / 2


@dataclass(frozen=True)
class OneCycle:
    """One cycle: cosine up from ``1/div_factor`` to 1, then down to nearly 0.

    Explanation
    -----------
    The learning rate of the config is the peak, reached after the first ``pct_start`` of
    the steps; the final factor is ``1/(div_factor * final_div_factor)``.  Both phases
    follow a half cosine.  This is
    ``torch.optim.lr_scheduler.OneCycleLR`` (``anneal_strategy="cos"``, no momentum
    cycling), which a test uses as the oracle.

    Examples
    --------
    >>> o = OneCycle()
    >>> [round(o.factor(t, total=100, steps_per_epoch=10), 3) for t in (0, 29, 99)]
    [0.04, 1.0, 0.0]
    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        check_number("pct_start", self.pct_start, interval="(0, 1)")
        check_number("div_factor", self.div_factor, positive=True)
        check_number("final_div_factor", self.final_div_factor, positive=True)

    def factor(self, step: int, total: int, steps_per_epoch: int) -> float:
        """Multiplier of the learning rate at ``step`` (0-based) of ``total``."""
        start = 1 / self.div_factor
        low = start / self.final_div_factor
        peak_step = self.pct_start * total - 1

        def cos_anneal(a: float, b: float, pct: float) -> float:
            return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

        if step <= peak_step:
            return cos_anneal(start, 1.0, step / peak_step if peak_step > 0 else 1.0)
        return cos_anneal(1.0, low, min(1.0, (step - peak_step) / (total - 1 - peak_step)))


Schedule = Union[Constant, StepDecay, Cosine, OneCycle]


# --------------------------------------------------------------------------------------
# Tasks: the loss that is minimised and the metrics that are reported
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Classification:
    """Cross-entropy on logits against integer labels; also tokens of padded sequences.

    Explanation
    -----------
    Outputs ``(..., K)`` and targets ``(...)`` are flattened to ``(M, K)`` and ``(M,)``: one
    label per image ``(B,)``, or one per token ``(B, T)``.  Targets equal to
    ``ignore_index`` (a padding id) count in neither the loss nor the metrics.  The loss is
    the mean cross-entropy over counted targets, with optional label smoothing; the metrics
    are the mean cross-entropy without smoothing (``loss``) and the fraction of counted
    targets whose largest logit is the label (``accuracy``).

    A custom task is any frozen dataclass with the same two methods: ``loss(outputs,
    targets)`` returns a scalar tensor and must work under ``torch.func.vmap`` (no
    data-dependent Python control flow, no boolean indexing) for batched seeds; ``metrics``
    returns ``{name: (sum, count)}`` for one seed and one batch, and the reported value is
    the total sum over the total count.

    Parameters
    ----------
    ignore_index : int, optional
        Target id to skip.
    label_smoothing : float
        In ``[0, 1)``; training loss only.

    Examples
    --------
    >>> task = Classification(ignore_index=0)
    >>> logits = torch.tensor([[[0.0, 5.0], [5.0, 0.0]]])       # (B=1, T=2, K=2)
    >>> targets = torch.tensor([[1, 0]])                         # the second token is padding
    >>> round(float(task.loss(logits, targets)), 4)              # log(1 + e^-5)
    0.0067
    >>> {k: (float(s), float(n)) for k, (s, n) in task.metrics(logits, targets).items()}
    {'loss': (0.006715348921716213, 1.0), 'accuracy': (1.0, 1.0)}
    """

    ignore_index: int | None = None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        check_int("ignore_index", self.ignore_index, allow_none=True)
        check_number("label_smoothing", self.label_smoothing, interval="[0, 1)")

    def _flat(self, outputs: torch.Tensor, targets: torch.Tensor):
        if not isinstance(outputs, torch.Tensor):
            raise TypeError(f"the model must return a tensor of logits, got "
                            f"{type(outputs).__name__}")
        if outputs.shape[:-1] != targets.shape:
            raise ValueError(f"logits {tuple(outputs.shape)} do not match targets "
                             f"{tuple(targets.shape)}: expected logits (..., K) for targets (...)")
        return outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the counted targets (a scalar; 0 if none is counted).

        Written with ``log_softmax`` and ``gather``, which vmap batches natively; a test
        checks it against ``F.cross_entropy``.
        """
        z, y = self._flat(outputs, targets)                                # (M, K), (M,)
        logp = z.log_softmax(-1)                                           # (M, K)
        if self.ignore_index is None:
            keep = None
        else:
            keep = y != self.ignore_index                                  # (M,)
            y = torch.where(keep, y, torch.zeros_like(y))
        # -log p_y, and with smoothing eps: (1 - eps)(-log p_y) + eps * mean_k(-log p_k)
        nll = -logp.gather(-1, y[:, None])[:, 0]                           # (M,)
        if self.label_smoothing:
            eps = self.label_smoothing
            nll = (1 - eps) * nll - eps * logp.mean(-1)
        if keep is None:
            return nll.mean()
        return (nll * keep).sum() / keep.sum().clamp(min=1)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{"loss": (sum of cross-entropies, count), "accuracy": (correct, count)}``."""
        z, y = self._flat(outputs, targets)
        keep = torch.ones_like(y, dtype=torch.bool) if self.ignore_index is None \
            else y != self.ignore_index                                     # (M,)
        ignore = -100 if self.ignore_index is None else self.ignore_index
        ce = F.cross_entropy(z.float(), y, ignore_index=ignore, reduction="sum")
        correct = ((z.argmax(-1) == y) & keep).sum()
        count = keep.sum()
        return {"loss": (ce, count), "accuracy": (correct, count)}


# --------------------------------------------------------------------------------------
# The config and the result
# --------------------------------------------------------------------------------------

_MODES = ("auto", "batched", "looped")
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; frozen and hashable to a canonical key.

    Attributes
    ----------
    model : Ref
        Factory of the ``nn.Module``, e.g. ``Ref(three_block_cnn, in_channels=1, size=16)``.
        It is called once per seed after ``torch.manual_seed(seed)``.  The model is called
        as ``model(*inputs)``.
    data : Ref
        Function returning a :class:`dlmath.data.DataSplits`, e.g. ``Ref(digits, size=16)``.
    optimizer : SGD, Adam or AdamW
        The peak learning rate is ``optimizer.lr``.
    schedule : Constant, StepDecay, Cosine or OneCycle
        The factor of the learning rate at each step.
    task : Classification or a custom task dataclass
        Loss and metrics (see :class:`Classification`).
    epochs : int
        Number of epochs; the validation metrics are computed after each.
    batch_size : int
    seeds : tuple of int
        One independent run per seed; they are trained together when possible.
    augment : Ref, optional
        ``augment(x, generator, **kwargs) -> x`` applied to the first input of each
        training batch on the device, with each seed's own ``torch.Generator``; e.g.
        ``Ref(dlmath.data.random_crop, padding=2)``.
    grad_clip : float, optional
        Clip each seed's gradient to this total 2-norm (``clip_grad_norm_``).
    steps_per_epoch : int, optional
        Steps per epoch; by default one pass over the training split.  When set, batches of
        exactly ``batch_size`` are drawn from a fresh permutation whenever the last one runs
        out, so an "epoch" is an evaluation interval (useful for large token data sets).
    drop_last : bool
        Drop the last, smaller batch of each pass.
    eval_splits : tuple of str
        Splits evaluated after every epoch (``"val"``, and ``"train"`` for overfitting
        curves); the test split is evaluated once, at the end.
    eval_batch_size : int
    mode : {"auto", "batched", "looped"}
        How seeds are trained (see the module docstring).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; default :func:`dlmath.device`.  Only the device *type*
        enters the cache key.

    Examples
    --------
    >>> from dlmath.data import digits
    >>> from dlmath import device
    >>> from dlmath.models.zoo import mlp
    >>> c = TrainConfig(model=Ref(mlp, sizes=(64, 10)), data=Ref(digits), seeds=(0, 1))
    >>> c.replace(epochs=3).epochs, c.key() == c.replace(device=str(device())).key()
    (3, True)
    >>> TrainConfig(model=Ref(mlp, sizes=(64, 10)), data=Ref(digits), seeds=(0, 0))
    Traceback (most recent call last):
    ...
    ValueError: seeds must be distinct ints, got (0, 0)
    """

    model: Ref
    data: Ref
    optimizer: Optimizer = SGD(lr=0.1)
    schedule: Schedule = Constant()
    task: Any = Classification()
    epochs: int = 10
    batch_size: int = 64
    seeds: tuple[int, ...] = (0,)
    augment: Ref | None = None
    grad_clip: float | None = None
    steps_per_epoch: int | None = None
    drop_last: bool = False
    eval_splits: tuple[str, ...] = ("val",)
    eval_batch_size: int = 1024
    mode: str = "auto"
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("model", "data"):
            if not isinstance(getattr(self, name), Ref):
                raise TypeError(f"{name} must be a dlmath.engine.store.Ref, got "
                                f"{type(getattr(self, name)).__name__}")
        if self.augment is not None and not isinstance(self.augment, Ref):
            raise TypeError(f"augment must be a Ref or None, got {type(self.augment).__name__}")
        if not isinstance(self.optimizer, (SGD, Adam)):
            raise TypeError(f"optimizer must be SGD, Adam or AdamW, got "
                            f"{type(self.optimizer).__name__}")
        if not hasattr(self.schedule, "factor"):
            raise TypeError(f"schedule must be Constant, StepDecay, Cosine or OneCycle, got "
                            f"{type(self.schedule).__name__}")
        if not (dataclasses.is_dataclass(self.task) and hasattr(self.task, "loss")
                and hasattr(self.task, "metrics")):
            raise TypeError("task must be a dataclass instance with loss() and metrics() "
                            "methods, e.g. Classification()")
        check_int("epochs", self.epochs, 1, limit=10**6)
        check_int("batch_size", self.batch_size, 1)
        check_int("eval_batch_size", self.eval_batch_size, 1)
        seeds = tuple(self.seeds) if isinstance(self.seeds, (tuple, list)) else (self.seeds,)
        seeds = tuple(check_int(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct ints, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        check_bool("drop_last", self.drop_last)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, positive=True)
        if self.steps_per_epoch is not None:
            check_int("steps_per_epoch", self.steps_per_epoch, 1, limit=10**9)
        if isinstance(self.eval_splits, (str, bytes)) or \
                not isinstance(self.eval_splits, (tuple, list)):
            raise TypeError(f"eval_splits must be a tuple of split names, got "
                            f"{self.eval_splits!r}")
        splits = tuple(self.eval_splits)
        if any(s not in ("train", "val") for s in splits) or len(set(splits)) != len(splits):
            raise ValueError(f"eval_splits must be distinct names among 'train', 'val', got "
                             f"{self.eval_splits!r}")
        object.__setattr__(self, "eval_splits", splits)
        check_choice("mode", self.mode, _MODES)
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"device must be a str or None, got {type(self.device).__name__}")
        if self.device not in (None, "auto"):
            check_device("device", self.device)       # the name; whether it exists: at run time
        store.canonical(self.task, "task")       # fail now, not after training

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def resolved_device(self) -> torch.device:
        """The device this config trains on."""
        return _default_device(self.device)

    def spec(self) -> dict[str, Any]:
        """The canonical JSON of the config, with the device replaced by its type."""
        spec = store.canonical(self, "config")
        spec["device"] = self.resolved_device().type
        return spec

    def code(self) -> dict[str, str]:
        """The code behind this config (see :func:`dlmath.engine.store.code_sources`)."""
        return store.code_sources(sys.modules[__name__], self.model, self.data, self.task,
                                  self.augment, self.optimizer, self.schedule)

    def identity(self) -> dict[str, Any]:
        """What the result depends on (:func:`dlmath.engine.store.identity`): the spec, the
        code fingerprint, the data files the Refs name, the environment of the device."""
        return store.identity(self.spec(), code=[sys.modules[__name__], self.model, self.data,
                                                 self.task, self.augment, self.optimizer,
                                                 self.schedule],
                              device=self.resolved_device())

    def key(self) -> str:
        """The cache key: :func:`dlmath.engine.store.spec_key` of :meth:`identity`."""
        return store.spec_key(self.identity())


@dataclass(frozen=True)
class Result:
    """What a training run produced.

    Attributes
    ----------
    config : TrainConfig
    seeds : tuple of int
    history : dict of numpy.ndarray
        Shape ``(S, E)`` per key: ``"loss"`` (mean training loss over the steps of each
        epoch, as optimised: dropout on, label smoothing included) and
        ``"<split>_<metric>"`` for each split of ``config.eval_splits`` and each metric of
        the task (``"val_loss"``, ``"val_accuracy"``, ...), measured after each epoch in
        evaluation mode.
    test : dict of numpy.ndarray
        Shape ``(S,)`` per metric: the final model on the test split.
    wall_time : float
        Seconds for the whole run (data, initialisation, training, evaluation), as measured
        when it was computed.
    examples_per_second : float
        Training examples processed, summed over seeds, per second of ``wall_time``.
    device : str
    torch_version : str
    mode : str
        ``"batched"`` or ``"looped"``: how the seeds were actually trained.
    cached : bool
        Whether this result was loaded from the store.
    code : dict
        :func:`dlmath.engine.store.code_sources` of the config.
    states : tuple of dict
        The trained ``state_dict`` of each seed (CPU tensors).
    key : str or None
        :meth:`TrainConfig.key` when it was trained (None if the config's code could not be
        fingerprinted): key results derived from this one by it, with
        ``dlmath.engine.store.cached(..., derived_from=[result])``.
    """

    config: TrainConfig
    seeds: tuple[int, ...]
    history: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    wall_time: float
    examples_per_second: float
    device: str
    torch_version: str
    mode: str
    cached: bool
    code: dict[str, str] = field(repr=False)
    states: tuple[dict[str, torch.Tensor], ...] = field(repr=False)
    key: str | None = field(default=None, repr=False)

    @property
    def lineage(self) -> str:
        """:func:`dlmath.engine.store.spec_key` of the config's spec: the same for every
        version (code, data, environment) of this experiment (see
        :func:`dlmath.engine.store.prune`)."""
        return store.spec_key(self.config.spec())

    def values(self, name: str, epoch: int = -1) -> np.ndarray:
        """Per-seed values ``(S,)`` of ``"test_<metric>"`` or of a history key at ``epoch``.

        Examples: ``values("test_accuracy")``, ``values("val_accuracy")`` (last epoch),
        ``values("loss", epoch=0)``.
        """
        if name.startswith("test_") and name[5:] in self.test:
            return self.test[name[5:]]
        if name in self.history:
            return self.history[name][:, epoch]
        known = sorted([f"test_{k}" for k in self.test] + list(self.history))
        raise KeyError(f"no metric {name!r}; known: {known}")

    def curve(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(epochs, mean, std)`` of a history key over seeds, epochs numbered from 1."""
        if name not in self.history:
            raise KeyError(f"no history {name!r}; known: {sorted(self.history)}")
        v = self.history[name]                                             # (S, E)
        std = v.std(axis=0, ddof=1) if len(v) > 1 else np.full(v.shape[1], np.nan)
        return np.arange(1, v.shape[1] + 1), v.mean(axis=0), std

    def mean_std(self, name: str, epoch: int = -1) -> tuple[float, float]:
        """Mean and sample standard deviation (``ddof=1``; NaN for one seed) over seeds."""
        v = self.values(name, epoch)
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")

    def model(self, index: int = 0, device: str | torch.device = "cpu") -> nn.Module:
        """The trained model of seed ``seeds[index]``, in evaluation mode."""
        if not -len(self.seeds) <= index < len(self.seeds):
            raise IndexError(f"index {index} out of range for {len(self.seeds)} seeds")
        module = self.config.model()
        module.load_state_dict(self.states[index])
        return module.to(device).eval()

    def evaluate(self, split: TensorSplit, device: str | torch.device | None = None
                 ) -> dict[str, np.ndarray]:
        """The task's metrics ``(S,)`` of every seed's trained model on another split.

        For example ``result.evaluate(TensorSplit(rotate(x, 30), y))["accuracy"]``.  The
        model runs in evaluation mode on ``device`` (default: the config's device).
        """
        if not isinstance(split, TensorSplit):
            raise TypeError(f"split must be a TensorSplit, got {type(split).__name__}")
        dev = self.config.resolved_device() if device is None else torch.device(device)
        split = split.to(dev)
        per_seed = [_evaluate_module(self.model(i, dev), self.config.task, split, self.config)
                    for i in range(len(self.seeds))]
        return {k: np.array([m[k] for m in per_seed]) for k in per_seed[0]}

    def initial_model(self, index: int = 0, device: str | torch.device = "cpu") -> nn.Module:
        """The model of seed ``seeds[index]`` as initialised, before any training step."""
        if not -len(self.seeds) <= index < len(self.seeds):
            raise IndexError(f"index {index} out of range for {len(self.seeds)} seeds")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seeds[index])
            module = self.config.model()
        return module.to(device).eval()

    def summary(self) -> dict[str, Any]:
        """One flat row for a table: mean and std of each test metric and final history value."""
        row: dict[str, Any] = {"seeds": len(self.seeds), "mode": self.mode,
                               "device": self.device, "wall_time_s": self.wall_time,
                               "examples_per_s": self.examples_per_second}
        for name in [f"test_{k}" for k in self.test] + list(self.history):
            row[f"{name}_mean"], row[f"{name}_std"] = self.mean_std(name)
        return row


# --------------------------------------------------------------------------------------
# Data order, progress, helpers
# --------------------------------------------------------------------------------------

def _derived_seed(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class _Order:
    """The sequence of example indices one seed trains on (a fresh permutation per pass)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.gen = torch.Generator().manual_seed(_derived_seed("order", seed))
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def epoch(self, batch_size: int, drop_last: bool) -> list[torch.Tensor]:
        perm = torch.randperm(self.n, generator=self.gen)
        stop = self.n - self.n % batch_size if drop_last else self.n
        return [perm[i:i + batch_size] for i in range(0, stop, batch_size)]

    def take(self, batch_size: int) -> torch.Tensor:
        out = []
        while batch_size:
            if self.pos == len(self.perm):
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
            k = min(batch_size, len(self.perm) - self.pos)
            out.append(self.perm[self.pos:self.pos + k])
            self.pos += k
            batch_size -= k
        return torch.cat(out)


def _epoch_batches(orders: list[_Order], config: TrainConfig) -> list[torch.Tensor]:
    """Index tensors of one epoch, each ``(S, B)`` for the S seeds' orders."""
    if config.steps_per_epoch is None:
        per_seed = [o.epoch(config.batch_size, config.drop_last) for o in orders]
        return [torch.stack(batch) for batch in zip(*per_seed)]
    return [torch.stack([o.take(config.batch_size) for o in orders])
            for _ in range(config.steps_per_epoch)]


def _steps_per_epoch(n: int, config: TrainConfig) -> int:
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    return n // config.batch_size if config.drop_last else -(-n // config.batch_size)


def _progress_default() -> bool:
    """Whether to draw progress bars by default: ``DLMATH_PROGRESS`` (0/1) if set, else when a
    person is watching (stderr is a terminal, or the code runs in a Jupyter kernel)."""
    env = os.environ.get("DLMATH_PROGRESS", "").strip()
    if env in ("0", "1"):
        return env == "1"
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class _Progress:
    """A progress bar (``tqdm.auto``: a widget in Jupyter, text on a terminal), drawn only
    when enabled."""

    def __init__(self, total: int, label: str, enabled: bool | None) -> None:
        self.enabled = _progress_default() if enabled is None else bool(enabled)
        self.bar, self.last = None, 0.0
        if self.enabled:
            import warnings

            from tqdm import TqdmExperimentalWarning, TqdmWarning

            with warnings.catch_warnings():   # no ipywidgets: tqdm.auto falls back to text
                warnings.simplefilter("ignore", TqdmWarning)
                warnings.simplefilter("ignore", TqdmExperimentalWarning)
                from tqdm.auto import tqdm

                self.bar = tqdm(total=max(1, total), desc=label, mininterval=0.2, leave=True)

    def update(self, k: int = 1, loss: torch.Tensor | None = None) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if loss is not None and now - self.last >= 0.2:   # reading the loss syncs a GPU
            self.last = now
            self.bar.set_postfix(loss=f"{float(loss.mean()):.4f}", refresh=False)
        self.bar.update(k)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _augment_batch(config: TrainConfig, inputs: tuple[torch.Tensor, ...],
                   gens: list[torch.Generator], batched: bool) -> tuple[torch.Tensor, ...]:
    if config.augment is None:
        return inputs
    x = inputs[0]
    if batched:      # (S, B, ...): each seed's slice with its own generator
        x = torch.stack([config.augment(x[s], gens[s]) for s in range(len(gens))])
    else:
        x = config.augment(x, gens[0])
    return (x, *inputs[1:])


def _set_lr(opt: torch.optim.Optimizer, config: TrainConfig, step: int, total: int,
            spe: int) -> None:
    lr = config.optimizer.lr * config.schedule.factor(step, total, spe)
    for group in opt.param_groups:
        group["lr"] = lr


def _clip_stacked(grads: list[torch.Tensor], max_norm: float) -> None:
    # per seed: ||g_s|| = sqrt(sum over tensors of sum of squares of row s)
    norms = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads))   # (S,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)                   # as clip_grad_norm_
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


def _fused(optimizer: Optimizer, params: list[torch.Tensor], dev: torch.device
           ) -> torch.optim.Optimizer:
    """Adam's fused update (one kernel for all tensors) where torch has it, else the default.

    The stacked seeds have few, large tensors, so the per-tensor overhead of the default
    implementation is most of the optimiser's time; the fused kernel computes the same
    update (a test compares the two).
    """
    if isinstance(optimizer, Adam) and dev.type in ("cpu", "cuda"):
        try:
            return optimizer.build(params, fused=True)
        except (RuntimeError, TypeError, ValueError):      # an older torch, another dtype
            pass
    return optimizer.build(params)


def _metric_totals(task: Any, outputs: torch.Tensor, targets: torch.Tensor,
                   totals: dict[str, list[torch.Tensor]]) -> None:
    for name, (s, n) in task.metrics(outputs, targets).items():
        if name not in totals:
            totals[name] = [torch.zeros((), dtype=torch.float64, device=targets.device)] * 2
        totals[name] = [totals[name][0] + s.double(), totals[name][1] + n.double()]


# --------------------------------------------------------------------------------------
# The two training modes
# --------------------------------------------------------------------------------------

def _build_models(config: TrainConfig, dev: torch.device) -> list[nn.Module]:
    models = []
    for seed in config.seeds:
        torch.manual_seed(seed)
        module = config.model()
        if not isinstance(module, nn.Module):
            raise TypeError(f"config.model must build an nn.Module, got {type(module).__name__}")
        models.append(module.to(dev))
    return models


class _Batched:
    """S stacked copies of a model: one wide network where possible, else vmap."""

    def __init__(self, models: list[nn.Module], task: Any) -> None:
        params, buffers = stack_module_state(models)
        # a parameter the model factory froze stays frozen (no gradient, no update)
        self.params = {k: v.detach().clone().requires_grad_(v.requires_grad)
                       for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.base = models[0]          # structure only; its own tensors are never used
        self.task = task
        self.plan = _stacked.compile_stacked(self.base, self.params, self.buffers)

        def loss(p, b, inputs, targets):
            return task.loss(functional_call(self.base, (p, b), inputs), targets)

        def forward(p, b, inputs):
            return functional_call(self.base, (p, b), inputs)

        self._vmap_loss = vmap(loss, randomness="different")                # (S,)
        self._vmap_forward = vmap(forward, in_dims=(0, 0, None), randomness="different")
        self._vmap_apply = vmap(forward, randomness="different")          # per-seed inputs
        self._task_loss = vmap(task.loss)

    def loss(self, p: dict, b: dict, inputs: tuple, targets: torch.Tensor) -> torch.Tensor:
        """The S training losses, ``(S,)``, each on its own seed's examples."""
        if self.plan is not None:
            out = self.plan(p, b, *inputs, shared=False, training=self.base.training)
            return self._task_loss(out, targets)
        return self._vmap_loss(p, b, inputs, targets)

    def forward(self, p: dict, b: dict, inputs: tuple) -> torch.Tensor:
        """The S models on one shared batch, ``(S, B, ...)``."""
        if self.plan is not None:
            return self.plan(p, b, *inputs, shared=True, training=self.base.training)
        return self._vmap_forward(p, b, inputs)

    def check_plan(self, split: TensorSplit, dev: torch.device) -> None:
        """Keep the wide network only if it computes what vmap computes on a few examples.

        Each seed gets the examples in another order.  Compared: evaluation on per-seed and
        on shared batches, and, when the model has no dropout (whose masks differ between
        the two routes), one training-mode pass with its batch-norm statistic updates.  The
        RNG and the stacked buffers are left as they were.
        """
        if self.plan is None:
            return
        S = next(iter(self.params.values())).shape[0]
        n = min(4, len(split))
        idx = torch.stack([torch.arange(n).roll(s) for s in range(S)]).to(dev)   # (S, n)
        inputs, shared = split.take(idx)[0], split.take(idx[0])[0]

        def close(a: torch.Tensor, b: torch.Tensor) -> bool:
            scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
            return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-3,
                                                         atol=1e-4 * scale)

        def buffers() -> dict[str, torch.Tensor]:
            return {k: v.clone() for k, v in self.buffers.items()}

        was_training = self.base.training
        try:
            with torch.no_grad(), torch.random.fork_rng(
                    devices=[dev] if dev.type == "cuda" else []):
                self.base.eval()
                b = buffers()
                ok = (close(self.plan(self.params, b, *shared, shared=True, training=False),
                            self._vmap_forward(self.params, b, shared))
                      and close(self.plan(self.params, b, *inputs, shared=False,
                                          training=False),
                                self._vmap_apply(self.params, b, inputs)))
                if ok and not self.plan.stochastic:
                    self.base.train()
                    b_wide, b_vmap = buffers(), buffers()
                    ok = close(self.plan(self.params, b_wide, *inputs, shared=False,
                                         training=True),
                               self._vmap_apply(self.params, b_vmap, inputs))
                    ok = ok and all(close(b_wide[k], b_vmap[k]) for k in b_vmap)
        except Exception:           # a shape or layer the plan does not handle: use vmap
            ok = False
        finally:
            self.base.train(was_training)
        if not ok:
            self.plan = None

    def probe(self, split: TensorSplit, dev: torch.device) -> bool:
        """Whether one training step and one evaluation work under vmap (RNG untouched)."""
        S = next(iter(self.params.values())).shape[0]
        idx = torch.arange(min(2, len(split)), device=dev).expand(S, -1)
        p = {k: v.detach().clone().requires_grad_(v.requires_grad)
             for k, v in self.params.items()}
        b = {k: v.clone() for k, v in self.buffers.items()}
        try:
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                inputs, targets = split.take(idx)
                self.base.train()
                self.loss(p, b, inputs, targets).sum().backward()
                self.base.eval()
                with torch.no_grad():
                    self.forward(p, b, split.take(idx[0])[0])
        except Exception:  # no batching rule (nn.LSTM, ...): train the seeds one by one
            return False
        return True

    def states(self) -> list[dict[str, torch.Tensor]]:
        """One ``state_dict`` per seed, with the keys (tied weights included) of the module."""
        S = next(iter(self.params.values())).shape[0]
        tensors = {**self.params, **self.buffers}
        # a weight shared by two layers is stacked once, under its first name
        first_name = {id(t): n for n, t in reversed(list(
            itertools.chain(self.base.named_parameters(remove_duplicate=False),
                            self.base.named_buffers(remove_duplicate=False))))}
        keys = {k: k if k in tensors else first_name[id(v)]
                for k, v in self.base.state_dict(keep_vars=True).items()}
        return [{k: tensors[src][s].detach().cpu().clone() for k, src in keys.items()}
                for s in range(S)]


def _evaluate_batched(model: _Batched, split: TensorSplit, config: TrainConfig
                      ) -> dict[str, np.ndarray]:
    S = len(config.seeds)
    totals: list[dict[str, list[torch.Tensor]]] = [{} for _ in range(S)]
    model.base.eval()
    with torch.no_grad():
        for i in range(0, len(split), config.eval_batch_size):
            idx = torch.arange(i, min(i + config.eval_batch_size, len(split)),
                               device=split.targets.device)
            inputs, targets = split.take(idx)
            out = model.forward(model.params, model.buffers, inputs)      # (S, B, ...)
            for s in range(S):
                _metric_totals(model.task, out[s], targets, totals[s])
    names = list(totals[0])
    return {k: np.array([float(t[k][0] / t[k][1]) for t in totals]) for k in names}


def _evaluate_module(module: nn.Module, task: Any, split: TensorSplit, config: TrainConfig
                     ) -> dict[str, float]:
    totals: dict[str, list[torch.Tensor]] = {}
    module.eval()
    with torch.no_grad():
        for i in range(0, len(split), config.eval_batch_size):
            idx = torch.arange(i, min(i + config.eval_batch_size, len(split)),
                               device=split.targets.device)
            inputs, targets = split.take(idx)
            _metric_totals(task, module(*inputs), targets, totals)
    return {k: float(s / n) for k, (s, n) in totals.items()}


def _train_batched(model: _Batched, data: DataSplits, config: TrainConfig, dev: torch.device,
                   bar: _Progress) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    S, n = len(config.seeds), len(data.train)
    spe = _steps_per_epoch(n, config)
    total = spe * config.epochs
    orders = [_Order(n, s) for s in config.seeds]
    gens = [torch.Generator(device=dev).manual_seed(_derived_seed("augment", s))
            for s in config.seeds]
    torch.manual_seed(_derived_seed("dropout", list(config.seeds)))
    opt = _fused(config.optimizer, list(model.params.values()), dev)
    history: dict[str, list[np.ndarray]] = {"loss": []}
    step = 0
    for _ in range(config.epochs):
        loss_sum, seen = torch.zeros(S, dtype=torch.float64, device=dev), 0
        model.base.train()
        for idx in _epoch_batches(orders, config):
            inputs, targets = data.train.take(idx.to(dev))                # (S, B, ...)
            inputs = _augment_batch(config, inputs, gens, batched=True)
            _set_lr(opt, config, step, total, spe)
            losses = model.loss(model.params, model.buffers, inputs, targets)   # (S,)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            if config.grad_clip is not None:
                _clip_stacked([p.grad for p in model.params.values() if p.grad is not None],
                              config.grad_clip)
            opt.step()
            loss_sum += losses.detach().double() * idx.shape[1]
            seen += idx.shape[1]
            step += 1
            bar.update(1, losses.detach())
        history["loss"].append((loss_sum / seen).cpu().numpy())
        for split in config.eval_splits:
            for k, v in _evaluate_batched(model, data[split], config).items():
                history.setdefault(f"{split}_{k}", []).append(v)
    test = _evaluate_batched(model, data.test, config)
    return {k: np.stack(v, axis=1) for k, v in history.items()}, test


def _train_looped(models: list[nn.Module], data: DataSplits, config: TrainConfig,
                  dev: torch.device, bar: _Progress
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    n = len(data.train)
    spe = _steps_per_epoch(n, config)
    total = spe * config.epochs
    histories, tests = [], []
    for seed, module in zip(config.seeds, models):
        order = [_Order(n, seed)]
        gen = [torch.Generator(device=dev).manual_seed(_derived_seed("augment", seed))]
        torch.manual_seed(_derived_seed("dropout", [seed]))
        opt = config.optimizer.build(list(module.parameters()))
        history: dict[str, list[float]] = {"loss": []}
        step = 0
        for _ in range(config.epochs):
            loss_sum, seen = torch.zeros((), dtype=torch.float64, device=dev), 0
            module.train()
            for idx in _epoch_batches(order, config):
                inputs, targets = data.train.take(idx[0].to(dev))           # (B, ...)
                inputs = _augment_batch(config, inputs, gen, batched=False)
                _set_lr(opt, config, step, total, spe)
                loss = config.task.loss(module(*inputs), targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
                opt.step()
                loss_sum += loss.detach().double() * idx.shape[1]
                seen += idx.shape[1]
                step += 1
                bar.update(1, loss.detach())
            history["loss"].append(float(loss_sum / seen))
            for split in config.eval_splits:
                for k, v in _evaluate_module(module, config.task, data[split], config).items():
                    history.setdefault(f"{split}_{k}", []).append(v)
        histories.append(history)
        tests.append(_evaluate_module(module, config.task, data.test, config))
    hist = {k: np.array([h[k] for h in histories]) for k in histories[0]}
    test = {k: np.array([t[k] for t in tests]) for k in tests[0]}
    return hist, test


# --------------------------------------------------------------------------------------
# run: the cache around it
# --------------------------------------------------------------------------------------

def _to_payload(result: Result) -> dict[str, Any]:
    meta = {"seeds": list(result.seeds),
            "history": {k: v.tolist() for k, v in result.history.items()},
            "test": {k: v.tolist() for k, v in result.test.items()},
            "wall_time": result.wall_time, "examples_per_second": result.examples_per_second,
            "device": result.device, "torch_version": result.torch_version,
            "mode": result.mode, "code": result.code, "spec": result.config.spec()}
    return {"meta": json.dumps(meta), "states": list(result.states)}


def _from_payload(payload: Mapping[str, Any], config: TrainConfig, key: str) -> Result:
    """The stored Result; ValueError, KeyError or TypeError says why a payload does not fit."""
    meta = json.loads(payload["meta"])
    seeds = tuple(meta["seeds"])
    history = {k: np.asarray(v, dtype=np.float64) for k, v in meta["history"].items()}
    test = {k: np.asarray(v, dtype=np.float64) for k, v in meta["test"].items()}
    states = tuple(payload["states"])
    S = len(config.seeds)
    if seeds != config.seeds or len(states) != S:
        raise ValueError(f"seeds {seeds} with {len(states)} states, expected {config.seeds}")
    if not all(v.shape == (S, config.epochs) for v in history.values()) or \
            not all(v.shape == (S,) for v in test.values()):
        raise ValueError(f"metrics not of shape ({S}, {config.epochs}) and ({S},)")
    if not all(isinstance(s, dict) and all(isinstance(t, torch.Tensor) for t in s.values())
               for s in states):
        raise ValueError("the states are not dicts of tensors")
    return Result(config, seeds, history, test, float(meta["wall_time"]),
                  float(meta["examples_per_second"]), str(meta["device"]),
                  str(meta["torch_version"]), str(meta["mode"]), True, dict(meta["code"]),
                  states, key)


def _compute(config: TrainConfig, dev: torch.device, progress: bool | None,
             key: str | None) -> Result:
    start = time.perf_counter()
    data = config.data()
    if not isinstance(data, DataSplits):
        raise TypeError(f"config.data must return a DataSplits, got {type(data).__name__}")
    data = data.to(dev)
    models = _build_models(config, dev)
    mode = config.mode
    batched = None
    if mode in ("auto", "batched"):
        batched = _Batched(models, config.task)
        batched.check_plan(data.train, dev)
        if mode == "auto":
            mode = "batched" if batched.probe(data.train, dev) else "looped"
    S = len(config.seeds)
    spe = _steps_per_epoch(len(data.train), config)
    label = f"{config.model.target.rsplit(':', 1)[-1]} x{S} ({mode})"
    bar = _Progress(spe * config.epochs * (1 if mode == "batched" else S), label, progress)
    try:
        if mode == "batched":
            history, test = _train_batched(batched, data, config, dev, bar)
            states = batched.states()
        else:
            history, test = _train_looped(models, data, config, dev, bar)
            states = [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
                      for m in models]
    finally:
        bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - start
    seen = S * config.epochs * (config.steps_per_epoch * config.batch_size
                                if config.steps_per_epoch else
                                (len(data.train) - (len(data.train) % config.batch_size
                                                    if config.drop_last else 0)))
    return Result(config, config.seeds, history, test, wall, seen / wall, str(dev),
                  torch.__version__, mode, False, config.code(), tuple(states), key)


def run(config: TrainConfig, *, cache: bool = True, refresh: bool = False,
        progress: bool | None = None, root: str | os.PathLike | None = None) -> Result:
    """Train every seed of ``config`` (or load the result from the store) and return it.

    Explanation
    -----------
    With ``cache`` the result is looked up in the results store (:mod:`dlmath.engine.store`)
    under :meth:`TrainConfig.key`, which changes with the config, the device type, the
    source of the code behind the config, the data files its Refs name and the numerical
    environment; a hit returns at once with ``result.cached`` true.  An entry that fails a
    check (damaged, stored for another config, of the wrong shapes) is not used: the run
    re-trains and says why in a :class:`dlmath.engine.store.StoreWarning`.  Otherwise the
    seeds are trained (see the module docstring), and the result, with every seed's
    weights, is written atomically to the store.  The caller's random number generator
    state is left as it was.

    Parameters
    ----------
    config : TrainConfig
    cache : bool
        Use the store (read and write).
    refresh : bool
        Re-train even if the store has the result, and overwrite it.
    progress : bool, optional
        Draw a progress bar (``tqdm.auto``: a widget in Jupyter, text on a terminal); default:
        ``DLMATH_PROGRESS`` (``0`` or ``1``) if set, else when stderr is a terminal or the code
        runs in a Jupyter kernel.  The book sets ``DLMATH_PROGRESS=0`` for its builds.
    root : str or pathlib.Path, optional
        Directory of the store (any directory: the store creates it when it writes);
        default :func:`dlmath.engine.store.cache_dir`.  Checked even with ``cache=False``.

    Returns
    -------
    Result

    Raises
    ------
    TypeError
        If the model factory does not build an ``nn.Module`` or the data function does not
        return a ``DataSplits``, or ``root`` is neither None, a str nor a path.
    ValueError
        If ``root`` is the empty string.

    Examples
    --------
    See the module docstring.

    See Also
    --------
    TrainConfig, Result, dlmath.engine.store.cached

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_bool("cache", cache)
    check_bool("refresh", refresh)
    if progress is not None:
        check_bool("progress", progress)
    if root is not None:               # checked even when cache=False leaves it unused
        store._root(root)
    dev = config.resolved_device()
    if cache:
        identity = config.identity()
    else:                              # the key is only a label: a config a notebook
        try:                           # cannot fingerprint still trains
            identity = config.identity()
        except TypeError:
            identity = None
    key = store.spec_key(identity) if identity is not None else None
    if cache and not refresh:
        payload = store.load("train", key, root, identity=identity,
                             validate=lambda p: _from_payload(p, config, key))
        if payload is not None:
            return _from_payload(payload, config, key)
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*There is a performance drop.*")
        result = _compute(config, dev, progress, key)
    if cache:
        store._save_or_warn("train", key, _to_payload(result), root, identity)
    return result
