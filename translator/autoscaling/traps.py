"""Settings every component accepts that quietly do something else than they say (KNS124–126):
warnings, since Knative, KEDA and knscale's webhook all admit them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations import table as A
from translator.autoscaling.collector import Collector
from translator.config.autoscaler import HPA_CLASS, AutoscalerConfig
from translator.core.objects import dig
from translator.core.rule_ids import RuleId

QUEUE_PROXY = "queue-proxy"
INT32_MAX = 2**31 - 1


def silent_traps(
    out: Collector,
    obj: Mapping[str, Any],
    role: str,
    ann: Mapping[str, str],
    family: str | None,
    asc: AutoscalerConfig,
) -> None:
    """Settings every component accepts that quietly do something else than they say (KNS124–126)."""
    plain = role == "workload"
    prometheus = isinstance(ann.get(A.KNSCALE_PROMETHEUS_QUERY), str) and bool(
        ann[A.KNSCALE_PROMETHEUS_QUERY].strip()
    )
    if plain and family == A.KPA and not prometheus:
        containers = dig(obj, "spec", "template", "spec", "containers")
        names = (
            {c.get("name") for c in containers if isinstance(c, Mapping)}
            if isinstance(containers, list)
            else set()
        )
        if QUEUE_PROXY not in names:
            out.add(
                RuleId.KNS124,
                A.CLASS.name,
                ann.get(A.CLASS.name),
                f"knscale's KPA loop reads a plain {obj.get('kind')}'s load from a {QUEUE_PROXY} container "
                f"or from {A.KNSCALE_PROMETHEUS_QUERY}; this one has neither, so it is not scaled unless the "
                "reconciler runs with a default Prometheus query",
                f"set {A.KNSCALE_PROMETHEUS_QUERY} to a query of its requests (e.g. at the ingress)",
            )
    found_min = A.MIN_SCALE.lookup(ann)
    if found_min is not None and A.read_int32(ann, A.MIN_SCALE) == 0:
        why = None
        if family == A.KPA and not asc.enable_scale_to_zero:
            why = "config-autoscaler has enable-scale-to-zero: false, so the KPA keeps 1 replica"
        elif family == A.KPA and plain and not prometheus:
            why = (
                f"with no activator in front of a plain {obj.get('kind')}, knscale keeps 1 replica unless "
                f"{A.KNSCALE_PROMETHEUS_QUERY} counts its requests"
            )
        elif (
            family == A.HPA
            and A.metric_of(ann, HPA_CLASS) in ("cpu", "memory")
            and A.EXTRA_TRIGGERS.lookup(ann) is None
            and A.OVERRIDE.lookup(ann) is None
        ):
            why = "KEDA cannot scale on cpu or memory alone to zero: the ScaledObject gets minReplicaCount 1"
        if why is not None:
            out.add(
                RuleId.KNS125,
                found_min[0],
                found_min[1],
                f"{found_min[0]}: 0 never takes effect: {why}",
                "set it to 1 so the manifest says what happens, or add a source that sees idle traffic",
            )
    if family == A.HPA and A.MAX_SCALE.lookup(ann) is None and asc.max_scale == 0:
        out.add(
            RuleId.KNS126,
            None,
            None,
            f"no max-scale (and config-autoscaler max-scale is 0): the ScaledObject or HPA gets "
            f"maxReplicaCount {INT32_MAX}, so a metric spike scales without bound",
            f'set {A.MAX_SCALE.name}, e.g. "10"',
        )
