"""The simulator drives the reconciler's own KpaPolicy object, and its decisions are the decider's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from conftest import app_of

from reconciler.kpa import policy as kpa_policy
from reconciler.kpa.decider import decide
from reconciler.kpa.policy import DEFAULT_POLICY, KpaPolicy
from simulator.metrics import run_one
from simulator.model import AppSim, ModelConfig, TickDriver
from simulator.policies import build, kpa_settings
from simulator.tick import simulate
from simulator.workloads import generate


def test_kpa_is_the_reconcilers_default_policy_object() -> None:
    built = build("kpa", ModelConfig())
    assert built.tick is not None
    assert built.tick.policy is DEFAULT_POLICY is kpa_policy.DEFAULT_POLICY
    assert type(built.tick.policy) is KpaPolicy
    assert built.tick.settings == kpa_settings(1)
    assert built.tick.settings.stable_window == 60.0 and built.tick.settings.target_value == 0.7


@dataclass
class Recorder:
    """Delegates to the real KpaPolicy and keeps every call."""

    inner: KpaPolicy = field(default_factory=lambda: DEFAULT_POLICY)  # type: ignore[assignment]
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "kpa"

    def initial_state(self, settings: Any, ready: Any, current: Any, now: float) -> Any:
        return self.inner.initial_state(settings, ready, current, now)

    def step(self, settings: Any, state: Any, obs: Any, ctx: Any, now: float) -> Any:
        result = self.inner.step(settings, state, obs, ctx, now)
        self.calls.append((settings, state, obs, now, result[0]))
        return result


def test_decisions_match_the_decider_called_directly() -> None:
    rng = np.random.default_rng(3)
    start = np.sort(np.concatenate([rng.uniform(0, 300, 600), rng.uniform(600, 620, 400)]))
    rec = Recorder()
    simulate(AppSim(app_of(start, 0.3), 900.0, ModelConfig(), TickDriver(rec, kpa_settings(1))))
    assert len(rec.calls) > 100
    panicked = 0
    for settings, state, obs, now, result in rec.calls:
        direct, _ = decide(settings, state.decider, obs, now)
        assert direct == result.decision
        panicked += direct.mode == "panic"
    assert panicked > 0  # the burst at 600 s exercised panic mode


def test_skipping_idle_ticks_changes_nothing() -> None:
    rng = np.random.default_rng(9)
    start = np.sort(rng.uniform(0, 4 * 3600, 120))
    app = app_of(start, rng.lognormal(0, 0.5, start.size))
    for policy in ("kpa", "knscale"):
        fast = simulate(AppSim(app, 4 * 3600.0, ModelConfig(), build(policy, ModelConfig()).tick))  # type: ignore[arg-type]
        exact_cfg = ModelConfig(exact_ticks=True)
        exact = simulate(AppSim(app, 4 * 3600.0, exact_cfg, build(policy, exact_cfg).tick))  # type: ignore[arg-type]
        np.testing.assert_array_equal(fast.wait, exact.wait)
        assert (fast.cold_starts, fast.scale_events) == (exact.cold_starts, exact.scale_events)
        assert fast.replica_s == exact.replica_s


def test_runs_are_deterministic_per_seed() -> None:
    cfg = ModelConfig(cold_start_sigma=0.5)
    a = generate("W7", 4, {"functions": 2, "hours": 1})
    b = generate("W7", 4, {"functions": 2, "hours": 1})
    c = generate("W7", 5, {"functions": 2, "hours": 1})
    np.testing.assert_array_equal(a.apps[0].start, b.apps[0].start)
    assert a.requests != c.requests or not np.array_equal(a.apps[0].start, c.apps[0].start)
    for policy in ("kpa", "knscale", "hybrid"):
        r1 = run_one(a, build(policy, cfg), cfg, 4).values
        r2 = run_one(b, build(policy, cfg), cfg, 4).values
        assert r1 == r2
