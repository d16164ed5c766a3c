"""The activator's demand in a revision's metrics (pure): what makes a revision of knscale's class
leave zero, and where the activator's metrics are.

At zero scale there are no pods to scrape: the requests wait in the activator, which exports how
many per revision (``reconciler.metrics.activator``). Those waiting requests are added to what
queue-proxy reports — never counted twice, since a queued request has not reached a pod yet — and
at zero they are the whole demand. With target-burst-capacity -1 the activator is always in the
path and nothing scrapes the pods (as in Knative): the activator's averaged concurrency is the
revision's concurrency. The activator exports no request rate, so an ``rps`` revision with TBC -1
gets no activator data (its windows stay empty and the scale holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.activator import ACTIVATOR_METRICS_PORT, ActivatorDemand
from reconciler.metrics.base import Collection, RevisionKey
from reconciler.scaling.pods import pod_is_ready

KNATIVE_NAMESPACE = "knative-serving"
ACTIVATOR_LABELS = {"app": "activator"}  # Knative's activator Deployment's pod labels


def activator_addresses(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """``ip:9090`` of every ready activator pod in knative-serving, sorted."""
    out = []
    for pod in pods:
        md = pod.get("metadata") or {}
        labels = md.get("labels") or {}
        if md.get("namespace") != KNATIVE_NAMESPACE or any(
            labels.get(k) != v for k, v in ACTIVATOR_LABELS.items()
        ):
            continue
        ip = (pod.get("status") or {}).get("podIP")
        if pod_is_ready(pod) and isinstance(ip, str) and ip:
            out.append(f"[{ip}]:{ACTIVATOR_METRICS_PORT}" if ":" in ip else f"{ip}:{ACTIVATOR_METRICS_PORT}")
    return sorted(out)


def with_activator(
    key: RevisionKey,
    collected: Collection | None,
    demand: ActivatorDemand | None,
    *,
    unlimited: bool,
    metric: str,
) -> Collection | None:
    """The collection the windows record: queue-proxy's (or none) with the activator's demand in.
    ``demand`` None: no activator answered this round, so queue-proxy's collection as it is."""
    if demand is None:
        return collected
    if unlimited:
        if metric != "concurrency":
            return collected
        return Collection(key, "ok", StatTotals(concurrency=demand.concurrency), source="activator")
    if collected is None or (demand.queued == 0 and collected.status != "empty"):
        return collected
    if collected.status == "ok" and collected.stat is not None:
        stat = replace(collected.stat, concurrency=collected.stat.concurrency + demand.queued)
        return replace(collected, stat=stat, source=f"{collected.source}+activator")
    if collected.status == "empty":  # no ready pod: the waiting requests are all there is
        stat = StatTotals(concurrency=demand.queued, rps=demand.queued)
        return Collection(key, "ok", stat, source="activator")
    return collected  # queue-proxy failed: hold, as on any missing collection


def waiting_at_zero(ready: int, demand: ActivatorDemand | None, *, unlimited: bool) -> bool:
    """Requests wait for a revision with no ready pod: decide now, not at the next tick."""
    if demand is None or ready > 0:
        return False
    return (demand.concurrency if unlimited else demand.queued) > 0
