"""Claims about what convolutions and pooling do with translations and spatial structure.

Chapter "Why convolutions" (:ref:`ch-why-convolutions`).  Each check measures: equivariance
errors of convolutions (exact integer arithmetic, so "zero" means zero), the change of
pooled outputs under a one-pixel shift, layers run on inputs of other sizes, linear heads
rewritten as convolutions and compared with ``nn.Linear``, and a small training run through
:mod:`dlmath.engine.train` on pixel-permuted digits.  Where a claim is a tensor identity or a
size formula, the comparison is :func:`dlmath.check.compare_tensor` or
:func:`dlmath.check.compare_formula` (PyTorch as the oracle), and
:func:`dlmath._book.claims.verdict_of` turns it into the claim's verdict.  The measurement
functions are shared with the chapter, so the prose and the errata quote the same numbers.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from dlmath import conv
from dlmath.models import zoo
from dlmath import equivariance as eq
from dlmath.data import pixel_permuted_digits
from dlmath.models import image_mlp
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath._book.stats import welch
from dlmath.check import compare_formula, compare_tensor
from dlmath._validate import one_torch_thread
from dlmath.toeplitz import conv_matrix, vec

CHAPTER = "ch-why-convolutions"
R000, R001, R003, R004 = ("000_d0450d199b2953aa", "001_ce676efc9e2b3789",
                          "003_ffdd02ac6e60fc0f", "004_46edfb94b1a3c9c4")
DT = torch.float64


def integer_images(shape, seed: int = 0, low: int = -3, high: int = 4) -> torch.Tensor:
    """Float64 images with small integer values, so sums of products are exact."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, tuple(shape), generator=g).to(DT)


@lru_cache(maxsize=4)
def digit_images(size: int = 32, count: int = 64) -> torch.Tensor:
    """The first ``count`` test digits resized to ``size`` x ``size``, float64 ``(N, 1, H, W)``."""
    from dlmath.data import digits

    return digits(size=size).test.inputs[0][:count].to(DT)


def conv_equivariance(size: int = 32, kernel: int = 5, shift=(6, 10), seed: int = 0) -> dict:
    """Equivariance of a "same" convolution to a circular shift, circular against zero padding.

    Integer images and weights make every sum exact in float64.  Returns the image ``x`` and
    kernel ``w``, the error maps and the band; the maximum error
    with circular padding; with zero padding the number of output pixels with an error, the
    size of :func:`dlmath.equivariance.equivariance_border_band` and the maximum error
    outside it; and, for a stride-2 circular convolution, the residual of
    :func:`dlmath.equivariance.shift_sensitivity` for a shift by 1 and by 2 pixels.
    """
    x = integer_images((1, 1, size, size), seed)
    w = integer_images((1, 1, kernel, kernel), seed + 1, -2, 3)
    r = (kernel - 1) // 2
    circular = lambda z: F.conv2d(F.pad(z, (r, r, r, r), mode="circular"), w)  # noqa: E731
    zeros = lambda z: F.conv2d(z, w, padding=r)  # noqa: E731
    err_c = eq.equivariance_error(circular, x, shift)[0, 0]
    err_z = eq.equivariance_error(zeros, x, shift)[0, 0]
    band = eq.equivariance_border_band(size, kernel, shift)
    strided = lambda z: F.conv2d(F.pad(z, (r, r, r, r), mode="circular"), w, stride=2)  # noqa: E731
    return dict(
        x=x, w=w, error_circular=err_c, error_zeros=err_z, band=band,
        max_circular=float(err_c.abs().max()),
        wrong_zeros=int((err_z != 0).sum()), band_size=int(band.sum()),
        max_outside_band=float(err_z[~band].abs().max()) if (~band).any() else 0.0,
        stride2_residual_1=eq.shift_sensitivity(strided, x, (0, 1)).residual,
        stride2_residual_2=eq.shift_sensitivity(strided, x, (0, 2)).residual,
    )


