"""What every chapter needs besides the mathematics: glue, claim verdicts, claims tables, ± text.

Private: the chapters import these (``from dlmath._book.page import glue, verdict, claims_table``)
instead of defining their own; a chapter defines no helper of this kind.

- :func:`glue` is myst-nb's ``glue`` that hides its output by default and turns NumPy and
  zero-dimensional torch scalars into Python numbers, so that ``{glue:text}`key:.1f``` works.
- :func:`verdict` and :func:`claims_table` show what the claims registry
  (:mod:`dlmath._book.claims`) computes, and fail the cell when a verdict differs from the one
  the book states, so a chapter's prose cannot drift from its checks.
- :func:`mean_sd` writes "mean ± standard deviation" over seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dlmath._book import claims

__all__ = ["glue", "verdict", "claim_check", "claims_table", "mean_sd"]


def _plain(value: Any) -> Any:
    """NumPy scalars and 0-d tensors as Python numbers; everything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return value
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Glue ``value`` under ``name`` for the prose, and return it.

    Explanation
    -----------
    myst-nb's :func:`myst_nb.glue` with ``display=False`` as the default (a chapter shows
    its results in its own cells; the glue only feeds the prose), NumPy and 0-d torch
    scalars converted to Python numbers.  Returning the value lets a visible cell end with
    ``glue("key", value)`` and show it.

    Raises
    ------
    TypeError
        If ``name`` is not a non-empty string or ``display`` is not a bool.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(display, bool):
        raise TypeError(f"display must be a bool, got {type(display).__name__}")
    from myst_nb import glue as nb_glue

    value = _plain(value)
    nb_glue(name, value, display=display)
    return value


def claim_check(claim_id: str) -> claims.Check:
    """Run a registered claim's check and insist on the verdict the book states.

    Raises
    ------
    KeyError
        If no claim has this id.
    AssertionError
        If the computed verdict differs from the claim's ``expected`` verdict.
    """
    c = claims.get(claim_id)
    result = c.check()
    if result.verdict != c.expected:
        raise AssertionError(f"claim {claim_id!r}: the check finds {result.verdict!r}, "
                             f"the book states {c.expected!r}")
    return result


def verdict(claim_id: str) -> str:
    """The verdict the registry computes for a claim (checked against the stated one)."""
    return claim_check(claim_id).verdict


def _selected(chapter: str | None, ids: Sequence[str] | None) -> list[claims.Claim]:
    if (chapter is None) == (ids is None):
        raise TypeError("give exactly one of chapter (a chapter label) or ids (claim ids)")
    if ids is not None:
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise TypeError("ids must be a sequence of claim id strings")
        return [claims.get(i) for i in ids]
    if not isinstance(chapter, str):
        raise TypeError(f"chapter must be a chapter label such as 'ch-softmax', got {chapter!r}")
    chosen = [c for c in claims.all_claims() if c.chapter == chapter]
    if not chosen:
        raise ValueError(f"chapter {chapter!r} has no registered claims")
    return chosen


def claims_table(chapter: str | None = None, ids: Sequence[str] | None = None,
                 notes: bool = False):
    """The claims of a chapter (or the listed ids) with what the build verifies, as Markdown.

    Columns: question (report and question number), what the claim is about, what the report
    claims, what is verified, the verdict, and with ``notes=True`` the check's note.  Every
    verdict is checked against the one the book states (:func:`claim_check`).  Display it
    with ``{glue:md}`` and ``:format: myst``.

    Raises
    ------
    TypeError
        Unless exactly one of ``chapter`` and ``ids`` is given.
    ValueError
        If the chapter has no registered claims.
    """
    from IPython.display import Markdown

    from dlmath._render import format_table

    if not isinstance(notes, bool):
        raise TypeError(f"notes must be a bool, got {type(notes).__name__}")
    rows = []
    for c in _selected(chapter, ids):
        r = claim_check(c.id)
        row = [f"{c.source[:3]} {c.question}", c.topic, c.claimed, r.verified, f"**{r.verdict}**"]
        rows.append(row + [" ".join(r.note.split())] if notes else row)
    header = ["question", "about", "claimed", "verified", "verdict"] + (["note"] if notes else [])
    return Markdown(format_table(header, rows))


def mean_sd(values: Iterable[float], digits: int = 1, scale: float = 100) -> str:
    """``"93.2 ± 0.4"``: the mean ± the sample standard deviation (``ddof=1``), scaled.

    Examples
    --------
    >>> mean_sd([0.90, 0.92, 0.94])
    '92.0 ± 2.0'
    >>> mean_sd([1.0, 3.0], digits=2, scale=1)
    '2.00 ± 1.41'
    """
    v = np.asarray(list(values), dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must hold at least two numbers, got {v.size}")
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be a non-negative int, got {digits!r}")
    v = v * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
