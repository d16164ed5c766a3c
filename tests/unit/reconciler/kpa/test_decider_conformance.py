"""Knative's own autoscaler test vectors (reference knative-kpa.md §7.1, §7.2), fake clock.

Every row of the reference is replayed through `reconciler.kpa.decider.decide`. The harness mirrors
Knative's `newTestAutoscaler(TV, TBC)`: TotalValue = TV / 0.75, PanicThreshold 2, rates 10/10,
stable window 60 s, reachable, no activation scale, no delay window, built with 1 ready pod.
EBC values are the exact float64 results the reference lists (Knative's tests allow ±1).
"""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.kpa.aggregation import GO_ZERO_TIME
from reconciler.kpa.decider import DeciderState, Decision, Observation, decide, initial_state
from translator.autoscaling.kpa import KpaSettings

T = 1_700_000_000.0  # "time.Now()" of the Go tests: any base works for the non-delay vectors
Z = GO_ZERO_TIME  # Go's time.Time{}: base of the scale-down-delay vectors


def harness(tv: float, tbc: float, **overrides: object) -> KpaSettings:
    fields: dict[str, object] = {
        "target_value": tv,
        "total_value": tv / 0.75,
        "target_burst_capacity": tbc,
        "panic_threshold": 2.0,
        "max_scale_up_rate": 10.0,
        "max_scale_down_rate": 10.0,
        "stable_window": 60.0,
        "scale_down_delay": 0.0,
        "activation_scale": 0,
        "activator_capacity": 150.0,
    }
    fields.update(overrides)
    return KpaSettings(**fields)  # type: ignore[arg-type]


class Scaler:
    """One decider instance across steps, like the Go `autoscaler` object in a test."""

    def __init__(self, settings: KpaSettings, construct_ready: int | None = 1, now: float = T) -> None:
        self.settings = settings
        self.state = initial_state(settings, construct_ready, now)

    def scale(
        self,
        now: float,
        ready: int | None,
        stable: float | None,
        panic: float | None,
        *,
        reachable: bool = True,
    ) -> Decision:
        before = self.state
        decision, self.state = decide(
            self.settings, before, Observation(stable, panic, ready, reachable), now
        )
        return decision


def check(decision: Decision, desired: int, ebc: int | None = None) -> None:
    assert decision.valid, decision.reason
    assert decision.desired == desired, decision.reason
    if ebc is not None:
        assert decision.excess_burst_capacity == ebc


# §7.1 — (id, label, TV, TBC, ready, stable, panic, overrides, desired, EBC, panicking after)
SINGLE_STEP = [
    (1, "NoDataAtZeroNoAutoscale", 10, 100, 1, 0, 0, {}, 0, -87, False),
    (2, "StableModeUnlimitedTBC", 181, -1, 1, 21, 26, {}, 1, -1, False),
    (3, "0TBC", 10, 0, 1, 50, 49, {}, 5, 0, True),
    (4, "StableModeNoChange", 10, 100, 1, 50, 50, {}, 5, -137, True),
    (7, "StableModeNoChangeAlreadyScaled", 10, 100, 5, 50, 50, {}, 5, -84, False),
    (
        8,
        "StableModeIncreaseWithSmallScaleUpRate",
        1,
        1982,
        2,
        3,
        3.1,
        {"max_scale_up_rate": 1.1},
        3,
        -1983,
        True,
    ),
    (
        9,
        "StableModeDecreaseWithSmallScaleDownRate",
        10,
        1982,
        100,
        1,
        1,
        {"max_scale_down_rate": 1.1},
        90,
        -650,
        False,
    ),
    (11, "PanicModeDoublePodCount", 10, 84, 1, 50, 100, {}, 10, -171, True),
    (12, "UseOnePodAsMinimumIfEndpointsNotFound", 10, 81, 0, 1000, 888, {}, 10, -969, True),
]


@pytest.mark.parametrize(
    ("vid", "label", "tv", "tbc", "ready", "stable", "panic", "overrides", "desired", "ebc", "panicking"),
    SINGLE_STEP,
    ids=[f"#{row[0]}-{row[1]}" for row in SINGLE_STEP],
)
def test_single_step_vectors(
    vid: int,
    label: str,
    tv: float,
    tbc: float,
    ready: int,
    stable: float,
    panic: float,
    overrides: dict[str, object],
    desired: int,
    ebc: int,
    panicking: bool,
) -> None:
    s = Scaler(harness(tv, tbc, **overrides))
    decision = s.scale(T, ready, stable, panic)
    check(decision, desired, ebc)
    assert s.state.panicking is panicking
    assert decision.mode == ("panic" if panicking else "stable")


def test_7_1_10_decrease_non_reachable_has_no_scale_down_floor() -> None:
    s = Scaler(harness(10, 1982, max_scale_down_rate=1.1))
    check(s.scale(T, 100, 1, 1, reachable=False), 1, -650)
    assert not s.state.panicking


