"""`knscale reconcile` settings: parsed and validated in one place, every problem reported at once.

Durations take Go syntax (`2s`, `500ms`, `1m30s`) or a plain number of seconds, like the
rest of knscale's configuration.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.collectors.base import is_host_port
from reconciler.leader import LeaseConfig
from translator.core.names import is_dns1123_label, is_dns1123_subdomain
from translator.core.values import SECOND, ParseError, RangeError, parse_duration, parse_http_url

DEFAULT_LEASE_NAME = "knscale-reconciler"
DEFAULT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_identity() -> str:
    """The Lease holder name: the pod name in a cluster (downward API), else host + random."""
    pod = os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class ReconcileConfigError(ValueError):
    """Every configuration problem, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True)
class ReconcileSettings:
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str | None = None  # None: all namespaces
    interval: float = 2.0
    scrape_interval: float = 1.0
    resync_period: float = 300.0
    dry_run: bool = False
    lease: LeaseConfig | None = None
    metrics_address: str = "0.0.0.0"
    metrics_port: int = 9090
    prometheus_url: str | None = None
    prometheus_query: str | None = None
    prometheus_timeout: float = 3.0
    scrape_timeout: float = 3.0
    pod_address_overrides: Mapping[str, str] = field(default_factory=dict)
    metrics_file: str | None = None
    config_file: str | None = None


def _seconds(name: str, value: Any, problems: list[str], *, minimum: float, maximum: float) -> float:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            text = str(value).strip()
            try:
                seconds = float(text)
            except ValueError:
                seconds = parse_duration(text) / SECOND
    except (ParseError, RangeError) as exc:
        problems.append(f"{name}: {exc}")
        return minimum
    if not minimum <= seconds <= maximum:
        problems.append(f"{name}: {value!r} is outside {minimum:g}s–{maximum:g}s")
    return seconds


def _lease_namespace(explicit: str | None, environ: Mapping[str, str]) -> str:
    if explicit:
        return explicit
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    try:
        return DEFAULT_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "knscale-system"
    except OSError:
        return "knscale-system"


def parse_settings(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ReconcileSettings:
    """Build `ReconcileSettings` from flag values (argparse dest names). Raises `ReconcileConfigError`."""
    env = os.environ if environ is None else environ
    problems: list[str] = []

    kubeconfig = raw.get("kubeconfig") or None
    in_cluster = bool(raw.get("in_cluster"))
    if kubeconfig and in_cluster:
        problems.append("--kubeconfig and --in-cluster exclude each other; pick one")
    if kubeconfig and not Path(kubeconfig).is_file():
        problems.append(f"--kubeconfig: {kubeconfig} is not a readable file")

    ns_text = str(raw.get("namespace") or "all")
    namespace = None if ns_text == "all" else ns_text
    if namespace is not None and not is_dns1123_label(namespace):
        problems.append(f"--namespace: {ns_text!r} is not a namespace name (or 'all')")

    interval = _seconds("--interval", raw.get("interval", "2s"), problems, minimum=0.1, maximum=3600)
    scrape_interval = _seconds(
        "--scrape-interval", raw.get("scrape_interval", "1s"), problems, minimum=0.1, maximum=60
    )
    resync = _seconds("--resync-period", raw.get("resync_period", "5m"), problems, minimum=1, maximum=86400)
    dry_run = bool(raw.get("dry_run"))

    lease: LeaseConfig | None = None
    lease_name = str(raw.get("lease_name") or DEFAULT_LEASE_NAME)
    if not is_dns1123_subdomain(lease_name):
        problems.append(f"--lease-name: {lease_name!r} is not a valid object name")
    lease_ns = _lease_namespace(raw.get("lease_namespace"), env)
    if not is_dns1123_label(lease_ns):
        problems.append(f"--lease-namespace: {lease_ns!r} is not a namespace name")
    duration = _seconds(
        "--lease-duration", raw.get("lease_duration", "15s"), problems, minimum=1, maximum=3600
    )
    renew = _seconds(
        "--renew-deadline", raw.get("renew_deadline", "10s"), problems, minimum=0.5, maximum=3600
    )
    retry = _seconds("--retry-period", raw.get("retry_period", "2s"), problems, minimum=0.1, maximum=600)
    identity = str(raw.get("lease_identity") or env.get("POD_NAME") or "")
    if not raw.get("no_leader_election") and not dry_run:
        lease = LeaseConfig(lease_name, lease_ns, identity or default_identity(), duration, renew, retry)
        problems += lease.problems()

    metrics_port = raw.get("metrics_port", 9090)
    if not isinstance(metrics_port, int) or not 0 <= metrics_port <= 65535:
        problems.append(f"--metrics-port: {metrics_port!r} must be 0 (off) or a port 1-65535")
        metrics_port = 0

    prometheus_url = raw.get("prometheus_url") or None
    if prometheus_url:
        try:
            parse_http_url(str(prometheus_url))
        except ParseError as exc:
            problems.append(f"--prometheus-url: {exc}")
    prometheus_query = raw.get("prometheus_query") or None
    if prometheus_query and not prometheus_url:
        problems.append("--prometheus-query needs --prometheus-url")
    prom_timeout = _seconds(
        "--prometheus-timeout", raw.get("prometheus_timeout", "3s"), problems, minimum=0.1, maximum=60
    )
    scrape_timeout = _seconds(
        "--scrape-timeout", raw.get("scrape_timeout", "3s"), problems, minimum=0.1, maximum=60
    )

    overrides: dict[str, str] = {}
    for item in raw.get("pod_address_override") or []:
        pod, sep, addr = str(item).partition("=")
        if not sep or not is_dns1123_subdomain(pod):
            problems.append(f"--pod-address-override: {item!r} must be POD=HOST:PORT")
            continue
        if not is_host_port(addr):
            problems.append(f"--pod-address-override: {item!r}: {addr!r} is not HOST:PORT")
            continue
        overrides[pod] = addr

    metrics_file = raw.get("metrics_file") or None
    if metrics_file and not Path(metrics_file).is_file():
        problems.append(f"--metrics-file: {metrics_file} is not a readable file")
    config_file = raw.get("config") or None

    if problems:
        raise ReconcileConfigError(problems)
    return ReconcileSettings(
        kubeconfig=kubeconfig,
        context=raw.get("context") or None,
        in_cluster=in_cluster,
        namespace=namespace,
        interval=interval,
        scrape_interval=scrape_interval,
        resync_period=resync,
        dry_run=dry_run,
        lease=lease,
        metrics_address=str(raw.get("metrics_address") or "0.0.0.0"),
        metrics_port=metrics_port,
        prometheus_url=prometheus_url,
        prometheus_query=prometheus_query,
        prometheus_timeout=prom_timeout,
        scrape_timeout=scrape_timeout,
        pod_address_overrides=overrides,
        metrics_file=metrics_file,
        config_file=str(config_file) if config_file else None,
    )
