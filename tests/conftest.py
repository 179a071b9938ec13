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
