"""Claims about the softmax, its Jacobian and cross-entropy on logits (chapter ch-softmax).

Each check evaluates the claimed formula numerically on random instances and compares it
with PyTorch autograd (float64) and with :mod:`dlmath.softmax`.  The claimed values are
compared with autograd's by the code that judges the readers' answers,
:func:`dlmath.check.compare_tensor` and :func:`dlmath.check.compare_number`, whose first
failing verdict :func:`dlmath._book.claims.verdict_of` turns into the claim's.
"""

from __future__ import annotations

import sympy as sp
import torch
import torch.nn.functional as F

from dlmath import softmax as sm
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_number, compare_tensor

R001 = "001_ce676efc9e2b3789"
R004 = "004_46edfb94b1a3c9c4"


def _random_logits(cases: int = 50, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, 9, (cases,), generator=gen).tolist()
    return [3.0 * torch.randn(n, generator=gen, dtype=torch.float64) for n in sizes]


def _autograd_jacobian(z: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(lambda v: torch.softmax(v, -1), z)


def _first_wrong(verdicts):
    """The first verdict that is not right, else the last one (all right)."""
    verdicts = list(verdicts)
    return next((v for v in verdicts if not v.ok), verdicts[-1])


def _check_jacobian_entries() -> Check:
    worst, verdicts = 0.0, []
    for z in _random_logits():
        f = torch.softmax(z, -1)
        n = f.numel()
        # the claim: f_i (1 - f_i) on the diagonal, -f_i f_j off it
        claimed = torch.tensor([[float(f[i] * (1 - f[i])) if i == j else float(-f[i] * f[j])
                                 for j in range(n)] for i in range(n)], dtype=torch.float64)
        oracle = _autograd_jacobian(z)
        verdicts.append(compare_tensor(claimed, oracle, rtol=0.0, atol=1e-12))
        # dlmath's Jacobian must agree too, or the check itself is broken
        verdicts.append(compare_tensor(sm.softmax_jacobian(z), oracle, rtol=0.0, atol=1e-12))
        worst = max(worst, float((claimed - oracle).abs().max()),
                    float((sm.softmax_jacobian(z) - oracle).abs().max()))
    # and symbolically: the derived Jacobian minus the claimed entries is zero
    J, p = sm.softmax_jacobian_sym(3)
    claimed_sym = sp.Matrix(3, 3, lambda i, j: p[i] * (1 - p[i]) if i == j else -p[i] * p[j])
    exact = (J - claimed_sym).applyfunc(sp.expand).is_zero_matrix
    verdict = verdict_of(_first_wrong(verdicts)) if exact else "incorrect"
    return Check(verified=r"$J_{ij} = p_i(\delta_{ij} - p_j)$, i.e. $J = \operatorname{diag}(p) - pp^\top$",
                 verdict=verdict,
                 note=f"Agrees with autograd on 50 random logit vectors (largest difference {worst:.1e}) "
                      "and with the Jacobian derived by sympy.diff.")


def _check_jacobian_psd() -> Check:
    gen = torch.Generator().manual_seed(1)
    worst_identity, smallest_eig, smallest_form = 0.0, float("inf"), float("inf")
    for z in _random_logits(seed=1):
        f = torch.softmax(z, -1)
        J = _autograd_jacobian(z)
        for _ in range(5):
            v = torch.randn(z.numel(), generator=gen, dtype=torch.float64)
            form = float(v @ J @ v)
            # the claimed identity: v^T M v = Σ_i f_i v_i^2 - (Σ_i f_i v_i)^2
            claimed = float((f * v ** 2).sum() - (f * v).sum() ** 2)
            worst_identity = max(worst_identity, abs(form - claimed))
            smallest_form = min(smallest_form, form)
        smallest_eig = min(smallest_eig, float(torch.linalg.eigvalsh(J)[0]))
    J, p = sm.softmax_jacobian_sym(4)
    exact = sm.is_psd(J.subs(dict(zip(p, [sp.Rational(k, 10) for k in (1, 2, 3, 4)]))))
    ok = worst_identity < 1e-12 and smallest_eig > -1e-15 and smallest_form > -1e-15 and exact
    return Check(verified=r"$v^\top J v = \mathrm{Var}_{i\sim p}(v_i) \ge 0$: PSD, of rank $n-1$, "
                          r"null space spanned by $\mathbf 1$",
                 verdict="correct" if ok else "incorrect",
                 note="The identity and the Jensen step hold (checked on 250 random pairs (z, v); "
                      f"smallest eigenvalue seen {smallest_eig:.1e}). The report does not say that J is "
                      "singular: J 1 = 0, so J is never positive definite.")


def _check_ce_as_logsumexp() -> Check:
    gen = torch.Generator().manual_seed(2)
    literal_ok, intended_worst, intended = True, 0.0, []
    for _ in range(20):
        z = 2.0 * torch.randn(5, generator=gen, dtype=torch.float64)
        c = int(torch.randint(5, (1,), generator=gen))
        y = F.one_hot(torch.tensor(c), 5).double()
        oracle = float(F.cross_entropy(z[None], torch.tensor([c])))
        lse = float(torch.logsumexp(z, 0))
        # as written, -Σ_i y_i z_j + log Σ_j e^{z_j}: the index j of the first term is free
        for j in range(5):
            literal = float(-(y * z[j]).sum()) + lse
            literal_ok &= compare_number(literal, oracle, atol=1e-12).ok
        # read with z_i: -Σ_i y_i z_i + logsumexp(z); and dlmath's cross-entropy
        ours = float(sm.cross_entropy(z, torch.tensor(c)))
        read = float(-(y * z).sum()) + lse
        intended += [compare_number(ours, oracle, atol=1e-12), compare_number(read, oracle, atol=1e-12)]
        intended_worst = max(intended_worst, abs(ours - oracle), abs(read - oracle))
    # An index that no sum binds is a notation slip whose only well-formed reading is j = i; by
    # the rubric (claims.VERDICTS) the claim is judged at that reading and the note names the slip.
    verdict = "correct" if literal_ok else verdict_of(_first_wrong(intended))
    return Check(verified=r"$\ell = \operatorname{logsumexp}(\tilde y) - \sum_i y_i \tilde y_i$",
                 verdict=verdict,
                 note="Index typo: the first sum writes y_i times the logit with index j, which no sum binds "
                      "there (taken literally it equals the loss only when j is the true class). Read with "
                      f"the index i, the only well-formed reading, it is right (difference {intended_worst:.1e} "
                      "from torch's cross-entropy).")


def _check_ce_grad_logits() -> Check:
    gen = torch.Generator().manual_seed(3)
    claimed_err, verified_err, verdicts = 0.0, 0.0, []
    for _ in range(20):
        z = (2.0 * torch.randn(4, generator=gen, dtype=torch.float64)).requires_grad_()
        c = torch.randint(4, (1,), generator=gen)
        (g,) = torch.autograd.grad(F.cross_entropy(z[None], c), z)
        y = F.one_hot(c[0], 4).double()
        claimed = z.detach() - y                                   # the claim: logits minus target
        verdicts.append(compare_tensor(claimed, g, rtol=0.0, atol=1e-10))
        claimed_err = max(claimed_err, float((claimed - g).abs().max()))
        verified_err = max(verified_err, float((sm.cross_entropy_grad(z.detach(), c[0]) - g).abs().max()))
    first = _first_wrong(verdicts)
    return Check(verified=r"$\partial\ell/\partial\tilde y_i = \hat y_i - y_i$ with $\hat y = \operatorname{softmax}(\tilde y)$",
                 verdict=verdict_of(first),
                 note="The middle step e^{y~_i}/Σ_j e^{y~_j} is right, but it is then replaced by the logit "
                      f"y~_i instead of the probability ŷ_i (largest difference from autograd {claimed_err:.2f}; "
                      f"p - y differs by {verified_err:.0e}).")


def _check_mse_convex() -> Check:
    """Convex in the output (Hessian 2I), but not in the logits through a softmax."""
    hessian = torch.autograd.functional.hessian
    in_output, in_logits, ce_psd = True, float("inf"), float("inf")
    for z in _random_logits(cases=40, seed=4):
        n = z.numel()
        y = F.one_hot(torch.argmin(z), n).double()      # the true class gets the lowest score
        p = torch.softmax(z, -1)
        h_out = hessian(lambda q, y=y: ((q - y) ** 2).sum(), p)
        in_output &= compare_tensor(h_out, 2 * torch.eye(n, dtype=torch.float64), rtol=0.0,
                                    atol=1e-12).ok
        h_mse = hessian(lambda v, y=y: ((torch.softmax(v, -1) - y) ** 2).sum(), z)
        h_ce = hessian(lambda v, y=y: -(y * torch.log_softmax(v, -1)).sum(), z)
        in_logits = min(in_logits, float(torch.linalg.eigvalsh(h_mse)[0]))
        ce_psd = min(ce_psd, float(torch.linalg.eigvalsh(h_ce)[0]))
    if ce_psd < -1e-12:                      # the chapter's theorem: the CE Hessian is J, PSD
        raise RuntimeError(f"cross-entropy Hessian with eigenvalue {ce_psd:.1e}: check is broken")
    convex_in_logits = in_logits > -1e-12
    verdict = ("correct" if in_output and convex_in_logits else
               "incomplete" if in_output else "incorrect")
    return Check(verified=r"convex in $\hat y$ (Hessian $2I$); not convex in the logits $z$ when "
                          r"$\hat y = \operatorname{softmax}(z)$, unlike the cross-entropy",
                 verdict=verdict,
                 note="Autograd Hessians on 40 random logit vectors whose true class has the lowest "
                      f"score: smallest eigenvalue {in_logits:.2f} for the squared error of the "
                      f"softmax, {ce_psd:.0e} (zero up to rounding) for the cross-entropy. The "
                      "report does not say in which variable the loss is convex.")


register(Claim(id="001-Q1.1-softmax-jacobian", source=R001, question="Q1.1",
               topic="Jacobian of the softmax, entry by entry",
               claimed=r"$\partial f_i/\partial z_j = f_i(1-f_i)$ if $i=j$, $-f_if_j$ otherwise",
               check=_check_jacobian_entries, chapter="ch-softmax", expected="correct"))
register(Claim(id="001-Q1.1-softmax-jacobian-psd", source=R001, question="Q1.1",
               topic="the softmax Jacobian is positive semidefinite (variance form and Jensen)",
               claimed=r"$v^\top(\operatorname{diag} f - ff^\top)v = \sum_i f_i v_i^2 - (\sum_i f_i v_i)^2 \ge 0$",
               check=_check_jacobian_psd, chapter="ch-softmax", expected="correct"))
register(Claim(id="004-I-Q14-ce-logsumexp", source=R004, question="MLP I-Q14",
               topic="cross-entropy of a softmax written with log-sum-exp",
               claimed=r"$\ell = -\sum_i y_i \tilde y_j + \log\sum_j e^{\tilde y_j}$",
               check=_check_ce_as_logsumexp, chapter="ch-softmax", expected="correct"))
register(Claim(id="004-I-Q15-ce-grad-logits", source=R004, question="MLP I-Q15",
               topic="gradient of the cross-entropy with respect to the logits",
               claimed=r"$\partial\ell/\partial\tilde y_i = \tilde y_i - y_i$",
               check=_check_ce_grad_logits, chapter="ch-softmax", expected="incorrect"))
register(Claim(id="004-I-Q9-mse-convex", source=R004, question="MLP I-Q9",
               topic="convexity of the squared error of a softmax classifier",
               claimed="the MSE is convex", check=_check_mse_convex, chapter="ch-softmax",
               expected="incomplete"))