def impulse_invariance_fraction(kernel: int = 2, shift=(0, 1), size: int = 8) -> float:
    """Fraction of impulse positions whose ``kernel``-square max-pooled image survives ``shift``."""
    m = eq.impulse_shift_invariance(lambda z: eq.pool2d_circular(z, kernel), size, shift)
    return float(m.double().mean())


def pooling_shift_change(size: int = 32, count: int = 64) -> dict:
    """Relative change under a one-pixel circular shift of digits: raw, max- and avg-pooled.

    Also the fraction of max-pooled output values (2x2, stride 2) that do not change.
    """
    x = digit_images(size, count)
    out = {}
    for name, f in (("raw", lambda z: z),
                    ("max", lambda z: eq.pool2d_circular(z, 2, 2, op="max")),
                    ("avg", lambda z: eq.pool2d_circular(z, 2, 2, op="avg")),
                    ("global_max", lambda z: z.amax((-2, -1), keepdim=True))):
        out[name] = eq.shift_sensitivity(f, x, (0, 1)).change
    pooled = eq.pool2d_circular(x, 2, 2)
    moved = eq.pool2d_circular(eq.translate(x, (0, 1)), 2, 2)
    out["max_unchanged_fraction"] = float((pooled == moved).double().mean())
    return out


def any_size_runs(layer: nn.Module, channels: int, sizes) -> list[int]:
    """The square input sizes ``(1, channels, n, n)`` on which ``layer`` runs."""
    ok = []
    c = channels
    for n in sizes:
        try:
            with torch.no_grad():
                layer(torch.zeros(1, c, n, n))
        except RuntimeError:
            continue
        ok.append(n)
    return ok


def _check_any_resolution() -> Check:
    sizes = range(1, 41)
    conv_layer = nn.Conv2d(3, 8, 3)
    linear_layer = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8))
    conv_ok = any_size_runs(conv_layer, 3, sizes)
    lin_ok = any_size_runs(linear_layer, 3, sizes)
    # "any resolution" leaves out the lower bound: inputs smaller than the kernel fail
    verdict = ("incorrect" if lin_ok != [16] else "correct" if conv_ok == list(sizes)
               else "incomplete" if conv_ok == list(range(3, 41)) else "incorrect")
    return Check(verified="a convolution runs on every input at least as large as its kernel; "
                          "a linear layer on one size only",
                 verdict=verdict,
                 note=f"A 3×3 convolution ran on {len(conv_ok)} of the {len(sizes)} square sizes "
                      f"1 to 40, all from 3 up (its weights do not depend on the size, "
                      f"but an input smaller than the kernel has no valid position); a linear "
                      f"layer built for 16×16 ran only on {lin_ok}.")


def _check_conv_equivariant() -> Check:
    c = conv_equivariance()
    circular_exact = c["max_circular"] == 0.0
    fails = c["wrong_zeros"] > 0 or c["stride2_residual_1"] > 0
    verdict = ("incomplete" if circular_exact and fails else
               "correct" if circular_exact else "incorrect")
    return Check(verified=r"$f(T_t x) = T_t f(x)$ exactly for circular padding and stride 1; "
                          "not near the border with zero padding, not for shifts the stride "
                          "does not divide",
                 verdict=verdict,
                 note=f"A 5×5 convolution of a 32×32 image shifted by (6, 10): error exactly "
                      f"{c['max_circular']:g} with circular padding; with zero padding "
                      f"{c['wrong_zeros']} of 1024 output pixels are wrong, all within the "
                      f"{c['band_size']}-pixel border band; with stride 2 a one-pixel shift "
                      f"leaves a relative residual of {c['stride2_residual_1']:.2f} from every "
                      f"translate of the output (a two-pixel shift: "
                      f"{c['stride2_residual_2']:g}).")


