"""Choices on the /mutate hot path that are easy to lose silently: parser errors that still say
what is wrong, uvloop + httptools required (no silent fallback), FastAPI's telemetry hook off."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from translator.config.knscale import KnscaleConfig
from webhook import server
from webhook.admission import ReviewError, parse_review
from webhook.app import _NO_TELEMETRY, create_app


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (b'{"kind": "\xff"}', ["not UTF-8", "invalid byte at position 10"]),
        (b"{not json", ["not valid JSON", "line 1 column 2"]),
        (b'{"a": NaN}', ["not valid JSON", "line 1 column 7"]),
        (b'{"a": 1,}', ["not valid JSON", "line 1"]),
        (b"[" * 60_000, ["not valid JSON", "depth"]),
        (b"\xef\xbb\xbf{}", ["not valid JSON", "BOM"]),
    ],
)
def test_malformed_json_is_a_400_that_says_where(body: bytes, fragments: list[str]) -> None:
    with pytest.raises(ReviewError) as caught:
        parse_review(body)
    assert caught.value.status_code == 400
    for fragment in fragments:
        assert fragment in caught.value.message
    assert len(caught.value.message) < 300


def _server() -> server.WebhookServer:
    certificate = server.ReloadingCertificate(Path("unused.crt"), Path("unused.key"))
    return server.WebhookServer(
        lambda ready: create_app(KnscaleConfig(), ready=ready), certificate, server.ServerOptions()
    )


def test_uvicorn_is_told_to_use_httptools_and_uvloop() -> None:
    config = _server().server.config
    # httptools' protocol, with knscale's deadline on request heads (webhook.server).
    assert config.http is server.DeadlineHttpToolsProtocol and config.loop == "uvloop"
    assert issubclass(config.http, HttpToolsProtocol)
    assert config.limit_concurrency == server.MAX_CONCURRENCY


def test_a_missing_fast_path_is_a_clear_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def without_uvloop(name: str, package: str | None = None) -> ModuleType:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, package)

    monkeypatch.setattr(server.importlib, "import_module", without_uvloop)
    with pytest.raises(server.ServerSetupError) as caught:
        _server()
    message = str(caught.value)
    assert "uvloop" in message and "httptools" not in message.split(";")[0]
    assert "pip install" in message


def test_fastapi_native_telemetry_is_off() -> None:
    app = create_app(KnscaleConfig())
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        assert _NO_TELEMETRY == {}  # older FastAPI: no hook to switch off
        return
    assert app._native_telemetry.enabled() is False
    assert not any(app._telemetry.get(k) for k in ("tracing", "metrics", "logs", "auto_configure"))
