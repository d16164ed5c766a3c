"""knscale's class runs the registry's policies through the KPA loop's PolicySlot (one code path):
the default is the cold-start-aware policy, S is measured from the revision's pod timestamps, and
the learned state is stored in the PA's status.annotations and read back after a restart."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, EVENTS, PODAUTOSCALERS, PODS, SERVERLESSSERVICES
from kubeapi.testing import CLASS_KEY, FakeKube, pod, pod_autoscaler, sks_ready_status, workload
from reconciler.kpa import registry
from reconciler.kpa.predictive import PredictiveState
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.podautoscaler.probe import ActivatorProber
from reconciler.runtime.clock import FakeClock
from reconciler.scaling.policies import STATE_ANNOTATION
from reconciler.scaling.sources import MetricSources
from translator.config.autoscaler import KNSCALE_CLASS

REV = "model-00001"
KEY = RevisionKey("default", REV)
T0 = 1_700_000_000.0
_controllers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_controllers() -> Any:
    yield
    while _controllers:
        ctrl = _controllers.pop()
        ctrl.close_collectors()
        ctrl.pas.prober.close()


def cluster(policy: str | None = None) -> tuple[FakeKube, FakeClock, StaticCollector]:
    fake, clock = FakeKube(), FakeClock(T0)
    ann = {
        CLASS_KEY: KNSCALE_CLASS,
        "autoscaling.knative.dev/window": "6s",
        "autoscaling.knative.dev/panic-window-percentage": "40",
        "autoscaling.knative.dev/target-burst-capacity": "0",
    }
    if policy is not None:
        ann["knscale.dev/scaling-policy"] = policy
    pa = pod_autoscaler(REV, annotations=ann)
    pa["metadata"]["annotations"].pop("autoscaling.knative.dev/metric")
    fake.seed(PODAUTOSCALERS, pa)
    fake.seed(DEPLOYMENTS, workload(f"{REV}-deployment", replicas=1))
    p = pod(f"{REV}-deployment-abc-0", REV, ip="10.0.0.1")
    p["metadata"]["labels"]["serving.knative.dev/revision"] = REV
    p["metadata"]["uid"] = "uid-0"
    p["metadata"]["creationTimestamp"] = "2023-11-14T22:00:00Z"
    p["status"]["conditions"][0]["lastTransitionTime"] = "2023-11-14T22:00:40Z"  # S = 40 s
    p["status"]["containerStatuses"] = [{"name": "user-container", "restartCount": 0}]
    fake.seed(PODS, p)
    return fake, clock, StaticCollector({KEY: StatTotals(concurrency=0.0)})


def start(fake: FakeKube, clock: FakeClock, static: StaticCollector) -> Any:
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static))
    _controllers.append(ctrl)
    answer = httpx.MockTransport(lambda _request: httpx.Response(200, text="activator"))
    ctrl.pas.prober = ActivatorProber("127.0.0.1:9", transport=answer)
    ctrl.step_informers()
    if fake.obj(SERVERLESSSERVICES, "default", REV) is None:
        run(ctrl, clock, 2)  # the class creates the SKS; Knative's SKS reconciler reports it ready
        fake.set_status(SERVERLESSSERVICES, "default", REV, sks_ready_status(REV))
    return ctrl


def run(ctrl: Any, clock: FakeClock, seconds: int) -> list[Any]:
    records = []
    for i in range(seconds):
        clock.advance(1)
        ctrl.scrape_once()
        if i % 2 == 1:
            ctrl.step_informers()
            records += ctrl.pas.tick(clock.now())
    return records


def cycles(ctrl: Any, clock: FakeClock, static: StaticCollector, n: int) -> list[Any]:
    records = []
    for _ in range(n):
        static.values[KEY] = StatTotals(concurrency=5.0)
        records += run(ctrl, clock, 10)
        static.values[KEY] = StatTotals(concurrency=0.0)
        records += run(ctrl, clock, 40)
    return records


def slot(ctrl: Any) -> Any:
    return ctrl.pas._targets[("default", REV)].slot


def test_the_class_runs_the_registry_policy_objects_by_default_the_cold_start_aware_one() -> None:
    fake, clock, static = cluster()
    ctrl = start(fake, clock, static)
    records = run(ctrl, clock, 4)
    assert records and all(r.policy == "knscale" for r in records)
    assert slot(ctrl).policy is registry.POLICIES["knscale"]  # the object the simulator runs
    assert records[-1].cold_start == 40.0  # measured from the revision's pod, creation → Ready

    fake2, clock2, static2 = cluster("kpa")
    ctrl2 = start(fake2, clock2, static2)
    records = run(ctrl2, clock2, 4)
    assert records and all(r.policy == "kpa" and r.why in ("stable", "panic") for r in records)


def test_learned_state_is_stored_in_the_pa_status_and_a_new_leader_goes_on_from_it() -> None:
    fake, clock, static = cluster()
    first = start(fake, clock, static)
    records = cycles(first, clock, static, 6)
    whys = {r.why for r in records}
    assert {"learning", "keepalive"} <= whys, whys
    run(first, clock, 62)  # idle past the write throttle: the last learned state is stored
    learned = slot(first).state
    assert isinstance(learned, PredictiveState) and learned.samples >= 5
    pa = fake.obj(PODAUTOSCALERS, "default", REV)
    text = pa["status"]["annotations"][STATE_ANNOTATION]
    assert json.loads(text)["S"] == 40.0 and len(text) < 4096
    assert STATE_ANNOTATION not in pa["metadata"]["annotations"]  # Knative syncs those; not ours
    status_writes = [c for c in fake.writes(PODAUTOSCALERS) if c.subresource == "status"]
    assert status_writes and all(c.verb == "replace" for c in status_writes)  # RBAC: update, as before
    first.close_collectors()
    _controllers.remove(first)

    second = start(fake, clock, static)  # restart or failover: no memory but the cluster's
    run(second, clock, 2)
    restored = slot(second).state
    assert (restored.counts, restored.samples, restored.fit, restored.cold_start) == (
        learned.counts,
        learned.samples,
        learned.fit,
        learned.cold_start,
    )
    idle = [r for r in cycles(second, clock, static, 1) if r.why not in ("stable", "panic")]
    assert idle and {r.why for r in idle} == {"keepalive"}, [r.why for r in idle]


def test_an_unknown_policy_name_falls_back_to_the_class_default_and_is_reported_once() -> None:
    fake, clock, static = cluster("predictive")
    ctrl = start(fake, clock, static)
    records = run(ctrl, clock, 6)
    assert records and all(r.policy == "knscale" for r in records)
    events = [e for e in fake.objects(EVENTS) if e.get("reason") == "UnknownScalingPolicy"]
    assert len(events) == 1 and "'predictive' is not one of kpa, knscale" in events[0]["message"]
