"""Internals of :mod:`dlmath.params`: per-layer parameter terms and shape rules.

Each ``_*_terms`` function returns ``{parameter name: factors}`` with the names PyTorch gives
the parameters, so that the tests can compare every tensor's size with ``numel()``.  The
``_rule_*`` functions propagate a (possibly symbolic) shape through one layer; the ``_op_*``
functions through one tensor operation called inside a ``forward``; ``_Tracer`` records a
module's ``forward`` with ``torch.fx``.  Nothing here is public API.
"""

from __future__ import annotations

import builtins
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import sympy as sp
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from dlmath._validate import check_size
from dlmath.conv import conv_output_size, conv_transpose_output_size, pool_output_size

Size = Union[int, sp.Expr]
Factors = tuple  # the factors whose product is one parameter tensor's size

#: The batch dimension the tracer puts in front of the input shape (never shown).
_B = sp.Dummy("B", integer=True, positive=True)


def _out(x: Any) -> Any:
    """A SymPy number as a Python int; anything else unchanged."""
    if isinstance(x, sp.Basic) and x.is_Integer:
        return int(x)
    return x


def _size(name: str, value: Any, minimum: int = 1) -> sp.Expr:
    """Validate an int-or-expression size argument and return it as SymPy."""
    return sp.sympify(check_size(name, value, minimum))


def _tidy(expr: Any) -> Any:
    """Simplify the floors (and ceilings) of size formulas with two identities, valid for an
    integer ``c`` and a positive integer ``b``: ``floor(u) + c = floor(u + c)`` and
    ``floor((floor(u) + c)/b) = floor((u + c)/b)`` (the same with ``ceiling``).

    ``conv_output_size`` returns ``floor((n + 2p - d(k-1) - 1)/s) + 1``; tidied, three 2x2
    poolings of ``H`` read ``floor(H/8)`` instead of ``floor(floor(floor(H/2)/2)/2)``.
    """
    if not isinstance(expr, sp.Basic) or expr.is_number:
        return _out(expr)
    for kind in (sp.floor, sp.ceiling):
        def split(e, kind=kind):
            """``e`` as (u, c) with e = kind(u) + c, c an integer; None otherwise."""
            terms = sp.Add.make_args(e)
            inner = [t for t in terms if isinstance(t, kind)]
            rest = sp.Add(*[t for t in terms if not isinstance(t, kind)])
            if len(inner) == 1 and rest.is_Integer:
                return inner[0].args[0], rest
            return None

        def nested(e, kind=kind, split=split):
            if not isinstance(e, kind):
                return False
            num, den = sp.fraction(sp.together(e.args[0]))
            return den.is_Integer and den > 0 and split(num) is not None

        def unnest(e, kind=kind, split=split):
            num, den = sp.fraction(sp.together(e.args[0]))
            u, c = split(num)
            return kind((u + c) / den)

        def outer_sum(e, split=split):
            return e.is_Add and split(e) is not None and split(e)[1] != 0

        expr = expr.replace(nested, unnest)
        expr = expr.replace(outer_sum, lambda e, kind=kind, split=split: kind(sum(split(e))))
    return expr


def _prod(factors: Sequence[Any]) -> sp.Expr:
    return sp.Mul(*[sp.sympify(f) for f in factors])


def _total(terms: Mapping[str, Factors]) -> Size:
    return _out(sp.Add(*[_prod(f) for f in terms.values()]))


# ---- parameter terms of each layer ----------------------------------------------------

def _conv_terms(cin, cout, kernel, groups=1, bias=True, transposed=False) -> dict:
    kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else (kernel,)
    if groups != 1 and isinstance(cin, int) and isinstance(cout, int):
        for what, n in (("in_channels", cin), ("out_channels", cout)):
            if n % groups:
                raise ValueError(f"{what} {n} is not divisible by groups {groups}")
    g = sp.Integer(groups)
    share = (lambda c: sp.sympify(c) / g) if groups != 1 else (lambda c: c)
    # Conv: weight (C_out, C_in/g, k...); ConvTranspose: weight (C_in, C_out/g, k...).
    weight = (cin, share(cout), *kernel) if transposed else (cout, share(cin), *kernel)
    terms = {"weight": tuple(_out(sp.sympify(f)) for f in weight)}
    if bias:
        terms["bias"] = (cout,)
    return terms


