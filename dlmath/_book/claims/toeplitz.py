"""Claims about the convolution matrix (report 000, question 1b).

Report 000 writes the matrix :math:`M` of a one-channel convolution (stride 1, no padding,
an :math:`H \\times W` input, an :math:`A \\times B` kernel, column-major ``vec``) entry by
entry with 1-based indices.  In this module's notation, with
:math:`H' = H - A + 1` and :math:`\\lceil\\cdot\\rceil` the ceiling, the claim reads:

    :math:`M_{ij} = w_{a,b}` when :math:`1 \\le a \\le A` and :math:`1 \\le b \\le B`, where
    :math:`b = \\lceil j/H \\rceil - \\lceil i/H' \\rceil + 1` and
    :math:`a = j - (b-1)H - (i-1) - (\\lceil i/H' \\rceil - 1)(A-1)`; otherwise 0.

The check evaluates this formula for every entry of every case up to a size bound and
compares it with an oracle that does not use dlmath's construction: the columns of
:math:`M` are the responses of ``torch.nn.functional.conv2d`` to the unit images
(:math:`M e_j = \\operatorname{vec}(\\operatorname{conv}(e_j))`), with a kernel whose
weights are distinct, so each entry names its weight.  ``dlmath.toeplitz.conv_matrix`` is
compared with the same oracle.  The claimed matrix is compared with the oracle by
:func:`dlmath.check.compare_tensor` (exactly), and :func:`dlmath._book.claims.verdict_of`
turns its verdict into the claim's.  Chapter: :ref:`ch-conv-matrix`.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_tensor
from dlmath.toeplitz import conv_matrix, vec

__all__ = ["claimed_entry_000_q1b", "compare_claimed_entry_formula"]


def claimed_entry_000_q1b(i: torch.Tensor, j: torch.Tensor, height: int, kernel_height: int,
                          kernel_width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The report's entry formula, 1-based: ``(a, b, nonzero)`` for rows ``i``, columns ``j``.

    Examples
    --------
    >>> a, b, nz = claimed_entry_000_q1b(torch.tensor(1), torch.tensor(6), 4, 3, 3)
    >>> int(a), int(b), bool(nz)                    # M[1, 6] = w[2, 2] (1-based)
    (2, 2, True)
    """
    h, kh, kw = height, kernel_height, kernel_width
    ho = h - kh + 1
    ceil_i = -((-i) // ho)  # ceil(i / H')
    ceil_j = -((-j) // h)  # ceil(j / H)
    b = ceil_j - ceil_i + 1
    a = j - (b - 1) * h - (i - 1) - (ceil_i - 1) * (kh - 1)
    return a, b, (a > 0) & (a <= kh) & (b > 0) & (b <= kw)


def _oracle_labels(h: int, w: int, kernel: torch.Tensor) -> torch.Tensor:
    """M by impulse responses of conv2d, column-major vec (entries are kernel labels)."""
    eye = torch.eye(h * w, dtype=torch.float64)  # column j = vec_col of the unit image e_j
    images = eye.T.reshape(h * w, 1, w, h).transpose(-1, -2)  # (HW, 1, H, W)
    responses = F.conv2d(images, kernel[None, None])  # (HW, 1, H', W')
    return vec(responses, "col").T  # (H'W', HW): column j is vec(conv(e_j))


@lru_cache(maxsize=4)
def compare_claimed_entry_formula(max_size: int = 6) -> dict:
    """Compare the report's formula with conv2d, entry by entry, for all small cases.

    Every :math:`H, W \\le` ``max_size`` and every kernel :math:`A \\le H, B \\le W`.

    Returns
    -------
    dict
        ``cases``, ``entries`` (compared), ``nonzero`` (oracle entries holding a weight),
        ``mismatches`` (entries where the report's formula differs from the oracle),
        ``dlmath_mismatches`` (the same for ``conv_matrix``), ``counterexample`` (the
        smallest failing case as a dict, or None), ``verdict`` (the first wrong
        :func:`dlmath.check.compare_tensor` verdict of the claimed matrix against conv2d,
        else the last one).

    Examples
    --------
    >>> r = compare_claimed_entry_formula(3)
    >>> r["cases"], r["mismatches"], r["dlmath_mismatches"]
    (36, 0, 0)
    """
    cases = entries = nonzero = mismatches = dlmath_mismatches = 0
    counterexample = verdict = None
    for h in range(1, max_size + 1):
        for w in range(1, max_size + 1):
            for kh in range(1, h + 1):
                for kw in range(1, w + 1):
                    # distinct weights 1..A*B, so every non-zero entry names its weight
                    kernel = torch.arange(1, kh * kw + 1, dtype=torch.float64).reshape(kh, kw)
                    oracle = _oracle_labels(h, w, kernel)
                    i = torch.arange(1, oracle.shape[0] + 1)[:, None]
                    j = torch.arange(1, oracle.shape[1] + 1)[None, :]
                    a, b, nz = claimed_entry_000_q1b(i, j, h, kh, kw)
                    claimed = torch.where(nz, kernel[(a - 1).clamp(0, kh - 1),
                                                     (b - 1).clamp(0, kw - 1)], 0.0)
                    ours = conv_matrix(kernel[None, None], (1, h, w), order="col")
                    bad = (claimed != oracle).sum().item()
                    if verdict is None or verdict.ok:
                        verdict = compare_tensor(claimed, oracle, rtol=0.0, atol=0.0)
                    cases += 1
                    entries += oracle.numel()
                    nonzero += (oracle != 0).sum().item()
                    mismatches += bad
                    dlmath_mismatches += (ours != oracle).sum().item()
                    if bad and counterexample is None:
                        ii, jj = map(int, torch.nonzero(claimed != oracle)[0] + 1)
                        counterexample = {"H": h, "W": w, "A": kh, "B": kw, "i": ii, "j": jj,
                                          "claimed": claimed[ii - 1, jj - 1].item(),
                                          "true": oracle[ii - 1, jj - 1].item()}
    return {"cases": cases, "entries": entries, "nonzero": nonzero, "mismatches": mismatches,
            "dlmath_mismatches": dlmath_mismatches, "counterexample": counterexample,
            "verdict": verdict}


def _check_entry_formula() -> Check:
    r = compare_claimed_entry_formula()
    if r["dlmath_mismatches"]:
        raise AssertionError(f"conv_matrix disagrees with conv2d: {r}")
    verified = (r"$M_{ij} = w_{a,b}$ with $a = (j \bmod H) - (i \bmod H')$, "
                r"$b = \lfloor j/H \rfloor - \lfloor i/H' \rfloor$ (0-based), when "
                r"$0 \le a < A$, $0 \le b < B$")
    if verdict_of(r["verdict"]) == "correct":
        return Check(verified=verified, verdict=verdict_of(r["verdict"]), note=(
            f"The 1-based formula agrees with conv2d on all {r['entries']} entries of "
            f"{r['cases']} cases (H, W up to 6). Its ceilings undo the column-major "
            "vec; the term (ceil(i/H')-1)(A-1) is the shift H - H' per output column. It "
            "holds for one channel, stride 1 and no padding, with the kernel called A x B "
            "(the same report calls it M x N elsewhere)."))
    ce = r["counterexample"]
    return Check(verified=verified, verdict=verdict_of(r["verdict"]), note=(
        f"{r['mismatches']} of {r['entries']} entries differ; the smallest case is "
        f"H={ce['H']}, W={ce['W']}, kernel {ce['A']}x{ce['B']}: M[{ce['i']},{ce['j']}] "
        f"is {ce['true']}, the formula gives {ce['claimed']}."))


register(Claim(
    id="000-Q1b-conv-matrix-entry",
    source="000_d0450d199b2953aa",
    question="Q1b",
    topic="closed-form entry of the matrix of a one-channel convolution (column-major vec, "
          "stride 1, no padding)",
    claimed=(r"$M_{ij} = W_{a,b}$ for $0 < a \le A$, $0 < b \le B$ with "
             r"$b = \lceil j/H \rceil - \lceil i/H' \rceil + 1$, "
             r"$a = j - (b-1)H - (i-1) - (\lceil i/H' \rceil - 1)(A-1)$ (1-based)"),
    check=_check_entry_formula,
    chapter="ch-conv-matrix",
    expected="correct",
))
