"""The errata registry: claims from the source reports, and what the book verifies.

The book answers five homework reports (``shared/sources/000_*.txt`` to ``004_*.txt``).
Each checkable claim they make (a parameter count, an output-size formula, a gradient)
is registered here with where it comes from, what was claimed, a function that computes
the verified value, and the chapter that derives it.  The appendix "Errata" is generated
from this registry when the book is built, and a test fails if a verdict ever changes.

Claims are declared next to the topic they belong to, in ``dlmath/_book/claims/<topic>.py``;
each such module calls :func:`register` at import time.  :func:`all_claims` imports them
all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Claim", "Check", "register", "all_claims", "get", "VERDICTS", "verdict_of"]

#: The verdicts a claim can receive, by one rubric (stated for readers in the errata appendix).
#: ``correct``: the claim holds as stated; a notation slip with a single well-formed reading
#: (an index no sum binds) is judged at that reading, and the note names it.
#: ``incorrect``: it is wrong as stated, including one quantity put for another that the
#: report defines separately (a logit for a probability, swapped size names).
#: ``incomplete``: it holds only under a condition the report does not state, including an
#: "any"/"every" that holds only on a range (e.g. a size formula without the floor, exact
#: only when the division is; "any input size", true only from the kernel size up).
VERDICTS = ("correct", "incorrect", "incomplete")
Verdict = Literal["correct", "incorrect", "incomplete"]


@dataclass(frozen=True)
class Check:
    """The result of verifying a claim.

    Attributes
    ----------
    verified : str
        The verified value or formula, as short text (LaTeX allowed between ``$``).
    verdict : {"correct", "incorrect", "incomplete"}
        The verdict the computation reaches.
    note : str
        One or two sentences: what is wrong, or the condition under which it holds.
    """

    verified: str
    verdict: Verdict
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def _repr_markdown_(self) -> str:
        """How a notebook shows a check: the verdict, the verified value, the note (math typeset).

        Examples
        --------
        >>> print(Check("$n - k + 1$", "correct", "Stride 1.")._repr_markdown_())
        **correct**: verified $n - k + 1$
        <BLANKLINE>
        Stride 1.
        """
        text = f"**{self.verdict}**: verified {self.verified}"
        return f"{text}\n\n{self.note}" if self.note else text


@dataclass(frozen=True)
class Claim:
    """One claim from a source report.

    Attributes
    ----------
    id : str
        Unique, stable identifier, e.g. ``"004-II-Q10-conv2-weights"``.
    source : str
        The report's file name stem, e.g. ``"004_46edfb94b1a3c9c4"``.
    question : str
        Where in the report, e.g. ``"II-Q10"``.
    topic : str
        What the claim is about, in the book's words (never copied from the report).
    claimed : str
        The claimed value or formula (LaTeX allowed between ``$``).
    check : callable
        ``check() -> Check``: computes the verified value with dlmath and an oracle.
    chapter : str
        The label of the chapter that derives it, e.g. ``"ch-counting-parameters"``.
    expected : {"correct", "incorrect", "incomplete"}
        The verdict the book states; a test fails when ``check()`` disagrees.
    """

    id: str
    source: str
    question: str
    topic: str
    claimed: str
    check: Callable[[], Check] = field(repr=False, compare=False)
    chapter: str
    expected: Verdict

    def __post_init__(self) -> None:
        if self.expected not in VERDICTS:
            raise ValueError(f"expected must be one of {VERDICTS}, got {self.expected!r}")
        if not self.source[:3].isdigit():
            raise ValueError(f"source must be a report file stem like '004_...', got {self.source!r}")


def verdict_of(full, where_stated=None) -> Verdict:
    """A claim's verdict from the checker's verdicts on it (:mod:`dlmath.check`).

    A formula or a count is judged as a reader's answer to an exercise is: the claim is
    ``correct`` when the checker finds it right on every case (``full``); ``incomplete``
    when it is wrong there but right under a condition the claim leaves unstated
    (``where_stated``: judged on the cases where the condition holds, such as the strides
    that divide, or against the quantity it silently means, such as the weights without the
    biases); ``incorrect`` otherwise.

    Examples
    --------
    >>> from dlmath.check import compare_number
    >>> verdict_of(compare_number(1_190_000, 1_191_170))
    'incorrect'
    """
    if full.ok:
        return "correct"
    if where_stated is not None and where_stated.ok:
        return "incomplete"
    return "incorrect"


_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add a claim to the registry; its id must be new.

    Examples
    --------
    >>> c = Claim(id="doc-example", source="000_example", question="Q0", topic="1 + 1",
    ...           claimed="3", check=lambda: Check("2", "incorrect"), chapter="ch-x",
    ...           expected="incorrect")
    >>> register(c) is c
    True
    >>> register(c)
    Traceback (most recent call last):
    ...
    ValueError: claim id 'doc-example' is already registered
    >>> _ = _REGISTRY.pop("doc-example")
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"claim must be a Claim, got {type(claim).__name__}")
    if claim.id in _REGISTRY:
        raise ValueError(f"claim id {claim.id!r} is already registered")
    _REGISTRY[claim.id] = claim
    return claim


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"dlmath._book.claims.{info.name}")


def all_claims() -> list[Claim]:
    """Every registered claim, sorted by source report and question."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda c: (c.source, c.question, c.id))


def get(claim_id: str) -> Claim:
    """The claim with this id.

    Raises
    ------
    KeyError
        If no claim has this id; the message lists how many exist.
    """
    _load_all()
    try:
        return _REGISTRY[claim_id]
    except KeyError:
        raise KeyError(f"no claim {claim_id!r}; {len(_REGISTRY)} claims are registered") from None