def _check_maxpool_invariant() -> Check:
    frac = impulse_invariance_fraction(2, (0, 1))
    p = pooling_shift_change()
    verdict = "correct" if frac == 1 else ("incorrect" if frac == 0 else "incomplete")
    return Check(verified="invariant only to shifts that keep each maximum inside its window",
                 verdict=verdict,
                 note=f"2×2 max pooling, one-pixel shift: the output of an isolated feature is "
                      f"unchanged for {frac:.0%} of its positions; on digits "
                      f"{p['max_unchanged_fraction']:.0%} of the pooled values stay the same and "
                      f"the pooled map changes by {p['max']:.0%} of its norm. Only global "
                      f"pooling is invariant to every (circular) shift.")


def _check_robust_to_small_shifts(ops=("max",)) -> Check:
    p = pooling_shift_change()
    less = all(0 < p[o] < p["raw"] for o in ops)
    names = " and ".join(f"{o} pooling {p[o]:.3f}" for o in ops)
    return Check(verified="smaller change, not none",
                 verdict="correct" if less else "incorrect",
                 note=f"Relative change of 64 digits (32×32) under a one-pixel shift: the image "
                      f"itself {p['raw']:.3f}, after 2×2 {names}. Pooling damps the change, "
                      f"it does not remove it.")


def fc_computes_conv(seed: int = 3):
    """A linear layer whose weights are a convolution's matrix, against ``F.conv2d``.

    Two 3x3 filters with "same" zero padding on an 8x8 integer image (exact in float64);
    the linear layer ``64 -> 128`` gets :func:`dlmath.toeplitz.conv_matrix` as its weight.
    Returns the :func:`dlmath.check.compare_tensor` verdict (exact: no tolerance) of its
    output against the convolution's, flattened channel by channel.
    """
    w = integer_images((2, 1, 3, 3), seed)
    x = integer_images((1, 1, 8, 8), seed + 1)
    M = conv_matrix(w, (1, 8, 8), padding=1)  # (2*64, 64)
    fc = nn.Linear(64, 128, bias=False, dtype=DT)
    with torch.no_grad():
        fc.weight.copy_(M)
        return compare_tensor(fc(vec(x[0])[None])[0], vec(F.conv2d(x, w, padding=1)[0]),
                              rtol=0.0, atol=0.0)


def _check_fc_local_patterns() -> Check:
    same = fc_computes_conv()
    # the claim denies what the comparison shows: a linear layer can compute a convolution
    return Check(verified="a fully connected layer can compute any convolution (weights = the "
                          "convolution matrix)",
                 verdict="incorrect" if verdict_of(same) == "correct" else "correct",
                 note="A linear layer 64 → 128 whose weight matrix is the matrix of a two-filter "
                      "3×3 convolution reproduces the convolution exactly; convolution restricts "
                      "a fully connected layer (locality, shared weights), it adds no ability.")


def _check_conv_local_only() -> Check:
    # conv1, pool1, conv2, pool2, conv3 of the network of report 004: (kernel, stride, padding)
    stack = [(5, 1, 2), (2, 2, 0), (5, 1, 2), (2, 2, 0), (5, 1, 2)]
    rf = conv.receptive_field(stack)
    g = conv.unit_input_gradient(stack, 32)  # (32,): one axis, pooling as a 2-tap filter
    return Check(verified=f"one layer sees {stack[0][0]}×{stack[0][0]} pixels; the third "
                          f"convolution of the report's network sees {rf.size}×{rf.size}",
                 verdict="incomplete" if rf.size >= 32 else "correct",
                 note=f"True of a single layer; stacking widens the receptive field to "
                      f"{rf.size} pixels after three 5×5 convolutions and two poolings, as "
                      f"wide as the 32×32 image (by a gradient check, one unit depends on "
                      f"{int((g != 0).sum())} of the 32 input positions of an axis; the rest of "
                      f"its window lies in the padding).")


