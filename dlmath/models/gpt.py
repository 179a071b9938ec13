"""A small character-level GPT: causal self-attention, pre-norm blocks, tied embeddings.

Scope: a decoder-only transformer in the layout of GPT-2 (Radford et al. 2019), small
enough to train on a CPU in minutes (the defaults have about 150k parameters): token and
learned absolute position embeddings, ``n_layer`` pre-norm blocks
``x + Attn(LN(x))``, ``x + MLP(LN(x))``, a final layer norm, and an output layer that
shares its weight matrix with the token embedding (Press & Wolf 2017).  Attention is
``torch.nn.functional.scaled_dot_product_attention`` with ``is_causal=True``: position
``t`` sees positions ``<= t`` only, so right padding never changes earlier logits.
Sampling goes through :mod:`dlmath.decoding` (:meth:`GPT.step`, :meth:`GPT.generate`).

Shape letters: B batch, T time, C = ``n_embd`` channels, nh heads, hs = C / nh head size,
V vocabulary.  Chapter: :ref:`ch-transformers`.

References: Vaswani et al., "Attention is all you need" (2017) [vaswani2017attention];
Radford et al., "Language models are unsupervised multitask learners" (2019)
[radford2019language]; Press & Wolf, "Using the output embedding to improve language
models" (2017) [press2017using]; the layout follows Karpathy's nanoGPT ``model.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import sympy as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmath._validate import check_entries, check_int, check_number, check_size
from dlmath.decoding import Hypothesis, _sample, sample_decode
from dlmath.metrics import sequence_cross_entropy

__all__ = ["GPTConfig", "GPT", "CausalSelfAttention", "Block", "gpt_num_params",
           "gpt_num_params_sym"]

Size = Union[int, sp.Expr]


@dataclass(frozen=True)
class GPTConfig:
    """Hyper-parameters of :class:`GPT`.

    Attributes
    ----------
    vocab_size : int
        V, special tokens included.
    block_size : int
        Longest context T the position embedding covers.
    n_layer, n_head, n_embd : int
        Blocks, heads per block, width C (a multiple of ``n_head``).
    dropout : float
        Dropout on embeddings, attention weights and residual branches (training only).
    pad_id : int
        Target id ignored by :meth:`GPT.loss`.
    """

    vocab_size: int
    block_size: int = 24
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    pad_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(name, getattr(self, name), 1)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        check_number("dropout", self.dropout, interval="[0, 1)")
        check_int("pad_id", self.pad_id, 0, self.vocab_size - 1)
        check_entries(f"a GPT of vocab_size={self.vocab_size}, block_size={self.block_size}, "
                      f"n_layer={self.n_layer} and n_embd={self.n_embd}",
                      gpt_num_params(self.vocab_size, self.block_size, self.n_layer, self.n_embd))


def _check_config(config: object) -> None:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")


def gpt_num_params(vocab_size: Size, block_size: Size, n_layer: Size, n_embd: Size) -> Size:
    r"""Number of parameters of :class:`GPT` (tied output layer, biases everywhere else).

    Explanation
    -----------
    With :math:`V, T, L, C` the vocabulary, context, depth and width:

    * embeddings: :math:`VC` (tokens; shared with the output layer) + :math:`TC` (positions);
    * per block: two layer norms :math:`2 \cdot 2C`; attention :math:`C \cdot 3C + 3C`
      (query, key, value) and :math:`C^2 + C` (output projection); MLP
      :math:`C \cdot 4C + 4C` and :math:`4C \cdot C + C`; in all :math:`12C^2 + 13C`;
    * the final layer norm :math:`2C`; the output layer adds nothing (weight tying).

    .. math:: N = VC + TC + L(12C^2 + 13C) + 2C .

    The number of heads does not appear: splitting C channels into heads changes no
    weight matrix.  Arguments may be ints or SymPy expressions.

    Parameters
    ----------
    vocab_size, block_size, n_layer, n_embd : int or sympy.Expr

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        If an int argument is below 1.

    Examples
    --------
    >>> gpt_num_params(30, 24, 3, 64)          # the default size for a 30-symbol alphabet
    153536
    >>> gpt_num_params(50257, 1024, 12, 768)   # GPT-2 small
    124439808

    See Also
    --------
    gpt_num_params_sym : the formula in symbols.  GPT.num_params : counted on a model.

    References
    ----------
    radford2019language, press2017using.  Chapter: :ref:`ch-transformers`.
    """
    for name, value in (("vocab_size", vocab_size), ("block_size", block_size),
                        ("n_layer", n_layer), ("n_embd", n_embd)):
        check_size(name, value, 1)
    C = n_embd
    layer_norms = 2 * 2 * C
    attention = (C * 3 * C + 3 * C) + (C * C + C)                     # W_QKV, W_O with biases
    mlp = (C * 4 * C + 4 * C) + (4 * C * C + C)                       # C -> 4C -> C with biases
    per_block = layer_norms + attention + mlp
    return vocab_size * C + block_size * C + n_layer * per_block + 2 * C


def gpt_num_params_sym() -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """The parameter count of :class:`GPT` in the symbols V, T, L, C.

    Returns
    -------
    (expr, (V, T, L, C))

    Examples
    --------
    >>> expr, (V, T, L, C) = gpt_num_params_sym()
    >>> sp.expand(expr)
    12*C**2*L + 13*C*L + C*T + C*V + 2*C
    >>> expr.subs({V: 30, T: 24, L: 3, C: 64})
    153536

    See Also
    --------
    gpt_num_params : the numeric version.

    References
    ----------
    Chapter: :ref:`ch-transformers`.
    """
    V, T, L, C = sp.symbols("V T L C", integer=True, positive=True)
    return gpt_num_params(V, T, L, C), (V, T, L, C)


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention.

    For each head, with :math:`Q = XW_Q`, :math:`K = XW_K`, :math:`V = XW_V` of width
    ``hs``: :math:`\mathrm{softmax}(QK^\top/\sqrt{hs} + M)V` with :math:`M_{ts} = -\infty`
    for :math:`s > t` (Vaswani et al. 2017); heads are concatenated and projected.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        _check_config(config)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)    # W_Q, W_K, W_V at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)        # output projection W_O
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        nh = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)                    # 3 x (B, T, C)
        q = q.view(B, T, nh, C // nh).transpose(1, 2)               # (B, nh, T, hs)
        k = k.view(B, T, nh, C // nh).transpose(1, 2)               # (B, nh, T, hs)
        v = v.view(B, T, nh, C // nh).transpose(1, 2)               # (B, nh, T, hs)
        # y = softmax(q k^T / sqrt(hs) + M) v,  M_ts = -inf for s > t
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)            # (B, T, C) heads side by side
        return self.resid_drop(self.c_proj(y))                      # (B, T, C)


class _MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(F.gelu(self.c_fc(x))))         # (B, T, C) via (B, T, 4C)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        _check_config(config)
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = _MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))                              # (B, T, C)
        return x + self.mlp(self.ln_2(x))                            # (B, T, C)


class GPT(nn.Module):
    """A small GPT language model over token ids.

    Explanation
    -----------
    ``forward(idx)`` maps ids ``(B, T)``, :math:`T \\le` ``block_size``, to next-token
    logits ``(B, T, V)``: the logits at position ``t`` depend on ``idx[:, :t+1]`` only.
    To train on right-padded sequences ``x = <bos> c_1 ... c_n <eos> <pad> ...``, feed
    ``x[:, :-1]`` and score against ``x[:, 1:]`` with :meth:`loss`, which ignores padding.
    Weights start as in GPT-2: normal with standard deviation 0.02, and
    :math:`0.02/\\sqrt{2L}` for the projections that end a residual branch.

    Parameters
    ----------
    config : GPTConfig

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(vocab_size=30))
    >>> model.num_params() == gpt_num_params(30, 24, 3, 64)
    True
    >>> model.lm_head.weight is model.tok_emb.weight          # tied
    True
    >>> tuple(model(torch.zeros(2, 5, dtype=torch.long)).shape)     # (B, T, V)
    (2, 5, 30)

    See Also
    --------
    gpt_num_params, dlmath.decoding.sample_decode

    References
    ----------
    vaswani2017attention, radford2019language, press2017using.  Chapter: :ref:`ch-transformers`.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = config
        self.pad_id = config.pad_id
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)   # (V, C)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)   # (T, C)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight                       # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):                          # ends a residual branch
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameters counted on the model (a shared tensor counts once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` for ids ``idx`` ``(B, T)``."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)                        # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))            # (B, T, C)
        for block in self.blocks:
            x = block(x)                                                # (B, T, C)
        return self.lm_head(self.ln_f(x))                               # (B, T, V)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per target token, ignoring ``pad_id`` targets."""
        return sequence_cross_entropy(logits, targets, ignore_index=self.pad_id)

    # --- decoding interface (dlmath.decoding) -------------------------------------------------
    def start_state(self, batch_size: int) -> torch.Tensor:
        """An empty context ``(batch_size, 0)``: the state for :mod:`dlmath.decoding`."""
        dev = self.tok_emb.weight.device
        return torch.zeros(batch_size, 0, dtype=torch.long, device=dev)

    def step(self, tokens: torch.Tensor, context: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``tokens`` ``(N,)`` to the context ``(N, t)``; return next logits ``(N, V)``.

        The context keeps its last ``block_size`` tokens (no key-value cache: each step
        re-reads the context, cheap at this size).
        """
        context = torch.cat([context, tokens[:, None]], dim=1)[:, -self.config.block_size:]
        return self(context)[:, -1, :], context                      # (N, V), (N, t+1)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, *, eos_id: int | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None) -> list[Hypothesis]:
        """Sample continuations of ``prompt`` ``(B, t)``, ``t >= 1``.

        Each continuation stops at ``eos_id`` (if given) or after ``max_new_tokens``;
        sampling uses :func:`dlmath.decoding.sample_decode` with the given temperature,
        top-k and top-p.  Returns one :class:`~dlmath.decoding.Hypothesis` per row (new
        tokens only).
        """
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must have shape (B, t) with t >= 1, "
                             f"got {tuple(prompt.shape)}")
        prompt = prompt.to(self.tok_emb.weight.device)
        if eos_id is None:          # no end token: every continuation has max_new_tokens
            return _sample(self.step, prompt[:, :-1], prompt[:, -1], None, max_new_tokens,
                           temperature, top_k, top_p, generator, None)
        return sample_decode(self.step, prompt[:, :-1], prompt[:, -1], eos_id, max_new_tokens,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=generator)
