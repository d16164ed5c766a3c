"""What a connection may cost before it is a request (issue 16): every accepted socket counts in
the cap from accept on, a socket that never finishes TLS is dropped after the handshake deadline,
and a request head larger than the limit gets 431. Real sockets on loopback, real TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import uvloop
from helpers.serving import closed_within, free_port, serving
from uvicorn.server import ServerState

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app
from webhook.connections import MAX_REQUEST_HEAD_BYTES, GatedServer, gated_loop_factory
from webhook.server import DeadlineHttpToolsProtocol

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "tls.crt", d / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost", "-days", "1"),
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


class _Echo(asyncio.Protocol):
    """Stands in for uvicorn's protocol: it shares a `connections` set as uvicorn's does."""

    connections: set[_Echo] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"echo:" + data)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)


def _client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_idle_sockets_count_in_the_cap_and_are_dropped_after_the_handshake_deadline(
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    factory = gated_loop_factory(uvloop.new_event_loop, limit=2, handshake_timeout=0.5)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, host="127.0.0.1", port=0, ssl=server_ctx, backlog=16)
        assert isinstance(server, GatedServer)
        port = server.sockets[0].getsockname()[1]
        # Two sockets that never start TLS fill the cap of two.
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert server.accepted() == 2
        # A third is refused at once, before any handshake work.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_within(reader, 2) == b""
        writer.close()
        assert server.refused == 1
        # The idle ones are dropped at the handshake deadline (not asyncio's 60 s) ...
        for r, w in idle:
            assert await closed_within(r, 3) == b""
            w.close()
        assert server.failed_handshakes == 2 and server.handshaking == 0
        # ... and a real client is served again, and counted while its connection is open.
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=_client_context())
        w.write(b"hi")
        assert await asyncio.wait_for(r.readexactly(7), 3) == b"echo:hi"
        assert server.accepted() == 1
        w.close()
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
    assert len(factory.servers) == 1  # type: ignore[attr-defined]


def test_a_plain_listener_is_left_to_the_loop() -> None:
    factory = gated_loop_factory(uvloop.new_event_loop, limit=2, handshake_timeout=0.5)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Echo, host="127.0.0.1", port=0)
        assert not isinstance(server, GatedServer)
        server.close()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def test_uvicorns_protocol_shares_the_open_connection_set() -> None:
    """The cap counts uvicorn's open connections through the protocol's `connections`."""
    config = uvicorn.Config(create_app(KnscaleConfig()), http=DeadlineHttpToolsProtocol, lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.new_event_loop()
    try:
        protocol = DeadlineHttpToolsProtocol(config=config, server_state=state, app_state={}, _loop=loop)
        assert protocol.connections is state.connections
    finally:
        loop.close()


def test_a_request_head_over_the_limit_gets_431() -> None:
    async def main() -> None:
        port = free_port()
        async with serving(port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # Just over the limit, in one write, and no end of head: the server reads it all, so
            # its close is a clean FIN after the 431 (unread bytes would turn it into a reset).
            head = b"POST /mutate HTTP/1.1\r\nHost: x\r\nX-Filler: "
            writer.write(head + b"a" * (MAX_REQUEST_HEAD_BYTES + 1024 - len(head)))
            await writer.drain()
            reply = await closed_within(reader, 5)
            assert reply.startswith(b"HTTP/1.1 431 ")
            writer.close()
            # A normal head on a new connection is still served.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"b" * 2000 + b"\r\n\r\n")
            first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
            assert first.startswith(b"HTTP/1.1 200")
            writer.close()

    asyncio.run(main())
