"""Looking inside a network: the output of one named layer (activation maps).

Scope: :func:`layer_output` runs a model on an input and returns what one of its submodules
produced, through a forward hook, without changing the model; the chapters use it to show
the activation maps of a first convolution layer.  The networks themselves live in
:mod:`dlmath.models.zoo`; training them is :mod:`dlmath.engine.train`.

Chapter: :ref:`ch-training-cnns`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["layer_output"]


def layer_output(model: nn.Module, x: Any, layer: str) -> torch.Tensor:
    """The output of submodule ``layer`` when ``model`` is run on ``x``.

    Explanation
    -----------
    A forward hook on ``model.get_submodule(layer)`` records its output during one forward
    pass (without gradients), and is removed afterwards.  The model's mode (training or
    evaluation) is left as it is: call ``model.eval()`` first for deterministic outputs of
    dropout and batch norm.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor or tuple of torch.Tensor
        The model's input (a tuple is passed as positional arguments).
    layer : str
        Dotted name as in ``model.named_modules()``, e.g. ``"block1.relu"``.

    Returns
    -------
    torch.Tensor
        The layer's output (the first element if it returns a tuple), detached.

    Raises
    ------
    ValueError
        If ``model`` has no submodule called ``layer``; the message lists the names.
    TypeError
        If ``model`` is not a module.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
    >>> layer_output(net, torch.zeros(2, 1, 5, 5), "1").shape
    torch.Size([2, 4, 5, 5])
    >>> layer_output(net, torch.zeros(2, 1, 5, 5), "conv")
    Traceback (most recent call last):
    ...
    ValueError: model has no layer 'conv'; its layers are ['0', '1', '2']

    See Also
    --------
    dlmath.engine.train.Result.model : a trained model to look into.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        raise ValueError(f"model has no layer {layer!r}; its layers are {names}")
    inputs = x if isinstance(x, tuple) else (x,)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise TypeError(f"x must be a torch.Tensor or a tuple of them, got {type(x).__name__}")
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        captured.append((output[0] if isinstance(output, tuple) else output).detach())

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(*inputs)
    except RuntimeError as err:               # a shape or dtype that the model cannot take
        given = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
        raise ValueError(f"the model does not accept x ({given}): {err}") from None
    finally:
        handle.remove()
    return captured[0]
