"""HPA class as a drop-in for autoscaler-keda: ScaledObject, SKS and PodAutoscaler status."""

from __future__ import annotations

from typing import Any

from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, EVENTS, HPAS, PODAUTOSCALERS, SCALEDOBJECTS, SERVERLESSSERVICES
from kubeapi.testing import CLASS_KEY, HPA, FakeKube, hpa, pod_autoscaler, sks_ready_status, workload
from reconciler.hpa.objects import PaConditions
from reconciler.runtime.clock import FakeClock
from translator.config.autoscaler import KedaConfig
from translator.config.knscale import KnscaleConfig

PA = "hello-00001"
AUTO_CREATE = "autoscaling.knative.dev/scaled-object-auto-create"


def settle(ctrl: Any, clock: FakeClock, rounds: int = 3) -> None:
    """Let events propagate: informers deliver, the queue syncs, repeat."""
    for _ in range(rounds):
        clock.advance(0.5)
        ctrl.step_informers()
        ctrl.step()


def make(pa: dict[str, Any] | None = None, **kwargs: Any) -> tuple[FakeKube, FakeClock, Any]:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(
        PODAUTOSCALERS, pa or pod_autoscaler(PA, annotations={"autoscaling.knative.dev/min-scale": "1"})
    )
    ctrl = build_controller(fake, clock, **kwargs)
    settle(ctrl, clock)
    return fake, clock, ctrl


def conditions(fake: FakeKube, name: str = PA) -> dict[str, tuple[str, str]]:
    status = fake.obj(PODAUTOSCALERS, "default", name)["status"]
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


def reasons(fake: FakeKube) -> list[str]:
    return [e["reason"] for e in fake.objects(EVENTS)]


def test_pa_gets_an_owned_scaled_object_then_sks_then_ready_status() -> None:
    fake, clock, ctrl = make()
    so = fake.obj(SCALEDOBJECTS, "default", PA)
    pa = fake.obj(PODAUTOSCALERS, "default", PA)
    assert so is not None
    assert so["metadata"]["ownerReferences"] == [
        {
            "apiVersion": pa["apiVersion"],
            "kind": "PodAutoscaler",
            "name": PA,
            "uid": pa["metadata"]["uid"],
            "controller": True,
        }
    ]
    assert so["spec"]["scaleTargetRef"]["name"] == f"{PA}-deployment"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == PA
    # No HPA yet: nothing else is created; the PA says it is not ready yet.
    assert fake.obj(SERVERLESSSERVICES, "default", PA) is None
    assert conditions(fake)["Ready"][0] == "Unknown"

    fake.seed(HPAS, hpa(PA, desired=2, current=1))
    settle(ctrl, clock)
    sks = fake.obj(SERVERLESSSERVICES, "default", PA)
    assert sks["spec"] == {
        "mode": "Serve",
        "objectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{PA}-deployment"},
        "protocolType": "http1",
    }
    assert sks["metadata"]["ownerReferences"][0]["uid"] == pa["metadata"]["uid"]
    assert "autoscaling.knative.dev/metric" not in sks["metadata"]["annotations"]
    assert conditions(fake)["SKSReady"] == ("Unknown", "NotReady")

    fake.set_status(SERVERLESSSERVICES, "default", PA, sks_ready_status(PA))
    fake.set_status(HPAS, "default", PA, {"desiredReplicas": 2, "currentReplicas": 2})
    settle(ctrl, clock)
    status = fake.obj(PODAUTOSCALERS, "default", PA)["status"]
    assert {k: status[k] for k in ("serviceName", "metricsServiceName", "desiredScale", "actualScale")} == {
        "serviceName": PA,
        "metricsServiceName": f"{PA}-private",
        "desiredScale": 2,
        "actualScale": 2,
    }
    assert {t: s for t, (s, _) in conditions(fake).items()} == {
        "Ready": "True",
        "Active": "True",
        "SKSReady": "True",
        "ScaleTargetInitialized": "True",
    }
    assert status["observedGeneration"] == 1
    assert {"ScaledObjectCreated", "ServerlessServiceCreated"} <= set(reasons(fake))


