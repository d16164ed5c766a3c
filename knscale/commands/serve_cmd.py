"""`knscale serve`: the admission webhook over TLS 1.2+.

Certificates, in order of precedence:
- `--cert-file/--key-file`, or `--no-manage-certs` (read `--cert-dir`, e.g. a cert-manager
  Secret mounted there): served as given, reloaded when the files change, never written;
- `--in-cluster`: the CA + serving certificate Secret is created/renewed in the cluster, the
  pair is written to `--cert-dir`, and both webhook configurations get the caBundle;
- otherwise (the default, and what `make run` uses): a CA and a serving certificate are made
  in `--cert-dir` (`.knscale/certs`) and renewed there under the same CA. No cluster needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knscale.logs import configure_logging
from webhook.registration import DEFAULT_NAMESPACE, DEFAULT_SERVICE, SECRET_NAME

if TYPE_CHECKING:
    from knscale.settings.serve import ServeSettings
    from webhook.server import PeriodicJob

log = logging.getLogger("knscale.serve")

_INITIAL_SYNC_DEADLINE = 120.0  # seconds to keep retrying the first in-cluster certificate sync
CONFIG_POLL_INTERVAL = 5.0  # seconds between checks of the mounted settings file


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the admission webhook (HTTPS, TLS 1.2+)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 in a cluster)")
    p.add_argument("--port", type=int, help="port to bind (default 8443)")
    p.add_argument("--cert-dir", help="directory of ca.crt/tls.crt/tls.key (default .knscale/certs)")
    p.add_argument("--cert-file", help="serving certificate (PEM); with --key-file, used as given")
    p.add_argument("--key-file", help="serving key (PEM) for --cert-file")
    p.add_argument(
        "--config", dest="config_file", metavar="FILE", help="knscale settings file (or ConfigMap YAML)"
    )
    p.add_argument(
        "--embedded",
        action="store_true",
        default=None,
        help="local demo: 127.0.0.1:8443 with self-made certs; prints how to try it with curl",
    )
    p.add_argument(
        "--in-cluster",
        action="store_true",
        default=None,
        help="manage the certificate Secret and the webhook caBundles in the cluster",
    )
    p.add_argument(
        "--no-manage-certs",
        dest="manage_certs",
        action="store_false",
        default=None,
        help="never create or renew certificates: read --cert-dir only (cert-manager mode)",
    )
    p.add_argument(
        "--namespace", help=f"knscale's namespace (default $KNSCALE_NAMESPACE or {DEFAULT_NAMESPACE})"
    )
    p.add_argument("--service-name", help=f"the webhook Service (default {DEFAULT_SERVICE})")
    p.add_argument("--secret-name", help=f"the certificate Secret (default {SECRET_NAME})")
    p.add_argument(
        "--tls-min-version", choices=["1.2", "1.3"], help="lowest TLS version accepted (default 1.2)"
    )
    p.add_argument(
        "--cert-poll-interval", type=float, help="seconds between certificate file checks (default 2)"
    )
    p.add_argument(
        "--cert-check-interval", type=float, help="seconds between renewal/caBundle checks (default 300)"
    )
    p.add_argument(
        "--graceful-timeout", type=float, help="seconds in-flight requests get at shutdown (default 20)"
    )
    p.add_argument(
        "--dns", dest="dns_names", action="append", metavar="NAME", help="extra DNS SAN (repeatable)"
    )
    p.add_argument(
        "--ip", dest="ip_addresses", action="append", metavar="IP", help="extra IP SAN (repeatable)"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", help="text (default) or json: one object per line ($KNSCALE_LOG_FORMAT)")
    p.add_argument(
        "--metrics-port",
        type=int,
        help="also serve /metrics and /healthz (only those) over plain HTTP on this port (default 0: off)",
    )
    p.set_defaults(func=run)


_FIELDS = (
    "host",
    "port",
    "cert_dir",
    "cert_file",
    "key_file",
    "config_file",
    "embedded",
    "in_cluster",
    "manage_certs",
    "namespace",
    "service_name",
    "secret_name",
    "tls_min_version",
    "cert_poll_interval",
    "cert_check_interval",
    "graceful_timeout",
    "dns_names",
    "ip_addresses",
    "log_level",
    "log_format",
    "metrics_port",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _embedded_banner(host: str, port: int, ca_file: str, tls_min: str) -> str:
    base = f"https://{host}:{port}"
    review = (
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"demo-1",'
        '"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},'
        '"operation":"CREATE","namespace":"default","object":{"apiVersion":"v1","kind":"Pod",'
        '"metadata":{"name":"demo","annotations":{"knscale.dev/inject-model":"true",'
        '"knscale.dev/model-uri":"s3://models/demo/"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}'
    )
    return "\n".join(
        [
            f"knscale webhook: {base} (TLS {tls_min}+, CA {ca_file})",
            "Try it:",
            f"  curl --cacert {ca_file} {base}/healthz",
            f"  curl --cacert {ca_file} -H 'Content-Type: application/json' -d '{review}' {base}/mutate",
            "Point a cluster at it:",
            f"  knscale register --url {base} --ca-file {ca_file} --apply",
            "Stop with Ctrl-C.",
        ]
    )


def run(args: argparse.Namespace) -> int:
    from knscale.settings.serve import build_serve_settings
    from knscale.settings.watch import ConfigSource

    values: dict[str, Any] = {name: getattr(args, name, None) for name in _FIELDS}
    for name in ("dns_names", "ip_addresses"):
        given = values[name]
        values[name] = tuple(given) if given else None
    settings = build_serve_settings(values, os.environ)
    configure_logging(settings.log_level, settings.log_format)
    config = ConfigSource(settings.config_file, os.environ)

    from certs.pki import CertError
    from webhook.server import (
        CertificateLoadError,
        PeriodicJob,
        ReloadingCertificate,
        ServerOptions,
        ServerSetupError,
        WebhookServer,
    )

    jobs: list[PeriodicJob] = []
    if settings.config_file is not None:  # the mounted ConfigMap is re-read when it changes
        jobs.append(PeriodicJob("settings reload", CONFIG_POLL_INTERVAL, config.poll))
    try:
        if settings.cert_mode == "local":
            jobs.append(_prepare_local(settings))
        elif settings.cert_mode == "secret":
            job = _prepare_in_cluster(settings)
            if job is None:
                return 1
            jobs.append(job)
        certificate = ReloadingCertificate(
            settings.serving_cert, settings.serving_key, settings.tls_min_version
        )
        certificate.load()
    except (CertError, CertificateLoadError, OSError, ValueError) as exc:
        print(f"knscale serve: cannot prepare the serving certificate: {exc}", file=sys.stderr)
        return 1

    from webhook.app import create_app

    apps: list[Any] = []

    def app_factory(ready: Callable[[], bool]) -> Any:
        app = create_app(config.current, ready=ready)
        app.state.metrics.track_certificate(lambda: certificate.not_after)
        apps.append(app)
        return app

    options = ServerOptions(
        host=settings.host,
        port=settings.port,
        cert_poll_interval=settings.cert_poll_interval,
        graceful_timeout=settings.graceful_timeout,
        log_level=settings.log_level,
    )
    try:
        server = WebhookServer(app_factory, certificate, options, jobs)
    except ServerSetupError as exc:
        print(f"knscale serve: {exc}", file=sys.stderr)
        return 1
    plain = None
    if settings.metrics_port:
        from webhook.metrics_http import PlainMetricsServer

        try:
            plain = PlainMetricsServer(apps[0].state.metrics.render, settings.host, settings.metrics_port)
        except OSError as exc:
            print(
                f"knscale serve: cannot listen on {settings.host}:{settings.metrics_port} "
                f"(--metrics-port): {exc}",
                file=sys.stderr,
            )
            return 1
        plain.start()
        log.info("plain-HTTP /metrics on %s:%d", settings.host, plain.port)
    if settings.embedded:
        ca_file = settings.cert_dir / "ca.crt"
        print(
            _embedded_banner(settings.host, settings.port, str(ca_file), settings.tls_min_version), flush=True
        )
    try:
        server.run()
    except OSError as exc:  # e.g. the port is taken
        print(f"knscale serve: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        if plain is not None:
            plain.stop()
    return 0


def _prepare_local(settings: ServeSettings) -> PeriodicJob:
    from certs.files import CertPaths, ensure_local_certs
    from certs.pki import subject_names
    from webhook.server import PeriodicJob

    names = subject_names(
        service=settings.service_name,
        namespace=settings.namespace,
        dns_names=settings.dns_names,
        ip_addresses=settings.ip_addresses,
        local=True,
    )
    paths = CertPaths(settings.cert_dir)

    def renew() -> None:
        outcome = ensure_local_certs(paths, names, _now())
        if outcome.action != "kept":
            log.info("certificates in %s %s: %s", paths.directory, outcome.action, "; ".join(outcome.reasons))

    renew()  # before serving: the server loads the pair at start
    return PeriodicJob("local certificate renewal", settings.cert_check_interval, renew)


def _prepare_in_cluster(settings: ServeSettings) -> PeriodicJob | None:
    from certs.pki import subject_names
    from kubeapi.client import SMALL_OBJECTS_MAX_BYTES, KubernetesApi
    from kubeapi.errors import ApiError
    from webhook import carotation
    from webhook.certmanager import CertManager, CertManagerSettings
    from webhook.server import PeriodicJob

    try:
        # Only its Secret and two configurations, all small: a tight bound and a short timeout.
        api = KubernetesApi.in_cluster(request_timeout=15.0, max_body_bytes=SMALL_OBJECTS_MAX_BYTES)
    except ApiError as exc:
        print(f"knscale serve --in-cluster: {exc}", file=sys.stderr)
        return None
    names = subject_names(
        service=settings.service_name,
        namespace=settings.namespace,
        dns_names=settings.dns_names,
        ip_addresses=settings.ip_addresses,
        local=False,
    )
    manager = CertManager(
        api,
        CertManagerSettings(
            namespace=settings.namespace,
            service_name=settings.service_name,
            cert_dir=settings.cert_dir,
            secret_name=settings.secret_name,
            # Every replica re-reads the Secret and loads its leaf between two rotation steps.
            rotation_grace=carotation.grace_for(settings.cert_check_interval, settings.cert_poll_interval),
        ),
        names,
    )
    deadline = time.monotonic() + _INITIAL_SYNC_DEADLINE
    delay = 1.0
    while True:
        try:
            manager.reconcile(_now())
            break
        except ApiError as exc:
            if time.monotonic() + delay > deadline:
                print(
                    f"knscale serve --in-cluster: cannot manage Secret "
                    f"{settings.namespace}/{settings.secret_name}: {exc}. "
                    "Check the Role/ClusterRole in config/base/rbac.yaml.",
                    file=sys.stderr,
                )
                return None
            log.warning("certificate sync failed (%s); retrying in %.0fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
    return PeriodicJob(
        "certificate and caBundle sync", settings.cert_check_interval, lambda: manager.reconcile(_now())
    )
