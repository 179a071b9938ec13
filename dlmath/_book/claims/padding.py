"""Claims of report 002, part 1: padding and absolute position (Q1.1), rotation (Q1.2).

Chapters :ref:`ch-padding-position` and :ref:`ch-rotation`.  Every check computes: the
border term of a padded convolution symbolically (:mod:`dlmath.models.position`) and against
``torch.nn.functional.conv2d``; the invariance of untrained networks to the 16-row shift of
the red/green test set (float64, so "zero" means rounding); the padded red/green images
themselves; parameter counts with :mod:`dlmath.params` and with ``numel``.  The reported
*accuracies* are not claims here: the chapters train the networks and compare.  The
measurement functions are shared with the chapters, so prose and errata quote the same
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import sympy as sp
import torch
import torch.nn.functional as F

from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath._validate import one_torch_thread
from dlmath.check import compare_formula, compare_number
from dlmath.conv import conv_output_size
from dlmath.data import red_green_boxes, rotate
from dlmath.equivariance import equivariance_error
from dlmath.params import count_params, linear_params
from dlmath.models.position import (
    PADDINGS, conv_border_term_sym, feature_map_sizes, padding_spec, strided_conv_net,
)

R002 = "002_96e139cf604c0a28"
PADDING_CHAPTER, ROTATION_CHAPTER = "ch-padding-position", "ch-rotation"
DT = torch.float64


# ---- Q1.1a: the output at the corner ---------------------------------------------------

def report_corner_expression() -> sp.Expr:
    """The report's :math:`f_{1,1}`: image :math:`g` indexed from 1, kernel :math:`h` from -1."""
    g = lambda r, c: sp.Symbol(f"g_{{{r},{c}}}")          # noqa: E731
    h = lambda a, b: sp.Symbol(f"h_{{{a},{b}}}")          # noqa: E731
    return g(1, 1) * h(0, 0) + g(1, 2) * h(0, -1) + g(2, 1) * h(-1, 0) + g(2, 2) * h(-1, -1)


def corner_output_true_convolution(height: int = 4, width: int = 4) -> sp.Expr:
    r""":math:`f_{1,1} = \sum_{k,l} g_{1-k, 1-l} h_{k,l}` with zero padding, from dlmath.

    The convolution of the report flips the kernel; PyTorch's (and
    :func:`dlmath.models.position.conv_border_term_sym`'s) cross-correlation does not, so
    substitute :math:`x_{r,c} = g_{r+1,c+1}` and :math:`w_{a,b} = h_{1-a,1-b}`.
    """
    inner, border = conv_border_term_sym(height, width, 0, 0, "zeros1")
    subs = {sp.Symbol(f"x_{{{r},{c}}}"): sp.Symbol(f"g_{{{r + 1},{c + 1}}}")
            for r in range(height) for c in range(width)}
    subs |= {sp.Symbol(f"w_{{{a},{b}}}"): sp.Symbol(f"h_{{{1 - a},{1 - b}}}")
             for a in range(3) for b in range(3)}
    return sp.expand((inner + border).xreplace(subs))


