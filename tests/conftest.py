"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, is_hypothesis_test, settings

# Deterministic, bounded property tests in CI; `HYPOTHESIS_PROFILE=thorough` locally for more.
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Unit and API tests run under pyproject's 10 s timeout (a hang is a bug, found in seconds, not
# after two minutes). Suites that start processes, build wheels or wait for real servers get more,
# and so do property tests: 150 generated examples on a loaded two-core machine are not a hang.
_SLOW_SUITES = {"live": 90, "integration": 90, "cli": 90, "e2e": 300, "image": 300, "chart": 120}
_PROPERTY_TEST_TIMEOUT = 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        parts = item.path.resolve().relative_to(tests_dir).parts
        seconds = _SLOW_SUITES.get(parts[0]) if parts else None
        if seconds is None and is_hypothesis_test(getattr(item, "obj", None)):
            seconds = _PROPERTY_TEST_TIMEOUT
        if seconds is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))
