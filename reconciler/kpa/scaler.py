"""From the decider's desired pods to the replicas to write (reference knative-kpa.md §5.2–§5.4). Pure.

This is Knative's KPA reconciler step (``scaler.scale``, ``handleScaleToZero``,
``computeActiveCondition``) for workloads knscale scales itself — plain Deployments and
StatefulSets — where there is no activator and no ServerlessService. It is kept apart from
``reconciler/kpa/decider.py``, which stays a faithful port; the adaptations are here, each
marked "knscale:":

* **No activator ⇒ floor 1 unless an ingress source exists.** Nothing would buffer a request
  for a workload at zero, and nothing would see that request, unless a Prometheus source counts
  requests at the ingress. Without one (``ScaleContext.zero_capable`` false) the lower bound is
  at least 1.
* **Scale-to-zero timing.** Knative removes the last pod once the PA has been Inactive for
  ``max(grace, retention)``, or sooner once the activator has been in the path for the grace
  period. With no activator, the ingress source stands in for it and "in the path" starts when
  the workload goes Inactive, so the last pod goes after ``max(grace, retention)`` of
  inactivity — never sooner than Knative's slow path, giving the ingress metrics (scrape +
  rate window) time to notice a request.
* **Missing metrics hold.** An invalid decision (no data, cannot count pods) never writes,
  also while Activating (Knative would apply min-scale or time the activation out to 0).

State is a small frozen ``ScalerState`` — the PodAutoscaler's Active condition and the
"scale target initialized" latch — returned anew by every call. Time: float Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.kpa.decider import Decision
from translator.autoscaling.kpa import KpaSettings

Activity = Literal["activating", "active", "inactive"]
"""The PodAutoscaler ``Active`` condition: Unknown (activating), True, False."""

SCALE_UNKNOWN = -1
DEFAULT_ACTIVATION_TIMEOUT = 600.0 + 30.0  # config-deployment progress-deadline + activationTimeoutBuffer


@dataclass(frozen=True, slots=True)
class ScalerState:
    activity: Activity = "activating"
    since: float = 0.0  # when ``activity`` last changed (the condition's lastTransitionTime)
    initialized: bool = False  # ScaleTargetInitialized: ready once reached max(min, initial)
    desired_scale: int | None = None  # status.desiredScale: last non-negative want


@dataclass(frozen=True, slots=True)
class ActivatorPath:
    """For a Knative revision (knscale's autoscaler class): where the activator stands.

    With it, scale to zero follows Knative's ``handleScaleToZero`` exactly: the last pod goes only
    once the activator is in the data path (the SKS in Proxy mode, confirmed by the probe) for
    the grace period, or the PA has been Inactive for ``max(grace, retention)``.
    """

    proxy_since: float | None  # when the SKS last entered Proxy mode (None: it is in Serve)
    probe_ok: bool  # the activator answered the probe through the revision's service
    unlimited_burst: bool = False  # target-burst-capacity -1: the activator is always in the path


@dataclass(frozen=True, slots=True)
class ScaleContext:
    """Facts about the target at this tick (read by the controller)."""

    current_replicas: int | None  # spec.replicas of the scale subresource; None reads as 1
    ready_pods: int
    reachable: bool = True
    zero_capable: bool = False  # knscale: a Prometheus source sees requests at the ingress
    activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT
    activator: ActivatorPath | None = None  # None: a plain workload (no activator, no SKS)


@dataclass(frozen=True, slots=True)
class ScaleOutcome:
    """``want`` is the scale knscale wants (-1 = unknown); ``replicas`` is set only when a write is due."""

    want: int
    apply: bool
    replicas: int | None
    reason: str
    requeue_after: float | None = None
    activity: Activity = "activating"


def initial_scaler_state(current_replicas: int | None, now: float) -> ScalerState:
    """A newly tracked target: a PodAutoscaler starts Activating; one already at zero is Inactive."""
    if current_replicas == 0:
        return ScalerState(activity="inactive", since=now)
    return ScalerState(activity="activating", since=now)


def scale_bounds(settings: KpaSettings, state: ScalerState, ctx: ScaleContext) -> tuple[int, int]:
    """(min, max) for this tick; max 0 = unbounded."""
    lower = settings.min_scale if ctx.reachable else 0
    if not ctx.zero_capable:
        lower = max(lower, 1)  # knscale: no activator and no ingress source ⇒ never to zero
    if settings.initial_scale > 1 and not state.initialized and ctx.reachable:
        lower = max(settings.initial_scale, lower)
    return lower, settings.max_scale


def apply_bounds(lower: int, upper: int, x: int) -> int:
    if x < lower:
        return lower
    if upper != 0 and x > upper:
        return upper
    return x


def _scale_to_zero(
    settings: KpaSettings, state: ScalerState, ctx: ScaleContext, desired: int, now: float
) -> tuple[int, bool, str, float | None]:
    """Knative's ``handleScaleToZero``: (want, apply, reason, requeue_after)."""
    if desired != 0:
        return desired, True, "", None
    if not settings.enable_scale_to_zero:
        return 1, True, "scale to zero disabled (enable-scale-to-zero: false): holding 1", None
    elapsed = now - state.since
    if state.activity == "activating":
        if elapsed > ctx.activation_timeout:
            return 0, True, f"activation timed out after {ctx.activation_timeout:g}s: scaling to 0", None
        return SCALE_UNKNOWN, False, "activating: waiting before scaling to 0", ctx.activation_timeout
    if state.activity == "active":
        window = settings.stable_window
        if elapsed >= window:
            # Knative re-checks in 3 s when the SKS is already proxying (the activator took over).
            proxying = ctx.activator is not None and ctx.activator.proxy_since is not None
            return (
                0,
                False,
                f"idle and active for {elapsed:g}s ≥ stable window: going inactive",
                (PROXY_RECHECK if proxying else None),
            )
        left = window - elapsed
        return 1, True, f"holding 1 pod: active for {elapsed:g}s < stable window {window:g}s", left
    if ctx.activator is not None:
        return _scale_to_zero_through_activator(settings, ctx.activator, elapsed, ctx.reachable, now)
    # inactive, knscale's no-activator rule
    retention = settings.scale_to_zero_pod_retention_period if ctx.reachable else 0.0
    wait = max(settings.scale_to_zero_grace_period, retention)
    if elapsed >= wait:
        return 0, True, f"inactive for {elapsed:g}s ≥ max(grace, retention) {wait:g}s: scaling to 0", None
    return 0, False, f"inactive for {elapsed:g}s; last pod goes after {wait:g}s", wait - elapsed


PROXY_RECHECK = 3.0  # Knative's requeue while an idle, active PA waits for the SKS to proxy
PROBE_PENDING = 1.0  # Knative re-enqueues 1 s after an activator probe


def _scale_to_zero_through_activator(
    settings: KpaSettings, path: ActivatorPath, inactive_for: float, reachable: bool, now: float
) -> tuple[int, bool, str, float | None]:
    """The Inactive branch of Knative's ``handleScaleToZero`` (reference §5.3), with the activator."""
    grace = settings.scale_to_zero_grace_period
    if not (path.unlimited_burst or path.probe_ok):
        return 0, False, "inactive: waiting for the activator to answer the probe", PROBE_PENDING
    last_pod = settings.scale_to_zero_pod_retention_period if reachable else 0.0
    if inactive_for >= max(grace, last_pod):
        return 0, True, f"inactive for {inactive_for:g}s ≥ max(grace, retention): scaling to 0", None
    if last_pod > 0 and inactive_for < last_pod:
        left = last_pod - inactive_for
        return 0, False, f"inactive for {inactive_for:g}s; the last pod is retained {left:g}s more", left
    proxy_for = 0.0 if path.proxy_since is None else now - path.proxy_since
    wait = grace - proxy_for
    if wait <= 0:
        return 0, True, f"the activator has been in the path for {proxy_for:g}s ≥ grace: scaling to 0", None
    return 0, False, f"the activator is in the path for {proxy_for:g}s; scaling to 0 in {wait:g}s", wait


def _next_activity(
    settings: KpaSettings, state: ScalerState, lower: int, want: int, ready: int, now: float
) -> ScalerState:
    """Knative's ``computeActiveCondition`` plus the initialized latch and status.desiredScale."""
    min_ready = max(lower, settings.initial_scale) if not state.initialized else max(lower, 1)
    initialized = state.initialized or ready >= min_ready
    activity = state.activity
    if want == 0 or min_ready == 0:
        activity = "inactive"
    elif ready < min_ready:
        if want > 0 or activity != "inactive":
            activity = "activating"
    elif want > 0 or activity != "inactive":
        activity = "active"
    desired_scale = state.desired_scale if want == SCALE_UNKNOWN else want
    if (
        activity == state.activity
        and initialized == state.initialized
        and desired_scale == state.desired_scale
    ):
        return state  # unchanged: share the immutable state
    since = state.since if activity == state.activity else now
    return ScalerState(activity=activity, since=since, initialized=initialized, desired_scale=desired_scale)


def reconcile_scale(
    settings: KpaSettings, state: ScalerState, decision: Decision, ctx: ScaleContext, now: float
) -> tuple[ScaleOutcome, ScalerState]:
    """Turn one decision into at most one replicas write (Knative ``scaler.scale``)."""
    current = 1 if ctx.current_replicas is None else ctx.current_replicas
    if not decision.valid:
        # knscale: never scale on missing data, in any activity state; keep the status as it was.
        outcome = ScaleOutcome(
            want=SCALE_UNKNOWN,
            apply=False,
            replicas=None,
            reason=f"holding {current} replicas: {decision.reason}",
            activity=state.activity,
        )
        return outcome, state
    lower, upper = scale_bounds(settings, state, ctx)
    desired = apply_bounds(lower, upper, decision.desired)
    if desired == 0:
        want, apply, why, requeue = _scale_to_zero(settings, state, ctx, desired, now)
    else:
        want, apply, why, requeue = desired, True, "", None
    new_state = _next_activity(settings, state, lower, want, ctx.ready_pods, now)
    write = apply and want != current and want >= 0
    if desired == decision.desired and not why and not write:
        reason = decision.reason  # nothing to add (the common tick): no string building
    else:
        notes = []
        if desired != decision.desired:
            notes.append(f"bounded {decision.desired}→{desired} by min {lower}, max {upper or '∞'}")
        if why:
            notes.append(why)
        if write:
            notes.append(f"scaling {current}→{want}")
        reason = f"{decision.reason}; " + "; ".join(notes)
    outcome = ScaleOutcome(want, write, want if write else None, reason, requeue, new_state.activity)
    return outcome, new_state
