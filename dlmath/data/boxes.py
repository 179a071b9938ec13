"""The red/green box images: a two-class task whose test set sits where training never was.

Scope: :func:`red_green_box_layouts` draws where the boxes go (seeded, vectorised: no
Python loop over images), :func:`render_boxes` paints a layout into ``(N, 3, H, W)``
images, and :func:`red_green_boxes` returns the three splits as
:class:`dlmath.data.DataSplits` for the training loop.

The task, after Kayhan & van Gemert (2020): each image is black with one red and one green
``box``×``box`` square.  Class 0 has the red box left of the green one, class 1 the
reverse.  In the training and validation sets every class lives in its own horizontal
*band* of rows (class 0 near the top, class 1 near the bottom); in the test set the bands
are swapped, i.e. every box is moved by ``shift`` rows (down for class 0, up for class 1).
The class is decided by the left-right order alone, so a classifier that learned *what*
(the order) generalises to the test set and one that learned *where* (the band) fails.

Chapter: :ref:`ch-padding-position`.

References: Kayhan & van Gemert, "On Translation Invariance in CNNs: Convolutional Layers
can Exploit Absolute Spatial Location", CVPR 2020 (their experiment 2, whose geometry the
defaults follow: 32×32 images, 4×4 boxes, bands 16 rows apart).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from dlmath._validate import check_dtype, check_entries, check_int, check_seed
from dlmath.data.tensors import DataSplits, TensorSplit

__all__ = ["BoxLayout", "red_green_box_layouts", "render_boxes", "red_green_boxes"]

_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class BoxLayout:
    """Where the two boxes of each image are: top-left corners and labels.

    Attributes
    ----------
    labels : torch.Tensor
        ``(N,)`` int64, 0 (red left of green) or 1 (green left of red).
    red, green : torch.Tensor
        ``(N, 2)`` int64, the (row, column) of the top-left pixel of each box.
    size, box : int
        Image side and box side the layout was drawn for.

    Examples
    --------
    >>> lay = red_green_box_layouts(4, 2, 2, seed=0)["val"]
    >>> lay.labels.shape, lay.red.shape, len(lay)
    (torch.Size([2]), torch.Size([2, 2]), 2)
    """

    labels: torch.Tensor
    red: torch.Tensor
    green: torch.Tensor
    size: int
    box: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def gap(self) -> torch.Tensor:
        """``(N,)`` column distance between the left edges of the two boxes (always > 0)."""
        return (self.red[:, 1] - self.green[:, 1]).abs()


def _generator(seed: int, split: str) -> torch.Generator:
    # One independent stream per split: changing n_train does not change the test set.
    digest = hashlib.sha256(f"red-green/{seed}/{split}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _draw(n: int, gen: torch.Generator, size: int, box: int, band: tuple[int, int],
          shift: int, swap: bool) -> BoxLayout:
    """Draw ``n`` layouts; ``swap`` moves each class into the other class's band."""
    labels = torch.randperm(n, generator=gen) % 2                       # (n,) balanced
    # Columns: the left box starts in 0 .. size/2 - 2*box - 1 (the left part of the image),
    # the right box at least box + 1 columns further (one black column between them),
    # both uniform; the right one is uniform over what is left of the row.
    left_max = (size - box) // 2 - box                                  # exclusive bound
    u = torch.rand(2, n, generator=gen, dtype=torch.float64)            # (2, n)
    left = (u[0] * left_max).long()                                     # (n,)
    first = left + box + 1                                              # smallest right column
    right = first + (u[1] * (size - box - first)).long()                # (n,)
    # Rows: each box independently uniform in the band of its class.
    lo, hi = band
    rows = torch.randint(lo, hi + 1, (2, n), generator=gen)             # (2, n)
    down = labels if not swap else 1 - labels                           # 1: lower band
    rows = rows + shift * down                                          # (2, n)
    red_col = torch.where(labels == 0, left, right)                     # class 0: red left
    green_col = torch.where(labels == 0, right, left)
    red = torch.stack([rows[0], red_col], 1)                            # (n, 2)
    green = torch.stack([rows[1], green_col], 1)
    return BoxLayout(labels, red, green, size, box)


