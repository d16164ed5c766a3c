"""knscale itself as real subprocesses next to the e2e control plane, and the loopback servers
the scenarios feed it from.

- ``Webhook``: `knscale certs` + `knscale serve` on a free 127.0.0.1 port, registered with
  `knscale register --url … --ca-file … --apply` (and removed with `knscale unregister`).
  It can be SIGKILLed and restarted on the same port, and its leaf certificate renewed by
  re-running `knscale certs` (same CA, so the registered caBundle stays valid).
- ``Reconciler``: `knscale reconcile --kubeconfig …`, killable, with its log.
- ``StatServer``: a fake queue-proxy answering `GET /metrics` with a protobuf ``Stat`` encoded
  from the vendored stat.proto (reconciler.metrics.stat_pb), values set by the test.
- ``Exporter`` + ``Prometheus``: a Prometheus text endpoint with values set by the test, scraped
  every second by a real Prometheus (Debian's package, as in tests/integration).

Every process runs through ``cluster.Component`` (own process group, dies with pytest, SIGTERM
then SIGKILL on stop); every port is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cluster import Component, ControlPlane, ControlPlaneError, free_port, port_is_listening, wait_until

from reconciler.metrics.stat_pb import encode_stat

READY_TIMEOUT_S = 60.0


def knscale_argv() -> list[str]:
    """The `knscale` console script of this venv (the code under test, installed editable)."""
    script = Path(sys.executable).parent / "knscale"
    if script.exists():
        return [str(script)]
    found = shutil.which("knscale")
    return [found] if found else [sys.executable, "-m", "knscale"]


def run_knscale(
    cp: ControlPlane, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """One `knscale` command against this cluster (its KUBECONFIG and private HOME)."""
    return subprocess.run(
        [*knscale_argv(), *args],
        input=input,
        capture_output=True,
        text=True,
        env={**cp.env(), "PYTHONUNBUFFERED": "1"},
        cwd=cp.root,
        timeout=timeout,
        check=False,
    )


def new_namespace(cp: ControlPlane, prefix: str, labels: dict[str, str] | None = None) -> str:
    """A fresh namespace (with its default ServiceAccount) for one scenario."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cp.create_namespace(name, labels)
    return name


def apply_json(cp: ControlPlane, namespace: str, *objects: Mapping[str, Any]) -> None:
    for obj in objects:
        cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


# --- the webhook --------------------------------------------------------------------------------


