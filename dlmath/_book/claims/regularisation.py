"""Claims about dropout, normalisation, augmentation, momentum, schedules and Adam
(report 004, parts II and III; chapter "Regularisation and optimisation").

Each check computes the verified behaviour with :mod:`dlmath.regularisation` and with an
independent oracle (``torch.nn.Dropout``, ``torch.optim.SGD`` / ``Adam``, the schedulers of
``torch.optim.lr_scheduler``, a nearest-neighbour classifier on the digits), and the verdict
compares that with what the report states.  Every check runs in well under a second.
"""

from __future__ import annotations

import numpy as np
import torch

from dlmath import regularisation as reg
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath.check import compare_number, compare_tensor

CHAPTER = "ch-regularisation"
R004 = "004_46edfb94b1a3c9c4"


# ---- III-Q33: what dropout does at test time ------------------------------------------

def _check_dropout_test_scaling() -> Check:
    p = 0.2
    # x and the dropout masks come from different seeds: equal seeds would draw the
    # masks from the very uniforms that made x, and correlate them
    x = torch.rand(50_000, 8, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64) + 0.5
    layer = torch.nn.Dropout(p)
    torch.manual_seed(0)
    train_mean = layer.train()(x).mean(0)              # (8,) the average training output
    test_out = layer.eval()(x).mean(0)                 # what eval() gives
    ours = reg.inverted_dropout(x, p, training=False).mean(0)
    identity = bool(torch.equal(layer.eval()(x), x)) and bool(torch.equal(ours, test_out))
    # the claim: at test time the signal is multiplied by p
    claimed = p * x.mean(0)
    err_claim = float(((claimed - train_mean) / train_mean).abs().max())
    err_eval = float(((test_out - train_mean) / train_mean).abs().max())
    verdict = verdict_of(compare_tensor(claimed, train_mean, rtol=0.02, atol=0.0))
    if not identity:  # the oracle and dlmath disagree: say so rather than guess
        raise RuntimeError("nn.Dropout in eval mode is not the identity")
    return Check(verified=r"identity at test time; kept units scaled by $1/(1-p)$ while "
                          r"training (original form: $\times(1-p)$ at test, never $\times p$)",
                 verdict=verdict,
                 note=f"With p = {p}, nn.Dropout in eval mode returns its input unchanged and "
                      f"matches the mean training output to {err_eval:.1%}; multiplying by p "
                      f"misses it by {err_claim:.0%}.")


# ---- III-Q32: what p is, and whether it changes the number of weights ------------------

def _check_dropout_p_meaning() -> Check:
    p, n = 0.3, 200_000
    torch.manual_seed(1)
    zeroed = float((torch.nn.Dropout(p).train()(torch.ones(n)) == 0).double().mean())
    # the claimed probability against the measured share, within 5 binomial standard errors
    full = compare_number(p, zeroed, atol=5 * (p * (1 - p) / n) ** 0.5)
    return Check(verified=r"$p$ is the probability of zeroing a unit (PyTorch's convention)",
                 verdict=verdict_of(full),
                 note=f"nn.Dropout({p}) zeroed {zeroed:.4f} of {n:,} units. Srivastava et al. "
                      "use p for the probability of keeping a unit.")


def _check_dropout_fewer_weights() -> Check:
    from dlmath.params import count_params
    from dlmath.models.zoo import three_block_cnn

    counts = {p: count_params(three_block_cnn(in_channels=1, size=16, channels=(8, 16, 16),
                                              hidden=(32,), num_classes=10, kernel_size=5,
                                              dropout=p)) for p in (0.0, 0.5, 0.9)}
    numel = {p: sum(t.numel() for t in three_block_cnn(
        in_channels=1, size=16, channels=(8, 16, 16), hidden=(32,), num_classes=10,
        kernel_size=5, dropout=p).parameters()) for p in counts}
    if counts != numel:
        raise RuntimeError(f"count_params {counts} disagrees with numel {numel}")
    same = len(set(counts.values())) == 1
    return Check(verified=f"the same {counts[0.0]:,} weights for every p; each step still "
                          "updates all of them (the dropped ones get a zero gradient)",
                 verdict="incorrect" if same else "correct",
                 note="Dropout removes units from one forward pass, not weights from the model: "
                      "a larger p makes the gradient noisier, not the model smaller.")


# ---- III-Q20: normalisation statistics from the training set only -----------------------

