"""Which pods belong to a workload: label selectors and readiness, as Knative counts pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.kpa.coldstart import PodStart
from reconciler.runtime.clock import parse_time
from reconciler.runtime.objects import meta, namespace_of
from translator.injection.common import INIT_CONTAINER_NAME

# ---- label selectors ------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """metav1.LabelSelector semantics. An empty or missing selector matches nothing here: a
    workload always has one, and matching every pod of a namespace would be a silent mistake."""
    if not selector:
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    for k, v in match_labels.items():
        if labels.get(k) != v:
            return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            return False
    return True


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """Running, Ready and not terminating — the pods Knative counts and scrapes."""
    if meta(pod).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class PodIndex:
    """Ready pods by namespace and by label, so matching N workloads is not N × all pods."""

    def __init__(self) -> None:
        self._by_ns: dict[str, list[dict[str, Any]]] = {}
        self._by_label: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def add(self, pod: dict[str, Any]) -> None:
        ns = namespace_of(pod)
        self._by_ns.setdefault(ns, []).append(pod)
        for k, v in (meta(pod).get("labels") or {}).items():
            self._by_label.setdefault((ns, str(k), str(v)), []).append(pod)

    def select(self, namespace: str, selector: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        match_labels = (selector or {}).get("matchLabels") or {}
        if match_labels:
            k, v = min((str(k), str(v)) for k, v in match_labels.items())
            candidates = self._by_label.get((namespace, k, v), [])
        else:
            candidates = self._by_ns.get(namespace, [])
        return [p for p in candidates if selector_matches(selector, meta(p).get("labels") or {})]


# ---- cold-start cost ------------------------------------------------------------------------


def pod_start(pod: Mapping[str, Any]) -> PodStart | None:
    """creation → Ready of a ready pod, and its model download: knscale's init container
    (`knscale-model-init`) from startedAt to finishedAt. None when a timestamp is missing, or when
    a container restarted (its Ready time would then be the last restart's, not the start's)."""
    status = pod.get("status") or {}
    created = parse_time(meta(pod).get("creationTimestamp"))
    ready_at = next(
        (
            parse_time(c.get("lastTransitionTime"))
            for c in status.get("conditions") or []
            if c.get("type") == "Ready" and c.get("status") == "True"
        ),
        None,
    )
    if created is None or ready_at is None:
        return None
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    if any((c.get("restartCount") or 0) > 0 for c in statuses if c.get("name") != INIT_CONTAINER_NAME):
        return None
    download = None
    for c in status.get("initContainerStatuses") or []:
        if c.get("name") == INIT_CONTAINER_NAME:
            done = (c.get("state") or {}).get("terminated") or {}
            began, ended = parse_time(done.get("startedAt")), parse_time(done.get("finishedAt"))
            if began is not None and ended is not None:
                download = max(0.0, ended - began)
    return PodStart(str(meta(pod).get("uid") or meta(pod).get("name")), created, ready_at, download)
