"""The KPA loop for plain Deployments/StatefulSets, against the fake API with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, EVENTS, PODS, SCALEDOBJECTS, STATEFULSETS
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, workload
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.runtime.clock import FakeClock
from reconciler.scaling.pods import selector_matches
from reconciler.scaling.sources import PROMETHEUS_QUERY_ANNOTATION, MetricSources

WEB = RevisionKey("default", "web")
_controllers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_controllers() -> Any:
    yield
    while _controllers:
        _controllers.pop().close_collectors()


def scale_patches(fake: FakeKube) -> list[list[dict[str, Any]]]:
    return [c.body for c in fake.writes(subresource="scale")]


def events(fake: FakeKube, reason: str) -> list[dict[str, Any]]:
    return [e for e in fake.objects(EVENTS) if e["reason"] == reason]


def run(ctrl: Any, clock: FakeClock, seconds: int) -> list[Any]:
    """Simulate `seconds`: a scrape every second, a decision every other second (Knative's cadence)."""
    records = []
    for i in range(seconds):
        clock.advance(1)
        ctrl.scrape_once()
        if i % 2 == 1:
            ctrl.step_informers()
            records += ctrl.tick()
    return records


def setup(
    replicas: int,
    pods: int,
    load: float | None,
    *,
    annotations: dict[str, str] | None = None,
    prometheus: bool = False,
    **kwargs: Any,
) -> tuple[FakeKube, FakeClock, StaticCollector, Any]:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(
        DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA, **(annotations or {})}, replicas=replicas)
    )
    for i in range(pods):
        fake.seed(PODS, pod(f"web-{i}", "web", ip=f"10.0.0.{i + 1}"))
    static = StaticCollector({WEB: StatTotals(concurrency=load)} if load is not None else {})
    sources = (
        MetricSources(prometheus={"concurrency": static, "rps": static})
        if prometheus
        else MetricSources(queue_proxy=static)
    )
    ctrl = build_controller(fake, clock, sources=sources, **kwargs)
    _controllers.append(ctrl)
    ctrl.step_informers()
    return fake, clock, static, ctrl


def test_writes_scale_only_when_desired_differs() -> None:
    fake, clock, static, ctrl = setup(replicas=2, pods=2, load=140)  # 140 / target 70 = 2 pods
    run(ctrl, clock, 20)
    assert scale_patches(fake) == []

    static.values[WEB] = StatTotals(concurrency=700)  # needs 10 pods
    run(ctrl, clock, 20)
    patches = scale_patches(fake)
    assert patches, "load ×5 must scale up"
    # One JSON patch per change on /scale: test the value decided on, then replace it.
    assert all(len(p) == 2 and p[0]["op"] == "test" and p[1]["path"] == "/spec/replicas" for p in patches)
    assert patches[-1][1]["value"] == 10
    assert fake.obj(DEPLOYMENTS, "default", "web")["spec"]["replicas"] == 10

    before = len(patches)
    run(ctrl, clock, 20)  # same load, already at 10: nothing to write
    assert len(scale_patches(fake)) == before
    assert all(c.verb == "patch" for c in fake.writes(DEPLOYMENTS))  # never a whole-object write


def test_statefulsets_are_scaled_through_their_scale_subresource() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(STATEFULSETS, workload("web", kind="StatefulSet", annotations={CLASS_KEY: KPA}, replicas=1))
    fake.seed(PODS, pod("web-0", "web"))
    static = StaticCollector({WEB: StatTotals(concurrency=300)})
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static))
    _controllers.append(ctrl)
    ctrl.step_informers()
    run(ctrl, clock, 6)
    assert fake.obj(STATEFULSETS, "default", "web")["spec"]["replicas"] == 5


@pytest.mark.parametrize(
    "marker",
    [
        {
            "owner_references": [
                {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "name": "r", "uid": "u"}
            ]
        },
        {"labels": {"serving.knative.dev/revision": "web-00001"}},
    ],
    ids=["ownerReference", "label"],
)
def test_never_scales_a_revision_controlled_deployment(marker: dict[str, Any]) -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA}, replicas=1, **marker))
    fake.seed(PODS, pod("web-0", "web"))
    static = StaticCollector({WEB: StatTotals(concurrency=10_000)})
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static))
    _controllers.append(ctrl)
    ctrl.step_informers()
    records = run(ctrl, clock, 10)
    assert records == [] and ctrl.kpa.tracked() == []
    assert fake.writes() == []