def red_green_box_layouts(n_train: int = 2000, n_val: int = 1000, n_test: int = 1000, *,
                          seed: int = 0, size: int = 32, box: int = 4,
                          band: tuple[int, int] = (3, 10), shift: int = 16
                          ) -> dict[str, BoxLayout]:
    """Draw the box positions of the three splits (no images yet).

    Explanation
    -----------
    Labels are balanced (a random permutation of ``0, 1, 0, 1, ...``).  The left box's
    column is uniform on ``0 .. (size - box)//2 - box - 1`` and the right box's on the
    columns from ``left + box + 1`` to ``size - box - 1``, so the boxes never touch and the
    left-right order is unambiguous.  Each box's top row is uniform on ``band`` (inclusive)
    for class 0 and on ``band + shift`` for class 1; in the test split the two classes
    trade bands (class 0 moves down by ``shift``, class 1 up).  Each split has its own
    random stream derived from ``seed``, so the sizes of the other splits do not change it.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Number of images per split, each ``>= 1``.
    seed : int
        Seed of the three streams.
    size, box : int
        Image side and box side in pixels.
    band : (int, int)
        First and last top row of a box of class 0 in the training set.
    shift : int
        Rows between the two bands.

    Returns
    -------
    dict of BoxLayout
        Keys ``"train"``, ``"val"``, ``"test"``.

    Raises
    ------
    ValueError
        If a count is below 1, the columns leave no room for two boxes, or a band does not
        fit in the image.
    TypeError
        If an integer argument is not an int.

    Examples
    --------
    >>> lay = red_green_box_layouts(6, 4, 4, seed=1)
    >>> [len(lay[s]) for s in ("train", "val", "test")]
    [6, 4, 4]
    >>> bool((lay["train"].red[lay["train"].labels == 0, 0] <= 10).all())   # class 0 on top
    True
    >>> bool((lay["test"].red[lay["test"].labels == 0, 0] >= 19).all())     # ... not in the test
    True
    >>> red_green_box_layouts(10, 10, 10, band=(3, 30))
    Traceback (most recent call last):
    ...
    ValueError: band (3, 30) with shift 16 does not fit in size 32 rows with box 4: the last top row would be 46 > 28

    See Also
    --------
    render_boxes : paints a layout.
    red_green_boxes : the images, split for training.

    References
    ----------
    Kayhan & van Gemert (CVPR 2020), experiment 2.  Chapter: :ref:`ch-padding-position`.
    """
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        check_entries(f"{name}={value} layouts", 4 * check_int(name, value, 1))
    check_seed("seed", seed)
    check_int("size", size, 1)
    check_int("box", box, 1)
    check_int("shift", shift, 0)
    if not isinstance(band, (tuple, list)) or len(band) != 2:
        raise ValueError(f"band must be a pair (first row, last row), got {band!r}")
    lo, hi = (check_int("band[0]", band[0], 0), check_int("band[1]", band[1], 0))
    if hi < lo:
        raise ValueError(f"band must be (first, last) with first <= last, got {band!r}")
    if hi + shift > size - box:
        raise ValueError(f"band {tuple(band)} with shift {shift} does not fit in size {size} "
                         f"rows with box {box}: the last top row would be {hi + shift} > "
                         f"{size - box}")
    left_max = (size - box) // 2 - box
    if left_max < 1 or left_max + box + 1 > size - box:
        raise ValueError(f"size {size} leaves no room for two boxes of {box} side by side "
                         f"with the left one in the left half")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    return {s: _draw(counts[s], _generator(seed, s), size, box, (lo, hi), shift,
                     swap=s == "test") for s in _SPLITS}


