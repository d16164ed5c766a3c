"""One reconcile of a PodAutoscaler of knscale's class, as Knative's KPA reconciler does it. Pure.

Knative's ``ReconcileKind`` (reference knative-kpa.md §5.1–§5.4), step by step, for a PA whose
class is ``autoscaling.knscale.dev``:

1. No ServerlessService yet, or it has no private service: ask for one in Proxy mode with the
   minimum of activators, mark ``SKSReady`` Unknown ("No Private Service Name"), status with an
   unknown want; nothing is scaled.
2. Otherwise ``metricsServiceName`` = the SKS's private service; the policy's outcome (decider +
   the KPA scale step, run by the caller with the activator's position) gives ``want`` and at most
   one replicas write. knscale adds one gate: a write to 0 happens only once the activator is in
   the path (probe answered, or target-burst-capacity -1) and the SKS has proxied for the grace
   period, or the PA has been Inactive for max(grace, retention) — whatever the policy (the
   cold-start-aware one releases replicas on its own schedule; this keeps Knative's guarantee that
   no request meets a revision with neither pods nor activator).
3. SKS mode: Proxy when the want is 0, or unknown on an Inactive PA, or the excess burst capacity
   is negative; Serve otherwise (``reconciler.kpa.sks``). Activators: ``computeNumActivators``.
4. Status: ``serviceName`` from the SKS, ``SKSReady`` from its Ready condition, ``actualScale`` =
   ready pods, ``desiredScale`` = want (an unknown want keeps a known previous value),
   ``ScaleTargetInitialized`` latched once ready ≥ the activation threshold with a service name,
   and ``Active`` per ``computeActiveCondition``; ``Ready`` follows the living condition set.

State: none of its own. The PA status *is* the state, as in Knative: ``scaler_state`` rebuilds
the scale-to-zero state machine (Active condition and its transition time, the initialized
latch, the last desired scale) from it, so a restarted or newly elected controller continues
where the last one stopped. Time: float Unix seconds in, RFC 3339 strings into conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from reconciler.hpa.objects import ACTIVE, SCALE_TARGET_INITIALIZED, PaConditions, condition, desired_sks
from reconciler.kpa.policy import KpaState, PolicyResult
from reconciler.kpa.predictive import PredictiveState
from reconciler.kpa.scaler import SCALE_UNKNOWN, ActivatorPath, ScalerState
from reconciler.kpa.sks import MIN_ACTIVATORS, SksMode, activator_count, sks_mode
from translator.autoscaling.kpa import KpaSettings

NO_PRIVATE_SERVICE = "No Private Service Name"
NO_TRAFFIC = ("NoTraffic", "The target is not receiving traffic.")
TIMED_OUT = ("TimedOut", "The target could not be activated.")
QUEUED = ("Queued", "Requests to the target are being buffered as resources are provisioned.")
ACTIVATOR_ENDPOINTS = "ActivatorEndpointsPopulated"
ZERO_GATE_RECHECK = 1.0


@dataclass(frozen=True, slots=True)
class PaFacts:
    """What the caller read for one PA at this tick."""

    settings: KpaSettings
    sks: Mapping[str, Any] | None
    current_replicas: int | None  # the scale target's spec.replicas (None reads as 1)
    ready_pods: int
    result: PolicyResult | None  # None: no decision yet (no metrics since the decider started)
    activator: ActivatorPath
    reachable: bool = True


@dataclass(frozen=True, slots=True)
class PaPlan:
    sks: dict[str, Any]  # the desired ServerlessService
    mode: SksMode
    activators: int
    replicas: int | None  # a scale write is due (None: none)
    want: int
    status: dict[str, Any]
    reason: str
    requeue_after: float | None = None


# ---- time and the PA status as state ------------------------------------------------------


def _epoch(text: Any) -> float | None:
    from datetime import datetime

    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scaler_state(status: Mapping[str, Any] | None, now: float) -> ScalerState:
    """The KPA scale step's state, read back from the PA status (Knative keeps it nowhere else)."""
    st: Mapping[str, Any] = status or {}
    active = condition({"status": st}, ACTIVE)
    activity = "activating"
    since = now
    if active is not None:
        activity = {"True": "active", "False": "inactive"}.get(str(active.get("status")), "activating")
        since = _epoch(active.get("lastTransitionTime")) or now
    init = condition({"status": st}, SCALE_TARGET_INITIALIZED)
    desired = st.get("desiredScale")
    return ScalerState(
        activity=activity,  # type: ignore[arg-type]  # one of the three literals
        since=since,
        initialized=init is not None and init.get("status") == "True",
        desired_scale=desired if isinstance(desired, int) and desired >= 0 else None,
    )


