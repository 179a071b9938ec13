"""Claims about parameter counts and layer shapes (chapter "Counting parameters").

Every check computes the count twice, with :mod:`dlmath.params` (formulas, ``trace_shapes``)
and with PyTorch (the ``numel()`` of the parameters of a module built in the check), and
fails loudly if the two disagree; the verdict compares the claimed value with that count.
Counts and formulas are compared by the code that judges the readers' answers to the
exercises (:func:`dlmath.check.compare_number`, :func:`dlmath.check.compare_formula`), whose
verdicts :func:`dlmath._book.claims.verdict_of` turns into the claim's.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import sympy as sp
import torch
from torch import nn

from dlmath import conv
from dlmath._book.claims import Check, Claim, register, verdict_of
from dlmath._book.field import measured_receptive_field
from dlmath.check import compare_formula, compare_number
from dlmath.models import zoo
from dlmath.params import conv_params, count_params, trace_shapes

CHAPTER = "ch-counting-parameters"
R000, R001, R003, R004 = ("000_d0450d199b2953aa", "001_ce676efc9e2b3789",
                          "003_ffdd02ac6e60fc0f", "004_46edfb94b1a3c9c4")


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _agree(ours, theirs, what: str) -> int:
    if ours != theirs:
        raise RuntimeError(f"{what}: dlmath gives {ours}, torch {theirs}")
    return int(ours) if isinstance(ours, (int, sp.Integer)) else ours


def _verdict(claimed: int, verified: int) -> str:
    return verdict_of(compare_number(claimed, verified))


# ---- report 000, question 1c: one filter + 2x2 max pooling + 3 outputs -----------------

def _q1c_cases():
    """(H, W, M, N) with a valid network: the pooled map is at least 1x1."""
    for h, w, m, n in itertools.product(range(2, 10), range(2, 10), range(1, 5), range(1, 5)):
        if h - m + 1 >= 2 and w - n + 1 >= 2:
            yield h, w, m, n


def _pooled_units_claimed(h, w, m, n) -> int:
    # the report floors the product: floor((H-M+1)/2 * (W-N+1)/2)
    return ((h - m + 1) * (w - n + 1)) // 4


def _single_floor_right(a: int, b: int) -> bool:
    """Whether floor(a b / 4) = floor(a/2) floor(b/2) for sides a, b >= 2 of the map."""
    return (a % 2 == 0 and b % 2 == 0) or 2 in (a, b)


def _q1c_verdict(claimed, actual) -> tuple[str, int, tuple]:
    """Compare on all small cases: 'incomplete' if right where the single floor is.

    The single floor of the product equals the product of the floors exactly when both sides
    of the map are even or one of them is 2 (:func:`_single_floor_right`).
    """
    cases = list(_q1c_cases())
    actual = lru_cache(maxsize=None)(actual)
    grid = {"h": range(2, 10), "w": range(2, 10), "m": range(1, 5), "n": range(1, 5)}

    def valid(h, w, m, n):                      # the cases of _q1c_cases
        return h - m + 1 >= 2 and w - n + 1 >= 2

    full = compare_formula(claimed, actual, grid, valid=valid)
    stated = compare_formula(claimed, actual, grid, valid=lambda h, w, m, n: valid(h, w, m, n)
                             and _single_floor_right(h - m + 1, w - n + 1))
    wrong = [c for c in cases if claimed(*c) != actual(*c)]
    return verdict_of(full, where_stated=stated), len(wrong), (wrong or cases)[0]


def _check_000_cnn() -> Check:
    H, W, M, N = sp.symbols("H W M N", integer=True, positive=True)
    formula = zoo.single_filter_cnn_params_sym(H, W, M, N, bias=False)

    def actual(h, w, m, n):
        ours = zoo.single_filter_cnn_params_sym(h, w, m, n, bias=False)
        if (h + w + m + n) % 7 == 0:      # the symbolic formula too, on a sample of cases
            ours = _agree(ours, formula.subs({H: h, W: w, M: m, N: n}), "000 Q1c formula")
        return _agree(ours, _numel(zoo.single_filter_cnn(h, w, (m, n), bias=False)), "000 Q1c")

    verdict, n_wrong, (h, w, m, n) = _q1c_verdict(
        lambda h, w, m, n: 3 * _pooled_units_claimed(h, w, m, n) + m * n, actual)
    return Check(
        verified=r"$MN + 3\lfloor (H-M+1)/2\rfloor\,\lfloor (W-N+1)/2\rfloor$ (weights only)",
        verdict=verdict,
        note=(f"One floor per side of the pooled map, not one floor of the product: the two "
              f"agree exactly when H-M+1 and W-N+1 are both even or one of them is 2 "
              f"({n_wrong} of the small cases "
              f"checked differ, e.g. H={h}, W={w}, M={m}, N={n}: "
              f"{3 * _pooled_units_claimed(h, w, m, n) + m * n} claimed, "
              f"{actual(h, w, m, n)} in torch). Counting biases adds 1 + 3."))


def _check_000_fc() -> Check:
    def actual(h, w, m, n):
        ours = zoo.single_filter_fc_params_sym(h, w, m, n, bias=False)
        return _agree(ours, _numel(zoo.single_filter_fc(h, w, (m, n), bias=False)), "000 Q1c FC")

    def claimed(h, w, m, n):
        k = _pooled_units_claimed(h, w, m, n)
        return k * h * w + 3 * k

    verdict, n_wrong, _ = _q1c_verdict(claimed, actual)
    return Check(verified=r"$(HW + 3)\lfloor (H-M+1)/2\rfloor\,\lfloor (W-N+1)/2\rfloor$",
                 verdict=verdict,
                 note=("The formula (HW + 3) dim(h) is right, but dim(h) carries the misplaced "
                       f"floor of the convolutional count ({n_wrong} small cases differ)."))


def _check_000_compare() -> Check:
    cases = list(_q1c_cases())
    fewer = all(_numel(zoo.single_filter_cnn(h, w, (m, n), bias=False))
                < zoo.single_filter_fc_params_sym(h, w, m, n, bias=False)
                for h, w, m, n in cases)
    return Check(verified=r"difference $\lfloor\cdot\rfloor\lfloor\cdot\rfloor\,HW - MN > 0$",
                 verdict="correct" if fewer else "incorrect",
                 note=f"Strictly fewer in all {len(cases)} small cases: HW >= MN and the pooled "
                      f"map has at least one unit.")


register(Claim(id="000-Q1c-cnn-params", source=R000, question="Q1c",
               topic="weights of one M×N filter, 2×2 max pooling and a 3-unit linear layer "
                     "on an H×W image",
               claimed=r"$3\lfloor \frac{H-M+1}{2}\cdot\frac{W-N+1}{2}\rfloor + MN$",
               check=_check_000_cnn, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="000-Q1c-fc-params", source=R000, question="Q1c",
               topic="weights of the fully connected counterpart (H·W → dim h → 3)",
               claimed=r"$\dim(h)\,HW + 3\dim(h)$, $\dim(h)=\lfloor \frac{H-M+1}{2}\cdot"
                       r"\frac{W-N+1}{2}\rfloor$",
               check=_check_000_fc, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="000-Q1c-comparison", source=R000, question="Q1c",
               topic="the convolutional network has fewer weights than the fully connected one",
               claimed="fewer", check=_check_000_compare, chapter=CHAPTER, expected="correct"))


# ---- reports 001 and 003, question 2: the three-block CNN ------------------------------

@lru_cache(maxsize=None)
def _cnn_count(batch_norm: bool, global_pool: bool) -> int:
    net = zoo.three_block_cnn(batch_norm=batch_norm, global_pool=global_pool)
    return _agree(trace_shapes(net, (3, 48, 48)).total_params, _numel(net),
                  f"three-block CNN bn={batch_norm} gap={global_pool}")


def _row(batch_norm: bool, global_pool: bool, name: str) -> int:
    net = zoo.three_block_cnn(batch_norm=batch_norm, global_pool=global_pool)
    ours = trace_shapes(net, (3, 48, 48)).row(name).params
    return _agree(ours, _numel(net.get_submodule(name)), name)


def _check_count(claimed: int, batch_norm: bool, global_pool: bool, note: str = "") -> Check:
    value = _cnn_count(batch_norm, global_pool)
    return Check(verified=f"{value:,}", verdict=_verdict(claimed, value), note=note)


def _check_001_reduction() -> Check:
    before, after = _cnn_count(False, False), _cnn_count(True, True)
    pct = round(100 * (1 - after / before), 1)
    return Check(verified=f"{pct}%", verdict=_verdict(858, round(10 * pct)),
                 note=f"1 - {after:,}/{before:,}.")


def _check_001_attribution() -> Check:
    gap = _cnn_count(False, True) - _cnn_count(False, False)
    bn = _cnn_count(True, False) - _cnn_count(False, False)
    total = _cnn_count(True, True) - _cnn_count(False, False)
    share = gap / total
    return Check(verified=f"pooling {gap:+,}, batch norm {bn:+,}",
                 verdict="correct" if share > 0.5 else "incorrect",
                 note=f"Global pooling accounts for {100 * share:.1f}% of the net change "
                      f"({total:+,}); batch norm adds parameters.")


def _check_003_bn_gap() -> Check:
    value = _cnn_count(True, True)
    missing_out = _row(True, True, "head.out")
    missing_bn2 = _row(True, True, "head.bn2")
    reconstructed = value - missing_out - missing_bn2
    assert reconstructed == 752_640, reconstructed
    listed = sum(_row(True, True, n) for n in ("block1.conv", "block2.conv", "block3.conv",
                                                "block1.bn", "block2.bn", "block3.bn",
                                                "head.fc1", "head.fc2"))
    return Check(verified=f"{value:,}", verdict=_verdict(752_640, value),
                 note=(f"The claimed number is the count without the 6-way output layer "
                       f"({missing_out:,}) and without a batch norm after the second hidden layer "
                       f"({missing_bn2:,}); the terms the report lists sum to "
                       f"{listed:,} (they leave out the first hidden batch norm too), not to its "
                       f"total."))


def _check_003_flatten() -> Check:
    value = _cnn_count(False, False)
    with_bn = _cnn_count(True, False)
    reconstructed = with_bn - _row(True, False, "head.out") - _row(True, False, "head.bn2")
    assert reconstructed == 5_340_160, reconstructed
    return Check(verified=f"{value:,}", verdict=_verdict(5_340_160, value),
                 note=(f"Without batch norm the flattening network has {value:,}. The claimed "
                       f"number is the flattening network *with* batch norm ({with_bn:,}) less "
                       f"the output layer and the second hidden batch norm: batch norm was not "
                       f"removed, and the output layer is missing again."))


def _check_003_cause() -> Check:
    gap = _cnn_count(False, False) - _cnn_count(False, True)
    bn = _cnn_count(True, True) - _cnn_count(False, True)
    claimed_gap = 5_340_160 - 752_640
    net = zoo.three_block_cnn()
    flat = trace_shapes(net, (3, 48, 48)).row("head.flatten").output_shape[0]
    width = net.head.fc1.out_features
    assert claimed_gap == gap == (flat - 128) * width
    return Check(verified=f"flattening {gap:+,}; batch norm {bn:,} in all",
                 verdict="correct" if claimed_gap == bn else "incorrect",
                 note=(f"The difference of the two reported counts, {claimed_gap:,}, equals "
                       f"({flat:,} − 128)·{width:,} = {gap:,}: it is the first dense layer "
                       f"reading a "
                       f"flattened 6×6 map instead of a globally pooled one. Batch norm holds "
                       f"only {bn:,} parameters."))


for _id, _src, _q, _topic, _claimed, _args, _exp in [
    ("001-2.1-params", R001, "2.1", "trainable parameters of the three-block CNN "
     "(flattening, no batch norm, 3×48×48 input)", "5,340,742", (5_340_742, False, False),
     "correct"),
    ("001-2.2-params", R001, "2.2", "trainable parameters with batch norm and global average "
     "pooling", "756,742", (756_742, True, True), "correct"),
]:
    register(Claim(id=_id, source=_src, question=_q, topic=_topic, claimed=_claimed,
                   check=lambda a=_args: _check_count(*a), chapter=CHAPTER, expected=_exp))

register(Claim(id="001-2.2-reduction", source=R001, question="2.2",
               topic="relative reduction of the parameter count", claimed="85.8%",
               check=_check_001_reduction, chapter=CHAPTER, expected="correct"))
register(Claim(id="001-2.4-attribution", source=R001, question="2.4",
               topic="which change removes the parameters", claimed="global average pooling "
               "(the first dense layer sees 128 features)", check=_check_001_attribution,
               chapter=CHAPTER, expected="correct"))
register(Claim(id="003-Q2.3-bn-gap-params", source=R003, question="Q2.3",
               topic="trainable parameters with batch norm and global average pooling",
               claimed="752,640", check=_check_003_bn_gap, chapter=CHAPTER,
               expected="incorrect"))
register(Claim(id="003-Q2.3-flatten-params", source=R003, question="Q2.3",
               topic="trainable parameters without batch norm (flattening)",
               claimed="5,340,160", check=_check_003_flatten, chapter=CHAPTER,
               expected="incorrect"))
register(Claim(id="003-Q2.3-cause", source=R003, question="Q2.3",
               topic="what makes the count grow from the pooled to the flattened network",
               claimed="removing batch norm", check=_check_003_cause, chapter=CHAPTER,
               expected="incorrect"))


# ---- small kernels against one large kernel (001 2.5, 003 Q2.4) --------------------------

def _stack_vs_large(k: int, c: int, fields: bool = True) -> tuple[int, int, int, int]:
    """(receptive fields, counts) of (k-1)/2 stacked 3x3 layers and one k x k layer.

    The fields do not depend on the channels: they are measured with two (or skipped,
    returned as k, when ``fields`` is False).
    """
    torch.manual_seed(0)
    small, large = zoo.conv_stack(c, 3, (k - 1) // 2), zoo.conv_stack(c, k, 1)
    n_small = _agree((k - 1) // 2 * conv_params(c, c, (3, 3)), count_params(small), "stack")
    n_large = _agree(conv_params(c, c, (k, k)), count_params(large), "large")
    if not fields:
        return k, k, n_small, n_large
    return (measured_receptive_field(zoo.conv_stack(2, 3, (k - 1) // 2), 2),
            measured_receptive_field(zoo.conv_stack(2, k, 1), 2), n_small, n_large)


def _check_two_3x3() -> Check:
    rf_s, rf_l, n_s, n_l = _stack_vs_large(5, 8)
    ok = rf_s == rf_l == 5 and n_s < n_l
    return Check(verified=f"receptive field {rf_s} and {rf_l}; {n_s:,} vs {n_l:,} parameters "
                          f"for 8 channels", verdict="correct" if ok else "incorrect",
                 note="Per channel pair 18 weights against 25.")


def _check_small_more_params() -> Check:
    cases = [(k, c) for k in (5, 7, 9, 11) for c in (1, 4, 16)]
    fewer = [_stack_vs_large(k, c, fields=(c == 1)) for k, c in cases]
    always_fewer = all(rf_s == rf_l and n_s < n_l for rf_s, rf_l, n_s, n_l in fewer)
    return Check(verified="fewer parameters at equal receptive field",
                 verdict="incorrect" if always_fewer else "correct",
                 note=(f"In all {len(cases)} cases checked (k = 5 to 11, 1 to 16 channels) the "
                       f"stack of 3×3 layers has the receptive field of the k×k layer and fewer "
                       f"parameters: 9(k−1)/2 against k² weights per channel pair."))


register(Claim(id="001-2.5-small-kernels", source=R001, question="2.5",
               topic="stacked 3×3 kernels reach the receptive field of a larger kernel with "
                     "fewer parameters", claimed="fewer parameters", check=_check_two_3x3,
               chapter=CHAPTER, expected="correct"))
register(Claim(id="003-Q2.4-two-3x3", source=R003, question="Q2.4",
               topic="two stacked 3×3 convolutions against one 5×5 convolution",
               claimed="same receptive field, fewer parameters", check=_check_two_3x3,
               chapter=CHAPTER, expected="correct"))
register(Claim(id="003-Q2.4-small-kernel-cost", source=R003, question="Q2.4",
               topic="cost of reaching a large receptive field with small kernels",
               claimed="more layers, hence more parameters", check=_check_small_more_params,
               chapter=CHAPTER, expected="incorrect"))


# ---- report 004 ------------------------------------------------------------------------

def _check_004_conv_one_filter() -> Check:
    k, z = sp.symbols("k z", integer=True, positive=True)
    formula = conv_params(z, 1, (k, k))
    grid = {"k": (1, 3, 5), "z": (1, 3, 16)}

    def count(k: int, z: int) -> int:
        return _numel(nn.Conv2d(z, 1, k, device="meta"))

    ours = compare_formula(formula, count, grid)
    if not ours.ok:
        raise RuntimeError(f"conv_params disagrees with torch: {ours}")
    claimed = compare_formula("k**2*z + 1", count, grid, reference=formula)
    return Check(verified=f"${sp.latex(formula)}$", verdict=verdict_of(claimed),
                 note="Weights and the one bias.")


def _check_004_fc_same_output() -> Check:
    # the claim x y z x' y', with x' and y' the convolution's output sizes
    claimed = "x*y*z*(floor((x - k + 2*p)/s) + 1)*(floor((y - k + 2*p)/s) + 1)"
    grid = {"x": (6, 7), "y": (5, 6), "z": (1, 3), "k": (3,), "s": (1, 2), "p": (0, 1)}

    def linear(bias: bool):
        def count(x: int, y: int, z: int, k: int, s: int, p: int) -> int:
            xo, yo = conv.torch_output_size("conv2d", (x, y), k, s, p)
            return _numel(nn.Linear(x * y * z, xo * yo, bias=bias, device="meta"))
        return count

    full = compare_formula(claimed, linear(True), grid)
    weights = compare_formula(claimed, linear(False), grid)
    return Check(verified=r"$xyz\,x'y' + x'y'$", verdict=verdict_of(full, where_stated=weights),
                 note="Exact for the weights; the x'y' biases, counted for the convolution "
                      "(the +1), are left out here.")


@lru_cache(maxsize=None)
def _cifar_rows() -> dict[str, int]:
    net = zoo.cifar_cnn()
    trace = trace_shapes(net, (3, 32, 32))
    return {r.name: _agree(r.params, _numel(net.get_submodule(r.name)), r.name)
            for r in trace.rows if r.params}


def _check_004_layer(name: str, claimed: int) -> Check:
    value = _cifar_rows()[name]
    net = zoo.cifar_cnn()
    layer = net.get_submodule(name)
    biases = layer.bias.numel()
    note = (f"The value leaves out the {biases:,} biases ({value:,} − {biases:,} = {claimed:,})"
            + (", although the formula shown has the +1." if name.startswith("conv") else ".")
            if value - biases == claimed else "")
    return Check(verified=f"{value:,}", verdict=_verdict(claimed, value), note=note)


def _check_004_total() -> Check:
    net = zoo.cifar_cnn()
    value = _agree(sum(_cifar_rows().values()), count_params(net), "cifar total")
    biases = sum(m.bias.numel() for m in net.modules() if getattr(m, "bias", None) is not None)
    return Check(verified=f"{value:,}", verdict=_verdict(1_190_000, value),
                 note=f"The sum of the per-layer weights without the {biases:,} biases.")


def _check_004_shapes() -> Check:
    net = zoo.cifar_cnn().eval()
    trace = trace_shapes(net, (3, 32, 32))
    ours = [trace.row(n).output_shape for n in ("conv1", "pool1", "conv2", "pool2", "conv3",
                                                 "pool3", "fc4", "fc5")]
    x = torch.zeros(1, 3, 32, 32)
    theirs = []
    for layer in net:
        x = layer(x)
        if not isinstance(layer, (nn.ReLU, nn.Flatten)):
            theirs.append(tuple(x.shape[1:]))
    _agree(ours, theirs, "CIFAR CNN shapes")
    ours = [(*s[1:], s[0]) for s in ours]          # the report writes height × width × channels
    claimed = [(32, 32, 32), (16, 16, 32), (16, 16, 64), (8, 8, 64), (8, 8, 64), (4, 4, 64),
               (1000,), (10,)]
    return Check(verified=", ".join("×".join(map(str, s)) for s in ours),
                 verdict="correct" if ours == claimed else "incorrect",
                 note="Padding 2 keeps the size of a 5×5 convolution; each pooling halves it.")


register(Claim(id="004-I-Q1-conv-weights", source=R004, question="I-Q1",
               topic="parameters of one k×k convolution filter over z input channels",
               claimed=r"$k^2 z + 1$", check=_check_004_conv_one_filter, chapter=CHAPTER,
               expected="correct"))
register(Claim(id="004-I-Q1-fc-weights", source=R004, question="I-Q1",
               topic="parameters of a fully connected layer with the same output as that filter",
               claimed=r"$x\,y\,z\,x'\,y'$", check=_check_004_fc_same_output, chapter=CHAPTER,
               expected="incomplete"))
register(Claim(id="004-II-Q10-shapes", source=R004, question="II-Q10",
               topic="output sizes of the CIFAR-10 network's layers",
               claimed="32×32×32, 16×16×32, 16×16×64, 8×8×64, 8×8×64, 4×4×64, 1000, 10",
               check=_check_004_shapes, chapter=CHAPTER, expected="correct"))
for _name, _what, _shown, _claimed in [
        ("conv1", "32 filters 5×5 over 3 channels", r"$32(5\cdot5\cdot3+1) = ", 2_400),
        ("conv2", "64 filters 5×5 over 32 channels", r"$64(5\cdot5\cdot32+1) = ", 51_200),
        ("conv3", "64 filters 5×5 over 64 channels", r"$64(5\cdot5\cdot64+1) = ", 102_400),
        ("fc4", "fully connected 1024 → 1000", r"$4\cdot4\cdot64\cdot1000 = ", 1_024_000),
        ("fc5", "fully connected 1000 → 10", r"$10\cdot1000 = ", 10_000)]:
    register(Claim(id=f"004-II-Q10-{_name}", source=R004, question="II-Q10",
                   topic=f"parameters of {_name} ({_what})",
                   claimed=_shown + f"{_claimed:,}".replace(",", "{,}") + "$",
                   check=lambda n=_name, c=_claimed: _check_004_layer(n, c), chapter=CHAPTER,
                   expected="incorrect"))
register(Claim(id="004-II-Q11-total", source=R004, question="II-Q11",
               topic="total parameters of the CIFAR-10 network", claimed="1,190,000",
               check=_check_004_total, chapter=CHAPTER, expected="incorrect"))