def _linear_terms(fin, fout, bias=True) -> dict:
    terms = {"weight": (fout, fin)}
    if bias:
        terms["bias"] = (fout,)
    return terms


def _affine_terms(shape: Factors, weight=True, bias=True) -> dict:
    terms = {}
    if weight:
        terms["weight"] = tuple(shape)
    if bias:
        terms["bias"] = tuple(shape)
    return terms


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _rnn_terms(mode, input_size, hidden, num_layers=1, bias=True, bidirectional=False,
               proj_size=0) -> dict:
    gates = _GATES[mode]
    directions = ("", "_reverse") if bidirectional else ("",)
    h_out = proj_size if proj_size else hidden
    terms = {}
    for layer in range(num_layers):
        # Layer 0 reads the input; layer l > 0 reads both directions of layer l - 1.
        fin = input_size if layer == 0 else _out(len(directions) * sp.sympify(h_out))
        for d in directions:
            sfx = f"_l{layer}{d}"
            terms["weight_ih" + sfx] = (gates, hidden, fin)     # (G*H, I_l)
            terms["weight_hh" + sfx] = (gates, hidden, h_out)   # (G*H, H_out)
            if bias:
                terms["bias_ih" + sfx] = (gates, hidden)
                terms["bias_hh" + sfx] = (gates, hidden)
            if proj_size:
                terms["weight_hr" + sfx] = (proj_size, hidden)  # (P, H)
    return terms


def _attention_terms(e, kdim=None, vdim=None, bias=True, add_bias_kv=False) -> dict:
    kdim = e if kdim is None else kdim
    vdim = e if vdim is None else vdim
    if kdim == e and vdim == e:
        terms = {"in_proj_weight": (3, e, e)}          # W_Q, W_K, W_V stacked: (3E, E)
    else:
        terms = {"q_proj_weight": (e, e), "k_proj_weight": (e, kdim), "v_proj_weight": (e, vdim)}
    if bias:
        terms["in_proj_bias"] = (3, e)
    if add_bias_kv:
        terms["bias_k"] = (e,)
        terms["bias_v"] = (e,)
    terms["out_proj.weight"] = (e, e)                   # W_O: (E, E)
    if bias:
        terms["out_proj.bias"] = (e,)
    return terms


# ---- shapes ----------------------------------------------------------------------------