def render_boxes(layout: BoxLayout, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Paint a layout: black images with a red (channel 0) and a green (channel 1) box.

    Explanation
    -----------
    Pixel ``(r, c)`` of channel 0 is 1 where ``red_row <= r < red_row + box`` and
    ``red_col <= c < red_col + box``, else 0; channel 1 likewise for the green box;
    channel 2 (blue) is 0.  Done for all images at once by broadcasting.

    Parameters
    ----------
    layout : BoxLayout
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        ``(N, 3, size, size)``.

    Examples
    --------
    >>> lay = BoxLayout(torch.tensor([0]), torch.tensor([[1, 0]]), torch.tensor([[0, 3]]),
    ...                 size=6, box=2)
    >>> render_boxes(lay)[0, :2].sum(0)          # red at rows 1-2, green at rows 0-1
    tensor([[0., 0., 0., 1., 1., 0.],
            [1., 1., 0., 1., 1., 0.],
            [1., 1., 0., 0., 0., 0.],
            [0., 0., 0., 0., 0., 0.],
            [0., 0., 0., 0., 0., 0.],
            [0., 0., 0., 0., 0., 0.]])

    See Also
    --------
    red_green_box_layouts : draws the layout.
    """
    if not isinstance(layout, BoxLayout):
        raise TypeError(f"layout must be a BoxLayout, got {type(layout).__name__}")
    check_dtype("dtype", dtype)
    check_entries(f"{len(layout)} images of 3 x size x size = 3 x {layout.size} x {layout.size}",
                  3 * len(layout) * layout.size**2)
    idx = torch.arange(layout.size)                                     # (S,)

    def mask(corner: torch.Tensor) -> torch.Tensor:
        r, c = corner[:, 0, None], corner[:, 1, None]                   # (N, 1)
        rows = (idx >= r) & (idx < r + layout.box)                      # (N, S)
        cols = (idx >= c) & (idx < c + layout.box)                      # (N, S)
        return rows[:, :, None] & cols[:, None, :]                      # (N, S, S)

    red, green = mask(layout.red), mask(layout.green)
    return torch.stack([red, green, torch.zeros_like(red)], 1).to(dtype)  # (N, 3, S, S)


def red_green_boxes(n_train: int = 2000, n_val: int = 1000, n_test: int = 1000, *,
                    seed: int = 0, size: int = 32, box: int = 4,
                    band: tuple[int, int] = (3, 10), shift: int = 16) -> DataSplits:
    """The red/green box images, split train / validation / test, the test bands swapped.

    Explanation
    -----------
    :func:`red_green_box_layouts` draws the positions, :func:`render_boxes` paints them.
    Inputs are ``(N, 3, size, size)`` float32 in ``{0, 1}`` (black background), targets
    ``(N,)`` int64.  Train and validation images come from the same distribution; the test
    images have the same left-right statistics, but each class sits in the other class's
    band (see the module docstring).

    Parameters
    ----------
    n_train, n_val, n_test, seed, size, box, band, shift
        As in :func:`red_green_box_layouts`.

    Returns
    -------
    DataSplits
        ``info`` holds ``name``, ``classes`` (2), ``size``, ``box``, ``band``, ``shift``.

    Raises
    ------
    ValueError, TypeError
        As :func:`red_green_box_layouts`.

    Examples
    --------
    >>> d = red_green_boxes(200, 100, 100, seed=0)
    >>> d.sizes(), tuple(d.train.inputs[0].shape[1:])
    ({'train': 200, 'val': 100, 'test': 100}, (3, 32, 32))
    >>> d.train.inputs[0].sum(dim=(2, 3))[0].tolist()       # one red and one green 4x4 box
    [16.0, 16.0, 0.0]
    >>> torch.bincount(d.train.targets).tolist()
    [100, 100]

    See Also
    --------
    red_green_box_layouts, render_boxes
    dlmath.models.position.strided_conv_net : the networks trained on it.

    References
    ----------
    Kayhan & van Gemert (CVPR 2020).  Chapter: :ref:`ch-padding-position`.
    """
    layouts = red_green_box_layouts(n_train, n_val, n_test, seed=seed, size=size, box=box,
                                    band=band, shift=shift)
    splits = [TensorSplit(render_boxes(layouts[s]), layouts[s].labels) for s in _SPLITS]
    info = {"name": "red/green boxes", "classes": 2, "size": size, "box": box,
            "band": list(band), "shift": shift}
    return DataSplits(*splits, info=info)
