"""The HTTP contract around the reviews: content type, size bound, malformed input, probes, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers.paths import ADMISSION_FIXTURES

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.findings import Finding, ObjectRef, Severity
from webhook import admission
from webhook.app import create_app

FIXTURES = ADMISSION_FIXTURES
JSON = {"Content-Type": "application/json"}
SMALL = KnscaleConfig(injection=InjectionConfig(max_request_bytes=64 * 1024))


def review_bytes() -> bytes:
    return (FIXTURES / "pod-create-v1.json").read_bytes()


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(SMALL))


@pytest.mark.parametrize("endpoint", ["/mutate", "/validate"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/yaml", "", "application/jsonx"])
def test_wrong_content_type_is_415(client: TestClient, endpoint: str, content_type: str) -> None:
    r = client.post(endpoint, content=review_bytes(), headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert "application/json" in r.json()["detail"]


def test_json_with_charset_is_accepted(client: TestClient) -> None:
    r = client.post(
        "/mutate", content=review_bytes(), headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty request body"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 60_000, "not valid JSON"),
        (
            json.dumps({"apiVersion": "v1", "kind": "AdmissionReview", "request": {"uid": "u"}}).encode(),
            "apiVersion",
        ),
        (json.dumps({"apiVersion": admission.V1, "kind": "Pod", "request": {"uid": "u"}}).encode(), "kind"),
        (json.dumps({"apiVersion": admission.V1, "kind": "AdmissionReview"}).encode(), "no request"),
        (
            json.dumps({"apiVersion": admission.V1, "kind": "AdmissionReview", "request": {}}).encode(),
            "no uid",
        ),
        (
            json.dumps(
                {
                    "apiVersion": admission.V1,
                    "kind": "AdmissionReview",
                    "request": {"uid": "u", "operation": "CREATE", "kind": {"group": "", "kind": "Pod"}},
                }
            ).encode(),
            "no object",
        ),
    ],
    ids=[
        "empty",
        "truncated",
        "binary",
        "array",
        "deep",
        "apiversion",
        "kind",
        "no-request",
        "no-uid",
        "no-object",
    ],
)
def test_malformed_review_is_400_with_a_message(client: TestClient, body: bytes, fragment: str) -> None:
    r = client.post("/mutate", content=body, headers=JSON)
    assert r.status_code == 400
    assert fragment in r.json()["detail"]


def test_body_over_the_limit_by_content_length_is_413(client: TestClient) -> None:
    r = client.post("/mutate", content=b" " * (64 * 1024 + 1), headers=JSON)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_body_over_the_limit_without_content_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 4096

    r = client.post("/validate", content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413


def asgi_post(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes]:
    """Drive the ASGI app directly, for headers an HTTP client would refuse to send."""

    async def run() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            chunk = pending.pop(0) if pending else b""
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": "/mutate",
            "raw_path": b"/mutate",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8443),
        }
        await app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    return asyncio.run(run())


def test_lying_content_length_is_caught_on_the_stream() -> None:
    status, body = asgi_post(create_app(SMALL), [(b"content-length", b"100")], [b" " * 40_000, b" " * 40_000])
    assert status == 413
    assert b"limit" in body


def test_invalid_content_length_is_400() -> None:
    status, body = asgi_post(create_app(SMALL), [(b"content-length", b"abc")], [b"{}"])
    assert status == 400
    assert b"Content-Length" in body


def test_default_limit_is_three_mebibytes() -> None:
    assert KnscaleConfig().injection.max_request_bytes == 3 * 1024 * 1024


def test_probes(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("ready", "status"), [(lambda: True, 200), (lambda: False, 503), (lambda: 1 / 0, 503)]
)
def test_readyz_follows_the_ready_callable(ready: Any, status: int) -> None:
    assert TestClient(create_app(SMALL, ready=ready)).get("/readyz").status_code == status


def test_noop_returns_the_fixed_allowed_review(client: TestClient) -> None:
    r = client.post("/noop", content=review_bytes(), headers=JSON)
    assert r.status_code == 200
    assert r.json() == {
        "apiVersion": admission.V1,
        "kind": "AdmissionReview",
        "response": {"uid": "", "allowed": True},
    }


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not found")


def test_metrics_count_requests_by_endpoint_and_outcome(client: TestClient) -> None:
    seed = review_bytes()
    client.post("/mutate", content=seed, headers=JSON)
    client.post("/mutate", content=seed, headers=JSON)
    client.post("/mutate", content=b"nope", headers=JSON)
    denied = json.loads(seed)
    denied["request"]["object"]["metadata"]["annotations"]["injectModelInitContainer"] = "perhaps"
    client.post("/mutate", content=json.dumps(denied), headers=JSON)
    client.post("/noop", content=b"{}", headers=JSON)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    total = "knscale_webhook_requests_total"
    assert metric(text, total, endpoint="mutate", outcome="patched") == 2
    assert metric(text, total, endpoint="mutate", outcome="invalid") == 1
    assert metric(text, total, endpoint="mutate", outcome="denied") == 1
    assert metric(text, total, endpoint="noop", outcome="allowed") == 1
    assert metric(text, total, endpoint="validate", outcome="allowed") == 0
    assert metric(text, "knscale_webhook_request_duration_seconds_count", endpoint="mutate") == 4


def test_each_app_has_its_own_registry() -> None:
    a, b = TestClient(create_app(SMALL)), TestClient(create_app(SMALL))
    a.post("/noop", content=b"{}", headers=JSON)
    assert (
        metric(b.get("/metrics").text, "knscale_webhook_requests_total", endpoint="noop", outcome="allowed")
        == 0
    )


def test_unknown_paths_and_methods_are_not_server_errors(client: TestClient) -> None:
    assert client.get("/mutate").status_code == 405
    assert client.post("/nowhere", content=b"{}", headers=JSON).status_code == 404


def _warning(i: int, length: int) -> Finding:
    return Finding(
        "KNS004", Severity.WARNING, ObjectRef("Pod", "p"), "metadata.annotations", f"k{i}", "v", "x" * length
    )


def test_warnings_stay_within_the_api_limits() -> None:
    review = admission.Review(admission.V1, "u", {})
    texts = [admission.warning_text(_warning(i, 300)) for i in range(100)] + ["ünïcode\nnewline"]
    body = json.loads(admission.build_response(review, allowed=True, warnings=texts))
    warnings = body["response"]["warnings"]
    assert all(len(w) <= 120 and w.isascii() and w.isprintable() for w in warnings)
    assert sum(len(w) for w in warnings) <= 4096
    assert warnings[-1].endswith("more warnings omitted")


def test_v1_never_has_patch_type_without_patch() -> None:
    review = admission.Review(admission.V1, "u", {})
    assert json.loads(admission.build_response(review, allowed=True, patch=""))["response"] == {
        "uid": "u",
        "allowed": True,
    }