def _torch_corner(expr: sp.Expr, seed: int = 0) -> tuple[float, float]:
    """Evaluate ``expr`` and torch's zero-padded true convolution at (1, 1) on random numbers."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(4, 4, generator=gen, dtype=DT)
    h = torch.randn(3, 3, generator=gen, dtype=DT)                      # h[k+1, l+1] = h_{k,l}
    # true convolution = cross-correlation with the flipped kernel
    f = F.conv2d(g[None, None], h.flip(0, 1)[None, None], padding=1)[0, 0]
    values = {sp.Symbol(f"g_{{{r + 1},{c + 1}}}"): float(g[r, c]) for r in range(4)
              for c in range(4)}
    values |= {sp.Symbol(f"h_{{{a - 1},{b - 1}}}"): float(h[a, b]) for a in range(3)
               for b in range(3)}
    return float(expr.xreplace(values)), float(f[0, 0])


@one_torch_thread()
def _check_corner() -> Check:
    claimed, ours = report_corner_expression(), corner_output_true_convolution()
    # the checker's grid wants plain symbol names: g_{1,2} -> g_1_2, h_{-1,0} -> h_m1_0
    syms = sorted(claimed.free_symbols | ours.free_symbols, key=str)
    plain = {s: sp.Symbol(str(s).translate(str.maketrans({"{": "", "}": "", ",": "_",
                                                           "-": "m"}))) for s in syms}
    grid = {str(plain[s]): [i + 1] for i, s in enumerate(syms)}
    full = compare_formula(claimed.xreplace(plain), ours.xreplace(plain), grid)
    value, oracle = _torch_corner(claimed)
    if full.ok:                         # and the value agrees with PyTorch's convolution
        full = compare_number(value, oracle, atol=1e-12)
    return Check(verified=f"${sp.latex(ours)}$", verdict=verdict_of(full),
                 note="For the true (flipped) convolution with zero padding the corner output "
                      "keeps the 4 of the 9 taps that land in the image; the other 5 form "
                      "the border term, 0 with zero padding and pixels of the image with "
                      "circular, reflect or replicate padding. PyTorch's cross-correlation "
                      "gives the same four pixels with the kernel indices negated.")


register(Claim(id="002-Q1.1a-corner-output", source=R002, question="Q1.1a",
               topic="output of a 3x3 convolution at the top-left pixel",
               claimed=r"$f_{1,1} = g_{1,1}h_{0,0} + g_{1,2}h_{0,-1} + g_{2,1}h_{-1,0} + "
                       r"g_{2,2}h_{-1,-1}$",
               check=_check_corner, chapter=PADDING_CHAPTER, expected="correct"))


# ---- Q1.1c i: what the three zero paddings are -----------------------------------------

def tap_reads(size: int, padding: str) -> torch.Tensor:
    """How many (output, tap) pairs read each pixel of a ``size``×``size`` image (stride 1)."""
    amount = {"valid": 0, "zeros1": 1, "zeros2": 2}[padding]
    ones = torch.ones(1, 1, 3, 3, dtype=DT)
    # pixel p is read by output o through tap a when o + a - amount = p: the transposed
    # convolution of an all-ones output map with an all-ones kernel counts them
    n_out = conv_output_size(size, 3, 1, amount)
    return F.conv_transpose2d(torch.ones(1, 1, n_out, n_out, dtype=DT), ones,
                              padding=amount)[0, 0]


def _check_zero_paddings() -> Check:
    same = conv_output_size(32, 3, 1, 1) == 32
    full_reads = tap_reads(32, "zeros2")
    full = bool((full_reads == 9).all()) and conv_output_size(32, 3, 1, 2) == 32 + 3 - 1
    corner = int(tap_reads(32, "zeros1")[0, 0])
    ok = same and full
    return Check(verified="valid: $p=0$; same: $p=1$ keeps $32 \\to 32$; full: $p=k-1=2$, "
                          "every pixel read by all 9 taps",
                 verdict="correct" if ok else "incorrect",
                 note=f"With zero padding 1 a corner pixel is read by {corner} of the 9 taps, "
                      f"an inner one by 9; with padding 2 every pixel is read by all 9, which "
                      f"is what makes the full convolution blind to where the border is.")


register(Claim(id="002-Q1.1c-i-zero-paddings", source=R002, question="Q1.1c i",
               topic="the three zero-padding variants (valid, same, full) for a 3x3 kernel",
               claimed="valid: no padding; sconv: zero padding 1; fconv: zero padding 2",
               check=_check_zero_paddings, chapter=PADDING_CHAPTER, expected="correct"))


# ---- Q1.1c ii: is it the size of the feature maps? --------------------------------------

@lru_cache(maxsize=2)
def shifted_test_images(n: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` red/green test images (float64); rolled by 16 rows they are training-like."""
    return red_green_boxes(2, 2, n, seed=seed).test.inputs[0].to(DT)


def shift_gaps(global_pool: bool = True, seeds: Sequence[int] = (0, 1, 2),
               channels: Sequence[int] = (4, 4, 8, 8), n: int = 32,
               paddings: Sequence[str] = PADDINGS) -> dict[str, float]:
    """Largest logit change of untrained nets between test images and their 16-row rolls.

    For each of ``paddings`` (default :data:`dlmath.models.position.PADDINGS`), the maximum
    over ``seeds`` (initialisations), images and logits of ``|net(roll(x, 16)) - net(x)|`` in
    float64.
    """
    x = shifted_test_images(n)
    gaps = {}
    for padding in paddings:
        worst = 0.0
        for seed in seeds:
            torch.manual_seed(seed)
            net = strided_conv_net(padding, global_pool, channels=tuple(channels)).to(DT).eval()
            with torch.no_grad():
                err = equivariance_error(net, x, (16, 0), output_shift=0)
            worst = max(worst, float(err.abs().max()))
        gaps[padding] = worst
    return gaps