def _check_test_statistics() -> Check:
    gen = torch.Generator().manual_seed(0)
    train_x = torch.rand(40, 1, 4, 4, generator=gen)
    image = torch.rand(1, 1, 4, 4, generator=gen)
    companions = [torch.rand(9, 1, 4, 4, generator=gen), 3 + torch.rand(9, 1, 4, 4, generator=gen)]
    mean, std = reg.channel_statistics(train_x)
    with_train = [reg.normalise(torch.cat([image, c]), mean, std)[0] for c in companions]
    with_test = [reg.normalise(torch.cat([image, c]), *reg.channel_statistics(torch.cat([image, c])))[0]
                 for c in companions]
    train_stable = bool(torch.equal(with_train[0], with_train[1]))
    test_moves = float((with_test[0] - with_test[1]).abs().max())
    ok = train_stable and test_moves > 1e-3
    return Check(verified="statistics are part of the model: estimated on the training split, "
                          "then applied unchanged",
                 verdict="correct" if ok else "incorrect",
                 note="With test-set statistics the input the network sees for one test image "
                      f"changes (by up to {test_moves:.2f} here) when the other test images "
                      "change; with training statistics it does not.")


# ---- III-Q22: does augmentation add data to an epoch? -------------------------------------

def _check_augmentation_more_data() -> Check:
    from dlmath.data.tensors import random_crop

    x = torch.rand(37, 1, 16, 16)
    y = random_crop(x, torch.Generator().manual_seed(0), padding=2)
    changed = float((y != x).any(dim=(1, 2, 3)).double().mean())
    same_count = y.shape[0] == x.shape[0]
    return Check(verified="the same number of examples per epoch, each replaced by a random "
                          "variant",
                 verdict="incorrect" if same_count else "correct",
                 note=f"A random crop maps a batch of {x.shape[0]} images to {y.shape[0]} images "
                      f"({changed:.0%} of them altered): the epoch is no longer, it is harder to "
                      "fit because no image is seen twice in the same form.")


# ---- III-Q23: horizontal flips and digits --------------------------------------------------

def nearest_neighbour_flips() -> tuple[float, float, torch.Tensor]:
    """Accuracy of a 1-nearest-neighbour classifier on the 8×8 test digits and their mirror images.

    The classifier (Euclidean distance to the raw training images of
    :func:`dlmath.data.digits`) is an oracle that learns nothing: what it gets wrong on
    mirrored digits, they have lost.  Returns the accuracy on the test images, on their
    mirror images, and per class on the mirror images, shape ``(10,)``.
    """
    from dlmath.data import digits

    d = digits()
    tr, te = d.train.inputs[0].flatten(1), d.test.inputs[0]            # (N, 64), (M, 1, 8, 8)

    def nn1(images: torch.Tensor) -> torch.Tensor:
        return d.train.targets[torch.cdist(images.flatten(1), tr).argmin(1)]

    plain = float((nn1(te) == d.test.targets).double().mean())
    flipped_pred = nn1(te.flip(-1))
    flipped = float((flipped_pred == d.test.targets).double().mean())
    return plain, flipped, reg.class_accuracy(flipped_pred, d.test.targets, 10)


def _check_flip_digits() -> Check:
    plain, flipped, per_class = nearest_neighbour_flips()
    kept = [c for c in range(10) if per_class[c] >= 0.5]
    ok = flipped < plain - 0.3
    return Check(verified="a mirrored digit is mostly another digit or none",
                 verdict="correct" if ok else "incorrect",
                 note=f"A nearest-neighbour classifier on the 8×8 digits: {plain:.1%} correct on "
                      f"the test images, {flipped:.1%} on their mirror images; only the classes "
                      f"{kept} keep at least half of their examples.")


# ---- III-Q27: momentum and schedules --------------------------------------------------------

def _torch_sgd_steps(gradients: list[float], lr: float, momentum: float) -> list[float]:
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum)
    steps = []
    for g in gradients:
        before = float(x.detach())
        opt.zero_grad()
        (g * x).sum().backward()                          # a linear loss: gradient g
        opt.step()
        steps.append(float(x.detach()) - before)
    return steps


def _check_momentum_accumulates() -> Check:
    mu, lr, T = 0.9, 0.1, 200
    agree = _torch_sgd_steps([1.0] * T, lr, mu)[-1] / -lr
    alternate = abs(_torch_sgd_steps([(-1.0) ** t for t in range(T)], lr, mu)[-1]) / lr
    # the same with dlmath: a linear function is the quadratic with A = 0
    ours = np.diff(reg.quadratic_gd_trajectory([[0.0]], [0.0], lr, mu, T, linear=[-1.0])[:, 0])
    if abs(ours[-1] / -lr - agree) > 1e-9:
        raise RuntimeError("dlmath's momentum trajectory disagrees with torch.optim.SGD")
    ok = agree > 1.5 and alternate < 0.75
    return Check(verified=rf"steps grow to $1/(1-\mu) = {1 / (1 - mu):.0f}$ times the gradient "
                          rf"step when gradients agree, shrink to $1/(1+\mu) = {1 / (1 + mu):.2f}$ "
                          "when they alternate",
                 verdict="correct" if ok else "incorrect",
                 note=f"torch.optim.SGD with μ = {mu}: after {T} steps the step is {agree:.2f} "
                      f"(constant gradient) and {alternate:.3f} (alternating sign) gradient "
                      "steps long.")


