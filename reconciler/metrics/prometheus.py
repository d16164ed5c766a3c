"""A Prometheus HTTP API instant query per revision (``GET /api/v1/query``).

For scale from zero, plain Deployments, and workloads whose requests are counted at the
ingress. The query must yield exactly one sample: a scalar, or a vector of one series
(aggregate with ``sum(...)``). Errors, an empty result, several series, NaN/±Inf or a negative
value all make the collection *missing* — never a guess. An empty vector usually means "no
series yet"; write ``... or vector(0)`` if absence should mean zero.

The template substitutes ``${namespace}`` and ``${name}`` (``string.Template``, so PromQL's own
braces need no escaping); both come from ``RevisionKey``, which only admits DNS-1123 names, so
they cannot inject PromQL.
"""

from __future__ import annotations

import asyncio
import json
import math
from string import Template
from typing import Any, Literal

import httpx

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import Collection, CollectTarget, check_value, missing

MAX_RESPONSE_BYTES = 1 << 20
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class QueryError(Exception):
    """The query produced no usable value."""


def parse_query_response(payload: Any) -> float:
    """The single value of an instant-query response (``QueryError`` says why there is none)."""
    if not isinstance(payload, dict):
        raise QueryError("response is not a JSON object")
    if payload.get("status") != "success":
        kind = payload.get("errorType", "unknown")
        raise QueryError(f"query failed ({kind}): {payload.get('error', 'no error message')}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise QueryError("response has no data object")
    rtype, result = data.get("resultType"), data.get("result")
    if rtype == "scalar":
        sample = result
    elif rtype == "vector":
        if not isinstance(result, list):
            raise QueryError("vector result is not a list")
        if not result:
            raise QueryError("empty result (no series matched; use `or vector(0)` if that means zero)")
        if len(result) > 1:
            raise QueryError(f"{len(result)} series returned; aggregate to one with sum(...)")
        series = result[0]
        sample = series.get("value") if isinstance(series, dict) else None
    else:
        raise QueryError(f"unsupported result type {rtype!r}; use an instant vector or scalar query")
    if not (isinstance(sample, list) and len(sample) == 2 and isinstance(sample[1], str)):
        raise QueryError("malformed sample")
    try:
        value = float(sample[1])
    except ValueError:
        raise QueryError(f"sample value {sample[1]!r} is not a number") from None
    problem = check_value("value", value)
    if problem:
        raise QueryError(problem)
    return value


class PrometheusCollector:
    """One instant query per revision; the value is recorded as the revision-wide ``metric`` total.

    Owns an ``httpx.AsyncClient`` unless one is passed (e.g. with TLS or auth configured):
    use one instance from one event loop.
    """

    name = "prometheus"

    def __init__(
        self,
        base_url: str,
        query_template: str,
        *,
        metric: Literal["concurrency", "rps"] = "rps",
        timeout: float = 3.0,
        attempts: int = 2,
        backoff: float = 0.2,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be ≥ 1")
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Prometheus URL {base_url!r} must be http(s)://host[:port][/prefix]")
        self._endpoint = str(url).rstrip("/") + "/api/v1/query"
        self._template = Template(query_template)
        self._metric = metric
        self._attempts = attempts
        self._backoff = backoff
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def query_for(self, target: CollectTarget) -> str:
        if target.query is not None:
            return target.query
        return self._template.safe_substitute(namespace=target.key.namespace, name=target.key.name)

    async def _get(self, query: str, now: float) -> Any:
        params = {"query": query, "time": f"{now:.3f}"}
        async with self._client.stream("GET", self._endpoint, params=params) as resp:
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise QueryError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            status = resp.status_code
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if status in _RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {status}")
        if status != 200 and not isinstance(payload, dict):
            raise QueryError(f"HTTP {status}")
        return payload

    async def query(self, query: str, now: float) -> float:
        last = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff * attempt)
            try:
                return parse_query_response(await self._get(query, now))
            except _Retryable as exc:
                last = str(exc)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"connection failed: {type(exc).__name__}"
            except httpx.HTTPError as exc:
                raise QueryError(f"request failed: {type(exc).__name__}: {exc}") from None
        raise QueryError(f"{last} after {self._attempts} attempt(s)")

    async def collect(self, target: CollectTarget, now: float) -> Collection:
        if not math.isfinite(now):
            return missing(target.key, self.name, "invalid evaluation time")
        try:
            value = await self.query(self.query_for(target), now)
        except QueryError as exc:
            return missing(target.key, self.name, f"Prometheus {self._endpoint}: {exc}")
        stat = StatTotals(concurrency=value) if self._metric == "concurrency" else StatTotals(rps=value)
        return Collection(key=target.key, status="ok", stat=stat, source=self.name)


class _Retryable(Exception):
    pass
