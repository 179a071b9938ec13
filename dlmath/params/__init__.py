"""Parameter counts and tensor shapes of PyTorch modules, as formulas.

Scope: the number of parameters of each common layer (convolution, linear, normalisation,
embedding, recurrent, attention) as a function of its hyperparameters; the count of a whole
module; and :func:`trace_shapes`, which follows a module's ``forward`` (via ``torch.fx``) with
an input shape that may hold SymPy symbols and returns, for every layer, its output shape
(with the floors of convolution and pooling) and its parameter count as an expression.
Every size rule of a convolution or pooling layer is :func:`dlmath.conv.conv_output_size`.
Where ``torch.fx`` cannot follow a ``forward`` (a layer without a formula, data-dependent
control flow), a numeric input shape is traced by one forward pass with hooks instead.  A
trace prints as a plain-text table, and a notebook shows it as a table with LaTeX in the
cells.  Chapter: :ref:`ch-counting-parameters`.

References: the shapes of parameters and outputs in the PyTorch documentation of each layer
(``torch.nn``); Goodfellow, Bengio & Courville, *Deep Learning* (2016), chapter 9.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sympy as sp
import torch
import torch.fx as fx
from torch import nn

from dlmath._render import format_table, size_latex
from dlmath._validate import check_bool, check_choice, check_int
from dlmath.params._rules import (
    _B, _FUNCS, _METHODS, _RULES, Size, _affine_terms, _attention_terms, _Context, _conv_terms,
    _first_tensor, _GATES, _linear_terms, _nd, _op_name, _out, _per_example, _prod, _rnn_terms,
    _rule_adaptive_pool, _rule_conv, _rule_for, _rule_norm, _rule_pool, _size, _T, _total,
    _Tracer,
)

__all__ = [
    "conv_params", "linear_params", "batchnorm_params", "layernorm_params",
    "embedding_params", "rnn_params", "attention_params",
    "count_params", "count_params_sym",
    "LayerRow", "Constraint", "ShapeTrace", "trace_shapes",
]

_latex = size_latex      # a size or count in a table cell


def _shape_latex(shape: tuple) -> str:
    return r" \times ".join(_latex(d) for d in shape) if shape else "1"


# --------------------------------------------------------------------------------------
# Per-layer formulas (the terms themselves are in dlmath/params/_rules.py)
# --------------------------------------------------------------------------------------

def conv_params(in_channels: Size, out_channels: Size, kernel_size: Size | Sequence[Size],
                groups: int = 1, bias: bool = True, *, dims: int | None = None) -> Size:
    r"""Number of parameters of a convolution layer (any dimension, also transposed).

    Explanation
    -----------
    Each of the :math:`C_\text{out}` filters sees :math:`C_\text{in}/g` input channels
    through a :math:`k_1 \times \dots \times k_n` window and has one bias:

    .. math:: C_\text{out}\left(\frac{C_\text{in}}{g} \prod_i k_i + 1\right).

    The count does not depend on stride, padding, dilation or the input size.  A transposed
    convolution stores a weight of shape :math:`(C_\text{in}, C_\text{out}/g, k\dots)`:
    the same number.

    Parameters
    ----------
    in_channels, out_channels : int or sympy.Expr
        :math:`C_\text{in}, C_\text{out} \ge 1`; both divisible by ``groups``.
    kernel_size : int, sympy.Expr or sequence of them
        One size for every spatial axis, or one per axis, as ``torch.nn.Conv2d`` takes it:
        ``conv_params(3, 32, 3)`` counts ``nn.Conv2d(3, 32, 3)``, and ``(3, 3, 3)`` a 3-d
        kernel.
    groups : int
        :math:`g \ge 1`.
    bias : bool
        Whether each filter has a bias.
    dims : int, optional
        The number of spatial axes (``dims=1`` counts ``nn.Conv1d``, ``dims=3``
        ``nn.Conv3d``): a single ``kernel_size`` is repeated ``dims`` times, a sequence
        must have ``dims`` entries.  Default: 2 for a single size, as ``nn.Conv2d``; the
        length of a sequence.

    Returns
    -------
    int or sympy.Expr
        An int when every size is an int.

    Raises
    ------
    ValueError
        If a size is not a positive integer, a channel count is not divisible by
        ``groups``, or ``kernel_size`` does not have ``dims`` entries.
    TypeError
        If a size is neither an int nor a SymPy expression, or ``bias`` is not a bool.

    Examples
    --------
    >>> conv_params(3, 32, (5, 5))                 # 32 * (3*5*5 + 1)
    2432
    >>> conv_params(3, 32, 5)                      # the same layer: nn.Conv2d(3, 32, 5)
    2432
    >>> conv_params(3, 32, 5, dims=1)              # nn.Conv1d(3, 32, 5): 32 * (3*5 + 1)
    512
    >>> conv_params(64, 64, (3, 3), groups=64, bias=False)   # depthwise
    576
    >>> import sympy as sp
    >>> C, D, k = sp.symbols("C_in C_out k", integer=True, positive=True)
    >>> sp.factor(conv_params(C, D, (k, k)))
    C_out*(C_in*k**2 + 1)

    See Also
    --------
    linear_params : the fully connected counterpart.
    trace_shapes : counts every layer of a module.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Shapes of ``torch.nn.Conv2d.weight`` and
    ``torch.nn.ConvTranspose2d.weight`` in the PyTorch documentation.
    """
    bias = check_bool("bias", bias)
    groups = check_int("groups", groups, 1)
    cin = _size("in_channels", in_channels)
    cout = _size("out_channels", out_channels)
    if dims is not None:
        dims = check_int("dims", dims, 1)
    if isinstance(kernel_size, (tuple, list)):
        ks = tuple(kernel_size)
        if not ks:
            raise ValueError("kernel_size must have at least one entry")
        if dims is not None and len(ks) != dims:
            raise ValueError(f"kernel_size must have dims={dims} entries, got {kernel_size!r}")
    else:
        ks = (kernel_size,) * (2 if dims is None else dims)       # nn.Conv2d by default
    ks = tuple(_size("kernel_size", k) for k in ks)
    return _total(_conv_terms(_out(cin), _out(cout), tuple(_out(k) for k in ks), groups, bias))


def linear_params(in_features: Size, out_features: Size, bias: bool = True) -> Size:
    r"""Number of parameters of a fully connected (``Linear``) layer: :math:`m(n + 1)`.

    Explanation
    -----------
    A weight matrix of shape :math:`m \times n` and, with ``bias``, :math:`m` biases.
    When :math:`n` is the flattened size of a feature map, this is where the input size
    enters the parameter count.

    Parameters
    ----------
    in_features, out_features : int or sympy.Expr
        :math:`n, m \ge 1`.
    bias : bool
        Whether the layer has a bias.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> linear_params(4 * 4 * 64, 1000)
    1025000
    >>> import sympy as sp
    >>> H, W = sp.symbols("H W", integer=True, positive=True)
    >>> linear_params(H * W, 3, bias=False)
    3*H*W

    See Also
    --------
    conv_params : the convolutional counterpart.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.
    """
    bias = check_bool("bias", bias)
    return _total(_linear_terms(_out(_size("in_features", in_features)),
                                _out(_size("out_features", out_features)), bias))


def batchnorm_params(num_features: Size, affine: bool = True) -> Size:
    r"""Number of learned parameters of a batch-norm layer: :math:`2C` (or 0).

    Explanation
    -----------
    One scale :math:`\gamma_c` and one shift :math:`\beta_c` per channel.  The running mean
    and variance (and the batch counter) are buffers, not parameters: they are saved with
    the model but not trained, and ``count_params`` does not count them.

    Parameters
    ----------
    num_features : int or sympy.Expr
        The number of channels :math:`C`.
    affine : bool
        Whether :math:`\gamma, \beta` are learned.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> batchnorm_params(32) + batchnorm_params(64) + batchnorm_params(128)
    448

    See Also
    --------
    layernorm_params : normalisation over the feature axes instead of the batch.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Ioffe & Szegedy (2015).
    """
    affine = check_bool("affine", affine)
    c = _out(_size("num_features", num_features))
    return _total(_affine_terms((c,), affine, affine))


def layernorm_params(normalized_shape: Size | Sequence[Size], elementwise_affine: bool = True,
                     bias: bool = True) -> Size:
    r"""Number of parameters of a layer-norm layer: :math:`2\prod_i d_i` (gain and bias).

    Parameters
    ----------
    normalized_shape : int, sympy.Expr or sequence of them
        The trailing dimensions :math:`(d_1, \dots)` that are normalised.
    elementwise_affine : bool
        Whether a gain (and a bias) is learned per element.
    bias : bool
        Whether the bias is learned (PyTorch >= 2.1); ignored without ``elementwise_affine``.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> layernorm_params(512)
    1024
    >>> layernorm_params((4, 5), bias=False)
    20

    See Also
    --------
    batchnorm_params : one gain and bias per channel.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Ba, Kiros & Hinton (2016).
    """
    elementwise_affine = check_bool("elementwise_affine", elementwise_affine)
    bias = check_bool("bias", bias)
    dims = normalized_shape if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    dims = tuple(_out(_size("normalized_shape", d)) for d in dims)
    return _total(_affine_terms(dims, elementwise_affine, elementwise_affine and bias))


def embedding_params(num_embeddings: Size, embedding_dim: Size) -> Size:
    r"""Number of parameters of an embedding table: :math:`V \cdot d`.

    Parameters
    ----------
    num_embeddings, embedding_dim : int or sympy.Expr
        Vocabulary size :math:`V` and vector size :math:`d`.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> embedding_params(30, 64)
    1920

    See Also
    --------
    linear_params : an embedding is a linear layer applied to one-hot vectors, without bias.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.
    """
    return _total({"weight": (_out(_size("num_embeddings", num_embeddings)),
                              _out(_size("embedding_dim", embedding_dim)))})


def rnn_params(input_size: Size, hidden_size: Size, num_layers: int = 1, mode: str = "LSTM",
               bias: bool = True, bidirectional: bool = False, proj_size: Size = 0) -> Size:
    r"""Number of parameters of a (stacked, optionally bidirectional) LSTM, GRU or RNN.

    Explanation
    -----------
    A layer with :math:`G` gates (4 for the LSTM, 3 for the GRU, 1 for the Elman RNN),
    input size :math:`I` and hidden size :math:`H` has input weights :math:`GH \times I`,
    recurrent weights :math:`GH \times H` and two bias vectors of length :math:`GH`
    (PyTorch keeps ``b_ih`` and ``b_hh`` separately, although only their sum matters):

    .. math:: G\,H\,(I + H + 2).

    Layers after the first read :math:`D H` features (:math:`D = 2` when bidirectional),
    and each direction has its own weights.  With ``proj_size`` :math:`P > 0` (LSTM only) the
    hidden state is projected to :math:`P` features by an extra :math:`P \times H` matrix
    and the recurrent weights become :math:`GH \times P`.

    Parameters
    ----------
    input_size, hidden_size : int or sympy.Expr
        :math:`I` and :math:`H`.
    num_layers : int
        Number of stacked layers.
    mode : {"LSTM", "GRU", "RNN"}
    bias : bool
    bidirectional : bool
    proj_size : int or sympy.Expr
        :math:`P \ge 0`, LSTM only.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        For an unknown ``mode``, ``num_layers < 1``, or ``proj_size`` with a GRU/RNN.
    TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> rnn_params(10, 20)                      # 4 * 20 * (10 + 20 + 2)
    2560
    >>> rnn_params(10, 20, mode="GRU", num_layers=2, bidirectional=True)
    11280
    >>> import sympy as sp
    >>> I, H = sp.symbols("I H", integer=True, positive=True)
    >>> sp.factor(rnn_params(I, H))
    4*H*(H + I + 2)

    See Also
    --------
    attention_params : the other sequence layer.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Hochreiter & Schmidhuber (1997); the weight
    shapes in the PyTorch documentation of ``torch.nn.LSTM``.
    """
    check_choice("mode", mode, tuple(_GATES))
    # one term per layer and weight: a bound keeps the table (and torch's module) buildable
    num_layers = check_int("num_layers", num_layers, 1, limit=10_000)
    bias = check_bool("bias", bias)
    bidirectional = check_bool("bidirectional", bidirectional)
    proj = _size("proj_size", proj_size, minimum=0)
    hidden = _size("hidden_size", hidden_size)
    if proj != 0 and mode != "LSTM":
        raise ValueError(f"proj_size is only defined for mode 'LSTM', got mode {mode!r}")
    if proj != 0 and sp.sympify(hidden - proj).is_positive is False:
        # torch.nn.LSTM: "proj_size has to be smaller than hidden_size"
        raise ValueError(f"proj_size must be smaller than hidden_size, got proj_size {proj} "
                         f"and hidden_size {hidden}")
    return _total(_rnn_terms(mode, _out(_size("input_size", input_size)), _out(hidden),
                             num_layers, bias, bidirectional, _out(proj)))


def attention_params(embed_dim: Size, num_heads: int = 1, bias: bool = True,
                     kdim: Size | None = None, vdim: Size | None = None,
                     add_bias_kv: bool = False) -> Size:
    r"""Number of parameters of multi-head attention (``nn.MultiheadAttention``).

    Explanation
    -----------
    The query, key and value projections map to :math:`E` features each and the output
    projection maps :math:`E` back to :math:`E`, so with biases

    .. math:: E(E + d_k + d_v) + 3E + E^2 + E = 4E^2 + 4E \quad (d_k = d_v = E).

    The number of heads :math:`h` does not appear: the heads split the :math:`E` projected
    features into :math:`h` groups of :math:`E/h`.

    Parameters
    ----------
    embed_dim : int or sympy.Expr
        :math:`E`, divisible by ``num_heads``.
    num_heads : int
        :math:`h` (checked for divisibility only).
    bias : bool
        Biases of the input and output projections.
    kdim, vdim : int or sympy.Expr, optional
        Feature sizes of keys and values (default :math:`E`).
    add_bias_kv : bool
        Learned extra key and value vectors (:math:`2E` parameters).

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError
        If ``embed_dim`` is not divisible by ``num_heads`` or a size is out of range.
    TypeError
        As :func:`conv_params`.

    Examples
    --------
    >>> attention_params(512, num_heads=8)       # 4 * 512**2 + 4 * 512
    1050624
    >>> import sympy as sp
    >>> E = sp.Symbol("E", integer=True, positive=True)
    >>> attention_params(E)
    4*E**2 + 4*E

    See Also
    --------
    rnn_params : the recurrent alternative.
    linear_params : each projection is a linear layer.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Vaswani et al. (2017).
    """
    bias = check_bool("bias", bias)
    add_bias_kv = check_bool("add_bias_kv", add_bias_kv)
    e = _size("embed_dim", embed_dim)
    num_heads = check_int("num_heads", num_heads, 1)
    if e.is_number and int(e) % num_heads:
        raise ValueError(f"embed_dim {e} is not divisible by num_heads {num_heads}")
    k = None if kdim is None else _out(_size("kdim", kdim))
    v = None if vdim is None else _out(_size("vdim", vdim))
    return _total(_attention_terms(_out(e), k, v, bias, add_bias_kv))


# --------------------------------------------------------------------------------------
# Whole modules
# --------------------------------------------------------------------------------------

def _check_module(module: Any) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")


def count_params(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of a module: the count a user would quote.

    Explanation
    -----------
    The sum of ``p.numel()`` over ``module.parameters()``, which lists a parameter shared
    by several layers once.  Buffers (batch-norm running statistics) are not parameters.

    Parameters
    ----------
    module : torch.nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad=True`` (the default, as an optimiser sees
        them); ``False`` counts frozen ones too.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``module`` is not a module.
    ValueError
        If it has lazy parameters that are not materialised yet (run one forward pass, or use
        :func:`count_params_sym`, which needs only the input shape).

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> count_params(net)                      # 4*3 + 3 + 3*2 + 2
    23
    >>> _ = net[0].requires_grad_(False)
    >>> count_params(net), count_params(net, trainable_only=False)
    (8, 23)

    See Also
    --------
    count_params_sym : the count as a formula in the input size.
    trace_shapes : the count layer by layer, with output shapes.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.
    """
    _check_module(module)
    trainable_only = check_bool("trainable_only", trainable_only)
    total = 0
    for name, p in module.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(f"parameter {name!r} is lazy and not yet materialised; run a forward "
                             f"pass first or use count_params_sym(module, input_shape)")
        if p.requires_grad or not trainable_only:
            total += p.numel()
    return total