def _check_schedule_shape() -> Check:
    sched = torch.optim.lr_scheduler

    def factors(make) -> np.ndarray:
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=1.0)
        s = make(opt)
        out = []
        for _ in range(100):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        return np.array(out)

    shapes = {
        "StepLR": factors(lambda o: sched.StepLR(o, step_size=30, gamma=0.1)),
        "ExponentialLR": factors(lambda o: sched.ExponentialLR(o, gamma=0.97)),
        "CosineAnnealingLR": factors(lambda o: sched.CosineAnnealingLR(o, T_max=100)),
        "OneCycleLR": factors(lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=100)),
    }
    rises = sorted(k for k, v in shapes.items() if v.argmax() > 0)
    only_fall = sorted(k for k, v in shapes.items() if np.all(np.diff(v) <= 1e-12))
    verdict = "correct" if not only_fall else ("incorrect" if not rises else "incomplete")
    return Check(verified="true of warm-up and one-cycle schedules only; step, exponential and "
                          "cosine decay only lower the rate",
                 verdict=verdict,
                 note=f"Of torch's schedulers, {', '.join(rises)} rise first; "
                      f"{', '.join(only_fall)} never rise.")


# ---- III-Q28: Adam combines momentum and a per-parameter step ----------------------------

def _check_adam() -> Check:
    def adam_steps(scale: float, grads: list[list[float]]) -> np.ndarray:
        w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.01, eps=1e-12)
        out = []
        for g in grads:
            opt.zero_grad()
            (scale * torch.tensor(g, dtype=torch.float64) * w).sum().backward()
            before = w.detach().clone()
            opt.step()
            out.append((w.detach() - before).numpy())
        return np.array(out)

    grads = [[1.0, 1000.0], [-1.0, 1000.0], [1.0, 1000.0]]
    a, b = adam_steps(1.0, grads), adam_steps(1e3, grads)
    per_parameter = bool(np.allclose(abs(a[0, 0]), abs(a[0, 1])))     # unequal gradients, equal steps
    scale_free = bool(np.allclose(a, b))
    momentum = bool(abs(a[1, 0]) < abs(a[1, 1]))                    # a sign flip slows that coordinate
    ok = per_parameter and scale_free and momentum
    return Check(verified="a moving average of gradients (momentum) divided by a per-parameter "
                          "root mean square of gradients",
                 verdict="correct" if ok else "incorrect",
                 note="torch.optim.Adam: the first steps of two coordinates whose gradients differ "
                      "1000-fold are equally long, scaling the loss leaves the steps unchanged, and "
                      "a coordinate whose gradient changes sign moves less.")


for _id, _q, _topic, _claimed, _check, _expected in [
    ("004-III-Q33-dropout-test-scaling", "III-Q33", "what dropout does at test time",
     r"the weights are multiplied by $p$ at test time", _check_dropout_test_scaling, "incorrect"),
    ("004-III-Q32-dropout-p", "III-Q32", "the meaning of the dropout probability $p$",
     r"$p$ is the probability that a unit is deactivated", _check_dropout_p_meaning, "correct"),
    ("004-III-Q32-dropout-weights", "III-Q32", "whether a larger dropout probability leaves fewer "
     "weights to train", "a high $p$ converges faster because there are fewer weights",
     _check_dropout_fewer_weights, "incorrect"),
    ("004-III-Q20-test-statistics", "III-Q20", "where normalisation statistics may come from",
     "from the training set only: the test set must not inform the model",
     _check_test_statistics, "correct"),
    ("004-III-Q22-augmentation-data", "III-Q22", "why training with augmentation converges "
     "more slowly", "because augmentation gives more data", _check_augmentation_more_data,
     "incorrect"),
    ("004-III-Q23-flip-digits", "III-Q23", "horizontal flips as augmentation for digits",
     "flipped digits lose their meaning, so flips are not suitable for digits",
     _check_flip_digits, "correct"),
    ("004-III-Q27-momentum", "III-Q27", "what momentum does to the step",
     "it adds past gradients: larger steps when they agree, smaller when they disagree",
     _check_momentum_accumulates, "correct"),
    ("004-III-Q27-schedule", "III-Q27", "the shape of a learning-rate schedule",
     "it raises the learning rate first, then lowers it step by step", _check_schedule_shape,
     "incomplete"),
    ("004-III-Q28-adam", "III-Q28", "what Adam combines",
     "momentum (the direction) and an adapted learning rate", _check_adam, "correct"),
]:
    register(Claim(id=_id, source=R004, question=_q, topic=_topic, claimed=_claimed, check=_check,
                   chapter=CHAPTER, expected=_expected))
