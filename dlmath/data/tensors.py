"""In-memory data sets as tensors, their splits, and batch transforms for augmentation.

Scope: the container every training run of the book reads (:class:`TensorSplit`, one split
of inputs and targets sharing their first axis; :class:`DataSplits`, train / validation /
test), a seeded stratified split of labelled examples (:func:`stratified_split`), and
augmentations that act on a whole batch on its device with an explicit
``torch.Generator`` (:func:`random_flip`, :func:`random_crop`, :func:`random_rotation`,
and the deterministic :func:`rotate`).  Nothing here copies a batch on the Python side: a
training loop gathers a batch by indexing the stored tensors with an index tensor.

The augmentation functions have the signature ``f(x, generator, **options) -> x`` that
:class:`dlmath.engine.train.TrainConfig` expects of its ``augment`` hook, e.g.
``augment=Ref(random_crop, padding=2)``.

Chapters: :ref:`ch-training-cnns`, :ref:`ch-regularisation`, :ref:`ch-rotation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlmath._validate import (
    check_entries,
    check_fractions,
    check_generator,
    check_int,
    check_number,
    check_seed,
    check_tensor,
)

__all__ = [
    "TensorSplit",
    "DataSplits",
    "stratified_split",
    "random_flip",
    "random_crop",
    "rotate",
    "random_rotation",
]


@dataclass(frozen=True)
class TensorSplit:
    """One split of a data set: input tensors and a target tensor with the same length.

    Attributes
    ----------
    inputs : tuple of torch.Tensor
        The model's positional arguments, each of shape ``(N, ...)``; a single tensor is
        accepted and wrapped in a tuple.  An image classifier has one, ``(N, C, H, W)``; an
        encoder-decoder has two (source ids and shifted target ids).
    targets : torch.Tensor
        Shape ``(N, ...)``: class labels ``(N,)`` or token ids ``(N, T)``.

    Examples
    --------
    >>> s = TensorSplit(torch.zeros(5, 1, 8, 8), torch.arange(5))
    >>> len(s), s.inputs[0].shape
    (5, torch.Size([5, 1, 8, 8]))
    >>> s.take(torch.tensor([[0, 1], [4, 3]]))[1]       # an (S, B) index gathers (S, B, ...)
    tensor([[0, 1],
            [4, 3]])
    >>> TensorSplit(torch.zeros(5, 2), torch.zeros(4))
    Traceback (most recent call last):
    ...
    ValueError: targets has 4 rows but inputs[0] has 5; every tensor of a split needs the same first dimension
    """

    inputs: tuple[torch.Tensor, ...]
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, (torch.Tensor, tuple, list)):
            raise TypeError(f"inputs must be a tensor or a tuple of tensors, got "
                            f"{type(self.inputs).__name__}")
        inputs = (self.inputs,) if isinstance(self.inputs, torch.Tensor) else tuple(self.inputs)
        if not inputs:
            raise ValueError("inputs must hold at least one tensor")
        for i, t in enumerate(inputs):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"inputs[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if not isinstance(self.targets, torch.Tensor):
            raise TypeError(f"targets must be a torch.Tensor, got {type(self.targets).__name__}")
        n = inputs[0].shape[0] if inputs[0].dim() else None
        if n is None:
            raise ValueError("inputs[0] must have a first (example) dimension")
        for i, t in enumerate(inputs[1:], start=1):
            if t.dim() == 0 or t.shape[0] != n:
                raise ValueError(f"inputs[{i}] has {t.shape[0] if t.dim() else 0} rows but "
                                 f"inputs[0] has {n}")
        if self.targets.dim() == 0 or self.targets.shape[0] != n:
            rows = self.targets.shape[0] if self.targets.dim() else 0
            raise ValueError(f"targets has {rows} rows but inputs[0] has {n}; every tensor of "
                             f"a split needs the same first dimension")
        object.__setattr__(self, "inputs", inputs)

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in self.inputs)
        return (f"TensorSplit(inputs=[{shapes}], targets={tuple(self.targets.shape)} "
                f"{self.targets.dtype})")

    def to(self, device: torch.device | str) -> TensorSplit:
        """The same split with every tensor moved to ``device``."""
        return TensorSplit(tuple(t.to(device) for t in self.inputs), self.targets.to(device))

    def take(self, index: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Gather examples: ``index`` of shape ``(B,)`` or ``(S, B)`` gives ``(..., B, ...)``."""
        return tuple(t[index] for t in self.inputs), self.targets[index]


