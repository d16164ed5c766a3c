"""The KPA decision, ported from Knative's ``autoscaler.Scale`` (reference knative-kpa.md §2).

``decide(settings, state, observation, now) -> (Decision, DeciderState)`` is pure: no clock,
no I/O, and the old state is never modified. It must stay faithful to Knative — every
formula, comparison and rounding below is the reference's §2.2 in order — because knscale
claims KPA behaviour and the conformance tests replay Knative's own vectors (§7).

What this module does *not* do (by design, as in Knative): min/max/initial scale, the
scale-to-zero state machine and ``enable-scale-to-zero``. Those belong to the reconciler's
post-processing step (``reconciler/kpa/scaler.py``).

Time: ``now`` is float Unix seconds (see ``reconciler/kpa/aggregation.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from reconciler.kpa.aggregation import DELAY_WINDOW_GRANULARITY, MaxTimeWindow
from translator.autoscaling.kpa import KpaSettings

Mode = Literal["stable", "panic"]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_isfinite = math.isfinite


@dataclass(frozen=True, slots=True)
class Observation:
    """Revision-wide inputs of one tick.

    ``stable``/``panic`` are *totals* over all pods (sum, not per-pod average) averaged over the
    stable and panic windows; ``None`` means no usable metrics (Knative's ``ErrNoData``).
    ``ready_pods`` is the ready-pod count; ``None`` means it could not be counted (a lister
    error other than NotFound — pass 0 for NotFound, as Knative does). ``reachable`` is false
    for a revision that receives no traffic (routingState reserve).
    """

    stable: float | None
    panic: float | None
    ready_pods: int | None
    reachable: bool = True
    missing_reason: str = ""  # why stable/panic are None, for the decision's reason


@dataclass(frozen=True, slots=True)
class Decision:
    """What one tick decided. ``valid=False`` means "keep everything as it is" (Knative drops it)."""

    desired: int
    mode: Mode
    reason: str
    excess_burst_capacity: int
    valid: bool = True
    observed_stable: float = 0.0
    observed_panic: float = 0.0
    ready_pods: int = 0


@dataclass(frozen=True, slots=True)
class DeciderState:
    """Per-revision memory of the decider.

    ``panic_time`` is None when not panicking (Go: the zero time), else the last tick that was
    over the panic threshold. ``delay_window`` exists only when the decider was created with a
    scale-down delay: like Knative, a later settings change never creates, drops or resizes it.
    """

    panic_time: float | None = None
    max_panic_pods: int = 0
    delay_window: MaxTimeWindow | None = None

    @property
    def panicking(self) -> bool:
        return self.panic_time is not None


def initial_state(settings: KpaSettings, ready_pods: int | None, now: float) -> DeciderState:
    """A new decider (reference §2.1).

    With more than one ready pod it starts *in panic*: after a restart all metric history is
    gone, and panic mode keeps at least the current pod count until a stable window of fresh
    data has accumulated. ``ready_pods=None`` (cannot count; normal for a brand-new revision)
    counts as 0.
    """
    ready = ready_pods if ready_pods is not None else 0
    window = (
        MaxTimeWindow.for_duration(settings.scale_down_delay, DELAY_WINDOW_GRANULARITY)
        if settings.scale_down_delay > 0
        else None
    )
    return DeciderState(panic_time=now if ready > 1 else None, max_panic_pods=ready, delay_window=window)


def _ceil(x: float) -> float:
    # Go's math.Ceil keeps ±Inf; Python's raises. Integral results are exact either way.
    try:
        return math.ceil(x)
    except (OverflowError, ValueError):
        return x


def _floor(x: float) -> float:
    try:
        return math.floor(x)
    except (OverflowError, ValueError):
        return x


def _int32(x: float) -> int:
    # Go's float→int32 conversion is undefined out of range; clamping makes it defined and is
    # identical for every value Knative can produce in range.
    if x != x:  # NaN cannot reach here (observations are checked), but never return garbage
        return 0
    if _INT32_MIN <= x <= _INT32_MAX:
        return int(x)
    return _INT32_MIN if x < 0 else _INT32_MAX


def _invalid(state: DeciderState, reason: str) -> tuple[Decision, DeciderState]:
    mode: Mode = "panic" if state.panicking else "stable"
    return Decision(desired=0, mode=mode, reason=reason, excess_burst_capacity=0, valid=False), state


def decide(
    settings: KpaSettings, state: DeciderState, observation: Observation, now: float
) -> tuple[Decision, DeciderState]:
    """One decider tick (Knative ``autoscaler.Scale``), step by step as reference §2.2."""
    original_ready = observation.ready_pods
    if original_ready is None:
        return _invalid(state, "invalid: cannot count ready pods; keeping the current scale")
    ready = float(original_ready) if original_ready > 1 else 1.0  # "use 1 if there are zero pods"

    stable, panic = observation.stable, observation.panic
    if stable is None or panic is None:
        why = observation.missing_reason or "no metrics yet"
        return _invalid(state, f"invalid: {why}; keeping the current scale")
    if not (_isfinite(stable) and _isfinite(panic)):
        # Knative would turn NaN into an arbitrary int32; knscale never scales on garbage.
        return _invalid(state, f"invalid: non-finite metrics (stable={stable}, panic={panic})")

    # Rate limits. ceil/floor always allow at least one pod of progress either way.
    # Go keeps these in float64; here they are exact ints (or ±Inf), which compare identically.
    max_scale_up = _ceil(settings.max_scale_up_rate * ready)
    max_scale_down = _floor(ready / settings.max_scale_down_rate) if observation.reachable else 0

    dspc = _ceil(stable / settings.target_value)
    dppc = _ceil(panic / settings.target_value)
    desired_stable = _int32(min(max(dspc, max_scale_down), max_scale_up))
    desired_panic = desired_stable if dppc == dspc else _int32(min(max(dppc, max_scale_down), max_scale_up))

    # Activation scale lifts any non-zero desire (after the rate clamp, so it may exceed it).
    activation = settings.activation_scale
    if activation > 1:
        if dspc > 0 and activation > desired_stable:
            desired_stable = activation
        if dppc > 0 and activation > desired_panic:
            desired_panic = activation

    # Panic uses the unclamped pod count of the panic window.
    over_threshold = dppc / ready >= settings.panic_threshold
    panic_time = state.panic_time
    max_panic_pods = state.max_panic_pods
    transition = ""
    if panic_time is None and over_threshold:
        panic_time = now
        transition = "entered panic"
    elif over_threshold:
        panic_time = now  # still over: the panic lasts a stable window from now
    elif panic_time is not None and panic_time + settings.stable_window < now:
        panic_time = None
        max_panic_pods = 0
        transition = "left panic"

    desired = desired_stable
    if panic_time is not None:
        # Provision for the larger of the two, and never scale down while panicking.
        desired = max(desired, desired_panic)
        max_panic_pods = max(max_panic_pods, desired)
        desired = max_panic_pods

    delay_window = state.delay_window
    delayed_from: int | None = None
    if observation.reachable and delay_window is not None:
        delay_window = delay_window.record(now, desired)
        held = delay_window.current()
        if held != desired:
            delayed_from = desired
        desired = held

    # Excess burst capacity: raw ready count, panic value, TotalValue (not TargetValue).
    tbc = settings.target_burst_capacity
    if tbc == 0:
        ebc = 0
    elif tbc > 0:
        ebc = _int32(_floor(float(original_ready) * settings.total_value - tbc - panic))
    else:
        ebc = -1

    mode: Mode = "panic" if panic_time is not None else "stable"
    reason = _reason(
        settings, mode, stable, panic, desired, dspc, dppc, original_ready, transition, delayed_from
    )
    decision = Decision(desired, mode, reason, ebc, True, stable, panic, original_ready)
    if (
        panic_time == state.panic_time
        and max_panic_pods == state.max_panic_pods
        and delay_window is state.delay_window
    ):
        return decision, state  # unchanged: the (immutable) state can be shared
    return decision, DeciderState(panic_time, max_panic_pods, delay_window)


def _reason(
    settings: KpaSettings,
    mode: Mode,
    stable: float,
    panic: float,
    desired: int,
    dspc: float,
    dppc: float,
    ready: int,
    transition: str,
    delayed_from: int | None,
) -> str:
    # One f-string on the common path: this runs for every revision every tick.
    text = (
        f"{mode}: {settings.metric} stable {stable:g} → {dspc:g} pods, panic {panic:g} → {dppc:g} pods"
        f" (target {settings.target_value:g}/pod); ready {ready}, desired {desired}"
    )
    if transition:
        text = f"{transition}; {text}"
    if delayed_from is not None:
        text += f" (scale-down delayed from {delayed_from})"
    return text
