"""`knscale serve --in-cluster` run the way the chart's webhook Deployment runs it, as local processes.

No kubelet runs here, so each replica is a local process that gets what a pod would get:
- its ServiceAccount's credentials where `load_incluster_config` reads them: a real token from the
  TokenRequest API (`kubectl create token`), the cluster CA and the namespace, under
  /var/run/secrets/kubernetes.io/serviceaccount in a mount namespace of its own (`unshare --mount`
  binds a per-replica directory over /run for that process only), plus KUBERNETES_SERVICE_HOST/PORT;
  so the chart's Role and ClusterRole are what it may do;
- `KNSCALE_NAMESPACE` (the chart's downward-API env), `--cert-dir` (the chart's emptyDir), `--config`
  (the chart's ConfigMap, written to a file);
- an address the API server can dial: NETNS_ADDRESS (inside tests/e2e/netns.sh's namespace) on a port
  of its own, named by an EndpointSlice of the chart's Service `knscale-webhook` (no endpointslice
  controller runs), so the API server calls it through the chart's own service reference.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cluster import NETNS_ADDRESS, Component, ControlPlane, ControlPlaneError, free_port, wait_until
from knscale_procs import knscale_argv

NAMESPACE = "knscale-system"
SERVICE = "knscale-webhook"
SERVICE_ACCOUNT = "knscale-webhook"
SECRET = "knscale-webhook-certs"
SERVER_NAME = f"{SERVICE}.{NAMESPACE}.svc"  # what the API server verifies for a service reference
CONFIGURATIONS = (("mutatingwebhookconfiguration", SERVICE), ("validatingwebhookconfiguration", SERVICE))
READY_TIMEOUT_S = 90.0
_SA_DIR = "secrets/kubernetes.io/serviceaccount"
# Inside the replica's own mount namespace: $1 becomes /run (so /var/run/secrets/... is ours).
_MOUNT_AND_EXEC = 'mount --bind "$1" /run && shift && exec "$@"'


def config_file_from_chart(cp: ControlPlane, directory: Path) -> Path:
    """The chart's ConfigMap knscale-config's config.yaml as a file (what its volume mounts)."""
    cm = cp.get("configmap", "knscale-config", NAMESPACE)
    path = directory / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    return path


def ca_bundles(cp: ControlPlane) -> dict[str, list[str]]:
    """Every webhook's caBundle (base64 PEM) per configuration, as the API server has them."""
    out: dict[str, list[str]] = {}
    for kind, name in CONFIGURATIONS:
        live = cp.find(kind, name)
        hooks = (live or {}).get("webhooks") or []
        out[kind] = [(h.get("clientConfig") or {}).get("caBundle") or "" for h in hooks]
    return out


def apply_endpoint_slices(cp: ControlPlane, ports: dict[str, int]) -> None:
    """One EndpointSlice per replica (same address, its own port) for the chart's Service; the API
    server picks one slice at random per call (k8s.io/apiserver ResolveEndpoint)."""
    for name, port in ports.items():
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{SERVICE}-{name}",
                "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": SERVICE},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [NETNS_ADDRESS], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
        cp.kubectl("apply", "-f", "-", input=json.dumps(slice_))


class InClusterWebhook:
    """One replica of the chart's webhook: `knscale serve --in-cluster` on NETNS_ADDRESS:<port>."""

    def __init__(
        self, cp: ControlPlane, name: str, config_file: Path, extra_args: Sequence[str] = ()
    ) -> None:
        self.cp = cp
        self.name = name
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cp.root))
        self.cert_dir = self.home / "certs"
        self.run_dir = self.home / "run"
        self.cert_dir.mkdir()
        (self.run_dir / _SA_DIR).mkdir(parents=True)
        self.component = Component(
            f"knscale-{name}",
            [
                "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", _MOUNT_AND_EXEC, "sh", str(self.run_dir),
                *knscale_argv(),
                "serve",
                "--in-cluster",
                f"--host={NETNS_ADDRESS}",
                f"--port={self.port}",
                f"--cert-dir={self.cert_dir}",
                f"--config={config_file}",
                *extra_args,
            ],
            cp.logs / f"knscale-{name}.log",
            ports=(self.port,),
        )  # fmt: skip

    def _write_service_account(self) -> None:
        token = self.cp.kubectl(
            "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=2h"
        ).stdout.strip()
        sa = self.run_dir / _SA_DIR
        (sa / "token").write_text(token)
        (sa / "ca.crt").write_bytes(self.cp.ca_cert.read_bytes())
        (sa / "namespace").write_text(NAMESPACE)

    def start(self) -> None:
        """Start it; returns once it listens (it made or read the Secret and synced the caBundles)."""
        self._write_service_account()
        env = {
            **self.cp.env(),
            "PYTHONUNBUFFERED": "1",
            "KNSCALE_NAMESPACE": NAMESPACE,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.cp.api_port),
        }
        self.cp.components.append(self.component)  # torn down with the control plane whatever happens
        self.component.start(env, self.cp.root)
        wait_until(
            self._listening,
            timeout=READY_TIMEOUT_S,
            what=f"knscale serve --in-cluster ({self.name}) on {NETNS_ADDRESS}:{self.port}",
            on_timeout=self.component.tail,
        )

    def _listening(self) -> bool:
        if not self.component.alive():
            raise ControlPlaneError(f"{self.component.name} exited:\n{self.component.tail()}")
        try:
            self.served_leaf()
        except OSError:
            return False
        return True

    def served_leaf(self) -> bytes:
        """DER of the leaf a new TLS connection gets now (not verified: the caller judges it)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((NETNS_ADDRESS, self.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der

    def trusted_by(self, ca_bundle_b64: str) -> bool:
        """A full TLS handshake verified against this caBundle and the Service's DNS name, as the
        API server makes it for a service reference."""
        ctx = ssl.create_default_context(cadata=base64.b64decode(ca_bundle_b64).decode("ascii"))
        try:
            with (
                socket.create_connection((NETNS_ADDRESS, self.port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=SERVER_NAME),
            ):
                return True
        except ssl.SSLCertVerificationError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the replica's /metrics (0 when the series does not exist yet)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(NETNS_ADDRESS, self.port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)

    def stop(self) -> None:
        self.cp.retire(self.component)

    def tail(self, lines: int = 40) -> str:
        return self.component.tail(lines)


def secret(cp: ControlPlane) -> dict[str, Any] | None:
    return cp.find("secret", SECRET, NAMESPACE)