def test_scale_target_initialized_waits_for_min_scale() -> None:
    pa = pod_autoscaler(PA, annotations={"autoscaling.knative.dev/min-scale": "3"})
    fake, clock, ctrl = make(pa)
    fake.seed(HPAS, hpa(PA, desired=3, current=1))
    settle(ctrl, clock)
    fake.set_status(SERVERLESSSERVICES, "default", PA, sks_ready_status(PA))
    settle(ctrl, clock)
    assert conditions(fake)["ScaleTargetInitialized"][0] == "Unknown"
    fake.set_status(HPAS, "default", PA, {"desiredReplicas": 3, "currentReplicas": 3})
    settle(ctrl, clock)
    assert conditions(fake)["ScaleTargetInitialized"][0] == "True"
    assert conditions(fake)["Ready"][0] == "True"


def test_scaled_object_is_updated_only_on_a_spec_difference() -> None:
    fake, clock, ctrl = make()
    writes = len(fake.writes(SCALEDOBJECTS))
    # Other controllers touch metadata and status: no reason to write.
    so = fake.obj(SCALEDOBJECTS, "default", PA)
    so["metadata"].setdefault("labels", {})["keda"] = "touched"
    fake.replace(SCALEDOBJECTS, "default", PA, so)
    fake.set_status(SCALEDOBJECTS, "default", PA, {"conditions": [{"type": "Ready", "status": "True"}]})
    for _ in range(3):
        ctrl.enqueue_all()
        settle(ctrl, clock)
    assert len(fake.writes(SCALEDOBJECTS)) == writes + 1  # only the test's own replace

    # Someone edits the spec: it is brought back, spec only, metadata kept.
    so = fake.obj(SCALEDOBJECTS, "default", PA)
    so["spec"]["maxReplicaCount"] = 99
    fake.replace(SCALEDOBJECTS, "default", PA, so)
    settle(ctrl, clock)
    after = fake.obj(SCALEDOBJECTS, "default", PA)
    assert after["spec"]["maxReplicaCount"] == 2147483647
    assert after["metadata"]["labels"]["keda"] == "touched"
    assert "ScaledObjectUpdated" in reasons(fake)


def test_a_foreign_scaled_object_is_never_overwritten() -> None:
    fake, clock = FakeKube(), FakeClock()
    foreign = {
        "metadata": {
            "name": PA,
            "namespace": "default",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "x", "controller": True}
            ],
        },
        "spec": {"scaleTargetRef": {"name": "elsewhere"}, "triggers": []},
    }
    fake.seed(SCALEDOBJECTS, foreign)
    fake.seed(PODAUTOSCALERS, pod_autoscaler(PA))
    fake.seed(HPAS, hpa(PA))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.writes(SCALEDOBJECTS) == []
    assert fake.obj(SCALEDOBJECTS, "default", PA)["spec"]["scaleTargetRef"]["name"] == "elsewhere"
    assert conditions(fake)["Active"] == ("False", "NotOwned")
    assert conditions(fake)["Ready"] == ("False", "NotOwned")
    event = next(e for e in fake.objects(EVENTS) if e["reason"] == "ScaledObjectNotOwned")
    assert event["type"] == "Warning" and "ConfigMap x" in event["message"]
    assert fake.obj(SERVERLESSSERVICES, "default", PA) is None  # the sync stops there


def test_a_foreign_serverless_service_is_reported_on_the_pa() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(SERVERLESSSERVICES, {"metadata": {"name": PA, "namespace": "default"}, "spec": {}})
    fake.seed(PODAUTOSCALERS, pod_autoscaler(PA))
    fake.seed(HPAS, hpa(PA))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.writes(SERVERLESSSERVICES) == []
    assert conditions(fake)["Active"] == ("False", "NotOwned")
    event = next(e for e in fake.objects(EVENTS) if e["reason"] == "ServerlessServiceNotOwned")
    assert event["type"] == "Warning" and "ServerlessService hello-00001 already exists" in event["message"]


