"""Cold-start cost, measured: how long a workload's pods take from creation to Ready, and how
much of it is knscale's model download. Pure: the pod-reading edge (reconciler/scaling/pods.py)
turns pod timestamps into ``PodStart`` records; this module keeps the recent ones per target.

S, the cost the knscale policy plans with, is the median of the last ``KEEP`` pod starts (a
median, so one pod stuck on a slow node does not move it); the download part is the median of
those that ran knscale's downloader init container. A pod of a cached or OCI (image-volume)
model runs no download, so its start is the container start alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

KEEP = 16  # pod starts remembered per target: 16 × 4 floats, whatever the history


@dataclass(frozen=True, slots=True)
class PodStart:
    pod: str  # uid (name when the uid is unknown): one pod counts once
    created: float  # metadata.creationTimestamp, epoch seconds
    ready: float  # the Ready condition's lastTransitionTime
    download: float | None = None  # downloader init container finishedAt − startedAt; None: none ran

    @property
    def seconds(self) -> float:
        return max(0.0, self.ready - self.created)


@dataclass(frozen=True, slots=True)
class ColdStarts:
    recent: tuple[PodStart, ...] = ()  # by Ready time, oldest first, at most KEEP

    @property
    def cold_start(self) -> float | None:
        return _median([p.seconds for p in self.recent])

    @property
    def download(self) -> float | None:
        return _median([p.download for p in self.recent if p.download is not None])

    @property
    def samples(self) -> int:
        return len(self.recent)


def observe(stats: ColdStarts, starts: Iterable[PodStart]) -> tuple[ColdStarts, list[PodStart]]:
    """``stats`` with the pod starts it has not seen yet, and those new ones (oldest first)."""
    known = {p.pod for p in stats.recent}
    fresh = sorted((p for p in starts if p.pod not in known), key=lambda p: (p.ready, p.pod))
    if not fresh:
        return stats, []
    merged = sorted((*stats.recent, *fresh), key=lambda p: (p.ready, p.pod))[-KEEP:]
    kept = {p.pod for p in merged}
    return ColdStarts(tuple(merged)), [p for p in fresh if p.pod in kept]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