@pytest.mark.parametrize(("vid", "stable", "desired"), [(5, 50, 50), (6, 20, 30)])
def test_7_1_5_and_6_panic_uses_larger_of_stable_and_panic(vid: int, stable: float, desired: int) -> None:
    s = Scaler(harness(1, 100))
    s.state = DeciderState(panic_time=T - 5, max_panic_pods=5)
    check(s.scale(T, 5, stable, 30), desired, -124)
    assert s.state.panic_time == T  # still over threshold (30/5 ≥ 2): panic extended to now
    assert s.state.max_panic_pods == desired


def test_7_1_13_cannot_count_pods_is_invalid_and_keeps_state() -> None:
    s = Scaler(harness(10, 81))
    before = s.state
    decision = s.scale(T, None, 1000, 888)
    assert decision == Decision(
        desired=0, mode="stable", reason=decision.reason, excess_burst_capacity=0, valid=False
    )
    assert "cannot count ready pods" in decision.reason
    assert s.state is before


def test_7_1_14_no_data_is_invalid_and_keeps_state() -> None:
    s = Scaler(harness(10, 100))
    before = s.state
    decision = decide(s.settings, before, Observation(None, None, 1, missing_reason="no metrics"), T)[0]
    assert not decision.valid and decision.desired == 0 and decision.excess_burst_capacity == 0
    assert "no metrics" in decision.reason
    assert s.state is before


def test_7_1_15_metrics_values_reported_on_the_decision() -> None:
    s = Scaler(harness(10, 100))
    decision = s.scale(T, 1, 50, 50)
    check(decision, 5, -137)
    assert decision.mode == "panic"  # Knative's panic gauge = 1
    assert (decision.observed_stable, decision.observed_panic) == (50, 50)
    assert s.settings.target_value == 10


# §7.2 — multi-step sequences on one instance.


def test_7_2_16_stable_increase_with_concurrency_default() -> None:
    s = Scaler(harness(10, 101))
    check(s.scale(T, 1, 50, 10), 5, -98)
    check(s.scale(T, 1, 100, 10), 10, -98)  # capped by ceil(10 × 1)


def test_7_2_17_stable_increase_with_rps() -> None:
    s = Scaler(harness(10, 101, metric="rps"))
    check(s.scale(T, 1, 50, 50), 5, -138)
    check(s.scale(T, 1, 100, 99), 10, -187)


def test_7_2_18_stable_decrease() -> None:
    s = Scaler(harness(10, 98))
    check(s.scale(T, 8, 100, 100), 10, -92)
    check(s.scale(T, 8, 50, 50), 5, -42)


def test_7_2_19_no_traffic_scale_to_zero() -> None:
    s = Scaler(harness(10, 75))
    check(s.scale(T, 1, 1, 0), 1, -62)
    check(s.scale(T, 1, 0, 0), 0, -62)


def test_7_2_20_activation_scale_lifts_non_zero_only() -> None:
    s = Scaler(harness(10, 75, activation_scale=2))
    check(s.scale(T, 1, 0, 0), 0, -62)
    check(s.scale(T, 1, 1, 0), 2, -62)


def test_7_2_21_rate_limit_scale_up() -> None:
    s = Scaler(harness(10, 61))
    check(s.scale(T, 1, 1000, 1001), 10, -1049)
    check(s.scale(T, 10, 1000, 1001), 100, -929)


def test_7_2_22_rate_limit_scale_down() -> None:
    s = Scaler(harness(10, 61))
    check(s.scale(T, 100, 1, 1), 10, 1271)
    check(s.scale(T, 10, 1, 1), 1, 71)


def test_7_2_23_update_target_between_ticks() -> None:
    s = Scaler(harness(10, 77))
    check(s.scale(T, 1, 100, 101), 10, -165)
    # Go's Update() passes a spec without Reachable, i.e. false; settings are simply the next input.
    s.settings = harness(1, 71, activator_capacity=21.0)
    check(s.scale(T, 10, 100, 101, reachable=False), 100, -159)


def test_7_2_24_panic_mode_exponential_track_and_stabilize() -> None:
    s = Scaler(harness(1, 101))
    check(s.scale(T - 1, 1, 6, 6), 6, -106)
    check(s.scale(T, 6, 36, 36), 36, -129)
    assert s.state.panic_time == T
    check(s.scale(T + 1, 36, 216, 216), 216, -269)
    assert s.state.panic_time == T + 1
    check(s.scale(T + 1, 216, 1296, 1296), 1296, -1109)
    assert s.state.panic_time == T + 1
    check(s.scale(T + 2, 1296, 1296, 1296), 1296, 331)  # not over threshold, still panicking
    assert s.state.panic_time == T + 1


def test_7_2_25_unpanic_after_slow_increase() -> None:
    s = Scaler(harness(1, 98))
    check(s.scale(T, 10, 11, 25), 25, -110)
    assert s.state.panic_time == T
    check(s.scale(T + 30, 40, 30, 41), 41, -86)
    assert s.state.panic_time == T  # 41/40 < 2: panic not extended
    decision = s.scale(T + 62, 55, 50, 56)
    check(decision, 50, -81)  # T+60 < T+62: panic over, the stable desire is used
    assert not s.state.panicking and s.state.max_panic_pods == 0
    assert decision.mode == "stable" and "left panic" in decision.reason


