"""Reference networks whose shapes and parameter counts the book analyses.

Scope: builders for the networks of the source reports (the single-filter CNN of report 000,
the three-block CNN of reports 001 and 003, the CIFAR-10 CNN of report 004), VGG-16, plain
MLPs and stacks of equal convolutions, with named layers so that tables and comparisons line
up across variants; and the parameter count of the single-filter CNN as a formula.  The
networks are built only from layers that :func:`dlmath.params.trace_shapes` knows.
Chapter: :ref:`ch-counting-parameters`.

References: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR 2015), configuration D; Lin, Chen & Yan, "Network In Network" (ICLR 2014)
for global average pooling; Ioffe & Szegedy (ICML 2015) for batch normalisation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Union

import sympy as sp
import torch
from torch import nn

from dlmath._validate import (
    check_bool,
    check_dtype,
    check_entries,
    check_int,
    check_number,
    check_seed,
    check_size,
    int_sequence,
    int_shape,
    int_tuple,
)
from dlmath.conv import conv_output_size, pool_output_size
from dlmath.equivariance import absorb_input_permutation, pixel_permutation
from dlmath.params._rules import _tidy
from dlmath.params import conv_params, linear_params

__all__ = [
    "three_block_cnn", "cifar_cnn", "vgg16", "mlp", "conv_stack",
    "single_filter_cnn", "single_filter_cnn_params_sym",
    "single_filter_fc", "single_filter_fc_params_sym", "image_mlp",
]

Size = Union[int, sp.Expr]


def _flags(**flags: object) -> None:
    for name, value in flags.items():
        check_bool(name, value)


def _conv_weights(layer: str, c_in: int, c_out: int, k: int) -> None:
    check_entries(f"the {layer} weights of in_channels / channels {c_in} -> {c_out} and "
                  f"kernel_size {k}", c_in * c_out * k * k)


def _linear_weights(layer: str, n_in: int, out: str, n_out: int, source: str) -> None:
    """A fully connected layer of n_in inputs (from ``source``) and n_out outputs."""
    check_entries(f"{layer}, of {n_in} inputs (from {source}) and {out} outputs,", n_in * n_out)


def three_block_cnn(in_channels: int = 3, size: int | Sequence[int] = 48,
                    channels: Sequence[int] = (32, 64, 128), hidden: Sequence[int] = (1024, 512),
                    num_classes: int = 6, kernel_size: int = 3, batch_norm: bool = False,
                    global_pool: bool = False, dropout: float = 0.1) -> nn.Sequential:
    r"""Convolutional blocks followed by an MLP: the image classifier of reports 001 and 003.

    Explanation
    -----------
    Block :math:`i` is ``conv`` (:math:`k \times k`, stride 1, "same" padding
    :math:`(k-1)/2`), optional ``bn`` (``BatchNorm2d``), ``relu``, ``pool`` (2×2 max pooling,
    stride 2) and ``drop`` (dropout).  The head is either ``flatten`` (the last map,
    :math:`C \lfloor\lfloor\lfloor H/2\rfloor/2\rfloor/2\rfloor \cdots`, feeds ``fc1``) or,
    with ``global_pool``, ``gap`` (``AdaptiveAvgPool2d(1)``) then ``flatten``, so ``fc1`` sees
    :math:`C` features whatever the input size.  Each hidden layer ``fc{j}`` is followed by
    ``relu{j}``, an optional ``bn{j}`` (``BatchNorm1d``) and, after the first one only,
    ``drop1``.  The output layer ``out`` gives logits (use a cross-entropy loss).  Layer
    names do not change between variants, so traces of the variants can be compared row by
    row.

    Parameters
    ----------
    in_channels : int
        Input channels (3 for RGB).
    size : int or (int, int)
        Input height and width the network is built for; it fixes ``fc1.in_features`` when
        ``global_pool`` is off.
    channels : sequence of int
        Output channels of the blocks.
    hidden : sequence of int
        Widths of the hidden fully connected layers.
    num_classes : int
    kernel_size : int
        Odd kernel size of every convolution.
    batch_norm : bool
        Batch norm after every convolution and every hidden fully connected layer.
    global_pool : bool
        Global average pooling instead of flattening the last feature map.
    dropout : float
        Dropout probability in ``[0, 1)``.

    Returns
    -------
    torch.nn.Sequential
        Children ``block1`` ... (each a ``Sequential``) and ``head``.

    Raises
    ------
    ValueError
        If a size is not a positive int, ``kernel_size`` is even, ``dropout`` is out of range,
        or the input is too small for the pooling layers.
    TypeError
        If ``batch_norm`` or ``global_pool`` is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(three_block_cnn())
    5340742
    >>> count_params(three_block_cnn(batch_norm=True, global_pool=True))
    756742
    >>> three_block_cnn().head.fc1
    Linear(in_features=4608, out_features=1024, bias=True)

    See Also
    --------
    dlmath.params.trace_shapes : the layer table of this network, also for a symbolic size.
    cifar_cnn : the CIFAR-10 network of report 004.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Reports 001 and 003 (question 2).
    """
    _flags(batch_norm=batch_norm, global_pool=global_pool)
    h, w = int_tuple("size", size, 2, 1)
    k = check_int("kernel_size", kernel_size, 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd for 'same' padding, got {k}")
    dropout = check_number("dropout", dropout, interval="[0, 1)")
    channels, hidden = int_sequence("channels", channels), int_sequence("hidden", hidden)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = check_int("in_channels", in_channels, 1)
    for i, c in enumerate(channels, start=1):
        block: OrderedDict[str, nn.Module] = OrderedDict()
        _conv_weights(f"block{i}", c_in, c, k)
        block["conv"] = nn.Conv2d(c_in, c, k, padding=(k - 1) // 2)
        if batch_norm:
            block["bn"] = nn.BatchNorm2d(c)
        block["relu"] = nn.ReLU()
        block["pool"] = nn.MaxPool2d(2, stride=2)
        block["drop"] = nn.Dropout(dropout)
        layers[f"block{i}"] = nn.Sequential(block)
        # "same" convolution keeps the size, the pooling halves it (with a floor)
        h = conv_output_size(conv_output_size(h, k, padding=(k - 1) // 2), 2, stride=2)
        w = conv_output_size(conv_output_size(w, k, padding=(k - 1) // 2), 2, stride=2)
        c_in = c
    head: OrderedDict[str, nn.Module] = OrderedDict()
    if global_pool:
        head["gap"] = nn.AdaptiveAvgPool2d(1)
        features = c_in
    else:
        features = c_in * h * w
    head["flatten"] = nn.Flatten()
    for j, width in enumerate(hidden, start=1):
        _linear_weights(f"fc{j}", features, f"hidden[{j - 1}] = {width}", width,
                        "the last channels and the size" if j == 1 else f"hidden[{j - 2}]")
        head[f"fc{j}"] = nn.Linear(features, width)
        head[f"relu{j}"] = nn.ReLU()
        if batch_norm:
            head[f"bn{j}"] = nn.BatchNorm1d(width)
        if j == 1:
            head["drop1"] = nn.Dropout(dropout)
        features = width
    check_int("num_classes", num_classes, 1)
    _linear_weights("out", features, f"num_classes = {num_classes}", num_classes, "hidden[-1]")
    head["out"] = nn.Linear(features, num_classes)
    layers["head"] = nn.Sequential(head)
    return nn.Sequential(layers)


def cifar_cnn(in_channels: int = 3, size: int = 32, channels: Sequence[int] = (32, 64, 64),
              kernel_size: int = 5, hidden: int = 1000, num_classes: int = 10) -> nn.Sequential:
    r"""Three 5×5 convolutions with 2×2 max pooling and two fully connected layers.

    Explanation
    -----------
    The CIFAR-10 network of report 004 (questions II-10 and II-15): ``conv{i}``
    (:math:`5 \times 5`, stride 1, padding 2), ``relu{i}``, ``pool{i}`` (2×2, stride 2) for
    :math:`i = 1, 2, 3`, then ``flatten``, ``fc4`` (with ``relu4``) and ``fc5`` (logits).
    On a 32×32 input the maps are 32, 16, 8 and 4 pixels wide, so ``fc4`` reads
    :math:`4 \cdot 4 \cdot 64 = 1024` features.

    Parameters
    ----------
    in_channels : int
    size : int
        Square input size the network is built for (fixes ``fc4.in_features``).
    channels : sequence of int
        Output channels of the three convolutions.
    kernel_size : int
        Odd kernel size; the padding is ``(kernel_size - 1) // 2``.
    hidden : int
        Width of ``fc4``.
    num_classes : int

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If a size is not a positive int, ``kernel_size`` is even, or ``size`` is too small.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> net = cifar_cnn()
    >>> net.fc4.in_features, count_params(net)
    (1024, 1191170)

    See Also
    --------
    three_block_cnn : the network of reports 001 and 003.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Report 004 (questions II-10, II-11, II-15).
    """
    k = check_int("kernel_size", kernel_size, 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {k}")
    n = check_int("size", size, 1)
    channels = int_sequence("channels", channels)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = check_int("in_channels", in_channels, 1)
    for i, c in enumerate(channels, start=1):
        _conv_weights(f"conv{i}", c_in, c, k)
        layers[f"conv{i}"] = nn.Conv2d(c_in, c, k, padding=(k - 1) // 2)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"pool{i}"] = nn.MaxPool2d(2, stride=2)
        n = conv_output_size(conv_output_size(n, k, padding=(k - 1) // 2), 2, stride=2)
        c_in = c
    last = len(channels) + 1
    layers["flatten"] = nn.Flatten()
    check_int("hidden", hidden, 1)
    check_int("num_classes", num_classes, 1)
    _linear_weights(f"fc{last}", c_in * n * n, f"hidden = {hidden}", hidden,
                    "the last channels and the size")
    _linear_weights(f"fc{last + 1}", hidden, f"num_classes = {num_classes}", num_classes,
                    "hidden")
    layers[f"fc{last}"] = nn.Linear(c_in * n * n, hidden)
    layers[f"relu{last}"] = nn.ReLU()
    layers[f"fc{last + 1}"] = nn.Linear(hidden, num_classes)
    return nn.Sequential(layers)


#: VGG-16 (configuration D): output channels of the 3x3 convolutions, "M" = 2x2 max pooling.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
          adaptive_pool: bool = True, size: int = 224) -> nn.Sequential:
    r"""VGG-16 (configuration D of Simonyan & Zisserman), laid out as torchvision does.

    Explanation
    -----------
    ``features``: thirteen 3×3 convolutions (padding 1, each followed by a ReLU, and with
    ``batch_norm`` by a ``BatchNorm2d`` before the ReLU) in five stages closed by 2×2 max
    pooling; ``avgpool``: ``AdaptiveAvgPool2d(7)``;
    ``classifier``: 4096-4096-``num_classes`` with ReLU and dropout.  With
    ``adaptive_pool=False`` there is no ``avgpool`` and the first classifier layer is built
    for a ``size``×``size`` input (:math:`512 \lfloor size/32 \rfloor^2` features).

    Parameters
    ----------
    num_classes, in_channels : int
    batch_norm : bool
        The "VGG-16-BN" variant.
    adaptive_pool : bool
        Keep torchvision's adaptive average pooling to 7×7.
    size : int
        Input size the classifier is built for when ``adaptive_pool`` is off.

    Returns
    -------
    torch.nn.Sequential
        Children ``features``, ``avgpool`` (if ``adaptive_pool``), ``flatten``, ``classifier``.

    Raises
    ------
    ValueError
        If a size is not a positive int or ``size`` is smaller than 32.
    TypeError
        If a flag is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(vgg16())
    138357544

    See Also
    --------
    three_block_cnn : a small network of the same pattern (3×3 convolutions and pooling).

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Simonyan & Zisserman (2015), table 1, column D.
    """
    _flags(batch_norm=batch_norm, adaptive_pool=adaptive_pool)
    n = check_int("size", size, 1)
    feats: list[nn.Module] = []
    c_in = check_int("in_channels", in_channels, 1)
    for v in _VGG16:
        if v == "M":
            feats.append(nn.MaxPool2d(2, stride=2))
            n = conv_output_size(n, 2, stride=2)
            continue
        _conv_weights("features", c_in, v, 3)
        feats.append(nn.Conv2d(c_in, v, 3, padding=1))
        if batch_norm:
            feats.append(nn.BatchNorm2d(v))
        feats.append(nn.ReLU())
        c_in = v
    layers: OrderedDict[str, nn.Module] = OrderedDict(features=nn.Sequential(*feats))
    if adaptive_pool:
        layers["avgpool"] = nn.AdaptiveAvgPool2d(7)
        n = 7
    layers["flatten"] = nn.Flatten()
    check_int("num_classes", num_classes, 1)
    _linear_weights("classifier", c_in * n * n, "4096", 4096, "the size")
    _linear_weights("classifier", 4096, f"num_classes = {num_classes}", num_classes, "4096")
    layers["classifier"] = nn.Sequential(
        nn.Linear(c_in * n * n, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, num_classes))
    return nn.Sequential(layers)


def mlp(sizes: Sequence[int], bias: bool = True, activation: type[nn.Module] = nn.ReLU
        ) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> sizes[1] -> … -> sizes[-1]``.

    Explanation
    -----------
    Layers ``fc1``, ``act1``, ``fc2``, ... with an activation between consecutive linear
    layers and none after the last.  It takes inputs of shape ``(sizes[0],)``; put an
    ``nn.Flatten()`` in front for images.

    Parameters
    ----------
    sizes : sequence of int
        At least two widths.
    bias : bool
        Biases in every layer.
    activation : type of torch.nn.Module
        Instantiated without arguments between layers.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If fewer than two sizes are given or one is not a positive int.
    TypeError
        If ``bias`` is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(mlp([64, 32, 10]))            # 64*32 + 32 + 32*10 + 10
    2410

    See Also
    --------
    dlmath.params.linear_params : the count of each layer.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.
    """
    _flags(bias=bias)
    sizes = int_sequence("sizes", sizes, 1, min_len=2)
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise TypeError(f"activation must be a torch.nn.Module class such as nn.ReLU, got "
                        f"{activation!r}")
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        _linear_weights(f"fc{i}", a, f"sizes[{i}] = {b}", b, f"sizes[{i - 1}]")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        if i > 1:
            layers[f"act{i - 1}"] = activation()
        layers[f"fc{i}"] = nn.Linear(a, b, bias=bias)
    return nn.Sequential(layers)


