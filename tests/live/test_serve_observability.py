"""`knscale serve --log-format json --metrics-port N` as a real subprocess on loopback: JSON log
lines, the plain-HTTP metrics port (only /metrics and /healthz) and the TLS port that serves
nothing without TLS."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.admission import review, seed_pod
from serve_process import Served, client_context, free_port, run_certs, serve

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    run_certs(out)
    return out


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certdir: Path, metrics_port: int) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    with serve(
        tmp,
        certdir / "ca.crt",
        "--cert-file",
        str(certdir / "tls.crt"),
        "--key-file",
        str(certdir / "tls.key"),
        "--log-format",
        "json",
        "--metrics-port",
        str(metrics_port),
    ) as served:
        yield served


def _json_lines(served: Served) -> list[dict[str, object]]:
    return [json.loads(line) for line in served.log_text().splitlines() if line.strip()]


def test_every_log_line_is_one_json_object(server: Served, certdir: Path) -> None:
    with httpx.Client(base_url=server.base_url, verify=client_context(certdir / "ca.crt"), timeout=10) as c:
        assert (
            c.post("/mutate", json=review("admission.k8s.io/v1", seed_pod(), "live-json-1")).status_code
            == 200
        )
    deadline = time.monotonic() + 10
    while True:
        lines = _json_lines(server)  # raises if any line is not JSON (uvicorn's included)
        decisions = [d for d in lines if d.get("uid") == "live-json-1"]
        if decisions or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all({"ts", "level", "logger", "msg"} <= set(d) for d in lines)
    assert any(d["logger"] == "uvicorn.error" for d in lines)  # uvicorn's own lines are JSON too
    [decision] = decisions
    assert decision["msg"] == "admission decision" and decision["outcome"] == "patched"
    assert decision["kind"] == "Pod" and decision["rules"] == ["KNS004"]


def test_the_plain_port_serves_metrics_and_nothing_else(server: Served, metrics_port: int) -> None:
    base = f"http://127.0.0.1:{metrics_port}"
    metrics = httpx.get(f"{base}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "knscale_webhook_certificate_expiry_timestamp_seconds" in metrics.text
    assert 'knscale_build_info{component="webhook"' in metrics.text
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    for path in ("/mutate", "/validate", "/noop", "/readyz"):
        assert httpx.get(f"{base}{path}", timeout=10).status_code == 404
        assert httpx.post(f"{base}{path}", json={}, timeout=10).status_code == 405


def test_the_tls_port_answers_no_plain_http(server: Served) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.settimeout(10)
        reply = b""
        try:
            while chunk := raw.recv(4096):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert b"knscale_" not in reply and not reply.startswith(b"HTTP/1.1 200")