def count_params_sym(module: nn.Module, input_shape: Sequence[Size],
                     trainable_only: bool = True) -> Size:
    r"""The parameter count of a network as a formula in its input size.

    Explanation
    -----------
    A convolutional network's weights do not depend on the input size, but the first
    fully connected layer after a ``Flatten`` has as many inputs as the flattened feature
    map: :math:`C\,H'W'` with :math:`H', W'` nested floors of :math:`H, W`.  This traces
    ``module`` with a symbolic ``input_shape`` and counts every ``Linear`` (and every other
    layer whose input size is fixed at construction) *as if it had been built for the size
    it receives*: the count of "the same architecture, built for an :math:`H \times W`
    input".  Substituting the size the module was built for gives ``count_params(module)``.
    This is ``trace_shapes(module, input_shape, adapt=True)``'s total.

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : sequence of int or sympy.Expr
        The shape of one example, without the batch dimension, e.g. ``(3, H, W)``.
        Symbols must be declared ``integer=True, positive=True``.
    trainable_only : bool
        As in :func:`count_params`.

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`trace_shapes`.

    Examples
    --------
    >>> import sympy as sp
    >>> from torch import nn
    >>> H, W = sp.symbols("H W", integer=True, positive=True)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Flatten(),
    ...                     nn.Linear(4 * 3 * 3, 10))
    >>> f = count_params_sym(net, (1, H, W))
    >>> f
    40*(floor(H/2) - 1)*(floor(W/2) - 1) + 50
    >>> f.subs({H: 8, W: 8}) == count_params(net)
    True

    See Also
    --------
    count_params : the number for the module as built.
    trace_shapes : layer by layer, and the constraints the built module imposes on H, W.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.
    """
    trainable_only = check_bool("trainable_only", trainable_only)
    trace = trace_shapes(module, input_shape, adapt=True)
    return trace.trainable_params if trainable_only else trace.total_params


