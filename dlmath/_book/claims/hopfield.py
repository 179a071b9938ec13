"""Claims about modern Hopfield networks and attention (reports 001 question I, 000 question 1.2).

Each check recomputes the claim with :mod:`dlmath.hopfield` / :mod:`dlmath.attention` and an
independent oracle (autograd and its Hessian, ``torch.nn.functional``) on random
instances.  Chapter: :ref:`ch-hopfield`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlmath import attention, hopfield
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_number, compare_tensor


def _first_wrong(verdicts):
    """The first verdict that is not right, else the last one (all right)."""
    return next((v for v in verdicts if not v.ok), verdicts[-1])

_R001 = "001_ce676efc9e2b3789"
_R000 = "000_d0450d199b2953aa"
_CH = "ch-hopfield"
_F64 = torch.float64


def _instances(n: int = 20, seed: int = 0):
    """Random (X, q, beta) with N in 2..7 patterns of dimension D in 1..6."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        N, D = (int(v) for v in torch.randint(2, 8, (2,), generator=g))
        D = max(1, D - 1)
        X = torch.randn(N, D, generator=g, dtype=_F64)
        q = 2 * torch.randn(D, generator=g, dtype=_F64)
        beta = float(torch.empty(1).uniform_(0.1, 5.0, generator=g))
        yield X, q, beta


