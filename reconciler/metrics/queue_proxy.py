"""Scrape Knative queue-proxy's autoscaler endpoint (``:9090/metrics``, protobuf ``Stat``).

Faithful to Knative's direct pod scraping (reference knative-kpa.md §6.2): sample
``population_mean_sample_size(N)`` pods, old pods first; ``n`` workers each walk the shared
pod list until one pod answers; fewer than ``n`` answers is a failed collection (nothing is
recorded); otherwise each field is summed, divided by ``n`` and multiplied by ``N``.
Knative's mesh fallback (scraping through the revision's Service) is not implemented:
knscale scrapes pod IPs directly or the per-pod override addresses.

Differences that only make it stricter: a payload larger than Knative's read limit, or with a
non-finite or negative value, counts as a failed pod instead of being truncated or used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Mapping

import httpx

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import Collection, CollectTarget, PodInfo, check_value, is_host_port, missing
from reconciler.metrics.sampling import (
    extrapolate,
    population_mean_sample_size,
    sampling_order,
    split_by_age,
)
from reconciler.metrics.stat_pb import decode_stat

PROTOBUF_MIME = "application/protobuf"
QUEUE_METRICS_PORT = 9090  # Knative's AutoscalingQueueMetricsPort
MAX_STAT_BYTES = 6 * 10 + 256 + 20  # Knative reads at most this much of a Stat body


class ScrapeError(Exception):
    """One pod could not give a usable Stat."""


def _override_for(name: str, overrides: Mapping[str, str]) -> str | None:
    """The exact pod name's override, else the longest ``PREFIX*`` one that matches (pods of a
    Deployment have generated names; tests point all of them at one loopback server)."""
    exact = overrides.get(name)
    if exact is not None:
        return exact
    best: tuple[int, str] | None = None
    for pattern, address in overrides.items():
        if (
            pattern.endswith("*")
            and name.startswith(pattern[:-1])
            and (best is None or len(pattern) > best[0])
        ):
            best = (len(pattern), address)
    return best[1] if best else None


def _pod_address(pod: PodInfo, port: int, overrides: Mapping[str, str]) -> str:
    override = _override_for(pod.name, overrides)
    if override is not None:
        if not is_host_port(override):
            raise ScrapeError(f"address override {override!r} is not host:port")
        return override
    try:
        ip = ipaddress.ip_address(pod.ip)
    except ValueError:
        raise ScrapeError(f"pod IP {pod.ip!r} is not an IP address") from None
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def stat_from_payload(payload: bytes) -> StatTotals:
    """Decode and check one pod's Stat; ``ScrapeError`` says why it is unusable."""
    try:
        msg = decode_stat(payload)
    except ValueError as exc:
        raise ScrapeError(str(exc)) from None
    totals = StatTotals(
        concurrency=msg.average_concurrent_requests,
        proxied_concurrency=msg.average_proxied_concurrent_requests,
        rps=msg.request_count,
        proxied_rps=msg.proxied_request_count,
    )
    for field in ("concurrency", "proxied_concurrency", "rps", "proxied_rps"):
        problem = check_value(field, getattr(totals, field))
        if problem:
            raise ScrapeError(f"garbage Stat: {problem}")
    return totals


class QueueProxyCollector:
    """Samples each revision's ready pods once per call; safe to share across revisions.

    Owns an ``httpx.AsyncClient`` (keep-alive pool): use one instance from one event loop.
    """

    name = "queue-proxy"

    def __init__(
        self,
        *,
        port: int = QUEUE_METRICS_PORT,
        path: str = "/metrics",
        timeout: float = 3.0,
        attempts_per_pod: int = 1,
        address_overrides: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        max_connections: int = 256,
    ) -> None:
        if attempts_per_pod < 1:
            raise ValueError("attempts_per_pod must be ≥ 1")
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self._port = port
        self._path = path
        self._attempts = attempts_per_pod
        self._overrides = dict(address_overrides or {})
        self._rng = rng or random.Random()
        self._owns_client = client is None
        # trust_env=False: pod traffic must never go through an HTTP proxy taken from the environment.
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _fetch(self, url: str) -> bytes:
        async with self._client.stream("GET", url, headers={"Accept": PROTOBUF_MIME}) as resp:
            if not 200 <= resp.status_code < 300:
                raise ScrapeError(f"HTTP {resp.status_code}")
            ctype = resp.headers.get("content-type", "")
            if ctype != PROTOBUF_MIME:
                raise ScrapeError(f"unsupported content type {ctype!r}; queue-proxy serves {PROTOBUF_MIME}")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_STAT_BYTES:
                    raise ScrapeError(f"body larger than {MAX_STAT_BYTES} bytes: not a queue-proxy Stat")
            return bytes(body)

    async def scrape_pod(self, pod: PodInfo) -> StatTotals:
        url = f"http://{_pod_address(pod, self._port, self._overrides)}{self._path}"
        last = "no attempt"
        for _ in range(self._attempts):
            try:
                return stat_from_payload(await self._fetch(url))
            except httpx.TimeoutException:
                last = f"timed out ({url})"
            except httpx.TransportError as exc:
                last = f"connection failed ({url}): {type(exc).__name__}"
            except httpx.HTTPError as exc:  # not worth retrying (e.g. a body that cannot be decoded)
                raise ScrapeError(f"request failed ({url}): {type(exc).__name__}: {exc}") from None
        raise ScrapeError(last)

    async def collect(self, target: CollectTarget, now: float) -> Collection:
        population = len(target.pods)
        if population == 0:
            return Collection(key=target.key, status="empty", reason="no ready pods", source=self.name)
        old, young = split_by_age(target.pods, target.stable_window, now)
        sample_size = population_mean_sample_size(population)
        order = sampling_order(old, young, sample_size, self._rng)
        results: list[StatTotals] = []
        errors: list[str] = []
        cursor = 0

        async def worker() -> None:
            nonlocal cursor
            while cursor < len(order):
                pod = order[cursor]
                cursor += 1
                try:
                    results.append(await self.scrape_pod(pod))
                    return
                except ScrapeError as exc:
                    errors.append(f"{pod.name}: {exc}")

        await asyncio.gather(*(worker() for _ in range(sample_size)))
        if len(results) < sample_size:
            shown = "; ".join(errors[:3]) + (f"; +{len(errors) - 3} more" if len(errors) > 3 else "")
            return missing(
                target.key,
                self.name,
                f"too many pods failed: {len(results)} of {population} answered,"
                f" sample needs {sample_size} ({shown})",
                pods_total=population,
                pods_sampled=len(results),
                pods_failed=len(errors),
            )
        return Collection(
            key=target.key,
            status="ok",
            stat=extrapolate(results, sample_size, population),
            source=self.name,
            pods_total=population,
            pods_sampled=len(results),
            pods_failed=len(errors),
        )
