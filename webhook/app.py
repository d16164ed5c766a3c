"""The FastAPI app of `knscale serve`: admission endpoints, probes and metrics.

Endpoints
  POST /mutate    AdmissionReview (v1/v1beta1) → pod CREATE gets the model downloader injected
  POST /validate  AdmissionReview → the translator's findings (errors deny, warnings warn)
  POST /noop      fixed "allowed" reply, for benchmarks only: the baseline cost of the server
                  itself (TLS, HTTP, reading the body) that /mutate is compared against
  GET  /healthz   process is up
  GET  /readyz    `ready()` (e.g. certificates loaded) → 200, else 503
  GET  /metrics   Prometheus text: requests by endpoint and outcome, latency histogram, denials
                  by rule, build info, process metrics (webhook.metrics)

Each decision is one log line (logger `knscale.admission`, webhook.audit) and each reply names
its outcome, rules and injected model in `auditAnnotations`.

The configuration of a request and the handler that judges it are FastAPI dependencies
(`get_config`, `get_mutate_handler`, `get_validate_handler`), so tests swap them through
`app.dependency_overrides` rather than by patching module globals. They are `async def` on
purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request. And
there are only these: each dependency costs the hot path ~8 µs per request (measured in-process),
so what is fixed for the app's lifetime (the decision cache, the body read timeout, readiness)
is a `create_app` argument instead.

The hot path is lean on purpose: handlers take the raw `Request` (no pydantic body models), the
body is read once with a size bound and parsed once (orjson), replies are pre-serialised bytes,
the patch is built from the injection plan rather than by diffing copies, and FastAPI's own
per-request OpenTelemetry hook is switched off (see `_NO_TELEMETRY`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from translator.config.knscale import KnscaleConfig
from webhook import admission
from webhook.admission import Decision, Review, ReviewError
from webhook.audit import AdmissionSummary, log_decision, log_invalid, summarize
from webhook.decision_cache import DecisionCache
from webhook.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.metrics import EndpointMetrics, WebhookMetrics

log = logging.getLogger("knscale.webhook")

JSON = "application/json"
# The API server gives up after the webhook's timeoutSeconds (5 s as registered): a body still
# arriving after this is not one it sends, and waiting for it holds memory (slow-body attacks).
BODY_READ_TIMEOUT_S = 10.0
NOOP_BODY = orjson.dumps(
    {"apiVersion": admission.V1, "kind": "AdmissionReview", "response": {"uid": "", "allowed": True}}
)

# FastAPI >= 0.16x has native OpenTelemetry, on by default: every request first asks the global
# tracer, meter and logger providers whether they are configured (≈3 µs here), and with
# FASTAPI_OTEL_AUTO_CONFIGURE=true it would export request data (admission reviews carry pod
# specs) to an OTLP endpoint. The webhook has its own /metrics, so it is off; older FastAPI
# versions have no such option.
_NO_TELEMETRY: dict[str, Any] = (
    {
        "telemetry": {
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }
    }
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


Handler = Callable[[Review, KnscaleConfig], Decision]


async def get_config(request: Request) -> KnscaleConfig:
    """The configuration of this request: read once, so a reload mid-request changes nothing."""
    current: Callable[[], KnscaleConfig] = request.app.state.current_config
    return current()


async def get_mutate_handler() -> Handler:
    return admission.mutate


async def get_validate_handler() -> Handler:
    return admission.validate


ConfigDep = Annotated[KnscaleConfig, Depends(get_config)]


def _error(status_code: int, message: str) -> Response:
    return Response(orjson.dumps({"detail": message}), status_code=status_code, media_type=JSON)


async def read_bounded_body(request: Request, limit: int, timeout: float = BODY_READ_TIMEOUT_S) -> bytes:
    """The body, refusing more than `limit` bytes by header and by what actually arrives, and
    one that has not fully arrived within `timeout` seconds."""
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
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise ReviewError(413, f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ReviewError(408, f"request body not received within {timeout:g} s") from None
    except ClientDisconnect:
        raise ReviewError(400, "the client went away before sending the whole body") from None
    return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != JSON:
        shown = content_type[:80] or "none"
        raise ReviewError(415, f"Content-Type must be {JSON}, got {shown}")


def create_app(
    config: KnscaleConfig | Callable[[], KnscaleConfig],
    *,
    ready: Callable[[], bool] | None = None,
    decision_cache: bool = True,
    body_read_timeout: float = BODY_READ_TIMEOUT_S,
) -> FastAPI:
    """Build the webhook app. `config` is a configuration, or a callable returning the current one
    (knscale serve re-reads its mounted ConfigMap); `ready` backs /readyz (default: always ready);
    `decision_cache` answers byte-identical reviews (but for their uid) from memory
    (webhook/decision_cache.py); a request body must have arrived `body_read_timeout` seconds
    after the handler started reading it."""
    current: Callable[[], KnscaleConfig] = config if callable(config) else (lambda: config)
    metrics = WebhookMetrics()
    decisions = DecisionCache() if decision_cache else None
    app = FastAPI(title="knscale webhook", docs_url=None, redoc_url=None, openapi_url=None, **_NO_TELEMETRY)
    app.state.metrics = metrics
    app.state.decision_cache = decisions
    app.state.current_config = current

    async def admit(
        request: Request,
        endpoint: EndpointMetrics,
        handler: Handler,
        cfg: KnscaleConfig,
    ) -> Response:
        start = time.perf_counter()
        try:
            _check_content_type(request)
            body = await read_bounded_body(request, cfg.injection.max_request_bytes, body_read_timeout)
            key = decisions.key_for(cfg, body) if decisions is not None else None
            if decisions is not None and key is not None:
                cached = decisions.get(cfg, handler, *key, body)
                if cached is not None:  # the same review as an earlier one but for its uid
                    endpoint.cache_hit.inc()
                    elapsed = time.perf_counter() - start
                    endpoint.observe(cached.outcome, elapsed)
                    if isinstance(cached.info, AdmissionSummary):
                        metrics.denied(endpoint.name, cached.info.denied_by)
                        log_decision(endpoint.name, cached.uid_json[1:-1].decode(), cached.info, elapsed)
                    return Response(cached.body, media_type=JSON)
                endpoint.cache_miss.inc()
            review = admission.parse_review(body)
            decision = handler(review, cfg)
            summary = summarize(
                review.request, decision.outcome, decision.rules, decision.denied_by, decision.model
            )
            if decisions is not None and key is not None:
                decisions.put(cfg, handler, key, review.uid, decision.body, decision.outcome, summary)
        except ReviewError as exc:
            elapsed = time.perf_counter() - start
            endpoint.observe("invalid", elapsed)
            log_invalid(endpoint.name, exc.status_code, elapsed)
            return _error(exc.status_code, exc.message)
        except Exception:  # a bug outside the handlers' own guards: still an answer, never a 500
            log.exception("internal error on /%s", endpoint.name)
            endpoint.observe("error", time.perf_counter() - start)
            return _error(400, "the request could not be processed; see the webhook's log")
        elapsed = time.perf_counter() - start
        endpoint.observe(decision.outcome, elapsed)
        metrics.denied(endpoint.name, decision.denied_by)
        log_decision(endpoint.name, review.uid, summary, elapsed)
        return Response(decision.body, media_type=JSON)

    mutate_metrics = metrics.endpoint("mutate")
    validate_metrics = metrics.endpoint("validate")
    noop_metrics = metrics.endpoint("noop")

    @app.post("/mutate")
    async def mutate(
        request: Request,
        cfg: ConfigDep,
        handler: Annotated[Handler, Depends(get_mutate_handler)],
    ) -> Response:
        return await admit(request, mutate_metrics, handler, cfg)

    @app.post("/validate")
    async def validate(
        request: Request,
        cfg: ConfigDep,
        handler: Annotated[Handler, Depends(get_validate_handler)],
    ) -> Response:
        return await admit(request, validate_metrics, handler, cfg)

    @app.post("/noop")
    async def noop(request: Request, cfg: ConfigDep) -> Response:
        start = time.perf_counter()
        try:
            await read_bounded_body(request, cfg.injection.max_request_bytes, body_read_timeout)
        except ReviewError as exc:
            noop_metrics.observe("invalid", time.perf_counter() - start)
            return _error(exc.status_code, exc.message)
        noop_metrics.observe("allowed", time.perf_counter() - start)
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
