"""Every PromQL query of the Grafana dashboard (charts/knscale/dashboards/knscale.json), checked by
promtool and answered by a REAL Prometheus scraping a running `knscale serve` and a reconciler.

Everything on 127.0.0.1: `knscale serve --metrics-port` as a subprocess (its /metrics over plain
HTTP, admissions posted over TLS: patched, denied, cached); the reconciler's real Controller over
the fake API, its ticks driven by a fake clock (scale-up decisions, desired and ready replicas)
and its /metrics served by the real MetricsServer; Prometheus (Debian's package,
tests/integration/install_deps.sh) scraping both every second. Each query must parse
(`promtool check rules` over all of them, then the HTTP API) and return at least one series: a
misspelled metric or label, or a panel about a series nothing exports, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers.admission import review, seed_pod
from helpers.controller import build_controller
from live.serve_process import Served, client_context, free_port, run_certs, serve

from kubeapi.resources import DEPLOYMENTS, PODS
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, workload
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.exporter import MetricsServer
from reconciler.scaling.sources import MetricSources

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
if (PROMETHEUS is None or PROMTOOL is None) and not os.environ.get("CI"):
    pytest.skip(
        "prometheus/promtool not installed (tests/integration/install_deps.sh)", allow_module_level=True
    )

DASHBOARD = Path(__file__).resolve().parents[2] / "charts/knscale/dashboards/knscale.json"
# The Grafana variables the dashboard may use, and what stands in for them here (a window of
# many 1 s scrapes). Any other `$` variable fails the test: it would be a query Grafana cannot run.
GRAFANA_VARIABLES = {"$__rate_interval": "30s"}
V1 = "admission.k8s.io/v1"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every target in the dashboard, rows' nested panels included."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return out


def concrete(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = {title for title, _ in dashboard_queries()}
    exprs = " ".join(expr for _, expr in dashboard_queries())
    assert len(dashboard_queries()) >= 12
    for needle in (
        "knscale_webhook_requests_total",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
        "knscale_webhook_denials_total",
        "knscale_webhook_certificate_expiry_timestamp_seconds",
        "knscale_reconciler_decisions_total",
        "knscale_reconciler_desired_scale",
        "knscale_reconciler_actual_scale",
        "knscale_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert needle in exprs, needle
    assert "Denials by rule" in titles


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    assert PROMTOOL is not None, "CI must install prometheus (promtool): tests/integration/install_deps.sh"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": concrete(expr)}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(dashboard_queries())} rules found" in done.stdout


# ---- the running knscale ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    run_certs(out)
    return out


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory, certdir: Path) -> Iterator[tuple[Served, int]]:
    metrics_port = free_port()
    tmp = tmp_path_factory.mktemp("serve")
    with serve(
        tmp,
        certdir / "ca.crt",
        "--cert-file",
        str(certdir / "tls.crt"),
        "--key-file",
        str(certdir / "tls.key"),
        "--metrics-port",
        str(metrics_port),
    ) as served:
        yield served, metrics_port


class Reconciler:
    """The real Controller over the fake API; `advance` runs scrapes and ticks on a fake clock."""

    def __init__(self) -> None:
        self.fake, self.clock = FakeKube(), FakeClock()
        self.fake.seed(DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA}, replicas=1))
        self.fake.seed(PODS, pod("web-0", "web", ip="10.0.0.1"))
        static = StaticCollector({RevisionKey("default", "web"): StatTotals(concurrency=700)})
        self.ctrl = build_controller(self.fake, self.clock, sources=MetricSources(queue_proxy=static))
        self.ctrl.step_informers()
        self.server = MetricsServer(self.ctrl.metrics, "127.0.0.1", 0)
        self.server.start()

    def advance(self, seconds: int) -> list[Any]:
        records = []
        for _ in range(seconds):
            self.clock.advance(1)
            self.ctrl.scrape_once()
            self.ctrl.step_informers()
            records += self.ctrl.tick()
        return records

    def close(self) -> None:
        self.server.stop()
        self.ctrl.close_collectors()


@pytest.fixture(scope="module")
def reconciler() -> Iterator[Reconciler]:
    r = Reconciler()
    yield r
    r.close()


def _query(url: str, expr: str) -> dict[str, Any]:
    reply = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    doc: dict[str, Any] = reply.json()
    assert reply.status_code == 200 and doc["status"] == "success", (expr, reply.text)
    return doc


@pytest.fixture(scope="module")
def prometheus(
    webhook: tuple[Served, int], reconciler: Reconciler, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    assert PROMETHEUS is not None, "CI must install prometheus: run tests/integration/install_deps.sh"
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "knscale-webhook",
                        "static_configs": [{"targets": [f"127.0.0.1:{webhook[1]}"]}],
                    },
                    {
                        "job_name": "knscale-reconciler",
                        "static_configs": [{"targets": [f"127.0.0.1:{reconciler.server.port}"]}],
                    },
                ],
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "prometheus.log"
    with log_path.open("wb") as log:
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
        deadline = time.monotonic() + 60  # two shared cores under load: generous
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}: {log_path.read_text()}")
            try:
                up = _query(url, "sum(up)")["data"]["result"]
                if up and up[0]["value"][1] == "2":
                    break
            except (httpx.HTTPError, AssertionError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus did not scrape both targets within 60 s: {log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _admit(webhook: Served, certdir: Path, rounds: int) -> None:
    """Patched (seed pod, then the same pod again: a cache hit), denied (KNS001) and validated."""
    bad = seed_pod()
    bad["metadata"]["annotations"] = {"knscale.dev/inject-model": "maybe"}
    with httpx.Client(base_url=webhook.base_url, verify=client_context(certdir / "ca.crt"), timeout=10) as c:
        for i in range(rounds):
            for path, obj in (("/mutate", seed_pod()), ("/mutate", bad), ("/validate", seed_pod())):
                reply = c.post(path, json=review(V1, obj, f"dash-{i}-{path}-{id(obj)}"))
                assert reply.status_code == 200, reply.text


def test_every_query_returns_series_from_a_running_knscale(
    prometheus: str, webhook: tuple[Served, int], certdir: Path, reconciler: Reconciler
) -> None:
    records = reconciler.advance(6)
    assert any(r.action == "scaled" for r in records), [r.line() for r in records]
    queries = [(title, concrete(expr)) for title, expr in dashboard_queries()]
    # Admissions and ticks keep coming while Prometheus scrapes, so rates have two samples to use.
    dead: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        _admit(webhook[0], certdir, 3)
        reconciler.advance(2)
        dead = [
            f"{title}: {expr}" for title, expr in queries if not _query(prometheus, expr)["data"]["result"]
        ]
        if not dead or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not dead, "queries that return no series:\n" + "\n".join(dead)
    # The series carry what the panels' legends name.
    [info] = [q for q in queries if q[0] == "Build info"]
    components = {r["metric"]["component"] for r in _query(prometheus, info[1])["data"]["result"]}
    assert components == {"webhook", "reconciler"}
    denials = _query(prometheus, "knscale_webhook_denials_total")["data"]["result"]
    assert {r["metric"]["rule"] for r in denials} == {"KNS001"}
    expiry = _query(prometheus, "min(knscale_webhook_certificate_expiry_timestamp_seconds) - time()")
    assert float(expiry["data"]["result"][0]["value"][1]) > 86400  # `knscale certs` made a fresh one


def test_both_metrics_endpoints_pass_promtool_check_metrics(
    webhook: tuple[Served, int], reconciler: Reconciler
) -> None:
    assert PROMTOOL is not None
    for port in (webhook[1], reconciler.server.port):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        done = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode == 0 and not problems, (port, problems)
    assert re.search(r"^knscale_build_info\{", text, re.M)