def conv_stack(channels: int, kernel_size: int, depth: int, bias: bool = True) -> nn.Sequential:
    r"""``depth`` convolutions :math:`k \times k`, ``channels`` in and out, with ReLUs.

    Explanation
    -----------
    Stride 1 and "same" padding, so a stack of :math:`n` layers has receptive field
    :math:`n(k-1)+1` and :math:`n\,C(C k^2 + 1)` parameters.  Used to compare one large
    kernel with several small ones at equal receptive field.

    Parameters
    ----------
    channels : int
        :math:`C`.
    kernel_size : int
        Odd :math:`k`.
    depth : int
        :math:`n \ge 1`.
    bias : bool

    Returns
    -------
    torch.nn.Sequential
        Layers ``conv1``, ``relu1``, ..., ``conv{n}`` (no ReLU after the last).

    Raises
    ------
    ValueError
        If a size is not a positive int or ``kernel_size`` is even.
    TypeError
        If ``bias`` is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(conv_stack(64, 3, 3)), count_params(conv_stack(64, 7, 1))
    (110784, 200768)

    See Also
    --------
    dlmath.params.conv_params : the count of each layer.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Simonyan & Zisserman (2015), section 2.3.
    """
    _flags(bias=bias)
    c, k, n = (check_int("channels", channels, 1), check_int("kernel_size", kernel_size, 1),
               check_int("depth", depth, 1, limit=10_000))        # one module per layer
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd for 'same' padding, got {k}")
    _conv_weights("each conv", c, c, k)
    check_entries(f"the weights of depth={n} convolutions of {c} channels, kernel_size {k}",
                  n * c * c * k * k)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, n + 1):
        layers[f"conv{i}"] = nn.Conv2d(c, c, k, padding=(k - 1) // 2, bias=bias)
        if i < n:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers)


