"""Rotating the certificate files under a running `knscale serve`: no failed request, and new
connections get the new certificate while established ones carry on."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from serve_process import Served, client_context, run_certs, serve

from certs.files import CertPaths, read_bundle, write_atomic
from certs.pki import renew_leaf, subject_names

pytestmark = pytest.mark.live

REVIEW = json.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "rot",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "p",
                    "annotations": {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m/"},
                },
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }
).encode()


def _ok(status: int, body: bytes) -> bool:
    return status == 200 and json.loads(body)["response"]["uid"] == "rot"


@dataclass
class Traffic:
    """Counts of answered/failed requests, split at the moment of rotation."""

    ok: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _keep_alive_loop(
    served: Served, ca: Path, stop: threading.Event, out: Traffic, peer: list[bytes]
) -> None:
    """One connection for the whole test, as the API server keeps its connections open."""
    conn = http.client.HTTPSConnection("127.0.0.1", served.port, context=client_context(ca), timeout=10)
    try:
        while not stop.is_set():
            try:
                conn.request("POST", "/mutate", body=REVIEW, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if _ok(resp.status, body):
                    out.ok.append(time.monotonic())
                else:
                    out.failures.append(f"keep-alive: HTTP {resp.status}")
            except (OSError, http.client.HTTPException) as exc:
                out.failures.append(f"keep-alive: {exc!r}")
                conn.close()
            if conn.sock is not None and not peer:
                der = conn.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
                if der:
                    peer.append(der)
        if conn.sock is not None:
            peer.append(conn.sock.getpeercert(binary_form=True))  # type: ignore[attr-defined]
    finally:
        conn.close()


def _new_connection_loop(served: Served, ca: Path, stop: threading.Event, out: Traffic) -> None:
    """A fresh TLS connection (and handshake) per request."""
    ctx = client_context(ca)
    while not stop.is_set():
        try:
            with httpx.Client(verify=ctx, timeout=10) as c:
                reply = c.post(
                    f"{served.base_url}/mutate", content=REVIEW, headers={"Content-Type": "application/json"}
                )
            if _ok(reply.status_code, reply.content):
                out.ok.append(time.monotonic())
            else:
                out.failures.append(f"new-connection: HTTP {reply.status_code}")
        except httpx.HTTPError as exc:
            out.failures.append(f"new-connection: {exc!r}")


def _served_der(served: Served, ca: Path) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw,
        client_context(ca).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _rotate_under_traffic(tmp_path: Path, rotate: Callable[[CertPaths], None]) -> None:
    certdir = tmp_path / "certs"
    run_certs(certdir)
    paths = CertPaths(certdir)
    ca_before = paths.ca_cert.read_bytes()
    with serve(
        tmp_path,
        paths.ca_cert,
        "--cert-file",
        str(paths.cert),
        "--key-file",
        str(paths.key),
        "--cert-poll-interval",
        "0.1",
    ) as served:
        old = _der(paths.cert)
        assert _served_der(served, paths.ca_cert) == old
        stop = threading.Event()
        keep, fresh = Traffic(), Traffic()
        peer: list[bytes] = []
        threads = [
            threading.Thread(target=_keep_alive_loop, args=(served, paths.ca_cert, stop, keep, peer)),
            threading.Thread(target=_new_connection_loop, args=(served, paths.ca_cert, stop, fresh)),
        ]
        for t in threads:
            t.start()
        try:
            assert _wait_for(lambda: len(keep.ok) >= 5 and len(fresh.ok) >= 3, 20), (keep, fresh)
            rotated_at = time.monotonic()
            rotate(paths)
            new = _der(paths.cert)
            assert new != old and paths.ca_cert.read_bytes() == ca_before  # same CA, new leaf
            assert _wait_for(lambda: _served_der(served, paths.ca_cert) == new, 15), served.log_text()
            seen_at = time.monotonic()
            # Keep the traffic going a little after the switch.
            assert _wait_for(
                lambda: sum(t > seen_at for t in keep.ok) >= 5 and sum(t > seen_at for t in fresh.ok) >= 3, 20
            )
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert keep.failures == [] and fresh.failures == []
        assert any(t > rotated_at for t in keep.ok) and any(t > rotated_at for t in fresh.ok)
        # The connection opened before the rotation stayed up all along, on the old certificate.
        assert peer[0] == old and peer[-1] == old
        assert "serving certificate reloaded" in served.log_text()
        assert served.stop() == 0


def test_rotation_with_knscale_certs_under_traffic(tmp_path: Path) -> None:
    # New SANs make `knscale certs` renew the leaf under the existing CA.
    _rotate_under_traffic(tmp_path, lambda paths: run_certs(paths.directory, "--dns", "rotated.example.com"))


def test_rotation_written_slowly_in_two_steps(tmp_path: Path) -> None:
    """A writer that replaces the certificate, waits, then the key (the order that would strip
    the key from a naively reloaded context): the server never loads the mismatched pair and
    keeps answering on the old one until the key arrives."""

    def slow_writer(paths: CertPaths) -> None:
        bundle = read_bundle(paths)
        assert bundle is not None
        renewed = renew_leaf(
            bundle, subject_names(service="knscale-webhook", namespace="knscale-system"), datetime.now(UTC)
        )
        write_atomic(paths.cert, renewed.cert_pem)
        time.sleep(0.6)  # several polls see the new certificate with the old key
        write_atomic(paths.key, renewed.key_pem, 0o600)

    _rotate_under_traffic(tmp_path, slow_writer)
