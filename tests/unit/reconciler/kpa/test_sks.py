"""The activator path for Knative revisions (knscale's autoscaler class), table-driven against the
reference's pseudocode (knative-kpa.md §5.1 mode and activator count, §5.3 handleScaleToZero's
Inactive branch with the probe and the SKS's time in Proxy mode), on a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.kpa.decider import Decision
from reconciler.kpa.scaler import (
    PROBE_PENDING,
    PROXY_RECHECK,
    ActivatorPath,
    ScaleContext,
    ScalerState,
    reconcile_scale,
)
from reconciler.kpa.sks import MIN_ACTIVATORS, activator_count, sks_mode
from translator.autoscaling.kpa import KpaSettings

T0 = 1_700_000_000.0
DEFAULTS = KpaSettings()  # grace 30 s, retention 0, stable window 60 s, TBC 211, activator capacity 100
AP = ActivatorPath
ZERO = Decision(desired=0, mode="stable", reason="idle", excess_burst_capacity=-211)


def _inactive(since: float = T0) -> ScalerState:
    return ScalerState(activity="inactive", since=since, initialized=True, desired_scale=0)


def _ctx(path: ActivatorPath | None, reachable: bool = True) -> ScaleContext:
    return ScaleContext(
        current_replicas=1, ready_pods=1, reachable=reachable, zero_capable=True, activator=path
    )


@pytest.mark.parametrize(
    ("want", "activity", "ebc", "mode"),
    [
        (3, "active", 0, "Serve"),  # wants pods, burst capacity covered
        (3, "active", 5.5, "Serve"),
        (3, "active", -1, "Proxy"),  # a burst could overrun the pods: activator buffers
        (0, "inactive", 100, "Proxy"),  # at or heading to zero
        (0, "active", 0, "Proxy"),
        (-1, "inactive", 0, "Proxy"),  # unknown want of an Inactive PA keeps the activator
        (-1, "active", 0, "Proxy"),
        (1, "activating", 0, "Serve"),
    ],
)
def test_sks_mode(want: int, activity: str, ebc: float, mode: str) -> None:
    assert sks_mode(want, activity, ebc) == mode  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tbc", "ready", "expected"),
    [
        (0.0, 50, MIN_ACTIVATORS),  # TBC 0: activator only at zero, the minimum suffices
        (211.0, 0, 3),  # ceil(211 / 100)
        (211.0, 1, 4),  # ceil((100 + 211) / 100)
        (211.0, 10, 13),  # ceil((1000 + 211) / 100)
        (-1.0, 3, 3),  # unlimited burst adds nothing: ceil(300 / 100)
        (-1.0, 0, MIN_ACTIVATORS),
        (50.0, 0, MIN_ACTIVATORS),
    ],
)
def test_activator_count(tbc: float, ready: int, expected: int) -> None:
    assert activator_count(replace(DEFAULTS, target_burst_capacity=tbc), ready) == expected


@pytest.mark.parametrize(
    ("case", "inactive_for", "path", "retention", "reachable", "want", "apply", "requeue"),
    [
        # The probe has not confirmed the activator: never remove the last pod, probe again in 1 s.
        (
            "no probe yet",
            100.0,
            ActivatorPath(proxy_since=T0, probe_ok=False),
            0.0,
            True,
            0,
            False,
            PROBE_PENDING,
        ),
        # TBC -1: the activator is always in the path, no probe needed.
        (
            "tbc -1",
            31.0,
            ActivatorPath(proxy_since=None, probe_ok=False, unlimited_burst=True),
            0.0,
            True,
            0,
            True,
            None,
        ),
        # Inactive for max(grace, retention) or more: scale to zero now.
        (
            "inactive ≥ grace",
            30.0,
            ActivatorPath(proxy_since=T0 + 29, probe_ok=True),
            0.0,
            True,
            0,
            True,
            None,
        ),
        # Retention keeps the last pod until it has passed.
        ("retention", 40.0, AP(T0, True), 90.0, True, 0, False, 50.0),
        ("retention passed", 95.0, AP(T0, True), 90.0, True, 0, True, None),
        # An unreachable revision ignores retention.
        ("unreachable", 31.0, AP(T0, True), 90.0, False, 0, True, None),
        # Fast path: the SKS has proxied for the grace period already.
        (
            "proxied long enough",
            10.0,
            ActivatorPath(proxy_since=T0 - 25, probe_ok=True),
            0.0,
            True,
            0,
            True,
            None,
        ),
        # Otherwise wait for the rest of the grace period in Proxy mode.
        ("wait for proxy", 10.0, AP(T0 + 5, True), 0.0, True, 0, False, 25.0),
    ],
)
def test_scale_to_zero_through_the_activator(
    case: str,
    inactive_for: float,
    path: ActivatorPath,
    retention: float,
    reachable: bool,
    want: int,
    apply: bool,
    requeue: float | None,
) -> None:
    settings = replace(DEFAULTS, scale_to_zero_pod_retention_period=retention)
    outcome, _ = reconcile_scale(settings, _inactive(), ZERO, _ctx(path, reachable), T0 + inactive_for)
    assert (outcome.want, outcome.apply, outcome.requeue_after) == (want, apply, requeue), (case, outcome)
    assert outcome.replicas == (0 if apply else None), case


def test_an_idle_active_pa_goes_inactive_and_rechecks_while_the_sks_proxies() -> None:
    active = ScalerState(activity="active", since=T0, initialized=True, desired_scale=1)
    path = ActivatorPath(proxy_since=T0 + 50, probe_ok=True)
    outcome, state = reconcile_scale(DEFAULTS, active, ZERO, _ctx(path), T0 + 61)
    assert (outcome.want, outcome.apply, outcome.requeue_after) == (0, False, PROXY_RECHECK)
    assert state.activity == "inactive" and state.since == T0 + 61
    # Without the SKS proxying yet, no recheck timer: the mode change itself re-enqueues.
    outcome, _ = reconcile_scale(DEFAULTS, active, ZERO, _ctx(ActivatorPath(None, True)), T0 + 61)
    assert outcome.requeue_after is None


def test_without_an_activator_the_plain_workload_rule_still_applies() -> None:
    """The plain-workload rule (no activator: max(grace, retention) of inactivity) is unchanged."""
    outcome, _ = reconcile_scale(DEFAULTS, _inactive(), ZERO, _ctx(None), T0 + 10)
    assert (outcome.want, outcome.apply, outcome.requeue_after) == (0, False, 20.0)
    outcome, _ = reconcile_scale(DEFAULTS, _inactive(), ZERO, _ctx(None), T0 + 30)
    assert (outcome.want, outcome.apply) == (0, True)