def single_filter_cnn(height: int, width: int, kernel_size: int | Sequence[int],
                      num_classes: int = 3, bias: bool = True) -> nn.Sequential:
    r"""One :math:`M \times N` filter, 2×2 max pooling and a linear output layer.

    Explanation
    -----------
    The network of report 000 (question 1c) on a one-channel :math:`H \times W` image:
    ``conv`` (one filter, stride 1, no padding) gives :math:`(H-M+1) \times (W-N+1)`,
    ``pool`` (2×2, stride 2) gives :math:`\lfloor (H-M+1)/2 \rfloor \times
    \lfloor (W-N+1)/2 \rfloor`, then ``flatten`` and ``out`` (``num_classes`` units).

    Parameters
    ----------
    height, width : int
        :math:`H, W`.
    kernel_size : int or (int, int)
        :math:`(M, N)`.
    num_classes : int
    bias : bool
        Biases in both layers (the report counts weights only: pass ``False``).

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If a size is not a positive int or the image is too small for the kernel and pooling.
    TypeError
        If ``bias`` is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(single_filter_cnn(28, 28, 5, bias=False))   # 25 + 3 * 12 * 12
    457

    See Also
    --------
    single_filter_cnn_params_sym : the count as a formula in H, W, M, N.
    single_filter_fc : the fully connected network it is compared with.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Report 000 (question 1c).
    """
    _flags(bias=bias)
    m, n = int_tuple("kernel_size", kernel_size, 2, 1)
    hp, wp = _pooled_map(check_int("height", height, 1), check_int("width", width, 1), m, n)
    check_int("num_classes", num_classes, 1)
    _linear_weights("out", hp * wp, f"num_classes = {num_classes}", num_classes,
                    "the height and width")
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(1, 1, (m, n), bias=bias), pool=nn.MaxPool2d(2, stride=2),
        flatten=nn.Flatten(), out=nn.Linear(hp * wp, num_classes, bias=bias)))


