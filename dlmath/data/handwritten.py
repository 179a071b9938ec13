"""scikit-learn's bundled 8×8 handwritten digits, split and optionally upsampled.

Scope: :func:`digits` reads the 1797 images of ``sklearn.datasets.load_digits`` (the test
part of the UCI "Optical Recognition of Handwritten Digits" set: 8×8 images whose pixels
count, from 0 to 16, the set pixels of a 4×4 block of a 32×32 bitmap), scales them to
``[0, 1]``, splits them train / validation / test with a fixed seed, stratified by class,
and optionally resizes them (bilinear) to a larger square, e.g. 16×16 so that three 2×2
poolings leave a 2×2 map.  Nothing is downloaded: the data ship inside scikit-learn.

Chapter: :ref:`ch-training-cnns`.

References: Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository (1998); scikit-learn's ``load_digits``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dlmath._validate import check_bool, check_entries, check_fractions, check_int, check_seed
from dlmath.data.tensors import DataSplits, TensorSplit, stratified_split

__all__ = ["digits", "pixel_permuted_digits"]


def digits(size: int = 8, *, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
           standardize: bool = False) -> DataSplits:
    """The handwritten digits as ``(N, 1, size, size)`` float images and int64 labels.

    Explanation
    -----------
    The pixel values ``0..16`` are divided by 16.  The split is stratified by class with
    :func:`dlmath.data.stratified_split` (``fractions`` of train, validation, test) and
    depends only on ``seed``.  For ``size != 8`` the images are resized with bilinear
    interpolation (``align_corners=False``; with antialiasing when shrinking), which keeps
    values in ``[0, 1]``.  With ``standardize`` the images are shifted and scaled by the
    mean and standard deviation of all *training* pixels (one scalar each, so no
    information from the validation or test images leaks into the inputs).

    Parameters
    ----------
    size : int
        Side of the returned images, ``>= 2``.
    fractions : sequence of three floats
        Train, validation and test fractions, positive, summing to 1.
    seed : int
        Seed of the split.
    standardize : bool
        Zero mean and unit variance over the training pixels instead of ``[0, 1]``.

    Returns
    -------
    DataSplits
        ``train``, ``val`` and ``test`` splits with inputs ``(N, 1, size, size)`` float32 and
        targets ``(N,)`` int64 in ``0..9``; ``info`` holds ``name``, ``classes``, ``size``,
        ``mean`` and ``std`` (the standardisation constants, 0 and 1 without it).

    Raises
    ------
    ValueError
        If ``size`` is not an int ``>= 2`` or ``fractions`` are not three positive numbers
        summing to 1.
    TypeError
        If ``standardize`` is not a bool.

    Examples
    --------
    >>> d = digits()
    >>> d.sizes()
    {'train': 1078, 'val': 360, 'test': 359}
    >>> d.train.inputs[0].shape, d.train.targets.dtype
    (torch.Size([1078, 1, 8, 8]), torch.int64)
    >>> float(d.train.inputs[0].min()), float(d.train.inputs[0].max())
    (0.0, 1.0)
    >>> digits(size=16).test.inputs[0].shape
    torch.Size([359, 1, 16, 16])
    >>> digits(size=1)
    Traceback (most recent call last):
    ...
    ValueError: size must be >= 2, got 1

    See Also
    --------
    dlmath.data.stratified_split : the split.
    dlmath.data.mnist : the full-size MNIST digits, from local files.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    check_int("size", size, 2)
    check_entries(f"1797 images of size x size = {size} x {size}", 1797 * size * size)
    check_seed("seed", seed)
    check_fractions("fractions", fractions, ("train", "val", "test"), positive=True)
    check_bool("standardize", standardize)
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.from_numpy(np.asarray(raw.images, dtype=np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    y = torch.from_numpy(np.asarray(raw.target, dtype=np.int64))                   # (N,)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < 8).clamp_(0.0, 1.0)
    parts = [torch.from_numpy(p) for p in stratified_split(y.numpy(), fractions, seed)]
    mean, std = 0.0, 1.0
    if standardize:
        train_x = x[parts[0]]
        mean, std = float(train_x.mean()), float(train_x.std())
        x = (x - mean) / std
    splits = [TensorSplit(x[p].contiguous(), y[p].contiguous()) for p in parts]
    info = {"name": "sklearn digits (UCI optical digits, 8x8)", "classes": 10, "size": size,
            "mean": mean, "std": std}
    return DataSplits(*splits, info=info)


def pixel_permuted_digits(permutation_seed: int | None = 0, **digits_kwargs) -> DataSplits:
    r"""The handwritten digits with every image's pixels rearranged by one fixed permutation.

    Explanation
    -----------
    :func:`dlmath.data.digits` with :func:`~dlmath.equivariance.permute_pixels` applied, with
    :math:`\pi` = :func:`~dlmath.equivariance.pixel_permutation` ``(size**2, permutation_seed)``, to the images
    of all three splits (the same :math:`\pi` for all).  The labels and the split are
    those of :func:`dlmath.data.digits`.  ``permutation_seed=None`` returns the digits
    unchanged, so an experiment can switch the permutation off with one argument.  Being a
    module-level function it can be the ``data`` of a :class:`dlmath.engine.train.TrainConfig`.

    Parameters
    ----------
    permutation_seed : int or None
        Seed of :math:`\pi`; ``None`` for no permutation.
    **digits_kwargs
        Passed to :func:`dlmath.data.digits` (``size``, ``seed``, ``standardize``, ...).

    Returns
    -------
    DataSplits
        As :func:`dlmath.data.digits`; ``info`` also holds ``pixel_permutation_seed``.

    Raises
    ------
    ValueError, TypeError
        As :func:`dlmath.data.digits` and :func:`~dlmath.equivariance.pixel_permutation`.

    Examples
    --------
    >>> from dlmath.equivariance import permute_pixels, pixel_permutation
    >>> plain, perm = pixel_permuted_digits(None), pixel_permuted_digits(0)
    >>> p = pixel_permutation(64, 0)
    >>> torch.equal(perm.test.inputs[0], permute_pixels(plain.test.inputs[0], p))
    True
    >>> torch.equal(perm.train.targets, plain.train.targets), perm.info["pixel_permutation_seed"]
    (True, 0)

    See Also
    --------
    dlmath.models.image_mlp : an MLP that can absorb the same permutation.

    References
    ----------
    Chapter: :ref:`ch-why-convolutions`.
    """
    from dlmath.equivariance import permute_pixels, pixel_permutation

    if permutation_seed is not None:
        check_seed("permutation_seed", permutation_seed)
    data = digits(**digits_kwargs)
    info = dict(data.info, pixel_permutation_seed=permutation_seed)
    if permutation_seed is None:
        return DataSplits(data.train, data.val, data.test, info)
    h, w = data.train.inputs[0].shape[-2:]
    p = pixel_permutation(h * w, permutation_seed)
    splits = [TensorSplit((permute_pixels(s.inputs[0], p),) + tuple(s.inputs[1:]), s.targets)
              for s in (data.train, data.val, data.test)]
    return DataSplits(*splits, info=info)