@dataclass(frozen=True)
class DataSplits:
    """Train, validation and test splits of one data set, plus facts about it.

    Attributes
    ----------
    train, val, test : TensorSplit
    info : mapping
        JSON-compatible facts the chapters print (name, number of classes, image size,
        padding id, ...).  Not used by the training loop.

    Examples
    --------
    >>> x, y = torch.zeros(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> d = DataSplits(TensorSplit(x[:4], y[:4]), TensorSplit(x[4:5], y[4:5]),
    ...                TensorSplit(x[5:], y[5:]), info={"classes": 2})
    >>> d.sizes()
    {'train': 4, 'val': 1, 'test': 1}
    >>> d["val"] is d.val
    True
    """

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            if not isinstance(getattr(self, name), TensorSplit):
                raise TypeError(f"{name} must be a TensorSplit, got "
                                f"{type(getattr(self, name)).__name__}")
        if not isinstance(self.info, Mapping):
            raise TypeError(f"info must be a mapping (a dict), got {type(self.info).__name__}")

    def __getitem__(self, name: str) -> TensorSplit:
        if name not in ("train", "val", "test"):
            raise KeyError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)

    def __repr__(self) -> str:
        return (f"DataSplits(train={self.train!r}, val={self.val!r}, test={self.test!r}, "
                f"info={dict(self.info)!r})")

    def sizes(self) -> dict[str, int]:
        """Number of examples in each split."""
        return {name: len(self[name]) for name in ("train", "val", "test")}

    def to(self, device: torch.device | str) -> DataSplits:
        """The same splits with every tensor on ``device``."""
        return DataSplits(self.train.to(device), self.val.to(device), self.test.to(device),
                          self.info)