class Webhook:
    """`knscale serve` with certificates from `knscale certs`, registered through `knscale register`."""

    def __init__(self, cp: ControlPlane, name: str = "webhook", serve_args: Sequence[str] = ()) -> None:
        self.cp = cp
        self.name = name
        self.serve_args = tuple(serve_args)
        self.cert_dir = cp.root / f"{name}-certs"
        self.port = free_port()
        self.component: Component | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    @property
    def log(self) -> Path:
        return self.cp.logs / f"knscale-{self.name}.log"

    def certs(self, *extra: str) -> str:
        """Run `knscale certs --out DIR` (creates, keeps or renews); returns its first output line."""
        done = run_knscale(self.cp, "certs", "--out", str(self.cert_dir), *extra)
        if done.returncode != 0:
            raise ControlPlaneError(f"knscale certs failed ({done.returncode}): {done.stderr}")
        return done.stdout.splitlines()[0]

    def start(self) -> None:
        """Start (or restart, on the same port) `knscale serve` and wait until /readyz says 200."""
        if not self.ca_file.exists():
            self.certs()
        component = Component(
            f"knscale-{self.name}",
            [
                *knscale_argv(),
                "serve",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--cert-file={self.cert_dir / 'tls.crt'}",
                f"--key-file={self.cert_dir / 'tls.key'}",
                # Rotation is checked by polling the files; poll fast so the scenario stays short.
                "--cert-poll-interval=0.5",
                "--log-level=info",
                *self.serve_args,
            ],
            self.log,
            ports=(self.port,),
        )
        self.component = component
        component.start({**self.cp.env(), "PYTHONUNBUFFERED": "1"}, self.cp.root)
        self.starts += 1
        wait_until(
            self._ready,
            timeout=READY_TIMEOUT_S,
            what=f"knscale serve on {self.url} to be ready",
            on_timeout=lambda: component.tail(),
        )

    def _ready(self) -> bool:
        assert self.component is not None
        if not self.component.alive():
            raise ControlPlaneError(f"knscale serve exited:\n{self.component.tail()}")
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=2)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the server's /metrics (0 when the series does not exist yet)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)

    def served_certificate(self) -> bytes:
        """DER of the leaf a new TLS connection gets now (verified against the CA)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der

    def kill(self) -> None:
        """SIGKILL the server's process group: a crash, no graceful shutdown."""
        assert self.component is not None and self.component.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.component.proc.pid, signal.SIGKILL)
        self.component.proc.wait(timeout=10)
        wait_until(
            lambda: not port_is_listening(self.port),
            timeout=10,
            what=f"port {self.port} to close after SIGKILL",
        )

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()

    def register(self, *extra: str) -> str:
        done = run_knscale(
            self.cp,
            "register",
            "--url",
            self.url,
            "--ca-file",
            str(self.ca_file),
            "--apply",
            "--kubeconfig",
            str(self.cp.kubeconfig),
            *extra,
        )
        if done.returncode != 0:
            raise ControlPlaneError(f"knscale register failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def unregister(self) -> str:
        done = run_knscale(self.cp, "unregister", "--kubeconfig", str(self.cp.kubeconfig))
        if done.returncode != 0:
            raise ControlPlaneError(f"knscale unregister failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def tail(self, lines: int = 40) -> str:
        return self.component.tail(lines) if self.component else ""


# --- the reconciler -----------------------------------------------------------------------------


class Reconciler:
    """`knscale reconcile --kubeconfig …` as a subprocess; stdout (decisions) and stderr in one log."""

    def __init__(self, cp: ControlPlane, name: str, args: Sequence[str]) -> None:
        self.cp = cp
        self.name = name
        self.log = cp.logs / f"knscale-{name}.log"
        self.component = Component(
            f"knscale-{name}",
            [
                *knscale_argv(),
                "reconcile",
                "--kubeconfig",
                str(cp.kubeconfig),
                "--metrics-port=0",  # nothing scrapes it here, and 9090 may be taken on a shared machine
                *args,
            ],
            self.log,
        )

    def start(self) -> Reconciler:
        self.component.start({**self.cp.env(), "PYTHONUNBUFFERED": "1"}, self.cp.root)
        return self

    def alive(self) -> bool:
        return self.component.alive()

    def kill(self) -> None:
        proc = self.component.proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> int | None:
        self.component.stop()
        return self.component.proc.returncode if self.component.proc else None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return self.component.tail(lines)


@contextlib.contextmanager
def reconciler(cp: ControlPlane, name: str, *args: str) -> Iterator[Reconciler]:
    proc = Reconciler(cp, name, args).start()
    try:
        yield proc
    finally:
        proc.stop()


# --- loopback metric servers --------------------------------------------------------------------


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> whose GET answer comes from ``respond``."""

    def __init__(self, respond: Callable[[str], tuple[int, str, bytes]]) -> None:
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                status, ctype, body = respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name=f"http-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class StatServer(_Server):
    """A fake queue-proxy: `GET /metrics` → protobuf Stat (application/protobuf) of one pod."""

    def __init__(self, pod_name: str) -> None:
        self.pod_name = pod_name
        self.concurrency = 0.0
        self.rps = 0.0
        self.started = time.monotonic()
        super().__init__(self._answer)

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        if path != "/metrics":
            return 404, "text/plain", b"not found"
        body = encode_stat(
            pod_name=self.pod_name,
            average_concurrent_requests=self.concurrency,
            request_count=self.rps,
            process_uptime=time.monotonic() - self.started,
        )
        return 200, "application/protobuf", body


class Exporter(_Server):
    """Prometheus text exposition of one gauge per (namespace, name), values set by the test."""

    METRIC = "knscale_e2e_inflight_requests"

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}
        super().__init__(self._answer)

    def set(self, namespace: str, name: str, value: float) -> None:
        self.values[(namespace, name)] = value

    def query(self) -> str:
        """The PromQL a workload's `knscale.dev/prometheus-query` annotation carries."""
        return f'sum({self.METRIC}{{namespace="${{namespace}}",name="${{name}}"}})'

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        lines = [f"# TYPE {self.METRIC} gauge"]
        for (ns, name), value in sorted(self.values.items()):
            lines.append(f'{self.METRIC}{{namespace="{ns}",name="{name}"}} {value}')
        return 200, "text/plain; version=0.0.4", ("\n".join(lines) + "\n").encode()


class Prometheus:
    """Debian's prometheus on a free loopback port, scraping ``targets`` every second."""

    def __init__(self, cp: ControlPlane, targets: Sequence[str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ControlPlaneError(
                "prometheus is not installed; fix: `make deps` (tests/integration/install_deps.sh)"
            )
        self.port = free_port()
        work = cp.root / f"prometheus-{self.port}"
        work.mkdir()
        config = work / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: e2e\n    static_configs:\n"
            f"      - targets: {json.dumps(list(targets))}\n"
        )
        self.component = Component(
            f"prometheus-{self.port}",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            cp.logs / f"prometheus-{self.port}.log",
            ports=(self.port,),
        )
        self.component.start(cp.env(), cp.root)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
        try:
            conn.request("GET", "/api/v1/query?" + urlencode({"query": promql}))
            payload = json.loads(conn.getresponse().read())
        except (OSError, ValueError):
            return []
        finally:
            conn.close()
        result: list[Any] = (payload.get("data") or {}).get("result") or []
        return result

    def wait_for_value(self, promql: str, value: float, timeout: float = 60) -> None:
        def seen() -> bool:
            if not self.component.alive():
                raise ControlPlaneError(f"prometheus exited:\n{self.component.tail()}")
            result = self.query(promql)
            return bool(result) and float(result[0]["value"][1]) == value

        wait_until(seen, timeout=timeout, what=f"prometheus to see {promql} == {value}")

    def stop(self) -> None:
        self.component.stop()
