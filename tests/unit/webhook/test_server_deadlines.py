"""knscale serve's bounds on slow clients: a request head must arrive within a deadline
(DeadlineHttpToolsProtocol), a body within the app's body read timeout (408), and a client that goes away
mid-body is an invalid request, not an internal error. A real uvicorn on loopback, plain HTTP
(TLS changes nothing here), with the deadlines shortened."""

from __future__ import annotations

import asyncio

import pytest
from helpers.serving import closed_within, free_port, serving

from webhook.server import DeadlineHttpToolsProtocol

pytestmark = pytest.mark.timeout(60)


def test_a_slow_request_head_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeadlineHttpToolsProtocol, "request_head_timeout", 0.5)

    async def main() -> None:
        port = free_port()
        async with serving(port):
            # Nothing at all after connecting.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await closed_within(reader, 5) == b""
            writer.close()
            # Headers a little at a time (slowloris), each write inside the old idle timeout.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /mutate HTTP/1.1\r\nHost: x\r\n")
            for _ in range(3):
                await asyncio.sleep(0.2)
                writer.write(b"X-Slow: 1\r\n")
            assert await closed_within(reader, 5) == b""
            writer.close()
            # A prompt request is answered, and the next head on the same connection has the
            # same deadline.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
            assert first.startswith(b"HTTP/1.1 200")
            assert await closed_within(reader, 5) == b""
            writer.close()

    asyncio.run(main())


def test_a_slow_body_gets_408_and_a_vanished_client_is_not_an_error() -> None:
    async def main() -> None:
        port = free_port()
        async with serving(port, body_read_timeout=0.5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            writer.close()
            # Half a body, then the client is gone: counted as invalid, not as an internal error.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            metrics = (await asyncio.wait_for(reader.read(), 5)).decode()
            writer.close()
            assert 'knscale_webhook_requests_total{endpoint="mutate",outcome="invalid"} 2.0' in metrics
            assert 'knscale_webhook_requests_total{endpoint="mutate",outcome="error"} 0.0' in metrics

    asyncio.run(main())
