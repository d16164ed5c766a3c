"""The queue-proxy collector against real HTTP servers on 127.0.0.1 serving protobuf `Stat`s.

Each fake pod is its own `http.server` on a free loopback port; the collector reaches it through
the per-pod address override, exactly as it would reach `<pod-ip>:9090` in a cluster. Payloads
are encoded from Knative's vendored `stat.proto`.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.kpa.windows import StatTotals
from reconciler.metrics import Collection, CollectTarget, PodInfo, QueueProxyCollector, RevisionKey
from reconciler.metrics.queue_proxy import MAX_STAT_BYTES, PROTOBUF_MIME, ScrapeError, stat_from_payload
from reconciler.metrics.stat_pb import encode_stat

KEY = RevisionKey("default", "hello-00001")
NOW = 1_700_000_000.0


@dataclass
class PodBehaviour:
    body: bytes = b""
    status: int = 200
    content_type: str = PROTOBUF_MIME
    delay: float = 0.0
    hits: int = 0
    accept_headers: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _PodServer

    def do_GET(self) -> None:
        b = self.server.behaviour
        b.hits += 1
        b.accept_headers.append(self.headers.get("Accept", ""))
        if self.path != "/metrics":
            self.send_error(404)
            return
        if b.delay:
            time.sleep(b.delay)
        self.send_response(b.status)
        self.send_header("Content-Type", b.content_type)
        self.send_header("Content-Length", str(len(b.body)))
        self.end_headers()
        self.wfile.write(b.body)

    def log_message(self, *args: object) -> None:
        pass


class _PodServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: PodBehaviour) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour


class Pods:
    """N fake queue-proxies; `target()` builds the collector input, `overrides` the address map."""

    def __init__(self) -> None:
        self.servers: dict[str, _PodServer] = {}
        self.start_times: dict[str, float] = {}

    def add(self, name: str, behaviour: PodBehaviour, start_time: float = NOW - 3600) -> PodBehaviour:
        srv = _PodServer(behaviour)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.servers[name] = srv
        self.start_times[name] = start_time
        return behaviour

    @property
    def overrides(self) -> dict[str, str]:
        return {n: f"127.0.0.1:{s.server_address[1]}" for n, s in self.servers.items()}

    def target(self, stable_window: float = 60.0) -> CollectTarget:
        infos = tuple(PodInfo(n, "10.1.2.3", self.start_times[n]) for n in self.servers)
        return CollectTarget(KEY, infos, stable_window)

    def close(self) -> None:
        for s in self.servers.values():
            s.shutdown()
            s.server_close()


@pytest.fixture
def pods() -> Iterator[Pods]:
    p = Pods()
    yield p
    p.close()


def stat(name: str, conc: float, rps: float = 0.0, pconc: float = 0.0, prps: float = 0.0) -> PodBehaviour:
    body = encode_stat(
        pod_name=name,
        average_concurrent_requests=conc,
        average_proxied_concurrent_requests=pconc,
        request_count=rps,
        proxied_request_count=prps,
        process_uptime=100.0,
    )
    return PodBehaviour(body=body)


def collect(pods: Pods, timeout: float = 3.0) -> Collection:
    async def go() -> Collection:
        c = QueueProxyCollector(address_overrides=pods.overrides, rng=random.Random(1), timeout=timeout)
        try:
            return await c.collect(pods.target(), NOW)
        finally:
            await c.aclose()

    return asyncio.run(go())


def test_small_revision_scrapes_every_pod_and_sums(pods: Pods) -> None:
    a = pods.add("a", stat("a", 2.0, rps=10, pconc=0.5, prps=1))
    b = pods.add("b", stat("b", 4.0, rps=30))
    result = collect(pods)
    assert result.status == "ok", result.reason
    # n = N = 2: sum / 2 × 2 = sum
    assert result.stat == StatTotals(6.0, 0.5, 40.0, 1.0)
    assert (a.hits, b.hits) == (1, 1)
    assert a.accept_headers == [PROTOBUF_MIME]


def test_large_revision_samples_and_extrapolates(pods: Pods) -> None:
    behaviours = [pods.add(f"p{i}", stat(f"p{i}", 3.0, rps=5.0)) for i in range(20)]
    result = collect(pods)
    assert result.status == "ok", result.reason
    assert sum(b.hits for b in behaviours) == 9  # population_mean_sample_size(20)
    assert result.pods_total == 20 and result.pods_sampled == 9
    assert result.stat == StatTotals(concurrency=60.0, rps=100.0)


def test_old_pods_are_sampled_before_young_ones(pods: Pods) -> None:
    old = [pods.add(f"old{i}", stat(f"old{i}", 1.0)) for i in range(9)]
    young = [pods.add(f"young{i}", stat(f"young{i}", 100.0), start_time=NOW - 5) for i in range(11)]
    result = collect(pods)
    assert result.status == "ok"
    assert all(b.hits == 1 for b in old) and all(b.hits == 0 for b in young)
    assert result.stat is not None and result.stat.concurrency == 20.0  # 9 × 1 / 9 × 20


def test_failed_pod_is_replaced_by_another(pods: Pods) -> None:
    # N = 5 ⇒ n = 4. Only a, b, c are old (< n), so they are tried first, in order; b fails
    # and its worker moves on to the young pod left over, completing the sample.
    pods.add("a", stat("a", 1.0))
    bad = pods.add("b", PodBehaviour(status=503, body=b"no"))
    pods.add("c", stat("c", 2.0))
    pods.add("d", stat("d", 3.0), start_time=NOW - 5)
    pods.add("e", stat("e", 4.0), start_time=NOW - 5)
    result = collect(pods)
    assert result.status == "ok", result.reason
    assert result.pods_failed == 1 and bad.hits == 1
    assert result.stat is not None and result.stat.concurrency == pytest.approx(10.0 / 4 * 5)


def test_too_many_failures_is_missing_with_reasons(pods: Pods) -> None:
    pods.add("good", stat("good", 1.0))
    pods.add("bad-status", PodBehaviour(status=500))
    pods.add("bad-type", PodBehaviour(body=b"queue_requests_per_second 1\n", content_type="text/plain"))
    result = collect(pods)
    assert result.status == "missing"
    reason = result.reason
    assert "too many pods failed: 1 of 3 answered, sample needs 3" in reason
    assert "HTTP 500" in reason and "unsupported content type 'text/plain'" in reason
    assert result.stat is None


def test_timeout_is_reported(pods: Pods) -> None:
    pods.add("slow", PodBehaviour(body=encode_stat(pod_name="slow"), delay=1.0))
    result = collect(pods, timeout=0.2)
    assert result.status == "missing"
    assert "timed out" in result.reason


def test_connection_refused_retries_then_reports(pods: Pods) -> None:
    async def go() -> Collection:
        c = QueueProxyCollector(address_overrides={"gone": "127.0.0.1:1"}, attempts_per_pod=2)
        try:
            return await c.collect(CollectTarget(KEY, (PodInfo("gone", "10.0.0.9", NOW - 100),)), NOW)
        finally:
            await c.aclose()

    result = asyncio.run(go())
    assert result.status == "missing" and "connection failed" in result.reason


def test_oversized_and_garbage_bodies_count_as_failed(pods: Pods) -> None:
    pods.add("huge", PodBehaviour(body=encode_stat(pod_name="x" * (MAX_STAT_BYTES + 10))))
    result = collect(pods)
    assert result.status == "missing"
    assert f"larger than {MAX_STAT_BYTES} bytes" in result.reason

    with pytest.raises(ScrapeError, match="garbage Stat: concurrency is nan"):
        stat_from_payload(encode_stat(average_concurrent_requests=float("nan")))
    with pytest.raises(ScrapeError, match="proxied_concurrency is implausibly large"):
        stat_from_payload(encode_stat(average_proxied_concurrent_requests=1e300))
    with pytest.raises(ScrapeError, match="rps is negative"):
        stat_from_payload(encode_stat(request_count=-1.0))
    with pytest.raises(ScrapeError, match="not a protobuf Stat"):
        stat_from_payload(b"\xff\xff\xff")


def test_no_ready_pods_is_empty_not_missing() -> None:
    async def go() -> Collection:
        c = QueueProxyCollector()
        try:
            return await c.collect(CollectTarget(KEY, ()), NOW)
        finally:
            await c.aclose()

    result = asyncio.run(go())
    assert result.status == "empty" and result.stat is None


def test_bad_pod_ip_and_bad_override_are_pod_failures() -> None:
    async def go() -> Collection:
        c = QueueProxyCollector(address_overrides={"b": "not an address", "c": "127.0.0.1:99999"})
        try:
            bad = (
                PodInfo("a", "evil.example/x", NOW - 100),
                PodInfo("b", "10.0.0.1"),
                PodInfo("c", "10.0.0.2"),
            )
            target = CollectTarget(KEY, bad)
            return await c.collect(target, NOW)
        finally:
            await c.aclose()

    result = asyncio.run(go())
    assert result.status == "missing"
    assert "is not an IP address" in result.reason and "is not host:port" in result.reason
    assert result.pods_failed == 3
