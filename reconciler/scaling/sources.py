"""Which collector measures which workload, and the record of one tick's decision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.metrics.base import Collector
from reconciler.runtime.objects import annotations_of, name_of, namespace_of
from translator.annotations.table import KNSCALE_PROMETHEUS_QUERY
from translator.autoscaling.kpa import KpaSettings

PROMETHEUS_QUERY_ANNOTATION = KNSCALE_PROMETHEUS_QUERY


# ---- metric sources -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceChoice:
    collector: Collector | None
    query: str | None = None
    zero_capable: bool = False
    problem: str | None = None


@dataclass
class MetricSources:
    """Which collector measures which workload."""

    queue_proxy: Collector | None = None
    prometheus: Mapping[str, Collector] = field(default_factory=dict)  # by metric: concurrency / rps
    prometheus_default_query: str | None = None
    override: Collector | None = None  # --metrics-file: one source for everything (tests, demos)

    def choose(self, workload: Mapping[str, Any], settings: KpaSettings) -> SourceChoice:
        if self.override is not None:
            return SourceChoice(self.override)
        own = annotations_of(workload).get(PROMETHEUS_QUERY_ANNOTATION)
        query = own if isinstance(own, str) and own.strip() else None
        if query is not None or self.prometheus_default_query:
            collector = self.prometheus.get(settings.metric)
            if collector is None:
                return SourceChoice(
                    None,
                    problem=f"{PROMETHEUS_QUERY_ANNOTATION} is set but no --prometheus-url is configured",
                )
            return SourceChoice(collector, query=query, zero_capable=True)
        return SourceChoice(
            self.queue_proxy, problem=None if self.queue_proxy else "no metric source configured"
        )

    def all(self) -> list[Collector]:
        out = [c for c in (self.queue_proxy, self.override) if c is not None]
        out.extend(self.prometheus.values())
        return out


def conflicting_scaled_object(
    scaled_objects: Iterable[Mapping[str, Any]], kind: str, ns: str, name: str
) -> str | None:
    """A ScaledObject (KEDA's HPA) scaling the same workload would fight the KPA loop."""
    for so in scaled_objects:
        if namespace_of(so) != ns:
            continue
        ref = (so.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("name") == name and (ref.get("kind") or "Deployment") == kind:
            return (
                f"ScaledObject {name_of(so)} also scales this {kind}; not scaling it with the KPA loop "
                "(delete the ScaledObject or change the class annotation)"
            )
    return None


@dataclass(frozen=True)
class DecisionRecord:
    """What one tick decided for one workload — printed in dry-run mode, exported as metrics."""

    kind: str
    namespace: str
    name: str
    observed_stable: float | None
    observed_panic: float | None
    metric: str
    ready: int
    current: int | None
    desired: int
    mode: str
    action: str  # scaled | unchanged | held | would-scale | blocked | failed
    reason: str
    policy: str = "-"  # knscale.dev/scaling-policy: kpa | knscale
    why: str = "-"  # reconciler.kpa.registry.REASONS: stable, panic, learning, keepalive, prewarm, released
    cold_start: float | None = None  # S: creation → Ready of recent pods (median), or the policy's
    download: float | None = None  # of which the model download (median of the pods that ran one)

    def line(self) -> str:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:g}"

        return (
            f"{self.kind} {self.namespace}/{self.name}: policy={self.policy} why={self.why} "
            f"cold_start={fmt(self.cold_start)} download={fmt(self.download)} observed {self.metric} "
            f"stable={fmt(self.observed_stable)} panic={fmt(self.observed_panic)} ready={self.ready} "
            f"current={self.current} desired={self.desired} mode={self.mode} action={self.action} "
            f"reason={self.reason}"
        )