def with_scaler(state: Any, scaler: ScalerState) -> Any:
    """A policy state with its scale-to-zero part replaced by the one the PA status holds."""
    if isinstance(state, KpaState):
        return replace(state, scaler=scaler)
    if isinstance(state, PredictiveState):
        return replace(state, kpa=replace(state.kpa, scaler=scaler))
    return state


def proxy_since(sks: Mapping[str, Any] | None) -> float | None:
    """``sks.Status.ProxyFor()``: since when the activator endpoints back the revision (None: not)."""
    if not sks:
        return None
    c = condition(sks, ACTIVATOR_ENDPOINTS)
    if c is None or c.get("status") != "True":
        return None
    return _epoch(c.get("lastTransitionTime"))


def _sks_ready(sks: Mapping[str, Any]) -> tuple[bool, str]:
    c = condition(sks, "Ready")
    if c is not None and c.get("status") == "True":
        return True, ""
    return False, str((c or {}).get("message") or "")


# ---- the pieces ---------------------------------------------------------------------------------


def desired_sks_for(pa: Mapping[str, Any], mode: SksMode, activators: int) -> dict[str, Any]:
    body = desired_sks(pa)  # the HPA-class SKS: name, objectRef, protocolType, owner, labels
    body["spec"]["mode"] = mode
    body["spec"]["numActivators"] = activators
    return body


def initial_ebc(settings: KpaSettings) -> int:
    """A new decider's excess burst capacity, before its first valid tick (MultiScaler)."""
    tbc = settings.target_burst_capacity
    if tbc in (-1.0, 0.0):
        return int(tbc)
    return int(settings.initial_scale * settings.total_value - tbc)


def activation_threshold(settings: KpaSettings, initialized: bool, reachable: bool) -> int:
    """``activeThreshold``: max(min, initial) until the target was initialized, then max(min, 1)."""
    lower = settings.min_scale if reachable else 0
    if not initialized:
        return max(lower, settings.initial_scale)
    return max(lower, 1)


def zero_allowed(
    settings: KpaSettings, state: ScalerState, path: ActivatorPath, reachable: bool, now: float
) -> bool:
    """knscale's gate on every write to 0: the Inactive branch of ``handleScaleToZero`` holds."""
    if state.activity != "inactive":
        return state.activity == "activating" and now - state.since > settings.progress_deadline + 30.0
    if not (path.unlimited_burst or path.probe_ok):
        return False
    grace = settings.scale_to_zero_grace_period
    retention = settings.scale_to_zero_pod_retention_period if reachable else 0.0
    inactive_for = now - state.since
    if inactive_for >= max(grace, retention):
        return True
    if retention > 0 and inactive_for < retention:
        return False
    return path.proxy_since is not None and now - path.proxy_since >= grace


def _active_condition(
    conds: PaConditions, settings: KpaSettings, want: int, ready: int, service_name: str, reachable: bool
) -> None:
    """``computeActiveCondition`` on the conditions (their current values are the previous state)."""
    initialized = conds.is_true(SCALE_TARGET_INITIALIZED)
    min_ready = activation_threshold(settings, initialized, reachable)
    if ready >= min_ready and service_name:
        conds.mark_scale_target_initialized()
    inactive = conds.status(ACTIVE) == "False"
    activating = conds.status(ACTIVE) not in ("True", "False")
    if want == 0 or min_ready == 0:
        reason = TIMED_OUT if activating and min_ready > 0 else NO_TRAFFIC
        conds.mark_false(ACTIVE, *reason)
    elif ready < min_ready:
        if want > 0 or not inactive:
            conds.mark_unknown(ACTIVE, *QUEUED)
        else:
            conds.mark_false(ACTIVE, *NO_TRAFFIC)
    elif want > 0 or not inactive:
        conds.mark_true(ACTIVE)


