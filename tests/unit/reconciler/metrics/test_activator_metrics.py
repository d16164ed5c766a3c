"""The activator's per-revision demand: parsed from its Prometheus exposition (the OpenTelemetry
exporter's names in knative.dev/serving v0.50.0), summed over activators, combined with queue-proxy's
collection (pure), and the activator pods found in knative-serving."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kubeapi.testing import pod
from reconciler.kpa.windows import StatTotals
from reconciler.metrics.activator import (
    ActivatorDemand,
    ActivatorParseError,
    ActivatorScraper,
    parse_activator_metrics,
)
from reconciler.metrics.base import Collection, RevisionKey
from reconciler.podautoscaler.demand import activator_addresses, waiting_at_zero, with_activator

KEY = RevisionKey("default", "hello-00001")
SCOPE = 'otel_scope_name="knative.dev/serving/pkg/activator",otel_scope_version=""'
EXPOSITION = f"""# HELP kn_revision_request_concurrency Concurrent requests that are routed to Activator
# TYPE kn_revision_request_concurrency gauge
kn_revision_request_concurrency{{k8s_namespace_name="default",kn_revision_name="hello-00001",{SCOPE}}} 1.5
# HELP kn_revision_request_queued Number of requests currently queued in the activator waiting for capacity
# TYPE kn_revision_request_queued gauge
kn_revision_request_queued{{k8s_namespace_name="default",kn_revision_name="hello-00001",{SCOPE}}} 3
kn_revision_request_queued{{k8s_namespace_name="other",kn_revision_name="web-00002",{SCOPE}}} 0
# HELP kn_revision_request_active Number of requests currently being proxied by the activator
# TYPE kn_revision_request_active gauge
kn_revision_request_active{{k8s_namespace_name="default",kn_revision_name="hello-00001",{SCOPE}}} 7
# TYPE go_goroutines gauge
go_goroutines 42
"""


def test_the_two_families_are_read_per_revision_and_nothing_else() -> None:
    got = parse_activator_metrics(EXPOSITION)
    assert got == {
        KEY: ActivatorDemand(queued=3.0, concurrency=1.5),
        RevisionKey("other", "web-00002"): ActivatorDemand(queued=0.0, concurrency=0.0),
    }


def test_series_without_revision_labels_are_skipped_and_duplicates_summed() -> None:
    text = (
        "# TYPE kn_revision_request_queued gauge\n"
        "kn_revision_request_queued 5\n"
        'kn_revision_request_queued{k8s_namespace_name="default",kn_revision_name="hello-00001",a="1"} 1\n'
        'kn_revision_request_queued{k8s_namespace_name="default",kn_revision_name="hello-00001",a="2"} 2\n'
        'kn_revision_request_queued{k8s_namespace_name="Bad_NS",kn_revision_name="x"} 9\n'
    )
    assert parse_activator_metrics(text) == {KEY: ActivatorDemand(queued=3.0)}


@pytest.mark.parametrize(
    "text",
    [
        'kn_revision_request_queued{k8s_namespace_name="default",kn_revision_name="hello-00001"} -1\n',
        'kn_revision_request_queued{k8s_namespace_name="default",kn_revision_name="hello-00001"} NaN\n',
        "kn_revision_request_queued{unterminated 3\n",
        "\x00\xff not an exposition {{{\n",
    ],
)
def test_an_impossible_value_or_garbage_is_refused_whole(text: str) -> None:
    with pytest.raises(ActivatorParseError):
        parse_activator_metrics(text)


def test_activators_are_summed_and_one_failing_does_not_hide_the_others() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "10.0.0.3":
            return httpx.Response(503, text="overloaded")
        if host == "10.0.0.4":
            return httpx.Response(200, text="kn_revision_request_queued{oops\n")
        return httpx.Response(200, text=EXPOSITION)

    addresses = ["10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.3:9090", "10.0.0.4:9090", "10.0.0.1:9090"]
    scraper = ActivatorScraper(lambda: addresses, transport=httpx.MockTransport(answer))

    async def go() -> None:
        reading = await scraper.scrape()
        assert reading.ok and reading.answered == 2  # the duplicate address is scraped once
        assert reading.of(KEY) == ActivatorDemand(queued=6.0, concurrency=3.0)
        assert len(reading.problems) == 2 and "HTTP 503" in reading.problems[0]
        assert reading.of(RevisionKey("default", "unknown")) == ActivatorDemand()
        await scraper.aclose()

    asyncio.run(go())


def test_an_oversized_body_or_no_activator_is_not_a_reading() -> None:
    big = "# " + "x" * (9 * 1024 * 1024) + "\n"
    scraper = ActivatorScraper(
        lambda: ["a:1"], transport=httpx.MockTransport(lambda _r: httpx.Response(200, text=big))
    )
    nobody = ActivatorScraper(lambda: [])

    async def go() -> None:
        reading = await scraper.scrape()
        assert not reading.ok and "body over" in reading.problems[0]
        assert not (await nobody.scrape()).ok
        await scraper.aclose()
        await nobody.aclose()

    asyncio.run(go())


def test_waiting_requests_are_added_to_queue_proxy_and_are_the_demand_at_zero() -> None:
    ok = Collection(KEY, "ok", StatTotals(concurrency=4.0, rps=10.0), source="queue-proxy")
    demand = ActivatorDemand(queued=3.0, concurrency=9.0)
    both = with_activator(KEY, ok, demand, unlimited=False, metric="concurrency")
    assert both is not None and both.stat == StatTotals(concurrency=7.0, rps=10.0)
    empty = Collection(KEY, "empty", source="queue-proxy")
    at_zero = with_activator(KEY, empty, demand, unlimited=False, metric="concurrency")
    assert (
        at_zero is not None
        and at_zero.status == "ok"
        and at_zero.stat == StatTotals(concurrency=3.0, rps=3.0)
    )
    idle = with_activator(KEY, empty, ActivatorDemand(), unlimited=False, metric="concurrency")
    assert idle is not None and idle.status == "ok" and idle.stat == StatTotals()  # measured: nobody waits
    failed = Collection(KEY, "missing", reason="timeout")
    assert with_activator(KEY, failed, demand, unlimited=False, metric="concurrency") is failed  # hold
    assert with_activator(KEY, ok, None, unlimited=False, metric="concurrency") is ok  # no activator answered
    # TBC -1: the activator is always in the path and is the only source (concurrency only)
    always = with_activator(KEY, None, demand, unlimited=True, metric="concurrency")
    assert always is not None and always.stat == StatTotals(concurrency=9.0)
    assert with_activator(KEY, None, demand, unlimited=True, metric="rps") is None


def test_waiting_at_zero_is_what_pokes_a_decision() -> None:
    assert waiting_at_zero(0, ActivatorDemand(queued=1.0), unlimited=False)
    assert not waiting_at_zero(1, ActivatorDemand(queued=1.0), unlimited=False)
    assert not waiting_at_zero(0, ActivatorDemand(concurrency=2.0), unlimited=False)
    assert waiting_at_zero(0, ActivatorDemand(concurrency=2.0), unlimited=True)
    assert not waiting_at_zero(0, None, unlimited=False)


def test_the_ready_activator_pods_of_knative_serving_are_the_targets() -> None:
    def activator(name: str, ip: str, ns: str = "knative-serving", ready: bool = True) -> dict[str, object]:
        p = pod(name, "activator", ip=ip)
        p["metadata"]["namespace"] = ns
        p["metadata"]["labels"] = {"app": "activator"}
        if not ready:
            p["status"]["conditions"][0]["status"] = "False"
        return p

    pods = [
        activator("activator-b", "10.0.0.9"),
        activator("activator-a", "fd00::7"),
        activator("activator-c", "10.0.0.8", ready=False),
        activator("activator-d", "10.0.0.6", ns="default"),
        pod("hello-1", "hello", ip="10.0.0.5"),
    ]
    assert activator_addresses(pods) == ["10.0.0.9:9090", "[fd00::7]:9090"]