def _check_any_size_until_fc() -> Check:
    net = zoo.cifar_cnn(channels=(4, 8, 8), hidden=16)  # the layers of report 004, fewer channels
    features = net[:9]
    sizes = range(1, 65)
    feat_ok = any_size_runs(features, 3, sizes)
    full_ok = any_size_runs(net, 3, sizes)
    # "any size" holds only from the smallest size the three poolings accept
    verdict = ("incorrect" if full_ok != list(range(32, 40)) else
               "correct" if feat_ok == list(sizes) else
               "incomplete" if feat_ok == list(range(8, sizes[-1] + 1)) else "incorrect")
    return Check(verified=f"the convolution and pooling layers run on every size from "
                          f"8×8 up (tried 1 to {sizes[-1]}); the network "
                          f"with its linear head only where the last map is 4×4",
                 verdict=verdict,
                 note=f"The layers of the report's network: its features ran on the "
                      f"{len(feat_ok)} sizes from 8 to {sizes[-1]} and failed on 1 to 7 (three 2×2 poolings need at least 8 pixels); the whole network ran on "
                      f"{full_ok[0]} to {full_ok[-1]} only (the floors of the three poolings "
                      f"all give a 4×4 map there).")


def fc_head_as_conv(seed: int = 0) -> dict:
    """The report 004 network (one channel, 32x32, float64) and its fully convolutional form.

    Returns the maximum difference of the logits, the logits themselves (``logits`` of the
    network, ``fcn_logits`` of its rewritten form, ``(3, 10)``), and for square sizes
    32..64 the score map sizes measured and predicted by composing the output size of each
    layer (the map is floor(H/8) wide, the head kernel 4, so ``floor(H/8) - 3``).
    """
    torch.manual_seed(seed)
    net = zoo.cifar_cnn(in_channels=1, channels=(4, 8, 8), hidden=16).to(DT).eval()
    fcn = eq.fully_convolutional(net, (1, 32, 32))
    x = torch.randn(3, 1, 32, 32, dtype=DT)
    with torch.no_grad():
        logits, fcn_logits = net(x), fcn(x).flatten(1)
        diff = float((fcn_logits - logits).abs().max())
        measured, predicted = [], []
        for n in range(32, 65):
            measured.append(fcn(torch.zeros(1, 1, n, n, dtype=DT)).shape[-1])
            fmap = n
            for _ in range(3):
                fmap = conv.conv_output_size(conv.conv_output_size(fmap, 5, padding=2), 2, 2)
            predicted.append(conv.conv_output_size(fmap, 4))
    return dict(max_diff=diff, logits=logits, fcn_logits=fcn_logits, measured=measured,
                predicted=predicted, sizes=list(range(32, 65)))


def _check_fc_as_conv() -> Check:
    r = fc_head_as_conv()
    same = compare_tensor(r["fcn_logits"], r["logits"], rtol=0.0, atol=1e-12)
    return Check(verified="a convolution with kernel = the map's H×W, no padding, one filter per "
                          "output",
                 verdict=verdict_of(same),
                 note=f"The report's network with its two linear layers rewritten as a 4×4 and a "
                      f"1×1 convolution: largest logit difference {r['max_diff']:.1e}. A linear "
                      f"layer after another one becomes a 1×1 convolution.")


def _check_fcn_output_size() -> Check:
    r = fc_head_as_conv()
    measured = dict(zip(r["sizes"], r["measured"]))  # the oracle: the network's own output
    if r["measured"] != r["predicted"]:
        raise RuntimeError("the composed output sizes disagree with the network")
    full = compare_formula("floor(H/8) - 3", lambda H: measured[H], {"H": r["sizes"]})
    return Check(verified=r"a map of $\lfloor H/8 \rfloor - 3$ by $\lfloor W/8 \rfloor - 3$ "
                          r"class scores",
                 verdict=verdict_of(full),
                 note=f"The size formula (composed from the output size of each layer) agrees with "
                      f"the fully convolutional network on all {len(r['sizes'])} square inputs "
                      f"from 32 to 64; each score is the classifier on one window, 8 pixels apart.")


