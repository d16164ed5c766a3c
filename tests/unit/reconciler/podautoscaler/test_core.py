"""The pure reconcile of one knscale-class PodAutoscaler against Knative's KPA reconciler
(reference knative-kpa.md §5.1–§5.4): SKS mode and activators, the scale write, the status and
every condition transition. Time is a fake clock: plain floats."""

from __future__ import annotations

from typing import Any

import pytest

from kubeapi.testing import CLASS_KEY, pod_autoscaler
from reconciler.kpa.decider import Decision, Observation
from reconciler.kpa.policy import KpaPolicy, PolicyResult
from reconciler.kpa.scaler import ActivatorPath, ScaleContext, ScaleOutcome
from reconciler.podautoscaler.core import (
    NO_PRIVATE_SERVICE,
    PaFacts,
    reconcile_pa,
    rfc3339,
    scaler_state,
    with_scaler,
    zero_allowed,
)
from translator.autoscaling.kpa import KpaSettings
from translator.config.autoscaler import KNSCALE_CLASS

T0 = 1_700_000_000.0
SETTINGS = KpaSettings(stable_window=6.0, scale_to_zero_grace_period=2.0)
NOWHERE = ActivatorPath(proxy_since=None, probe_ok=False)


def pa(status: dict[str, Any] | None = None, **annotations: str) -> dict[str, Any]:
    obj = pod_autoscaler("hello-00001", annotations={CLASS_KEY: KNSCALE_CLASS, **annotations})
    obj["metadata"]["annotations"].pop("autoscaling.knative.dev/metric")
    obj["metadata"]["uid"] = "uid-1"
    obj["metadata"]["generation"] = 1
    if status is not None:
        obj["status"] = status
    return obj


def sks(*, ready: bool = True, proxy_since: float | None = None, private: bool = True) -> dict[str, Any]:
    conds: list[dict[str, Any]] = [
        {
            "type": "Ready",
            "status": "True" if ready else "Unknown",
            "message": "" if ready else "no endpoints",
        }
    ]
    if proxy_since is not None:
        conds.append(
            {
                "type": "ActivatorEndpointsPopulated",
                "status": "True",
                "lastTransitionTime": rfc3339(proxy_since),
            }
        )
    status: dict[str, Any] = {"serviceName": "hello-00001", "conditions": conds}
    if private:
        status["privateServiceName"] = "hello-00001-private"
    return {"metadata": {"name": "hello-00001"}, "status": status}


def result(want: int, *, ebc: int = 0, write: bool = True, current: int = 1) -> PolicyResult:
    decision = Decision(desired=max(want, 0), mode="stable", reason="decided", excess_burst_capacity=ebc)
    do = write and want >= 0 and want != current
    return PolicyResult(decision, ScaleOutcome(want, do, want if do else None, "decided"))


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


def active_status(status: str, since: float, *, initialized: bool = True, desired: int = 1) -> dict[str, Any]:
    t = rfc3339(since)
    return {
        "desiredScale": desired,
        "serviceName": "hello-00001",
        "conditions": [
            {"type": "Active", "status": status, "lastTransitionTime": t},
            {
                "type": "ScaleTargetInitialized",
                "status": "True" if initialized else "Unknown",
                "lastTransitionTime": t,
            },
            {"type": "SKSReady", "status": "True", "lastTransitionTime": t},
            {"type": "Ready", "status": status, "lastTransitionTime": t},
        ],
    }