class _T:
    """A tensor during tracing: only its shape (batch included) is known."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(sp.sympify(d) for d in shape)


def _per_example(shape: tuple) -> tuple:
    """Drop the batch dimension if it is in front."""
    if shape and shape[0] == _B:
        shape = shape[1:]
    return tuple(_out(d) for d in shape)


def _first_tensor(value: Any) -> _T | None:
    if isinstance(value, _T):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


class _Context:
    """What a layer rule needs: its name, the adapt flag, and where to put constraints."""

    def __init__(self, adapt: bool):
        self.adapt = adapt
        self.constraints: list[tuple] = []     # (layer, parameter, required, actual)
        self.name = ""
        self.type = ""

    def error(self, message: str) -> ValueError:
        return ValueError(f"layer {self.name!r} ({self.type}): {message}")

    def match(self, parameter: str, incoming: Any, fixed: int | None) -> Size:
        """Reconcile a size the module fixed at construction with the size it receives."""
        incoming = sp.sympify(incoming)
        if fixed is None:                       # lazy module: takes what it gets
            return _out(incoming)
        if sp.expand(incoming - fixed) == 0:
            return fixed
        if incoming.is_number:
            raise self.error(f"{parameter}={fixed} but the input has {incoming}")
        self.constraints.append((self.name, parameter, _tidy(incoming), fixed))
        return _out(incoming) if self.adapt else fixed


def _tuple(value: Any, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _nd(m: nn.Module) -> int:
    """The number of spatial dimensions of a torch layer class such as ``MaxPool2d``."""
    for cls in type(m).__mro__:
        found = re.search(r"(\d)d$", cls.__name__)
        if found and cls.__module__.startswith("torch.nn"):
            return int(found.group(1))
    raise ValueError(f"cannot tell the dimension of {type(m).__name__}")  # pragma: no cover


def _spatial(ctx: _Context, x: _T, nd: int) -> tuple:
    if len(x.shape) != nd + 2:
        raise ctx.error(f"expects (C, {', '.join('LHW'[-nd:] if nd < 3 else 'DHW')}) per example, "
                        f"got shape {_per_example(x.shape)}")
    return x.shape[2:]


# ---- layer rules: (ctx, module, input values) -> (output value, {param: factors}) --------

def _rule_conv(ctx, m, x, *rest, **kwargs):
    nd = len(m.kernel_size)
    spatial = _spatial(ctx, x, nd)
    cin = ctx.match("in_channels", x.shape[1], m.in_channels)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        try:
            out = [conv_transpose_output_size(_out(n), k, s, p, op, d) for n, k, s, p, op, d in
                   zip(spatial, m.kernel_size, m.stride, m.padding, m.output_padding, m.dilation)]
        except ValueError as err:
            raise ctx.error(str(err)) from None
        terms = _conv_terms(cin, m.out_channels, m.kernel_size, m.groups, m.bias is not None, True)
    else:
        if m.padding == "same":
            out = list(spatial)
        else:
            pad = (0,) * nd if m.padding == "valid" else m.padding
            for n, q in zip(spatial, pad):       # non-zero padding copies input values
                if n.is_number and ((m.padding_mode == "circular" and q > n)
                                    or (m.padding_mode == "reflect" and q >= n)):
                    raise ctx.error(f"{m.padding_mode} padding {q} needs a larger input than {n}")
            try:
                out = [conv_output_size(_out(n), k, s, p, d) for n, k, s, p, d in
                       zip(spatial, m.kernel_size, m.stride, pad, m.dilation)]
            except ValueError as err:
                raise ctx.error(str(err)) from None
        terms = _conv_terms(cin, m.out_channels, m.kernel_size, m.groups, m.bias is not None)
    return _T((x.shape[0], m.out_channels, *map(_tidy, out))), terms


class _CeilPoolSize(sp.Function):
    """A ceil-mode pooling size whose last window might start in the padding.

    PyTorch then drops that window, which ``pool_output_size`` writes as a ``Piecewise``;
    nested, such ``Piecewise`` make SymPy's condition simplification explode, so this case
    stays an unevaluated function of ``(n, k, s, p, d)`` until ``n`` is a number.
    """

    is_integer = True
    is_positive = True

    @classmethod
    def eval(cls, n, k, s, p, d):
        if n.is_Integer:
            return sp.Integer(pool_output_size(int(n), int(k), int(s), int(p), int(d),
                                               ceil_mode=True))
        return None

    def _latex(self, printer):
        n, k, s, p, d = (printer._print(a) for a in self.args)
        return (rf"\operatorname{{pool}}^{{\lceil\rceil}}_{{k={k},s={s},p={p},d={d}}}"
                rf"\left({n}\right)")


def _pool_size(n, k, s, p, d, ceil_mode):
    """Output size of a pooling window along one axis (``pool_output_size``, kept small)."""
    n = _out(n)
    if not ceil_mode or isinstance(n, int):
        return _tidy(pool_output_size(n, k, s, p, d, ceil_mode=ceil_mode))
    # With n' - 1 = ceil(room/s) <= (room + s - 1)/s, the last window starts at
    # (n' - 1) s <= n + 2p - span + s - 1, inside the input + left padding whenever
    # p + s <= span: then the ceiling branch of the Piecewise is the whole answer.
    if p + s <= d * (k - 1) + 1:
        out = pool_output_size(n, k, s, p, d, ceil_mode=True)
        return _tidy(out.args[-1].expr if isinstance(out, sp.Piecewise) else out)
    pool_output_size(k, k, s, p, d, ceil_mode=True)    # the argument checks only
    return _CeilPoolSize(n, k, s, p, d)


def _rule_pool(ctx, m, x, *rest, **kwargs):
    nd = _nd(m)
    spatial = _spatial(ctx, x, nd)
    k = _tuple(m.kernel_size, nd)
    s = _tuple(m.stride if m.stride is not None else m.kernel_size, nd)
    p = _tuple(m.padding, nd)
    d = _tuple(getattr(m, "dilation", 1), nd)
    try:
        out = [_pool_size(*a, bool(m.ceil_mode)) for a in zip(spatial, k, s, p, d)]
    except ValueError as err:
        raise ctx.error(str(err)) from None
    return _T((*x.shape[:2], *out)), {}


def _rule_adaptive_pool(ctx, m, x, *rest, **kwargs):
    nd = _nd(m)
    spatial = _spatial(ctx, x, nd)
    size = _tuple(m.output_size, nd)
    out = [n if o is None else o for n, o in zip(spatial, size)]
    if isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)) \
            and m.return_indices:
        return (_T((*x.shape[:2], *out)), _T((*x.shape[:2], *out))), {}
    return _T((*x.shape[:2], *out)), {}


def _rule_linear(ctx, m, x, *rest, **kwargs):
    if not x.shape[1:]:
        raise ctx.error("expects at least one feature dimension")
    lazy = isinstance(m.weight, nn.parameter.UninitializedParameter)
    fin = ctx.match("in_features", x.shape[-1], None if lazy else m.in_features)
    return _T((*x.shape[:-1], m.out_features)), _linear_terms(fin, m.out_features,
                                                              m.bias is not None)


def _rule_norm(ctx, m, x, *rest, **kwargs):
    if len(x.shape) < 2:
        raise ctx.error("expects a channel dimension")
    if isinstance(m, nn.GroupNorm):
        c = ctx.match("num_channels", x.shape[1], m.num_channels)
        return x, _affine_terms((c,), m.affine, m.affine)
    c = ctx.match("num_features", x.shape[1], m.num_features)
    return x, _affine_terms((c,), m.weight is not None, m.bias is not None)


def _rule_layernorm(ctx, m, x, *rest, **kwargs):
    n = len(m.normalized_shape)
    if len(x.shape) - 1 < n:
        raise ctx.error(f"normalized_shape {tuple(m.normalized_shape)} has more dimensions than "
                        f"the input {_per_example(x.shape)}")
    dims = tuple(ctx.match("normalized_shape", a, b)
                 for a, b in zip(x.shape[-n:], m.normalized_shape))
    has_bias = getattr(m, "bias", None) is not None
    return x, _affine_terms(dims, getattr(m, "weight", None) is not None, has_bias)


def _rule_same(ctx, m, x, *rest, **kwargs):
    return x, {}


def _rule_prelu(ctx, m, x, *rest, **kwargs):
    return x, {"weight": (m.num_parameters,)}


def _rule_flatten(ctx, m, x, *rest, **kwargs):
    return _flatten(x, m.start_dim, m.end_dim), {}


def _rule_unflatten(ctx, m, x, *rest, **kwargs):
    dim = m.dim % len(x.shape)
    sizes = tuple(m.unflattened_size)
    if sp.expand(_prod(sizes) - x.shape[dim]) != 0:
        raise ctx.error(f"cannot unflatten size {x.shape[dim]} into {sizes}")
    return _T((*x.shape[:dim], *sizes, *x.shape[dim + 1:])), {}


def _rule_embedding(ctx, m, x, *rest, **kwargs):
    return _T((*x.shape, m.embedding_dim)), {"weight": (m.num_embeddings, m.embedding_dim)}


def _rule_rnn(ctx, m, x, *rest, **kwargs):
    if len(x.shape) != 3:
        raise ctx.error(f"expects (L, features) per example, got {_per_example(x.shape)}")
    fin = ctx.match("input_size", x.shape[2], m.input_size)
    mode = "RNN" if isinstance(m, nn.RNN) else type(m).__name__
    d = 2 if m.bidirectional else 1
    h_out = m.proj_size if getattr(m, "proj_size", 0) else m.hidden_size
    # Shapes are batch-first here whatever m.batch_first says: the batch is our dim 0.
    out = _T((x.shape[0], x.shape[1], d * h_out))                 # (B, L, D*H_out)
    h_n = _T((d * m.num_layers, x.shape[0], h_out))               # (D*layers, B, H_out)
    state = (h_n, _T((d * m.num_layers, x.shape[0], m.hidden_size))) if mode == "LSTM" else h_n
    terms = _rnn_terms(mode, fin, m.hidden_size, m.num_layers, m.bias, m.bidirectional,
                       getattr(m, "proj_size", 0))
    return (out, state), terms


def _rule_mha(ctx, m, q, k=None, v=None, *rest, need_weights=True, average_attn_weights=True,
              **kwargs):
    k = q if k is None else k
    v = k if v is None else v
    e = ctx.match("embed_dim", q.shape[-1], m.embed_dim)
    ctx.match("kdim", k.shape[-1], m.kdim)
    ctx.match("vdim", v.shape[-1], m.vdim)
    out = _T((*q.shape[:-1], m.embed_dim))                         # (B, L, E)
    # learned bias_k/bias_v and add_zero_attn each append one key position
    s_len = k.shape[-2] + int(m.bias_k is not None) + int(m.add_zero_attn)
    if not need_weights:
        weights = None
    elif average_attn_weights:
        weights = _T((*q.shape[:-1], s_len))                       # (B, L, S)
    else:
        weights = _T((q.shape[0], m.num_heads, q.shape[-2], s_len))  # (B, h, L, S)
    terms = _attention_terms(e, m.kdim, m.vdim, m.in_proj_bias is not None, m.bias_k is not None)
    return (out, weights), terms


_SAME_SHAPE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus,
    nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Softmax, nn.LogSoftmax, nn.Softmin,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.LocalResponseNorm,
)
_RULES: dict[type, Callable] = {t: _rule_same for t in _SAME_SHAPE}
_RULES.update({
    nn.Conv1d: _rule_conv, nn.Conv2d: _rule_conv, nn.Conv3d: _rule_conv,
    nn.ConvTranspose1d: _rule_conv, nn.ConvTranspose2d: _rule_conv, nn.ConvTranspose3d: _rule_conv,
    nn.MaxPool1d: _rule_pool, nn.MaxPool2d: _rule_pool, nn.MaxPool3d: _rule_pool,
    nn.AvgPool1d: _rule_pool, nn.AvgPool2d: _rule_pool, nn.AvgPool3d: _rule_pool,
    nn.AdaptiveAvgPool1d: _rule_adaptive_pool, nn.AdaptiveAvgPool2d: _rule_adaptive_pool,
    nn.AdaptiveAvgPool3d: _rule_adaptive_pool, nn.AdaptiveMaxPool1d: _rule_adaptive_pool,
    nn.AdaptiveMaxPool2d: _rule_adaptive_pool, nn.AdaptiveMaxPool3d: _rule_adaptive_pool,
    nn.Linear: _rule_linear, nn.LazyLinear: _rule_linear,
    nn.BatchNorm1d: _rule_norm, nn.BatchNorm2d: _rule_norm, nn.BatchNorm3d: _rule_norm,
    nn.InstanceNorm1d: _rule_norm, nn.InstanceNorm2d: _rule_norm, nn.InstanceNorm3d: _rule_norm,
    nn.GroupNorm: _rule_norm, nn.LayerNorm: _rule_layernorm, nn.RMSNorm: _rule_layernorm,
    nn.PReLU: _rule_prelu, nn.Flatten: _rule_flatten, nn.Unflatten: _rule_unflatten,
    nn.Embedding: _rule_embedding,
    nn.LSTM: _rule_rnn, nn.GRU: _rule_rnn, nn.RNN: _rule_rnn,
    nn.MultiheadAttention: _rule_mha,
})


def _rule_for(m: nn.Module) -> Callable | None:
    """The rule of m's class, or of a base class whose ``forward`` m does not override."""
    for cls in type(m).__mro__:
        if cls in _RULES and type(m).forward is cls.forward:
            return _RULES[cls]
    return None


