"""Claims about the two-layer MLP's equations and gradients (chapter ch-mlp-backprop).

Each check evaluates the claimed formula, read literally, on random float64 instances and
compares it with PyTorch autograd (the oracle) and with :func:`dlmath.mlp.mlp_backward`.
Where the claimed formula indexes hidden units and outputs with the same letter, the
instance has ``n_x = n_h = n_y = 3`` so that every index in it is defined.  The names of the
layer sizes are checked against ``torch.nn``, and the cost of backpropagation by counting
floating-point operations (``torch.utils.flop_counter``).  The claimed values are compared
with autograd's by :func:`dlmath.check.compare_tensor` (relative tolerance 1e-9), and
:func:`dlmath._book.claims.verdict_of` turns its first failing verdict into the claim's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dlmath import mlp
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_tensor
from dlmath._validate import one_torch_thread

R004 = "004_46edfb94b1a3c9c4"
N = 3  # n_x = n_h = n_y


def _instance(seed: int) -> dict[str, torch.Tensor]:
    """One example through a random MLP, with autograd's gradients of its cross-entropy."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    leaves = {"W_h": r(N, N), "b_h": 0.5 * r(N), "W_y": r(N, N), "b_y": 0.5 * r(N)}
    for t in leaves.values():
        t.requires_grad_()
    x, c = r(N), int(torch.randint(N, (1,), generator=gen))
    h_tilde = leaves["W_h"] @ x + leaves["b_h"]
    h = torch.tanh(h_tilde)
    y_tilde = leaves["W_y"] @ h + leaves["b_y"]
    h_tilde.retain_grad()
    loss = F.cross_entropy(y_tilde[None], torch.tensor([c]))
    loss.backward()
    params = {k: v.detach() for k, v in leaves.items()}
    mine = mlp.mlp_backward(params, x[None], torch.tensor([c]))
    return {**params, "x": x, "y": F.one_hot(torch.tensor(c), N).double(),
            "h": h.detach(), "y_tilde": y_tilde.detach(), "y_hat": torch.softmax(y_tilde.detach(), 0),
            **{"d" + k: v.grad for k, v in leaves.items()}, "dh_tilde": h_tilde.grad,
            "mine": mine}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-300))


def _compare(formula: Callable[[dict], torch.Tensor], target: str,
             seeds: range = range(20)) -> tuple[float, float]:
    """Largest relative error of ``formula(instance)`` and of dlmath against autograd."""
    claimed, ours = 0.0, 0.0
    for s in seeds:
        inst = _instance(s)
        claimed = max(claimed, _rel(formula(inst), inst[target]))
        mine = inst["mine"][target].reshape(inst[target].shape)   # drop the batch axis
        ours = max(ours, _rel(mine, inst[target]))
    return claimed, ours


def _same(claimed: torch.Tensor, oracle: torch.Tensor):
    """The checker's verdict on a claimed value against the oracle's."""
    return compare_tensor(claimed, oracle, rtol=1e-9, atol=1e-12)


def _first_wrong(verdicts):
    """The first verdict that is not right, else the last one (all right)."""
    verdicts = list(verdicts)
    return next((v for v in verdicts if not v.ok), verdicts[-1])


def _judge(formula: Callable[[dict], torch.Tensor], target: str, seeds: range = range(20)) -> str:
    """The claim's verdict: ``formula(instance)`` against autograd on every seed."""
    return verdict_of(_first_wrong(_same(formula(inst), inst[target])
                                   for inst in map(_instance, seeds)))


def _check_forward() -> Check:
    worst, ours, verdicts = 0.0, 0.0, []
    for s in range(20):
        inst = _instance(s)
        net = torch.nn.Sequential(torch.nn.Linear(N, N), torch.nn.Tanh(), torch.nn.Linear(N, N)).double()
        with torch.no_grad():
            net[0].weight.copy_(inst["W_h"]); net[0].bias.copy_(inst["b_h"])
            net[2].weight.copy_(inst["W_y"]); net[2].bias.copy_(inst["b_y"])
            oracle = net(inst["x"])
        claimed = inst["W_y"] @ inst["x"] + inst["b_y"]            # the claim: y~ = W_y x + b_y
        worst = max(worst, _rel(claimed, oracle))
        verdicts.append(_same(claimed, oracle))
        params = {k: inst[k] for k in ("W_h", "b_h", "W_y", "b_y")}
        ours = max(ours, _rel(mlp.mlp_forward(params, inst["x"][None])["y_tilde"][0], oracle))
    return Check(verified=r"$\tilde y = W_y h + b_y$ (the other three equations are right)",
                 verdict=verdict_of(_first_wrong(verdicts)),
                 note="The output layer is fed the input x instead of the hidden activation h = tanh(h~): "
                      "the hidden layer is skipped, and the product is defined only when n_x = n_h "
                      f"(relative error {worst:.2f} against torch.nn with n_x = n_h; dlmath {ours:.0e}).")


