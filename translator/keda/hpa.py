"""HPA-class revision → a plain `autoscaling/v2` HorizontalPodAutoscaler (clusters without KEDA).

The same revision semantics as the ScaledObject (`translator/keda/render.py`) — name, target, owner,
bounds, cpu default target 70, `metric-type`, `window` and the scale-up/down rules — rendered
the way Knative's own autoscaler-hpa does it (`pkg/reconciler/autoscaling/hpa/resources/hpa.go`),
with two differences: `minReplicas` is at least 1 (an HPA cannot scale to zero without an alpha
feature gate) and a fractional memory target is kept (rounded up to whole bytes, not truncated
to whole MiB). Only cpu and memory can be rendered: a Prometheus metric needs KEDA (KNS222).
"""

from __future__ import annotations

import math
from typing import Any

from translator.annotations import table as A
from translator.config.autoscaler import HPA_CLASS, AutoscalerConfig
from translator.core.rule_ids import RuleId
from translator.core.values import INT32_MAX, binary_si, cpu_quantity
from translator.keda.parts import behavior, metric_type_for, scale_bounds
from translator.keda.types import DEFAULT_CPU_TARGET, MIB, RESOURCE_TRIGGERS, HpaRevision, Issue, Rendered

API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"


def _target(metric: str, metric_type: str, target: float) -> dict[str, Any]:
    if metric_type == "Utilization":
        return {"type": "Utilization", "averageUtilization": math.ceil(target)}
    value = cpu_quantity(target) if metric == "cpu" else binary_si(math.ceil(target * MIB))
    return {"type": "AverageValue", "averageValue": value}


def render_hpa(rev: HpaRevision, autoscaler: AutoscalerConfig) -> Rendered:
    ann = rev.annotations
    metric = A.metric_of(ann, HPA_CLASS)
    if metric not in RESOURCE_TRIGGERS:
        found = A.METRIC.lookup(ann)
        return Rendered(
            None,
            [
                Issue(
                    RuleId.KNS222,
                    found[0] if found else A.METRIC.name,
                    found[1] if found else None,
                    f"metric {metric!r} is a Prometheus metric; a plain HPA can only scale on cpu or memory",
                    "render a KEDA ScaledObject instead (drop --no-keda), or scale on cpu or memory",
                )
            ],
        )
    issues: list[Issue] = []
    metric_type, problems = metric_type_for(metric, ann)
    issues += problems
    hpa_behavior, problems = behavior(ann)
    issues += problems
    if metric_type is None or issues:
        return Rendered(None, issues)
    target = A.read_float(ann, A.TARGET)
    if target is None and metric == "cpu":
        target = DEFAULT_CPU_TARGET
    if target is None:
        return Rendered(
            None,
            [
                Issue(
                    RuleId.KNS210,
                    A.METRIC.name if A.METRIC.name in ann else None,
                    ann.get(A.METRIC.name),
                    "memory has no default target: an HPA without one would silently scale on 80% cpu",
                    f"add {A.TARGET.name} (MiB per pod)",
                )
            ],
        )

    lo, hi = scale_bounds(rev, autoscaler)
    meta = rev.object_meta()
    spec: dict[str, Any] = {
        "scaleTargetRef": rev.target.to_dict(),
        # The API server refuses min > max; Knative pins such a revision at max (see KNS120).
        "minReplicas": min(max(1, lo), hi if hi > 0 else INT32_MAX),
        "maxReplicas": hi if hi > 0 else INT32_MAX,
    }
    spec["metrics"] = [
        {"type": "Resource", "resource": {"name": metric, "target": _target(metric, metric_type, target)}}
    ]
    if hpa_behavior is not None:
        spec["behavior"] = hpa_behavior
    return Rendered({"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}, issues)
