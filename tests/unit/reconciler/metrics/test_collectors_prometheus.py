"""The Prometheus collector against real Prometheus HTTP API responses.

The response bodies below were captured verbatim from Debian's Prometheus 2.42.0
(`prometheus --web.listen-address=127.0.0.1:…`, `GET /api/v1/query`) scraping a
prometheus-client exporter; a loopback `http.server` replays them with their real status
codes. tests/integration/test_prometheus_collector.py runs the same collector against the
live server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from reconciler.kpa.windows import StatTotals
from reconciler.metrics import Collection, CollectTarget, PrometheusCollector, RevisionKey
from reconciler.metrics.prometheus import QueryError, parse_query_response

# (HTTP status, body) exactly as Prometheus 2.42.0 answered.
VECTOR_ONE = (
    200,
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
    '"value":[1795432427.867,"42.5"]}]}}',
)
VECTOR_TWO = (
    200,
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"knscale_test_inflight",'
    '"instance":"127.0.0.1:19101","job":"exporter","namespace":"default","revision":"hello-00001"},'
    '"value":[1795432427.867,"42.5"]},{"metric":{"__name__":"knscale_test_inflight","instance":"127.0.0.1:19101",'
    '"job":"exporter","namespace":"default","revision":"hello-00002"},"value":[1795432427.867,"7"]}]}}',
)
VECTOR_EMPTY = (200, '{"status":"success","data":{"resultType":"vector","result":[]}}')
VECTOR_ZERO = (
    200,
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795432422,"0"]}]}}',
)
SCALAR = (200, '{"status":"success","data":{"resultType":"scalar","result":[1795432427.867,"49.5"]}}')
SCALAR_NAN = (200, '{"status":"success","data":{"resultType":"scalar","result":[1795432422,"NaN"]}}')
VECTOR_INF = (
    200,
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795432427.867,"+Inf"]}]}}',
)
VECTOR_NEGATIVE = (
    200,
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795432427.867,"-49.5"]}]}}',
)
MATRIX = (
    200,
    '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"knscale_test_inflight",'
    '"instance":"127.0.0.1:19101","job":"exporter","namespace":"default","revision":"hello-00002"},'
    '"values":[[1795432424.986,"7"],[1795432425.986,"7"],[1795432426.986,"7"]]}]}}',
)
STRING = (200, '{"status":"success","data":{"resultType":"string","result":[1795432422,"hello"]}}')
BAD_QUERY = (
    400,
    '{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:32: parse error: '
    'missing unit character in duration"}',
)
NOT_FOUND = (404, "404 page not found\n")

KEY = RevisionKey("default", "hello-00001")
NOW = 1_795_432_427.867


@pytest.mark.parametrize(
    ("response", "value"),
    [(VECTOR_ONE, 42.5), (VECTOR_ZERO, 0.0), (SCALAR, 49.5)],
)
def test_parse_usable_responses(response: tuple[int, str], value: float) -> None:
    assert parse_query_response(json.loads(response[1])) == value


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (VECTOR_TWO, "2 series returned; aggregate to one with sum"),
        (VECTOR_EMPTY, "empty result"),
        (SCALAR_NAN, "value is nan"),
        (VECTOR_INF, "value is inf"),
        (VECTOR_NEGATIVE, "value is negative"),
        (MATRIX, "unsupported result type 'matrix'"),
        (STRING, "unsupported result type 'string'"),
        (BAD_QUERY, "query failed \\(bad_data\\): invalid parameter"),
    ],
)
def test_parse_unusable_responses(response: tuple[int, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query_response(json.loads(response[1]))


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"status": "success"},
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 2]}]}},
    ],
)
def test_parse_malformed_payloads(payload: Any) -> None:
    with pytest.raises(QueryError):
        parse_query_response(payload)


class FakePrometheus:
    """Replays a queue of (status, body) answers on /api/v1/query and records the queries."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                outer.requests.append(parse_qs(url.query))
                status, body = outer.answers.pop(0) if url.path == "/prom/api/v1/query" else NOT_FOUND
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/prom"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    p = FakePrometheus()
    yield p
    p.close()


