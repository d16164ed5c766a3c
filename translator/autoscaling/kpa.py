"""Effective KPA settings: every knob of a revision resolved against config-autoscaler.

`KpaSettings` is the decider's only configuration input (reconciler/kpa/decider.py).
`resolve_kpa_settings` follows Knative's own resolution (reference knative-kpa.md §1, §3):
annotation beats config-autoscaler beats the hard default; each annotation is read through its
key priority (`min-scale` before `minScale`) and, as on Knative's PodAutoscaler, a value that
does not parse counts as absent — `knscale lint` and `/validate` report it, the resolution
never guesses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from translator.annotations import table as A
from translator.config.autoscaler import DEFAULT_PROGRESS_DEADLINE_S, TARGET_MIN, AutoscalerConfig
from translator.core.values import SECOND

Metric = Literal["concurrency", "rps"]
Aggregation = Literal["linear", "weighted-exponential"]

BUCKET_SIZE_S = 1.0  # Knative's metric bucket: the panic window is never shorter
RPS_TARGET_UTILIZATION = 0.7  # hard-coded in Knative for rps unless the annotation is set


@dataclass(frozen=True, slots=True)
class KpaSettings:
    """Frozen, fully resolved. Durations are seconds (float)."""

    metric: Metric = "concurrency"
    total_value: float = 100.0  # per-pod target before utilization (TotalValue)
    target_value: float = 70.0  # total_value × utilization, floored at 0.01 (TargetValue)
    target_utilization: float = 0.7
    target_burst_capacity: float = 211.0  # -1 = unlimited (activator always in path)
    activator_capacity: float = 100.0
    panic_threshold: float = 2.0  # panic-threshold-percentage / 100
    stable_window: float = 60.0
    panic_window: float = 6.0  # round(stable × pct / 100), at least 1 s
    panic_window_percentage: float = 10.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_down_delay: float = 0.0
    min_scale: int = 0
    max_scale: int = 0  # 0 = unbounded
    initial_scale: int = 1
    activation_scale: int = 0  # 0/1 = off; ≥ 2 lifts any non-zero desire
    enable_scale_to_zero: bool = True
    scale_to_zero_grace_period: float = 30.0
    scale_to_zero_pod_retention_period: float = 0.0
    aggregation: Aggregation = "linear"
    # Added by the translator work: serving.knative.dev/progress-deadline, else config-deployment's
    # 600 s. The KPA gives up activating after progress_deadline + 30 s (activation timeout).
    progress_deadline: float = DEFAULT_PROGRESS_DEADLINE_S
    # knscale.dev/scaling-policy: which policy knscale's own loop runs (not a decider knob; the
    # reconciler picks the Policy object by it, reconciler/kpa/registry.py).
    scaling_policy: str = A.DEFAULT_SCALING_POLICY

    def to_spec(self) -> dict[str, Any]:
        """camelCase fields, as `knscale translate` prints them (kind KpaSettings)."""
        return {_camel(k): v for k, v in asdict(self).items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def panic_window_seconds(stable_window: float, percentage: float) -> float:
    """Knative's MakeMetric: Duration(stable × pct / 100) (truncated to ns), rounded to 1 s, ≥ 1 s."""
    nanos = math.trunc(round(stable_window * SECOND) * percentage / 100.0)
    whole, rem = divmod(nanos, SECOND)
    rounded = whole + (1 if rem * 2 >= SECOND else 0)  # Go's Round: halves away from zero
    return max(float(rounded), BUCKET_SIZE_S)


def resolve_kpa_settings(
    annotations: Mapping[str, Any],
    config: AutoscalerConfig,
    *,
    container_concurrency: int = 0,
) -> KpaSettings:
    """Every knob of one revision's decider (Knative's MakeDecider + ScaleBounds + MakeMetric).

    `annotations` are the revision's (= its PodAutoscaler's); `container_concurrency` is the
    revision's `spec.containerConcurrency` (0 = unlimited). Reachability is not resolved here:
    the reconciler drops min-scale and retention for unreachable revisions, as Knative does.
    """
    metric_text = annotations.get(A.METRIC.name)
    metric: Metric = "rps" if metric_text == "rps" else "concurrency"

    if metric == "rps":
        total = config.requests_per_second_target_default
        utilization = RPS_TARGET_UTILIZATION
    else:
        total = float(container_concurrency) or config.container_concurrency_target_default
        utilization = config.target_fraction
    target = A.read_float(annotations, A.TARGET)
    if target is not None:
        total = target
        if metric == "concurrency" and container_concurrency != 0:
            total = min(target, float(container_concurrency))
    tu_pct = A.read_float(annotations, A.TARGET_UTILIZATION)
    if tu_pct is not None:
        utilization = tu_pct / 100.0

    stable = _or(A.read_seconds(annotations, A.WINDOW), config.stable_window)
    panic_pct = _or(A.read_float(annotations, A.PANIC_WINDOW_PERCENTAGE), config.panic_window_percentage)
    panic_threshold_pct = _or(
        A.read_float(annotations, A.PANIC_THRESHOLD_PERCENTAGE), config.panic_threshold_percentage
    )

    initial = config.initial_scale
    ann_initial = A.read_int32(annotations, A.INITIAL_SCALE)
    if ann_initial is not None and (ann_initial != 0 or config.allow_zero_initial_scale):
        initial = ann_initial

    aggregation_text = A.read_string(annotations, A.AGGREGATION)
    aggregation: Aggregation = (
        "weighted-exponential"
        if aggregation_text in ("weighted-exponential", "weightedExponential")
        else "linear"
    )

    return KpaSettings(
        metric=metric,
        total_value=total,
        target_value=max(TARGET_MIN, total * utilization),
        target_utilization=utilization,
        target_burst_capacity=_or(
            A.read_float(annotations, A.TARGET_BURST_CAPACITY), config.target_burst_capacity
        ),
        activator_capacity=config.activator_capacity,
        panic_threshold=panic_threshold_pct / 100.0,
        stable_window=stable,
        panic_window=panic_window_seconds(stable, panic_pct),
        panic_window_percentage=panic_pct,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        scale_down_delay=_or(A.read_seconds(annotations, A.SCALE_DOWN_DELAY), config.scale_down_delay),
        min_scale=_or(A.read_int32(annotations, A.MIN_SCALE), config.min_scale),
        max_scale=_or(A.read_int32(annotations, A.MAX_SCALE), config.max_scale),
        initial_scale=initial,
        activation_scale=_or(A.read_int32(annotations, A.ACTIVATION_SCALE), 0),
        enable_scale_to_zero=config.enable_scale_to_zero,
        scale_to_zero_grace_period=config.scale_to_zero_grace_period,
        scale_to_zero_pod_retention_period=_or(
            A.read_seconds(annotations, A.RETENTION), config.scale_to_zero_pod_retention_period
        ),
        aggregation=aggregation,
        progress_deadline=_or(A.read_seconds(annotations, A.PROGRESS), DEFAULT_PROGRESS_DEADLINE_S),
        scaling_policy=_policy(A.read_string(annotations, A.SCALING_POLICY)),
    )


def _policy(text: str | None) -> str:
    # An unknown name is KNS128 (lint, /validate; the reconciler does not scale the workload).
    return text if text in A.SCALING_POLICIES else A.DEFAULT_SCALING_POLICY


T = TypeVar("T")


def _or(value: T | None, default: T) -> T:
    return default if value is None else value
