"""Shared test fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Deterministic, bounded property tests in CI; `HYPOTHESIS_PROFILE=thorough` locally for more.
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
