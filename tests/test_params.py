"""dlmath.params against torch: parameter tensors' numel() and the shapes of real forward passes.

The oracles are PyTorch's own layers: every per-layer formula is compared with the sizes of
the parameters torch allocates, and every traced shape with the shape a forward pass
produces (random stacks and input sizes drawn by hypothesis).  Symbolic traces are checked
by substituting the sizes torch ran with.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import pytest
import sympy as sp
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from dlmath import params as P

H, W, L = sp.symbols("H W L", integer=True, positive=True)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def torch_shapes(module: nn.Module, *inputs: torch.Tensor) -> dict[str, tuple]:
    """Per-example output shape of every leaf module, from a real forward pass (batch 2)."""
    shapes: dict[str, tuple] = {}
    hooks = []
    for name, m in module.named_modules():
        if name and not list(m.children()) or isinstance(m, (nn.LSTM, nn.GRU, nn.RNN,
                                                               nn.MultiheadAttention)):
            def hook(mod, args, out, name=name):
                out = out[0] if isinstance(out, tuple) else out
                shapes.setdefault(name, tuple(out.shape[1:]))
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module.eval()(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def check_against_torch(module: nn.Module, shape: tuple, dtype=torch.float64) -> P.ShapeTrace:
    """Trace `module` on `shape`; compare every row with torch; return the trace."""
    if dtype is torch.long:
        x = torch.randint(0, 5, (2, *shape))
    else:
        x = torch.randn(2, *shape, dtype=dtype)
    module = module.to(torch.float64)
    try:
        expected = torch_shapes(module, x)
    except (RuntimeError, ValueError, IndexError):
        with pytest.raises(ValueError):
            P.trace_shapes(module, shape)
        return None
    trace = P.trace_shapes(module, shape)
    for row in trace.rows:
        if row.name in expected:
            assert row.output_shape == expected[row.name], row
            if not row.shared:
                assert row.params == numel(module.get_submodule(row.name)), row
    assert trace.total_params == numel(module) == P.count_params(module)
    assert trace.constraints == ()
    return trace


# --------------------------------------------------------------------------------------
# Per-layer formulas against the parameters torch allocates
# --------------------------------------------------------------------------------------

@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.lists(st.integers(1, 4), min_size=3, max_size=3), st.booleans(), st.booleans())
def test_conv_params_matches_torch(dims, cin_per_group, cout_per_group, groups, ks, bias,
                                   transposed):
    cin, cout, k = cin_per_group * groups, cout_per_group * groups, tuple(ks[:dims])
    cls = [[nn.Conv1d, nn.Conv2d, nn.Conv3d], [nn.ConvTranspose1d, nn.ConvTranspose2d,
                                               nn.ConvTranspose3d]][transposed][dims - 1]
    layer = cls(cin, cout, k, groups=groups, bias=bias)
    assert P.conv_params(cin, cout, k, groups=groups, bias=bias) == numel(layer)
    # the symbolic formula, evaluated at the same sizes
    C, D = sp.symbols("C D", integer=True, positive=True)
    ksym = sp.symbols(f"k1:{dims + 1}", integer=True, positive=True)
    expr = P.conv_params(C * groups, D * groups, ksym, groups=groups, bias=bias)
    values = {C: cin_per_group, D: cout_per_group, **dict(zip(ksym, k))}
    assert expr.subs(values) == numel(layer)


@given(st.integers(1, 50), st.integers(1, 50), st.booleans())
def test_linear_params_matches_torch(n, m, bias):
    assert P.linear_params(n, m, bias) == numel(nn.Linear(n, m, bias=bias))


@given(st.integers(1, 40), st.booleans(), st.lists(st.integers(1, 5), min_size=1, max_size=3),
       st.booleans(), st.booleans())
def test_norm_and_embedding_params_match_torch(c, affine, shape, elementwise, bias):
    assert P.batchnorm_params(c, affine) == numel(nn.BatchNorm2d(c, affine=affine))
    ln = nn.LayerNorm(shape, elementwise_affine=elementwise, bias=bias)
    assert P.layernorm_params(tuple(shape), elementwise, bias) == numel(ln)
    assert P.embedding_params(c, shape[0]) == numel(nn.Embedding(c, shape[0]))


@given(st.sampled_from(["LSTM", "GRU", "RNN"]), st.integers(1, 6), st.integers(2, 6),
       st.integers(1, 3), st.booleans(), st.booleans(), st.integers(0, 5))
def test_rnn_params_matches_torch(mode, inp, hidden, layers, bias, bidirectional, proj):
    proj = proj % hidden if mode == "LSTM" else 0          # proj_size < hidden_size
    kw = {"proj_size": proj} if mode == "LSTM" else {}
    layer = getattr(nn, mode)(inp, hidden, num_layers=layers, bias=bias,
                              bidirectional=bidirectional, **kw)
    count = P.rnn_params(inp, hidden, layers, mode, bias, bidirectional, proj)
    assert count == numel(layer)
    # the closed form G H (I + H + 2) of one unidirectional biased layer
    if layers == 1 and bias and not bidirectional and not proj:
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[mode]
        assert count == gates * hidden * (inp + hidden + 2)


@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 6)))
def test_attention_params_matches_torch(heads, head_dim, bias, bias_kv, kdim, vdim):
    e = heads * head_dim
    layer = nn.MultiheadAttention(e, heads, bias=bias, add_bias_kv=bias_kv, kdim=kdim, vdim=vdim)
    assert P.attention_params(e, heads, bias, kdim, vdim, bias_kv) == numel(layer)


def test_attention_params_is_four_e_squared_plus_four_e():
    E = sp.Symbol("E", integer=True, positive=True)
    assert sp.expand(P.attention_params(E) - (4 * E**2 + 4 * E)) == 0


@pytest.mark.parametrize("cls, dims", [(nn.Conv1d, 1), (nn.Conv2d, 2), (nn.Conv3d, 3)])
def test_a_single_kernel_size_with_dims_is_what_torch_layers_mean(cls, dims):
    assert P.conv_params(3, 8, 5, dims=dims) == numel(cls(3, 8, 5))
    assert P.conv_params(3, 8, (5,) * dims, dims=dims) == numel(cls(3, 8, 5))


@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 5), st.booleans())
def test_a_single_kernel_size_counts_conv2d_as_torch_does(cin, cout, k, bias):
    # nn.Conv2d(3, 32, 3) reads one kernel size as (3, 3); so does conv_params by default
    assert P.conv_params(cin, cout, k, bias=bias) == numel(nn.Conv2d(cin, cout, k, bias=bias))


@pytest.mark.parametrize("cls", [nn.Conv1d, nn.Conv2d, nn.Conv3d,
                                 nn.ConvTranspose1d, nn.ConvTranspose3d])
def test_a_kernel_size_tuple_gives_its_dimension(cls):
    layer = cls(4, 6, 3, groups=2)
    assert P.conv_params(4, 6, layer.kernel_size, groups=2) == numel(layer)


@pytest.mark.parametrize("call, message", [
    (lambda: P.conv_params(3, 32, (5, 5), groups=2), "not divisible by groups"),
    (lambda: P.conv_params(0, 32, (3,)), "in_channels must be >= 1, got 0"),
    (lambda: P.conv_params(3, 32, (3, 3), dims=3), r"kernel_size must have dims=3 entries"),
    (lambda: P.conv_params(3, 32, 3, dims=0), "dims must be >= 1"),
    (lambda: P.conv_params(3, 32, 3, dims=True), "dims must be an int"),
    (lambda: P.conv_params(3, 32, 3, bias=1), "bias must be True or False"),
    (lambda: P.conv_params(3, 32, 3, groups=0), "groups must be >= 1"),
    (lambda: P.conv_params(3, 32, ()), "kernel_size must have at least one entry"),
    (lambda: P.linear_params(2.5, 3), "in_features must be an int or a sympy expression"),
    (lambda: P.rnn_params(3, 4, mode="LSTMx"), "mode must be one of"),
    (lambda: P.rnn_params(3, 4, mode="GRU", proj_size=2), "proj_size is only defined"),
    (lambda: P.rnn_params(3, 4, num_layers=0), "num_layers must be >= 1"),
    (lambda: P.attention_params(10, num_heads=3), "not divisible by num_heads"),
    (lambda: P.batchnorm_params(4, affine=1), "affine must be True or False"),
])
def test_formula_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# --------------------------------------------------------------------------------------
# count_params
# --------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016), written as in torchvision."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def lenet5() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5),
                         nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120),
                         nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def test_well_known_architectures():
    # Published counts: ResNet-18 11,689,512 (torchvision), LeNet-5 as usually rebuilt 61,706.
    with torch.device("meta"):
        resnet = ResNet18()
    assert P.count_params(resnet) == numel(resnet) == 11_689_512
    trace = P.trace_shapes(resnet, (3, 224, 224))
    assert trace.total_params == 11_689_512 and trace.output_shape == (1000,)
    assert trace.row("stem.3").output_shape == (64, 56, 56)
    assert trace.row("layers.7.conv2").output_shape == (512, 7, 7)
    sym = P.trace_shapes(resnet, (3, H, W))          # global pooling: count independent of H, W
    assert sym.total_params == 11_689_512 and sym.constraints == ()
    small = check_against_torch(ResNet18(10), (3, 45, 70))
    assert sym.subs({H: 45, W: 70}).row("layers.7.bn2").output_shape == \
        small.row("layers.7.bn2").output_shape == (512, 2, 3)
    net = lenet5()
    assert P.count_params(net) == 61_706
    check_against_torch(net, (1, 32, 32))


def test_count_params_trainable_shared_and_lazy():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    net[0].weight.requires_grad_(False)
    assert P.count_params(net) == numel(net) - 12
    assert P.count_params(net, trainable_only=False) == numel(net)
    trace = P.trace_shapes(net, (4,))
    assert trace.trainable_params == P.count_params(net)
    assert trace.total_params == numel(net)
    tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    tied[1].weight = tied[0].weight                      # weight tying
    assert P.count_params(tied) == 40
    assert P.trace_shapes(tied, (5,)).total_params == 40
    with pytest.raises(ValueError, match="lazy"):
        P.count_params(nn.LazyLinear(3))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        P.count_params([nn.Linear(2, 2)])


def test_lazy_linear_takes_the_flattened_size():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(5))
    f = P.count_params_sym(net, (1, H, W))
    for h, w in [(3, 3), (7, 5), (10, 12)]:
        ref = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(5))
        ref(torch.zeros(1, 1, h, w))                     # materialise
        assert f.subs({H: h, W: w}) == numel(ref)


# --------------------------------------------------------------------------------------
# trace_shapes against real forward passes
# --------------------------------------------------------------------------------------

@st.composite
def conv_stacks(draw, dims: int = 2):
    """A random stack of conv/pool/norm/activation layers and an input shape for it."""
    conv = [nn.Conv1d, nn.Conv2d][dims - 1]
    convt = [nn.ConvTranspose1d, nn.ConvTranspose2d][dims - 1]
    maxpool = [nn.MaxPool1d, nn.MaxPool2d][dims - 1]
    avgpool = [nn.AvgPool1d, nn.AvgPool2d][dims - 1]
    bn = [nn.BatchNorm1d, nn.BatchNorm2d][dims - 1]
    adaptive = [nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d][dims - 1]
    c = c0 = draw(st.integers(1, 4))
    layers = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "convt", "max", "avg", "bn", "act",
                                     "adaptive"]))
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        if kind == "conv":
            g = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
            out = g * draw(st.integers(1, 3))
            if draw(st.booleans()):
                pad, s = "same", 1
            else:
                pad = draw(st.integers(0, 2))
            layers.append(conv(c, out, k, stride=s, padding=pad, dilation=draw(st.integers(1, 2)),
                               groups=g, bias=draw(st.booleans()),
                               padding_mode=draw(st.sampled_from(["zeros", "circular", "reflect"]))
                               if pad != "same" else "zeros"))
            c = out
        elif kind == "convt":
            out, d, s = draw(st.integers(1, 4)), draw(st.integers(1, 2)), min(s, 2)
            layers.append(convt(c, out, k, stride=s, padding=draw(st.integers(0, 2)), dilation=d,
                                output_padding=draw(st.integers(0, max(s, d) - 1))))
            c = out
        elif kind == "max":
            layers.append(maxpool(k, stride=s, padding=draw(st.integers(0, k // 2)),
                                  dilation=draw(st.integers(1, 2)), ceil_mode=draw(st.booleans())))
        elif kind == "avg":
            layers.append(avgpool(k, stride=s, padding=draw(st.integers(0, k // 2)),
                                  ceil_mode=draw(st.booleans())))
        elif kind == "bn":
            layers.append(bn(c, affine=draw(st.booleans())))
        elif kind == "adaptive":
            layers.append(adaptive(draw(st.integers(1, 3))))
        else:
            layers.append(draw(st.sampled_from([nn.ReLU(), nn.Tanh(), nn.Dropout(0.1),
                                                nn.Identity(), nn.GELU()])))
    shape = (c0, *draw(st.lists(st.integers(1, 16), min_size=dims, max_size=dims)))
    return layers, shape


def _close_with_linear(layers, shape):
    """Append Flatten + Linear sized by a torch forward pass (None if torch fails)."""
    body = nn.Sequential(*layers).double().eval()
    try:
        with torch.no_grad():
            n = body(torch.zeros(2, *shape, dtype=torch.float64))[0].numel()
    except RuntimeError:
        return None
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(n, 3))


@given(conv_stacks(dims=2))
def test_trace_matches_torch_on_random_2d_stacks(case):
    layers, shape = case
    check_against_torch(nn.Sequential(*layers), shape)


@given(conv_stacks(dims=1))
def test_trace_matches_torch_on_random_1d_stacks(case):
    layers, shape = case
    check_against_torch(nn.Sequential(*layers), shape)


@settings(max_examples=30)
@given(conv_stacks(dims=2))
def test_symbolic_trace_agrees_at_the_sizes_torch_ran(case):
    layers, shape = case
    net = _close_with_linear(layers, shape)
    assume(net is not None)
    numeric = check_against_torch(net, shape)
    symbolic = P.trace_shapes(net, (shape[0], H, W))
    at = symbolic.subs({H: shape[1], W: shape[2]})
    assert [r.output_shape for r in at.rows] == [r.output_shape for r in numeric.rows]
    assert at.total_params == numeric.total_params == numel(net)
    assert at.constraints == ()       # the Linear was built for this size
    # adapt=False keeps the count of the module as built, at any size
    assert P.trace_shapes(net, (shape[0], H, W), adapt=False).total_params == numel(net)


@given(st.sampled_from(["LSTM", "GRU", "RNN"]), st.integers(1, 5), st.integers(2, 5),
       st.integers(1, 2), st.booleans(), st.booleans(), st.integers(0, 3), st.integers(1, 6))
def test_trace_recurrent_layers(mode, inp, hidden, layers, bidirectional, batch_first, proj, seq):
    proj = proj % hidden if mode == "LSTM" else 0
    kw = {"proj_size": proj} if mode == "LSTM" else {}
    rnn = getattr(nn, mode)(inp, hidden, num_layers=layers, bidirectional=bidirectional,
                            batch_first=batch_first, **kw).double()
    x = torch.randn(seq, 2, inp, dtype=torch.float64)            # (L, N, I)
    with torch.no_grad():
        out = rnn(x.transpose(0, 1) if batch_first else x)[0]
    per_example = (out[0] if batch_first else out[:, 0]).shape
    trace = P.trace_shapes(rnn, (seq, inp))
    assert trace.output_shape == tuple(per_example)
    assert trace.total_params == numel(rnn)
    assert P.trace_shapes(rnn, (L, inp)).subs({L: seq}).output_shape == tuple(per_example)


@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.booleans(), st.booleans(),
       st.integers(1, 5), st.integers(1, 5), st.one_of(st.none(), st.integers(1, 4)))
def test_trace_multihead_attention(heads, head_dim, bias_kv, zero_attn, average, tgt, src, kdim):
    e = heads * head_dim
    mha = nn.MultiheadAttention(e, heads, add_bias_kv=bias_kv, add_zero_attn=zero_attn,
                                kdim=kdim, vdim=kdim, batch_first=True).double()

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = mha

        def forward(self, q, kv):
            out, weights = self.att(q, kv, kv, average_attn_weights=average)
            return out, weights

    q = torch.randn(2, tgt, e, dtype=torch.float64)
    kv = torch.randn(2, src, kdim or e, dtype=torch.float64)
    with torch.no_grad():
        out, weights = Cross()(q, kv)
    trace = P.trace_shapes(Cross(), [(tgt, e), (src, kdim or e)])
    assert trace.output_shape == tuple(out.shape[1:])
    assert trace.total_params == numel(mha)
    row = trace.row("att")
    assert row.output_shape == tuple(out.shape[1:])
    # the weights: rebuild them through the rule by tracing a module that returns them
    class Weights(Cross):
        def forward(self, q, kv):
            return self.att(q, kv, kv, average_attn_weights=average)[1]
    assert P.trace_shapes(Weights(), [(tgt, e), (src, kdim or e)]).output_shape == \
        tuple(weights.shape[1:])


class TinyLM(nn.Module):
    """Embedding, LSTM, attention with a residual, layer norm, view and indexing."""

    def __init__(self, vocab=11, dim=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, batch_first=True)
        self.att = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.head.weight = self.emb.weight               # tied

    def forward(self, tokens):
        x, (h, c) = self.rnn(self.emb(tokens))
        a, _ = self.att(x, x, x, need_weights=False)
        x = self.norm(x + a)
        x = x.reshape(x.size(0), -1, x.shape[-1]).permute(0, 2, 1).transpose(1, 2)
        return self.head(x)[:, -1]


@pytest.mark.parametrize("seq", [1, 3, 9])
def test_trace_custom_sequence_model(seq):
    net = TinyLM()
    trace = check_against_torch(net, (seq,), dtype=torch.long)
    assert trace.output_shape == (11,)
    sym = P.trace_shapes(net, (L,))
    assert sym.row("norm").output_shape == (L, 8)
    assert sym.total_params == numel(net)


def test_functional_operations_in_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 2 * 2, 2)
            self.scale = nn.Parameter(torch.ones(4, 1, 1))
            self.register_buffer("proj", torch.ones(2, 5))

        def forward(self, x):
            y = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2, ceil_mode=True) * self.scale
            y = nn.functional.adaptive_avg_pool2d(y, (2, None))[..., :2]
            z = torch.cat([y, y], dim=1).mean(dim=1, keepdim=True)
            y = y + z.squeeze(1).unsqueeze(1)
            return self.fc(y.view(-1, 4 * 2 * 2)) @ self.proj + 1

    trace = check_against_torch(Net(), (3, 9, 12))
    assert trace.output_shape == (5,)
    assert trace.row("scale").params == 4


def test_constraint_says_what_in_features_must_be():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 16 * 16, 10))
    trace = P.trace_shapes(net, (3, H, W))
    (con,) = trace.constraints
    assert (con.layer, con.parameter, con.actual) == ("3", "in_features", 2048)
    for h, w in itertools.product(range(30, 36), range(30, 36)):
        x = torch.zeros(1, 3, h, w)
        ok = bool(con.equation.subs({H: h, W: w}))
        if ok:
            net(x)                                       # torch accepts exactly these sizes
        else:
            with pytest.raises(RuntimeError):
                net(x)
        assert (trace.subs({H: h, W: w}).constraints == ()) == ok


def test_errors_name_the_culprit():
    with pytest.raises(ValueError, match=r"layer '1' \(Bilinear\)"):
        P.trace_shapes(nn.Sequential(nn.Linear(4, 2), nn.Bilinear(2, 2, 1)), (4,))
    with pytest.raises(ValueError, match=r"'2' \(Linear\): in_features=5 but the input has 6"):
        P.trace_shapes(nn.Sequential(nn.Conv1d(1, 2, 2), nn.Flatten(), nn.Linear(5, 1)), (1, 4))
    with pytest.raises(ValueError, match=r"'0' \(Conv2d\): in_channels=3 but the input has 1"):
        P.trace_shapes(nn.Sequential(nn.Conv2d(3, 2, 2)), (1, 4, 4))
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\): kernel 5"):
        P.trace_shapes(nn.Sequential(nn.Conv2d(1, 2, 5)), (1, 4, 4))

    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(x)

    n = sp.Symbol("n", integer=True, positive=True)   # a symbolic size needs the fx trace
    with pytest.raises(ValueError, match=r"operation torch.sin \(called in module 'act'\)"):
        P.trace_shapes(nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=Sine())), (n, 2))

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="torch.fx cannot record"):
        P.trace_shapes(Branchy(), (n,))
    with pytest.raises(ValueError, match=r"Bilinear.*a forward pass .* failed too"):
        P.trace_shapes(nn.Sequential(nn.Linear(4, 2), nn.Bilinear(2, 2, 1)), (4,))
    with pytest.raises(ValueError, match="integer=True, positive=True"):
        P.trace_shapes(nn.Linear(2, 2), (sp.Symbol("n"),))
    with pytest.raises(TypeError, match="input_shape must be"):
        P.trace_shapes(nn.Linear(2, 2), "2")
    with pytest.raises(TypeError, match="adapt must be True or False"):
        P.trace_shapes(nn.Linear(2, 2), (2,), adapt=None)


# --------------------------------------------------------------------------------------
# Rendering: the trace's own tables
# --------------------------------------------------------------------------------------

def test_trace_as_markdown_and_html():
    net = nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32 * 16 * 16, 10))
    md = P.trace_shapes(net, (3, 32, 32)).to_markdown()
    lines = md.splitlines()
    assert lines[0] == "| layer | type | output shape | parameters |"
    assert len(lines) == 2 + 1 + 5 + 1                  # header, rule, input, 5 layers, total
    assert r"$32 \cdot 3 \cdot 5 \cdot 5 + 32 = 2{,}432$" in md
    assert "$32 \\times 16 \\times 16$" in md
    short = P.trace_shapes(net, (3, H, W)).to_markdown(param_free=False, formula=False)
    assert len(short.splitlines()) == 2 + 1 + 2 + 1
    assert r"\left\lfloor{\frac{H}{2}}\right\rfloor" in short
    html = P.trace_shapes(net, (3, 32, 32)).to_html()
    assert html.startswith('<table class="mathjax_process">')
    assert r"\(32 \cdot 3 \cdot 5 \cdot 5 + 32 = 2{,}432\)" in html
    assert html.count("<tr>") == 1 + 1 + 5 + 1
    trace = P.trace_shapes(net, (3, 32, 32))
    assert trace._repr_markdown_() == md


def test_str_of_a_trace_is_a_plain_text_table():
    net = nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32 * 16 * 16, 10))
    net[0].weight.requires_grad_(False)
    text = str(P.trace_shapes(net, (3, 32, 32)))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "parameters"]
    assert set(lines[1]) <= {"-", " "}
    assert "$" not in text and "`" not in text and "|" not in text and "\\" not in text
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["input"].split()[1:] == ["3", "x", "32", "x", "32"]
    assert rows["0"].split()[-1] == f"{numel(net[0]):,}"
    assert rows["total"].split()[-1] == f"{numel(net):,}"
    assert rows["trainable"].split()[-1] == f"{numel(net) - net[0].weight.numel():,}"
    counts = [line for line in lines[2:] if line.split()[-1][0].isdigit()
              and not line.startswith("input")]
    assert {len(line) for line in counts} == {len(lines[0])}  # right-aligned under the header
    sym = str(P.trace_shapes(net[:4], (3, H, W)))
    assert "32*floor(H/2)*floor(W/2)" in sym


# --------------------------------------------------------------------------------------
# Input shapes with a batch; modules the symbolic trace cannot follow
# --------------------------------------------------------------------------------------

@given(conv_stacks(dims=2), st.integers(1, 4))
def test_a_batched_input_shape_traces_like_one_example(case, batch):
    layers, shape = case
    net = nn.Sequential(*layers)
    assume(isinstance(layers[0], (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d,
                                  nn.AdaptiveAvgPool2d, nn.BatchNorm2d)))
    trace = check_against_torch(net, shape)
    assume(trace is not None)
    batched = P.trace_shapes(net, (batch, *shape))
    assert batched.input_shape == shape
    assert [r.output_shape for r in batched.rows] == [r.output_shape for r in trace.rows]
    sym = P.trace_shapes(net, (batch, shape[0], H, W))
    assert sym.subs({H: shape[1], W: shape[2]}).output_shape == trace.output_shape


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.booleans(),
       st.sampled_from(["relu", "gelu"]))
def test_transformer_layers_are_traced_by_a_forward_pass(heads, head_dim, seq, norm_first, act):
    e = heads * head_dim
    enc = nn.TransformerEncoderLayer(e, heads, dim_feedforward=2 * e, activation=act,
                                     norm_first=norm_first, batch_first=True)
    trace = check_against_torch(enc, (seq, e))
    assert trace.method == "forward" and trace.output_shape == (seq, e)
    assert trace.row("self_attn").params == numel(enc.self_attn)
    assert P.count_params(enc) == numel(enc) == trace.trainable_params


def test_forward_trace_of_a_whole_model_with_embeddings_and_a_custom_layer():
    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(x)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16,
                                                                        batch_first=True), 2,
                                             enable_nested_tensor=False)
            self.act = Sine()
            self.head = nn.Linear(8, 3)
            self.scale = nn.Parameter(torch.ones(3))

        def forward(self, tokens):
            return self.head(self.act(self.enc(self.emb(tokens))))[:, 0] * self.scale

    net = Classifier()
    trace = check_against_torch(net, (7,), dtype=torch.long)
    assert trace.method == "forward" and trace.output_shape == (3,)
    assert trace.row("Classifier").params == 3             # its own parameter, scale
    assert trace.row("enc.layers.1.linear2").output_shape == (7, 8)


def test_forward_trace_leaves_the_module_as_it_was():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() >= 0 else x

    net = Branchy().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trace = P.trace_shapes(net, (1, 3, 10, 10))       # the batch is found by the forward pass
    assert trace.method == "forward" and trace.input_shape == (3, 10, 10)
    assert trace.output_shape == (4, 8, 8) and trace.total_params == numel(net)
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="torch.fx cannot record"):
        P.trace_shapes(net, (3, H, W))
