"""The FastAPI app of `knscale serve`: admission endpoints, probes and metrics.

Endpoints
  POST /mutate    AdmissionReview (v1/v1beta1) → pod CREATE gets the model downloader injected
  POST /validate  AdmissionReview → the translator's findings (errors deny, warnings warn)
  POST /noop      fixed "allowed" reply, for benchmarks only: the baseline cost of the server
                  itself (TLS, HTTP, reading the body) that /mutate is compared against
  GET  /healthz   process is up
  GET  /readyz    `ready()` (e.g. certificates loaded) → 200, else 503
  GET  /metrics   Prometheus text: requests by endpoint and outcome, latency histogram

The hot path is lean on purpose: handlers take the raw `Request` (no pydantic body models), the
body is read once with a size bound and parsed once, replies are pre-serialised bytes, and the
patch is built from the injection plan rather than by diffing copies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from translator.config import KnscaleConfig
from webhook import admission
from webhook.admission import Decision, Review, ReviewError
from webhook.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.metrics import WebhookMetrics

log = logging.getLogger("knscale.webhook")

JSON = "application/json"
NOOP_BODY = json.dumps(
    {"apiVersion": admission.V1, "kind": "AdmissionReview", "response": {"uid": "", "allowed": True}},
    separators=(",", ":"),
).encode()


def _error(status_code: int, message: str) -> Response:
    return Response(json.dumps({"detail": message}).encode(), status_code=status_code, media_type=JSON)


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes by header and by what actually arrives."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ReviewError(400, f"invalid Content-Length {declared[:40]!r}") from None
        if size > limit:
            raise ReviewError(413, f"request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ReviewError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != JSON:
        shown = content_type[:80] or "none"
        raise ReviewError(415, f"Content-Type must be {JSON}, got {shown}")


def create_app(config: KnscaleConfig, *, ready: Callable[[], bool] | None = None) -> FastAPI:
    """Build the webhook app for one configuration. `ready` backs /readyz (default: always ready)."""
    metrics = WebhookMetrics()
    limit = config.injection.max_request_bytes
    app = FastAPI(title="knscale webhook", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics
    app.state.config = config

    async def admit(
        request: Request, endpoint: str, handler: Callable[[Review, KnscaleConfig], Decision]
    ) -> Response:
        start = time.perf_counter()
        try:
            _check_content_type(request)
            review = admission.parse_review(await read_bounded_body(request, limit))
            decision = handler(review, config)
        except ReviewError as exc:
            metrics.observe(endpoint, "invalid", time.perf_counter() - start)
            return _error(exc.status_code, exc.message)
        except Exception:  # a bug outside the handlers' own guards: still an answer, never a 500
            log.exception("internal error on /%s", endpoint)
            metrics.observe(endpoint, "error", time.perf_counter() - start)
            return _error(400, "the request could not be processed; see the webhook's log")
        metrics.observe(endpoint, decision.outcome, time.perf_counter() - start)
        return Response(decision.body, media_type=JSON)

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        return await admit(request, "mutate", admission.mutate)

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        return await admit(request, "validate", admission.validate)

    @app.post("/noop")
    async def noop(request: Request) -> Response:
        start = time.perf_counter()
        try:
            await read_bounded_body(request, limit)
        except ReviewError as exc:
            metrics.observe("noop", "invalid", time.perf_counter() - start)
            return _error(exc.status_code, exc.message)
        metrics.observe("noop", "allowed", time.perf_counter() - start)
        return Response(NOOP_BODY, media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            is_ready = ready is None or bool(ready())
        except Exception:
            log.exception("readiness check failed")
            is_ready = False
        if is_ready:
            return Response(b'{"status":"ready"}', media_type=JSON)
        return Response(b'{"status":"not ready"}', status_code=503, media_type=JSON)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app
