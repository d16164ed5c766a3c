"""A fault-injecting reverse proxy in front of the e2e kube-apiserver.

Clients speak plain HTTP/1.1 to 127.0.0.1:<port> (``FaultProxy.write_kubeconfig`` writes a
kubeconfig pointing there, with no credentials); the proxy opens one TLS connection per request
to the real apiserver, verifies its serving cert against the cluster CA and authenticates with a
client certificate of its own. Each request is forwarded with ``Connection: close`` and the
answer piped back byte for byte (chunked watch streams included), so nothing is parsed but the
request head.

While ``enabled``, a seeded schedule (``FaultPlan``) decides per request, before anything is sent
upstream (so an injected error never hides a write the apiserver made):

- ``429``: Too Many Requests with a ``Retry-After`` header and ``details.retryAfterSeconds``,
  as the apiserver's priority and fairness answers it;
- ``500``: an InternalError Status;
- ``409`` (writes only): a Conflict Status (AlreadyExists for a POST), as a stale
  resourceVersion or a racing create gets;
- ``latency``: the request waits before it is forwarded;
- ``watch_cut``: a forwarded watch stream is cut after a few seconds, mid-stream.

Every fault is counted by kind in ``counts``; ``requests`` counts what was forwarded by verb.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STATUS_TEXT = {409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities per request (checked in this order) and the ranges the schedule draws from."""

    seed: int = 16
    p_429: float = 0.04
    p_500: float = 0.04
    p_409_write: float = 0.08
    p_latency: float = 0.10
    latency_s: tuple[float, float] = (0.2, 1.2)
    retry_after_s: int = 1
    watch_cut_s: tuple[float, float] = (1.0, 6.0)  # every watch is cut this long after it starts


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    head: bytes
    body: bytes

    @property
    def is_watch(self) -> bool:
        return self.method == "GET" and "watch=true" in self.target


def _status_body(code: int, reason: str, message: str, retry_after: int | None) -> bytes:
    status: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"injected by the e2e fault proxy: {message}",
        "reason": reason,
        "code": code,
    }
    if retry_after is not None:
        status["details"] = {"retryAfterSeconds": retry_after}
    return json.dumps(status).encode()


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        ca_file: Path,
        client_cert: Path,
        client_key: Path,
        plan: FaultPlan,
    ) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.enabled = False
        self.counts: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._rand = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context(cafile=str(ca_file))
        self._tls.load_cert_chain(str(client_cert), str(client_key))
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self.port = 0
        # Client sockets, kept until stop() aborts them (a dead client never drains its buffer),
        # and upstream sockets while in use. Touched only on the loop's thread.
        self._transports: set[asyncio.BaseTransport] = set()

    # -- lifecycle --

    def start(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20), self._loop
        )
        self._server = future.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Every socket still open (watches, a request in its latency) is aborted, and the
            # connections' tasks are cancelled and awaited before the loop goes.
            for _ in range(20):
                for transport in list(self._transports):
                    transport.abort()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks and not self._transports:
                    break
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0.05)  # aborted transports close on the next loop iteration

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig that reaches the apiserver only through this proxy (plain HTTP, no user)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "faulty", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "through-proxy", "user": {}}],
            "contexts": [{"name": "faulty", "context": {"cluster": "faulty", "user": "through-proxy"}}],
            "current-context": "faulty",
        }
        path.write_text(json.dumps(config, indent=1))
        return path

    # -- the schedule --

    def _draw(self, req: _Request) -> tuple[str | None, float, float | None]:
        """(fault to answer with or None, latency before forwarding, watch cut after)."""
        plan = self.plan
        with self._lock:
            if not self.enabled:
                return None, 0.0, None
            r = self._rand.random()
            fault: str | None = None
            if r < plan.p_429:
                fault = "429"
            elif r < plan.p_429 + plan.p_500:
                fault = "500"
            elif req.method in WRITE_METHODS and r < plan.p_429 + plan.p_500 + plan.p_409_write:
                fault = "409"
            latency = 0.0
            if fault is None and self._rand.random() < plan.p_latency:
                latency = self._rand.uniform(*plan.latency_s)
                self.counts["latency"] += 1
            cut = self._rand.uniform(*plan.watch_cut_s) if req.is_watch and fault is None else None
            if fault is not None:
                self.counts[fault] += 1
            return fault, latency, cut

    # -- serving --

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        try:
            req = await self._read_request(reader)
            if req is None:
                return
            fault, latency, cut = self._draw(req)
            if fault is not None:
                await self._answer_fault(writer, req, fault)
                return
            if latency:
                await asyncio.sleep(latency)
            with self._lock:
                self.requests["watch" if req.is_watch else req.method] += 1
            await self._forward(req, writer, cut)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            writer.close()  # flushes what is buffered; stop() aborts what never flushes

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed an idle connection
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: list[str] = []
        length = 0
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value.strip())
            if lowered in {"connection", "keep-alive", "proxy-connection"}:
                continue
            headers.append(line)
        body = await reader.readexactly(length) if length else b""
        upstream_head = "\r\n".join([lines[0], *headers, "Connection: close", "", ""]).encode("latin-1")
        return _Request(method, target, upstream_head, body)

    async def _answer_fault(self, writer: asyncio.StreamWriter, req: _Request, fault: str) -> None:
        code = int(fault)
        retry_after = self.plan.retry_after_s if code == 429 else None
        if code == 429:
            body = _status_body(code, "TooManyRequests", "too many requests", retry_after)
        elif code == 500:
            body = _status_body(code, "InternalError", "internal error", None)
        else:
            reason = "AlreadyExists" if req.method == "POST" else "Conflict"
            body = _status_body(code, reason, "the object has been modified", None)
        extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
        head = (
            f"HTTP/1.1 {code} {_STATUS_TEXT[code]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()

    async def _forward(self, req: _Request, writer: asyncio.StreamWriter, cut: float | None) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port, ssl=self._tls, server_hostname="127.0.0.1"
        )
        self._transports.add(up_writer.transport)
        try:
            up_writer.write(req.head + req.body)
            await up_writer.drain()
            pipe = self._pipe(up_reader, writer)
            if cut is None:
                await pipe
                return
            try:
                await asyncio.wait_for(pipe, timeout=cut)
            except TimeoutError:
                with self._lock:
                    self.counts["watch_cut"] += 1
        finally:
            # Aborted, not closed: the answer is fully read (or cut), and a TLS close would wait
            # for the apiserver's close_notify.
            up_writer.transport.abort()
            self._transports.discard(up_writer.transport)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