def test_a_failed_scaled_object_create_is_reported_on_the_pa() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.fail_next("create", SCALEDOBJECTS, status=422, reason="Invalid", times=100)
    fake.seed(PODAUTOSCALERS, pod_autoscaler(PA))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.obj(SCALEDOBJECTS, "default", PA) is None
    assert conditions(fake)["Active"] == ("False", "FailedCreate")
    event = next(e for e in fake.objects(EVENTS) if e["reason"] == "CreationFailed")
    assert event["type"] == "Warning"
    assert event["message"].startswith(f"Failed to create ScaledObject {PA}: 422 Invalid")


def test_a_failed_scaled_object_create_is_reported_on_the_workload() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.fail_next("create", SCALEDOBJECTS, status=422, reason="Invalid", times=100)
    fake.seed(DEPLOYMENTS, workload("api", annotations={CLASS_KEY: HPA}))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    event = next(e for e in fake.objects(EVENTS) if e["reason"] == "CreationFailed")
    assert event["involvedObject"]["kind"] == "Deployment"
    assert event["message"].startswith("Failed to create ScaledObject api: 422 Invalid")


def test_auto_create_false_leaves_scaled_objects_to_the_user() -> None:
    pa = pod_autoscaler(PA, annotations={AUTO_CREATE: "false"})
    fake, clock, ctrl = make(pa)
    assert fake.writes(SCALEDOBJECTS) == []
    fake.seed(HPAS, hpa(PA, desired=1, current=1))  # the user's own ScaledObject made it
    settle(ctrl, clock)
    assert fake.obj(SERVERLESSSERVICES, "default", PA) is not None
    assert fake.objects(SCALEDOBJECTS) == []


def test_cluster_default_auto_create_off_and_annotation_on() -> None:
    config = KnscaleConfig(keda=KedaConfig(scaledobject_autocreate=False))
    fake, _clock, _ctrl = make(config=config)
    assert fake.objects(SCALEDOBJECTS) == []
    fake2, _c2, _ctrl2 = make(pod_autoscaler(PA, annotations={AUTO_CREATE: "true"}), config=config)
    assert fake2.obj(SCALEDOBJECTS, "default", PA) is not None


def test_translation_errors_are_reported_and_nothing_is_written() -> None:
    pa = pod_autoscaler(
        PA, annotations={"autoscaling.knative.dev/metric": "custom_rps"}
    )  # no prometheus-query
    fake, _clock, _ctrl = make(pa)
    assert fake.objects(SCALEDOBJECTS) == [] and fake.objects(SERVERLESSSERVICES) == []
    active = conditions(fake)["Active"]
    assert active == ("False", "TranslationFailed")
    event = next(e for e in fake.objects(EVENTS) if e["reason"] == "TranslationFailed")
    assert event["type"] == "Warning" and "KNS2" in event["message"]


def test_create_meeting_already_exists_reads_and_compares_instead_of_failing() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(PODAUTOSCALERS, pod_autoscaler(PA))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    first = fake.obj(SCALEDOBJECTS, "default", PA)

    # A new leader with an empty cache for ScaledObjects (its watch has not delivered yet).
    fake2_ctrl = build_controller(fake, clock, identity="replica-2")
    fake2_ctrl.cache.informer(PODAUTOSCALERS).relist()
    fake2_ctrl.cache.informer(SCALEDOBJECTS)._synced.set()  # synced but empty: the worst case
    fake.fail_next("get", SCALEDOBJECTS, status=404)  # and the direct read misses it too
    fake2_ctrl.enqueue_all()
    fake2_ctrl.process_queue()
    creates = [c for c in fake.writes(SCALEDOBJECTS) if c.verb == "create"]
    assert len(creates) == 2  # the second one met AlreadyExists …
    assert (
        fake.obj(SCALEDOBJECTS, "default", PA)["metadata"]["resourceVersion"]
        == first["metadata"]["resourceVersion"]
    )
    assert [c for c in fake.writes(SCALEDOBJECTS) if c.verb == "replace"] == []  # … and found it equal


def test_conflict_on_update_is_retried_with_fresh_data() -> None:
    fake, clock, ctrl = make()
    so = fake.obj(SCALEDOBJECTS, "default", PA)
    so["spec"]["maxReplicaCount"] = 7
    fake.replace(SCALEDOBJECTS, "default", PA, so)
    fake.fail_next("replace", SCALEDOBJECTS, status=409, reason="Conflict")
    settle(ctrl, clock, rounds=4)
    assert fake.obj(SCALEDOBJECTS, "default", PA)["spec"]["maxReplicaCount"] == 2147483647