def _wide_instances(n: int = 200, seed: int = 0):
    """Random (X, q, beta): N in 2..8 patterns, D in 1..6, beta log-uniform in [0.1, 10]."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        N, D = int(torch.randint(2, 9, (1,), generator=g)), int(torch.randint(1, 7, (1,), generator=g))
        beta = float(10 ** (2 * torch.rand(1, generator=g) - 1))
        X = torch.randn(N, D, generator=g, dtype=_F64)
        q = 2 * torch.randn(D, generator=g, dtype=_F64)
        yield X, q, beta


def _check_gradients() -> Check:
    worst, ours, n, verdicts = 0.0, 0.0, 0, []
    for X, q, beta in _wide_instances():
        q = q.requires_grad_()
        E1, E2 = hopfield.energy_split(X, q, beta)
        (g1,) = torch.autograd.grad(E1, q)
        (g2,) = torch.autograd.grad(-E2, q)
        q = q.detach()
        claimed_g1 = q                                           # grad E1 = q
        claimed_g2 = X.T @ torch.softmax(beta * X @ q, dim=0)    # -grad E2 = X^T softmax(beta X q)
        verdicts += [compare_tensor(claimed_g1, g1, rtol=0.0, atol=1e-10),
                     compare_tensor(claimed_g2, g2, rtol=0.0, atol=1e-10)]
        worst = max(worst, float((g1 - claimed_g1).abs().max()), float((g2 - claimed_g2).abs().max()))
        # dlmath's closed form q - X^T p against autograd of the whole energy
        ours = max(ours, float((hopfield.energy_grad(X, q, beta) - (g1 - g2)).abs().max()))
        n += 1
    return Check(verified=r"$\nabla E_1 = q$, $-\nabla E_2 = X^\top\mathrm{softmax}(\beta Xq)$",
                 verdict=verdict_of(_first_wrong(verdicts)) if ours < 1e-10 else "incorrect",
                 note=f"agrees with autograd on {n} random instances (N from 2 to 8, D from 1 to 6, "
                      f"beta from 0.1 to 10; largest difference {worst:.1e}, and {ours:.1e} for "
                      "dlmath's gradient $q - X^\\top p$).")


def _check_hessian() -> Check:
    worst, ours, min_eig, n, verdicts = 0.0, 0.0, math.inf, 0, []
    for X, q, beta in _wide_instances(seed=1):
        H1 = torch.autograd.functional.hessian(lambda v: hopfield.energy_split(X, v, beta)[0], q)
        H2 = torch.autograd.functional.hessian(lambda v: -hopfield.energy_split(X, v, beta)[1], q)
        p = torch.softmax(beta * X @ q, dim=0)
        claimed_H2 = beta * X.T @ (torch.diag(p) - torch.outer(p, p)) @ X
        verdicts += [compare_tensor(torch.eye(len(q), dtype=_F64), H1, rtol=0.0, atol=1e-9),
                     compare_tensor(claimed_H2, H2, rtol=0.0, atol=1e-9)]
        worst = max(worst, float((H1 - torch.eye(len(q), dtype=_F64)).abs().max()),
                    float((H2 - claimed_H2).abs().max()))
        # dlmath's closed form I - beta X^T (diag p - p p^T) X against autograd's H1 - H2
        ours = max(ours, float((hopfield.energy_hessian(X, q, beta) - (H1 - H2)).abs().max()))
        min_eig = min(min_eig, float(torch.linalg.eigvalsh(H2).min()))
        n += 1
    # the Hessians by the checker; "both PSD" (a property, not a value) by the eigenvalues
    verdict = verdict_of(_first_wrong(verdicts)) if min_eig > -1e-12 and ours < 1e-9 else "incorrect"
    return Check(verified=r"$\nabla^2 E_1 = I$, $-\nabla^2 E_2 = \beta X^\top(\mathrm{diag}(p) - pp^\top)X \succeq 0$",
                 verdict=verdict,
                 note=f"matches autograd's Hessian on {n} random instances (largest difference "
                      f"{worst:.1e}, and {ours:.1e} for dlmath's Hessian), and the smallest eigenvalue "
                      f"of $-\\nabla^2 E_2$ is {min_eig:.1e} "
                      + ("(zero up to rounding)." if abs(min_eig) < 1e-12 else "(not negative beyond rounding).")
                      + "  The PSD step writes $vX$ "
                      "where $Xv$ is meant; with $u = Xv$ the argument is right.")


def _check_linearisation() -> Check:
    worst, verdicts = 0.0, []
    for X, q_t, beta in _instances(seed=2):
        g = torch.Generator().manual_seed(int(1e6 * beta))
        q = q_t + torch.randn(q_t.shape, generator=g, dtype=_F64)
        # the report's expression, reading lse(beta X q) as lse(beta, X q): evaluated at q, not q_t
        claimed = (-torch.logsumexp(beta * X @ q, 0) / beta
                   - torch.softmax(beta * X @ q, 0) @ X @ (q - q_t))
        # the tangent plane of E2 at q_t, from autograd
        qt = q_t.clone().requires_grad_()
        E2_t = hopfield.energy_split(X, qt, beta)[1]
        (grad_t,) = torch.autograd.grad(E2_t, qt)
        tangent = E2_t.detach() + grad_t @ (q - q_t)
        verdicts.append(compare_number(float(claimed), float(tangent), atol=1e-9))
        worst = max(worst, float((claimed - tangent).abs()))
    return Check(verified=r"$\tilde E_2(q) = -\mathrm{lse}(\beta, Xq_t) - \mathrm{softmax}(\beta Xq_t)^\top X(q - q_t)$",
                 verdict=verdict_of(_first_wrong(verdicts)),
                 note="the tangent plane must be evaluated at $q_t$; the stated expression keeps $q$ "
                      f"inside lse and softmax, so it is not affine in $q$ (differs from the tangent by up "
                      f"to {worst:.2f} on random instances).  The update derived after it is nevertheless right.")


def cccp_runs(n_runs: int = 150, n_queries: int = 8, n_steps: int = 30, seed: int = 1):
    """CCCP iterations from random states on random instances, one per run.

    Yields ``(X, Q, beta, result)`` with ``result`` from :func:`dlmath.hopfield.retrieve`:
    N in 2..12 patterns of dimension D in 1..8 scaled by up to 3, ``n_queries`` states, beta
    log-uniform in [0.1, 10], ``n_steps`` updates without early stopping.
    """
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_runs):
        N, D = int(torch.randint(2, 13, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
        beta = float(10 ** (2 * torch.rand(1, generator=g) - 1))
        X = torch.randn(N, D, generator=g, dtype=_F64) * float(torch.rand(1, generator=g) * 3)
        Q = 3 * torch.randn(n_queries, D, generator=g, dtype=_F64)
        yield X, Q, beta, hopfield.retrieve(X, Q, beta, max_steps=n_steps, tol=0.0)


def _check_cccp_update() -> Check:
    worst_grad, worst_rise, rises, trajectories = 0.0, -math.inf, 0, 0
    for X, Q, beta, r in cccp_runs(n_runs=25):
        new = hopfield.update(X, Q, beta).requires_grad_()
        (g,) = torch.autograd.grad(hopfield.energy_majorizer(X, new, Q, beta).sum(), new)
        worst_grad = max(worst_grad, float(g.abs().max()))       # stationary point of the bound
        scale = 1 + r.energies[:-1].abs()                        # relative to the energy
        step = r.energies.diff(dim=0) / scale                    # (steps, queries)
        rises += int((step > 1e-12).sum())
        worst_rise = max(worst_rise, float(step.max()))
        trajectories += Q.shape[0]
    ok = worst_grad < 1e-10 and rises == 0
    return Check(verified=r"$q_{t+1} = X^\top \mathrm{softmax}(\beta X q_t)$",
                 verdict="correct" if ok else "incorrect",
                 note="the unique minimiser of the convex upper bound $E_1 + \\tilde E_2$ (autograd "
                      f"gradient there at most {worst_grad:.0e}); in {trajectories} trajectories of up to 30 "
                      f"steps the energy rose beyond rounding {rises} times (largest relative rise "
                      f"{worst_rise:.0e}).")


def _check_attention_identity() -> Check:
    g = torch.Generator().manual_seed(4)
    N, D = 6, 4
    X = torch.randn(N, D, generator=g, dtype=_F64)
    Q = torch.randn(D, D, generator=g, dtype=_F64)           # D queries, so Z^T is square
    Z = F.scaled_dot_product_attention(Q[None], X[None], X[None])[0]      # (S, D)
    torch.testing.assert_close(attention.scaled_dot_product_attention(Q, X, X), Z)
    U = hopfield.update(X, Q, 1 / math.sqrt(D))              # row s: the update of query s
    # the claim: the updates are the rows of Z^T (compared as torch.allclose would)
    claimed = compare_tensor(U, Z.T, rtol=1e-5, atol=1e-12)
    rows_of_Z = compare_tensor(U, Z, rtol=1e-5, atol=1e-12).ok
    return Check(verified=r"$q_s^{\mathrm{new}}$ is row $s$ of $Z$ (column $s$ of $Z^\top$) for the query in row $s$ of $Q$, $\beta = 1/\sqrt{D}$",
                 verdict=verdict_of(claimed),
                 note=("the update of query $s$ equals row $s$ of $Z$" if rows_of_Z else "no row of $Z$ matched")
                      + "; a row of $Z^\\top$ collects one coordinate of all the updated queries.  "
                      "$t$ counts iterations and cannot index a row, and the softmax in "
                      "$X^\\top\\mathrm{softmax}(XQ^\\top/\\sqrt{D})$ must act on columns.")


def _check_self_attention_vec() -> Check:
    g = torch.Generator().manual_seed(5)
    worst, verdicts = 0.0, []
    for m, n in ((2, 3), (4, 4), (8, 8)):
        x = torch.rand(m, n, generator=g, dtype=_F64)
        v = x.T.reshape(-1, 1)                                    # vec: stack the columns, (mn, 1)
        claimed = torch.softmax(v @ v.T / math.sqrt(1), dim=1) @ v  # row-wise softmax
        oracle = F.scaled_dot_product_attention(v[None], v[None], v[None])[0]
        verdicts.append(compare_tensor(claimed, oracle, rtol=0.0, atol=1e-12))
        worst = max(worst, float((claimed - oracle).abs().max()))
    first = _first_wrong(verdicts)
    return Check(verified=r"$Z = \mathrm{softmax}(\mathrm{vec}(x)\,\mathrm{vec}(x)^\top)\,\mathrm{vec}(x)$, row-wise, $mn \times 1$",
                 verdict=verdict_of(first),
                 note="equals torch's attention with $d_k = 1$; the score matrix is $mn \\times mn$ "
                      "(the report writes $MN$, its kernel size), and dropping $1/\\sqrt{d_k}$ is "
                      "harmless only because $d_k = 1$.")


register(Claim(id="001-Q1.1-hopfield-gradients", source=_R001, question="Q1.1",
               topic="gradients of the convex part and of minus the concave part of the Hopfield energy",
               claimed=r"$\nabla E_1 = q$, $-\nabla E_2 = X^\top\mathrm{softmax}(\beta Xq)$",
               check=_check_gradients, chapter=_CH, expected="correct"))
register(Claim(id="001-Q1.1-hopfield-hessians", source=_R001, question="Q1.1",
               topic="Hessians of the two parts of the Hopfield energy and their definiteness",
               claimed=r"$\nabla^2 E_1 = I$, $-\nabla^2 E_2 = \beta X^\top(\mathrm{diag}(f) - ff^\top)X$, both PSD",
               check=_check_hessian, chapter=_CH, expected="correct"))
register(Claim(id="001-Q1.2-linearised-concave-part", source=_R001, question="Q1.2",
               topic="first-order expansion of the concave part around the current state",
               claimed=r"$\tilde E_2(q) = -\mathrm{lse}(\beta Xq) - \mathrm{softmax}(\beta Xq)^\top X(q - q_t)$",
               check=_check_linearisation, chapter=_CH, expected="incorrect"))
register(Claim(id="001-Q1.2-cccp-update", source=_R001, question="Q1.2",
               topic="the concave-convex procedure step for the Hopfield energy",
               claimed=r"$q_{t+1} = X^\top\mathrm{softmax}(\beta Xq_t)$",
               check=_check_cccp_update, chapter=_CH, expected="correct"))
register(Claim(id="001-Q1.3-update-is-attention", source=_R001, question="Q1.3",
               topic="where the Hopfield update sits in the output of one attention head with identity key and value maps",
               claimed=r"$q_{t+1}$ is row $t$ of $Z^\top = X^\top\mathrm{softmax}(XQ^\top/\sqrt{D})$",
               check=_check_attention_identity, chapter=_CH, expected="incorrect"))
register(Claim(id="000-Q1.2-self-attention-vec-image", source=_R000, question="Q1.2",
               topic="single-head self-attention with unit projections on a vectorised image",
               claimed=r"$Z = \mathrm{softmax}(\mathrm{vec}(x)\,\mathrm{vec}(x)^\top/\sqrt{1})\,\mathrm{vec}(x)$",
               check=_check_self_attention_vec, chapter=_CH, expected="correct"))
