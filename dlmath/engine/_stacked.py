"""S copies of a plain ``nn.Sequential`` computed as one wide network (the engine's fast path).

Scope: a private helper of :mod:`dlmath.engine.train`.  ``vmap(functional_call(...))`` batches any
model over seeds, but on a CPU its batching rules cost copies (max pooling runs its kernel
twice, every layer moves the seed dimension about).  For the networks most of the book
trains, a ``Sequential`` of convolutions, pooling, normalisation, activations, dropout and
linear layers, the same S forward passes can be written directly as one network whose
layers are S times wider:

* images in the layout ``(B, S*C, H, W)`` (seed-major channels, ``channels_last`` in memory
  on the CPU, where its pooling kernel is several times faster):

  - a convolution with ``groups=g`` becomes one convolution with ``groups=S*g`` and the S
    kernels stacked along the output channels (the same computation as vmap's rule);
  - batch norm, pooling, activations and dropout act per channel or per element, so they
    apply to the wide tensor unchanged, each seed keeping its own running statistics;

* features in the layout ``(S, B, F)``: a linear layer is one batched matrix product
  (``baddbmm``), ``BatchNorm1d`` runs on the ``(B, S*F)`` view, ``LayerNorm`` normalises
  the last axis and scales it by each seed's own weights;

* ``Flatten`` takes ``(B, S*C, H, W)`` to ``(S, B, C*H*W)`` in the order of a single model.

A ``ReLU`` directly followed by a ``MaxPool2d`` is computed as the pooling followed by the
ReLU, which changes no number (max and ReLU commute because ReLU is monotone, and the
gradient reaches the same input position) and applies the ReLU to a quarter of the values.
Dropout draws its mask as one flat tensor of uniforms, ``keep = u >= p`` scaled by
``1/(1-p)``, in the memory order of the activation (``torch.rand`` is about twice as fast
as ``bernoulli_`` on a CPU, and a channels-last tensor would make ``bernoulli_`` slower
still).  Dropout masks therefore come from another random stream than ``nn.Dropout``'s;
every other output equals the S separate models' up to float rounding (the tests compare
outputs, gradients and running statistics with the single models).

:func:`compile_stacked` returns ``None`` for anything else (a module type not listed, a
subclass with its own ``forward``, circular padding, a tied weight, a module with hooks or
a ``forward`` replaced on the instance), and the engine then uses vmap; the engine also
compares the plan with vmap on a few examples before training and uses vmap if they differ
(several inputs, linear layers applied per token).  The layer types are matched exactly, not by ``isinstance``, so a subclass that
overrides ``forward`` is never mistaken for its parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module

#: Parameter-free modules that act element by element, in any layout.
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
                nn.Softplus, nn.Mish, nn.Hardtanh, nn.ReLU6)
#: Modules that act per channel of an image, with no parameters.
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)

#: The tensors a layer of the plan reads from the stacked state, where the layer has them.
_STATE = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

Tensors = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class _Step:
    """One layer of the plan: its kind (``"conv"``, ``"bn2d"``, ``"pool"``, ``"relu"``,
    ``"relu_after_pool"``, ``"act"``, ``"dropout"``, ``"dropout2d"``, ``"flatten"``,
    ``"linear"``, ``"bn1d"``, ``"layernorm"``), its state-dict prefix and the module."""

    kind: str
    name: str
    module: nn.Module


def _leaves(module: nn.Module, prefix: str = "") -> Optional[list[tuple[str, nn.Module]]]:
    """The layers of nested plain Sequentials, in order, with their state-dict prefixes."""
    if type(module) is nn.Sequential:
        out: list[tuple[str, nn.Module]] = []
        for name, child in module._modules.items():      # as forward() sees them
            if child is None:
                continue
            sub = _leaves(child, f"{prefix}{name}.")
            if sub is None:
                return None
            out.extend(sub)
        return out
    return [(prefix[:-1], module)]


def compile_stacked(base: nn.Module, params: Tensors, buffers: Tensors
                    ) -> Optional[Callable[..., torch.Tensor]]:
    """The wide forward of S stacked copies of ``base``, or None when it is not supported.

    ``params`` and ``buffers`` are the stacked tensors (``torch.func.stack_module_state``:
    shape ``(S, ...)``, keyed like ``base.state_dict()``); they are used only to check that
    every tensor the plan needs is present.  The returned function is called as
    ``f(params, buffers, x, shared=..., training=...)`` with ``x`` of shape ``(S, B, ...)``
    (each seed its own examples) or, with ``shared=True``, ``(B, ...)`` (one batch for all
    seeds); it returns ``(S, B, ...)`` and updates batch-norm running statistics in
    ``buffers`` in place when training, as the S models would.
    """
    leaves = _leaves(base)
    if not leaves or _hooked(base):
        return None
    steps: list[_Step] = []
    layout = None                       # "image" (B, S*C, H, W) or "features" (S, B, F)
    needed: list[str] = []
    for i, (name, m) in enumerate(leaves):
        t = type(m)
        if t is nn.Identity:
            continue
        if t is nn.Conv2d and m.padding_mode == "zeros" and layout in (None, "image"):
            kind, layout = "conv", "image"
        elif t is nn.BatchNorm2d and layout == "image":
            kind = "bn2d"
        elif t in _POOLS and layout == "image" and not getattr(m, "return_indices", False):
            kind = "pool"
        elif t is nn.ReLU and layout is not None:
            nxt = next((type(x) for _, x in leaves[i + 1:] if type(x) is not nn.Identity), None)
            kind = "relu_after_pool" if layout == "image" and nxt is nn.MaxPool2d else "relu"
        elif t in _ELEMENTWISE and layout is not None:
            kind = "act"
        elif t is nn.Dropout and layout is not None:
            kind = "dropout"
        elif t is nn.Dropout2d and layout == "image":
            kind = "dropout2d"
        elif t is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
            kind, layout = "flatten", "features"
        elif t is nn.Linear and layout in (None, "features"):
            kind, layout = "linear", "features"
        elif t is nn.BatchNorm1d and layout == "features":
            kind = "bn1d"
        elif t is nn.LayerNorm and layout == "features" and len(m.normalized_shape) == 1:
            kind = "layernorm"
        else:
            return None
        steps.append(_Step(kind, name, m))
        needed += [f"{name}.{k}" for k in _STATE if getattr(m, k, None) is not None]
    if not steps or steps[0].kind not in ("conv", "linear", "flatten"):
        return None
    if any(k not in params and k not in buffers for k in needed):
        return None         # a tied or renamed weight: leave it to vmap
    first = steps[0].kind

    def forward(p: Tensors, b: Tensors, x: torch.Tensor, *, shared: bool,
                training: bool) -> torch.Tensor:
        S = next(iter(p.values())).shape[0]
        channels_last = x.device.type == "cpu"
        B = x.shape[0] if shared else x.shape[1]
        if first == "conv":
            if x.dim() != (4 if shared else 5):
                raise NotImplementedError("the stacked plan takes images (B, C, H, W)")
            h = x if shared else x.transpose(0, 1).reshape(B, -1, *x.shape[3:])
            if channels_last:
                h = h.contiguous(memory_format=torch.channels_last)
        else:
            h = x.unsqueeze(0).expand(S, *x.shape) if shared else x
            if first == "linear" and h.dim() != 3:
                raise NotImplementedError("the stacked plan takes features (B, F)")
        pending_relu = False
        for j, step in enumerate(steps):
            m, n = step.module, step.name
            if step.kind == "conv":
                w = p[f"{n}.weight"]
                bias = p[f"{n}.bias"].reshape(-1) if m.bias is not None else None
                w = w.reshape(-1, *w.shape[2:])
                if shared and j == 0 and m.groups == 1:       # one batch, S*out kernels
                    h = F.conv2d(h, w, bias, m.stride, m.padding, m.dilation, 1)
                else:
                    if shared and j == 0:
                        h = h.repeat(1, S, 1, 1)
                    h = F.conv2d(h, w, bias, m.stride, m.padding, m.dilation, S * m.groups)
                if channels_last:          # a one-channel input leaves the layout ambiguous
                    h = h.contiguous(memory_format=torch.channels_last)
            elif step.kind == "bn2d":
                h = _batch_norm(h, p, b, n, m, training)
            elif step.kind == "pool":
                h = m(h)
                if pending_relu:
                    h, pending_relu = F.relu(h), False
            elif step.kind == "relu_after_pool":
                pending_relu = True
            elif step.kind == "relu":
                h = F.relu(h)
            elif step.kind == "act":
                h = m(h)
            elif step.kind == "dropout":
                h = _dropout(h, m.p, training)
            elif step.kind == "dropout2d":
                h = _dropout(h, m.p, training, per_channel=True)
            elif step.kind == "flatten":
                if j == 0:                                     # (S, B, ...) -> (S, B, F)
                    h = h.reshape(S, B, -1)
                elif h.dim() == 4:                             # (B, S*C, H, W) -> (S, B, F)
                    h = h.reshape(B, S, -1).transpose(0, 1)
            elif step.kind == "linear":
                w = p[f"{n}.weight"].transpose(1, 2)
                h = (torch.baddbmm(p[f"{n}.bias"].unsqueeze(1), h, w) if m.bias is not None
                     else torch.bmm(h, w))
            elif step.kind == "bn1d":
                wide = _batch_norm(h.transpose(0, 1).reshape(B, -1), p, b, n, m, training)
                h = wide.reshape(B, S, -1).transpose(0, 1)
            elif step.kind == "layernorm":
                h = F.layer_norm(h, m.normalized_shape, None, None, m.eps)
                if m.weight is not None:
                    h = h * p[f"{n}.weight"].unsqueeze(1)
                if m.bias is not None:
                    h = h + p[f"{n}.bias"].unsqueeze(1)
        if h.dim() == 4:                                       # an image out: (S, B, C, H, W)
            h = h.reshape(B, S, -1, *h.shape[2:]).transpose(0, 1)
        return h

    forward.steps = [s.kind for s in steps]                    # type: ignore[attr-defined]
    # whether a training pass draws random numbers (dropout), so cannot be compared exactly
    forward.stochastic = any(s.kind.startswith("dropout")      # type: ignore[attr-defined]
                             and s.module.p > 0 for s in steps)
    return forward


def _hooked(base: nn.Module) -> bool:
    """Whether a hook or a per-instance ``forward`` would make the modules compute more than
    their types say (vmap and the plain modules run them; the plan would not)."""
    globals_ = ("_global_forward_hooks", "_global_forward_pre_hooks",
                "_global_backward_hooks", "_global_backward_pre_hooks")
    if any(getattr(_module, name, None) for name in globals_):
        return True
    local = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(any(getattr(m, name, None) for name in local) or "forward" in m.__dict__
               for m in base.modules())


def _batch_norm(h: torch.Tensor, p: Tensors, b: Tensors, n: str, m: nn.Module,
                training: bool) -> torch.Tensor:
    """``nn.BatchNorm{1,2}d.forward`` on the wide tensor, with each seed's own statistics."""
    factor = 0.0 if m.momentum is None else m.momentum
    if training and m.track_running_stats:
        count = b[f"{n}.num_batches_tracked"]
        count.add_(1)
        if m.momentum is None:                 # cumulative average; the S counts are equal
            factor = 1.0 / float(count[0])
    use_batch = training or not m.track_running_stats
    mean = b[f"{n}.running_mean"].view(-1) if m.track_running_stats else None
    var = b[f"{n}.running_var"].view(-1) if m.track_running_stats else None
    weight = p[f"{n}.weight"].reshape(-1) if m.affine else None
    bias = p[f"{n}.bias"].reshape(-1) if m.affine else None
    return F.batch_norm(h, mean, var, weight, bias, use_batch, factor, m.eps)


def _dropout(h: torch.Tensor, p: float, training: bool, per_channel: bool = False
             ) -> torch.Tensor:
    """Inverted dropout with a mask of uniforms drawn in the memory order of ``h``."""
    if not training or p == 0:
        return h
    if p == 1:
        return h * 0
    if per_channel:
        mask = torch.rand(h.shape[0], h.shape[1], 1, 1, device=h.device, dtype=h.dtype)
    elif h.is_contiguous() or h.is_contiguous(memory_format=torch.channels_last):
        mask = torch.rand(h.numel(), device=h.device, dtype=h.dtype).as_strided(h.shape,
                                                                                 h.stride())
    else:
        mask = torch.rand(h.shape, device=h.device, dtype=h.dtype)
    return h * mask.ge_(p).mul_(1.0 / (1.0 - p))
