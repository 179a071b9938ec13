"""Exercises of the chapter "Sequence to sequence" (:ref:`ch-seq2seq`).

The words come from the samples printed in report 003 (question 3).  Oracles: the edit
distance by its recursive definition, the nucleus by sorting and adding, and the most
probable output of a toy model by enumerating every sequence.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-seq2seq"

HYPOTHESES = ("remender", "misperception", "skear")
REFERENCES = ("remainder", "misperception", "scare")

#: The toy model of the beam-search exercise: the probability of each token (a, b, then
#: <eos>) after each prefix.
TOY = {(): {"a": 0.6, "b": 0.4}, ("a",): {"a": 0.55, "b": 0.45}, ("b",): {"a": 0.9, "b": 0.1}}

_TOY_CODE = """import torch
# tokens: 0 = <eos> (also the start), 1 = a, 2 = b; the state t counts the tokens so far
P = {0: [0.0, 0.6, 0.4], (1, 1): [0.0, 0.55, 0.45], (1, 2): [0.0, 0.9, 0.1]}
def step(tok, t):
    rows = [P[0] if n == 0 else P.get((n, k), [1.0, 0.0, 0.0])
            for k, n in zip(tok.tolist(), t.int().tolist())]
    return torch.tensor(rows).log(), t + 1
"""


def _levenshtein(a: str, b: str) -> int:
    @lru_cache(maxsize=None)
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


def _nucleus_size(probs: tuple[float, ...], p: float) -> int:
    total = 0.0
    for count, q in enumerate(sorted(probs, reverse=True), start=1):
        total += q
        if total >= p:
            return count
    return len(probs)


def _best_output() -> float:
    """The probability of the most probable output of the toy model, by enumeration."""
    best = 0.0
    for seq in itertools.product("ab", repeat=2):
        prob = math.prod(TOY[seq[:i]][tok] for i, tok in enumerate(seq))
        best = max(best, prob)
    return best


register(Exercise(
    id="edit-distance", chapter=CHAPTER, title="An edit distance",
    statement="How many insertions, deletions and substitutions turn 'remender' into "
              "'remainder', at the fewest?",
    kind="number", solution="metrics.edit_distance('remender', 'remainder')",
    oracle=lambda: _levenshtein("remender", "remainder"),
    slips=(
        Slip(1, "The difference of the lengths is only a lower bound"),
        Slip(3, "Not the fewest: change e to a and insert i"),
    )))

register(Exercise(
    id="cer-micro", chapter=CHAPTER, title="A character error rate",
    statement="The hypotheses remender, misperception, skear are spelled for the references "
              "remainder, misperception, scare. What is the character error rate: total edits "
              "over total reference characters?",
    kind="number", solution=f"metrics.cer({list(HYPOTHESES)}, {list(REFERENCES)})",
    oracle=lambda: sum(map(_levenshtein, HYPOTHESES, REFERENCES)) / sum(map(len, REFERENCES)),
    rtol=1e-9,
    slips=(
        Slip(sum(_levenshtein(h, r) / len(r) for h, r in zip(HYPOTHESES, REFERENCES)) / 3,
             "This is the mean of the per-word rates (macro average); the character error "
             "rate divides the total number of edits by the total number of reference "
             "characters"),
    )))

register(Exercise(
    id="nucleus-size", chapter=CHAPTER, title="The size of the nucleus",
    statement="A model gives the next token the probabilities 0.5, 0.3, 0.15 and 0.05. How "
              "many tokens does nucleus (top-p) sampling with p = 0.9 sample from?",
    kind="number",
    solution="import torch\n"
             "int(decoding.top_p_filter(torch.tensor([0.5, 0.3, 0.15, 0.05]).log(), 0.9)"
             ".isfinite().sum())",
    oracle=lambda: _nucleus_size((0.5, 0.3, 0.15, 0.05), 0.9),
    slips=(
        Slip(2, "This stops before the total reaches p; the nucleus is the smallest set of "
                "tokens whose probability is at least p, so it keeps the token that crosses p"),
    )))

register(Exercise(
    id="beam-search-prob", chapter=CHAPTER, title="What beam search finds",
    statement="A toy model outputs two tokens, a or b, then stops: first a with 0.6, b with "
              "0.4; after a, a with 0.55, b with 0.45; after b, a with 0.9, b with 0.1. What "
              "is the probability of the output that beam search with width 2 returns?",
    kind="number",
    solution=_TOY_CODE + "best = decoding.beam_search(step, torch.zeros(1), bos=0, eos=0, "
                         "max_len=3, beam_width=2, alpha=0)\n"
                         "math.exp(best[0][0].log_prob)",
    oracle=_best_output, rtol=1e-6,
    slips=(
        Slip(0.33, "This is what greedy decoding returns: it commits to a (0.6) and never "
                   "compares with b followed by a (0.4 x 0.9)"),
    )))
