"""Runs INSIDE the knscale image (tests/image/test_image.py passes it to the image's python3.11).

Starts `knscale serve --embedded` (127.0.0.1:8443, self-made certificates in /tmp), then, as a
client on the container's own loopback, checks the certificate chain and TLS >= 1.2, GETs /healthz
and POSTs an AdmissionReview to /mutate. Prints one JSON object; the test judges it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CERTS = Path("/tmp/certs")
BASE = "https://127.0.0.1:8443"
REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "image-test-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": "default",
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "model-pod",
                "annotations": {
                    "knscale.dev/inject-model": "true",
                    "knscale.dev/model-uri": "s3://bucket/model",
                },
            },
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        },
    },
}


def main() -> None:
    report: dict[str, object] = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        Path("/usr/local/knscale-write-probe").write_text("x")
        report["root_writable"] = True
    except OSError as exc:
        report["root_writable"] = False
        report["root_write_error"] = exc.strerror
    server = subprocess.Popen(
        ["/usr/local/bin/knscale", "serve", "--embedded", f"--cert-dir={CERTS}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    context = None
    deadline = time.monotonic() + 60
    health = None
    while time.monotonic() < deadline and server.poll() is None:
        if (CERTS / "ca.crt").exists():
            context = ssl.create_default_context(cafile=str(CERTS / "ca.crt"))
            try:
                with urllib.request.urlopen(f"{BASE}/healthz", context=context, timeout=2) as reply:
                    health = (reply.status, reply.read().decode())
                    break
            except OSError:
                pass
        time.sleep(0.3)
    report["healthz"] = health
    if context is not None and health is not None:
        with (
            socket.create_connection(("127.0.0.1", 8443), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            report["tls_version"] = tls.version()
            cert = tls.getpeercert() or {}
            report["peer_names"] = [str(entry[1]) for entry in cert.get("subjectAltName", ())]
        request = urllib.request.Request(
            f"{BASE}/mutate",
            data=json.dumps(REVIEW).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            report["mutate_status"] = reply.status
            report["review"] = json.loads(reply.read())
    server.terminate()
    try:
        out, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    report["server_exit"] = server.returncode
    report["server_log_tail"] = out.decode(errors="replace")[-2000:]
    print(json.dumps(report))
    sys.exit(0)


if __name__ == "__main__":
    main()