def stratified_split(labels: Sequence[int] | np.ndarray | torch.Tensor,
                     fractions: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Split example indices into parts with (almost) the same class proportions.

    Explanation
    -----------
    Within each class the indices are shuffled with ``numpy.random.default_rng(seed)`` and
    cut at the rounded cumulative fractions, so part ``j`` gets about
    ``fractions[j] * n_c`` examples of a class with ``n_c`` examples.  The parts are
    disjoint, cover every index, and each is returned sorted.  The same labels and seed give
    the same parts on every machine.

    Parameters
    ----------
    labels : sequence of int, numpy array or tensor
        Class label of each example, shape ``(N,)``.
    fractions : sequence of float
        Positive fractions summing to 1, one per part.
    seed : int

    Returns
    -------
    list of numpy.ndarray
        One sorted int64 index array per part.

    Raises
    ------
    ValueError
        If the fractions are not positive or do not sum to 1, or labels is not 1-d.

    Examples
    --------
    >>> parts = stratified_split([0] * 10 + [1] * 10, (0.6, 0.2, 0.2))
    >>> [len(p) for p in parts]
    [12, 4, 4]
    >>> sorted(np.concatenate(parts).tolist()) == list(range(20))
    True
    >>> stratified_split([0, 1], (0.5, 0.6))
    Traceback (most recent call last):
    ...
    ValueError: fractions must be positive and sum to 1, got (0.5, 0.6)

    See Also
    --------
    dlmath.data.digits : splits the handwritten digits with it.
    """
    try:
        y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    except (TypeError, ValueError):
        raise TypeError(f"labels must be a 1-d sequence of class labels, got "
                        f"{type(labels).__name__}") from None
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be 1-d and not empty, got shape {y.shape}")
    fr = check_fractions("fractions", fractions, positive=True)
    rng = np.random.default_rng(check_seed("seed", seed))
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    cum = np.cumsum(fr)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cuts = np.rint(cum * len(idx)).astype(int)
        for j, (a, b) in enumerate(zip(np.concatenate([[0], cuts[:-1]]), cuts)):
            parts[j].append(idx[a:b])
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be an image batch of shape (B, C, H, W), got {shape}")


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None,
                p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    generator : torch.Generator, optional
        On ``x``'s device; decides which images flip.
    p : float
        Probability in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> x = torch.arange(4.).view(1, 1, 2, 2)
    >>> random_flip(x, p=1.0)[0, 0]
    tensor([[1., 0.],
            [3., 2.]])

    See Also
    --------
    random_crop, random_rotation : the other augmentations.

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    _check_images(x)
    p = check_number("p", p, interval="[0, 1]")
    check_generator("generator", generator)
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p   # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crop(x: torch.Tensor, generator: torch.Generator | None = None,
                padding: int = 2) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and crop it back at a random offset.

    Explanation
    -----------
    Equivalent to shifting each image by an independent ``(dy, dx)`` drawn uniformly from
    ``{-padding, ..., padding}^2`` and filling with zeros.  Done for the whole batch with one
    gather, no Python loop over images.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    generator : torch.Generator, optional
        On ``x``'s device.
    padding : int
        Largest shift in pixels, ``>= 0``.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> x = torch.ones(3, 1, 4, 4)
    >>> y = random_crop(x, torch.Generator().manual_seed(0), padding=1)
    >>> y.shape, bool(((y == 0) | (y == 1)).all())
    (torch.Size([3, 1, 4, 4]), True)

    See Also
    --------
    random_flip, random_rotation

    References
    ----------
    Chapter: :ref:`ch-regularisation`.
    """
    _check_images(x)
    padding = check_int("padding", padding, 0)
    check_generator("generator", generator)
    if padding == 0:
        return x
    B, C, H, W = x.shape
    check_entries(f"the images of shape {tuple(x.shape)} with padding {padding}",
                  B * C * (H + 2 * padding) * (W + 2 * padding))
    padded = F.pad(x, (padding,) * 4)                                    # (B, C, H+2p, W+2p)
    off = torch.randint(0, 2 * padding + 1, (2, B), generator=generator, device=x.device)
    rows = off[0][:, None] + torch.arange(H, device=x.device)            # (B, H)
    cols = off[1][:, None] + torch.arange(W, device=x.device)            # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None, None]
    c = torch.arange(C, device=x.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def _rotate_by(x: torch.Tensor, radians: torch.Tensor) -> torch.Tensor:
    # Rotation about the image centre, bilinear, zeros outside: one affine grid per image.
    cos, sin = torch.cos(radians), torch.sin(radians)                    # (B,)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1),
                         torch.stack([sin, cos, zero], -1)], 1)          # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every image by the same angle (counter-clockwise on screen), zeros outside.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``, square images.
    degrees : float

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 0, 1] = 1.0       # a pixel above the centre
    >>> rotate(x, 90)[0, 0].round()                            # moves to the left
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [0., 0., 0.]])

    See Also
    --------
    random_rotation : a random angle per image.

    References
    ----------
    Chapter: :ref:`ch-rotation`.
    """
    _check_images(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must hold square images, got {x.shape[-2]}x{x.shape[-1]}")
    check_tensor("x", x, floating=True, real=True)
    degrees = check_number("degrees", degrees)
    if abs(degrees) > 360:                 # the same rotation; the radians fit float32
        degrees = math.fmod(degrees, 360.0)
    # grid_sample reads output pixel p from the input at theta p (x right, y down); with
    # theta = [[cos a, -sin a], [sin a, cos a]] the content turns by a counter-clockwise as
    # seen on screen (the example checks it).
    a = torch.full((x.shape[0],), math.radians(degrees), device=x.device)
    return _rotate_by(x, a)


def random_rotation(x: torch.Tensor, generator: torch.Generator | None = None,
                    degrees: float = 15.0) -> torch.Tensor:
    """Rotate each image by its own angle drawn uniformly from ``[-degrees, degrees]``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``, square images.
    generator : torch.Generator, optional
        On ``x``'s device.
    degrees : float
        Largest angle, in ``[0, 180]``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> x = torch.rand(2, 1, 8, 8)
    >>> torch.equal(random_rotation(x, degrees=0.0), rotate(x, 0.0))
    True

    See Also
    --------
    rotate : one fixed angle for every image.

    References
    ----------
    Chapter: :ref:`ch-rotation`.
    """
    _check_images(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must hold square images, got {x.shape[-2]}x{x.shape[-1]}")
    check_tensor("x", x, floating=True, real=True)
    degrees = check_number("degrees", degrees, interval="[0, 180]")   # 180: the whole circle
    check_generator("generator", generator)
    u = torch.rand(x.shape[0], generator=generator, device=x.device)     # (B,) in [0, 1)
    return _rotate_by(x, torch.deg2rad((2 * u - 1) * float(degrees)))
