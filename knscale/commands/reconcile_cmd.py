"""`knscale reconcile`: the bundled reconciler.

Scales plain Deployments/StatefulSets annotated with the KPA class through their `scale`
subresource (Knative's KPA decision, every --interval), and replaces autoscaler-keda for
HPA-class Knative PodAutoscalers and HPA-class workloads (ScaledObject, ServerlessService,
PodAutoscaler status). Run two replicas: a Lease elects one leader, the other stays warm;
with --buckets N, targets are sharded over N Leases and each replica leads its fair share.
Do not run autoscaler-keda or Knative's autoscaler-hpa beside it (docs/reconciler.md).

Durations take Go syntax (2s, 500ms, 1m) or seconds. Exit codes: 0 clean shutdown
(SIGTERM/SIGINT), 1 could not start, 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from knscale.logs import configure_logging
from knscale.settings import SettingsError
from knscale.settings.watch import ConfigSource


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "reconcile",
        help="run the reconciler: KPA-style scaling of annotated workloads, HPA class via KEDA",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
    where.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--config", type=Path, metavar="FILE", help="knscale settings file or ConfigMap YAML")
    p.add_argument("--namespace", default="all", help="namespace to watch, or 'all' (default all)")
    p.add_argument("--interval", default="2s", help="decision tick (default 2s, Knative's)")
    p.add_argument("--scrape-interval", default="1s", help="metric collection period (default 1s, Knative's)")
    p.add_argument("--resync-period", default="5m", help="full re-sync of every object (default 5m)")
    p.add_argument(
        "--dry-run", action="store_true", help="print each decision and planned write; write nothing"
    )
    p.add_argument("--no-leader-election", action="store_true", help="act without a Lease (one replica only)")
    p.add_argument(
        "--lease-name", default="knscale-reconciler", help="Lease name (default knscale-reconciler)"
    )
    p.add_argument(
        "--lease-namespace", help="Lease namespace (default: $POD_NAMESPACE or the pod's namespace)"
    )
    p.add_argument("--lease-identity", help="holder identity (default $POD_NAME, else host + random)")
    p.add_argument("--lease-duration", default="15s", help="how long a Lease is valid (default 15s)")
    p.add_argument("--renew-deadline", default="10s", help="give up leading after failing to renew this long")
    p.add_argument("--retry-period", default="2s", help="between acquire/renew attempts (default 2s)")
    p.add_argument(
        "--buckets",
        default="1",
        help="shard targets into N bucket Leases (<lease-name>-0…N-1; default 1: one leader for all)",
    )
    p.add_argument(
        "--metrics-address", default="0.0.0.0", help="listen address of /metrics (default 0.0.0.0)"
    )
    p.add_argument(
        "--metrics-port", type=int, default=9090, help="port of /metrics, /healthz, /readyz; 0 = off"
    )
    p.add_argument("--prometheus-url", help="Prometheus HTTP API base URL for ingress-counted workloads")
    p.add_argument(
        "--prometheus-query",
        help="default query for every KPA workload (${namespace}, ${name}); without it only workloads "
        "annotated knscale.dev/prometheus-query use Prometheus",
    )
    p.add_argument("--prometheus-timeout", default="3s", help="Prometheus query timeout (default 3s)")
    p.add_argument("--scrape-timeout", default="3s", help="queue-proxy scrape timeout per pod (default 3s)")
    p.add_argument(
        "--pod-address-override",
        action="append",
        default=[],
        metavar="POD=HOST:PORT",
        help="scrape this pod's queue-proxy stats at HOST:PORT instead of its IP; POD may end in * to "
        "match a name prefix (repeatable; tests)",
    )
    p.add_argument(
        "--activator-probe-address",
        metavar="HOST:PORT",
        help="send the activator probe of knscale-class revisions to HOST:PORT (tests, on loopback)",
    )
    p.add_argument(
        "--activator-metrics",
        default="auto",
        metavar="auto|off|HOST:PORT,…",
        help="where knscale-class revisions' waiting requests are read for scale from zero: auto (default: "
        "the ready activator pods in knative-serving, port 9090; needs metrics-protocol: prometheus in "
        "Knative's config-observability), off, or HOST:PORT list",
    )
    p.add_argument("--metrics-file", help="read every workload's totals from this JSON file (tests, demos)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", help="text (default) or json: one object per line ($KNSCALE_LOG_FORMAT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from knscale.settings.reconcile import build_reconcile_settings

    problems: list[str] = []
    settings = None
    try:
        settings = build_reconcile_settings(vars(args))
    except SettingsError as exc:
        problems += str(exc).splitlines()
    config = None
    try:
        config = ConfigSource(args.config, os.environ)
    except SettingsError as exc:
        problems.append(str(exc).strip())
    if problems or settings is None or config is None:
        raise SettingsError("\n".join(f"  {p.strip()}" for p in problems))
    configure_logging(settings.log_level, settings.log_format)
    config.start()  # the mounted ConfigMap is re-read when it changes
    try:
        return _serve(settings, config)
    finally:
        config.stop()


def _serve(settings: Any, config: ConfigSource) -> int:
    from kubeapi.client import KubernetesApi
    from kubeapi.errors import ApiError
    from reconciler.controller import Controller, ControllerOptions
    from reconciler.metrics import FileCollector, PrometheusCollector, QueueProxyCollector
    from reconciler.runtime.exporter import MetricsServer, ReconcilerMetrics
    from reconciler.scaling.sources import MetricSources

    try:
        api = (
            KubernetesApi.in_cluster()
            if settings.in_cluster
            else KubernetesApi.from_kubeconfig(settings.kubeconfig, settings.context)
        )
    except ApiError as exc:
        print(f"knscale reconcile: {exc.message}", file=sys.stderr)
        return 1

    prometheus = {}
    if settings.prometheus_url:
        template = settings.prometheus_query or ""
        for metric in ("concurrency", "rps"):
            prometheus[metric] = PrometheusCollector(
                settings.prometheus_url, template, metric=metric, timeout=settings.prometheus_timeout
            )
    sources = MetricSources(
        queue_proxy=QueueProxyCollector(
            address_overrides=settings.pod_address_overrides, timeout=settings.scrape_timeout
        ),
        prometheus=prometheus,
        prometheus_default_query=settings.prometheus_query,
        override=FileCollector(settings.metrics_file) if settings.metrics_file else None,
    )
    options = ControllerOptions(
        namespace=settings.namespace,
        interval=settings.interval,
        scrape_interval=settings.scrape_interval,
        resync_period=settings.resync_period,
        dry_run=settings.dry_run,
        lease=settings.lease,
        activator_probe_address=settings.activator_probe_address,
        activator_metrics=settings.activator_metrics,
        **({"identity": settings.lease.identity} if settings.lease else {}),
    )
    metrics = ReconcilerMetrics()

    def out(line: str) -> None:
        print(line, flush=True)

    controller = Controller(api, options, config=config.current, sources=sources, metrics=metrics, out=out)
    server = None
    if settings.metrics_port:
        try:
            server = MetricsServer(
                metrics, settings.metrics_address, settings.metrics_port, ready=controller.ready
            )
        except OSError as exc:
            print(
                f"knscale reconcile: cannot listen on {settings.metrics_address}:{settings.metrics_port}: "
                f"{exc}",
                file=sys.stderr,
            )
            return 1
        server.start()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("knscale.reconcile").info("signal %d: draining", signum)
        controller.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return controller.run()
    finally:
        if server is not None:
            server.stop()
        api.close()
