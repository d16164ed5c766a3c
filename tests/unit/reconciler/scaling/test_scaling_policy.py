"""knscale.dev/scaling-policy in the KPA loop, the measured cold-start cost, the stored state —
against the fake API with a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, PODS
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, workload
from reconciler.kpa import registry
from reconciler.kpa.predictive import PredictiveState
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.informer import slim_pod
from reconciler.scaling.pods import pod_start
from reconciler.scaling.policies import STATE_ANNOTATION
from reconciler.scaling.sources import PROMETHEUS_QUERY_ANNOTATION, MetricSources

WEB = RevisionKey("default", "web")
POLICY = "knscale.dev/scaling-policy"
T0 = 1_700_000_000.0
_controllers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_controllers() -> Any:
    yield
    while _controllers:
        _controllers.pop().close_collectors()


def timed_pod(name: str, created: str, ready: str, download: tuple[str, str] | None = None) -> dict[str, Any]:
    p = pod(name, "web")
    p["metadata"]["uid"] = f"uid-{name}"
    p["metadata"]["creationTimestamp"] = created
    p["status"]["conditions"][0]["lastTransitionTime"] = ready
    p["status"]["containerStatuses"] = [{"name": "app", "restartCount": 0}]
    if download is not None:
        p["status"]["initContainerStatuses"] = [
            {
                "name": "knscale-model-init",
                "restartCount": 0,
                "state": {"terminated": {"startedAt": download[0], "finishedAt": download[1], "exitCode": 0}},
            }
        ]
    return p


def test_pod_start_reads_creation_ready_and_the_download_through_the_slim_cache() -> None:
    p = timed_pod(
        "a", "2024-01-01T00:00:00Z", "2024-01-01T00:01:35Z", ("2024-01-01T00:00:02Z", "2024-01-01T00:01:32Z")
    )
    start = pod_start(slim_pod(p))
    assert start is not None and (start.seconds, start.download) == (95.0, 90.0)
    restarted = slim_pod(p)
    restarted["status"]["containerStatuses"][0]["restartCount"] = 1
    assert pod_start(restarted) is None  # its Ready time is the restart's
    assert pod_start(slim_pod(pod("b", "web"))) is None  # no timestamps


def setup(fake: FakeKube, clock: FakeClock, static: StaticCollector, **kwargs: Any) -> Any:
    ctrl = build_controller(
        fake, clock, sources=MetricSources(prometheus={"concurrency": static, "rps": static}), **kwargs
    )
    _controllers.append(ctrl)
    ctrl.step_informers()
    return ctrl


def cluster(policy: str, *, replicas: int = 1) -> tuple[FakeKube, FakeClock, StaticCollector]:
    fake, clock = FakeKube(), FakeClock(T0)
    ann = {
        CLASS_KEY: KPA,
        POLICY: policy,
        PROMETHEUS_QUERY_ANNOTATION: "sum(x)",
        "autoscaling.knative.dev/window": "6s",
        "autoscaling.knative.dev/panic-window-percentage": "40",
    }
    fake.seed(DEPLOYMENTS, workload("web", annotations=ann, replicas=replicas))
    fake.seed(
        PODS,
        timed_pod(
            "web-0",
            "2023-11-14T22:00:00Z",
            "2023-11-14T22:00:40Z",
            ("2023-11-14T22:00:05Z", "2023-11-14T22:00:35Z"),
        ),
    )
    return fake, clock, StaticCollector({WEB: StatTotals(concurrency=0.0)})


def run(ctrl: Any, clock: FakeClock, seconds: int) -> list[Any]:
    records = []
    for i in range(seconds):
        clock.advance(1)
        ctrl.scrape_once()
        if i % 2 == 1:
            ctrl.step_informers()
            records += ctrl.tick()
    return records


def cycles(
    ctrl: Any, clock: FakeClock, static: StaticCollector, n: int, busy: int = 10, idle: int = 40
) -> list[Any]:
    """n × (busy seconds at concurrency 5, then idle seconds at 0)."""
    records = []
    for _ in range(n):
        static.values[WEB] = StatTotals(concurrency=5.0)
        records += run(ctrl, clock, busy)
        static.values[WEB] = StatTotals(concurrency=0.0)
        records += run(ctrl, clock, idle)
    return records


def test_default_is_kpa_and_the_measured_cold_start_is_reported() -> None:
    fake, clock, static = cluster("kpa")
    lines: list[str] = []
    ctrl = setup(fake, clock, static, dry_run=True, out=lines.append)
    records = run(ctrl, clock, 4)
    assert records and all(r.policy == "kpa" and r.cold_start == 40.0 and r.download == 30.0 for r in records)
    assert all(r.why in ("stable", "panic") for r in records)
    line = next(x for x in lines if x.startswith("decision Deployment default/web:"))
    assert "policy=kpa why=stable cold_start=40 download=30 " in line, line
    text = ctrl.metrics.render().decode()
    assert (
        'knscale_reconciler_cold_start_seconds{kind="Deployment",name="web",namespace="default"} 40.0' in text
    )
    assert (
        'knscale_reconciler_model_download_seconds{kind="Deployment",name="web",namespace="default"} 30.0'
        in text
    )
    assert "knscale_reconciler_pod_start_seconds_count 1.0" in text
    assert 'knscale_reconciler_policy_decisions_total{policy="kpa",reason="stable"}' in text
    assert not any(STATE_ANNOTATION in x for x in lines)  # the kpa policy stores nothing


def test_knscale_policy_learns_keeps_the_replica_and_stores_its_state() -> None:
    fake, clock, static = cluster("knscale")
    ctrl = setup(fake, clock, static)
    records = cycles(ctrl, clock, static, 6)
    target = ctrl.kpa._targets[("Deployment", "default", "web")]
    state = target.slot.state
    assert isinstance(state, PredictiveState) and state.samples == 5 and state.cold_start == 40.0
    assert state.fit is not None and state.fit.keep >= 40.0  # 40 s gaps, S 40 s, κ 300: keep
    whys = [r.why for r in records]
    assert "learning" in whys and "keepalive" in whys, whys
    assert set(whys) <= set(registry.REASONS)
    assert all(r.policy == "knscale" and r.cold_start == 40.0 for r in records)
    # While learning it is KPA (to zero 6 s + 30 s grace into a gap); once planned, kept warm.
    to_zero = [r.why for r in records if r.action == "scaled" and r.desired == 0]
    assert to_zero and set(to_zero) == {"learning"}, to_zero
    assert records[-25:] and all(r.why in ("stable", "keepalive") for r in records[-25:])
    stored = fake.obj(DEPLOYMENTS, "default", "web")["metadata"]["annotations"][STATE_ANNOTATION]
    doc = json.loads(stored)
    assert doc["v"] == 1 and doc["S"] == 40.0 and len(stored) < 400
    # Throttled: ≤ one write per 60 s (6 cycles of 50 s: 300 s → at most 5 + the first).
    state_writes = [c for c in fake.writes(DEPLOYMENTS) if c.subresource is None]
    assert 1 <= len(state_writes) <= 6
    assert all(c.verb == "patch" and list(c.body) == ["metadata"] for c in state_writes)
    text = ctrl.metrics.render().decode()
    assert 'knscale_reconciler_policy_decisions_total{policy="knscale",reason="keepalive"}' in text


def test_a_new_leader_restores_the_learned_state_and_decides_the_same() -> None:
    fake, clock, static = cluster("knscale")
    first = setup(fake, clock, static)
    cycles(first, clock, static, 6)
    run(first, clock, 62)  # idle past the write throttle: the last learned state is stored
    first_state = first.kpa._targets[("Deployment", "default", "web")].slot.state
    first.close_collectors()
    _controllers.remove(first)

    # A new process (restart or failover) on the same cluster state: no memory but the cluster's.
    second = setup(fake, clock, static)
    run(second, clock, 2)
    restored = second.kpa._targets[("Deployment", "default", "web")].slot.state
    assert (restored.counts, restored.sums, restored.samples, restored.fit, restored.cold_start) == (
        first_state.counts,
        first_state.sums,
        first_state.samples,
        first_state.fit,
        first_state.cold_start,
    )
    # The next idle gap is planned from the stored history at once: kept warm, not "learning".
    records = cycles(second, clock, static, 1)
    idle = [r for r in records if r.why not in ("stable", "panic")]
    assert idle and {r.why for r in idle} == {"keepalive"}, [r.why for r in records]


def test_a_malformed_stored_state_is_ignored() -> None:
    fake, clock, static = cluster("knscale")
    fake.patch(
        DEPLOYMENTS,
        "default",
        "web",
        {"metadata": {"annotations": {STATE_ANNOTATION: '{"v":1,"h":[[99,1,1]]}'}}},
        patch_type="merge",
    )
    ctrl = setup(fake, clock, static)
    records = run(ctrl, clock, 4)
    state = ctrl.kpa._targets[("Deployment", "default", "web")].slot.state
    assert records and isinstance(state, PredictiveState) and state.samples == 0


def test_changing_the_annotation_switches_policy_without_restarting_the_decider() -> None:
    fake, clock, static = cluster("kpa")
    ctrl = setup(fake, clock, static)
    static.values[WEB] = StatTotals(concurrency=5.0)
    run(ctrl, clock, 10)
    target = ctrl.kpa._targets[("Deployment", "default", "web")]
    kpa_state = target.slot.state
    fake.patch(
        DEPLOYMENTS, "default", "web", {"metadata": {"annotations": {POLICY: "knscale"}}}, patch_type="merge"
    )
    ctrl.step_informers()
    ctrl.kpa.refresh(clock.now())
    assert isinstance(target.slot.state, PredictiveState) and target.slot.state.kpa == kpa_state
    records = run(ctrl, clock, 4)
    assert records and all(r.policy == "knscale" for r in records)
    fake.patch(
        DEPLOYMENTS, "default", "web", {"metadata": {"annotations": {POLICY: "kpa"}}}, patch_type="merge"
    )
    records = run(ctrl, clock, 4)
    assert records[-1].policy == "kpa"


def test_an_unknown_policy_blocks_the_workload() -> None:
    fake, clock, static = cluster("predictive")
    ctrl = setup(fake, clock, static)
    records = run(ctrl, clock, 4)
    assert records and all(r.action == "blocked" and "KNS128" in r.reason for r in records)
