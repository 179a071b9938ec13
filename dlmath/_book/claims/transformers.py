"""Claims about transformers: cost, scaling, heads, the MLP block, positions (chapter ch-transformers).

Report 002, part 2 (questions 2.1 to 2.4).  Each check computes with
:mod:`dlmath.transformer_cost` and :mod:`dlmath.attention` and with an oracle (PyTorch's own
layers, its FLOP counter, autograd).  Statements of opinion (why several heads help, the
Reformer's complexity, parallelism across GPUs, overfitting) are not registered.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlmath import transformer_cost as tc
from dlmath.attention import scaled_dot_product_attention, sinusoidal_positional_encoding
from dlmath._book.claims import Check, Claim, register
from dlmath.params import count_params

R002 = "002_96e139cf604c0a28"
CHAPTER = "ch-transformers"


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _check_quadratic_cost() -> Check:
    d, lengths = 16, [256, 512, 1024]
    gen = torch.Generator().manual_seed(0)
    flops, plain, fused = [], [], []
    for T in lengths:
        q, k, v = (torch.randn(1, 1, T, d, generator=gen) for _ in range(3))
        flops.append(_flops(lambda: scaled_dot_product_attention(q, k, v)))
        plain.append(tc.peak_allocated_bytes(scaled_dot_product_attention, q, k, v))
        fused.append(tc.peak_allocated_bytes(F.scaled_dot_product_attention, q, k, v))
    counted = [tc.attention_flops(T, d).scores + tc.attention_flops(T, d).mixing for T in lengths]
    s_flops, s_plain, s_fused = (tc.loglog_slope(lengths, y) for y in (flops, plain, fused))
    time_quadratic = flops == counted and abs(s_flops - 2) < 1e-9
    memory_always_quadratic = abs(s_plain - 2) < 0.1 and abs(s_fused - 2) < 0.1
    verdict = ("correct" if time_quadratic and memory_always_quadratic
               else "incomplete" if time_quadratic else "incorrect")
    return Check(
        verified=r"time $\Theta(n^2 d)$ ($4n^2d$ FLOPs for $QK^\top$ and $AV$); memory $\Theta(n^2)$ "
                 r"only when the $n\times n$ score matrix is stored",
        verdict=verdict,
        note=f"PyTorch's FLOP counter finds exactly $4n^2d$ for n = {lengths} (log-log slope "
             f"{s_flops:.2f}). The memory of the plain formula grows with slope {s_plain:.2f}, but a "
             f"fused kernel (torch's scaled_dot_product_attention) never stores the score matrix: its "
             f"peak memory grew with slope {s_fused:.2f}. The product that costs $n^2$ is $QK^\\top$, "
             "not a product of all three matrices.")


def _check_global_receptive_field() -> Check:
    torch.manual_seed(0)
    T, d = 9, 8
    x = torch.randn(T, d, dtype=torch.float64)
    mha = nn.MultiheadAttention(d, 2, batch_first=True).double()
    conv = nn.Conv1d(d, d, 3, padding=1).double()
    att = tc.jacobian_block_norms(lambda z: mha(z[None], z[None], z[None], need_weights=False)[0][0], x)
    cnv = tc.jacobian_block_norms(lambda z: conv(z.T[None])[0].T, x)
    att_reads = int((att > 0).sum(1).min())
    conv_reads = int((cnv > 0).sum(1).max())
    ok = att_reads == T and conv_reads == 3
    return Check(verified=f"one attention layer: every output reads all {T} tokens; one 3-tap "
                          f"convolution: at most {conv_reads}",
                 verdict="correct" if ok else "incorrect",
                 note="Counted from the nonzero blocks of the Jacobian (autograd) of torch's "
                      "MultiheadAttention and Conv1d. A stack of L convolutions reads 2L+1 tokens.")


def _check_scaling() -> Check:
    var, (d, mq, mk, sq, sk) = tc.dot_product_variance_sym()
    derived = var.subs({mq: 0, mk: 0, sq: 1, sk: 1})
    sampled = float(tc.sample_dot_products(512, 20000, seed=0).var()) / 512
    raw = tc.softmax_saturation(512, 64, scaled=False, num_samples=64)
    scaled = tc.softmax_saturation(512, 64, scaled=True, num_samples=64)
    # oracle for one draw: the Jacobian of torch.softmax by autograd, unscaled scores
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(512, generator=gen, dtype=torch.float64)
    K = torch.randn(64, 512, generator=gen, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), K @ q)
    one_draw = float(torch.linalg.matrix_norm(J, 2))
    ok = (derived == d and abs(sampled - 1) < 0.05 and raw.max_weight > 0.9
          and raw.jacobian_norm < scaled.jacobian_norm / 5 and one_draw < scaled.jacobian_norm / 5)
    return Check(
        verified=r"$\mathrm{Var}(q\cdot k) = d_k$ for independent unit-variance entries; dividing by "
                 r"$\sqrt{d_k}$ restores unit variance",
        verdict="correct" if ok else "incorrect",
        note=f"At $d_k = 512$ with 64 keys the unscaled softmax is nearly one-hot (mean largest weight "
             f"{raw.max_weight:.2f}) and the median norm of its Jacobian is {raw.jacobian_norm:.1e}, "
             f"against {scaled.jacobian_norm:.2f} with the scaling. The report gives the right reason "
             r"but not why the factor is $\sqrt{d_k}$: it is the standard deviation of $q\cdot k$.")


def _check_multihead_cost() -> Check:
    d, h, T = 64, 8, 32
    one, many = nn.MultiheadAttention(d, 1, batch_first=True), nn.MultiheadAttention(d, h, batch_first=True)
    x = torch.randn(1, T, d)
    p1, ph = count_params(one), count_params(many)
    f1 = _flops(lambda: one(x, x, x, need_weights=True))
    fh = _flops(lambda: many(x, x, x, need_weights=True, average_attn_weights=False))
    w1 = many_w = None
    with torch.no_grad():
        w1 = one(x, x, x, need_weights=True)[1].numel()
        many_w = many(x, x, x, need_weights=True, average_attn_weights=False)[1].numel()
    same = p1 == ph and f1 == fh == tc.attention_flops(T, d, h).total
    verdict = "correct" if same and w1 == many_w else "incomplete" if same else "incorrect"
    return Check(
        verified=f"same parameters ({p1}) and matrix-multiply FLOPs ({f1}); {h} times as many "
                 "attention weights (and softmax exponentials)",
        verdict=verdict,
        note=f"For d = {d}, T = {T}: one head holds {w1} attention weights, {h} heads {many_w}. "
             "Equal cost holds for the arithmetic, not for the memory of the weights.")


def _check_deep_mlp_mixes_tokens() -> Check:
    torch.manual_seed(0)
    T, d = 6, 8
    deep = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(d, d), nn.GELU())]).double()
    N = tc.jacobian_block_norms(deep, torch.randn(T, d, dtype=torch.float64))
    cross = float((N - torch.diag(torch.diagonal(N))).abs().max())
    return Check(verified="a position-wise MLP of any depth never reads another token",
                 verdict="incorrect" if cross == 0.0 else "correct",
                 note=f"The Jacobian of a 6-layer position-wise MLP between different tokens is exactly "
                      f"{cross:.0f}: depth adds non-linearity per token, only attention mixes tokens.")


def _self_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double().requires_grad_(False)
    return lambda z, mask=None: mha(z, z, z, attn_mask=mask, need_weights=False)[0]


def _check_invariant() -> Check:
    f = _self_attention()
    x = torch.randn(1, 7, 8, dtype=torch.float64)
    perm = [3, 0, 6, 1, 5, 2, 4]
    eq, inv = tc.permutation_equivariance_gap(f, x, perm), tc.permutation_invariance_gap(f, x, perm)
    return Check(verified="permutation equivariant: permuting the tokens permutes the outputs",
                 verdict="incorrect" if eq < 1e-12 < 1e-3 < inv else "correct",
                 note=f"The largest absolute entry of f(Px) - P f(x) is {eq:.0e}, of f(Px) - f(x) {inv:.2f} (torch's "
                      "MultiheadAttention, no positions). Only a symmetric pooling of the outputs "
                      "(a mean, a sum) is invariant.")


def _check_dog_bites_man() -> Check:
    f = _self_attention()
    torch.manual_seed(1)
    emb = {w: torch.randn(8, dtype=torch.float64) for w in ("the", "dog", "bit", "man")}
    a = torch.stack([emb[w] for w in "the dog bit the man".split()])[None]
    b = torch.stack([emb[w] for w in "the man bit the dog".split()])[None]
    perm = [0, 4, 2, 3, 1]                                   # b = a with dog and man swapped
    mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)  # torch: True = may not attend
    enc = float((f(b) - f(a)[:, perm]).abs().max())
    dec = float((f(b, mask) - f(a, mask)[:, perm]).abs().max())
    ok = enc < 1e-12 and dec > 1e-3
    return Check(verified="the same for an encoder without a mask; different for a causal decoder",
                 verdict="incomplete" if ok else "incorrect",
                 note=f"Unmasked: each word gets the same output vector in both sentences (largest "
                      f"difference {enc:.0e}). With a causal mask the outputs differ (by up to "
                      f"{dec:.2f}): the mask is itself a source of order.")


def _check_absolute_length() -> Check:
    block = 24
    table = nn.Embedding(block, 8)
    try:
        table(torch.tensor([block]))
        learned_fails = False
    except IndexError:
        learned_fails = True
    P = sinusoidal_positional_encoding(10 * block, 8, dtype=torch.float64)
    sinusoid_defined = bool(torch.isfinite(P).all())
    ok = learned_fails and sinusoid_defined
    return Check(verified="true of a learned table of positions; sinusoidal encodings exist at every position",
                 verdict="incomplete" if ok else "incorrect",
                 note=f"A learned table of {block} positions has no row for position {block}; the "
                      f"sinusoidal encoding is computed at positions up to {10 * block - 1}. Whether a "
                      "model uses unseen positions well is a separate, empirical question.")


def _check_absolute_proximity() -> Check:
    P = sinusoidal_positional_encoding(1024, 64, dtype=torch.float64)
    G = P @ P.T                                        # G_tu = P_t . P_u
    defect = tc.toeplitz_defect(G)
    offsets = [0, 1, 2, 4, 8, 16]
    near = [float(G[0, k]) for k in offsets]
    decreasing = all(a > b for a, b in zip(near, near[1:]))
    far = float(torch.diagonal(G, 64).mean())
    ok = defect < 1e-9 and decreasing and near[1] > far
    return Check(verified=r"sinusoidal encodings: $P_t\cdot P_{t+k}$ depends on the offset $k$ only "
                          r"and falls over $k = 0, 1, 2, 4, 8, 16$",
                 verdict="incorrect" if ok else "correct",
                 note=f"For d = 64, $P_t\\cdot P_{{t+k}}$ is {', '.join(f'{v:.1f}' for v in near)} for "
                      f"k = {', '.join(map(str, offsets))} at every t (Toeplitz defect {defect:.0e}): absolute encodings do "
                      "carry proximity. A learned table need not.")


def _check_relative_extrapolation() -> Check:
    gen = torch.Generator().manual_seed(0)
    d, train = 64, 512
    x = torch.randn(1, d, generator=gen, dtype=torch.float64).expand(8 * 16, d)
    W_q, W_k = (torch.randn(d, d, generator=gen, dtype=torch.float64) for _ in range(2))
    positions = torch.arange(0, 8 * train, 32)
    S = tc.attention_scores(x, W_q, W_k, encoding="rotary", positions=positions)
    defect = tc.toeplitz_defect(S)
    unseen = int((tc.rotary_wavelengths(d) > train).sum())
    ok = defect < 1e-8 and unseen > 0
    return Check(
        verified="scores depend only on offsets (so a pattern applies at every absolute position); "
                 "offsets longer than those trained on are new inputs",
        verdict="incomplete" if ok else "correct",
        note=f"With rotary embeddings the scores at positions up to {int(positions[-1])} are a function of the "
             f"offset alone (defect {defect:.0e}). But {unseen} of the {d // 2} rotating pairs of a "
             f"{d}-dimensional head have wavelengths longer than {train} positions, so offsets beyond "
             "the training length produce angles never seen in training; Press et al. (2022) measured "
             "that rotary and sinusoidal models degrade there.")


for _id, _q, _topic, _claimed, _check, _expected in [
    ("002-2.1a-attention-quadratic", "2.1a", "cost of self-attention in the sequence length n",
     r"$O(n^2)$ in both computation and memory", _check_quadratic_cost, "incomplete"),
    ("002-2.1b-global-receptive-field", "2.1b", "receptive field of one self-attention layer vs a convolution",
     "global (every token) vs local", _check_global_receptive_field, "correct"),
    ("002-2.1c-sqrt-dk-scaling", "2.1c", r"why the scores are divided by $\sqrt{d_k}$",
     "keeps dot products from growing with $d_k$, which would saturate the softmax and shrink its gradients",
     _check_scaling, "correct"),
    ("002-2.1d-multihead-equal-cost", "2.1d", "cost of h heads of size d/h vs one head of size d",
     "the same total computational cost", _check_multihead_cost, "incomplete"),
    ("002-2.3c-deep-mlp-mixes-tokens", "2.3c", "what a deeper position-wise MLP would do",
     "it would capture dependencies between tokens", _check_deep_mlp_mixes_tokens, "incorrect"),
    ("002-2.4a-permutation-invariant", "2.4a", "self-attention without positional information",
     "permutation invariant", _check_invariant, "incorrect"),
    ("002-2.4a-dog-bites-man", "2.4a", "two sentences that are permutations of each other, no positions",
     "treated as the same", _check_dog_bites_man, "incomplete"),
    ("002-2.4b-absolute-max-length", "2.4b", "absolute position embeddings and sequence length",
     "restrict the model to the predefined length", _check_absolute_length, "incomplete"),
    ("002-2.4b-absolute-no-proximity", "2.4b", "absolute position embeddings and proximity",
     "give no sense of which tokens are close", _check_absolute_proximity, "incorrect"),
    ("002-2.4b-relative-extrapolates", "2.4b", "relative positions and longer sequences",
     "let the model extrapolate to longer sequences", _check_relative_extrapolation, "incomplete"),
]:
    register(Claim(id=_id, source=R002, question=_q, topic=_topic, claimed=_claimed, check=_check,
                   chapter=CHAPTER, expected=_expected))