def test_hpa_class_deployment_gets_a_scaled_object_named_after_it() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(
        DEPLOYMENTS, workload("api", annotations={CLASS_KEY: HPA, "autoscaling.knative.dev/metric": "cpu"})
    )
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    dep = fake.obj(DEPLOYMENTS, "default", "api")
    so = fake.obj(SCALEDOBJECTS, "default", "api")
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert so["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert so["metadata"]["ownerReferences"][0]["controller"] is True
    assert fake.writes(DEPLOYMENTS) == []  # the workload itself is never written


def test_hpa_class_revision_deployment_is_left_to_knative() -> None:
    fake, clock = FakeKube(), FakeClock()
    labels = {"serving.knative.dev/revision": "hello-00001"}
    fake.seed(DEPLOYMENTS, workload("hello-00001-deployment", annotations={CLASS_KEY: HPA}, labels=labels))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.objects(SCALEDOBJECTS) == []


def test_hpa_class_deployment_with_a_foreign_scaled_object_is_reported() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(SCALEDOBJECTS, {"metadata": {"name": "api", "namespace": "default"}, "spec": {"triggers": []}})
    fake.seed(DEPLOYMENTS, workload("api", annotations={CLASS_KEY: HPA}))
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.writes(SCALEDOBJECTS) == []
    assert "ScaledObjectNotOwned" in reasons(fake)


def test_dry_run_plans_the_hpa_writes_without_making_them() -> None:
    lines: list[str] = []
    fake, _clock, _ctrl = make(dry_run=True, out=lines.append)
    assert fake.writes() == []
    assert any(line.startswith("dry-run: would create ScaledObject default/hello-00001") for line in lines)


def test_pa_conditions_follow_the_living_condition_set() -> None:
    c = PaConditions(None, "t0")
    c.initialize()
    assert c.status("Ready") == "Unknown"
    c.mark_active()
    c.mark_sks_ready()
    assert c.status("Ready") == "Unknown"  # ScaleTargetInitialized still unknown
    c.mark_scale_target_initialized()
    assert c.status("Ready") == "True"
    c2 = PaConditions(c.to_list(), "t1")
    c2.mark_sks_not_ready("not yet")
    assert c2.get("Ready") == {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NotReady",
        "message": "not yet",
        "lastTransitionTime": "t1",
    }
    c2.mark_inactive("NotOwned", "x")
    c2.mark_sks_not_ready("still not")  # a False dependent keeps Ready False
    assert c2.status("Ready") == "False"
    unchanged = PaConditions(c.to_list(), "t2")
    unchanged.mark_active()
    assert unchanged.get("Active") == c.get("Active")  # same status: transition time kept


def test_no_scaled_object_is_created_for_an_owner_the_cache_still_holds_but_the_api_deleted() -> None:
    # The watch has not delivered the Deployment's deletion yet: the live read before the create
    # says it is gone, so no orphan is created for the garbage collector to delete again.
    fake, clock = FakeKube(), FakeClock()
    annotations = {CLASS_KEY: HPA, "autoscaling.knative.dev/metric": "cpu"}
    fake.seed(DEPLOYMENTS, workload("api", annotations=annotations))
    fake.fail_next("get", DEPLOYMENTS, name="api", status=404, reason="NotFound", times=100)
    ctrl = build_controller(fake, clock)
    settle(ctrl, clock)
    assert fake.obj(SCALEDOBJECTS, "default", "api") is None
    assert fake.writes(SCALEDOBJECTS) == []
    # The next event for the owner (here a change of it) finds it live: created, once.
    fake.clear_failures()
    fake.patch(DEPLOYMENTS, "default", "api", {"metadata": {"labels": {"touched": "1"}}}, patch_type="merge")
    settle(ctrl, clock)
    assert fake.obj(SCALEDOBJECTS, "default", "api") is not None
    assert len([c for c in fake.writes(SCALEDOBJECTS) if c.verb == "create"]) == 1
