"""Claims about convolution arithmetic: output sizes, paddings, receptive fields.

Each check compares the reported formula with the sizes PyTorch produces (through
:func:`dlmath.conv.torch_output_size`) or with the gradient of a real stack (through
:func:`dlmath.conv.unit_input_gradient`) on an exhaustive small grid, and derives the
verdict from the comparison.  Where the claim is a formula, the comparison is the one that
judges the readers' answers to the exercises, :func:`dlmath.check.compare_formula`, and
:func:`dlmath._book.claims.verdict_of` turns its verdicts into the claim's.  Chapter:
:ref:`ch-conv-arithmetic`.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import lru_cache

from dlmath import conv
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_formula

R000 = "000_d0450d199b2953aa"
R004 = "004_46edfb94b1a3c9c4"
CHAPTER = "ch-conv-arithmetic"

# the grid every size claim is checked on: n, k, s, p
GRID = list(itertools.product(range(1, 13), range(1, 6), range(1, 5), range(0, 4)))


def output_size_without_floor() -> dict[str, int]:
    """Compare ``(n - k + 2p)/s + 1`` (no floor) with torch's Conv2d on :data:`GRID`.

    Returns the number of configurations torch accepts (``checked``), how many of them have
    an exact division (``exact``), and on how many the formula gives torch's size, with an
    exact division (``agree_exact``) and without one (``agree_inexact``).
    """
    out = dict(checked=0, exact=0, agree_exact=0, agree_inexact=0)
    for n, k, s, p in GRID:
        size = conv.torch_output_size("conv2d", n, k, s, p)
        if size is None:
            continue
        claimed = Fraction(n - k + 2 * p, s) + 1
        exact = (n - k + 2 * p) % s == 0
        out["checked"] += 1
        out["exact"] += exact
        if claimed == size:
            out["agree_exact" if exact else "agree_inexact"] += 1
    return out


def _size_or_none(formula, *args) -> int | None:
    """The size dlmath computes, or None where it raises ValueError."""
    try:
        return formula(*args)
    except ValueError:
        return None


#: layer: (the options torch is called with, dlmath's formula for one configuration)
_SIZE_CASES = {
    "conv1d": ([{}], lambda n, k, s, p, d, o: conv.conv_output_size(n, k, s, p, d)),
    "conv2d": ([{}], lambda n, k, s, p, d, o: conv.conv_output_size(n, k, s, p, d)),
    "maxpool2d": ([dict(ceil_mode=c) for c in (False, True)],
                  lambda n, k, s, p, d, o: conv.pool_output_size(n, k, s, p, d, o["ceil_mode"])),
    "avgpool2d": ([dict(ceil_mode=c, count_include_pad=i) for c in (False, True)
                   for i in (False, True)],
                  lambda n, k, s, p, d, o: conv.pool_output_size(n, k, s, p, 1, o["ceil_mode"])),
    "convtranspose2d": ([dict(output_padding=r) for r in range(3)],
                        lambda n, k, s, p, d, o: conv.conv_transpose_output_size(
                            n, k, s, p, o["output_padding"], d)),
}


def sizes_against_torch(n: int = 10, k: int = 5, s: int = 4, p: int = 3,
                        d: int = 3) -> list[dict]:
    """dlmath's output sizes against the sizes torch produces, on an exhaustive grid.

    Every input size ``1..n``, kernel ``1..k``, stride ``1..s``, padding ``0..p`` and
    dilation ``1..d`` (average pooling has no dilation), for convolution, max and average
    pooling (both rounding modes) and the transposed convolution (every ``output_padding``
    below 3).  Where torch rejects a configuration, or returns an empty output, dlmath must
    raise ``ValueError``.

    Returns
    -------
    list of dict
        One per layer: ``layer``, ``checked``, ``rejected`` (by torch), ``agree`` (dlmath's
        size, or its rejection, equals torch's) and ``empty`` (torch returned a size of 0).
    """
    grid = list(itertools.product(range(1, n + 1), range(1, k + 1), range(1, s + 1),
                                  range(p + 1), range(1, d + 1)))
    out = []
    for layer, (options, formula) in _SIZE_CASES.items():
        row = {"layer": layer, "checked": 0, "rejected": 0, "agree": 0, "empty": 0}
        for (nq, kq, sq, pq, dq), opt in itertools.product(grid, options):
            if layer == "avgpool2d" and dq > 1:
                continue
            theirs = conv.torch_output_size(layer, nq, kq, sq, pq, dq, **opt)
            if theirs == 0:               # an empty output, which dlmath treats as an error
                row["empty"] += 1
                theirs = None
            row["checked"] += 1
            row["rejected"] += theirs is None
            row["agree"] += _size_or_none(formula, nq, kq, sq, pq, dq, opt) == theirs
        out.append(row)
    return out


def receptive_fields_against_autograd(k: int = 4, s: int = 3, p: int = 2,
                                      d: int = 2) -> dict[str, int]:
    """The span of :func:`dlmath.conv.receptive_field` against the input gradient of a unit.

    Every two-layer stack of kernels ``1..k``, strides ``1..s``, paddings ``0..p`` and
    dilations ``1..d``: the extent of the non-zero gradient (random positive weights) of the
    second unit whose field lies inside the input must be the theorem's span.  Returns
    ``checked``, ``agree``.
    """
    layer_grid = list(itertools.product(range(1, k + 1), range(1, s + 1), range(p + 1),
                                        range(1, d + 1)))
    out = {"checked": 0, "agree": 0}
    for first, second in itertools.product(layer_grid, layer_grid):
        rf = conv.receptive_field([first, second])
        unit = -(-rf.padding // rf.stride) + 1
        start, end = rf.input_span(unit)
        g = conv.unit_input_gradient([first, second], size=end + 2, unit=unit, weights="random")
        support = (g != 0).nonzero().flatten()
        out["checked"] += 1
        out["agree"] += (int(support.min()), int(support.max())) == (start, end)
    return out


def unread_against_autograd(n: int = 15, k: int = 5, s: int = 4) -> dict[str, int]:
    """:func:`dlmath.conv.trailing_unread_inputs` against the zero gradient after the last window.

    Every input ``1..n``, kernel ``1..k``, stride ``1..s`` and padding below the kernel that
    torch accepts; the kernel is all ones, so a position has a non-zero gradient exactly when
    a window reads it.  Returns ``checked``, ``agree``.
    """
    import torch
    import torch.nn.functional as F

    out = {"checked": 0, "agree": 0}
    for nq, kq, sq in itertools.product(range(1, n + 1), range(1, k + 1), range(1, s + 1)):
        for pq in range(kq):
            if nq + 2 * pq < kq:
                continue
            x = torch.zeros(1, 1, nq, dtype=torch.float64, requires_grad=True)
            F.conv1d(x, torch.ones(1, 1, kq, dtype=torch.float64), None, sq, pq).sum().backward()
            last_read = int((x.grad[0, 0] != 0).nonzero().max())
            out["checked"] += 1
            out["agree"] += conv.trailing_unread_inputs(nq, kq, sq, pq) == nq - 1 - last_read
    return out


def paddings_against_torch(k: int = 7, d: int = 3, n: int = 30, s: int = 4) -> dict[str, int]:
    """Same and halving padding against the sizes torch's Conv1d produces.

    Kernels ``1..k``, dilations ``1..d``, inputs ``1..n``: the same padding (odd spans)
    must keep the size; the halving padding with stride 2 must give ``n/2`` for even
    ``n``, ``(n+1)/2`` for odd ``n`` and odd span, ``(n-1)/2`` for odd ``n`` and even span,
    and with strides ``3..s`` it must give ``n/s`` for every multiple of the stride and
    ``ceil(n/s)`` for every ``n`` when the span is odd (the halving theorem, written
    independently of :func:`dlmath.conv.halving_padding`).  Returns ``checked``, ``agree``.
    """
    out = {"checked": 0, "agree": 0}
    for kq, dq, nq in itertools.product(range(1, k + 1), range(1, d + 1), range(1, n + 1)):
        span = dq * (kq - 1) + 1
        if span % 2:
            out["checked"] += 1
            out["agree"] += conv.torch_output_size("conv1d", nq, kq, 1,
                                                   conv.same_padding(kq, dq), dq) == nq
        for sq in range(2, max(s, 2) + 1):
            if nq % sq == 0:
                expected = nq // sq
            elif span % 2:
                expected = -(-nq // sq)
            elif sq == 2:
                expected = (nq - 1) // 2 or None          # n = 1: no output, torch refuses
            else:
                continue
            size = conv.torch_output_size("conv1d", nq, kq, sq,
                                          conv.halving_padding(kq, sq, dq), dq)
            out["checked"] += 1
            out["agree"] += size == expected
    return out


@lru_cache(maxsize=None)
def _conv2d_size(n: int, k: int, s: int = 1, p: int = 0) -> int | None:
    return conv.torch_output_size("conv2d", n, k, s, p)


def _first_failure(verdict) -> str:
    """Where the checker found a claimed formula first wrong, for a note."""
    case = ", ".join(f"{k}={v}" for k, v in verdict.case.items())
    return f"e.g. at {case} it gives {verdict.got}, torch {verdict.expected}"


def _check_size_without_floor() -> Check:
    c = output_size_without_floor()
    if c["agree_exact"] != c["exact"] or c["agree_inexact"]:   # what the note below says
        raise RuntimeError(f"the unfloored formula does not split as the note says: {c}")
    claimed, grid = "(n - k + 2*p)/s + 1", {"n": range(1, 13), "k": range(1, 6),
                                             "s": range(1, 5), "p": range(0, 4)}
    full = compare_formula(claimed, _conv2d_size, grid)
    exact = compare_formula(claimed, _conv2d_size, grid,
                            valid=lambda n, k, s, p: (n - k + 2 * p) % s == 0)
    return Check(
        verified=r"$n' = \lfloor (n + 2p - k)/s \rfloor + 1$",
        verdict=verdict_of(full, where_stated=exact),
        note=(f"Of {c['checked']} configurations torch accepts, the formula gives torch's size "
              f"in the {c['agree_exact']} where s divides n + 2p - k and a fraction in the other "
              f"{c['checked'] - c['exact']} ({_first_failure(full)}); there torch takes the "
              f"floor and the last rows or columns of the input are never read."),
    )


def _check_valid_size() -> Check:
    """(H - M + 1) x (W - N + 1) for stride 1 and no padding, against Conv2d, per axis."""
    full = compare_formula("n - k + 1", _conv2d_size, {"n": range(1, 9), "k": range(1, 5)})
    return Check(verified=r"$(H - M + 1) \times (W - N + 1)$", verdict=verdict_of(full),
                 note="Stride 1 and no padding: no floor is needed; each side agrees with torch "
                      "for every image side up to 8 and kernel side up to 4.")


def _check_two_layer_receptive_field() -> Check:
    """r_2 = k1 + (k2 - 1) s1 against the gradient support of a real two-layer stack."""
    def measured(k1: int, k2: int, s1: int) -> int:
        layers = [(k1, s1, 0), (k2, 1, 0)]
        g = conv.unit_input_gradient(layers, size=40, unit=2)
        support = (g != 0).nonzero().flatten()
        width = int(support.max() - support.min()) + 1
        if width != conv.receptive_field(layers).size:
            raise RuntimeError(f"receptive_field disagrees with the gradient for {layers}")
        return width

    grid = {"k1": range(1, 6), "k2": range(1, 6), "s1": range(1, 4)}
    full = compare_formula("k1 + (k2 - 1)*s1", measured, grid)
    return Check(verified=r"$r_2 = k_1 + (k_2 - 1)s_1$; in general "
                          r"$r_L = 1 + \sum_l (k_l - 1)\prod_{i<l} s_i$",
                 verdict=verdict_of(full),
                 note="Agrees with the gradient of a two-layer stack for every k1, k2 <= 5 and "
                      "s1 <= 3. The report's 'sum with previous layers' needs each layer's "
                      "k - 1 multiplied by the product of the earlier strides.")


def same_padding_general() -> dict[str, int]:
    """The reported same padding ``p = (ns - n + k - s)/2`` checked against Conv2d.

    Over n in 1..12, k in 1..5, s in 1..4: how often the formula is a non-negative integer
    (``integer``) and then keeps the size in torch (``keeps``), and how often it is not an
    integer although some integer padding keeps the size (``missed``, found by search).
    """
    out = dict(checked=0, integer=0, keeps=0, missed=0)
    for n, k, s in itertools.product(range(1, 13), range(1, 6), range(1, 5)):
        claimed = Fraction(n * s - n + k - s, 2)
        out["checked"] += 1
        if claimed.denominator == 1 and claimed >= 0:
            out["integer"] += 1
            out["keeps"] += conv.torch_output_size("conv2d", n, k, s, int(claimed)) == n
        elif any(conv.torch_output_size("conv2d", n, k, s, p) == n for p in range(n * s + k)):
            out["missed"] += 1
    return out


def _check_same_padding_general() -> Check:
    c = same_padding_general()
    if c["keeps"] < c["integer"]:
        verdict = "incorrect"
    elif c["missed"] or c["integer"] < c["checked"]:
        verdict = "incomplete"
    else:
        verdict = "correct"
    return Check(
        verified=r"$s = 1$: $p = (k-1)/2$, $k$ odd; $s > 1$: no padding independent of $n$",
        verdict=verdict,
        note=(f"Derived without the floor: where it is an integer it keeps the size "
              f"({c['keeps']} of {c['integer']} cases), but it grows with the input size for "
              f"s > 1, and in {c['missed']} cases it is a fraction although an integer padding "
              f"exists."),
    )


def _check_same_padding_stride1() -> Check:
    checked = keeps = even_without_answer = 0
    for k, n in itertools.product(range(1, 10), range(10, 20)):
        claimed = Fraction(k - 1, 2)
        checked += 1
        if claimed.denominator == 1:
            keeps += conv.torch_output_size("conv1d", n, k, 1, int(claimed)) == n
        else:
            even_without_answer += all(conv.torch_output_size("conv1d", n, k, 1, p) != n
                                       for p in range(k + 1))
    if keeps + even_without_answer < checked:
        verdict = "incorrect"
    elif even_without_answer:
        verdict = "incomplete"
    else:
        verdict = "correct"
    return Check(verified=r"$p = (k-1)/2$ for odd $k$; even $k$ needs $(k/2 - 1, k/2)$",
                 verdict=verdict,
                 note=f"Right for odd kernels ({keeps} cases); for even kernels no symmetric "
                      f"padding keeps the size ({even_without_answer} cases), which the report "
                      f"does not say.")


def halving_padding_general() -> dict[str, int]:
    """The reported halving padding ``p = (ns/2 - n + k - s)/2`` on even n, against Conv2d.

    Over even n in 2..24, k in 1..5, s in 1..4: how often the formula is a non-negative
    integer (``integer``) and then halves in torch (``halves``), how often it is negative,
    and how often it is unusable (negative or a fraction) although some integer padding
    halves the size (``missed``, found by search).
    """
    out = dict(checked=0, integer=0, halves=0, negative=0, missed=0)
    for n, k, s in itertools.product(range(2, 25, 2), range(1, 6), range(1, 5)):
        claimed = Fraction(n * s, 2) - n + k - s
        claimed /= 2
        out["checked"] += 1
        if claimed.denominator == 1 and claimed >= 0:
            out["integer"] += 1
            out["halves"] += conv.torch_output_size("conv2d", n, k, s, int(claimed)) == n // 2
            continue
        out["negative"] += claimed < 0
        if any(conv.torch_output_size("conv2d", n, k, s, p) == n // 2 for p in range(n * s + k)):
            out["missed"] += 1
    return out


def _check_halving_padding_general() -> Check:
    c = halving_padding_general()
    if c["halves"] < c["integer"]:
        verdict = "incorrect"
    elif c["missed"] or c["negative"]:
        verdict = "incomplete"
    else:
        verdict = "correct"
    return Check(
        verified=r"stride 2 and $p = \lfloor (k-1)/2 \rfloor$, for every even $n$",
        verdict=verdict,
        note=(f"Derived without the floor: where it is a non-negative integer it halves "
              f"({c['halves']} of {c['integer']} cases), but it depends on n unless s = 2, is "
              f"negative in {c['negative']} cases, and gives no usable padding in {c['missed']} "
              f"cases where an integer padding halves (e.g. odd k with s = 2, where "
              f"p = (k-1)/2 works)."),
    )


def _check_k2_s2() -> Check:
    def size(n: int) -> int:
        out = conv.torch_output_size("conv2d", n, 2, 2, 0)
        if out != conv.torch_output_size("maxpool2d", n, 2, 2, 0):
            raise RuntimeError(f"conv and max pooling disagree on n={n}")
        return out

    checked = len(range(2, 65, 2))
    full = compare_formula("n/2", size, {"n": range(2, 66)})
    even = compare_formula("n/2", size, {"n": range(2, 65, 2)})
    odd = conv.torch_output_size("conv2d", 7, 2, 2, 0)
    # the report does not restrict the input to even sizes: by the rubric, incomplete
    verdict = verdict_of(full, where_stated=even)
    return Check(verified=r"$n' = n/2$ for even $n$, $\lfloor n/2 \rfloor$ for odd $n$",
                 verdict=verdict,
                 note=f"Halves all {checked} even sizes checked; an odd size loses its last "
                      f"column (7 gives {odd}), and the report does not say that its sizes "
                      f"must be even.")


register(Claim(
    id="000-Q1a-output-size-formula", source=R000, question="Q1a",
    topic="output width and height of a convolution with padding and stride",
    claimed=r"$(n - k + 2p)/s + 1$ (no floor)", check=_check_size_without_floor,
    chapter=CHAPTER, expected="incomplete"))

register(Claim(
    id="000-Q1a-valid-output-size", source=R000, question="Q1a",
    topic="size of z = conv(W, x) for an H x W image and an M x N kernel (stride 1, no padding)",
    claimed=r"$(H - M + 1) \times (W - N + 1)$", check=_check_valid_size,
    chapter=CHAPTER, expected="correct"))

register(Claim(
    id="004-I-Q1-output-size-formula", source=R004, question="I-Q1",
    topic="output size of a convolutional layer with kernel k, padding p, stride s",
    claimed=r"$x' = (x - k + 2p)/s + 1$ (no floor)", check=_check_size_without_floor,
    chapter=CHAPTER, expected="incomplete"))

register(Claim(
    id="004-I-Q7-receptive-field", source=R004, question="I-Q7",
    topic="receptive field of the first two layers of a CNN",
    claimed=r"$r_1 = k_1$, $r_2 = k_1 + (k_2 - 1)s_1$",
    check=_check_two_layer_receptive_field, chapter=CHAPTER, expected="correct"))

register(Claim(
    id="004-II-Q8-same-padding", source=R004, question="II-Q8",
    topic="padding that keeps the input size, for any stride",
    claimed=r"$p = (xs - x + k - s)/2$", check=_check_same_padding_general,
    chapter=CHAPTER, expected="incomplete"))

register(Claim(
    id="004-II-Q8-same-padding-stride1", source=R004, question="II-Q8",
    topic="padding that keeps the input size with stride 1",
    claimed=r"$p = (k-1)/2$", check=_check_same_padding_stride1,
    chapter=CHAPTER, expected="incomplete"))

register(Claim(
    id="004-II-Q9-halving-padding", source=R004, question="II-Q9",
    topic="padding that halves the input size",
    claimed=r"$p = (xs/2 - x + k - s)/2$", check=_check_halving_padding_general,
    chapter=CHAPTER, expected="incomplete"))

register(Claim(
    id="004-II-Q9-k2-s2", source=R004, question="II-Q9",
    topic="a 2-wide window with stride 2 and no padding halves the size",
    claimed=r"$k = s = 2$, $p = 0$", check=_check_k2_s2,
    chapter=CHAPTER, expected="incomplete"))
