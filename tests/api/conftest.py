"""The FastAPI app under test, once for the API suite."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    """One app per test module, with default settings (a module may define its own)."""
    return TestClient(create_app(KnscaleConfig()))


@pytest.fixture(autouse=True)
def _fresh_decisions(client: TestClient) -> None:
    """Each test judges its own review: no reply may come from an earlier test's cache."""
    client.app.state.decision_cache.clear()  # type: ignore[attr-defined]


@pytest.fixture
def fresh_app() -> FastAPI:
    """An app of its own, for a test that overrides its dependencies."""
    return create_app(KnscaleConfig())
