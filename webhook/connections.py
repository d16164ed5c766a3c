"""Bounds on what a connection may cost before it is a request: the TLS handshake and the head.

uvicorn hands the TLS layer to the event loop (`create_server(ssl=…)`), which gives a client 60 s
to finish its handshake and tells the HTTP protocol about the connection only afterwards — so a
socket that never starts TLS is neither timed out by knscale nor counted in uvicorn's
`limit_concurrency`. And httptools buffers a request head of any size.

Here, every accepted socket goes through `GatedServer` first: it is counted from accept to close
(handshaking sockets plus uvicorn's open connections), refused at once — before any handshake
work — beyond the cap, and upgraded with the loop's own `start_tls` under a short handshake
deadline. `HeadSizeLimit` (mixed into the HTTP protocol) answers 431 to a head larger than
MAX_REQUEST_HEAD_BYTES. The API server sends heads of a few hundred bytes and finishes a
handshake in milliseconds, so neither bound touches real traffic.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Sized
from typing import Any

log = logging.getLogger("knscale.server")

TLS_HANDSHAKE_TIMEOUT_S = 5.0
MAX_REQUEST_HEAD_BYTES = 32 * 1024
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain\r\nconnection: close\r\ncontent-length: 32\r\n\r\n"
    b"request header fields too large\n"
)


class HeadSizeLimit:
    """Mixin for uvicorn's httptools protocol: a request head may be at most `max_head_bytes`.

    Bytes are counted from the end of the previous request until httptools reports the head
    complete; past the limit the connection gets a 431 and is closed, so a head costs at most the
    limit plus one read of the transport.
    """

    max_head_bytes = MAX_REQUEST_HEAD_BYTES
    _head_bytes = 0
    _in_head = True
    transport: asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()  # type: ignore[misc]

    def on_response_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_response_complete()  # type: ignore[misc]


class GatedServer:
    """A TLS listener that counts, caps and times out every accepted socket (see the module doc).

    It accepts itself (`sock_accept`) and hands each socket it admits to the loop's own
    `connect_accepted_socket` with a handshake deadline, so the loop's native TLS stays in use.
    It offers what uvicorn uses of an `asyncio.Server`: `sockets`, `close`, `wait_closed`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        limit: int,
        handshake_timeout: float,
    ) -> None:
        self._loop = loop
        self._listener = listener
        self._context = context
        self.limit = limit
        self.handshake_timeout = handshake_timeout
        self.handshaking = 0
        self.refused = 0
        self.failed_handshakes = 0
        self._open: Sized = ()  # uvicorn's set of open HTTP connections, known from the first one
        self._factory = self._remembering(protocol_factory)
        self._upgrades: set[asyncio.Task[None]] = set()
        self._accepting = loop.create_task(self._accept_forever(), name="knscale-accept")

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._listener,)

    def accepted(self) -> int:
        """Sockets this listener holds: handshaking ones plus open HTTP connections."""
        return self.handshaking + len(self._open)

    def _remembering(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            protocol = factory()
            connections = getattr(protocol, "connections", None)
            if isinstance(connections, Sized):
                self._open = connections
            return protocol

        return make

    async def _accept_forever(self) -> None:
        while True:
            try:
                conn, _ = await self._loop.sock_accept(self._listener)
            except OSError as exc:  # EMFILE and the like: back off instead of spinning
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if self.accepted() >= self.limit:
                self.refused += 1
                conn.close()  # no handshake work for a socket beyond the cap
                continue
            self.handshaking += 1
            task = self._loop.create_task(self._upgrade(conn))
            self._upgrades.add(task)
            task.add_done_callback(self._upgrades.discard)

    async def _upgrade(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._context, ssl_handshake_timeout=self.handshake_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
            self.failed_handshakes += 1
            log.debug("TLS handshake failed: %s", exc)
            conn.close()
        finally:
            self.handshaking -= 1

    def close(self) -> None:
        self._accepting.cancel()
        for task in self._upgrades:
            task.cancel()
        self._listener.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(self._accepting, *self._upgrades, return_exceptions=True)

    def is_serving(self) -> bool:
        return not self._accepting.done()


def _listen(host: str | None, port: int, backlog: int) -> socket.socket:
    """The listening socket `loop.create_server(host=…, port=…)` would make (first address)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(backlog)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def gated_loop_factory(
    base: Callable[[], asyncio.AbstractEventLoop], limit: int, handshake_timeout: float
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory whose TLS listeners are `GatedServer`s.

    uvicorn calls `loop.create_server(factory, host=…, port=…, ssl=ctx, backlog=…)`; the loop
    returned here answers a TLS call with a `GatedServer`, so uvicorn itself is used unchanged.
    """

    def make() -> asyncio.AbstractEventLoop:
        loop = base()
        plain_create_server = loop.create_server

        async def create_server(protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
            context = kwargs.get("ssl")
            if context is None or args or "sock" in kwargs:
                return await plain_create_server(protocol_factory, *args, **kwargs)
            listener = _listen(kwargs.get("host"), int(kwargs.get("port") or 0), kwargs.get("backlog", 100))
            server = GatedServer(loop, listener, protocol_factory, context, limit, handshake_timeout)
            servers.append(server)
            return server

        loop.create_server = create_server  # type: ignore[method-assign]
        return loop

    servers: list[GatedServer] = []
    make.servers = servers  # type: ignore[attr-defined]
    return make
