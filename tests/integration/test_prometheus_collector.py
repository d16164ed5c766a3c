"""The Prometheus collector against a REAL Prometheus server (Debian's `prometheus` package).

Prometheus runs on a free 127.0.0.1 port, scraping a prometheus-client exporter served by this
test on loopback every second. Install it with tests/integration/install_deps.sh. Without the
binary the module is skipped locally, but fails in CI (`CI` set): CI must run it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from reconciler.kpa.decider import decide, initial_state
from reconciler.metrics import Collection, CollectTarget, PrometheusCollector, RevisionKey
from reconciler.metrics.store import MetricsStore, scrape_once
from translator.autoscaling.kpa import KpaSettings

PROMETHEUS = shutil.which("prometheus")
if PROMETHEUS is None and not os.environ.get("CI"):
    pytest.skip("prometheus not installed (tests/integration/install_deps.sh)", allow_module_level=True)

KEY = RevisionKey("default", "hello-00001")
OTHER = RevisionKey("default", "hello-00002")
INFLIGHT = 'sum(knscale_it_inflight{namespace="${namespace}",revision="${name}"})'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inflight = Gauge(
            "knscale_it_inflight", "in-flight", ["namespace", "revision"], registry=self.registry
        )
        self.requests = Counter(
            "knscale_it_requests", "requests", ["namespace", "revision"], registry=self.registry
        )
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    e = Exporter()
    e.inflight.labels("default", "hello-00001").set(42.5)
    e.inflight.labels("default", "hello-00002").set(7)
    yield e
    e.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert PROMETHEUS is not None, "CI must install prometheus: run tests/integration/install_deps.sh"
    work: Path = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {proc.returncode}: {(work / 'prometheus.log').read_text()}"
                )
            try:
                up = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="exporter"}'}, timeout=1)
                result = up.json()["data"]["result"]
                if result and result[0]["value"][1] == "1":
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("prometheus did not scrape the exporter within 30 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def collect(url: str, template: str, target: CollectTarget, metric: str = "concurrency") -> Collection:
    async def go() -> Collection:
        c = PrometheusCollector(url, template, metric=metric)  # type: ignore[arg-type]
        try:
            return await c.collect(target, time.time())
        finally:
            await c.aclose()

    return asyncio.run(go())


def wait_for(url: str, template: str, target: CollectTarget, value: float) -> Collection:
    deadline = time.monotonic() + 15
    while True:
        result = collect(url, template, target)
        if result.status == "ok" and result.stat is not None and result.stat.concurrency == value:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {value}: last {result}")
        time.sleep(0.25)


def test_revision_value_follows_the_exporter(prometheus: str, exporter: Exporter) -> None:
    wait_for(prometheus, INFLIGHT, CollectTarget(KEY), 42.5)
    exporter.inflight.labels("default", "hello-00001").set(3)
    wait_for(prometheus, INFLIGHT, CollectTarget(KEY), 3.0)
    assert collect(prometheus, INFLIGHT, CollectTarget(OTHER)).stat.concurrency == 7.0  # type: ignore[union-attr]


def test_rps_from_a_counter_rate(prometheus: str, exporter: Exporter) -> None:
    template = (
        'sum(rate(knscale_it_requests_total{namespace="${namespace}",revision="${name}"}[10s])) or vector(0)'
    )
    counter = exporter.requests.labels("default", "hello-00001")
    deadline = time.monotonic() + 15
    while True:
        counter.inc(5)
        result = collect(prometheus, template, CollectTarget(KEY), metric="rps")
        assert result.status == "ok", result.reason
        assert result.stat is not None and result.stat.concurrency == 0.0
        if result.stat.rps > 0:
            break
        if time.monotonic() > deadline:
            pytest.fail("rate() never became positive")
        time.sleep(0.3)


def test_unusable_answers_are_missing(prometheus: str) -> None:
    nobody = CollectTarget(RevisionKey("default", "nobody"))
    empty = collect(prometheus, INFLIGHT, nobody)
    assert empty.status == "missing" and "empty result" in empty.reason
    zero = collect(prometheus, INFLIGHT + " or vector(0)", nobody)
    assert zero.status == "ok" and zero.stat is not None and zero.stat.concurrency == 0.0
    several = collect(prometheus, "knscale_it_inflight", CollectTarget(KEY))
    assert several.status == "missing" and "2 series returned" in several.reason
    bad = collect(prometheus, "sum(rate(knscale_it_inflight[", CollectTarget(KEY))
    assert bad.status == "missing" and "bad_data" in bad.reason
    nan = collect(prometheus, "scalar(vector(0) / 0)", CollectTarget(KEY))
    assert nan.status == "missing" and "value is nan" in nan.reason
    matrix = collect(prometheus, "knscale_it_inflight[5s]", CollectTarget(KEY))
    assert matrix.status == "missing" and "unsupported result type 'matrix'" in matrix.reason


def test_feeds_windows_and_the_decider(prometheus: str, exporter: Exporter) -> None:
    exporter.inflight.labels("default", "hello-00002").set(35)
    wait_for(prometheus, INFLIGHT, CollectTarget(OTHER), 35.0)
    settings = KpaSettings(target_value=10.0, stable_window=6.0, panic_window=2.0)
    store = MetricsStore()
    start = time.time()
    store.ensure(OTHER, settings, start)

    async def three_rounds() -> None:
        # One scrape per 1 s bucket, stamped on an exact schedule: with wall-clock stamps a late
        # wake-up can skip a bucket, which the window (like Knative's) averages in as 0.
        c = PrometheusCollector(prometheus, INFLIGHT, metric="concurrency")
        try:
            for i in range(3):
                await scrape_once(c, [CollectTarget(OTHER)], store, start + i)
                await asyncio.sleep(1.0)
        finally:
            await c.aclose()

    asyncio.run(three_rounds())
    now = start + 2
    obs = store.observation(OTHER, settings, ready_pods=4, reachable=True, now=now)
    assert obs.stable == 35.0 and obs.panic == 35.0
    decision, _ = decide(settings, initial_state(settings, 4, now), obs, now)
    assert decision.valid and decision.desired == 4  # ceil(35 / 10)