def test_7_2_26_extend_panic_window() -> None:
    s = Scaler(harness(1, 98))
    check(s.scale(T, 10, 11, 25), 25)
    check(s.scale(T + 30, 40, 30, 80), 80, -125)
    assert s.state.panic_time == T + 30  # 80/40 = 2 ≥ 2


def test_7_2_27_panic_then_unpanic_scale_down() -> None:
    s = Scaler(harness(10, 93))
    p = T + 5
    check(s.scale(T, 1, 100, 100), 10, -180)
    assert s.state.panicking
    check(s.scale(p, 10, 100, 1000), 100, -960)
    check(s.scale(p + 30, 10, 1, 1), 100, 39)  # no scale-down while panicking
    check(s.scale(p + 61, 10, 1, 1), 1, 39)  # panic over; floor(10/10) = 1


def delay_harness(delay: float = 300.0) -> KpaSettings:
    # Knative's delay tests build their own spec: PT 100 never panics, TBC 0 ⇒ EBC 0.
    return KpaSettings(
        target_value=10.0,
        total_value=0.0,
        target_burst_capacity=0.0,
        panic_threshold=100.0,
        max_scale_up_rate=10.0,
        max_scale_down_rate=10.0,
        stable_window=0.0,
        scale_down_delay=delay,
    )


def test_7_2_28_and_29_scale_down_delay_simple_then_gradual() -> None:
    s = Scaler(delay_harness(), construct_ready=0, now=Z)
    assert s.state.delay_window is not None and s.state.delay_window.size == 150
    # simple
    check(s.scale(Z + 2, 0, 40, 40), 4, 0)
    check(s.scale(Z + 300, 0, 0, 0), 4, 0)  # slot 149 after the 4: still inside 150 slots
    decision = s.scale(Z + 302, 0, 0, 0)
    check(decision, 0, 0)  # the 4 scrolled out
    # gradual (same instance)
    check(s.scale(Z + 540, 0, 40, 40), 4)
    check(s.scale(Z + 600, 0, 30, 30), 4)  # 4 still dominates
    check(s.scale(Z + 660, 0, 0, 0), 4)
    check(s.scale(Z + 840, 0, 0, 0), 3)  # the 4 scrolled out, the 3 remains
    check(s.scale(Z + 900, 0, 0, 0), 0)  # everything scrolled out


def test_7_2_28_delay_reported_in_reason() -> None:
    s = Scaler(delay_harness(), construct_ready=0, now=Z)
    s.scale(Z + 2, 0, 40, 40)
    assert "scale-down delayed from 0" in s.scale(Z + 300, 0, 0, 0).reason


def test_7_2_30_scale_down_delay_not_reachable_bypasses_window() -> None:
    s = Scaler(delay_harness(), construct_ready=0, now=Z)
    check(s.scale(Z + 2, 0, 40, 40), 4)
    check(s.scale(Z + 60, 0, 0, 0), 4)
    check(s.scale(Z + 2, 0, 0, 0, reachable=False), 0)


def test_7_2_31_scale_down_delay_zero_has_no_window() -> None:
    s = Scaler(delay_harness(0.0), construct_ready=0, now=Z)
    assert s.state.delay_window is None
    check(s.scale(Z, 0, 40, 40, reachable=False), 4)
    check(s.scale(Z + 0.5, 0, 20, 20, reachable=False), 2)  # immediately


def test_delay_window_is_created_only_at_construction() -> None:
    # Gotcha 4: changing scale-down-delay later neither creates nor removes the window.
    s = Scaler(delay_harness(0.0), construct_ready=0, now=Z)
    s.settings = delay_harness(300.0)
    check(s.scale(Z + 2, 0, 40, 40), 4)
    check(s.scale(Z + 4, 0, 0, 0), 0)
    assert s.state.delay_window is None


@pytest.mark.parametrize(("ready", "panicking", "max_pods"), [(0, False, 0), (1, False, 1), (2, True, 2)])
def test_7_2_32_start_in_panic_mode(ready: int, panicking: bool, max_pods: int) -> None:
    settings = KpaSettings(target_value=100, total_value=120, target_burst_capacity=11, panic_threshold=220)
    state = initial_state(settings, ready, T)
    assert state.panicking is panicking
    assert state.max_panic_pods == max_pods
    if panicking:
        assert state.panic_time == T


def test_7_2_33_new_fail_counts_as_zero_pods() -> None:
    settings = KpaSettings(target_value=100, total_value=120, target_burst_capacity=11, panic_threshold=220)
    state = initial_state(settings, None, T)
    assert not state.panicking and state.max_panic_pods == 0


def test_decide_never_mutates_its_inputs() -> None:
    settings = delay_harness()
    state = initial_state(settings, 3, Z)
    snapshot = dataclasses.replace(state)
    decide(settings, state, Observation(40, 40, 3), Z + 2)
    assert state == snapshot
