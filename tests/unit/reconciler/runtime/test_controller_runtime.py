"""Informers (list+watch, 410 → relist, backoff), the work queue, events and /metrics."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from kubeapi.errors import ApiError
from kubeapi.resources import DEPLOYMENTS, EVENTS
from kubeapi.testing import FakeKube, workload
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.events import EventRecorder
from reconciler.runtime.exporter import MetricsServer, ReconcilerMetrics
from reconciler.runtime.informer import Backoff, Informer
from reconciler.runtime.workqueue import WorkQueue
from reconciler.runtime.writes import InstrumentedApi


def recording_informer(fake: FakeKube, clock: FakeClock) -> tuple[Informer, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def handler(etype: str, obj: dict[str, Any]) -> None:
        seen.append((etype, obj["metadata"]["name"]))

    return Informer(fake, DEPLOYMENTS, None, clock, handler=handler, rand=lambda: 0.0), seen


def test_list_then_watch_from_the_list_version() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(DEPLOYMENTS, workload("a"))
    inf, seen = recording_informer(fake, clock)
    inf.step()
    assert seen == [("ADDED", "a")] and inf.has_synced()
    listed_rv = inf.resource_version

    fake.seed(DEPLOYMENTS, workload("b"))
    obj = fake.obj(DEPLOYMENTS, "default", "a")
    obj["spec"]["replicas"] = 3
    fake.replace(DEPLOYMENTS, "default", "a", obj)
    fake.delete(DEPLOYMENTS, "default", "b")
    inf.step()
    assert seen[1:] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert fake.calls[-1].verb == "watch" and fake.calls[-1].body == listed_rv
    assert inf.get("default", "a")["spec"]["replicas"] == 3 and inf.get("default", "b") is None
    assert inf.resource_version == str(fake.resource_version)


def test_410_gone_relists_and_loses_nothing() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(DEPLOYMENTS, workload("a"))
    fake.seed(DEPLOYMENTS, workload("b"))
    inf, seen = recording_informer(fake, clock)
    inf.step()
    # While we were away: b deleted, c created, a changed — and the history compacted.
    fake.delete(DEPLOYMENTS, "default", "b")
    fake.seed(DEPLOYMENTS, workload("c"))
    obj = fake.obj(DEPLOYMENTS, "default", "a")
    obj["spec"]["replicas"] = 5
    fake.replace(DEPLOYMENTS, "default", "a", obj)
    fake.compact()
    assert inf.step() == 0.0  # the watch got 410: relist right away
    inf.step()
    assert inf.relists == 2
    assert sorted(seen[2:]) == [("ADDED", "c"), ("DELETED", "b"), ("MODIFIED", "a")]
    assert sorted(o["metadata"]["name"] for o in inf.items()) == ["a", "c"]


def test_api_errors_back_off_exponentially_and_reset_on_success() -> None:
    fake, clock = FakeKube(), FakeClock()
    inf, _ = recording_informer(fake, clock)
    fake.fail_next("list", DEPLOYMENTS, status=500, times=4)
    delays = [inf.step() for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert inf.step() == 0.0 and inf.has_synced()
    assert inf.backoff.failures == 0
    assert Backoff(failures=20).next_delay(lambda: 0.0) == 30.0  # capped


def test_watch_errors_back_off_and_keep_the_version() -> None:
    fake, clock = FakeKube(), FakeClock()
    inf, _ = recording_informer(fake, clock)
    inf.step()
    rv = inf.resource_version
    fake.fail_next("watch", DEPLOYMENTS, status=429, reason="TooManyRequests", times=2)
    assert [inf.step(), inf.step()] == [0.5, 1.0]
    assert inf.resource_version == rv and inf.relists == 1  # a plain error is not a reason to relist


def test_a_crd_that_is_not_installed_counts_as_synced_and_empty() -> None:
    fake, clock = FakeKube(), FakeClock()
    inf, _ = recording_informer(fake, clock)
    fake.fail_next("list", DEPLOYMENTS, status=404, reason="NotFound")
    assert inf.step() == inf.absent_recheck
    assert inf.has_synced() and inf.absent and inf.items() == []
    fake.seed(DEPLOYMENTS, workload("a"))  # installed later
    assert inf.step() == 0.0
    assert not inf.absent and [o["metadata"]["name"] for o in inf.items()] == ["a"]


def test_work_queue_dedups_and_keeps_the_earliest_due_time() -> None:
    q = WorkQueue()
    q.add(("pa", "ns", "x"), 10.0)
    q.add(("pa", "ns", "x"), 5.0)
    q.add(("pa", "ns", "x"), 20.0)
    q.add(("pa", "ns", "y"), 7.0)
    assert len(q) == 2 and q.next_due() == 5.0
    assert q.pop_due(6.0) == [("pa", "ns", "x")]
    assert q.pop_due(6.0) == [] and q.pop_due(7.0) == [("pa", "ns", "y")]
    assert q.next_due() is None


def test_repeated_events_are_folded_into_one_with_a_count() -> None:
    fake, clock = FakeKube(), FakeClock()
    obj = fake.seed(DEPLOYMENTS, workload("a"))
    rec = EventRecorder(fake, clock, instance="r1", min_interval=60)
    for _ in range(5):
        rec.event(obj, "Warning", "MetricsMissing", "no data")
        clock.advance(20)
    events = fake.objects(EVENTS)
    assert len(events) == 1
    assert events[0]["count"] == 4  # patched once a minute, not on every repeat
    assert events[0]["involvedObject"]["uid"] == obj["metadata"]["uid"]
    fake.fail_next("create", EVENTS, status=403, reason="Forbidden")
    rec.event(obj, "Normal", "Other", "x")  # best effort: never raises


def test_metrics_endpoint_serves_prometheus_text_and_probes() -> None:
    metrics = ReconcilerMetrics()
    metrics.decisions.labels("Deployment", "stable", "scaled").inc()
    metrics.desired_scale.labels("default", "web", "Deployment").set(3)
    ready = {"ok": False}
    server = MetricsServer(metrics, "127.0.0.1", 0, ready=lambda: ready["ok"])
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            body = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain")
        assert (
            'knscale_reconciler_decisions_total{action="scaled",kind="Deployment",mode="stable"} 1.0' in body
        )
        assert (
            'knscale_reconciler_desired_scale{kind="Deployment",name="web",namespace="default"} 3.0' in body
        )
        for family in ("api_errors_total", "loop_duration_seconds", "panic_mode", "actual_scale", "leader"):
            assert f"knscale_reconciler_{family}" in body
        assert 'knscale_build_info{component="reconciler",python="' in body
        assert "process_resident_memory_bytes" in body and "python_info{" in body
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=5)
            raise AssertionError("not ready yet")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
        ready["ok"] = True
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as resp:
            assert resp.status == 200
        metrics.forget("default", "web", "Deployment")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert 'name="web"' not in resp.read().decode()
    finally:
        server.stop()


def test_instrumented_api_counts_failed_calls_but_not_a_get_miss() -> None:
    fake, metrics = FakeKube(), ReconcilerMetrics()
    api = InstrumentedApi(fake, metrics)

    def count(verb: str, code: str) -> float | None:
        labels = {"verb": verb, "resource": "deployments.apps", "code": code}
        return metrics.registry.get_sample_value("knscale_reconciler_api_errors_total", labels)

    with pytest.raises(ApiError):
        api.get(DEPLOYMENTS, "default", "absent")
    assert count("get", "404") is None
    fake.fail_next("get", DEPLOYMENTS, status=500)
    with pytest.raises(ApiError):
        api.get(DEPLOYMENTS, "default", "absent")
    assert count("get", "500") == 1.0
    for verb, call in (
        ("list", lambda: api.list(DEPLOYMENTS, None)),
        ("watch", lambda: api.watch(DEPLOYMENTS, None, resource_version="0", timeout_seconds=1)),
        ("create", lambda: api.create(DEPLOYMENTS, "default", workload("a"))),
        ("replace", lambda: api.replace(DEPLOYMENTS, "default", "a", workload("a"))),
        ("patch", lambda: api.patch(DEPLOYMENTS, "default", "a", [])),
    ):
        fake.fail_next(verb, DEPLOYMENTS, status=503)
        with pytest.raises(ApiError):
            call()
        assert count(verb, "503") == 1.0, verb