# --------------------------------------------------------------------------------------
# The trace: rows, constraints, result
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRow:
    """One layer (or tensor operation) of a traced module.

    Attributes
    ----------
    name : str
        Qualified module name (``"block1.conv"``), or the operation's name prefixed by the
        module whose ``forward`` calls it (``"flatten"``, ``"head.add"``).
    type : str
        Class name (``"Conv2d"``) or operation (``"torch.flatten"``, ``"Tensor.view"``).
    input_shape, output_shape : tuple
        Shapes of one example (batch left out; when an operation moved the batch away from
        dimension 0 the batch appears as the symbol ``_B``).  Entries are ints or SymPy.
        For a layer with several inputs or outputs, the first tensor's shape.
    params : int or sympy.Expr
        Number of parameters of this layer.
    trainable : int or sympy.Expr
        Those with ``requires_grad``.
    terms : tuple of (str, tuple)
        Each parameter tensor's name and the factors whose product is its size, e.g.
        ``(("weight", (32, 3, 5, 5)), ("bias", (32,)))``.
    shared : bool
        The module was already called earlier in the trace; its parameters are counted
        once, in the first row.
    """

    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    params: Size = 0
    trainable: Size = 0
    terms: tuple = ()
    shared: bool = False

    def formula(self) -> str:
        r"""The count as a LaTeX sum of products, e.g. ``32 \cdot 3 \cdot 5 \cdot 5 + 32``.

        Examples
        --------
        >>> row = LayerRow("fc", "Linear", (8,), (2,), 18, 18,
        ...                (("weight", (2, 8)), ("bias", (2,))))
        >>> row.formula()
        '2 \\cdot 8 + 2'
        """
        return " + ".join(r" \cdot ".join(_latex(f) for f in factors)
                          for _, factors in self.terms) or "0"


