"""`knscale serve --metrics-port`: /metrics (and /healthz) over plain HTTP, for in-cluster scrapers.

Off by default. Scraping the TLS port needs the webhook's CA in the scraper's configuration;
many Prometheus setups scrape pods by annotation over plain HTTP instead. This listener serves
exactly two read-only paths, `GET /metrics` and `GET /healthz`; every other path and method is
404/405, so no admission endpoint is ever reachable without TLS (the TLS port keeps /metrics).

A stdlib threading server on its own thread, apart from uvicorn's event loop: a slow scraper
cannot delay an admission. It is bounded like the TLS port, in proportion: a request must
arrive within 10 s, at most 16 requests are served at once (more are closed unanswered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from webhook.metrics import CONTENT_TYPE

REQUEST_TIMEOUT_S = 10.0
MAX_CONCURRENT = 16


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the bound: closed before any thread is made
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class PlainMetricsServer:
    """GET /metrics and /healthz on `host:port`, rendered by `render`, on a daemon thread."""

    def __init__(self, render: Callable[[], bytes], host: str, port: int) -> None:
        handler = _make_handler(render)
        self._server = _BoundedServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="metrics-plain",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(render: Callable[[], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "knscale-metrics"
        sys_version = ""
        timeout = REQUEST_TIMEOUT_S  # socket timeout: a request that never arrives is closed

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, render(), CONTENT_TYPE)
            elif path == "/healthz":
                self._reply(200, b'{"status":"ok"}', "application/json")
            else:
                self._reply(404, b"not found: this port serves only /metrics and /healthz\n")

        def do_HEAD(self) -> None:
            self._reply(405, b"")

        def _refuse(self) -> None:
            self._reply(405, b"method not allowed: this port serves only GET /metrics and /healthz\n")

        do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if code == 405:
                self.send_header("Allow", "GET")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds would drown the log

    return Handler
