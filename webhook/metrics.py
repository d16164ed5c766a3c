"""Prometheus metrics of the admission endpoints, on a registry owned by one app.

A per-app `CollectorRegistry` (not the process-global one) keeps apps built in tests, or two
servers in one process, from sharing or colliding on series. Label children are created once
up front and bound per endpoint (`WebhookMetrics.endpoint`), so the hot path does no label
lookups: one dict lookup by outcome, one counter increment, one histogram observation.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ENDPOINTS = ("mutate", "validate", "noop")
# allowed: no change; patched: allowed with a patch; denied: allowed=false;
# invalid: HTTP 4xx (not an AdmissionReview, too large, wrong content type); error: internal error.
OUTCOMES = ("allowed", "patched", "denied", "invalid", "error")

# Admission must answer within timeoutSeconds (≤ 5 s in our registration); the interesting
# range is sub-millisecond to tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class EndpointMetrics:
    """The pre-bound series of one endpoint."""

    __slots__ = ("_latency", "_requests", "cache_hit", "cache_miss", "name")

    def __init__(
        self, name: str, requests: dict[str, Counter], latency: Histogram, cache: dict[str, Counter]
    ) -> None:
        self.name = name
        self._requests = requests
        self._latency = latency
        self.cache_hit = cache["hit"]
        self.cache_miss = cache["miss"]

    def observe(self, outcome: str, seconds: float) -> None:
        self._requests[outcome].inc()
        self._latency.observe(seconds)


class WebhookMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        requests = Counter(
            "knscale_webhook_requests",
            "Admission requests by endpoint and outcome.",
            ("endpoint", "outcome"),
            registry=self.registry,
        )
        latency = Histogram(
            "knscale_webhook_request_duration_seconds",
            "Time in the admission handler, from reading the body to the built response, by endpoint.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        cache = Counter(
            "knscale_webhook_decision_cache",
            "Admission reviews answered from the decision cache (hit) or decided afresh (miss).",
            ("endpoint", "result"),
            registry=self.registry,
        )
        self._endpoints = {
            e: EndpointMetrics(
                e,
                {o: requests.labels(e, o) for o in OUTCOMES},
                latency.labels(e),
                {r: cache.labels(e, r) for r in ("hit", "miss")},
            )
            for e in ENDPOINTS
        }

    def endpoint(self, name: str) -> EndpointMetrics:
        """The series of one endpoint, to keep and call per request."""
        return self._endpoints[name]

    def observe(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._endpoints[endpoint].observe(outcome, seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