TEMPLATE = 'sum(rate(requests_total{namespace="${namespace}",revision="${name}"}[1m]))'


def run(collector: PrometheusCollector, target: CollectTarget) -> Collection:
    async def go() -> Collection:
        try:
            return await collector.collect(target, NOW)
        finally:
            await collector.aclose()

    return asyncio.run(go())


def test_collect_substitutes_the_revision_and_evaluates_at_now(prom: FakePrometheus) -> None:
    prom.answers.append(VECTOR_ONE)
    result = run(PrometheusCollector(prom.url, TEMPLATE, metric="rps"), CollectTarget(KEY))
    assert result.status == "ok" and result.stat == StatTotals(rps=42.5)
    assert prom.requests[0]["query"] == [
        'sum(rate(requests_total{namespace="default",revision="hello-00001"}[1m]))'
    ]
    assert prom.requests[0]["time"] == ["1795432427.867"]


def test_collect_concurrency_metric_and_per_target_query(prom: FakePrometheus) -> None:
    prom.answers.append(SCALAR)
    target = CollectTarget(KEY, query="scalar(sum(inflight))")
    result = run(PrometheusCollector(prom.url, TEMPLATE, metric="concurrency"), target)
    assert result.stat == StatTotals(concurrency=49.5)
    assert prom.requests[0]["query"] == ["scalar(sum(inflight))"]


def test_bad_query_is_missing_without_retry(prom: FakePrometheus) -> None:
    prom.answers += [BAD_QUERY, VECTOR_ONE]
    result = run(PrometheusCollector(prom.url, TEMPLATE, attempts=3, backoff=0), CollectTarget(KEY))
    assert result.status == "missing"
    assert "bad_data" in result.reason and "missing unit character" in result.reason
    assert len(prom.requests) == 1


def test_server_errors_are_retried(prom: FakePrometheus) -> None:
    prom.answers += [(503, "Service Unavailable"), VECTOR_ONE]
    result = run(PrometheusCollector(prom.url, TEMPLATE, attempts=2, backoff=0), CollectTarget(KEY))
    assert result.status == "ok" and len(prom.requests) == 2

    prom.answers += [(503, "x"), (502, "y")]
    result = run(PrometheusCollector(prom.url, TEMPLATE, attempts=2, backoff=0), CollectTarget(KEY))
    assert result.status == "missing" and "HTTP 502 after 2 attempt(s)" in result.reason


def test_empty_and_ambiguous_results_are_missing(prom: FakePrometheus) -> None:
    prom.answers += [VECTOR_EMPTY]
    result = run(PrometheusCollector(prom.url, TEMPLATE), CollectTarget(KEY))
    assert result.status == "missing" and "empty result" in result.reason
    prom.answers += [VECTOR_TWO]
    result = run(PrometheusCollector(prom.url, TEMPLATE), CollectTarget(KEY))
    assert result.status == "missing" and "2 series" in result.reason


def test_wrong_path_and_unreachable_server_are_missing(prom: FakePrometheus) -> None:
    result = run(PrometheusCollector(prom.url + "/wrong", TEMPLATE), CollectTarget(KEY))
    assert result.status == "missing" and "HTTP 404" in result.reason
    result = run(
        PrometheusCollector("http://127.0.0.1:1", TEMPLATE, attempts=2, backoff=0), CollectTarget(KEY)
    )
    assert result.status == "missing" and "connection failed" in result.reason


def test_constructor_validates_url_and_attempts() -> None:
    with pytest.raises(ValueError, match="must be http"):
        PrometheusCollector("file:///etc/passwd", TEMPLATE)
    with pytest.raises(ValueError, match="attempts"):
        PrometheusCollector("http://127.0.0.1:9090", TEMPLATE, attempts=0)


def test_revision_keys_cannot_inject_promql() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        RevisionKey("default", 'x"} or vector(1e9) #')
