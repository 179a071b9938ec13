"""Shared test configuration: hypothesis profiles and float64 oracles."""

from __future__ import annotations

import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# "dev" (default, what `make test` and CI run) is fast and derandomized: the same examples
# every run, so a result never depends on the luck of the draw (a rare input found by chance
# once, or a health check that trips on an unlucky draw). "ci-long" explores: more examples,
# a new random draw each run; run it now and then with HYPOTHESIS_PROFILE=ci-long make test.
settings.register_profile(
    "dev", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "ci-long", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """The totals of the fuzz suite (tests/test_fuzz.py), summed over its tests and workers.

    Each ``test_fuzz[...]`` records its counts with ``record_property``; the reports reach
    this controller process also under pytest-xdist.
    """
    totals: dict[str, int] = {}
    tests = 0
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(report, "user_properties", ()))
            if report.when != "call" or "fuzz_calls" not in props:
                continue
            tests += 1
            for key, value in props.items():
                totals[key] = totals.get(key, 0) + value
    if tests:
        terminalreporter.write_line(
            f"fuzz: {tests} callables, {totals['fuzz_calls']} calls: {totals['fuzz_clear']} "
            f"clear errors, {totals['fuzz_documented']} documented results, "
            f"{totals.get('fuzz_deferred', 0)} deferred, {totals['fuzz_failures']} failures")
