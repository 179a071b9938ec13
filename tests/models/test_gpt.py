"""Tests of dlmath.models.gpt: causal masking, attention against an explicit float64 oracle, weight
tying, the parameter-count formula, and the decoding interface."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmath.decoding import greedy_decode, sample_decode
from dlmath.models.gpt import GPT, CausalSelfAttention, GPTConfig, gpt_num_params, gpt_num_params_sym


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # tiny models: one thread is much faster than two on a busy 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def test_shapes_and_context_limit():
    model = small()
    assert model(torch.zeros(3, 8, dtype=torch.long)).shape == (3, 8, 11)
    assert model(torch.zeros(1, 1, dtype=torch.long)).shape == (1, 1, 11)
    with pytest.raises(ValueError, match="exceeds block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(torch.zeros(8, dtype=torch.long))


@given(st.integers(0, 10**6), st.integers(0, 7))
@settings(max_examples=30)
def test_the_future_cannot_change_the_past(seed, t):
    model = small(seed % 4)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 11, (2, 8), generator=g)
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + 1 + torch.randint(0, 10, (2,), generator=g)) % 11
    a, b = model(idx), model(changed)
    assert torch.equal(a[:, :t], b[:, :t])                         # positions before t: identical
    assert not torch.allclose(a[:, t], b[:, t])                    # position t itself does change


def naive_causal_attention(att: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs) + M) v head by head, with an explicit loop mask, float64."""
    B, T, C = x.shape
    nh, hs = att.n_head, C // att.n_head
    W, bias = att.c_attn.weight.double(), att.c_attn.bias.double()
    qkv = x.double() @ W.T + bias                                  # (B, T, 3C)
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    y = torch.zeros(B, T, C, dtype=torch.float64)
    for h in range(nh):
        sl = slice(h * hs, (h + 1) * hs)
        for b in range(B):
            for i in range(T):
                scores = [float(q[b, i, sl] @ k[b, j, sl]) / math.sqrt(hs) for j in range(i + 1)]
                m = max(scores)
                w = [math.exp(s - m) for s in scores]
                y[b, i, sl] = sum(w[j] / sum(w) * v[b, j, sl] for j in range(i + 1))
    return y @ att.c_proj.weight.double().T + att.c_proj.bias.double()


@given(st.integers(0, 10**6), st.sampled_from([1, 2, 4]))
@settings(max_examples=15)
def test_attention_matches_an_explicit_masked_softmax(seed, n_head):
    model = small(seed % 4, n_head=n_head)
    att = model.blocks[0].attn
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert torch.allclose(att(x).double(), naive_causal_attention(att, x), atol=1e-5)


def test_weight_tying_is_one_parameter():
    model = small().train()
    assert model.lm_head.weight is model.tok_emb.weight
    names = [n for n, _ in model.named_parameters()]
    assert "lm_head.weight" not in names                           # listed once
    idx = torch.randint(0, 11, (4, 8), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.loss(model(idx[:, :-1]), idx[:, 1:]).backward()
    opt.step()
    assert model.lm_head.weight is model.tok_emb.weight            # still the same after a step
    state = model.state_dict()
    assert state["lm_head.weight"].data_ptr() == state["tok_emb.weight"].data_ptr()


@given(st.integers(1, 40), st.integers(1, 30), st.integers(1, 4), st.integers(1, 6),
       st.sampled_from([1, 2, 4]))
@settings(max_examples=30)
def test_parameter_count_formula(V, T, L, heads_mult, n_head):
    C = n_head * heads_mult
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=n_head, n_embd=C))
    counted = sum(p.numel() for p in model.parameters())
    assert gpt_num_params(V, T, L, C) == counted == model.num_params()
    # the untied count lists the shared matrix twice
    with_duplicates = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert with_duplicates == counted + V * C
    expr, (v, t, l, c) = gpt_num_params_sym()
    assert expr.subs({v: V, t: T, l: L, c: C}) == counted


def test_parameter_count_does_not_depend_on_heads():
    expr, _ = gpt_num_params_sym()
    assert sp.Symbol("h") not in expr.free_symbols
    counts = {GPT(GPTConfig(vocab_size=29, n_head=h, n_embd=64)).num_params() for h in (1, 2, 4, 8)}
    assert len(counts) == 1


def test_default_size_is_small():
    n = GPT(GPTConfig(vocab_size=29)).num_params()
    assert 100_000 <= n <= 200_000


def test_step_matches_the_full_forward_pass():
    model = small(1)
    idx = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(2))
    context = model.start_state(3)
    for t in range(12):
        logits, context = model.step(idx[:, t], context)
        window = idx[:, max(0, t + 1 - 8): t + 1]                  # the last block_size tokens
        assert torch.allclose(logits, model(window)[:, -1], atol=1e-6)
        assert context.shape == (3, min(t + 1, 8))


def test_greedy_decoding_agrees_with_teacher_forcing():
    model = small(2)
    hyps = greedy_decode(model.step, model.start_state(4), bos=1, eos=2, max_len=7)
    for h in hyps:
        seq = [1] + list(h.tokens) + [2] * h.finished
        logits = model(torch.tensor([seq[:-1]]))[0]
        assert logits.argmax(-1).tolist() == seq[1:]


def test_generate_is_reproducible_and_top_k_one_is_greedy():
    model = small(3)
    prompt = torch.tensor([[1, 5], [1, 7]])
    a = model.generate(prompt, 6, eos_id=2, top_p=0.9, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 6, eos_id=2, top_p=0.9, generator=torch.Generator().manual_seed(0))
    assert a == b
    sampled = model.generate(prompt, 6, eos_id=2, top_k=1,
                             generator=torch.Generator().manual_seed(5))
    greedy = greedy_decode(model.step, prompt[:, :-1], bos=prompt[:, -1], eos=2, max_len=6)
    assert [h.tokens for h in sampled] == [h.tokens for h in greedy]
    no_eos = model.generate(prompt, 5, generator=torch.Generator().manual_seed(0))
    assert all(len(h.tokens) == 5 and not h.finished for h in no_eos)
    with pytest.raises(ValueError, match="prompt must have shape"):
        model.generate(torch.zeros(2, 0, dtype=torch.long), 3)


def test_learns_a_tiny_language():
    # words "ab", "abab", "ababab" framed by <bos>=1 ... <eos>=2 and right-padded with 0
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=16))
    rows = [[1] + [3, 4] * n + [2] + [0] * (2 * (3 - n)) for n in (1, 2, 3)]
    data = torch.tensor(rows * 8)                                 # (24, 8)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        loss = model.loss(model(data[:, :-1]), data[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the best possible loss over the 3 + 5 + 7 targets: only the choice to stop is uncertain,
    # after one "ab" (stop 1/3, go on 2/3) and after two (1/2, 1/2)
    best = (math.log(3) + 2 * math.log(3 / 2) + 2 * math.log(2)) / 15
    assert loss.item() < best + 0.1
    model.eval()
    words = sample_decode(model.step, model.start_state(50), bos=1, eos=2, max_len=7,
                          generator=torch.Generator().manual_seed(0))
    assert sum(h.tokens in {(3, 4), (3, 4) * 2, (3, 4) * 3} for h in words) >= 45


def test_config_errors():
    with pytest.raises(ValueError, match="not a multiple of n_head"):
        GPTConfig(vocab_size=5, n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="vocab_size must be >= 1"):
        GPTConfig(vocab_size=0)
    with pytest.raises(ValueError, match="pad_id"):
        GPTConfig(vocab_size=5, pad_id=5)
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"vocab_size": 5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_embd must be >= 1"):
        gpt_num_params(5, 5, 1, 0)