@dataclass(frozen=True)
class Constraint:
    """A size the module fixed at construction, against the size the trace feeds it.

    Attributes
    ----------
    layer : str
        The layer's name.
    parameter : str
        The constructor argument, e.g. ``"in_features"``.
    required : int or sympy.Expr
        What the argument must be for the traced input: e.g. the flattened size
        ``128*floor(H/8)*floor(W/8)``.
    actual : int
        What the module was built with.
    """

    layer: str
    parameter: str
    required: Size
    actual: int

    @property
    def equation(self) -> sp.Eq:
        """``required = actual`` as a SymPy equation (``sympy.true``/``false`` when numeric)."""
        return sp.Eq(sp.sympify(self.required), self.actual)


@dataclass(frozen=True)
class ShapeTrace:
    """What :func:`trace_shapes` returns: rows, totals, and constraints.

    Attributes
    ----------
    rows : tuple of LayerRow
    input_shape, output_shape : tuple
        Per-example shapes (batch left out).  ``output_shape`` is the first tensor output.
    total_params, trainable_params : int or sympy.Expr
        Sums over the rows (shared modules once).
    constraints : tuple of Constraint
        Sizes fixed at construction that the traced input determines (only for symbolic
        input sizes; a numeric mismatch raises instead).
    untraced : tuple of str
        Parameters of ``module`` that the forward pass never used (not in the totals).
    adapt : bool
        Whether constrained layers were counted for the size they receive.
    method : {"fx", "forward"}
        How the shapes were found: ``"fx"``, the symbolic trace of ``forward``;
        ``"forward"``, one forward pass on a zero input with hooks on every module (for a
        numeric input that the symbolic trace cannot follow).

    Examples
    --------
    >>> from torch import nn
    >>> t = trace_shapes(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,))
    >>> t.output_shape, t.total_params, t.method
    ((3,), 15, 'fx')
    >>> print(t)
    layer  type    output shape  parameters
    -----  ------  ------------  ----------
    input          4
    0      Linear  3                     15
    1      ReLU    3                      0
    total                                15
    """

    rows: tuple
    input_shape: tuple
    output_shape: tuple
    total_params: Size
    trainable_params: Size
    constraints: tuple = ()
    untraced: tuple = ()
    adapt: bool = True
    method: str = "fx"

    def row(self, name: str) -> LayerRow:
        """The first row with this name (``KeyError`` listing the names if none)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows are {[r.name for r in self.rows]}")

    def subs(self, values: Mapping) -> ShapeTrace:
        """Substitute numbers (or expressions) for symbols everywhere.

        Constraints that become true are dropped; false ones are kept (the module as built
        does not accept that input, the counts are those of the adapted architecture).

        Examples
        --------
        >>> import sympy as sp
        >>> from torch import nn
        >>> H = sp.Symbol("H", integer=True, positive=True)
        >>> t = trace_shapes(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()), (3, H, H))
        >>> t.output_shape, t.subs({H: 9}).output_shape
        ((3*floor(H/2)**2,), (48,))
        """
        def s(x):
            if isinstance(x, sp.Basic):
                return _out(x.subs(values))
            if isinstance(x, tuple):
                return tuple(s(v) for v in x)
            return x

        rows = tuple(replace(r, input_shape=s(r.input_shape), output_shape=s(r.output_shape),
                             params=s(r.params), trainable=s(r.trainable),
                             terms=tuple((n, s(f)) for n, f in r.terms)) for r in self.rows)
        cons = tuple(Constraint(c.layer, c.parameter, s(c.required), c.actual)
                     for c in self.constraints)
        cons = tuple(c for c in cons if c.equation is not sp.true)
        return replace(self, rows=rows, input_shape=s(self.input_shape),
                       output_shape=s(self.output_shape), total_params=s(self.total_params),
                       trainable_params=s(self.trainable_params), constraints=cons)

    def to_markdown(self, formula: bool = True, param_free: bool = True, input_row: bool = True,
                    totals: bool = True) -> str:
        r"""The trace as a Markdown table: layer, type, output shape, parameters.

        The cells hold LaTeX (``$...$``), for a notebook or ``glue("key", Markdown(text))``
        and ``{glue:md}`` in a MyST page.

        Parameters
        ----------
        formula : bool
            Write each count as its product of factors, e.g. :math:`32 \cdot 3 \cdot 5
            \cdot 5 + 32 = 2{,}432`.
        param_free : bool
            Include layers without parameters (activations, pooling, flatten).
        input_row, totals : bool
            Add a first row with the input shape and a last row with the total.

        Returns
        -------
        str

        Examples
        --------
        >>> from torch import nn
        >>> t = trace_shapes(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,))
        >>> print(t.to_markdown())
        | layer | type | output shape | parameters |
        |:---|:---|:---|---:|
        | input |  | $4$ |  |
        | `0` | Linear | $3$ | $3 \cdot 4 + 3 = 15$ |
        | `1` | ReLU | $3$ | $0$ |
        | **total** |  |  | $15$ |
        """
        return self._table("markdown", formula, param_free, input_row, totals)

    def to_html(self, formula: bool = True, param_free: bool = True, input_row: bool = True,
                totals: bool = True) -> str:
        r"""The table of :meth:`to_markdown` as HTML, with ``\(...\)`` for MathJax."""
        return self._table("html", formula, param_free, input_row, totals)

    def to_text(self, param_free: bool = True, input_row: bool = True,
                totals: bool = True) -> str:
        """The trace as a plain-text table for a terminal; ``str(trace)`` is this.

        Examples
        --------
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(),
        ...                     nn.Linear(8 * 30 * 30, 10))
        >>> print(trace_shapes(net, (3, 32, 32)))
        layer  type     output shape  parameters
        -----  -------  ------------  ----------
        input           3 x 32 x 32
        0      Conv2d   8 x 30 x 30          224
        1      ReLU     8 x 30 x 30            0
        2      Flatten  7200                   0
        3      Linear   10                72,010
        total                             72,234
        """
        return self._table("text", False, param_free, input_row, totals)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _table(self, fmt: str, formula: bool, param_free: bool, input_row: bool,
               totals: bool) -> str:
        for name, flag in (("formula", formula), ("param_free", param_free),
                           ("input_row", input_row), ("totals", totals)):
            check_bool(name, flag)
        text = fmt == "text"

        def count(x: Any) -> str:
            return (f"{x:,}" if isinstance(x, int) else str(x)) if text else f"${_latex(x)}$"

        def shape(s: tuple) -> str:
            if text:
                return " x ".join(str(d) for d in s) if s else "1"
            return f"${_shape_latex(s)}$"

        body = []
        if input_row:
            body.append(["input", "", shape(self.input_shape), ""])
        for r in self.rows:
            if not param_free and not r.terms:
                continue
            if r.shared:
                cell = "shared (counted above)"
            elif formula and 0 < len(r.terms) <= 4 and not (len(r.terms) == 1
                                                              and len(r.terms[0][1]) == 1):
                cell = f"${r.formula()} = {_latex(r.params)}$"
            else:
                cell = count(r.params)
            body.append([r.name if text else f"`{r.name}`", r.type, shape(r.output_shape), cell])
        if totals:
            bold = "{}" if text else "**{}**"
            body.append([bold.format("total"), "", "", count(self.total_params)])
            if sp.sympify(self.trainable_params) != sp.sympify(self.total_params):
                body.append([bold.format("trainable"), "", "", count(self.trainable_params)])
        return format_table(["layer", "type", "output shape", "parameters"], body, fmt,
                            align="lllr")


def _input_shapes(input_shape: Any) -> list[tuple]:
    def is_shape(s):
        return isinstance(s, (tuple, list)) and all(
            isinstance(d, (int, sp.Basic)) and not isinstance(d, bool) for d in s)

    if is_shape(input_shape):
        shapes = [tuple(input_shape)]
    elif isinstance(input_shape, (tuple, list)) and input_shape and all(is_shape(s)
                                                                      for s in input_shape):
        shapes = [tuple(s) for s in input_shape]
    else:
        raise TypeError(f"input_shape must be a tuple of ints/sympy expressions, or a list of "
                        f"such tuples (one per forward argument), got {input_shape!r}")
    for s in shapes:
        for d in s:
            _size("input_shape entry", d)
            for sym in sp.sympify(d).free_symbols:
                if not (sym.is_integer and sym.is_positive):
                    raise ValueError(f"input_shape symbol {sym} must be declared integer=True, "
                                     f"positive=True (sizes are positive integers), e.g. "
                                     f"sympy.Symbol('{sym}', integer=True, positive=True)")
    return shapes


class _Root(nn.Module):
    """Holds a single layer under its class name so that it can be traced as a child."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.name = type(layer).__name__
        self.add_module(self.name, layer)


