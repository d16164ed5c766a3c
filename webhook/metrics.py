"""Prometheus metrics of the admission endpoints, on a registry owned by one app.

A per-app `CollectorRegistry` (not the process-global one) keeps apps built in tests, or two
servers in one process, from sharing or colliding on series. Label children are created once
up front and bound per endpoint (`WebhookMetrics.endpoint`), so the hot path does no label
lookups: one dict lookup by outcome, one counter increment, one histogram observation.

Every label value comes from a set fixed by the code: endpoints, outcomes, cache results, the
rule ids of the rule table (`knscale_webhook_denials_total`, created on first use since most of
the ~100 rules never deny anything), and the process's own version (`knscale_build_info`).
The process collectors (`process_*`, `python_*`) are prometheus_client's, on this registry.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from translator.core.rule_ids import RuleId

ENDPOINTS = ("mutate", "validate", "noop")
# allowed: no change; patched: allowed with a patch; denied: allowed=false;
# invalid: HTTP 4xx (not an AdmissionReview, too large, wrong content type); error: internal error.
OUTCOMES = ("allowed", "patched", "denied", "invalid", "error")

# Admission must answer within timeoutSeconds (≤ 5 s in our registration); the interesting
# range is sub-millisecond to tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
KNOWN_RULES = frozenset(r.value for r in RuleId)


def knscale_version() -> str:
    """The installed distribution's version ("unknown" when run from a bare source tree)."""
    try:
        return metadata.version("knscale")
    except metadata.PackageNotFoundError:
        return "unknown"


def add_process_metrics(registry: CollectorRegistry, component: str) -> None:
    """`knscale_build_info{component,version,python} 1` and the process and platform collectors.

    A copy of this lives in reconciler.runtime.exporter: webhook and reconciler never import each
    other, and the series must be the same on both so one dashboard query covers both."""
    info = Gauge(
        "knscale_build_info",
        "Always 1: the knscale version and Python version of this process.",
        ("component", "version", "python"),
        registry=registry,
    )
    info.labels(component, knscale_version(), platform.python_version()).set(1)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


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
        self._denials = Counter(
            "knscale_webhook_denials",
            "Denied admission reviews by endpoint and by each rule id among the errors that denied them.",
            ("endpoint", "rule"),
            registry=self.registry,
        )
        add_process_metrics(self.registry, "webhook")
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

    def denied(self, endpoint: str, rules: tuple[str, ...]) -> None:
        for rule in rules:
            if rule in KNOWN_RULES:  # never a label value the caller chose
                self._denials.labels(endpoint, rule).inc()

    def track_certificate(self, not_after: Callable[[], float | None]) -> None:
        """Export the serving certificate's expiry, read at each scrape (it changes on rotation;
        NaN before one is loaded). Only servers with a certificate have the series: an app built
        without one (tests, benchmarks) would otherwise report an expiry of 1970."""
        expiry = Gauge(
            "knscale_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, as a Unix time.",
            registry=self.registry,
        )
        expiry.set_function(lambda: _or_nan(not_after()))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