def _check_pooling_halves() -> Check:
    sizes = range(1, 65)
    torch_size = lambda n: conv.torch_output_size("maxpool2d", n, 2, 2)  # noqa: E731
    full = compare_formula("n/2", torch_size, {"n": sizes})
    even = compare_formula("n/2", torch_size, {"n": sizes}, valid=lambda n: n % 2 == 0)
    exact = [n for n in sizes if n % 2 == 0]
    return Check(verified=r"$\lfloor H/2 \rfloor \times \lfloor W/2 \rfloor$",
                 verdict=verdict_of(full, where_stated=even),
                 note=f"For sizes 1 to 64, 2×2 pooling with stride 2 halves exactly the "
                      f"{len(exact)} even sizes; an odd size loses its last row or column.")


#: The pixel permutations and the seeds of the spatial-structure experiment.
PERMUTATION_SEEDS = (7, 3)
SEEDS = (0, 1, 2, 3, 4)
#: Train / validation / test fractions of the digits: few training images, where a prior
#: on the arrangement of the pixels matters most.
FRACTIONS = (0.1, 0.2, 0.7)


def permutation_configs(seeds=SEEDS, epochs: int = 40, permutations=PERMUTATION_SEEDS[:1]
                        ) -> dict:
    """Training configs: an MLP and a CNN, on the digits and on pixel-permuted copies.

    Keys ``(model, data)`` with model ``"mlp"`` or ``"cnn"`` and data ``"digits"`` or the
    permutation seed (an int).  The digits are split with :data:`FRACTIONS`.  A permuted MLP
    absorbs its permutation into its initial first layer
    (:func:`dlmath.models.image_mlp`), so with the same seed it takes the same steps as
    the MLP on the digits.  Both networks are small (8x8 inputs, Adam, batch 32).
    """
    from dlmath.engine import train

    data = {"digits": train.Ref(pixel_permuted_digits, permutation_seed=None,
                                fractions=FRACTIONS)}
    models = {("mlp", "digits"): train.Ref(image_mlp, hidden=(64,))}
    cnn = train.Ref(zoo.three_block_cnn, in_channels=1, size=8, channels=(16, 32), hidden=(64,),
                    num_classes=10, dropout=0.0)
    models[("cnn", "digits")] = cnn
    for p in permutations:
        data[p] = train.Ref(pixel_permuted_digits, permutation_seed=p, fractions=FRACTIONS)
        models[("mlp", p)] = train.Ref(image_mlp, hidden=(64,), pixel_permutation_seed=p)
        models[("cnn", p)] = cnn
    return {key: train.TrainConfig(model=ref, data=data[key[1]], optimizer=train.Adam(lr=3e-3),
                                   epochs=epochs, batch_size=32, seeds=tuple(seeds))
            for key, ref in models.items()}


def permutation_experiment(seeds=SEEDS, epochs: int = 40,
                           permutations=PERMUTATION_SEEDS[:1]) -> dict:
    """Run (or load from the results store) the configs of :func:`permutation_configs`."""
    from dlmath.engine import train

    return {key: train.run(cfg, progress=False)
            for key, cfg in permutation_configs(seeds, epochs, permutations).items()}


def _check_no_spatial_structure() -> Check:
    res = permutation_experiment()
    p = PERMUTATION_SEEDS[0]
    acc = {key: r.values("test_accuracy") for key, r in res.items()}
    mlp_same = bool(abs(acc[("mlp", "digits")] - acc[("mlp", p)]).max() < 1e-9)
    cnn_drop = welch(acc[("cnn", "digits")], acc[("cnn", p)])      # digits - permuted
    cnn_worse = welch(acc[("cnn", p)], acc[("mlp", p)])            # CNN - MLP, permuted
    holds = (mlp_same and cnn_drop.diff > 0 and cnn_drop.detectable()
             and cnn_worse.diff < 0 and cnn_worse.detectable())
    n = len(res[("mlp", "digits")].seeds)
    return Check(verified="the MLP is unaffected by a fixed pixel permutation, the CNN loses "
                          "accuracy (Welch's test over the seeds)",
                 verdict="correct" if holds else "incorrect",
                 note=f"Digits (10 % of them for training), {n} seeds: the MLP's test accuracy "
                      f"is the same on the permuted digits (same seed, permutation absorbed by "
                      f"its first layer), {acc[('mlp', p)].mean():.3f}; the CNN's falls from "
                      f"{acc[('cnn', 'digits')].mean():.3f} to {acc[('cnn', p)].mean():.3f} "
                      f"(digits minus permuted {cnn_drop.text()}, {cnn_drop.p_text()}, Welch's "
                      f"t-test), below the MLP's (CNN minus MLP {cnn_worse.text()}, "
                      f"{cnn_worse.p_text()}). Its "
                      f"features are not meaningless, only its prior is wrong: it stays far "
                      f"above chance (0.1).")


