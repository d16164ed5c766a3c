"""What a CA rotation looks like from outside, sampled while it runs (test_ca_rotation.py).

- ``AdminApi``: the API server over HTTPS with the e2e admin's client certificate (one connection per
  thread: http.client is not thread-safe).
- ``PodCreator``: a thread creating the seed's pod with ``dryRun=All`` back to back; every answer is
  recorded: the status, whether the stored object came back injected (so /mutate answered) and whether
  /validate's KNS004 warnings came with it (/validate is failurePolicy Ignore: a failed call would
  not fail the create, only lose its warnings).
- ``TrustMonitor``: a thread that, over and over, reads both configurations' caBundles, TLS-connects
  to each replica verifying against the mutating caBundle and the Service's DNS name (as the API
  server does), checks the leaf it got against every caBundle read before *and* after the handshake,
  and notes the rotation phase on the Secret.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cluster import NETNS_ADDRESS, ControlPlane
from cryptography import x509
from incluster_webhook import NAMESPACE, SECRET, SERVER_NAME, InClusterWebhook
from manifests import SEED_ANNOTATIONS

from webhook.carotation import PHASE

_CONFIG_PATHS = {
    "mutating": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/knscale-webhook",
    "validating": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/knscale-webhook",
}


class AdminApi:
    def __init__(self, cp: ControlPlane) -> None:
        assert cp.pki is not None
        self.port = cp.api_port
        self.ctx = ssl.create_default_context(cafile=str(cp.ca_cert))
        self.ctx.load_cert_chain(str(cp.pki.dir / "admin.crt"), str(cp.pki.dir / "admin.key"))
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, list[str], Any]:
        """(status, Warning headers, decoded body); one reconnect on a dropped keep-alive connection."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
                continue
            return resp.status, resp.headers.get_all("Warning") or [], json.loads(raw or b"null")
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()

    def ca_bundles(self) -> list[str]:
        out: list[str] = []
        for path in _CONFIG_PATHS.values():
            _, _, obj = self.request("GET", path)
            out += [(h.get("clientConfig") or {}).get("caBundle") or "" for h in obj.get("webhooks") or []]
        return out

    def phase(self) -> str:
        _, _, obj = self.request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return str(annotations.get(PHASE, "none"))


@dataclass(frozen=True)
class Admission:
    at: float
    status: int
    injected: bool
    validated: bool
    message: str

    @property
    def ok(self) -> bool:
        return self.status == 201 and self.injected and self.validated


def probe_pod() -> dict[str, Any]:
    """The seed's pod: sent to /mutate (injected) and to /validate (KNS004 for each legacy key)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rotation-probe", "annotations": dict(SEED_ANNOTATIONS)},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
    }


class PodCreator(threading.Thread):
    def __init__(self, cp: ControlPlane, namespace: str) -> None:
        super().__init__(name="pod-creator", daemon=True)
        self.api = AdminApi(cp)
        self.path = f"/api/v1/namespaces/{namespace}/pods?dryRun=All"
        self.body = probe_pod()
        self.results: list[Admission] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            status, warnings, obj = self.api.request("POST", self.path, self.body)
            inits = ((obj or {}).get("spec") or {}).get("initContainers") or []
            self.results.append(
                Admission(
                    time.monotonic(),
                    status,
                    [c.get("name") for c in inits] == ["knscale-model-init"],
                    any("KNS004" in w for w in warnings),
                    "" if status == 201 else str((obj or {}).get("message")),
                )
            )
        self.api.close()

    @property
    def failures(self) -> list[Admission]:
        return [a for a in self.results if not a.ok]


class Traffic:
    """``clients`` PodCreators at once: concurrent creates make the API server open several
    connections to the webhook Service, and it picks an endpoint at random per connection (at dial
    time, k8s.io/apiserver/pkg/util/webhook/client.go), so both replicas get requests."""

    def __init__(self, cp: ControlPlane, namespace: str, clients: int = 4) -> None:
        self.creators = [PodCreator(cp, namespace) for _ in range(clients)]

    def start(self) -> None:
        for c in self.creators:
            c.start()

    def stop(self) -> None:
        for c in self.creators:
            c.halt.set()
        for c in self.creators:
            c.join(timeout=60)

    @property
    def results(self) -> list[Admission]:
        return sorted((a for c in self.creators for a in c.results), key=lambda a: a.at)

    @property
    def failures(self) -> list[Admission]:
        return [a for a in self.results if not a.ok]


def issued_by_bundle(leaf_der: bytes, ca_bundle_b64: str) -> bool:
    leaf = x509.load_der_x509_certificate(leaf_der)
    for ca in x509.load_pem_x509_certificates(base64.b64decode(ca_bundle_b64)):
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # cryptography's InvalidSignature, or ValueError/TypeError for a mismatch
            continue
        return True
    return False


def handshake(port: int, ca_bundle_b64: str) -> tuple[bytes, bool]:
    """(leaf DER, whether a handshake verified against the caBundle and the Service name succeeded)."""
    ctx = ssl.create_default_context(cadata=base64.b64decode(ca_bundle_b64).decode("ascii"))
    try:
        with (
            socket.create_connection((NETNS_ADDRESS, port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der, True
    except ssl.SSLCertVerificationError:
        pass
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((NETNS_ADDRESS, port), timeout=5) as raw,
        unverified.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der, False


@dataclass(frozen=True)
class TrustSample:
    at: float
    replica: str
    phase: str
    leaf_issuer: str
    trusted: bool


class TrustMonitor(threading.Thread):
    def __init__(self, cp: ControlPlane, replicas: Sequence[InClusterWebhook]) -> None:
        super().__init__(name="trust-monitor", daemon=True)
        self.api = AdminApi(cp)
        self.replicas = list(replicas)
        self.samples: list[TrustSample] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            phase = self.api.phase()
            before = self.api.ca_bundles()
            leaves = {r.name: handshake(r.port, before[0]) for r in self.replicas}
            after = self.api.ca_bundles()
            for name, (der, verified) in leaves.items():
                trusted = verified and all(issued_by_bundle(der, b) for b in (*before, *after))
                issuer = x509.load_der_x509_certificate(der).issuer.rfc4514_string()
                self.samples.append(TrustSample(time.monotonic(), name, phase, issuer, trusted))
        self.api.close()

    @property
    def untrusted(self) -> list[TrustSample]:
        return [s for s in self.samples if not s.trusted]

    def phases(self) -> list[str]:
        """The phases seen, in order, without repeats."""
        seen: list[str] = []
        for s in self.samples:
            if not seen or seen[-1] != s.phase:
                seen.append(s.phase)
        return seen
