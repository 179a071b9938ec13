"""An LSTM encoder-decoder, with or without Bahdanau (additive) attention.

Scope: a character-level sequence-to-sequence model small enough to train on a CPU, written
so that every equation of the attention is visible.

* Encoder: embedding, then a (bidirectional) LSTM over the source; padding is packed away,
  so it never changes the result.  Its final states, through a learned *bridge*, start the
  decoder.
* Decoder without attention: an LSTM that sees the source only through that initial state,
  a fixed-size vector (the bottleneck of Sutskever et al. 2014).
* Decoder with attention (Bahdanau et al. 2015): at every step a context vector, a weighted
  average of all encoder outputs, is fed to the LSTM and to the output layer.
* Training uses teacher forcing (the decoder reads the reference prefix); decoding uses
  :mod:`dlmath.decoding` through :meth:`Seq2Seq.start_state` and :meth:`Seq2Seq.step`.

Token conventions: sequences are right-padded with ``pad_id``; the source carries no
special tokens; the target is ``<bos> y_1 ... y_n <eos>`` and the model reads
``tgt[:, :-1]`` to predict ``tgt[:, 1:]`` (see :mod:`dlmath.data.words`).
Chapter: :ref:`ch-seq2seq`.

References: Sutskever, Vinyals & Le, "Sequence to sequence learning with neural networks"
(2014) [sutskever2014sequence]; Bahdanau, Cho & Bengio, "Neural machine translation by
jointly learning to align and translate" (2015) [bahdanau2015neural]; Hochreiter &
Schmidhuber (1997) [hochreiter1997long] for the LSTM.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlmath._validate import check_bool, check_entries, check_int, check_number
from dlmath.decoding import MAX_STEPS
from dlmath.metrics import sequence_cross_entropy

__all__ = ["EncoderOutput", "Seq2Seq", "Speller"]


class EncoderOutput(NamedTuple):
    """What the encoder hands to the decoder.

    Attributes
    ----------
    outputs : torch.Tensor
        ``(B, S, D)`` encoder states :math:`h_j` (zero at padded positions).
    mask : torch.Tensor
        ``(B, S)`` bool, True at real source tokens.
    h0, c0 : torch.Tensor
        ``(B, H)`` initial decoder state, from the encoder's final states.
    """

    outputs: torch.Tensor
    mask: torch.Tensor
    h0: torch.Tensor
    c0: torch.Tensor


class Seq2Seq(nn.Module):
    r"""LSTM encoder-decoder; ``attention=True`` adds Bahdanau attention.

    Explanation
    -----------
    Encoder: :math:`h_j = [\overrightarrow{h}_j; \overleftarrow{h}_j] \in \mathbb{R}^D`
    for source positions :math:`j = 1..S` (:math:`D = 2H` when bidirectional).  The
    decoder starts from :math:`s_0 = \tanh(W_s [\overrightarrow{h}_S; \overleftarrow{h}_1])`
    (and :math:`m_0 = W_m [\cdot]` for the LSTM memory, from the final memories).

    With attention, at output step :math:`i` (equations of Bahdanau et al., with an LSTM):

    .. math::
        e_{ij} &= v_a^\top \tanh(W_a s_{i-1} + U_a h_j), \qquad
        \alpha_{ij} = \frac{e^{e_{ij}}}{\sum_{k} e^{e_{ik}}} \ (\text{real } j, k \text{ only}),\\
        c_i &= \textstyle\sum_j \alpha_{ij} h_j, \qquad
        s_i = \mathrm{LSTM}([E y_{i-1}; c_i],\, s_{i-1}), \qquad
        \mathrm{logits}_i = W_o [s_i; c_i; E y_{i-1}] + b_o .

    Without attention :math:`c_i` is absent: the decoder sees the source only through
    :math:`s_0`.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
        Source and target vocabulary sizes (special tokens included).
    emb_dim : int
        Embedding size :math:`E` (source and target).
    hidden_size : int
        LSTM size :math:`H` (per direction in the encoder).
    attention : bool
        Use Bahdanau attention.
    attn_size : int, optional
        Size :math:`A` of the attention MLP (default ``hidden_size``).
    bidirectional : bool
        Bidirectional encoder.
    dropout : float
        Dropout on embeddings and before the output layer (training only).
    pad_id : int
        Padding id of source and target.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(src_vocab_size=10, tgt_vocab_size=12, emb_dim=8, hidden_size=16)
    >>> src = torch.tensor([[4, 5, 6], [7, 8, 0]])         # second source padded
    >>> tgt_in = torch.tensor([[1, 3, 4, 5], [1, 9, 2, 0]])
    >>> logits, attn = model(src, tgt_in, return_attention=True)
    >>> tuple(logits.shape), tuple(attn.shape)               # (B, T, V), (B, T, S)
    ((2, 4, 12), (2, 4, 3))
    >>> attn[1, :, 2].abs().max().item()                     # no weight on padding
    0.0

    See Also
    --------
    dlmath.decoding : greedy, beam search and sampling over :meth:`step`.
    dlmath.data.words : the pronunciation-to-spelling data.

    References
    ----------
    sutskever2014sequence, bahdanau2015neural, hochreiter1997long.
    Chapter: :ref:`ch-seq2seq`.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, emb_dim: int = 64,
                 hidden_size: int = 128, attention: bool = True, attn_size: int | None = None,
                 bidirectional: bool = True, dropout: float = 0.0, pad_id: int = 0) -> None:
        super().__init__()
        for name, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                            ("emb_dim", emb_dim), ("hidden_size", hidden_size)):
            check_int(name, value, 1)
        attn_size = hidden_size if attn_size is None else check_int("attn_size", attn_size, 1)
        check_number("dropout", dropout, interval="[0, 1)")
        check_bool("attention", attention)
        check_bool("bidirectional", bidirectional)
        if not 0 <= check_int("pad_id", pad_id) < min(src_vocab_size, tgt_vocab_size):
            raise ValueError(f"pad_id {pad_id} is not a valid id of both vocabularies")
        H, E = hidden_size, emb_dim
        D = H * (2 if bidirectional else 1)                          # encoder state size
        for what, n in (
                (f"the source embedding of src_vocab_size x emb_dim = {src_vocab_size} x {E}",
                 src_vocab_size * E),
                (f"the target embedding and output layer of tgt_vocab_size = {tgt_vocab_size}, "
                 f"emb_dim = {E}, hidden_size = {H}", tgt_vocab_size * (E + H + D + E)),
                (f"the LSTM weights of emb_dim = {E}, hidden_size = {H}", 4 * H * (E + D + H)),
                (f"the attention weights of attn_size = {attn_size}, hidden_size = {H}",
                 attn_size * (H + D + 1))):
            check_entries(what, n)
        self.pad_id = pad_id
        self.attention = bool(attention)
        self.hidden_size = hidden_size
        self.src_emb = nn.Embedding(src_vocab_size, E, padding_idx=pad_id)
        self.encoder = nn.LSTM(E, H, batch_first=True, bidirectional=bidirectional)
        self.bridge_h = nn.Linear(D, H)                              # s_0 = tanh(W_s h_final)
        self.bridge_c = nn.Linear(D, H)                              # m_0 = W_m c_final
        self.tgt_emb = nn.Embedding(tgt_vocab_size, E, padding_idx=pad_id)
        C = D if self.attention else 0                               # context size
        if self.attention:
            self.W_a = nn.Linear(H, attn_size, bias=False)
            self.U_a = nn.Linear(D, attn_size, bias=False)
            self.v_a = nn.Linear(attn_size, 1, bias=False)
        self.decoder = nn.LSTMCell(E + C, H)                         # s_i = LSTM(x_i, s_{i-1})
        self.out = nn.Linear(H + C + E, tgt_vocab_size)              # W_o [s_i; c_i; E y_{i-1}]
        self.drop = nn.Dropout(dropout)

    # --- encoder ---------------------------------------------------------------------------
    def encode(self, src: torch.Tensor) -> EncoderOutput:
        """Run the encoder on right-padded source ids ``(B, S)``.

        Raises
        ------
        ValueError
            If a source is empty or its padding is not at the end.
        """
        if src.dim() != 2:
            raise ValueError(f"src must have shape (B, S), got {tuple(src.shape)}")
        B, S = src.shape
        mask = src != self.pad_id                                    # (B, S)
        lengths = mask.sum(dim=1)                                    # (B,)
        if bool((lengths == 0).any()):
            raise ValueError("src has a row made only of padding; every source needs a token")
        positions = torch.arange(S, device=src.device)
        if not torch.equal(mask, positions[None, :] < lengths[:, None]):
            raise ValueError("src must be right-padded: pad_id may only follow the real tokens")
        x = self.drop(self.src_emb(src))                             # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.encoder(packed)                       # h_n, c_n: (dirs, B, H)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=S)   # (B, S, D)
        h_last = h_n.transpose(0, 1).reshape(B, -1)                  # (B, D) [fwd at S; bwd at 1]
        c_last = c_n.transpose(0, 1).reshape(B, -1)                  # (B, D)
        h0 = torch.tanh(self.bridge_h(h_last))                       # (B, H)
        c0 = self.bridge_c(c_last)                                   # (B, H)
        return EncoderOutput(outputs, mask, h0, c0)

    # --- attention -------------------------------------------------------------------------
    def attend(self, s_prev: torch.Tensor, outputs: torch.Tensor, keys: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Bahdanau attention for one decoder step.

        ``s_prev`` ``(B, H)`` is :math:`s_{i-1}`, ``outputs`` ``(B, S, D)`` the :math:`h_j`,
        ``keys`` ``(B, S, A)`` the precomputed :math:`U_a h_j`, ``mask`` ``(B, S)``.
        Returns the context :math:`c_i` ``(B, D)`` and the weights :math:`\alpha_{i\cdot}`
        ``(B, S)``, exactly 0 on padded positions.
        """
        # e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)
        e = self.v_a(torch.tanh(self.W_a(s_prev)[:, None, :] + keys)).squeeze(-1)   # (B, S)
        # alpha_ij = softmax_j(e_ij) over the real source positions
        alpha = e.masked_fill(~mask, float("-inf")).softmax(dim=-1)                # (B, S)
        # c_i = sum_j alpha_ij h_j
        context = torch.einsum("bj,bjd->bd", alpha, outputs)                        # (B, D)
        return context, alpha

    # --- decoder ---------------------------------------------------------------------------
    def _step(self, y_prev: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
              enc: EncoderOutput | None, keys: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One decoder step: y_{i-1} (B,), s_{i-1} (B, H) -> logits (B, V), s_i, m_i, alpha."""
        emb = self.drop(self.tgt_emb(y_prev))                        # (B, E)
        alpha = None
        if self.attention:
            assert enc is not None and keys is not None
            context, alpha = self.attend(h, enc.outputs, keys, enc.mask)   # (B, D), (B, S)
            x = torch.cat([emb, context], dim=-1)                    # (B, E + D)
        else:
            context = emb.new_zeros(emb.shape[0], 0)                 # (B, 0)
            x = emb
        h, c = self.decoder(x, (h, c))                               # (B, H), (B, H)
        logits = self.out(self.drop(torch.cat([h, context, emb], dim=-1)))     # (B, V)
        return logits, h, c, alpha

    def decode(self, enc: EncoderOutput, tgt_in: torch.Tensor, return_attention: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits ``(B, T, V)`` for decoder inputs ``tgt_in`` ``(B, T)``.

        With ``return_attention`` also the weights ``(B, T, S)`` (attention models only).
        """
        if tgt_in.dim() != 2 or tgt_in.shape[0] != enc.outputs.shape[0]:
            raise ValueError(f"tgt_in must have shape (B={enc.outputs.shape[0]}, T), got "
                             f"{tuple(tgt_in.shape)}")
        if check_bool("return_attention", return_attention) and not self.attention:
            raise ValueError("return_attention=True needs a model built with attention=True")
        keys = self.U_a(enc.outputs) if self.attention else None     # (B, S, A)  U_a h_j
        h, c = enc.h0, enc.c0
        logits, alphas = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, h, c, alpha = self._step(tgt_in[:, t], h, c, enc, keys)
            logits.append(step_logits)
            alphas.append(alpha)
        out = torch.stack(logits, dim=1)                             # (B, T, V)
        if return_attention:
            return out, torch.stack(alphas, dim=1)  # type: ignore[arg-type]  # (B, T, S)
        return out

    def forward(self, src: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                tgt_in: torch.Tensor | None = None, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, T, V)`` of the next target token, by teacher forcing.

        ``src`` ``(B, S)`` source ids, ``tgt_in`` ``(B, T)`` decoder inputs
        (``<bos> y_1 ... y_{T-1}``).  ``model((src, tgt_in))`` works too, for a training loop
        that passes one ``inputs`` object.
        """
        if tgt_in is None:
            if not isinstance(src, (tuple, list)) or len(src) != 2:
                raise TypeError("call model(src, tgt_in) or model((src, tgt_in))")
            src, tgt_in = src
        return self.decode(self.encode(src), tgt_in, return_attention)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per target token, ignoring ``pad_id`` targets."""
        return sequence_cross_entropy(logits, targets, ignore_index=self.pad_id)

    # --- decoding interface (dlmath.decoding) -------------------------------------------------
    def start_state(self, src: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode ``src`` and return the decoder state for :mod:`dlmath.decoding` (batch first)."""
        enc = self.encode(src)
        if not self.attention:
            return (enc.h0, enc.c0)
        return (enc.h0, enc.c0, enc.outputs, enc.mask, self.U_a(enc.outputs))

    def step(self, tokens: torch.Tensor, state: tuple[torch.Tensor, ...]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One decoding step: last tokens ``(N,)`` -> next-token logits ``(N, V)``, new state."""
        if self.attention:
            h, c, outputs, mask, keys = state
            enc = EncoderOutput(outputs, mask, h, c)
            logits, h, c, _ = self._step(tokens, h, c, enc, keys)
            return logits, (h, c, outputs, mask, keys)
        h, c = state
        logits, h, c, _ = self._step(tokens, h, c, None, None)
        return logits, (h, c)


class Speller(Seq2Seq):
    r"""An encoder-decoder that spells free-running when it is given the source alone.

    Explanation
    -----------
    ``model(src, tgt_in)`` is :class:`~dlmath.models.seq2seq.Seq2Seq`'s teacher-forced forward
    pass.  ``model(src)`` instead feeds the decoder its own previous choice,
    :math:`y_i = \arg\max_v z_{i,v}` (ties to the lower id, as
    :func:`dlmath.decoding.greedy_decode`) among the letters and ``<eos>`` (``<pad>`` and
    ``<bos>`` get logit :math:`-\infty`), starting from ``<bos>``, and returns these logits
    :math:`z_i` of every step, ``(B, L, V)``, until every row has produced ``<eos>`` or
    ``max_len`` steps were taken.  Rows that have ended keep being extended; whoever reads
    the output stops at the first ``<eos>``.  So the same model trains under teacher forcing
    and is evaluated free-running inside one training loop.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
        As :class:`~dlmath.models.seq2seq.Seq2Seq`.
    max_len : int
        Most decoding steps of ``model(src)`` (``<eos>`` included).
    bos_id : int
        Start token.
    eos_id : int
        End token (decoding stops once every row has produced it).
    **kwargs
        Passed to :class:`~dlmath.models.seq2seq.Seq2Seq` (``emb_dim``, ``hidden_size``,
        ``attention``, ...).

    Examples
    --------
    >>> from dlmath.data.words import letter_vocab, phoneme_vocab
    >>> from dlmath._book.spelling import spell
    >>> _ = torch.manual_seed(0)
    >>> model = Speller(42, 29, emb_dim=8, hidden_size=16, max_len=5).eval()
    >>> prons = [("K", "AE", "T"), ("D", "AO", "G")]
    >>> src = phoneme_vocab().encode_batch(prons)                  # (2, 3)
    >>> model(src, torch.tensor([[1, 3], [1, 4]])).shape          # teacher forcing
    torch.Size([2, 2, 29])
    >>> z = model(src)                                             # free-running
    >>> z.shape[0], z.shape[1] <= 5
    (2, True)
    >>> greedy = [c[0].word for c in spell(model, prons, max_len=5)]
    >>> letter_vocab().decode_batch(z.argmax(-1)) == greedy
    True

    See Also
    --------
    dlmath.decoding.greedy_decode : decoding one token at a time.

    References
    ----------
    bahdanau2015neural.  Chapter: :ref:`ch-seq2seq`.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, max_len: int = 13,
                 bos_id: int = 1, eos_id: int = 2, **kwargs: Any) -> None:
        super().__init__(src_vocab_size, tgt_vocab_size, **kwargs)
        check_int("max_len", max_len, 1, limit=MAX_STEPS)
        check_int("bos_id", bos_id, 0, tgt_vocab_size - 1)      # ids of the target vocabulary
        check_int("eos_id", eos_id, 0, tgt_vocab_size - 1)
        if len({self.pad_id, bos_id, eos_id}) < 3:
            raise ValueError(f"pad_id, bos_id and eos_id must be three different ids, got "
                             f"{self.pad_id}, {bos_id} and {eos_id}")
        self.max_len, self.bos_id, self.eos_id = max_len, bos_id, eos_id

    def forward(self, src: Any, tgt_in: torch.Tensor | None = None,
                return_attention: bool = False) -> Any:
        """Teacher-forced logits ``(B, T, V)``, or, with ``src`` alone, free-running ones."""
        if tgt_in is not None or isinstance(src, (tuple, list)):
            return super().forward(src, tgt_in, return_attention)
        if check_bool("return_attention", return_attention):
            raise ValueError("return_attention needs tgt_in (teacher forcing)")
        state = self.start_state(src)
        tokens = torch.full((src.shape[0],), self.bos_id, dtype=torch.long,
                            device=src.device)                              # (B,)
        done = torch.zeros_like(tokens, dtype=torch.bool)                   # (B,)
        steps = []
        for _ in range(self.max_len):
            logits, state = self.step(tokens, state)                        # (B, V)
            logits = _no_specials(logits, self.pad_id, self.bos_id)
            steps.append(logits)
            tokens = logits.argmax(dim=-1)                                  # first max: lower id
            done = done | (tokens == self.eos_id)
            if bool(done.all()):
                break
        return torch.stack(steps, dim=1)                                    # (B, L, V)


def _no_specials(logits: torch.Tensor, pad_id: int, bos_id: int) -> torch.Tensor:
    """Logits with ``<pad>`` and ``<bos>`` set to -inf: a spelling is letters, then ``<eos>``."""
    logits = logits.clone()
    logits[..., [pad_id, bos_id]] = float("-inf")
    return logits
