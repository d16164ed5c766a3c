"""The simulator reproduces the closed forms of autoscaling-benchmark.md §4.3."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import app_of, simulate

from simulator.model import ModelConfig


def test_poisson_with_keepalive_t_is_cold_with_probability_exp_minus_lambda_t() -> None:
    rng = np.random.default_rng(11)
    lam, keep = 1 / 60.0, 60.0
    start = np.cumsum(rng.exponential(1 / lam, 20_000))
    cfg = ModelConfig(cold_start=0.001, tail=0.0)
    res = simulate(app_of(start, 0.0001), "keepalive-60s", cfg)
    p_cold = res.cold_starts / start.size
    assert p_cold == pytest.approx(math.exp(-lam * keep), abs=0.015)
    # Idle time per call = (1 − e^(−λT)) / λ (the tail after the last call is cut: tail 0).
    idle = (res.replica_s - res.busy_s - res.starting_s) / start.size
    assert idle == pytest.approx((1 - math.exp(-lam * keep)) / lam, abs=1.0)


def test_periodic_calls_with_period_above_t_are_always_cold() -> None:
    start = np.arange(0.0, 200 * 120.0, 120.0)
    res = simulate(app_of(start, 0.5), "keepalive-60s", ModelConfig(cold_start=2.0))
    assert res.cold_starts == start.size
    assert res.affected.all()
    res = simulate(app_of(start, 0.5), "keepalive-130s", ModelConfig(cold_start=2.0))
    assert res.cold_starts == 1  # P < T: only the very first call


def test_kpa_defaults_make_every_call_of_a_5_minute_periodic_app_cold() -> None:
    start = np.arange(10.0, 10 + 40 * 300.0, 300.0)
    res = simulate(app_of(start, 1.0), "kpa", ModelConfig(cold_start=2.0))
    assert res.affected.all()


def test_steady_load_at_70_percent_target_costs_about_1_43_busy_time() -> None:
    # cc = 1, Poisson 20/s, 0.5 s each: load 10 → KPA keeps ≈ 10 / 0.7 ≈ 14.3 replicas.
    rng = np.random.default_rng(5)
    start = np.cumsum(rng.exponential(1 / 20.0, 40_000))
    cfg = ModelConfig(cold_start=2.0, timeline=True)
    res = simulate(app_of(start, 0.5), "kpa", cfg)
    t = np.asarray(res.times)
    r = np.asarray(res.replicas, dtype=float)
    # Time-average of the replica count over the second half (the start from zero is a transient).
    lo, hi = float(start[-1]) / 2, float(start[-1])
    grid = np.linspace(lo, hi, 5000)
    mean = r[np.searchsorted(t, grid, side="right") - 1].mean()
    ratio = mean / 10.0
    assert 1.35 < ratio < 1.52, ratio
