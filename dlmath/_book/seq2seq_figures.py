"""Figures of the seq2seq chapter: attention links of one word, and the tree of a beam search.

Private to the book (chapter :ref:`ch-seq2seq`).

* :func:`attention_weights` runs a trained attention model teacher-forced on one spelling and
  returns the weights :math:`\\alpha_{ij}` (letters by phonemes).
* :func:`draw_attention_links` draws them as lines between the encoder states (one per
  phoneme) and the decoder steps (one per letter), thicker and darker for larger weights.
* :func:`beam_tree` traces beam search of width :math:`k` on one pronunciation, keeping at
  every step the extensions it kept and the best ones it pruned, each with its cumulative
  log-probability; :func:`draw_beam_tree` draws the tree.

:func:`beam_tree` repeats the selection rule of :func:`dlmath.decoding.beam_search` one beam at
a time, so that the pruned branches can be shown; its finished hypotheses are the ones
:func:`dlmath._book.spelling.spell` returns (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dlmath._validate import check_int
from dlmath.data.words import letter_vocab, phoneme_vocab
from dlmath.models.seq2seq import _no_specials

__all__ = ["BeamNode", "attention_weights", "beam_tree", "draw_attention_links", "draw_beam_tree"]

_LETTERS = letter_vocab()
_PHONEMES = phoneme_vocab()


@torch.no_grad()
def attention_weights(model: Any, pronunciation: Sequence[str], spelling: str) -> torch.Tensor:
    """Weights :math:`\\alpha_{ij}` ``(len(spelling) + 1, len(pronunciation))`` of one word.

    Row :math:`i` is the step that outputs letter :math:`i` (the last row outputs ``<eos>``),
    column :math:`j` the phoneme; every row sums to one.

    Examples
    --------
    >>> from dlmath.models import Seq2Seq
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(42, 29, emb_dim=8, hidden_size=16, attention=True).eval()
    >>> a = attention_weights(model, ("K", "AE", "T"), "cat")
    >>> tuple(a.shape), bool(torch.allclose(a.sum(1), torch.ones(4)))
    ((4, 3), True)
    """
    src = _PHONEMES.encode_batch([tuple(pronunciation)])                 # (1, S)
    tgt_in = _LETTERS.encode_batch([spelling], bos=True)                 # (1, T): <bos> + letters
    _, alpha = model(src, tgt_in, return_attention=True)                 # (1, T, S)
    return alpha[0]


def draw_attention_links(ax: Any, phonemes: Sequence[str], letters: Sequence[str],
                         alpha: torch.Tensor, *, hidden_size: int | None = None,
                         threshold: float = 0.03) -> None:
    """Encoder states below, decoder steps above, a line for every weight above ``threshold``.

    The line from letter :math:`i` to phoneme :math:`j` has width and opacity proportional to
    :math:`\\alpha_{ij}`; ``hidden_size`` :math:`H`, if given, labels the rows with the sizes
    of the states (:math:`h_j \\in \\mathbb{R}^{2H}`, :math:`s_i \\in \\mathbb{R}^{H}`).
    """
    from dlmath._book.plotting import OKABE_ITO

    a = alpha.detach().cpu().numpy()
    T, S = a.shape
    if T != len(letters) or S != len(phonemes):
        raise ValueError(f"alpha has shape {a.shape}, expected ({len(letters)}, {len(phonemes)})")
    xs = [j * (T - 1) / max(S - 1, 1) for j in range(S)] if S > 1 else [0.0]
    xt = list(range(T))
    for i in range(T):
        for j in range(S):
            if a[i, j] > threshold:
                ax.plot([xs[j], xt[i]], [0.0, 1.0], color=OKABE_ITO["blue"], lw=0.5 + 4 * a[i, j],
                        alpha=float(0.15 + 0.85 * a[i, j]), solid_capstyle="round", zorder=1)
    box = {"boxstyle": "round,pad=0.3", "lw": 0.8}
    for j, p in enumerate(phonemes):
        ax.text(xs[j], 0.0, p, ha="center", va="center", fontsize=9, zorder=2,
                bbox={**box, "fc": "#f2f2f2", "ec": OKABE_ITO["black"]})
    for i, c in enumerate(letters):
        ax.text(xt[i], 1.0, c, ha="center", va="center", fontsize=10, zorder=2,
                bbox={**box, "fc": "white", "ec": OKABE_ITO["vermillion"]})
    lo, hi = -0.6, max(T - 1, xs[-1]) + 0.6
    ax.set_xlim(lo - (2.6 if hidden_size else 0.0), hi)
    ax.set_ylim(-0.35, 1.35)
    if hidden_size:
        ax.text(lo - 0.3, 0.0, f"encoder $h_j$\n$\\in\\mathbb{{R}}^{{{2 * hidden_size}}}$",
                ha="right", va="center", fontsize=8)
        ax.text(lo - 0.3, 1.0, f"decoder $s_i$\n$\\in\\mathbb{{R}}^{{{hidden_size}}}$",
                ha="right", va="center", fontsize=8)
    ax.axis("off")


@dataclass(frozen=True)
class BeamNode:
    """One extension considered by beam search.

    ``depth`` is the step (1 for the first letter), ``parent`` the index of the extended node
    among the kept nodes of the step before (``None`` at depth 1), ``token`` a letter or
    ``"<eos>"``, ``log_prob`` the cumulative :math:`\\log p(y_{\\le i} \\mid x)`, ``kept``
    whether the beam kept it, ``finished`` whether it ends with ``<eos>``.
    """

    depth: int
    parent: int | None
    prefix: str
    token: str
    log_prob: float
    kept: bool
    finished: bool


@torch.no_grad()
def beam_tree(model: Any, pronunciation: Sequence[str], beam_width: int = 2, *,
              max_len: int = 13, pruned_per_beam: int = 1) -> list[list[BeamNode]]:
    """The steps of beam search of width ``beam_width`` on one pronunciation.

    Explanation
    -----------
    At step :math:`t` every live beam is extended by every letter and ``<eos>``; the
    :math:`k - f` extensions of highest cumulative log-probability are kept (:math:`f`:
    hypotheses already finished; ties to the earlier beam and the lower token), as in
    :func:`dlmath.decoding.beam_search`.  Step :math:`t` of the result lists the kept
    extensions (in the beam's order, best first) followed by the best ``pruned_per_beam``
    extensions of each live beam that were not kept.

    Returns
    -------
    list of list of BeamNode
        One list per step, until no beam is live or ``max_len`` steps.

    Examples
    --------
    >>> from dlmath.models import Seq2Seq
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(42, 29, emb_dim=8, hidden_size=16, attention=True).eval()
    >>> tree = beam_tree(model, ("K", "AE", "T"), 2, max_len=4)
    >>> [sum(n.kept for n in step) <= 2 for step in tree]
    [True, True, True, True]
    """
    k = check_int("beam_width", beam_width, 1)
    check_int("max_len", max_len, 1)
    check_int("pruned_per_beam", pruned_per_beam, 0)
    bos, eos = _LETTERS.bos_id, _LETTERS.eos_id
    state = model.start_state(_PHONEMES.encode_batch([tuple(pronunciation)]))
    live: list[tuple[tuple[int, ...], float, Any, int]] = [((), 0.0, state, bos)]
    n_done, steps = 0, []
    for depth in range(1, max_len + 1):
        cands = []                                   # (score, beam, token, state)
        for b, (_, score, st, last) in enumerate(live):
            logits, new = model.step(torch.tensor([last]), st)
            logp = _no_specials(logits, _LETTERS.pad_id, bos).float().log_softmax(-1)[0]
            for v in range(logp.shape[0]):
                if logp[v] > float("-inf"):
                    cands.append((score + float(logp[v]), b, v, new))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        chosen = cands[:k - n_done]
        nodes, nxt = [], []
        for score, b, v, new in chosen:
            prefix = _LETTERS.decode(live[b][0])
            fin = v == eos
            nodes.append(BeamNode(depth, b if depth > 1 else None, prefix,
                                  "<eos>" if fin else _LETTERS.decode([v]), score, True, fin))
            if fin:
                n_done += 1
            else:
                nxt.append((live[b][0] + (v,), score, new, v))
        taken = {(b, v) for _, b, v, _ in chosen}
        for b in range(len(live)):
            rest = [c for c in cands if c[1] == b and (b, c[2]) not in taken][:pruned_per_beam]
            for score, _, v, _ in rest:
                nodes.append(BeamNode(depth, b if depth > 1 else None, _LETTERS.decode(live[b][0]),
                                      "<eos>" if v == eos else _LETTERS.decode([v]), score,
                                      False, v == eos))
        steps.append(nodes)
        live = nxt
        if not live or n_done >= k:
            break
    return steps


def draw_beam_tree(ax: Any, tree: list[list[BeamNode]]) -> None:
    """Steps left to right; kept nodes in colour, pruned ones grey; each node its letter and
    cumulative log-probability; finished hypotheses (``<eos>``) framed."""
    from dlmath._book.plotting import OKABE_ITO

    pos: list[list[tuple[float, float]]] = []
    kept_pos: list[list[tuple[float, float]]] = [[(0.0, 0.0)]]        # the root, <bos>
    ax.text(0, 0, "<bos>", ha="center", va="center", fontsize=8,
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": OKABE_ITO["black"], "lw": 0.8})
    for t, nodes in enumerate(tree, start=1):
        n = len(nodes)
        ys = [(n - 1) / 2 - r for r in range(n)]
        here, kept_here = [], []
        for node, y in zip(nodes, ys):
            parents = kept_pos[-1]
            px, py = parents[node.parent or 0] if parents else (t - 1, 0.0)
            colour = (OKABE_ITO["vermillion"] if node.finished else OKABE_ITO["blue"]) \
                if node.kept else "#b0b0b0"
            ax.plot([px + 0.14, t - 0.14], [py, y], color=colour, lw=1.4 if node.kept else 0.8,
                    ls="-" if node.kept else ":", zorder=1)
            label = "eos" if node.token == "<eos>" else node.token
            ax.text(t, y, f"{label}\n{node.log_prob:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if node.kept else "#8a8a8a", zorder=2,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": colour,
                              "lw": 1.6 if node.finished and node.kept else 0.8})
            here.append((float(t), y))
            if node.kept and not node.finished:
                kept_here.append((float(t), y))
        pos.append(here)
        kept_pos.append(kept_here)
    height = max(len(n) for n in tree)
    ax.set_xlim(-0.5, len(tree) + 0.5)
    ax.set_ylim(-height / 2 - 0.3, height / 2 + 0.3)
    ax.set_xticks(range(len(tree) + 1), ["start"] + [str(t) for t in range(1, len(tree) + 1)])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("step $i$ (letters output)")
