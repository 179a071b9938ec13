"""Exercises of the chapter "Transformers" (:ref:`ch-transformers`).

Oracles: PyTorch's FLOP counter (``torch.utils.flop_counter``), the parameters of
``nn.MultiheadAttention``, a causal mask built with ``torch.tril``, and the variance of a dot
product of Gaussian vectors computed exactly by the two-point Gauss-Hermite rule.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-transformers"


def _attention_flops(n: int, d: int) -> int:
    q = k = v = torch.zeros(n, d)
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q @ k.T, dim=-1) @ v
    return int(counter.get_total_flops())


def _unit_variance_scale(d: int) -> float:
    """c with Var(c q.k) = 1 for q, k with independent standard normal entries.

    E[(q.k)^2] is a polynomial of degree 2 in each entry, which the two-point Gauss-Hermite
    rule (nodes -1 and 1, weights 1/2) integrates exactly: the mean over all sign patterns.
    """
    signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=2 * d)),
                         dtype=torch.float64)
    q, k = signs[:, :d], signs[:, d:]
    dots = (q * k).sum(dim=1)
    variance = (dots**2).mean() - dots.mean() ** 2
    return float(1 / variance.sqrt())


def _mha_params(d: int, h: int) -> int | None:
    if d % h:
        return None                                   # the heads must split d evenly
    return sum(p.numel() for p in nn.MultiheadAttention(d, h, device="meta").parameters())


def _causal_pairs(n: int) -> int:
    return int(torch.ones(n, n).tril().sum())


register(Exercise(
    id="attention-flops", chapter=CHAPTER, title="The cost of attention",
    statement="Q, K and V are n x d. How many floating-point operations do the products Q K^T "
              "and P V take (a product of an a x b and a b x c matrix counts 2abc, as "
              "PyTorch's flop counter does; leave out the softmax)?",
    kind="formula", solution="4*n**2*d", oracle=_attention_flops,
    grid={"n": range(1, 7), "d": range(1, 6)},
    slips=(
        Slip("4*n**2",
             "The cost is quadratic in n for a fixed d, as report 002 says (2.1a), but it is "
             "also proportional to the width d",
             source="report 002 (2.1a)"),
        Slip("2*n**2*d", "This counts one of the two products, or multiply-adds instead of "
                         "operations"),
        Slip("4*n*d**2", "This is the cost of a projection, linear in n"),
    )))

register(Exercise(
    id="attention-scale", chapter=CHAPTER, title="Why divide by the square root of d",
    statement="q and k have d independent standard normal entries. By what factor c must "
              "their dot product be multiplied to have variance 1?",
    kind="formula", solution="1/sqrt(d)", oracle=_unit_variance_scale,
    grid={"d": range(1, 9)},
    slips=(
        Slip("1/d", "This makes the variance 1/d: the variance of q.k is d, so its standard "
                    "deviation is sqrt(d)"),
        Slip("sqrt(d)", "Multiplying by sqrt(d) makes the variance d^2; divide instead"),
    )))

register(Exercise(
    id="mha-params", chapter=CHAPTER, title="Parameters of multi-head attention",
    statement="How many parameters does nn.MultiheadAttention(d, h) hold (with its default "
              "biases), for d divisible by h?",
    kind="formula", solution="4*d**2 + 4*d", oracle=_mha_params,
    grid={"d": range(1, 13), "h": range(1, 5)},
    slips=(
        Slip("4*d**2/h + 4*d", "The heads split the d columns of each projection among "
                               "them; they do not divide the count"),
        Slip("3*d**2 + 3*d", "The output projection, d^2 + d, is missing"),
    )))

register(Exercise(
    id="causal-pairs", chapter=CHAPTER, title="What a causal mask allows",
    statement="In causal self-attention over n tokens, how many (query, key) pairs may "
              "attend?",
    kind="formula", solution="n*(n + 1)/2", oracle=_causal_pairs, grid={"n": range(1, 21)},
    slips=(
        Slip("n**2/2", "The diagonal counts too: each token attends to itself"),
        Slip("n*(n - 1)/2", "This leaves out the diagonal: each token also attends to "
                            "itself"),
    )))
