"""Drawings of the convolution chapters: windows on a padded axis, a padded 2-D convolution.

Private to the book.  The functions draw what the chapter computes; they compute no
convolution themselves, so a figure cannot disagree with the cell that checks it.
:func:`window_sum` writes one output of a convolution as the sum of its products, with
plain Python arithmetic, as a reader would by hand.  Chapter: :ref:`ch-conv-arithmetic`.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlmath import conv
from dlmath._book.plotting import OKABE_ITO, figure, label_axes

__all__ = ["draw_padded_conv", "draw_windows", "pad_grid", "window_sum"]

Grid = Sequence[Sequence[int]]


def _check_grid(name: str, grid: object) -> list[list[int]]:
    rows = [list(r) for r in grid]  # type: ignore[union-attr]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{name} must be a non-empty rectangular grid of numbers, got {grid!r}")
    return rows


def pad_grid(x: Grid, padding: int) -> list[list[int]]:
    """``x`` with ``padding`` rows and columns of zeros on every side.

    Examples
    --------
    >>> pad_grid([[1, 2]], 1)
    [[0, 0, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    """
    rows = _check_grid("x", x)
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    width = len(rows[0]) + 2 * padding
    blank = [[0] * width for _ in range(padding)]
    return blank + [[0] * padding + r + [0] * padding for r in rows] + [r[:] for r in blank]


def window_sum(x: Grid, w: Grid, padding: int, cell: tuple[int, int]) -> tuple[int, str]:
    """Output ``cell`` of the stride-1 cross-correlation of ``x`` with ``w``, by hand.

    Returns the value and the sum written out, zero products left out
    (``"2·1 + 3·(−1) = −1"``).

    Examples
    --------
    >>> window_sum([[1, 2], [3, 4]], [[1, 0], [0, -1]], 0, (0, 0))
    (-3, '1·1 + 4·(−1) = −3')
    """
    xp, k = pad_grid(x, padding), _check_grid("w", w)
    u, v = cell
    if not (0 <= u <= len(xp) - len(k) and 0 <= v <= len(xp[0]) - len(k[0])):
        raise ValueError(f"cell {cell} has no window inside the padded input")

    def num(t: int) -> str:
        return f"({t})".replace("-", "−") if t < 0 else str(t)

    terms = [(xp[u + a][v + b], k[a][b]) for a in range(len(k)) for b in range(len(k[0]))]
    total = sum(p * q for p, q in terms)
    text = " + ".join(f"{num(p)}·{num(q)}" for p, q in terms if p * q) or "0"
    return total, f"{text} = {str(total).replace('-', '−')}"


def _grid(ax, values: Grid, shaded=None, frame=None, colour="white", title=""):
    """Integers in a grid of squares; ``shaded(r, c)`` greys a cell, ``frame`` outlines some."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    rows = _check_grid("values", values)
    fill = to_rgba(colour, 1.0 if colour == "white" else 0.4)   # light, so the numbers read
    for r, row in enumerate(rows):
        for c, val in enumerate(row):
            grey = shaded is not None and shaded(r, c)
            ax.add_patch(Rectangle((c, -r - 1), 1, 1, facecolor="0.85" if grey else fill,
                                   edgecolor="0.4", hatch="//" if grey else None, lw=0.8))
            ax.text(c + 0.5, -r - 0.5, str(val).replace("-", "−"), ha="center", va="center",
                    fontsize=9, color="0.35" if grey else "black")
    if frame is not None:
        (r0, c0), (h, w) = frame
        ax.add_patch(Rectangle((c0, -r0 - h), w, h, facecolor="none",
                               edgecolor=OKABE_ITO["vermillion"], lw=2.2))
    ax.set_xlim(-0.1, len(rows[0]) + 0.1)
    ax.set_ylim(-len(rows) - 0.1, 0.1)
    ax.set_aspect("equal")
    ax.set_xticks([c + 0.5 for c in range(len(rows[0]))], range(len(rows[0])))
    ax.set_yticks([-r - 0.5 for r in range(len(rows))], range(len(rows)))
    ax.tick_params(length=0, labelsize=7)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=9)


def draw_padded_conv(x: Grid, w: Grid, z: Grid, padding: int, cell: tuple[int, int]):
    """Padded input (padding hatched), kernel and output of a 2-D convolution, one window marked.

    ``z`` is the output as the caller computed it (with ``torch.nn.functional.conv2d``);
    the window of output ``cell`` is outlined on the padded input and ``cell`` in the output.
    Returns the figure.
    """
    xp, k, out = pad_grid(x, padding), _check_grid("w", w), _check_grid("z", z)
    n_r, n_c = len(xp), len(xp[0])
    fig, axes = figure(ncols=3, width=7.0, height=2.9,
                       gridspec_kw={"width_ratios": [n_c, len(k[0]) + 1, len(out[0])]})
    pad = lambda r, c: r < padding or c < padding or r >= n_r - padding or c >= n_c - padding
    _grid(axes[0], xp, shaded=pad, frame=(cell, (len(k), len(k[0]))),
          title=f"input, padding {padding} (hatched)")
    _grid(axes[1], k, colour=OKABE_ITO["yellow"], title="kernel")
    _grid(axes[2], out, frame=(cell, (1, 1)), colour=OKABE_ITO["sky"], title="output (conv2d)")
    label_axes(axes[0], "column of the padded input", "row")
    label_axes(axes[1], "column b", "row a")
    label_axes(axes[2], "column v", "row u")
    return fig


def draw_windows(ax, n: int, k: int, s: int, p: int, ceil_mode: bool = False,
                 title: str = "") -> None:
    """Windows of a 1-D layer: one bar per output (y = output index) over the padded input.

    Input positions that no window reads are red; padding is hatched; a window that only
    ceil mode keeps is dashed.
    """
    from matplotlib.patches import Rectangle

    n_out = conv.conv_output_size(n, k, s, p, ceil_mode=ceil_mode)
    n_floor = conv.conv_output_size(n, k, s, p)
    read: set[int] = set()
    for u in range(n_out):
        start = u * s - p                                  # first input index of window u
        extra = u >= n_floor                               # kept only by ceil mode
        ax.add_patch(Rectangle((start - 0.45, u - 0.3), k - 0.1, 0.6,
                               facecolor="none" if extra else OKABE_ITO["sky"],
                               edgecolor=OKABE_ITO["blue"], linestyle="--" if extra else "-"))
        read.update(range(start, start + k))
    for j in range(-p, n + p):
        is_pad = j < 0 or j >= n
        colour = "0.85" if is_pad else (OKABE_ITO["vermillion"] if j not in read else "white")
        ax.add_patch(Rectangle((j - 0.45, -1.45), 0.9, 0.9, facecolor=colour, edgecolor="0.3",
                               hatch="//" if is_pad else None))
        ax.text(j, -1, "0" if is_pad else str(j), ha="center", va="center", fontsize=8)
    ax.set_xlim(-p - 0.8, n + p + (1.5 if ceil_mode else 0.3))
    ax.set_ylim(-1.7, n_out - 0.4)
    ax.set_yticks([-1] + list(range(n_out)), ["input"] + [f"$z_{u}$" for u in range(n_out)])
    ax.set_xticks(range(-p, n + p))
    ax.grid(False)
    label_axes(ax, "input position (hatched: padding)", "output", title=title)