def test_floor_is_one_without_an_ingress_source() -> None:
    fake, clock, _static, ctrl = setup(replicas=3, pods=3, load=0.0)
    run(ctrl, clock, 240)
    values = [p[-1]["value"] for p in scale_patches(fake)]
    assert values == [1], values  # down to one pod, never to zero
    assert fake.obj(DEPLOYMENTS, "default", "web")["spec"]["replicas"] == 1


def test_prometheus_ingress_source_allows_scale_to_zero_and_back() -> None:
    ann = {PROMETHEUS_QUERY_ANNOTATION: 'sum(rate(ingress_requests_total{service="web"}[1m]))'}
    fake, clock, static, ctrl = setup(replicas=1, pods=1, load=0.0, annotations=ann, prometheus=True)
    records = run(ctrl, clock, 60)
    assert scale_patches(fake) == [], "idle must last a stable window before the last pod goes"
    records = run(ctrl, clock, 120)
    assert [p[-1]["value"] for p in scale_patches(fake)] == [0]
    assert any(r.action == "scaled" and r.desired == 0 for r in records)

    # Requests show up at the ingress while nothing runs: scale from zero.
    fake.delete(PODS, "default", "web-0")
    static.values[WEB] = StatTotals(concurrency=35)
    run(ctrl, clock, 4)
    patches = scale_patches(fake)
    assert [p[-1]["value"] for p in patches] == [0, 1]
    assert patches[-1] == [{"op": "add", "path": "/spec/replicas", "value": 1}]  # a Scale at 0 has no field
    assert fake.obj(DEPLOYMENTS, "default", "web")["spec"]["replicas"] == 1


def test_missing_metrics_hold_the_scale_and_are_reported() -> None:
    fake, clock, _static, ctrl = setup(replicas=4, pods=4, load=None)
    records = run(ctrl, clock, 20)
    assert scale_patches(fake) == []
    assert records and all(r.action == "held" and r.desired == 4 for r in records)
    missing = events(fake, "MetricsMissing")
    assert len(missing) == 1 and missing[0]["type"] == "Warning"
    assert "no static value" in missing[0]["message"]
    text = ctrl.metrics.render().decode()
    assert 'knscale_reconciler_metrics_missing_total{name="web",namespace="default"} 10.0' in text


def test_prometheus_annotation_without_a_prometheus_server_is_missing_metrics() -> None:
    ann = {PROMETHEUS_QUERY_ANNOTATION: "sum(up)"}
    fake, clock, _static, ctrl = setup(replicas=2, pods=2, load=100, annotations=ann)
    run(ctrl, clock, 6)
    assert scale_patches(fake) == []
    assert "no --prometheus-url" in events(fake, "MetricsMissing")[0]["message"]


def test_dry_run_prints_decisions_and_writes_nothing() -> None:
    lines: list[str] = []
    fake, clock, _static, ctrl = setup(replicas=1, pods=1, load=700, dry_run=True, out=lines.append)
    run(ctrl, clock, 6)
    assert fake.writes() == []  # not even Events
    decisions = [line for line in lines if line.startswith("decision Deployment default/web:")]
    assert decisions
    last = decisions[-1]
    for part in (
        "observed concurrency",
        "stable=700",
        "desired=10",
        "mode=panic",
        "action=would-scale",
        "reason=",
    ):
        assert part in last, last
    assert any(line.startswith("dry-run: would patch Deployment default/web/scale") for line in lines)


def test_a_scaled_object_on_the_same_workload_blocks_the_kpa_loop() -> None:
    fake, clock, _static, ctrl = setup(replicas=1, pods=1, load=700)
    fake.seed(
        SCALEDOBJECTS,
        {
            "metadata": {"name": "web-so", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "triggers": [{"type": "cpu", "metadata": {"value": "50"}}],
            },
        },
    )
    ctrl.step_informers()
    run(ctrl, clock, 6)
    assert scale_patches(fake) == []
    assert "web-so" in events(fake, "ConflictingScaledObject")[0]["message"]


def test_stale_cache_makes_the_patch_fail_instead_of_overwriting() -> None:
    fake, clock, _static, ctrl = setup(replicas=1, pods=1, load=700)
    # Someone else scales the Deployment; our cache has not seen it yet.
    fake.patch(
        DEPLOYMENTS,
        "default",
        "web",
        [{"op": "replace", "path": "/spec/replicas", "value": 7}],
        subresource="scale",
    )
    clock.advance(1)
    ctrl.scrape_once()
    records = ctrl.tick()
    assert records[-1].action == "failed"
    assert fake.obj(DEPLOYMENTS, "default", "web")["spec"]["replicas"] == 7


def test_selector_matching() -> None:
    labels = {"app": "web", "tier": "front"}
    assert selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "db"}}, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels
    )
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert not selector_matches({}, labels)  # an empty selector never selects every pod
