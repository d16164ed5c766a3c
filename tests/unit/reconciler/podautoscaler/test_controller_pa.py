"""knscale's autoscaler class through the controller, against the fake API with a fake clock:
the SKS it owns, the scale writes, the PA status, the activator probe, and other classes untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, PODAUTOSCALERS, PODS, SERVERLESSSERVICES
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, pod_autoscaler, sks_ready_status, workload
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.podautoscaler.core import rfc3339
from reconciler.podautoscaler.probe import ActivatorProber
from reconciler.runtime.clock import FakeClock
from reconciler.scaling.sources import MetricSources
from translator.config.autoscaler import KNSCALE_CLASS, AutoscalerConfig
from translator.config.knscale import KnscaleConfig

REV = "hello-00001"
KEY = RevisionKey("default", REV)
ANNOTATIONS = {
    CLASS_KEY: KNSCALE_CLASS,
    "knscale.dev/scaling-policy": "kpa",
    "autoscaling.knative.dev/window": "6s",
    "autoscaling.knative.dev/target-burst-capacity": "0",
}
_controllers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_controllers() -> Any:
    yield
    while _controllers:
        ctrl = _controllers.pop()
        ctrl.close_collectors()
        ctrl.pas.prober.close()


def knscale_pa(name: str = REV, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    obj = pod_autoscaler(name, annotations=annotations or ANNOTATIONS)
    obj["metadata"]["annotations"].pop("autoscaling.knative.dev/metric")
    return obj


def revision_pod(i: int, name: str = REV) -> dict[str, Any]:
    p = pod(f"{name}-deployment-abc-{i}", name, ip=f"10.0.0.{i + 1}")
    p["metadata"]["labels"]["serving.knative.dev/revision"] = name
    return p


def setup(load: float) -> tuple[FakeKube, FakeClock, StaticCollector, Any, list[str]]:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(PODAUTOSCALERS, knscale_pa())
    fake.seed(DEPLOYMENTS, workload(f"{REV}-deployment", replicas=1))
    fake.seed(PODS, revision_pod(0))
    static = StaticCollector({KEY: StatTotals(concurrency=load)})
    cfg = KnscaleConfig(autoscaler=AutoscalerConfig(scale_to_zero_grace_period=2.0))
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static), config=cfg)
    _controllers.append(ctrl)
    probes: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        probes.append(request.headers["host"])
        assert request.headers["k-network-probe"] == "activator"
        return httpx.Response(200, text="activator")

    ctrl.pas.prober = ActivatorProber("127.0.0.1:9", transport=httpx.MockTransport(answer))
    ctrl.step_informers()
    return fake, clock, static, ctrl, probes


def run(ctrl: Any, clock: FakeClock, seconds: int) -> None:
    for i in range(seconds):
        clock.advance(1)
        ctrl.scrape_once()
        if i % 2 == 1:
            ctrl.step_informers()
            ctrl.tick()


def status(fake: FakeKube, name: str = REV) -> dict[str, Any]:
    return fake.obj(PODAUTOSCALERS, "default", name).get("status") or {}


def conds(fake: FakeKube) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status(fake)["conditions"]}


def replicas_written(fake: FakeKube) -> list[int]:
    return [c.body[-1]["value"] for c in fake.writes(DEPLOYMENTS, subresource="scale")]


def test_sks_first_then_scale_and_status_then_idle_to_zero_through_proxy() -> None:
    fake, clock, static, ctrl, probes = setup(load=150.0)  # 150 / 70 per pod → 3 pods
    run(ctrl, clock, 4)
    sks = fake.obj(SERVERLESSSERVICES, "default", REV)
    assert sks["spec"]["mode"] == "Proxy" and sks["spec"]["numActivators"] == 2
    assert sks["metadata"]["ownerReferences"][0]["kind"] == "PodAutoscaler"
    assert conds(fake)["SKSReady"] == "Unknown" and replicas_written(fake) == []

    fake.set_status(SERVERLESSSERVICES, "default", REV, sks_ready_status(REV))
    run(ctrl, clock, 4)
    assert replicas_written(fake) == [3]
    st = status(fake)
    assert (st["serviceName"], st["metricsServiceName"], st["desiredScale"]) == (REV, f"{REV}-private", 3)
    assert conds(fake) == {
        "Active": "True",
        "SKSReady": "True",
        "ScaleTargetInitialized": "True",
        "Ready": "True",
    }
    assert fake.obj(SERVERLESSSERVICES, "default", REV)["spec"]["mode"] == "Serve"  # TBC 0: EBC 0 ≥ 0

    static.values[KEY] = StatTotals(concurrency=0.0)
    fake.set_status(DEPLOYMENTS, "default", f"{REV}-deployment", {"replicas": 3})
    for _ in range(40):
        run(ctrl, clock, 2)
        if fake.obj(SERVERLESSSERVICES, "default", REV)["spec"]["mode"] == "Proxy":
            break
    assert conds(fake)["Active"] == "False" and replicas_written(fake)[-1] != 0
    # The SKS controller puts the activator in the path; the last pod goes after the 2 s grace.
    proxied = sks_ready_status(REV)
    proxied["conditions"].append(
        {"type": "ActivatorEndpointsPopulated", "status": "True", "lastTransitionTime": rfc3339(clock.now())}
    )
    fake.set_status(SERVERLESSSERVICES, "default", REV, proxied)
    run(ctrl, clock, 6)
    assert replicas_written(fake)[-1] == 0
    assert status(fake)["desiredScale"] == 0
    assert probes and set(probes) == {f"{REV}.default.svc.cluster.local"}  # Knative's probe target


def test_never_touches_a_pa_of_another_class() -> None:
    fake, clock, _, ctrl, _ = setup(load=150.0)
    fake.seed(PODAUTOSCALERS, knscale_pa("other-00001", {CLASS_KEY: KPA}))
    fake.seed(DEPLOYMENTS, workload("other-00001-deployment", replicas=1))
    ctrl.step_informers()
    run(ctrl, clock, 6)
    assert fake.obj(SERVERLESSSERVICES, "default", "other-00001") is None
    assert "status" not in fake.obj(PODAUTOSCALERS, "default", "other-00001")
    assert all(c.name != "other-00001-deployment" for c in fake.writes(DEPLOYMENTS, subresource="scale"))
    assert ctrl.pas.tracked() == [("default", REV)]


def test_switching_the_class_away_stops_scaling_and_back_resumes_from_the_status() -> None:
    fake, clock, _, ctrl, _ = setup(load=150.0)
    run(ctrl, clock, 2)
    fake.set_status(SERVERLESSSERVICES, "default", REV, sks_ready_status(REV))
    run(ctrl, clock, 6)
    assert replicas_written(fake) == [3]
    moved = fake.obj(PODAUTOSCALERS, "default", REV)
    moved["metadata"]["annotations"][CLASS_KEY] = KPA
    fake.put(PODAUTOSCALERS, moved)
    run(ctrl, clock, 4)
    assert ctrl.pas.tracked() == []
    writes = len(fake.writes())
    run(ctrl, clock, 10)
    assert len(fake.writes()) == writes  # nothing of it is written any more
    back = fake.obj(PODAUTOSCALERS, "default", REV)
    back["metadata"]["annotations"][CLASS_KEY] = KNSCALE_CLASS
    fake.put(PODAUTOSCALERS, back)
    run(ctrl, clock, 6)
    assert ctrl.pas.tracked() == [("default", REV)]
    assert replicas_written(fake) == [3]  # the same load: the same scale, nothing rewritten
    assert conds(fake)["Ready"] == "True"


def _activator_exposition(queued: int) -> str:
    labels = f'k8s_namespace_name="default",kn_revision_name="{REV}",otel_scope_name="activator"'
    return (
        "# HELP kn_revision_request_queued Number of requests currently queued in the activator\n"
        "# TYPE kn_revision_request_queued gauge\n"
        f"kn_revision_request_queued{{{labels}}} {queued}\n"
    )


def test_requests_waiting_in_the_activator_scale_from_zero_at_once_not_at_the_next_tick() -> None:
    from reconciler.metrics.activator import ActivatorScraper

    fake, clock, _, ctrl, _ = setup(load=0.0)
    run(ctrl, clock, 4)  # the SKS is created
    fake.set_status(SERVERLESSSERVICES, "default", REV, sks_ready_status(REV))
    run(ctrl, clock, 4)
    proxied = sks_ready_status(REV)
    proxied["conditions"].append(
        {"type": "ActivatorEndpointsPopulated", "status": "True", "lastTransitionTime": rfc3339(clock.now())}
    )
    fake.set_status(SERVERLESSSERVICES, "default", REV, proxied)
    for _ in range(60):
        run(ctrl, clock, 2)
        if replicas_written(fake) and replicas_written(fake)[-1] == 0:
            break
    assert replicas_written(fake)[-1] == 0
    fake.delete(PODS, "default", f"{REV}-deployment-abc-0")
    fake.set_status(DEPLOYMENTS, "default", f"{REV}-deployment", {"replicas": 0})
    ctrl.step_informers()

    queued = {"n": 0}
    asked: list[str] = []

    def activator(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, text=_activator_exposition(queued["n"]))

    ctrl.pas.activator = ActivatorScraper(lambda: ["10.1.0.7:9090"], transport=httpx.MockTransport(activator))
    run(ctrl, clock, 2)
    assert replicas_written(fake)[-1] == 0 and not ctrl.pas.poked()  # nothing waits: stays at zero
    ctrl.step()  # a tick now: the next one is due in 2 s
    writes = len(replicas_written(fake))

    queued["n"] = 2  # the first requests arrive at the activator
    clock.advance(1)
    ctrl.scrape_once()
    assert ctrl.pas.poked()
    ctrl.step()  # not a tick (one second since the last): the poke path
    assert replicas_written(fake)[writes:] == [1]
    assert conds(fake)["Active"] == "Unknown"  # activating, as KPA: Queued
    assert asked and all(u == "http://10.1.0.7:9090/metrics" for u in asked)
    assert not ctrl.pas.poked()
