"""Analytic FLOP counts of a training step, layer by layer, for the benchmarks.

A FLOP is one multiplication or one addition, so a multiply-add counts 2 (the convention of
:mod:`dlmath.transformer_cost` and of ``torch.utils.flop_counter``).  :func:`count` runs the
model once on a batch with a forward hook on every module call and adds up, from the shapes
each layer saw:

* ``matmul``: the forward FLOPs of the matrix products, 2 x the multiply-adds of
  ``Linear``, ``Conv{1,2,3}d``, ``ConvTranspose{1,2,3}d``, ``Bilinear``, ``RNN``/``LSTM``/
  ``GRU`` (and their cells, per call), ``MultiheadAttention``, and of the products that two
  dlmath models do outside a layer: the scores and mixing of
  :class:`dlmath.models.gpt.CausalSelfAttention` (from
  :func:`dlmath.transformer_cost.attention_flops`) and the attention context of
  :class:`dlmath.models.seq2seq.Seq2Seq`;
* ``backward``: their backward FLOPs.  A product ``y = x W`` costs the same again for the
  gradient of ``x`` (only when ``x`` requires a gradient: not for the first layer, whose
  input is data) and again for the gradient of ``W`` (only when ``W`` is trained), so
  backward is about twice forward, exactly as ``torch.utils.flop_counter`` counts it (a
  recurrent cell is treated as one such product); whole recurrent layers and attention are
  counted as twice forward;
* ``other``: a rough count of the element-wise forward work (normalisation 5, activations
  and dropout 1, pooling one per window element, per element), for information only: the
  share of peak is measured against matrix products.

Only layers are seen: a model that multiplies matrices in its own ``forward`` (outside a
layer) is undercounted unless a rule names it, which is why the benchmark also reports the
ratio to ``torch.utils.flop_counter`` (an independent count at the operator level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


@dataclass
class Flops:
    """FLOPs of one pass over a batch (see the module docstring)."""

    matmul: float = 0.0
    backward: float = 0.0
    other: float = 0.0

    @property
    def train(self) -> float:
        """Forward and backward matrix-product FLOPs: one training step."""
        return self.matmul + self.backward

    def __add__(self, o: Flops) -> Flops:
        return Flops(self.matmul + o.matmul, self.backward + o.backward, self.other + o.other)

    def scaled(self, c: float) -> Flops:
        return Flops(self.matmul * c, self.backward * c, self.other * c)


def _first(inputs):
    x = inputs[0] if inputs else None
    return x.data if isinstance(x, PackedSequence) else x


def _grad_factor(x: torch.Tensor | None, module: nn.Module) -> int:
    """How many times the forward cost the backward pays: input gradient, weight gradient."""
    weights = [p for name, p in module.named_parameters(recurse=False) if "bias" not in name]
    return int(bool(x is not None and x.requires_grad)) + int(any(p.requires_grad for p in weights))


def _linear(m: nn.Linear, inputs, output) -> tuple[float, float]:
    x = _first(inputs)
    return 2.0 * (x.numel() // m.in_features) * m.in_features * m.out_features, 0.0


def _bilinear(m: nn.Bilinear, inputs, output) -> tuple[float, float]:
    n = inputs[0].numel() // m.in1_features
    return 2.0 * n * m.in1_features * m.in2_features * m.out_features, 0.0


def _conv(m: nn.modules.conv._ConvNd, inputs, output) -> tuple[float, float]:
    k = math.prod(m.kernel_size)
    if m.transposed:  # every input element meets every tap and every output channel
        return 2.0 * _first(inputs).numel() * (m.out_channels // m.groups) * k, 0.0
    return 2.0 * output.numel() * (m.in_channels // m.groups) * k, 0.0


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn(m: nn.RNNBase, inputs, output) -> tuple[float, float]:
    x = inputs[0]
    if isinstance(x, PackedSequence):
        tokens = x.data.shape[0]  # the real steps only
    else:
        tokens = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
    g, h, dirs = _GATES[m.mode], m.hidden_size, 2 if m.bidirectional else 1
    out = m.proj_size or h
    flops = 0.0
    for layer in range(m.num_layers):
        fan_in = m.input_size if layer == 0 else out * dirs
        flops += dirs * 2.0 * tokens * g * h * (fan_in + out)
        if m.proj_size:
            flops += dirs * 2.0 * tokens * h * m.proj_size
    return flops, 0.0


def _cell(m: nn.RNNCellBase, inputs, output) -> tuple[float, float]:
    x = inputs[0]
    n = x.shape[0] if x.dim() == 2 else 1
    g = 4 if isinstance(m, nn.LSTMCell) else 3 if isinstance(m, nn.GRUCell) else 1
    return 2.0 * n * g * m.hidden_size * (m.input_size + m.hidden_size), 0.0


def _mha(m: nn.MultiheadAttention, inputs, output) -> tuple[float, float]:
    q, k = inputs[0], inputs[1]
    b_first = m.batch_first and q.dim() == 3
    L, S = (q.shape[1], k.shape[1]) if b_first else (q.shape[0], k.shape[0])
    B = (q.shape[0] if b_first else q.shape[1]) if q.dim() == 3 else 1
    E = m.embed_dim
    # projections (Q from L rows; K and V from S rows; output from L rows) and the two
    # products with the attention weights; the heads cancel out of the FLOPs
    return 2.0 * B * E * ((2 * L + 2 * S) * E + 2 * L * S), 0.0


def _causal_self_attention(m: nn.Module, inputs, output) -> tuple[float, float]:
    from dlmath.transformer_cost import attention_flops

    B, T, C = inputs[0].shape
    att = attention_flops(T, C, m.n_head)
    return float(B * (att.scores + att.mixing)), 0.0  # the projections are Linear layers


def _seq2seq(m: nn.Module, inputs, output) -> tuple[float, float]:
    if not getattr(m, "attention", False):
        return 0.0, 0.0
    src, tgt = (inputs[0] if len(inputs) == 1 else inputs[:2])
    B, S = src.shape
    T = tgt.shape[1]
    # context c_i = sum_j alpha_ij h_j at every decoder step: (B, S) x (B, S, D)
    return 2.0 * B * T * S * m.U_a.in_features, 0.0


def _norm(m, inputs, output):
    return 0.0, 5.0 * output.numel()


def _elementwise(m, inputs, output):
    return 0.0, float(output.numel())


def _pool(m, inputs, output):
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * (output.dim() - 2)
    return 0.0, float(output.numel() * math.prod(k))


def _adaptive_pool(m, inputs, output):
    return 0.0, float(_first(inputs).numel())


_RULES: list[tuple[type | str, object]] = [
    (nn.Linear, _linear), (nn.Bilinear, _bilinear), (nn.modules.conv._ConvNd, _conv),
    (nn.RNNBase, _rnn), (nn.RNNCellBase, _cell), (nn.MultiheadAttention, _mha),
    ("CausalSelfAttention", _causal_self_attention), ("Seq2Seq", _seq2seq),
    (nn.modules.batchnorm._NormBase, _norm), (nn.LayerNorm, _norm), (nn.GroupNorm, _norm),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
     _pool),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
      nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _adaptive_pool),
    ((nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softmax,
      nn.LogSoftmax, nn.Dropout, nn.Dropout2d, nn.Hardtanh), _elementwise),
]
# the element-wise rules stand for forward and backward alike: their backward is not counted
_MATMUL_RULES = {_linear, _bilinear, _conv, _rnn, _cell, _mha, _causal_self_attention, _seq2seq}
_TWICE = {_rnn, _mha, _causal_self_attention, _seq2seq}  # backward = 2 x forward


def _rule(module: nn.Module):
    for key, rule in _RULES:
        if isinstance(key, str):
            if type(module).__name__ == key:
                return rule
        elif isinstance(module, key):
            return rule
    return None


def count(model: nn.Module, inputs: tuple, *, train: bool = True) -> Flops:
    """The analytic FLOPs of ``model(*inputs)`` (and, with ``train``, of its backward).

    With ``train`` the model runs in training mode with gradients on, so that each layer
    knows whether its input and its weights need a gradient; otherwise in evaluation mode
    under ``no_grad`` and ``backward`` is 0.
    """
    total = Flops()

    def hook(module, args, output):
        nonlocal total
        rule = _rule(module)
        if rule is None:
            return
        mm, other = rule(module, args, output)
        back = 0.0
        if train and rule in _MATMUL_RULES:
            back = 2.0 * mm if rule in _TWICE else _grad_factor(_first(args), module) * mm
        total = total + Flops(mm, back, other)

    was_training = model.training
    model.train(train)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        with torch.set_grad_enabled(train):
            model(*inputs)
    finally:
        handle.remove()
        model.train(was_training)
    return total


def counted(model: nn.Module, inputs: tuple, *, backward: bool = False) -> float:
    """The same pass counted by ``torch.utils.flop_counter.FlopCounterMode`` (the oracle):
    the forward in training mode, and with ``backward`` also the backward of the sum of
    the outputs."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train(True)
    try:
        with FlopCounterMode(display=False) as mode:
            out = model(*inputs)
            if backward:
                outs = out if isinstance(out, (tuple, list)) else (out,)
                sum(o.float().sum() for o in outs).backward()
    finally:
        model.train(was_training)
    return float(mode.get_total_flops())
