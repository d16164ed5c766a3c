"""`/metrics` of `knscale reconcile`: its own registry (no process-global state), served with
`/healthz` (the process is alive) and `/readyz` (caches synced) on one small HTTP server.

Besides the reconciler's own series: `knscale_build_info{component="reconciler",version,python}`
and prometheus_client's process and platform collectors, exactly as the webhook exports them
(webhook.metrics.add_process_metrics; copied, since the two packages never import each other).
"""

from __future__ import annotations

import contextlib
import platform
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from reconciler.kpa.coldstart import PodStart

WORKLOAD_LABELS = ("namespace", "name", "kind")


def _knscale_version() -> str:
    try:
        return metadata.version("knscale")
    except metadata.PackageNotFoundError:
        return "unknown"


class ReconcilerMetrics:
    """Every series the reconciler exports, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "knscale_reconciler_decisions_total",
            "Scaling decisions taken, by target kind, mode and what was done with them.",
            ("kind", "mode", "action"),
            registry=r,
        )
        self.desired_scale = Gauge(
            "knscale_reconciler_desired_scale",
            "Desired replicas of the last decision.",
            WORKLOAD_LABELS,
            registry=r,
        )
        self.actual_scale = Gauge(
            "knscale_reconciler_actual_scale",
            "Ready replicas seen by the last decision.",
            WORKLOAD_LABELS,
            registry=r,
        )
        self.panic_mode = Gauge(
            "knscale_reconciler_panic_mode",
            "1 while the target's decider is in panic mode.",
            WORKLOAD_LABELS,
            registry=r,
        )
        self.metrics_missing = Counter(
            "knscale_reconciler_metrics_missing_total",
            "Ticks that held the current scale because metrics were missing.",
            ("namespace", "name"),
            registry=r,
        )
        self.api_errors = Counter(
            "knscale_reconciler_api_errors_total",
            "Failed Kubernetes API calls, by verb, resource and HTTP status (0 = no answer).",
            ("verb", "resource", "code"),
            registry=r,
        )
        self.writes = Counter(
            "knscale_reconciler_writes_total",
            "Objects written, by resource and operation.",
            ("resource", "op"),
            registry=r,
        )
        self.loop_duration = Histogram(
            "knscale_reconciler_loop_duration_seconds",
            "Wall time of one reconcile tick.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.is_leader = Gauge(
            "knscale_reconciler_leader", "1 while this replica holds the Lease (any bucket).", registry=r
        )
        self.buckets_held = Gauge(
            "knscale_reconciler_buckets_held", "Bucket Leases this replica holds now.", registry=r
        )
        info = Gauge(
            "knscale_build_info",
            "Always 1: the knscale version and Python version of this process.",
            ("component", "version", "python"),
            registry=r,
        )
        info.labels("reconciler", _knscale_version(), platform.python_version()).set(1)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # Scaling policies and the measured cold-start cost (docs/reconciler.md, scaling policies).
        self.policy_decisions = Counter(
            "knscale_reconciler_policy_decisions_total",
            "KPA-loop decisions by scaling policy (kpa, knscale) and reason "
            "(stable, panic, learning, keepalive, prewarm, released).",
            ("policy", "reason"),
            registry=r,
        )
        self.cold_start = Gauge(
            "knscale_reconciler_cold_start_seconds",
            "Median creation → Ready time of the target's last 16 pods: the knscale policy's S.",
            WORKLOAD_LABELS,
            registry=r,
        )
        self.model_download = Gauge(
            "knscale_reconciler_model_download_seconds",
            "Median model-download time (knscale-model-init) of the target's last 16 pods that ran it.",
            WORKLOAD_LABELS,
            registry=r,
        )
        buckets = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
        self.pod_start_seconds = Histogram(
            "knscale_reconciler_pod_start_seconds",
            "Creation → Ready of every new pod of a KPA-loop target (all targets together).",
            buckets=buckets,
            registry=r,
        )
        self.pod_download_seconds = Histogram(
            "knscale_reconciler_pod_model_download_seconds",
            "Model download (knscale-model-init startedAt → finishedAt) of every new pod that ran it.",
            buckets=buckets,
            registry=r,
        )

    def set_cold_start(
        self, namespace: str, name: str, kind: str, seconds: float | None, download: float | None
    ) -> None:
        for gauge, value in ((self.cold_start, seconds), (self.model_download, download)):
            if value is not None:
                gauge.labels(namespace, name, kind).set(value)

    def observe_pod_start(self, start: PodStart) -> None:
        self.pod_start_seconds.observe(start.seconds)
        if start.download is not None:
            self.pod_download_seconds.observe(start.download)

    def forget(self, namespace: str, name: str, kind: str) -> None:
        """Drop a deleted target's series so the exporter does not grow forever."""
        for g in (
            self.desired_scale,
            self.actual_scale,
            self.panic_mode,
            self.cold_start,
            self.model_download,
        ):
            with contextlib.suppress(KeyError):
                g.remove(namespace, name, kind)
        with contextlib.suppress(KeyError):  # a counter per target would otherwise outlive it
            self.metrics_missing.remove(namespace, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """GET /metrics, /healthz, /readyz on a background thread; nothing else is served."""

    def __init__(
        self, metrics: ReconcilerMetrics, address: str, port: int, ready: Callable[[], bool] = lambda: True
    ) -> None:
        handler = _make_handler(metrics, ready)
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(metrics: ReconcilerMetrics, ready: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "knscale-reconciler"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                ok = ready()
                self._reply(
                    200 if ok else 503, b"ok\n" if ok else b"caches not synced\n", "text/plain; charset=utf-8"
                )
            else:
                self._reply(404, b"not found\n", "text/plain; charset=utf-8")

        def _reply(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the log

    return Handler