# ---- tensor operations called inside forward ----------------------------------------

def _dim(x: _T, d: int) -> int:
    n = len(x.shape)
    if not -n <= d < max(n, 1):
        raise ValueError(f"dimension {d} out of range for a tensor with {n} dimensions")
    return d % n if n else 0


def _flatten(x: _T, start: int = 0, end: int = -1) -> _T:
    if not x.shape:
        return _T((1,))
    a, b = _dim(x, start), _dim(x, end)
    return _T((*x.shape[:a], _prod(x.shape[a:b + 1]), *x.shape[b + 1:]))


def _equal(a, b) -> bool:
    return sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


def _broadcast(*shapes: tuple) -> tuple:
    n = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(sp.Integer(1),) * (n - len(s)) + tuple(s) for s in shapes]):
        big = [d for d in dims if d != 1]
        for d in big[1:]:
            if not _equal(d, big[0]):
                raise ValueError(f"shapes {shapes} do not broadcast (sizes {big[0]} and {d})")
        out.append(big[0] if big else sp.Integer(1))
    return tuple(out)


def _shape_of(v) -> tuple:
    return v.shape if isinstance(v, _T) else ()


def _op_binary(op):
    def rule(a, b, *rest, **kw):
        if not isinstance(a, _T) and not isinstance(b, _T):   # arithmetic on sizes
            if op is operator.floordiv:
                return _out(sp.floor(sp.sympify(a) / b))
            return _out(op(sp.sympify(a), sp.sympify(b)))
        return _T(_broadcast(_shape_of(a), _shape_of(b)))
    return rule


