"""knscale's ASGI app under a real uvicorn on loopback, plain HTTP, inside a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app
from webhook.server import DeadlineHttpToolsProtocol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(port: int, **app_options: Any) -> AsyncIterator[None]:
    """The webhook app with knscale's HTTP protocol (its head deadline and size limit)."""
    config = uvicorn.Config(
        create_app(KnscaleConfig(), **app_options),
        host="127.0.0.1",
        port=port,
        http=DeadlineHttpToolsProtocol,
        loop="asyncio",
        log_level="error",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails if it has not closed within `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)