def single_filter_cnn_params_sym(height: Size, width: Size, kernel_h: Size, kernel_w: Size,
                                 num_classes: Size = 3, bias: bool = True) -> Size:
    r"""Parameter count of :func:`single_filter_cnn` as a formula in :math:`H, W, M, N`.

    Explanation
    -----------
    .. math:: MN + K \left\lfloor \tfrac{H-M+1}{2} \right\rfloor
              \left\lfloor \tfrac{W-N+1}{2} \right\rfloor \;(+\,1 + K \text{ with biases}).

    Each floor belongs to one side of the pooled map: the map has
    :math:`\lfloor (H-M+1)/2 \rfloor` rows and :math:`\lfloor (W-N+1)/2 \rfloor` columns.

    Parameters
    ----------
    height, width, kernel_h, kernel_w : int or sympy.Expr
        :math:`H, W, M, N` (symbols: ``integer=True, positive=True``).
    num_classes : int or sympy.Expr
        :math:`K`.
    bias : bool

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`dlmath.conv.conv_output_size` and :func:`dlmath.params.conv_params`.

    Examples
    --------
    >>> import sympy as sp
    >>> H, W, M, N = sp.symbols("H W M N", integer=True, positive=True)
    >>> single_filter_cnn_params_sym(H, W, M, N, bias=False)
    M*N + 3*floor(H/2 - M/2 + 1/2)*floor(-N/2 + W/2 + 1/2)
    >>> single_filter_cnn_params_sym(28, 28, 5, 5, bias=False)
    457

    See Also
    --------
    single_filter_cnn : the network itself (count it with ``count_params``).
    single_filter_fc_params_sym : the fully connected counterpart.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Report 000 (question 1c).
    """
    check_bool("bias", bias)
    check_size("num_classes", num_classes)
    hp, wp = _pooled_map(height, width, kernel_h, kernel_w)
    total = (conv_params(1, 1, (kernel_h, kernel_w), bias=bias)
             + linear_params(hp * wp, num_classes, bias=bias))
    return int(total) if isinstance(total, sp.Basic) and total.is_Integer else total


