"""A de-duplicating, delayed work queue of reconcile keys (client-go's workqueue, restated)."""

from __future__ import annotations

import heapq
import threading
from typing import Any

from kubeapi.resources import (
    DEPLOYMENTS,
    HPAS,
    PODAUTOSCALERS,
    SCALEDOBJECTS,
    SERVERLESSSERVICES,
    STATEFULSETS,
    WORKLOADS,
    Resource,
)
from reconciler.runtime.objects import controller_of, name_of, namespace_of

WorkKey = tuple[str, ...]


class WorkQueue:
    """Keys to sync, each at most once, each no earlier than its due time (monotonic seconds)."""

    def __init__(self) -> None:
        self._due: dict[WorkKey, float] = {}
        self._heap: list[tuple[float, WorkKey]] = []
        self._lock = threading.Lock()
        self.failures: dict[WorkKey, int] = {}

    def add(self, key: WorkKey, at: float) -> None:
        with self._lock:
            cur = self._due.get(key)
            if cur is not None and cur <= at:
                return
            self._due[key] = at
            heapq.heappush(self._heap, (at, key))

    def pop_due(self, now: float) -> list[WorkKey]:
        out = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                at, key = heapq.heappop(self._heap)
                if self._due.get(key) == at:
                    del self._due[key]
                    out.append(key)
        return out

    def next_due(self) -> float | None:
        with self._lock:
            while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._due)


def work_keys(res: Resource, etype: str, obj: dict[str, Any]) -> list[WorkKey]:
    """The keys an informer event of `res` makes due: the object's own, and its owner's.

    ("pa", ns, name) is a PodAutoscaler; ("wl", kind, ns, name) a Deployment/StatefulSet. A
    ScaledObject, SKS or HPA carries its owner's name, so its events wake the owner's sync.
    """
    ns, name = namespace_of(obj), name_of(obj)
    if res is PODAUTOSCALERS:
        return [("pa", ns, name)] if etype != "DELETED" else []
    if res in (DEPLOYMENTS, STATEFULSETS):
        return [("wl", str(obj.get("kind") or res.kind), ns, name)] if etype != "DELETED" else []
    if res is HPAS:
        return [("pa", ns, name)]
    if res in (SCALEDOBJECTS, SERVERLESSSERVICES):
        keys: list[WorkKey] = [("pa", ns, name)]
        owner = controller_of(obj)
        if owner is not None and owner.get("kind") in WORKLOADS:
            keys.append(("wl", str(owner.get("kind")), ns, str(owner.get("name"))))
        elif res is SCALEDOBJECTS:
            target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            keys.append(("wl", str(target.get("kind") or "Deployment"), ns, name))
        return keys
    return []
