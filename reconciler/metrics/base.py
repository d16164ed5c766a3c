"""What every metrics source shares: targets in, one ``Collection`` per revision out.

A collector never raises for bad or missing metrics: it returns a ``Collection`` whose
``status`` says what happened, so the loop can hold the scale and report the reason
("never scale on garbage"). Time is float Unix seconds, passed in (``now``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Protocol

from reconciler.kpa.windows import StatTotals
from translator.core.names import is_dns1123_label, is_dns1123_subdomain

CollectionStatus = Literal["ok", "empty", "missing"]
"""ok: totals measured; empty: nothing to measure (no ready pods — Knative records nothing, not an
error); missing: the source failed or returned garbage (``reason`` says why)."""

_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


def is_host_port(text: str) -> bool:
    """`host:port` or `[ipv6]:port` with a port in 1..65535 (a pod address override)."""
    m = _HOST_PORT.fullmatch(text)
    return m is not None and 0 < int(m.group(2)) < 65536


@dataclass(frozen=True, slots=True, order=True)
class RevisionKey:
    """namespace/name of the scaled object (Knative revision, Deployment or StatefulSet)."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not is_dns1123_label(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a DNS-1123 label")
        if not is_dns1123_subdomain(self.name):
            raise ValueError(f"name {self.name!r} is not a DNS-1123 subdomain")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A candidate pod: the caller passes only pods that are Running, Ready and not terminating."""

    name: str
    ip: str
    start_time: float | None = None  # status.startTime; None counts as just started


@dataclass(frozen=True, slots=True)
class CollectTarget:
    key: RevisionKey
    pods: tuple[PodInfo, ...] = ()
    stable_window: float = 60.0  # pods younger than this are sampled only as a fallback
    query: str | None = None  # Prometheus: this revision's own query instead of the template


@dataclass(frozen=True, slots=True)
class Collection:
    key: RevisionKey
    status: CollectionStatus
    stat: StatTotals | None = None
    reason: str = ""
    source: str = ""
    pods_total: int = 0
    pods_sampled: int = 0
    pods_failed: int = 0

    @property
    def missing(self) -> bool:
        return self.status == "missing"


def missing(
    key: RevisionKey,
    source: str,
    reason: str,
    *,
    pods_total: int = 0,
    pods_sampled: int = 0,
    pods_failed: int = 0,
) -> Collection:
    return Collection(
        key=key,
        status="missing",
        reason=reason,
        source=source,
        pods_total=pods_total,
        pods_sampled=pods_sampled,
        pods_failed=pods_failed,
    )


MAX_METRIC_VALUE = 1e12
"""No real revision has a trillion concurrent requests or requests per second; anything larger is
garbage, and would also poison a window's running total (floats saturate at infinity)."""


def check_value(name: str, value: float) -> str | None:
    """Why a metric value is garbage (non-finite, negative or absurdly large), or None if usable."""
    if not math.isfinite(value):
        return f"{name} is {value}"
    if value < 0:
        return f"{name} is negative ({value})"
    if value > MAX_METRIC_VALUE:
        return f"{name} is implausibly large ({value:g} > {MAX_METRIC_VALUE:g})"
    return None


class Collector(Protocol):
    """A source of revision-wide totals. Implementations must not raise for metric failures."""

    name: str

    async def collect(self, target: CollectTarget, now: float) -> Collection: ...

    async def aclose(self) -> None: ...