def test_without_a_private_service_the_sks_is_requested_in_proxy_mode_and_nothing_scales() -> None:
    for given in (None, sks(private=False)):
        plan = reconcile_pa(pa(), PaFacts(SETTINGS, given, 1, 1, result(3), NOWHERE), T0)
        assert (plan.mode, plan.activators, plan.replicas, plan.want) == ("Proxy", 2, None, -1)
        assert plan.sks["spec"]["mode"] == "Proxy" and plan.sks["spec"]["numActivators"] == 2
        assert plan.sks["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert plan.sks["spec"]["objectRef"]["name"] == "hello-00001-deployment"
        c = conds(plan.status)
        assert c["SKSReady"] == ("Unknown", "NotReady") and c["Ready"][0] == "Unknown"
        sks_cond = next(x for x in plan.status["conditions"] if x["type"] == "SKSReady")
        assert sks_cond["message"] == NO_PRIVATE_SERVICE
        assert plan.status["desiredScale"] == -1 and plan.status["actualScale"] == 0
        assert plan.status["serviceName"] == "" and plan.status["metricsServiceName"] == ""


# (want, ebc, prior Active, ready, current) → (mode, Active, reason, write)
CASES = [
    ("up, burst capacity left: Serve", 3, 10, "True", 3, 1, "Serve", "True", "", 3),
    ("up, burst capacity negative: Proxy", 3, -5, "True", 3, 3, "Proxy", "True", "", None),
    ("no pods yet: Activating (Queued)", 2, 0, "Unknown", 0, 0, "Serve", "Unknown", "Queued", 2),
    ("want 0: Inactive, Proxy", 0, 0, "True", 1, 1, "Proxy", "False", "NoTraffic", None),
    ("want 0 while activating: TimedOut", 0, 0, "Unknown", 0, 0, "Proxy", "False", "TimedOut", None),
    (
        "unknown want, inactive: stays Proxy and Inactive",
        -1,
        10,
        "False",
        0,
        0,
        "Proxy",
        "False",
        "NoTraffic",
        None,
    ),
    ("unknown want, active, ready: stays Active, Proxy", -1, 10, "True", 1, 1, "Proxy", "True", "", None),
    ("unknown want, active, no pod: Activating", -1, 10, "True", 0, 1, "Proxy", "Unknown", "Queued", None),
]


@pytest.mark.parametrize(
    ("want", "ebc", "prior", "ready", "current", "mode", "active", "reason", "write"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_mode_active_condition_and_write(
    want: int,
    ebc: int,
    prior: str,
    ready: int,
    current: int,
    mode: str,
    active: str,
    reason: str,
    write: int | None,
) -> None:
    obj = pa(active_status(prior, T0 - 100))
    plan = reconcile_pa(
        obj, PaFacts(SETTINGS, sks(), current, ready, result(want, ebc=ebc, current=current), NOWHERE), T0
    )
    assert plan.mode == mode and plan.sks["spec"]["mode"] == mode
    assert conds(plan.status)["Active"] == (active, reason)
    assert plan.replicas == write
    assert plan.status["actualScale"] == ready
    assert plan.status["desiredScale"] == (want if want >= 0 else 1)  # an unknown want keeps the last one
    assert plan.status["serviceName"] == "hello-00001"
    assert plan.status["metricsServiceName"] == "hello-00001-private"


def test_ready_follows_the_living_condition_set() -> None:
    new = pa()
    plan = reconcile_pa(new, PaFacts(SETTINGS, sks(), 1, 1, result(1), NOWHERE), T0)
    c = conds(plan.status)
    assert c["Active"][0] == c["SKSReady"][0] == c["ScaleTargetInitialized"][0] == c["Ready"][0] == "True"
    not_ready = reconcile_pa(new, PaFacts(SETTINGS, sks(ready=False), 1, 1, result(1), NOWHERE), T0)
    c = conds(not_ready.status)
    assert c["SKSReady"] == ("Unknown", "NotReady") and c["Ready"][0] == "Unknown"
    inactive = reconcile_pa(pa(plan.status), PaFacts(SETTINGS, sks(), 1, 1, result(0), NOWHERE), T0 + 1)
    assert conds(inactive.status)["Ready"] == ("False", "NoTraffic")  # as Knative: an idle PA is not Ready


def test_scale_target_initialized_needs_the_threshold_and_a_service_name() -> None:
    initial = KpaSettings(initial_scale=3, min_scale=1)
    low = reconcile_pa(pa(), PaFacts(initial, sks(), 3, 2, result(3, current=3), NOWHERE), T0)
    assert conds(low.status)["ScaleTargetInitialized"][0] == "Unknown"
    assert conds(low.status)["Active"] == ("Unknown", "Queued")  # 2 ready < max(min 1, initial 3)
    met = reconcile_pa(pa(low.status), PaFacts(initial, sks(), 3, 3, result(3, current=3), NOWHERE), T0 + 1)
    assert conds(met.status)["ScaleTargetInitialized"][0] == "True"
    nameless = sks()
    nameless["status"]["serviceName"] = ""
    none = reconcile_pa(pa(), PaFacts(initial, nameless, 3, 3, result(3, current=3), NOWHERE), T0)
    assert conds(none.status)["ScaleTargetInitialized"][0] == "Unknown"


def test_activator_count_as_knative_computes_it() -> None:
    plan = reconcile_pa(pa(), PaFacts(KpaSettings(), sks(), 5, 5, result(5, current=5), NOWHERE), T0)
    assert plan.activators == 8  # ceil((5 × 100 + 211) / 100)
    zero_tbc = KpaSettings(target_burst_capacity=0)
    assert (
        reconcile_pa(pa(), PaFacts(zero_tbc, sks(), 5, 5, result(5, current=5), NOWHERE), T0).activators == 2
    )


def test_no_decision_yet_uses_the_initial_excess_burst_capacity() -> None:
    plan = reconcile_pa(pa(), PaFacts(KpaSettings(), sks(), 1, 1, None, NOWHERE), T0)
    assert plan.mode == "Proxy" and plan.want == -1 and plan.replicas is None  # 1×100 − 211 < 0


GATE = [
    ("active: never straight to 0", "True", 100, ActivatorPath(T0 - 50, True), False),
    ("inactive, probe not answered", "False", 1, ActivatorPath(T0 - 50, False), False),
    ("inactive, proxied for less than grace", "False", 1, ActivatorPath(T0 - 1, True), False),
    ("inactive, proxied for the grace period", "False", 1, ActivatorPath(T0 - 2, True), True),
    ("inactive for max(grace, retention)", "False", 2, ActivatorPath(None, True), True),
    ("tbc -1: the activator is always in the path", "False", 2, ActivatorPath(None, False, True), True),
]


@pytest.mark.parametrize(
    ("prior", "inactive_for", "path", "allowed"), [g[1:] for g in GATE], ids=[g[0] for g in GATE]
)
def test_the_last_pod_goes_only_with_the_activator_in_the_path(
    prior: str, inactive_for: float, path: ActivatorPath, allowed: bool
) -> None:
    obj = pa(active_status(prior, T0 - inactive_for))
    plan = reconcile_pa(obj, PaFacts(SETTINGS, sks(), 1, 1, result(0), path), T0)
    assert plan.replicas == (0 if allowed else None)
    assert plan.mode == "Proxy"
    assert zero_allowed(SETTINGS, scaler_state(obj["status"], T0), path, True, T0) is allowed


def test_retention_keeps_the_last_pod_even_with_the_activator_in_the_path() -> None:
    keep = KpaSettings(scale_to_zero_grace_period=2.0, scale_to_zero_pod_retention_period=10.0)
    state = scaler_state(active_status("False", T0 - 5), T0)
    assert not zero_allowed(keep, state, ActivatorPath(T0 - 5, True), True, T0)
    assert zero_allowed(keep, state, ActivatorPath(T0 - 5, True), False, T0)  # unreachable: no retention


def test_state_is_read_back_from_the_status() -> None:
    st = scaler_state(active_status("False", T0 - 7, desired=0), T0)
    assert (st.activity, st.since, st.initialized, st.desired_scale) == ("inactive", T0 - 7, True, 0)
    fresh = scaler_state(None, T0)
    assert (fresh.activity, fresh.since, fresh.initialized) == ("activating", T0, False)


def test_idle_revision_goes_inactive_proxies_then_scales_to_zero_with_the_faithful_kpa() -> None:
    """The whole §5.3 timeline on a fake clock: the status written by one step is the next one's input."""
    policy = KpaPolicy()
    settings = SETTINGS
    obj = pa(active_status("True", T0 - 60))
    state = policy.initial_state(settings, 1, 1, T0)
    idle = Observation(stable=0.0, panic=0.0, ready_pods=1)
    proxy_from: float | None = None
    trace = []
    for i in range(8):
        now = T0 + i
        path = ActivatorPath(proxy_from, probe_ok=proxy_from is not None)
        ctx = ScaleContext(current_replicas=1, ready_pods=1, zero_capable=True, activator=path)
        res, state = policy.step(
            settings, with_scaler(state, scaler_state(obj.get("status"), now)), idle, ctx, now
        )
        plan = reconcile_pa(obj, PaFacts(settings, sks(proxy_since=proxy_from), 1, 1, res, path), now)
        trace.append((plan.mode, conds(plan.status)["Active"][0], plan.replicas))
        if plan.mode == "Proxy" and proxy_from is None:
            proxy_from = now  # the SKS controller puts the activator endpoints in
        obj = pa(plan.status)
        if plan.replicas == 0:
            break
    assert trace[0] == ("Proxy", "False", None)  # active ≥ window and idle: Inactive, activator in
    assert trace[-1][2] == 0 and len(trace) == 3  # after the 2 s grace of proxying: to zero
    assert all(m == "Proxy" for m, _, _ in trace)