def _pooled_map(height: Size, width: Size, kernel_h: Size, kernel_w: Size) -> tuple:
    """Rows and columns after the M x N filter (valid) and 2x2 max pooling (stride 2)."""
    for name, value in (("height", height), ("width", width), ("kernel_h", kernel_h),
                        ("kernel_w", kernel_w)):
        check_size(name, value)
    return tuple(_tidy(pool_output_size(conv_output_size(n, k), 2))
                 for n, k in ((height, kernel_h), (width, kernel_w)))


def single_filter_fc(height: int, width: int, kernel_size: int | Sequence[int],
                     num_classes: int = 3, bias: bool = True) -> nn.Sequential:
    r"""The fully connected counterpart of :func:`single_filter_cnn`.

    Explanation
    -----------
    ``flatten``, then ``fc1`` from the :math:`HW` pixels to as many hidden units as the
    convolutional network's pooled map has (:math:`\lfloor (H-M+1)/2 \rfloor
    \lfloor (W-N+1)/2 \rfloor`), ``act1`` (ReLU) and ``fc2`` to ``num_classes`` outputs:
    the comparison of report 000 (question 1c).

    Parameters
    ----------
    height, width : int
    kernel_size : int or (int, int)
        The filter of the network it is compared with; it fixes the hidden width.
    num_classes : int
    bias : bool

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        As :func:`single_filter_cnn`.
    TypeError
        If ``bias`` is not a bool.

    Examples
    --------
    >>> from dlmath.params import count_params
    >>> count_params(single_filter_fc(28, 28, 5, bias=False))    # 144 * (784 + 3)
    113328

    See Also
    --------
    single_filter_fc_params_sym : the count as a formula.
    single_filter_cnn : the convolutional network.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Report 000 (question 1c).
    """
    _flags(bias=bias)
    m, n = int_tuple("kernel_size", kernel_size, 2, 1)
    hp, wp = _pooled_map(check_int("height", height, 1), check_int("width", width, 1), m, n)
    check_int("num_classes", num_classes, 1)
    _linear_weights("fc1", height * width, f"{hp * wp} (the pooled map)", hp * wp,
                    "the height and width")
    _linear_weights("fc2", hp * wp, f"num_classes = {num_classes}", num_classes,
                    "the height and width")
    body = mlp([height * width, hp * wp, num_classes], bias=bias)
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), **dict(body.named_children())))


