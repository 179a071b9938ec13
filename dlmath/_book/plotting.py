"""One plotting style for the whole book.

Every figure in the book is drawn with this module's style: SVG output, labelled axes,
and the Okabe-Ito palette, which stays distinguishable under the common forms of colour
blindness (Okabe & Ito, "Color Universal Design", 2008).  Nothing is changed on import;
a chapter calls :func:`use_book_style` once in its set-up cell.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
from cycler import cycler

from dlmath._validate import check_bool, check_int

__all__ = [
    "OKABE_ITO",
    "SEQUENTIAL_CMAP",
    "DIVERGING_CMAP",
    "book_rc",
    "use_book_style",
    "book_style",
    "figure",
    "label_axes",
]

#: The Okabe-Ito colour-blind-safe palette, in its usual order (black last).
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Perceptually uniform, colour-blind-safe colour maps for images and heat maps.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"


def book_rc() -> dict[str, Any]:
    """Return the matplotlib rcParams of the book's style.

    Examples
    --------
    >>> rc = book_rc()
    >>> rc["svg.fonttype"], rc["axes.grid"]
    ('none', True)
    >>> rc["axes.prop_cycle"].by_key()["color"][0]
    '#0072B2'
    """
    return {
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 100,
        "figure.autolayout": False,
        "figure.constrained_layout.use": True,
        "savefig.format": "svg",
        "svg.fonttype": "none",  # keep text as text in the SVG: smaller and searchable
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=list(OKABE_ITO.values())),
        "image.cmap": SEQUENTIAL_CMAP,
        "legend.frameon": False,
        "lines.linewidth": 1.6,
    }


def use_book_style(svg: bool = True) -> None:
    """Apply the book's style for the rest of the session.

    Parameters
    ----------
    svg : bool
        Also ask an IPython kernel, if one is running, to render inline figures as SVG.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> with mpl.rc_context():
    ...     use_book_style(svg=False)
    ...     mpl.rcParams["axes.spines.top"]
    False
    """
    check_bool("svg", svg)
    mpl.rcParams.update(book_rc())
    if svg:
        try:
            from IPython import get_ipython
            from matplotlib_inline.backend_inline import set_matplotlib_formats
        except ImportError:  # not in IPython: nothing to configure
            return
        if get_ipython() is not None:
            set_matplotlib_formats("svg")


@contextmanager
def book_style() -> Iterator[None]:
    """Context manager that applies the book's style temporarily.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> with book_style():
    ...     mpl.rcParams["svg.fonttype"]
    'none'
    """
    with mpl.rc_context(book_rc()):
        yield


def figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
           height: float | None = None, **kwargs: Any):
    """Create a figure and axes with the book's default size.

    Parameters
    ----------
    ncols, nrows : int
        Grid of axes (as in :func:`matplotlib.pyplot.subplots`).
    width, height : float, optional
        Size in inches; defaults scale with the number of columns and rows.
    **kwargs
        Passed on to :func:`matplotlib.pyplot.subplots`.

    Returns
    -------
    (Figure, Axes or array of Axes)

    Examples
    --------
    >>> fig, axes = figure(ncols=2)
    >>> axes.shape
    (2,)
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    check_int("ncols", ncols, 1)
    check_int("nrows", nrows, 1)
    w = width if width is not None else min(3.4 * ncols, 10.0)
    h = height if height is not None else 3.0 * nrows
    if w <= 0 or h <= 0:
        raise ValueError(f"width and height must be positive, got {w!r} and {h!r}")
    return plt.subplots(nrows, ncols, figsize=(w, h), **kwargs)


def label_axes(ax, xlabel: str, ylabel: str, title: str | None = None,
               legend: bool | Sequence[str] = False) -> None:
    """Label an axes object; every figure in the book has labelled axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    xlabel, ylabel : str
        Axis labels, with units in brackets where there are units.
    title : str, optional
    legend : bool or sequence of str
        ``True`` draws the legend from labelled artists; a sequence gives the labels.

    Examples
    --------
    >>> fig, ax = figure()
    >>> label_axes(ax, "epoch", "loss [nats]")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('epoch', 'loss [nats]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    if not xlabel or not ylabel:
        raise ValueError("xlabel and ylabel must be non-empty strings: every axis is labelled")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend is True:
        ax.legend()
    elif legend:
        ax.legend(list(legend))
