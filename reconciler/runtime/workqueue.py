"""A de-duplicating, delayed work queue of reconcile keys (client-go's workqueue, restated)."""

from __future__ import annotations

import heapq
import threading

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