def _status(
    pa: Mapping[str, Any],
    settings: KpaSettings,
    sks: Mapping[str, Any] | None,
    want: int,
    ready: int,
    reachable: bool,
    now: float,
) -> dict[str, Any]:
    old: Mapping[str, Any] = pa.get("status") or {}
    status: dict[str, Any] = dict(old)
    conds = PaConditions(old.get("conditions"), rfc3339(now))
    conds.initialize()
    sks_status: Mapping[str, Any] = (sks or {}).get("status") or {}
    private = str(sks_status.get("privateServiceName") or "")
    if sks is None or not private:
        conds.mark_sks_not_ready(NO_PRIVATE_SERVICE)
        ready = 0  # Knative computes this status from podCounts{want: -1} alone
    else:
        status["metricsServiceName"] = private
        status["serviceName"] = str(sks_status.get("serviceName") or "")
        ok, message = _sks_ready(sks)
        if ok:
            conds.mark_sks_ready()
        else:
            conds.mark_sks_not_ready(message)
    status.setdefault("serviceName", "")
    status.setdefault("metricsServiceName", "")
    status["actualScale"] = ready
    previous = old.get("desiredScale")
    if not (want == SCALE_UNKNOWN and isinstance(previous, int) and previous >= 0):
        status["desiredScale"] = want
    _active_condition(conds, settings, want, ready, str(status["serviceName"]), reachable)
    status["conditions"] = conds.to_list()
    status["observedGeneration"] = (pa.get("metadata") or {}).get("generation")
    return status


# ---- the reconcile ----------------------------------------------------------------------------


def reconcile_pa(pa: Mapping[str, Any], facts: PaFacts, now: float) -> PaPlan:
    """Knative's ``ReconcileKind`` for one PA of knscale's class (module docstring)."""
    settings = facts.settings
    sks = facts.sks
    if sks is None or not ((sks.get("status") or {}).get("privateServiceName")):
        status = _status(pa, settings, sks, SCALE_UNKNOWN, 0, facts.reachable, now)
        return PaPlan(
            desired_sks_for(pa, "Proxy", MIN_ACTIVATORS),
            "Proxy",
            MIN_ACTIVATORS,
            None,
            SCALE_UNKNOWN,
            status,
            "waiting for the ServerlessService's private service",
        )
    state = scaler_state(pa.get("status"), now)
    result = facts.result
    current = 1 if facts.current_replicas is None else facts.current_replicas
    if result is None:
        want, replicas, reason, requeue = SCALE_UNKNOWN, None, "no decision yet", None
        ebc = initial_ebc(settings)
    else:
        out = result.outcome
        want, replicas, reason, requeue = out.want, out.replicas, out.reason, out.requeue_after
        ebc = result.decision.excess_burst_capacity if result.decision.valid else initial_ebc(settings)
        if (
            replicas == 0
            and current != 0
            and not zero_allowed(settings, state, facts.activator, facts.reachable, now)
        ):
            replicas = None
            reason += "; the last pod stays until the activator has been in the path for the grace period"
            requeue = ZERO_GATE_RECHECK if requeue is None else min(requeue, ZERO_GATE_RECHECK)
        if replicas is not None and replicas == current:
            replicas = None
    mode = sks_mode(want, state.activity, ebc)
    activators = activator_count(settings, facts.ready_pods)
    status = _status(pa, settings, sks, want, facts.ready_pods, facts.reachable, now)
    return PaPlan(
        desired_sks_for(pa, mode, activators), mode, activators, replicas, want, status, reason, requeue
    )
