"""webhook.metrics_http: the optional plain-HTTP port serves /metrics and /healthz and nothing else."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app
from webhook.metrics_http import MAX_CONCURRENT, PlainMetricsServer


@pytest.fixture
def plain() -> Iterator[PlainMetricsServer]:
    app = create_app(KnscaleConfig())
    server = PlainMetricsServer(app.state.metrics.render, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def _request(
    server: PlainMetricsServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_metrics_and_healthz_are_served(plain: PlainMetricsServer) -> None:
    status, body = _request(plain, "GET", "/metrics")
    assert status == 200
    assert b"knscale_webhook_requests_total" in body and b"knscale_build_info{" in body
    assert b"process_resident_memory_bytes" in body
    assert _request(plain, "GET", "/healthz")[0] == 200


@pytest.mark.parametrize("path", ["/mutate", "/validate", "/noop", "/readyz", "/", "/metrics/../mutate"])
def test_nothing_else_is_served_without_tls(plain: PlainMetricsServer, path: str) -> None:
    assert _request(plain, "GET", path)[0] == 404
    status, _ = _request(plain, "POST", path, b'{"apiVersion":"admission.k8s.io/v1"}')
    assert status == 405


def test_concurrent_requests_are_bounded(plain: PlainMetricsServer) -> None:
    # Connections that never send a request hold their slots; the next one is closed unanswered.
    idle = [socket.create_connection(("127.0.0.1", plain.port), timeout=10) for _ in range(MAX_CONCURRENT)]
    try:
        with socket.create_connection(("127.0.0.1", plain.port), timeout=10) as extra:
            extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(100) == b""
    finally:
        for s in idle:
            s.close()
    # Once they are gone the port answers again (their threads end when they see the close).
    for _ in range(50):
        try:
            if _request(plain, "GET", "/healthz")[0] == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            pass
    else:
        raise AssertionError("the port did not recover after the idle connections closed")