def _op_matmul(a, b, *rest, **kw):
    sa, sb = a.shape, b.shape
    if len(sa) == 1 and len(sb) == 1:
        _agree(sa[0], sb[0])
        return _T(())
    a1, b1 = len(sa) == 1, len(sb) == 1
    sa = (1, *sa) if a1 else sa
    sb = (*sb, 1) if b1 else sb
    _agree(sa[-1], sb[-2])
    shape = (*_broadcast(sa[:-2], sb[:-2]), sa[-2], sb[-1])
    if a1:
        shape = shape[:-2] + shape[-1:]
    if b1:
        shape = shape[:-1]
    return _T(shape)


def _agree(a, b) -> None:
    if not _equal(a, b):
        raise ValueError(f"inner sizes {a} and {b} of a matrix product differ")


def _op_view(x, *shape, **kw):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = [sp.sympify(d) for d in (shape or kw.get("shape", ()))]
    numel = _prod(x.shape)
    holes = [i for i, d in enumerate(shape) if d == -1]
    if len(holes) > 1:
        raise ValueError("view/reshape: only one dimension can be -1")
    if holes:
        rest = _prod([d for i, d in enumerate(shape) if i != holes[0]])
        shape[holes[0]] = sp.cancel(numel / rest)
    if not _equal(_prod(shape), numel):
        raise ValueError(f"view/reshape: shape {tuple(shape)} does not hold {numel} elements")
    if any(d.is_number and not d.is_integer for d in shape):
        raise ValueError(f"view/reshape: sizes {tuple(shape)} are not integers")
    return _T(shape)