@one_torch_thread()
def _check_map_size_explanation() -> Check:
    paddings = ("zeros1", "zeros2", "circular1")
    sizes = {p: feature_map_sizes(32, p) for p in paddings}
    with torch.random.fork_rng():
        gaps = shift_gaps(paddings=paddings)
    equal_sizes = sizes["circular1"] == sizes["zeros1"]
    differ = gaps["circular1"] < 1e-9 and gaps["zeros1"] > 1e-6 and gaps["zeros2"] < 1e-9
    verdict = "incorrect" if equal_sizes and differ else "correct"
    return Check(verified="what matters is whether the border can be detected: full padding "
                          "and circular padding by 1 pixel make Net1 exactly invariant to the "
                          "16-row shift",
                 verdict=verdict,
                 note=f"Circular padding by 1 pixel gives the same map sizes as zero padding "
                      f"1 ({sizes['circular1']}), yet untrained Net1 with it changes its "
                      f"logits by at most {gaps['circular1']:.0e} under the test set's shift "
                      f"and with zero padding 1 by up to {gaps['zeros1']:.2g}; full padding "
                      f"({sizes['zeros2']}) gives {gaps['zeros2']:.0e}.")


register(Claim(id="002-Q1.1c-ii-map-size", source=R002, question="Q1.1c ii",
               topic="why valid < same < full zero padding on the shifted test set",
               claimed="larger feature maps keep more spatial information",
               check=_check_map_size_explanation, chapter=PADDING_CHAPTER,
               expected="incorrect"))


def zero_padding_agreement(padding: str, x: torch.Tensor, seeds: Sequence[int] = (0, 1, 2),
                           channels: Sequence[int] = (4, 4, 8, 8), tol: float = 1e-12
                           ) -> tuple[list[float], list[list[int]]]:
    """How often each layer of Net1 computes what zero padding of the same amount computes.

    For every seed, Net1 with ``padding`` and Net1 with zero padding of the same number of
    pixels get the same weights; after each convolution and its ReLU, an image counts as
    agreeing when every activation differs by at most ``tol``.

    Returns
    -------
    (list of float, list of list of int)
        Per layer, the share of (seed, image) pairs that agree; and per layer, the rows of
        the map where some activation differs (any seed, any image).
    """
    amount, _ = padding_spec(padding)
    if amount == 0:
        raise ValueError(f"padding {padding!r} adds no pixels; compare a padded treatment")
    zeros = {1: "zeros1", 2: "zeros2"}[amount]
    x = x.to(DT)
    n_layers = len(channels)
    agree: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
    rows: list[set[int]] = [set() for _ in range(n_layers)]
    for seed in seeds:
        torch.manual_seed(seed)
        a_net = strided_conv_net(zeros, True, channels=tuple(channels)).to(DT).eval()
        b_net = strided_conv_net(padding, True, channels=tuple(channels)).to(DT).eval()
        b_net.load_state_dict(a_net.state_dict())
        a, b = x, x
        with torch.no_grad():
            for layer in range(n_layers):
                conv, relu = f"conv{layer + 1}", f"relu{layer + 1}"
                a = getattr(a_net, relu)(getattr(a_net, conv)(a))
                b = getattr(b_net, relu)(getattr(b_net, conv)(b))
                diff = (a - b).abs()                                       # (N, C, H, W)
                agree[layer].append(diff.flatten(1).amax(1) <= tol)       # (N,)
                rows[layer] |= set((diff.amax((0, 1, 3)) > tol).nonzero()[:, 0].tolist())
    shares = [float(torch.cat(a).double().mean()) for a in agree]
    return shares, [sorted(r) for r in rows]


# ---- Q1.1c iv: does zero padding create an edge on this data? ------------------------

def padding_jump_fraction(n: int = 1000, seed: int = 0, amount: int = 2) -> float:
    """Fraction of training images whose zero and replicate paddings by ``amount`` differ.

    The default is the 2 pixels of the course's network; replicate padding repeats only the
    edge pixels, so the fraction is the same for every amount.
    """
    x = red_green_boxes(n, 1, 1, seed=seed).train.inputs[0]
    pad = (amount,) * 4
    zero = F.pad(x, pad)
    repl = F.pad(x, pad, mode="replicate")
    return float((zero != repl).flatten(1).any(1).double().mean())