def single_filter_fc_params_sym(height: Size, width: Size, kernel_h: Size, kernel_w: Size,
                                num_classes: Size = 3, bias: bool = True) -> Size:
    r"""Parameter count of :func:`single_filter_fc` as a formula in :math:`H, W, M, N`.

    Explanation
    -----------
    With :math:`u = \lfloor (H-M+1)/2 \rfloor \lfloor (W-N+1)/2 \rfloor` hidden units,
    :math:`u\,HW + K u` weights (:math:`+\,u + K` biases).

    Parameters
    ----------
    height, width, kernel_h, kernel_w : int or sympy.Expr
    num_classes : int or sympy.Expr
    bias : bool

    Returns
    -------
    int or sympy.Expr

    Raises
    ------
    ValueError, TypeError
        As :func:`single_filter_cnn_params_sym`.

    Examples
    --------
    >>> import sympy as sp
    >>> H, W, M, N = sp.symbols("H W M N", integer=True, positive=True)
    >>> sp.factor(single_filter_fc_params_sym(H, W, M, N, bias=False))
    (H*W + 3)*floor(H/2 - M/2 + 1/2)*floor(-N/2 + W/2 + 1/2)

    See Also
    --------
    single_filter_cnn_params_sym : the convolutional network's count.

    References
    ----------
    Chapter: :ref:`ch-counting-parameters`.  Report 000 (question 1c).
    """
    check_bool("bias", bias)
    check_size("num_classes", num_classes)
    hp, wp = _pooled_map(height, width, kernel_h, kernel_w)
    total = (linear_params(height * width, hp * wp, bias=bias)
             + linear_params(hp * wp, num_classes, bias=bias))
    return int(total) if isinstance(total, sp.Basic) and total.is_Integer else total