class _Root1(_Root):
    def forward(self, a):
        return getattr(self, self.name)(a)


class _Root2(_Root):
    def forward(self, a, b):
        return getattr(self, self.name)(a, b)


class _Root3(_Root):
    def forward(self, a, b, c):
        return getattr(self, self.name)(a, b, c)


def _wrap_root(layer: nn.Module, n_inputs: int) -> nn.Module:
    if not 1 <= n_inputs <= 3:
        raise ValueError(f"a single layer takes 1 to 3 inputs, input_shape gives {n_inputs}")
    return (_Root1, _Root2, _Root3)[n_inputs - 1](layer)


def trace_shapes(module: nn.Module, input_shape: Any, adapt: bool = True) -> ShapeTrace:
    r"""Output shape and parameter count of every layer, for a numeric or symbolic input.

    Explanation
    -----------
    The module's ``forward`` is recorded with ``torch.fx`` (layers with a known rule are
    leaves; containers and custom modules are traced into, so ``nn.Sequential``, nested
    blocks, residual additions, ``torch.flatten`` and ``x.view(x.size(0), -1)`` all work).
    Then the shapes are propagated with SymPy: convolution and pooling sizes come from
    :func:`dlmath.conv.conv_output_size` (floors, and ceilings for ``ceil_mode``), and each
    layer's parameters from its formula (e.g. :func:`conv_params`).

    The batch dimension is left out of the result.  ``input_shape`` is one example's shape;
    where the first layer is a convolution, a pooling or a 2-d/3-d normalisation layer,
    which reads ``(C, *spatial)`` per example, a shape with one more dimension is read as
    batched, as torch reads it (``(8, 3, 32, 32)`` and ``(3, 32, 32)`` give the same trace).
    The tracer puts the batch at dimension 0, so sequence layers (LSTM, GRU, RNN,
    MultiheadAttention) are traced batch-first whatever their ``batch_first`` flag: per
    example, their input is ``(L, features)`` either way, and neither their output's feature
    size nor their parameter count depends on the flag.

    **Modules the symbolic trace cannot follow.**  A layer without a formula here
    (``nn.TransformerEncoderLayer``, a custom layer calling ``torch.sin``) or a ``forward``
    with data-dependent control flow stops the symbolic trace.  For a numeric
    ``input_shape`` the trace is then taken from one forward pass (run twice, with batch
    sizes 1 and 2, to tell the batch dimension apart) on zero inputs, with hooks on every
    module: a row for every module call that is a leaf of the call tree or owns parameters of
    its own, and ``method="forward"``.  The module runs in evaluation mode (restored
    afterwards), on the device and dtype of its parameters (integer inputs if floating-point
    ones fail, for an embedding).  A symbolic size needs the symbolic trace: then the error
    stands.

    **Sizes fixed at construction.**  A ``Linear`` after a ``Flatten`` was built for one
    input size (``in_features``); with a symbolic input the flattened size is a formula,
    say :math:`128\lfloor H/8\rfloor\lfloor W/8\rfloor`.  The trace records a
    :class:`Constraint` (what ``in_features`` must be, and what it is) and, with
    ``adapt=True`` (default), counts the layer as if built for the size it receives, so that
    ``total_params`` is the count of the architecture as a function of the input size (use
    ``subs`` to evaluate it).  With ``adapt=False`` the layer keeps the count of the module as
    built.  The same holds for ``in_channels``, ``num_features``, ``input_size``,
    ``normalized_shape`` and ``embed_dim``.  With a numeric input a mismatch raises, as the
    forward pass would.  ``LazyLinear`` takes whatever it receives.

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : tuple of int or sympy.Expr, or a list of such tuples
        One example's shape, e.g. ``(3, H, W)`` or ``(3, 48, 48)`` (or a batched one, see
        above); a list gives one shape per ``forward`` argument.  Symbols must be
        ``integer=True, positive=True``.
    adapt : bool
        Count constrained layers for the size they receive (see above).

    Returns
    -------
    ShapeTrace
        ``rows`` (one :class:`LayerRow` per layer call and tensor operation), the totals,
        ``constraints`` and the names of parameters the forward pass did not use.

    Raises
    ------
    ValueError
        A shape mismatch, an input too small for a kernel; with a symbolic size, a layer or
        operation the tracer does not know (the message names it and the module that calls
        it) or a ``forward`` that ``torch.fx`` cannot record (data-dependent control flow);
        with a numeric one, the same and a failed forward pass.
    TypeError
        If ``module`` is not a module, ``input_shape`` is not a shape or ``adapt`` is not a
        bool.

    Examples
    --------
    >>> import sympy as sp
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    >>> t = trace_shapes(net, (3, 32, 32))
    >>> [(r.name, r.output_shape, r.params) for r in t.rows if r.params]
    [('0', (8, 32, 32), 224), ('4', (10,), 20490)]
    >>> t.total_params
    20714
    >>> H, W = sp.symbols("H W", integer=True, positive=True)
    >>> ts = trace_shapes(net, (3, H, W))
    >>> ts.row("3").output_shape
    (8*floor(H/2)*floor(W/2),)
    >>> ts.constraints[0].required, ts.constraints[0].actual
    (8*floor(H/2)*floor(W/2), 2048)
    >>> ts.total_params
    80*floor(H/2)*floor(W/2) + 234
    >>> enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> te = trace_shapes(enc, (5, 8))          # no formula for this layer: a forward pass
    >>> te.method, te.output_shape, te.total_params
    ('forward', (5, 8), 600)
    >>> trace_shapes(nn.Sequential(nn.Linear(4, 2), nn.Bilinear(2, 2, 1)), (4,))
    Traceback (most recent call last):
    ...
    ValueError: trace_shapes does not know the layer '1' (Bilinear); known layers: ...

    See Also
    --------
    count_params : the number for the module as built.
    count_params_sym : the total as a formula in the input size.
    ShapeTrace.to_text, ShapeTrace.to_markdown : the rows as a table.
    dlmath.conv.conv_output_size : the size rule of every convolution and pooling layer.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Reed et al., "torch.fx: Practical Program
    Capture and Transformation for Deep Learning in Python" (2022).
    """
    _check_module(module)
    adapt = check_bool("adapt", adapt)
    shapes = _input_shapes(input_shape)
    try:
        return _trace_fx(module, shapes, adapt)
    except _CannotFollow as err:
        if not all(isinstance(d, int) or d.is_Integer for s in shapes for d in s):
            raise ValueError(str(err)) from None           # a symbolic size needs the fx trace
        return _trace_forward(module, shapes, adapt, str(err))


