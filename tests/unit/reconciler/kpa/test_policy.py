"""KPA post-processing (bounds, scale-to-zero state machine, no-activator rules) and the Policy interface."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.kpa.decider import Decision, Observation
from reconciler.kpa.policy import DEFAULT_POLICY, KpaPolicy, KpaState, Policy, PolicyResult
from reconciler.kpa.scaler import (
    ScaleContext,
    ScaleOutcome,
    ScalerState,
    apply_bounds,
    initial_scaler_state,
    reconcile_scale,
)
from translator.autoscaling.kpa import KpaSettings

T0 = 1_700_000_000.0
DEFAULTS = KpaSettings()


def want(desired: int) -> Decision:
    return Decision(
        desired=desired, mode="stable", reason=f"decider wants {desired}", excess_burst_capacity=0
    )


INVALID = Decision(
    desired=0, mode="stable", reason="invalid: no metrics", excess_burst_capacity=0, valid=False
)
ACTIVE = ScalerState(activity="active", since=T0, initialized=True)


def ctx(current: int | None = 1, ready: int = 1, **kw: object) -> ScaleContext:
    return ScaleContext(current_replicas=current, ready_pods=ready, **kw)  # type: ignore[arg-type]


def step(
    state: ScalerState, decision: Decision, c: ScaleContext, now: float, settings: KpaSettings = DEFAULTS
) -> tuple[ScaleOutcome, ScalerState]:
    return reconcile_scale(settings, state, decision, c, now)


# --- bounds -------------------------------------------------------------------------------


def test_apply_bounds() -> None:
    assert apply_bounds(2, 5, 1) == 2
    assert apply_bounds(2, 5, 9) == 5
    assert apply_bounds(0, 0, 1000) == 1000  # max 0 = unbounded
    assert apply_bounds(0, 3, -1) == 0  # Knative: unknown (-1) becomes min


@given(st.integers(0, 50), st.integers(0, 50), st.integers(-1, 200))
def test_apply_bounds_property(lo: int, span: int, x: int) -> None:
    hi = lo + span
    y = apply_bounds(lo, hi, x)
    assert y >= lo and (hi == 0 or y <= hi)


def test_min_max_scale_applied_and_written_only_on_change() -> None:
    s = replace(DEFAULTS, min_scale=2, max_scale=4)
    out, _ = step(ACTIVE, want(9), ctx(current=3, ready=3, zero_capable=True), T0 + 1, s)
    assert (out.want, out.apply, out.replicas) == (4, True, 4)
    assert "bounded 9→4 by min 2, max 4" in out.reason and "scaling 3→4" in out.reason
    out, _ = step(ACTIVE, want(0), ctx(current=2, ready=2, zero_capable=True), T0 + 1, s)
    assert (out.want, out.apply, out.replicas) == (2, False, None)  # already at min: no write


def test_unreachable_ignores_min_scale() -> None:
    s = replace(DEFAULTS, min_scale=3)
    out, _ = step(ACTIVE, want(1), ctx(current=3, ready=3, reachable=False, zero_capable=True), T0, s)
    assert out.want == 1 and out.replicas == 1


def test_initial_scale_holds_until_reached_once() -> None:
    s = replace(DEFAULTS, initial_scale=3)
    state = initial_scaler_state(current_replicas=3, now=T0)
    out, state = step(state, want(1), ctx(current=3, ready=1, zero_capable=True), T0 + 1, s)
    assert out.want == 3 and not out.apply and not state.initialized and state.activity == "activating"
    out, state = step(state, want(1), ctx(current=3, ready=3, zero_capable=True), T0 + 2, s)
    assert out.want == 3 and state.initialized and state.activity == "active"
    out, state = step(state, want(1), ctx(current=3, ready=3, zero_capable=True), T0 + 3, s)
    assert out.want == 1 and out.replicas == 1  # initialized: initial scale no longer a floor


def test_current_replicas_none_reads_as_one() -> None:
    out, _ = step(ACTIVE, want(1), ctx(current=None), T0)
    assert not out.apply
    out, _ = step(ACTIVE, want(2), ctx(current=None), T0)
    assert out.apply and out.replicas == 2


# --- knscale's no-activator rules and missing data ----------------------------------------


def test_without_ingress_source_the_floor_is_one() -> None:
    state = replace(ACTIVE, since=T0 - 3600)
    out, state = step(state, want(0), ctx(current=1, zero_capable=False), T0)
    assert out.want == 1 and not out.apply and state.activity == "active"
    assert "bounded 0→1 by min 1" in out.reason


def test_enable_scale_to_zero_false_holds_one() -> None:
    s = replace(DEFAULTS, enable_scale_to_zero=False)
    out, _ = step(
        replace(ACTIVE, since=T0 - 3600), want(0), ctx(current=2, ready=2, zero_capable=True), T0, s
    )
    assert (out.want, out.replicas) == (1, 1) and "enable-scale-to-zero: false" in out.reason


@pytest.mark.parametrize("activity", ["activating", "active", "inactive"])
def test_invalid_decision_holds_in_every_state(activity: str) -> None:
    state = ScalerState(activity=activity, since=T0 - 10_000, initialized=True, desired_scale=3)  # type: ignore[arg-type]
    out, new = step(state, INVALID, ctx(current=3, ready=3, zero_capable=True), T0)
    assert (out.want, out.apply, out.replicas) == (-1, False, None)
    assert out.reason == "holding 3 replicas: invalid: no metrics"
    assert new is state


# --- scale-to-zero timeline ---------------------------------------------------------------


def test_idle_workload_goes_to_zero_after_window_then_grace() -> None:
    c = ctx(current=1, ready=1, zero_capable=True)
    state = ACTIVE  # active since T0
    out, state = step(state, want(0), c, T0 + 30)
    assert (out.want, out.apply) == (1, False) and out.requeue_after == 30  # hold 1 until a full window
    out, state = step(state, want(0), c, T0 + 60)
    assert (out.want, out.apply) == (0, False) and state.activity == "inactive" and state.since == T0 + 60
    out, state = step(state, want(0), c, T0 + 89)
    assert (out.want, out.apply) == (0, False) and out.requeue_after == pytest.approx(1)
    out, state = step(state, want(0), c, T0 + 90)
    assert (out.want, out.apply, out.replicas) == (0, True, 0)
    assert "scaling 1→0" in out.reason
    # At zero: stays inactive, no further writes.
    out, state = step(state, want(0), ctx(current=0, ready=0, zero_capable=True), T0 + 92)
    assert not out.apply and state.activity == "inactive" and state.desired_scale == 0


def test_retention_period_extends_the_last_pod() -> None:
    s = replace(DEFAULTS, scale_to_zero_pod_retention_period=120.0)
    inactive = ScalerState(activity="inactive", since=T0, initialized=True)
    out, _ = step(inactive, want(0), ctx(zero_capable=True), T0 + 100, s)
    assert not out.apply and out.requeue_after == pytest.approx(20)
    out, _ = step(inactive, want(0), ctx(zero_capable=True), T0 + 120, s)
    assert out.apply and out.replicas == 0
    # Unreachable: retention does not apply, the grace period does.
    out, _ = step(inactive, want(0), ctx(zero_capable=True, reachable=False), T0 + 30, s)
    assert out.apply and out.replicas == 0


def test_scale_from_zero_activates_then_becomes_active() -> None:
    state = ScalerState(activity="inactive", since=T0, initialized=True, desired_scale=0)
    out, state = step(state, want(1), ctx(current=0, ready=0, zero_capable=True), T0 + 5)
    assert (out.replicas, state.activity, state.since) == (1, "activating", T0 + 5)
    out, state = step(state, want(1), ctx(current=1, ready=1, zero_capable=True), T0 + 8)
    assert not out.apply and state.activity == "active" and state.since == T0 + 8


def test_activating_with_zero_desire_waits_for_the_activation_timeout() -> None:
    state = initial_scaler_state(current_replicas=1, now=T0)
    c = ctx(current=1, ready=0, zero_capable=True, activation_timeout=100.0)
    out, state = step(state, want(0), c, T0 + 50)
    assert (out.want, out.apply) == (-1, False) and state.activity == "activating"
    out, state = step(state, want(0), c, T0 + 101)
    assert (out.want, out.replicas) == (0, 0) and state.activity == "inactive"


def test_new_target_at_zero_starts_inactive() -> None:
    assert initial_scaler_state(0, T0).activity == "inactive"
    assert initial_scaler_state(None, T0).activity == "activating"


# --- the Policy interface and the KPA policy ----------------------------------------------


def test_kpa_policy_drives_an_idle_revision_down_and_to_zero() -> None:
    # §7.4: 5 idle pods go 5 → 2 → 1 → 0 as ready follows, then §5.3 gates the last pod.
    policy: Policy[KpaState] = KpaPolicy()
    settings = replace(DEFAULTS, stable_window=60.0)
    state = policy.initial_state(settings, ready_pods=1, current_replicas=5, now=T0)
    replicas, now, writes = 5, T0, []
    for _ in range(60):
        now += 2
        obs = Observation(stable=0.0, panic=0.0, ready_pods=replicas)
        result, state = policy.step(
            settings, state, obs, ScaleContext(replicas, replicas, zero_capable=True), now
        )
        if result.outcome.apply:
            assert result.outcome.replicas is not None
            replicas = result.outcome.replicas
            writes.append((now - T0, replicas))
        if replicas == 0:
            break
    assert [r for _, r in writes] == [2, 1, 0]
    # Became active at T0+2 (ready 5 ≥ 1); inactive once active ≥ 60 s; zero 30 s (grace) later.
    assert writes[-1][0] == pytest.approx(2 + 60 + 30, abs=2)


def test_kpa_policy_holds_on_missing_metrics() -> None:
    state = DEFAULT_POLICY.initial_state(DEFAULTS, 3, 3, T0)
    obs = Observation(None, None, 3, missing_reason="metrics missing: queue-proxy: too many pods failed")
    result, new = DEFAULT_POLICY.step(DEFAULTS, state, obs, ScaleContext(3, 3), T0 + 2)
    assert not result.decision.valid and not result.outcome.apply
    assert "too many pods failed" in result.outcome.reason
    assert new == state


class FixedPolicy:
    """A baseline a simulator might add: always the same replica count (proves the interface)."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas

    @property
    def name(self) -> str:
        return f"fixed-{self.replicas}"

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> int:
        return 0

    def step(
        self, settings: KpaSettings, state: int, observation: Observation, context: ScaleContext, now: float
    ) -> tuple[PolicyResult, int]:
        decision = Decision(self.replicas, "stable", "fixed", 0)
        write = context.current_replicas != self.replicas
        outcome = ScaleOutcome(self.replicas, write, self.replicas if write else None, "fixed")
        return PolicyResult(decision, outcome), state + 1


S = TypeVar("S")


def run_policy(policy: Policy[S], ticks: int) -> list[int | None]:
    state = policy.initial_state(DEFAULTS, 1, 1, T0)
    out = []
    for i in range(ticks):
        result, state = policy.step(
            DEFAULTS, state, Observation(10.0, 10.0, 1), ScaleContext(1, 1), T0 + 2 * i
        )
        out.append(result.outcome.replicas)
    return out


def test_policies_are_pluggable() -> None:
    assert run_policy(FixedPolicy(4), 2) == [4, 4]
    assert run_policy(KpaPolicy(), 2) == [None, None]  # ceil(10/70) = 1 pod: already there
    assert DEFAULT_POLICY.name == "kpa"