def _probs(seed: int, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y_hat = torch.softmax(torch.randn(k, generator=gen, dtype=torch.float64), 0).requires_grad_()
    y = F.one_hot(torch.randint(k, (), generator=gen), k).double()
    return y_hat, y


def _check_ce_grad_probs() -> Check:
    worst, verdicts = 0.0, []
    for s in range(20):
        y_hat, y = _probs(s)
        (g,) = torch.autograd.grad(-(y * torch.log(y_hat)).sum(), y_hat)
        worst = max(worst, _rel(-y / y_hat.detach(), g))            # the claim: -y / ŷ
        verdicts.append(_same(-y / y_hat.detach(), g))
    return Check(verified=r"$\partial\ell/\partial\hat y_k = -y_k/\hat y_k$",
                 verdict=verdict_of(_first_wrong(verdicts)),
                 note="Right, as a derivative with the probabilities taken as free variables. It never "
                      "vanishes (it is -1 on the true class even at ŷ = y), so 'the gradient must be zero' "
                      "does not apply here: ŷ is constrained to sum to 1. In the logits the gradient "
                      "ŷ - y does tend to 0.")


def _check_mse_grad_probs() -> Check:
    worst, flipped, verdicts = 0.0, 0.0, []
    for s in range(20):
        y_hat, y = _probs(s)
        (g,) = torch.autograd.grad(((y_hat - y) ** 2).sum(), y_hat)
        claimed = 2 * (y - y_hat.detach())                          # the claim: 2 (y - ŷ)
        worst, flipped = max(worst, _rel(claimed, g)), max(flipped, _rel(-claimed, g))
        verdicts.append(_same(claimed, g))
    return Check(verified=r"$\partial\ell/\partial\hat y = 2(\hat y - y)$",
                 verdict=verdict_of(_first_wrong(verdicts)),
                 note=f"Wrong sign: the claimed vector is minus autograd's gradient (relative error {worst:.0f}; "
                      f"with the sign flipped {flipped:.0e}). A step along it would increase the loss.")


def _check_dW_y() -> Check:
    # the claim: ∂ℓ/∂W_y,ij = Σ_k (y~_k - y_k) h_k, the same number for every (i, j)
    literal = lambda d: ((d["y_tilde"] - d["y"]) * d["h"]).sum() * torch.ones(N, N, dtype=torch.float64)  # noqa: E731
    with_probs = lambda d: ((d["y_hat"] - d["y"]) * d["h"]).sum() * torch.ones(N, N, dtype=torch.float64)  # noqa: E731
    err, ours = _compare(literal, "dW_y")
    err_probs, _ = _compare(with_probs, "dW_y")
    return Check(verified=r"$\partial\ell/\partial W_{y,ij} = (\hat y_i - y_i)\,h_j$ (an outer product)",
                 verdict=_judge(literal, "dW_y"),
                 note="The sum over k contracts the output error with the hidden activations, so every entry "
                      "gets the same number; the gradient is the outer product of the error and h. Even with "
                      f"ŷ for y~ it stays wrong (relative errors {err:.2f} and {err_probs:.2f}; dlmath {ours:.0e}).")


def _check_db_y() -> Check:
    literal = lambda d: ((d["y_tilde"] - d["y"]).sum()) * torch.ones(N, dtype=torch.float64)  # noqa: E731
    with_probs = lambda d: ((d["y_hat"] - d["y"]).sum()) * torch.ones(N, dtype=torch.float64)  # noqa: E731
    err, ours = _compare(literal, "db_y")
    zero = max(float(with_probs(_instance(s)).abs().max()) for s in range(20))
    return Check(verified=r"$\partial\ell/\partial b_{y,i} = \hat y_i - y_i$",
                 verdict=_judge(literal, "db_y"),
                 note="Summing over k gives one number for every output; with ŷ in place of y~ that number is "
                      f"Σ_k ŷ_k - Σ_k y_k = 0 (largest seen {zero:.0e}). Relative error {err:.2f}; dlmath {ours:.0e}.")


def _dh_tilde_variants() -> dict[str, Callable]:
    diag = lambda W: torch.diagonal(W)  # noqa: E731  W_{y,i} read as W_{y,ii}
    return {
        "literal": lambda d: (d["y_tilde"] - d["y"]) * diag(d["W_y"]) * (1 - d["h"]) ** 2,
        "probs": lambda d: (d["y_hat"] - d["y"]) * diag(d["W_y"]) * (1 - d["h"]) ** 2,
        "probs_tanh": lambda d: (d["y_hat"] - d["y"]) * diag(d["W_y"]) * (1 - d["h"] ** 2),
        # all three repaired: ŷ, 1 - h^2 and the sum over the outputs k
        "repaired": lambda d: (1 - d["h"] ** 2) * ((d["y_hat"] - d["y"]) @ d["W_y"]),
    }


def _dh_tilde_note(errs: dict[str, float]) -> str:
    return ("Three errors: (1 - h_i)^2 where tanh' = 1 - h_i^2 belongs, no sum over the outputs k "
            "(∂ℓ/∂h_i = Σ_k (ŷ_k - y_k) W_y,ki) and the logit y~ for ŷ. Relative error as written "
            f"{errs['literal']:.2f}; with ŷ {errs['probs']:.2f}; also with 1 - h^2 {errs['probs_tanh']:.2f}; "
            f"with the sum as well {errs['repaired']:.0e}.")


def dh_tilde_errors() -> dict[str, float]:
    """Largest relative error against autograd of the claimed ∂ℓ/∂h~ and of its partial repairs.

    Keys: ``literal`` (as written), ``probs`` (ŷ for y~), ``probs_tanh`` (also 1 - h^2) and
    ``repaired`` (also the sum over the outputs), over the instances of the claim's check.
    """
    return {name: _compare(f, "dh_tilde")[0] for name, f in _dh_tilde_variants().items()}


def _check_dh_tilde() -> Check:
    errs = dh_tilde_errors()
    ours = _compare(lambda d: d["dh_tilde"], "dh_tilde")[1]
    return Check(verified=r"$\partial\ell/\partial\tilde h_i = (1-h_i^2)\sum_k(\hat y_k - y_k)W_{y,ki}$",
                 verdict=_judge(_dh_tilde_variants()["literal"], "dh_tilde"),
                 note=_dh_tilde_note(errs) + f" dlmath: {ours:.0e}.")


def _check_dW_h() -> Check:
    v = _dh_tilde_variants()
    # the claim: ∂ℓ/∂W_h,i = [claimed ∂ℓ/∂h~_i] x_i: one number per hidden unit i, for every column
    literal = lambda d: (v["literal"](d) * d["x"])[:, None].expand(N, N)  # noqa: E731
    repaired_delta = lambda d: (v["repaired"](d) * d["x"])[:, None].expand(N, N)  # noqa: E731
    err, ours = _compare(literal, "dW_h")
    err_delta, _ = _compare(repaired_delta, "dW_h")
    return Check(verified=r"$\partial\ell/\partial W_{h,ij} = \delta^h_i x_j$ with $\delta^h = \partial\ell/\partial\tilde h$",
                 verdict=_judge(literal, "dW_h"),
                 note="Inherits the three errors of ∂ℓ/∂h~ and pairs hidden unit i with input x_i instead "
                      f"of forming the outer product δ^h x^T (relative error {err:.2f}; with a correct δ^h "
                      f"still {err_delta:.2f}; dlmath {ours:.0e}).")


def _check_db_h() -> Check:
    err, ours = _compare(_dh_tilde_variants()["literal"], "db_h")
    return Check(verified=r"$\partial\ell/\partial b_{h,i} = \partial\ell/\partial\tilde h_i$",
                 verdict=_judge(_dh_tilde_variants()["literal"], "db_h"),
                 note="The relation db_h = ∂ℓ/∂h~ is right, but it uses the wrong ∂ℓ/∂h~ "
                      f"(relative error {err:.2f}; dlmath {ours:.0e}).")


def _check_init_accuracy(K: int = 10, nets: int = 200) -> Check:
    from dlmath.data.toy import blobs

    X, y = blobs(500, k=K, std=0.5, radius=3.0, seed=0)
    acc, loss = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny forward passes: a thread pool only adds overhead
    try:
        for s in range(nets):
            params = mlp.init_mlp(2, 16, K, seed=s, std=0.01)
            acc.append(float((mlp.mlp_predict(params, X) == y).double().mean()))
            logits = mlp.mlp_forward(params, X)["y_tilde"]
            loss.append(float(F.cross_entropy(logits, y)))
    finally:
        torch.set_num_threads(threads)
    mean_acc, mean_loss = sum(acc) / nets, sum(loss) / nets
    claimed = 0.9
    chance = abs(mean_acc - 1 / K) < 0.03
    verdict = "correct" if abs(mean_acc - claimed) < 0.05 else ("incorrect" if chance else "incomplete")
    return Check(verified=rf"accuracy $1/K = {100 / K:.0f}\%$ (error ${100 - 100 / K:.0f}\%$), loss $\approx \ln K = {math.log(K):.3f}$",
                 verdict=verdict,
                 note=f"{nets} untrained MLPs on a 10-class data set: mean accuracy {mean_acc:.3f}, mean loss "
                      f"{mean_loss:.4f} (ln 10 = {math.log(K):.4f}). 90 % is the error rate, not the accuracy.")


def _check_layer_sizes() -> Check:
    # the report's example: 2 inputs, a hidden layer of 4 tanh units, 2 classes
    n_x, hidden, classes = 2, 4, 2
    oracle = torch.nn.Sequential(torch.nn.Linear(n_x, hidden), torch.nn.Tanh(),
                                 torch.nn.Linear(hidden, classes))
    X = torch.zeros(5, n_x, dtype=torch.float64)

    def sizes(n_h: int, n_y: int) -> tuple[int, int]:
        """Widths of h~ and of y^ in the equations of question 7, with these names."""
        out = mlp.mlp_forward(mlp.init_mlp(n_x, n_h, n_y, seed=0), X)
        return out["h_tilde"].shape[1], out["y_hat"].shape[1]

    want = (oracle[0].out_features, oracle[2].out_features)        # (hidden, classes)
    claimed_ok = sizes(n_h=2, n_y=4) == want                        # the claim: n_y = 4, n_h = 2
    swapped_ok = sizes(n_h=4, n_y=2) == want
    return Check(verified=r"$n_h = 4$ hidden units, $n_y = 2$ classes (and $n_x = 2$)",
                 verdict="correct" if claimed_ok else "incorrect",
                 note="The names n_y and n_h are swapped. In the report's own equations (question 7) n_h is "
                      "the width of h~ = W_h x + b_h and n_y that of y^ = softmax(W_y h + b_y), the class "
                      "probabilities; with n_y = 4 the network would predict 4 classes for a 2-class problem"
                      + ("; with the two names swapped the widths are those of torch.nn's network. "
                         if swapped_ok else ". ")
                      + "The roles that follow (n_x and n_y fixed by the data, n_h a hyperparameter) are "
                        "right, and contradict the report's own definitions.")


def _flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def gradient_flops(depth: int, width: int = 4, batch: int = 4) -> dict[str, int]:
    """Floating-point operations, counted by torch, of three ways to get every gradient.

    ``backprop``: :func:`dlmath.mlp.deep_mlp_backprop`; ``per_layer``: one autograd call per
    weight matrix, each walking back from the loss to that layer without reusing the others'
    work; ``finite_differences``: forward differences, one forward pass per parameter.
    """
    params = mlp.init_deep_mlp([width] * (depth + 1), seed=0)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    y = torch.randint(width, (batch,), generator=gen)

    def per_layer() -> None:
        for l in range(depth):
            leaves = [t.detach().requires_grad_() for t in params]
            torch.autograd.grad(mlp.deep_mlp_loss(leaves, X, y), leaves[2 * l])

    return {"backprop": _flops(lambda: mlp.deep_mlp_backprop(params, X, y)),
            "per_layer": _flops(per_layer),
            "finite_differences": _flops(lambda: mlp.finite_difference_grad(
                lambda: mlp.deep_mlp_loss(params, X, y), params, scheme="forward"))}


def _check_backprop_cost() -> Check:
    with one_torch_thread():
        lo, hi = gradient_flops(8), gradient_flops(16)
    # growth exponent in the depth L, from L = 8 to L = 16 at a fixed width
    expo = {k: math.log2(hi[k] / lo[k]) for k in lo}
    holds = expo["backprop"] < 1.2 and expo["per_layer"] > 1.8 and expo["finite_differences"] > 1.8
    return Check(verified=r"operations $\propto L$ for backpropagation, $\propto L^2$ for a naive gradient "
                          r"(fixed width)",
                 verdict="correct" if holds else "incorrect",
                 note="Floating-point operations counted by torch's FlopCounterMode, for tanh networks "
                      f"of width 4 from 8 to 16 layers, grow like L^{expo['backprop']:.2f} for backpropagation, "
                      f"L^{expo['per_layer']:.2f} when each layer's gradient is computed on its own from the "
                      f"loss, and L^{expo['finite_differences']:.2f} for finite differences. This is the "
                      "operation count; the measured time of tiny networks grows more slowly.")


for _id, _q, _topic, _claimed, _check, _expected in [
    ("004-I-Q4-layer-sizes", "MLP I-Q4", "the sizes n_x, n_h, n_y of the two-layer MLP",
     r"$n_y$ = hidden units (4), $n_h$ = classes (2); $n_x$, $n_y$ fixed by the data, $n_h$ a hyperparameter",
     _check_layer_sizes, "incorrect"),
    ("004-I-Q12-backprop-cost", "MLP I-Q12", "cost of backpropagation against a naive gradient",
     r"backpropagation of the order of the number of layers $L$, the naive approach of order $L^2$",
     _check_backprop_cost, "correct"),
    ("004-I-Q7-forward", "MLP I-Q7", "forward equations of the two-layer MLP",
     r"$\tilde h = W_h x + b_h,\ h = \tanh\tilde h,\ \tilde y = W_y x + b_y,\ \hat y = \operatorname{softmax}(\tilde y)$",
     _check_forward, "incorrect"),
    ("004-I-Q8-ce-grad", "MLP I-Q8", "derivative of the cross-entropy with respect to the probabilities",
     r"$\partial\ell_{CE}/\partial\hat y = -y/\hat y$", _check_ce_grad_probs, "correct"),
    ("004-I-Q8-mse-grad", "MLP I-Q8", "derivative of the squared error with respect to the probabilities",
     r"$\partial\ell_{MSE}/\partial\hat y = 2(y - \hat y)$", _check_mse_grad_probs, "incorrect"),
    ("004-I-Q16-dW_y", "MLP I-Q16", "gradient with respect to the output weights",
     r"$\partial\ell/\partial W_{y,ij} = \sum_k(\tilde y_k - y_k)h_k$", _check_dW_y, "incorrect"),
    ("004-I-Q16-db_y", "MLP I-Q16", "gradient with respect to the output biases",
     r"$\partial\ell/\partial b_y = \sum_k(\tilde y_k - y_k)$", _check_db_y, "incorrect"),
    ("004-I-Q17-dh_tilde", "MLP I-Q17", "gradient with respect to the hidden pre-activation",
     r"$\partial\ell/\partial\tilde h_i = (\tilde y_i - y_i)\,W_{y,i}\,(1-h_i)^2$", _check_dh_tilde, "incorrect"),
    ("004-I-Q17-dW_h", "MLP I-Q17", "gradient with respect to the hidden weights",
     r"$\partial\ell/\partial W_{h,i} = (\tilde y_i - y_i)\,W_{y,i}\,(1-h_i)^2\,x_i$", _check_dW_h, "incorrect"),
    ("004-I-Q17-db_h", "MLP I-Q17", "gradient with respect to the hidden biases",
     r"$\partial\ell/\partial b_{h,i} = (\tilde y_i - y_i)\,W_{y,i}\,(1-h_i)^2$", _check_db_h, "incorrect"),
    ("004-II-Q17-init-accuracy", "II-Q17", "accuracy of an untrained 10-class classifier",
     r"about $90\%$ correct", _check_init_accuracy, "incorrect"),
]:
    register(Claim(id=_id, source=R004, question=_q, topic=_topic, claimed=_claimed, check=_check,
                   chapter="ch-mlp-backprop", expected=_expected))