class _CannotFollow(ValueError):
    """The symbolic trace met a layer, an operation or a ``forward`` it cannot follow."""


def _without_batch(module: nn.Module, graph: fx.Graph, shapes: list[tuple]) -> list[tuple]:
    """Drop a leading batch dimension from the first input's shape where the first layer tells:
    a convolution, pooling or 2-d/3-d normalisation layer reads ``(C, *spatial)`` per example
    (torch accepts the shape with and without the batch there, and so does the trace)."""
    first = next((n for n in graph.nodes if n.op == "call_module"), None)
    if first is None:
        return shapes
    m = module.get_submodule(first.target)
    rule = _rule_for(m)
    if rule in (_rule_conv, _rule_pool, _rule_adaptive_pool) or (
            rule is _rule_norm and not isinstance(m, nn.GroupNorm) and _nd(m) > 1):
        if len(shapes[0]) == _nd(m) + 2:
            return [shapes[0][1:], *shapes[1:]]
    return shapes


def _trace_fx(module: nn.Module, shapes: list[tuple], adapt: bool) -> ShapeTrace:
    """The symbolic trace: torch.fx records ``forward``, SymPy follows the shapes."""
    if _Tracer().is_leaf_module(module, ""):   # fx never treats the root as a leaf: wrap it
        module = _wrap_root(module, len(shapes))
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as err:  # torch.fx raises many kinds of errors on untraceable code
        scope = tracer._scope[-1] if tracer._scope else "the top-level module"
        raise _CannotFollow(f"torch.fx cannot record the forward pass (in {scope!r}): "
                            f"{type(err).__name__}: {err}") from None
    shapes = _without_batch(module, graph, shapes)

    ctx = _Context(adapt)
    env: dict[fx.Node, Any] = {}
    rows: list[LayerRow] = []
    counted: set[int] = set()              # ids of parameter tensors already in the totals
    total, trainable = sp.Integer(0), sp.Integer(0)
    placeholders = 0
    out_value = None

    def where(scope: str) -> str:
        return f"module {scope!r}" if scope else "the top-level forward"

    for node in graph.nodes:
        if node.op == "placeholder":
            if placeholders < len(shapes):
                env[node] = _T((_B, *shapes[placeholders]))
            elif node.args:
                env[node] = node.args[0]
            else:
                raise ValueError(f"forward argument {node.target!r} needs a shape: input_shape "
                                 f"gives {len(shapes)}")
            placeholders += 1
            continue
        if node.op == "output":
            out_value = fx.node.map_arg(node.args[0], lambda n: env[n])
            break
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        x_in = _first_tensor(args)
        in_shape = _per_example(x_in.shape) if x_in else ()
        scope = node.meta.get("dlmath_scope", "")

        if node.op == "call_module":
            m = module.get_submodule(node.target)
            ctx.name, ctx.type = node.target, type(m).__name__
            rule = _rule_for(m)
            if rule is None:
                raise _CannotFollow(f"trace_shapes does not know the layer {node.target!r} "
                                 f"({type(m).__name__}); known layers: "
                                 f"{', '.join(sorted(t.__name__ for t in _RULES))}")
            if not isinstance(args[0] if args else None, _T):
                raise ctx.error("its input is not a tensor")
            try:
                value, terms = rule(ctx, m, *args, **kwargs)
            except ValueError as err:
                raise (err if str(err).startswith("layer ") else ctx.error(str(err))) from None
            params = dict(m.named_parameters())
            new = [n for n in terms if n not in params or id(params[n]) not in counted]
            for n in new:   # every parameter tensor is counted once (shared or tied weights)
                total += _prod(terms[n])
                if n not in params or params[n].requires_grad:
                    trainable += _prod(terms[n])
                if n in params:
                    counted.add(id(params[n]))
            out_t = _first_tensor(value)
            rows.append(LayerRow(
                node.target, type(m).__name__, in_shape,
                _per_example(out_t.shape) if out_t else (), _total(terms),
                _total({n: f for n, f in terms.items() if n not in params
                        or params[n].requires_grad}),
                tuple(terms.items()), shared=bool(terms) and not new))
            env[node] = value

        elif node.op == "get_attr":
            obj = module
            for part in node.target.split("."):
                obj = getattr(obj, part)
            env[node] = _T(tuple(obj.shape)) if isinstance(obj, torch.Tensor) else obj
            if isinstance(obj, nn.Parameter):
                n = obj.numel()
                shared = id(obj) in counted
                if not shared:
                    counted.add(id(obj))
                    total += n
                    trainable += n if obj.requires_grad else 0
                rows.append(LayerRow(node.target, "Parameter", (), tuple(obj.shape), n,
                                     n if obj.requires_grad else 0,
                                     ((node.target, tuple(obj.shape) or (1,)),), shared))

        else:  # call_function / call_method
            name = _op_name(node)
            rule = (_METHODS if node.op == "call_method" else _FUNCS).get(node.target)
            if rule is None:
                raise _CannotFollow(f"trace_shapes does not know the operation {name} "
                                 f"(called in {where(scope)})")
            try:
                value = rule(*args, **kwargs)
            except (ValueError, TypeError, IndexError) as err:
                raise ValueError(f"operation {name} in {where(scope)}: {err}") from None
            env[node] = value
            bookkeeping = node.target in (operator.getitem, builtins.getattr) and not isinstance(
                args[0], _T)                        # picking from a tuple: not a layer
            if isinstance(value, _T) and not bookkeeping:
                rows.append(LayerRow(f"{scope}.{node.name}" if scope else node.name, name,
                                     in_shape, _per_example(value.shape)))

    out_t = _first_tensor(out_value)
    return ShapeTrace(
        rows=tuple(rows),
        input_shape=tuple(_out(sp.sympify(d)) for d in shapes[0]),
        output_shape=_per_example(out_t.shape) if out_t else (),
        total_params=_out(total),
        trainable_params=_out(trainable),
        constraints=tuple(Constraint(*c) for c in ctx.constraints),
        untraced=tuple(n for n, p in module.named_parameters() if id(p) not in counted),
        adapt=adapt,
    )