def _op_permute(x, *dims, **kw):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return _T(tuple(x.shape[_dim(x, d)] for d in dims))


def _op_transpose(x, d0, d1, **kw):
    s = list(x.shape)
    i, j = _dim(x, d0), _dim(x, d1)
    s[i], s[j] = s[j], s[i]
    return _T(s)


def _op_unsqueeze(x, dim, **kw):
    s = list(x.shape)
    s.insert(dim % (len(s) + 1), sp.Integer(1))
    return _T(s)


def _op_squeeze(x, dim=None, **kw):
    if dim is None:
        return _T(tuple(d for d in x.shape if d != 1))
    dims = {_dim(x, d) for d in _tuple(dim, 1)}
    return _T(tuple(d for i, d in enumerate(x.shape) if not (i in dims and d == 1)))


def _op_reduce(x, dim=None, keepdim=False, *rest, **kw):
    if dim is None:
        return _T((1,) * len(x.shape) if keepdim else ())
    dims = {_dim(x, d) for d in _tuple(dim, 1)}
    return _T(tuple(1 if i in dims else d for i, d in enumerate(x.shape)
                    if keepdim or i not in dims))


def _op_cat(tensors, dim=0, **kw):
    first = tensors[0]
    d = _dim(first, dim)
    total = sp.Add(*[t.shape[d] for t in tensors])
    for t in tensors[1:]:
        if len(t.shape) != len(first.shape) or any(
                not _equal(a, b) for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != d):
            raise ValueError(f"cat: shapes {[_per_example(t.shape) for t in tensors]} differ "
                             f"outside dimension {dim}")
    return _T((*first.shape[:d], total, *first.shape[d + 1:]))


