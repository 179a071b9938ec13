"""How trained classifiers cope with rotated test images.

Scope: :func:`predictions_under_rotation` rotates a test split by each angle of a list
(with :func:`dlmath.data.rotate`: bilinear, about the image centre, zeros outside) and
records every model's predicted class for every image; :func:`accuracy_by_angle` turns
them into accuracies, one curve per model (per seed of a training run).  :func:`rotation_curves`
gathers what the chapter reads from one run: the curves, the predictions at 0° and 180°,
and the accuracy on images rotated by 45° and back.  The models are
plain ``nn.Module`` s, e.g. ``[result.model(i) for i in range(len(result.seeds))]`` for a
:class:`dlmath.engine.train.Result`.

Chapter: :ref:`ch-rotation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dlmath._validate import check_int
from dlmath.data.tensors import TensorSplit, rotate

__all__ = ["predictions_under_rotation", "accuracy_by_angle", "rotation_curves"]


def _models(models: Sequence[nn.Module]) -> list[nn.Module]:
    if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models:
        raise TypeError("models must be a non-empty sequence of nn.Module")
    for i, m in enumerate(models):
        if not isinstance(m, nn.Module):
            raise TypeError(f"models[{i}] must be an nn.Module, got {type(m).__name__}")
    return list(models)


def _angles(angles: Sequence[float]) -> list[float]:
    if isinstance(angles, (str, bytes)) or not isinstance(angles, Sequence) or not angles:
        raise ValueError(f"angles must be a non-empty sequence of numbers, got {angles!r}")
    return [float(a) for a in angles]


def predictions_under_rotation(models: Sequence[nn.Module], split: TensorSplit,
                               angles: Sequence[float], batch_size: int = 1024
                               ) -> torch.Tensor:
    """Predicted class of every model for every image rotated by every angle.

    Explanation
    -----------
    For angle :math:`\\theta` each image is rotated counter-clockwise by :math:`\\theta`
    degrees (:func:`dlmath.data.rotate`), then each model, in evaluation mode and without
    gradients, predicts the class with the largest logit.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Image classifiers returning logits ``(B, K)``.
    split : TensorSplit
        Its first input holds square images ``(N, C, H, W)``.
    angles : sequence of float
        Degrees.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        ``(S, A, N)`` int64: model, angle, image.

    Raises
    ------
    TypeError
        If ``models`` is not a non-empty sequence of modules or ``split`` not a TensorSplit.
    ValueError
        If ``angles`` is empty or ``batch_size`` not positive.

    Examples
    --------
    >>> split = TensorSplit(torch.rand(5, 1, 8, 8), torch.zeros(5, dtype=torch.long))
    >>> top = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    >>> predictions_under_rotation([top, top], split, [0, 90, 180]).shape
    torch.Size([2, 3, 5])

    See Also
    --------
    accuracy_by_angle : the fraction of correct predictions.
    dlmath.data.rotate : the rotation.

    References
    ----------
    Chapter: :ref:`ch-rotation`.
    """
    models = _models(models)
    angles = _angles(angles)
    if not isinstance(split, TensorSplit):
        raise TypeError(f"split must be a TensorSplit, got {type(split).__name__}")
    check_int("batch_size", batch_size, 1)
    x = split.inputs[0]                                                  # (N, C, H, W)
    out = torch.empty(len(models), len(angles), len(split), dtype=torch.long)
    modes = [m.training for m in models]
    try:
        with torch.no_grad():
            for a, angle in enumerate(angles):
                for i in range(0, len(split), batch_size):
                    xr = rotate(x[i:i + batch_size], angle)                 # (B, C, H, W)
                    for s, m in enumerate(models):
                        out[s, a, i:i + batch_size] = m.eval()(xr).argmax(-1).cpu()
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    return out


def accuracy_by_angle(models: Sequence[nn.Module], split: TensorSplit, angles: Sequence[float],
                      batch_size: int = 1024) -> np.ndarray:
    """Accuracy of every model on the split rotated by every angle.

    Parameters
    ----------
    models, split, angles, batch_size
        As in :func:`predictions_under_rotation`.

    Returns
    -------
    numpy.ndarray
        ``(S, A)`` float64 in ``[0, 1]``.

    Examples
    --------
    >>> x = torch.zeros(4, 1, 5, 5); x[:, 0, 0, 2] = 1.0          # a dot above the centre
    >>> y = torch.zeros(4, dtype=torch.long)
    >>> up = nn.Sequential(nn.Flatten(), nn.Linear(25, 2))
    >>> with torch.no_grad():
    ...     _ = up[1].weight.zero_(); _ = up[1].bias.zero_()
    ...     up[1].weight[0, 2] = 1.0                               # class 0: "dot on top"
    ...     up[1].bias[1] = 0.5                                    # class 1 otherwise
    >>> accuracy_by_angle([up], TensorSplit(x, y), [0, 90, 180]).round(2).tolist()
    [[1.0, 0.0, 0.0]]

    See Also
    --------
    predictions_under_rotation

    References
    ----------
    Chapter: :ref:`ch-rotation`.
    """
    pred = predictions_under_rotation(models, split, angles, batch_size)    # (S, A, N)
    y = split.targets.cpu()                                                 # (N,)
    return (pred == y).double().mean(-1).numpy()


def rotation_curves(models: Sequence[nn.Module], split: TensorSplit,
                    angles: Sequence[float]) -> dict:
    """The accuracy curves of some models and the predictions the chapter reads, in one call.

    Parameters
    ----------
    models, split, angles
        As in :func:`predictions_under_rotation`.

    Returns
    -------
    dict
        ``acc``: :func:`accuracy_by_angle` as a float64 tensor ``(S, A)``; ``pred0`` and
        ``pred180``: the predicted classes ``(S, N)`` on the upright and on the half-turned
        images; ``back45``: each model's accuracy (a list of ``S`` floats) on the images
        rotated by 45° and back by -45° (interpolated twice, corners lost).

    Examples
    --------
    >>> split = TensorSplit(torch.rand(5, 1, 8, 8), torch.zeros(5, dtype=torch.long))
    >>> top = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    >>> out = rotation_curves([top, top], split, [0, 90])
    >>> out["acc"].shape, out["pred180"].shape, len(out["back45"])
    (torch.Size([2, 2]), torch.Size([2, 5]), 2)

    References
    ----------
    Chapter: :ref:`ch-rotation`.
    """
    models = _models(models)
    pred = predictions_under_rotation(models, split, [0.0, 180.0])          # (S, 2, N)
    back = TensorSplit(rotate(rotate(split.inputs[0], 45), -45), split.targets)
    return {"acc": torch.from_numpy(accuracy_by_angle(models, split, angles)),
            "pred0": pred[:, 0], "pred180": pred[:, 1],
            "back45": accuracy_by_angle(models, back, [0.0])[:, 0].tolist()}
