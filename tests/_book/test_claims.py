"""Every registered claim still reaches the verdict the book states."""

import pytest

from dlmath._book import claims

ALL = claims.all_claims()


def test_ids_are_unique_and_sources_exist():
    from pathlib import Path

    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids))
    sources = Path(__file__).resolve().parents[2] / "shared" / "sources"
    if sources.is_dir():  # the reports sit beside the repository on the authors' machines
        stems = {p.stem for p in sources.glob("*.txt")}
        for c in ALL:
            assert c.source in stems, f"{c.id}: unknown source {c.source}"


@pytest.mark.parametrize("claim", ALL, ids=[c.id for c in ALL])
def test_verdict_is_stable(claim):
    result = claim.check()
    assert isinstance(result, claims.Check)
    assert result.verdict == claim.expected, (
        f"{claim.id}: the book says {claim.expected!r}, the check now says {result.verdict!r}"
        f" (verified: {result.verified}; {result.note})"
    )


def test_bad_verdict_rejected():
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Check("x", "maybe")  # type: ignore[arg-type]
