"""Demand waiting in Knative's activator, per revision: what scales a revision of knscale's class
from zero.

Knative's activator pushes its per-revision stats only to Knative's own autoscaler (a websocket
knscale is not part of), but it also exports them on its Prometheus endpoint (port 9090,
``/metrics``; knative.dev/serving v0.50.0 pkg/activator/handler/metrics.go, exported through
OpenTelemetry's Prometheus exporter, dots to underscores, no unit suffix for ``{request}``):

- ``kn_revision_request_queued`` — requests waiting in this activator for capacity (an up-down
  counter: a gauge on the wire). At zero scale every request to the revision waits here.
- ``kn_revision_request_concurrency`` — the activator's averaged concurrency per revision (its
  concurrency reporter, every second): all the revision's traffic when the activator is always
  in the path (target-burst-capacity -1).

Both carry ``k8s_namespace_name`` and ``kn_revision_name``. Every activator replica queues its
own share, so the values are summed over the scraped activators. An unparseable body or a
negative or non-finite value from one activator makes that activator's reading missing (never
half used); the others still count.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from reconciler.metrics.base import RevisionKey

QUEUED = "kn_revision_request_queued"
CONCURRENCY = "kn_revision_request_concurrency"
ACTIVATOR_METRICS_PORT = 9090
MAX_BODY_BYTES = 8 * 1024 * 1024  # an activator serving thousands of revisions stays far below
_NAMESPACE_LABEL = "k8s_namespace_name"
_REVISION_LABEL = "kn_revision_name"


@dataclass(frozen=True, slots=True)
class ActivatorDemand:
    queued: float = 0.0
    concurrency: float = 0.0


@dataclass(frozen=True, slots=True)
class ActivatorReading:
    """The summed demand of every activator that answered, and what the others did wrong."""

    demand: dict[RevisionKey, ActivatorDemand] = field(default_factory=dict)
    answered: int = 0
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.answered > 0

    def of(self, key: RevisionKey) -> ActivatorDemand:
        return self.demand.get(key, ActivatorDemand())


class ActivatorParseError(ValueError):
    pass


def parse_activator_metrics(text: str) -> dict[RevisionKey, ActivatorDemand]:
    """The two per-revision series of one activator's exposition (other families are ignored)."""
    queued: dict[RevisionKey, float] = {}
    concurrency: dict[RevisionKey, float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        raise ActivatorParseError(f"not Prometheus text exposition: {exc}") from exc
    for family in families:
        into = {QUEUED: queued, CONCURRENCY: concurrency}.get(family.name)
        if into is None:
            continue
        for sample in family.samples:
            if sample.name != family.name:
                continue
            value = float(sample.value)
            if not math.isfinite(value) or value < 0:
                raise ActivatorParseError(f"{sample.name} {sample.labels} = {sample.value}: not a count")
            try:
                key = RevisionKey(
                    sample.labels.get(_NAMESPACE_LABEL, ""), sample.labels.get(_REVISION_LABEL, "")
                )
            except ValueError:
                continue  # not a revision series (no or malformed labels): nothing to scale
            into[key] = into.get(key, 0.0) + value  # one series per scope / attribute set: sum
    return {
        key: ActivatorDemand(queued.get(key, 0.0), concurrency.get(key, 0.0))
        for key in queued.keys() | concurrency.keys()
    }


def merge(readings: Sequence[dict[RevisionKey, ActivatorDemand]]) -> dict[RevisionKey, ActivatorDemand]:
    out: dict[RevisionKey, ActivatorDemand] = {}
    for reading in readings:
        for key, d in reading.items():
            prior = out.get(key, ActivatorDemand())
            out[key] = ActivatorDemand(prior.queued + d.queued, prior.concurrency + d.concurrency)
    return out


class ActivatorScraper:
    """GET ``http://<address>/metrics`` of every activator, concurrently, once per scrape round.

    ``addresses`` is asked each round (the activator pods come and go); an empty list means no
    activator is known and the reading is not ok."""

    name = "activator"

    def __init__(
        self,
        addresses: Callable[[], Sequence[str]],
        *,
        timeout: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._addresses = addresses
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False, trust_env=False
        )

    async def scrape(self) -> ActivatorReading:
        addresses = list(dict.fromkeys(self._addresses()))
        if not addresses:
            return ActivatorReading(problems=("no activator address known",))
        results = await asyncio.gather(*(self._one(a) for a in addresses))
        readings = [r for r in results if isinstance(r, dict)]
        problems = tuple(r for r in results if isinstance(r, str))
        return ActivatorReading(merge(readings), len(readings), problems)

    async def _one(self, address: str) -> dict[RevisionKey, ActivatorDemand] | str:
        url = f"http://{address}/metrics"
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    return f"{address}: HTTP {response.status_code}"
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return f"{address}: body over {MAX_BODY_BYTES} bytes"
        except httpx.HTTPError as exc:
            return f"{address}: {type(exc).__name__}: {exc}"
        try:
            return parse_activator_metrics(body.decode("utf-8", errors="replace"))
        except ActivatorParseError as exc:
            return f"{address}: {exc}"

    async def aclose(self) -> None:
        await self._client.aclose()
