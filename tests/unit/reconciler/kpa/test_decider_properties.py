"""Properties of the ported decider that every Knative vector implies, over random inputs."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from reconciler.kpa.decider import DeciderState, Observation, decide, initial_state
from translator.autoscaling.kpa import KpaSettings

T = 1_700_000_000.0

settings_st = st.builds(
    KpaSettings,
    target_value=st.floats(0.01, 1000),
    total_value=st.floats(0.01, 1000),
    target_burst_capacity=st.sampled_from([-1.0, 0.0, 211.0]),
    panic_threshold=st.floats(1.1, 10),
    max_scale_up_rate=st.floats(1.01, 1000),
    max_scale_down_rate=st.floats(1.01, 10),
    stable_window=st.sampled_from([6.0, 60.0]),
    scale_down_delay=st.sampled_from([0.0, 10.0]),
    activation_scale=st.sampled_from([0, 2, 5]),
)
load = st.floats(0, 1e6)
observation_st = st.builds(Observation, load, load, st.integers(0, 500), st.booleans())


@given(settings_st, observation_st, st.integers(0, 500))
def test_desired_respects_the_rate_limits(s: KpaSettings, obs: Observation, start_ready: int) -> None:
    state = initial_state(s, start_ready, T - 1)
    decision, new = decide(s, state, obs, T)
    assert decision.valid and decision.desired >= 0
    ready = max(1, obs.ready_pods or 0)
    upper = max(math.ceil(s.max_scale_up_rate * ready), s.activation_scale, state.max_panic_pods)
    assert decision.desired <= upper
    if obs.reachable and not new.panicking and state.delay_window is None:
        assert decision.desired >= math.floor(ready / s.max_scale_down_rate)
    if new.panicking:
        assert decision.desired >= state.max_panic_pods or state.panic_time is None


@given(settings_st, st.lists(observation_st, min_size=1, max_size=20))
def test_panic_never_scales_down_and_state_is_never_mutated(
    s: KpaSettings, observations: list[Observation]
) -> None:
    state = initial_state(s, 1, T)
    now = T
    previous: int | None = None
    for obs in observations:
        now += 2
        snapshot = DeciderState(state.panic_time, state.max_panic_pods, state.delay_window)
        decision, new = decide(s, state, obs, now)
        assert state == snapshot
        if state.panicking and new.panicking and previous is not None and state.delay_window is None:
            assert decision.desired >= previous
        previous, state = decision.desired, new


@given(settings_st, st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_metrics_are_invalid(s: KpaSettings, bad: float) -> None:
    state = initial_state(s, 3, T)
    decision, new = decide(s, state, Observation(bad, 1.0, 3), T)
    assert not decision.valid and new is state and "non-finite" in decision.reason