# --------------------------------------------------------------------------------------
# The numeric trace: one forward pass with hooks, where torch.fx cannot follow
# --------------------------------------------------------------------------------------

def _shape(value: Any) -> tuple | None:
    """The shape of the first tensor in ``value`` (a tensor, or nested tuples and lists)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        for v in value:
            found = _shape(v)
            if found is not None:
                return found
    return None


def _one_example(a: tuple | None, b: tuple | None) -> tuple:
    """A shape seen with two batch sizes, without the one dimension that changed with them."""
    if a is None:
        return ()
    changed = [i for i, (x, y) in enumerate(zip(a, b or ())) if x != y]
    if b is not None and len(a) == len(b) and len(changed) == 1:
        return a[:changed[0]] + a[changed[0] + 1:]
    return a


def _record_calls(module: nn.Module, inputs: list[torch.Tensor]) -> list[list]:
    """``[module, input shape, output shape]`` of every module call, in the order they start."""
    calls: list[list] = []
    open_calls: list[int] = []

    def pre(m, args):
        open_calls.append(len(calls))
        calls.append([m, _shape(args), None])

    def post(m, args, out):
        calls[open_calls.pop()][2] = _shape(out)

    hooks = [h for m in module.modules() for h in (m.register_forward_pre_hook(pre),
                                                    m.register_forward_hook(post))]
    try:
        module(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return calls


def _forward_twice(module: nn.Module, shapes: list[tuple]) -> tuple[list, list, tuple]:
    """Run ``module`` on zero inputs with two batch sizes; the first way of feeding it that
    works: the shapes as one example each (batch 1 and 2 in front), else the first shape as
    already batched; floating-point inputs, else integer ones (token indices)."""
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else \
        torch.get_default_dtype()
    device = param.device if param is not None else None
    ways = [[(b, *s) for s in shapes] for b in (1, 2)], \
        [[(b, *shapes[0][1:]), *shapes[1:]] for b in (shapes[0][0], shapes[0][0] + 1)]
    errors = []
    modes = {m: m.training for m in module.modules()}
    module.eval()                      # no dropout, no running statistics updated
    try:
        for batched, runs in enumerate(ways):
            if batched and len(shapes[0]) < 2:
                continue
            for dt in (dtype, torch.long):
                try:
                    with torch.enable_grad():   # keeps the layers on their ordinary code path
                        found = [_record_calls(module, [torch.zeros(s, dtype=dt, device=device)
                                                        for s in run]) for run in runs]
                    return found[0], found[1], shapes[0][1:] if batched else shapes[0]
                except Exception as err:  # noqa: BLE001 -- any failure: try the next way
                    errors.append(f"{type(err).__name__}: {err}")
    finally:
        for m, mode in modes.items():
            m.train(mode)
    raise ValueError(errors[0])


def _trace_forward(module: nn.Module, shapes: list[tuple], adapt: bool,
                   why: str) -> ShapeTrace:
    """A trace from one forward pass with hooks (at two batch sizes, to tell the batch apart).

    A row for every module call that is a leaf of the call tree or owns parameters that no
    called submodule owns; its parameters are those, each tensor counted once.
    """
    shapes = [tuple(int(d) for d in s) for s in shapes]
    try:
        calls, calls2, example = _forward_twice(module, shapes)
    except ValueError as err:
        raise ValueError(f"{why}; a forward pass on a zero input of shape {shapes[0]} (one "
                         f"example) failed too: {err}") from None
    names = {id(m): name for name, m in module.named_modules()}
    called = {id(c[0]) for c in calls}
    below = {id(m): [d for d in m.modules() if d is not m and id(d) in called]
             for m in (c[0] for c in calls)}
    rows: list[LayerRow] = []
    counted: set[int] = set()
    seen: set[int] = set()
    total = trainable = 0
    for (m, shape_in, shape_out), (_, shape_in2, shape_out2) in zip(calls, calls2):
        inner = {id(p) for d in below[id(m)] for p in d.parameters()}
        own = [(n, p) for n, p in m.named_parameters() if id(p) not in inner]
        if below[id(m)] and not own:
            continue                                     # a container: its parts have rows
        terms = tuple((n, tuple(p.shape) or (1,)) for n, p in own)
        params = sum(p.numel() for _, p in own)
        shared = id(m) in seen and bool(own)
        seen.add(id(m))
        for _, p in own:
            if id(p) not in counted:
                counted.add(id(p))
                total += p.numel()
                trainable += p.numel() if p.requires_grad else 0
        rows.append(LayerRow(names[id(m)] or type(m).__name__, type(m).__name__,
                             _one_example(shape_in, shape_in2),
                             _one_example(shape_out, shape_out2), params,
                             sum(p.numel() for _, p in own if p.requires_grad), terms, shared))
    root = calls[0] if calls and calls[0][0] is module else None
    out = _one_example(root[2], calls2[0][2]) if root else ()
    return ShapeTrace(
        rows=tuple(rows), input_shape=example, output_shape=out, total_params=total,
        trainable_params=trainable, constraints=(),
        untraced=tuple(n for n, p in module.named_parameters() if id(p) not in counted),
        adapt=adapt, method="forward")