_claims = [
    ("000-Q2.1-any-resolution", R000, "Q2.1",
     "a convolution layer accepts images of any size, a fully connected one a fixed size",
     "any resolution for the convolution, a fixed one for the fully connected layer",
     _check_any_resolution, "incomplete"),
    ("000-Q2.3-no-spatial-structure", R000, "Q2.3",
     "convolutional networks on data whose arrangement carries no meaning",
     "a CNN is not the best fit there; it would function worse", _check_no_spatial_structure,
     "correct"),
    ("000-Q2.2-conv-equivariant", R000, "Q2.2", "translation equivariance of a convolution layer",
     "a convolutional layer is equivariant", _check_conv_equivariant, "incomplete"),
    ("000-Q2.2-maxpool-invariant", R000, "Q2.2", "translation invariance of max pooling",
     "the max pooling layer is invariant", _check_maxpool_invariant, "incomplete"),
    ("001-2.5-pooling-translations", R001, "2.5",
     "max pooling and small translations of the input",
     "max pooling makes the network more robust to small translations",
     _check_robust_to_small_shifts, "correct"),
    ("001-2.5-pooling-halves", R001, "2.5", "output size of 2×2 pooling with stride 2",
     "each pooling layer halves the spatial dimensions", _check_pooling_halves, "incomplete"),
    ("003-Q2.4-pooling-translations", R003, "Q2.4",
     "max and average pooling and small translations of the input",
     "pooling makes the network more robust to small translations",
     lambda: _check_robust_to_small_shifts(("max", "avg")), "correct"),
    ("004-I-Q2-fc-local-patterns", R004, "I-Q2",
     "whether a fully connected layer can detect local patterns",
     "a fully connected layer cannot detect local patterns", _check_fc_local_patterns,
     "incorrect"),
    ("004-I-Q2-conv-local-only", R004, "I-Q2", "what part of the image a convolution sees",
     "a convolution only accesses local information, never the whole image",
     _check_conv_local_only, "incomplete"),
    ("004-I-Q3-pooling-slightly-invariant", R004, "I-Q3",
     "spatial pooling and translations", "pooling makes the output slightly invariant to "
     "translations", _check_robust_to_small_shifts, "correct"),
    ("004-I-Q4-any-size-until-fc", R004, "I-Q4",
     "which layers accept an input of another size",
     "convolutions and poolings accept any size, the fully connected layer does not",
     _check_any_size_until_fc, "incomplete"),
    ("004-I-Q5-fc-as-conv", R004, "I-Q5", "a fully connected layer as a convolution",
     "a convolution with kernel = input size, no padding, as many filters as outputs",
     _check_fc_as_conv, "correct"),
    ("004-I-Q6-fcn-output-size", R004, "I-Q6",
     "output of the network with its head made convolutional, on a larger input",
     "an output whose size depends on the input size", _check_fcn_output_size, "correct"),
]

for _id, _src, _q, _topic, _claimed, _check, _expected in _claims:
    register(Claim(id=_id, source=_src, question=_q, topic=_topic, claimed=_claimed,
                   check=one_torch_thread()(_check), chapter=CHAPTER, expected=_expected))