def _op_stack(tensors, dim=0, **kw):
    first = tensors[0]
    d = dim % (len(first.shape) + 1)
    return _T((*first.shape[:d], len(tensors), *first.shape[d:]))


def _op_size(x, dim=None, **kw):
    return tuple(x.shape) if dim is None else x.shape[_dim(x, dim)]


def _op_getattr(x, name, *default):
    if isinstance(x, _T) and name == "shape":
        return tuple(x.shape)
    if isinstance(x, _T) and name in ("T", "mT"):
        return _op_transpose(x, -2, -1) if name == "mT" else _T(tuple(reversed(x.shape)))
    raise ValueError(f"attribute {name!r} of a traced value is not supported")


def _op_getitem(x, index):
    if not isinstance(x, _T):
        return x[index]
    index = index if isinstance(index, tuple) else (index,)
    if sum(i is Ellipsis for i in index) > 1:
        raise ValueError("an index may hold at most one Ellipsis")
    n_consume = sum(1 for i in index if i is not None and i is not Ellipsis)
    if Ellipsis in index:
        e = index.index(Ellipsis)
        index = index[:e] + (slice(None),) * (len(x.shape) - n_consume) + index[e + 1:]
    shape, pos = [], 0
    for i in index:
        if i is None:
            shape.append(sp.Integer(1))
            continue
        n = x.shape[pos]
        if isinstance(i, int):
            if n.is_number and not -n <= i < n:
                raise ValueError(f"index {i} is out of range for size {n}")
        elif isinstance(i, slice):
            if i == slice(None):
                shape.append(n)
            elif n.is_number:
                shape.append(sp.Integer(len(range(int(n))[i])))
            else:
                raise ValueError(f"slice {i} of the symbolic size {n} is not supported")
        else:
            raise ValueError(f"indexing with {type(i).__name__} is not supported")
        pos += 1
    return _T((*shape, *x.shape[pos:]))


def _op_pool_functional(kind):
    def rule(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *rest, **kw):
        nd = kind
        spatial = x.shape[2:]
        k = _tuple(kernel_size, nd)
        s = _tuple(stride if stride else kernel_size, nd)
        p, d = _tuple(padding, nd), _tuple(dilation, nd)
        return _T((*x.shape[:2], *[_pool_size(*a, bool(ceil_mode))
                                   for a in zip(spatial, k, s, p, d)]))
    return rule


def _op_avg_pool_functional(kind):
    pool = _op_pool_functional(kind)

    def rule(x, kernel_size, stride=None, padding=0, ceil_mode=False, *rest, **kw):
        return pool(x, kernel_size, stride, padding, 1, ceil_mode)
    return rule


def _op_adaptive(nd):
    def rule(x, output_size, *rest, **kw):
        size = _tuple(output_size, nd)
        return _T((*x.shape[:2], *[n if o is None else o
                                   for n, o in zip(x.shape[2:], size)]))
    return rule


def _op_same(x, *args, **kwargs):
    return x