def image_mlp(image_shape: Sequence[int] = (1, 8, 8), hidden: Sequence[int] = (64,),
              num_classes: int = 10, pixel_permutation_seed: int | None = None,
              dtype: torch.dtype = torch.float32) -> nn.Sequential:
    r"""A fully connected classifier of images: ``flatten`` then :func:`dlmath.models.zoo.mlp`.

    Explanation
    -----------
    Layers ``flatten`` and ``mlp`` (``fc1``, ``act1``, ..., ReLU between linear layers),
    initialised by PyTorch's default from the global random state.  With
    ``pixel_permutation_seed`` the freshly initialised first layer is replaced by
    :func:`~dlmath.equivariance.absorb_input_permutation` of it, with :math:`\pi` =
    :func:`~dlmath.equivariance.pixel_permutation` ``(H*W, seed)``.  Built after the same
    ``torch.manual_seed``, the network without the permutation on the digits and the one
    with it on :func:`~dlmath.data.pixel_permuted_digits` (same seed) compute the same function, before
    and after any amount of training.

    Parameters
    ----------
    image_shape : (C, H, W)
    hidden : sequence of int
        Widths of the hidden layers (may be empty: a linear classifier).
    num_classes : int
    pixel_permutation_seed : int or None
        Absorb this permutation into the first layer; ``None`` for none.
    dtype : torch.dtype
        Of the parameters (``torch.float64`` to compare runs to rounding error).

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError, TypeError
        As :func:`dlmath.models.zoo.mlp`; ``image_shape`` not three positive ints.

    Examples
    --------
    >>> import torch
    >>> from dlmath.equivariance import permute_pixels, pixel_permutation
    >>> _ = torch.manual_seed(0); a = image_mlp()
    >>> _ = torch.manual_seed(0); b = image_mlp(pixel_permutation_seed=3)
    >>> x = torch.rand(5, 1, 8, 8)
    >>> torch.allclose(b(permute_pixels(x, pixel_permutation(64, 3))), a(x), atol=1e-6)
    True
    >>> from dlmath.params import count_params
    >>> count_params(a)                                # 64*64 + 64 + 64*10 + 10
    4810

    See Also
    --------
    dlmath.models.zoo.mlp : the layers.
    dlmath.data.pixel_permuted_digits : the data it is compared on.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    c, h, w = int_shape("image_shape", image_shape)
    check_dtype("dtype", dtype, floating=True)
    hidden = int_sequence("hidden", hidden, 1, min_len=0)
    check_int("num_classes", num_classes, 1)
    if pixel_permutation_seed is not None:
        check_seed("pixel_permutation_seed", pixel_permutation_seed)
    sizes = [c * h * w, *hidden, num_classes]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        check_entries(f"layer {i + 1} of image_shape {(c, h, w)}, hidden {hidden} and "
                      f"num_classes {num_classes}: {a} x {b} weights", a * b)
    body = mlp(sizes)
    if pixel_permutation_seed is not None:
        perm = pixel_permutation(h * w, pixel_permutation_seed)
        body.fc1 = absorb_input_permutation(body.fc1, perm)
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), mlp=body)).to(dtype)