def _check_zero_padding_edge() -> Check:
    jump = padding_jump_fraction()
    verdict = "incorrect" if jump < 0.5 else "correct"
    return Check(verified=f"zero and replicate padding differ on {100 * jump:.1f}% of the "
                          f"training images",
                 verdict=verdict,
                 note="The background is black, so zero padding continues it: only where a "
                      "box touches the image border does it create a jump. Without biases, "
                      "ReLU(0) = 0 keeps the background zero in every layer, so at the input "
                      "the two paddings coincide for most images.")


register(Claim(id="002-Q1.1c-iv-zero-edge", source=R002, question="Q1.1c iv",
               topic="zero padding creates false edges that replicate padding avoids",
               claimed="zero padding creates an abrupt change at the image border",
               check=_check_zero_padding_edge, chapter=PADDING_CHAPTER, expected="incorrect"))


# ---- Q1.1d iii: how many parameters does Net2 add? --------------------------------------

def net2_extra_parameters(size: int, channels: Sequence[int] = (32, 32, 64, 64),
                          hidden: int = 64, padding: str = "zeros1") -> tuple[int, int]:
    """Parameters Net2 has beyond Net1, by formula and by ``numel``; they must agree."""
    side = feature_map_sizes(size, padding)[-1]
    c = channels[-1]
    formula = (linear_params(c * side * side, hidden) + linear_params(hidden, 2)
               - linear_params(c, 2))
    kw = dict(channels=tuple(channels), size=size, hidden=hidden)
    counted = (count_params(strided_conv_net(padding, False, **kw))
               - count_params(strided_conv_net(padding, True, **kw)))
    return int(formula), int(counted)


def _check_exponential() -> Check:
    sizes = (32, 64, 128, 256)
    extra = [net2_extra_parameters(n) for n in sizes]
    if any(a != b for a, b in extra):
        raise RuntimeError(f"formula and numel disagree: {extra}")
    ratios = [b[0] / a[0] for a, b in zip(extra, extra[1:])]
    polynomial = all(r < 4.5 for r in ratios)                 # doubling n: about x4
    return Check(verified="$C\\,h\\,w\\,d + d + 2d + 2 - (2C + 2)$: linear in the map "
                          "area $hw$",
                 verdict="incorrect" if polynomial else "correct",
                 note=f"Net2 adds {extra[0][0]:,} parameters at 32x32 (64 channels, 4x4 map, "
                      f"hidden width 64); doubling the image side multiplies the addition by "
                      f"{', '.join(f'{r:.2f}' for r in ratios)}: quadratic growth in the side, "
                      f"not exponential. The failure comes from the position-specific weights, "
                      f"not from their number.")


register(Claim(id="002-Q1.1d-iii-exponential", source=R002, question="Q1.1d iii",
               topic="parameters added by Net2's extra linear layer",
               claimed="the extra linear layer increases the number of parameters exponentially",
               check=_check_exponential, chapter=PADDING_CHAPTER, expected="incorrect"))


# ---- Q1.2a: is a CNN rotation invariant? -----------------------------------------------

@one_torch_thread()
def rotation_logit_change(degrees: float = 90.0, seed: int = 0, n: int = 32) -> float:
    """Largest logit change of an untrained CNN on digits when they are rotated."""
    from dlmath.models import zoo
    from dlmath.data import digits

    x = digits(size=16).test.inputs[0][:n].to(DT)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = zoo.three_block_cnn(in_channels=1, size=16, channels=(4, 8, 8), hidden=(16,),
                                  num_classes=10, dropout=0.0).to(DT).eval()
    with torch.no_grad():
        return float((net(rotate(x, degrees)) - net(x)).abs().max())


def _check_rotation() -> Check:
    change = rotation_logit_change()
    return Check(verified=f"a CNN's logits change by up to {change:.2g} under a 90 degree "
                          f"rotation",
                 verdict="correct" if change > 1e-6 else "incorrect",
                 note="Convolution commutes with translations, not with rotations: a rotated "
                      "image meets the same filters in a different orientation.")


register(Claim(id="002-Q1.2a-rotation", source=R002, question="Q1.2a",
               topic="CNNs are not invariant to rotations of the input",
               claimed="a CNN's prediction changes when the input is rotated",
               check=_check_rotation, chapter=ROTATION_CHAPTER, expected="correct"))