_SAME_FUNCS = (
    torch.relu, torch.tanh, torch.sigmoid, torch.exp, torch.log, torch.abs, torch.sqrt,
    torch.neg, torch.softmax, torch.log_softmax, torch.clamp, operator.neg,
    F.relu, F.relu6, F.elu, F.selu, F.gelu, F.silu, F.mish, F.leaky_relu, F.hardtanh,
    F.hardswish, F.softplus, F.tanh, F.sigmoid, F.softmax, F.log_softmax, F.normalize,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.layer_norm,
)
_FUNCS: dict[Any, Callable] = {f: _op_same for f in _SAME_FUNCS}
_ARITH = {operator.add: operator.add, operator.iadd: operator.add, torch.add: operator.add,
          operator.sub: operator.sub, operator.isub: operator.sub, torch.sub: operator.sub,
          operator.mul: operator.mul, operator.imul: operator.mul, torch.mul: operator.mul,
          operator.truediv: operator.truediv, operator.itruediv: operator.truediv,
          torch.div: operator.truediv, operator.floordiv: operator.floordiv,
          operator.pow: operator.pow, torch.pow: operator.pow,
          torch.maximum: sp.Max, torch.minimum: sp.Min}
_FUNCS.update({f: _op_binary(op) for f, op in _ARITH.items()})
_FUNCS.update({
    operator.matmul: _op_matmul, torch.matmul: _op_matmul, torch.bmm: _op_matmul,
    torch.flatten: lambda x, start_dim=0, end_dim=-1: _flatten(x, start_dim, end_dim),
    torch.reshape: _op_view, torch.permute: _op_permute, torch.transpose: _op_transpose,
    torch.unsqueeze: _op_unsqueeze, torch.squeeze: _op_squeeze, torch.cat: _op_cat,
    torch.concat: _op_cat, torch.stack: _op_stack, torch.mean: _op_reduce, torch.sum: _op_reduce,
    torch.amax: _op_reduce, operator.getitem: _op_getitem, builtins.getattr: _op_getattr,
    F.max_pool1d: _op_pool_functional(1), F.max_pool2d: _op_pool_functional(2),
    F.avg_pool1d: _op_avg_pool_functional(1), F.avg_pool2d: _op_avg_pool_functional(2),
    F.adaptive_avg_pool1d: _op_adaptive(1), F.adaptive_avg_pool2d: _op_adaptive(2),
    F.adaptive_max_pool2d: _op_adaptive(2),
})
_METHODS: dict[str, Callable] = {m: _op_same for m in (
    "relu", "tanh", "sigmoid", "exp", "log", "abs", "sqrt", "neg", "softmax", "log_softmax",
    "clamp", "contiguous", "clone", "detach", "float", "double", "to", "type_as", "relu_")}
_METHODS.update({m: _FUNCS[getattr(torch, m)] for m in ("add", "sub", "mul", "div", "pow")})
_METHODS.update({
    "add_": _METHODS["add"], "mul_": _METHODS["mul"],
    "matmul": _op_matmul, "bmm": _op_matmul, "view": _op_view, "reshape": _op_view,
    "flatten": lambda x, start_dim=0, end_dim=-1: _flatten(x, start_dim, end_dim),
    "permute": _op_permute, "transpose": _op_transpose, "unsqueeze": _op_unsqueeze,
    "squeeze": _op_squeeze, "mean": _op_reduce, "sum": _op_reduce, "amax": _op_reduce,
    "size": _op_size, "dim": lambda x: len(x.shape),
})


def _op_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    if mod.startswith("torch.nn.functional"):
        return f"F.{name}"
    if mod in ("_operator", "operator"):
        return name
    return f"torch.{name}"


# ---- the tracer -----------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """Leaves are the layers with a rule; everything else is traced into."""

    def __init__(self):
        super().__init__()
        self._scope: list[str] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # A torch layer without a rule is a leaf too, so that the error names the layer.
        return _rule_for(m) is not None or (
            type(m).__module__.startswith("torch.nn")
            and not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)))

    def call_module(self, m, forward, args, kwargs):
        self._scope.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["dlmath_scope"] = self._scope[-1] if self._scope else ""
        return node
