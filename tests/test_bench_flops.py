"""benchmarks/flops.py (the analytic FLOP counter of ``make bench``) against an independent
count: ``torch.utils.flop_counter.FlopCounterMode``, which counts at the operator level.

The oracle is used where it is right: it sees no products inside CPU flash attention (so
the GPT is counted with the math backend of scaled_dot_product_attention) and counts the
input gradient of a grouped convolution ``groups`` times over (so grouped convolutions are
compared forward only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import flops  # noqa: E402


def _check(model, inputs, backward=True):
    got = flops.count(model, inputs)
    assert got.matmul == flops.counted(model, inputs)
    if backward:
        assert got.train == flops.counted(model, inputs, backward=True)
    return got


@pytest.mark.parametrize("first_needs_grad", [False, True])
def test_linear_stack(first_needs_grad):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3))
    x = torch.randn(5, 3, 4, requires_grad=first_needs_grad)
    got = _check(model, (x,))
    fwd = 2 * 5 * (12 * 7 + 7 * 3)
    assert got.matmul == fwd
    # weight gradients of both layers, the input gradient of the second (and of the first
    # only when its input needs one)
    assert got.backward == fwd + 2 * 5 * 7 * 3 + (2 * 5 * 12 * 7 if first_needs_grad else 0)


def test_frozen_weights_have_no_weight_gradient():
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4))
    model[1].weight.requires_grad_(False)
    _check(model, (torch.randn(3, 6),))


@pytest.mark.parametrize("conv", [
    nn.Conv2d(3, 5, 3), nn.Conv2d(3, 5, (3, 2), stride=2, padding=1),
    nn.Conv2d(3, 4, 3, dilation=2, padding=2, bias=False), nn.Conv1d(3, 4, 5, stride=3),
    nn.ConvTranspose2d(3, 4, 3, stride=2),
])
def test_convolutions(conv):
    # after a 1x1 convolution, so that both the input and the weight gradient are counted
    _check(nn.Sequential(nn.Conv2d(3, 3, 1) if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
                         else nn.Conv1d(3, 3, 1), conv),
           (torch.randn(2, 3, 11, 10) if not isinstance(conv, nn.Conv1d) else torch.randn(2, 3, 17),))


def test_grouped_convolution_forward():
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, stride=2), nn.Conv2d(6, 6, 3, groups=3))
    got = _check(model, (torch.randn(2, 4, 13, 13),), backward=False)
    assert got.matmul == 2 * 2 * 6 * (6 * 6 * 2 * 9 + 4 * 4 * 2 * 9)


def test_book_cnn():
    from dlmath.models.zoo import three_block_cnn

    torch.manual_seed(0)
    model = three_block_cnn(in_channels=1, size=16, channels=(8, 16, 32), hidden=(64, 32),
                            num_classes=10, dropout=0.1, batch_norm=True)
    got = _check(model, (torch.randn(7, 1, 16, 16),))
    assert got.other > 0
    eval_only = flops.count(model, (torch.randn(7, 1, 16, 16),), train=False)
    assert eval_only.matmul == got.matmul and eval_only.backward == 0


def test_gpt_with_the_math_attention():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from dlmath.models.gpt import GPT, GPTConfig
    from dlmath.transformer_cost import attention_flops

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=29, block_size=13))
    x = torch.randint(0, 29, (5, 13))
    with sdpa_kernel(SDPBackend.MATH):
        got = _check(model, (x,))
    cfg = model.config
    att = attention_flops(13, cfg.n_embd, cfg.n_head)
    mlp = 2 * 13 * cfg.n_embd * 4 * cfg.n_embd * 2
    head = 2 * 13 * cfg.n_embd * 29
    assert got.matmul == 5 * (cfg.n_layer * (att.total + mlp) + head)


def test_lstm_is_its_cell_unrolled():
    torch.manual_seed(0)
    cell = nn.LSTMCell(5, 7)
    x = torch.randn(3, 5)
    _check(cell, (x,))
    per_step = flops.count(cell, (x,)).matmul
    lstm = nn.LSTM(5, 7, batch_first=True)
    assert flops.count(lstm, (torch.randn(3, 4, 5),)).matmul == 4 * per_step
    both = nn.LSTM(5, 7, num_layers=2, bidirectional=True)
    layer2 = flops.count(nn.LSTMCell(14, 7), (torch.randn(3, 14),)).matmul
    assert flops.count(both, (torch.randn(4, 3, 5),)).matmul == 2 * 4 * (per_step + layer2)


def test_seq2seq_forward():
    from dlmath.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(12, 10, emb_dim=8, hidden_size=16, attention=True)
    src = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9], [2, 0, 0, 0]])  # packed: 8 real steps
    tgt = torch.randint(1, 10, (3, 5))
    got = _check(model, (src, tgt), backward=False)
    # backward within a few percent of the oracle (the recurrences are counted as 2x forward)
    assert got.train == pytest.approx(flops.counted(model, (src, tgt), backward=True), rel=0.05)
