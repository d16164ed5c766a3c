"""Scenario 4: `knscale reconcile` as autoscaler-keda's replacement for HPA-class PodAutoscalers.

No Knative or KEDA controller runs, so the test plays their parts on real objects: it creates
the PodAutoscaler and the revision's Deployment as Knative's revision reconciler would, the
HorizontalPodAutoscaler (with its status) as KEDA would for the ScaledObject, and marks the
ServerlessService Ready as Knative's networking controller would. Everything asserted is what
the API server stored. Garbage collection is kube-controller-manager's (``workloads``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Reconciler, apply_json, new_namespace, reconciler, run_knscale
from manifests import APP_IMAGE, workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PA_API = "autoscaling.internal.knative.dev/v1alpha1"
HPA_CLASS = "hpa.autoscaling.knative.dev"
WAIT_S = 30.0


def _deployment(name: str) -> dict[str, Any]:
    container = {
        "name": "user-container",
        "image": APP_IMAGE,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
    }
    return workload(name, containers=[container])


def _pa(revision: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": PA_API,
        "kind": "PodAutoscaler",
        "metadata": {
            "name": revision,
            "labels": {"serving.knative.dev/revision": revision},
            "annotations": {"autoscaling.knative.dev/class": HPA_CLASS, **annotations},
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{revision}-deployment",
            },
            "protocolType": "http1",
        },
    }


def _hpa(revision: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": revision},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{revision}-deployment",
            },
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 75}},
                }
            ],
        },
    }


def _events(cp: ControlPlane, ns: str, name: str) -> list[dict[str, Any]]:
    out = cp.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def _event(cp: ControlPlane, ns: str, name: str, reason: str) -> dict[str, Any] | None:
    for e in _events(cp, ns, name):
        if e["reason"] == reason:
            return e
    return None


def _conditions(pa: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (pa.get("status") or {}).get("conditions") or []}


def _diag(rec: Reconciler) -> Any:
    return lambda: f"reconciler log:\n{rec.tail()}"


@pytest.fixture(scope="module")
def hpa_ns(workloads: ControlPlane) -> Iterator[tuple[str, Reconciler]]:
    # Opted out of knscale's admission webhooks (if an earlier module registered them): the
    # reconciler must cope with objects that never went through /validate, such as those created
    # before knscale was installed — the untranslatable PodAutoscaler below is one.
    ns = new_namespace(workloads, "s4", labels={"knscale.dev/injection": "disabled"})
    with reconciler(workloads, "s4-reconciler", "--namespace", ns, "--no-leader-election") as rec:
        yield ns, rec


def test_pa_gets_scaledobject_sks_and_status(workloads: ControlPlane, hpa_ns: tuple[str, Reconciler]) -> None:
    cp = workloads
    ns, rec = hpa_ns
    rev = "hello-00001"
    annotations = {
        "autoscaling.knative.dev/metric": "cpu",
        "autoscaling.knative.dev/target": "75",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "5",
    }
    apply_json(cp, ns, _deployment(f"{rev}-deployment"), _pa(rev, annotations))
    pa = cp.get("podautoscaler", rev, ns)

    so = wait_until(
        lambda: cp.find("scaledobject", rev, ns),
        timeout=WAIT_S,
        what="the ScaledObject",
        on_timeout=_diag(rec),
    )
    assert so["metadata"]["ownerReferences"] == [
        {
            "apiVersion": PA_API,
            "kind": "PodAutoscaler",
            "name": rev,
            "uid": pa["metadata"]["uid"],
            "controller": True,
        }
    ]
    # The spec is exactly what `knscale translate` renders for the same PodAutoscaler.
    done = run_knscale(cp, "translate", "-o", "json", "-", input=json.dumps(pa))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    rendered = [d for d in (out["items"] if out["kind"] == "List" else [out]) if d["kind"] == "ScaledObject"]
    assert len(rendered) == 1, done.stdout
    assert so["spec"] == rendered[0]["spec"]
    assert so["spec"]["scaleTargetRef"]["name"] == f"{rev}-deployment"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == rev
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 5)
    assert [(t["type"], t["metricType"], t["metadata"]["value"]) for t in so["spec"]["triggers"]] == [
        ("cpu", "Utilization", "75")
    ]
    assert _event(cp, ns, rev, "ScaledObjectCreated") is not None
    # No HPA yet (KEDA has not made one): no ServerlessService either.
    assert cp.find("serverlessservice", rev, ns) is None

    # KEDA's part: the HPA named after the PA, with the status its controller would report.
    apply_json(cp, ns, _hpa(rev))
    cp.kubectl(
        "patch", "hpa", rev, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"currentReplicas": 1, "desiredReplicas": 1}}),
    )  # fmt: skip
    sks = wait_until(
        lambda: cp.find("serverlessservice", rev, ns),
        timeout=WAIT_S,
        what="the SKS",
        on_timeout=_diag(rec),
    )
    assert sks["spec"]["mode"] == "Serve"
    assert sks["spec"]["objectRef"] == pa["spec"]["scaleTargetRef"]
    assert sks["spec"]["protocolType"] == "http1"
    assert sks["metadata"]["ownerReferences"][0]["uid"] == pa["metadata"]["uid"]
    assert sks["metadata"]["ownerReferences"][0]["controller"] is True

    # Knative networking's part: the SKS becomes Ready with its two Services.
    since = "2026-01-01T00:00:00Z"
    sks_status = {
        "serviceName": rev,
        "privateServiceName": f"{rev}-private",
        "observedGeneration": sks["metadata"]["generation"],
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": since},
            {
                "type": "ActivatorEndpointsPopulated",
                "status": "False",
                "reason": "ServeMode",
                "lastTransitionTime": since,
            },
            {"type": "EndpointsPopulated", "status": "True", "lastTransitionTime": since},
        ],
    }
    patch = json.dumps({"status": sks_status})
    cp.kubectl(
        "patch", "serverlessservice", rev, "-n", ns, "--subresource=status", "--type=merge", "-p", patch
    )

    def ready_pa() -> dict[str, Any] | None:
        current = cp.get("podautoscaler", rev, ns)
        return current if _conditions(current).get("Ready", {}).get("status") == "True" else None

    ready = wait_until(ready_pa, timeout=WAIT_S, what="the PodAutoscaler to be Ready", on_timeout=_diag(rec))
    status = ready["status"]
    assert status["serviceName"] == rev
    assert status["metricsServiceName"] == f"{rev}-private"
    assert (status["desiredScale"], status["actualScale"]) == (1, 1)
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    conds = _conditions(ready)
    for t in ("Active", "SKSReady", "ScaleTargetInitialized", "Ready"):
        assert conds[t]["status"] == "True", (t, conds)

    # Editing the annotations updates the ScaledObject in place (same object, new spec).
    cp.kubectl(
        "annotate", "podautoscaler", rev, "-n", ns, "--overwrite",
        "autoscaling.knative.dev/target=50", "autoscaling.knative.dev/max-scale=8",
    )  # fmt: skip

    def updated() -> dict[str, Any] | None:
        current = cp.find("scaledobject", rev, ns)
        if current and current["spec"]["maxReplicaCount"] == 8:
            return current
        return None

    so2 = wait_until(updated, timeout=WAIT_S, what="the ScaledObject update", on_timeout=_diag(rec))
    assert so2["metadata"]["uid"] == so["metadata"]["uid"]
    assert [t["metadata"]["value"] for t in so2["spec"]["triggers"]] == ["50"]
    wait_until(lambda: _event(cp, ns, rev, "ScaledObjectUpdated"), timeout=WAIT_S, what="ScaledObjectUpdated")

    # Deleting the PodAutoscaler garbage-collects what it controls (kube-controller-manager's GC).
    cp.kubectl("delete", "podautoscaler", rev, "-n", ns, "--wait=true", timeout=90)
    wait_until(
        lambda: cp.find("scaledobject", rev, ns) is None and cp.find("serverlessservice", rev, ns) is None,
        timeout=60,
        what="the ScaledObject and SKS to be garbage-collected",
    )
    assert rec.alive(), rec.tail()


def test_foreign_scaledobject_is_reported_and_left_untouched(
    workloads: ControlPlane, hpa_ns: tuple[str, Reconciler]
) -> None:
    cp = workloads
    ns, rec = hpa_ns
    rev = "foreign-00001"
    foreign = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": rev, "labels": {"team": "platform"}},
        "spec": {
            "scaleTargetRef": {"name": "something-else"},
            "minReplicaCount": 2,
            "maxReplicaCount": 3,
            "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}],
        },
    }
    apply_json(cp, ns, foreign)
    before = cp.get("scaledobject", rev, ns)
    apply_json(
        cp,
        ns,
        _deployment(f"{rev}-deployment"),
        _pa(rev, {"autoscaling.knative.dev/metric": "cpu", "autoscaling.knative.dev/target": "70"}),
    )
    event = wait_until(
        lambda: _event(cp, ns, rev, "ScaledObjectNotOwned"),
        timeout=WAIT_S,
        what="a ScaledObjectNotOwned Event",
        on_timeout=_diag(rec),
    )
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "PodAutoscaler"
    assert rev in event["message"]

    def not_owned() -> dict[str, Any] | None:
        c = _conditions(cp.get("podautoscaler", rev, ns)).get("Active")
        return c if c and c["status"] == "False" and c.get("reason") == "NotOwned" else None

    wait_until(
        not_owned, timeout=WAIT_S, what="PodAutoscaler Active=False reason NotOwned", on_timeout=_diag(rec)
    )
    after = cp.get("scaledobject", rev, ns)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    assert not after["metadata"].get("ownerReferences")
    assert cp.find("serverlessservice", rev, ns) is None


def test_untranslatable_pa_is_marked_and_gets_no_scaledobject(
    workloads: ControlPlane, hpa_ns: tuple[str, Reconciler]
) -> None:
    cp = workloads
    ns, rec = hpa_ns
    rev = "broken-00001"
    apply_json(
        cp,
        ns,
        _deployment(f"{rev}-deployment"),
        _pa(rev, {"autoscaling.knative.dev/metric": "concurrency"}),  # hpa class, no target: KNS210
    )
    event = wait_until(
        lambda: _event(cp, ns, rev, "TranslationFailed"),
        timeout=WAIT_S,
        what="a TranslationFailed Event",
        on_timeout=_diag(rec),
    )
    assert event["type"] == "Warning" and "KNS210" in event["message"], event

    def marked() -> dict[str, Any] | None:
        c = _conditions(cp.get("podautoscaler", rev, ns)).get("Active")
        return c if c and c["status"] == "False" and c.get("reason") == "TranslationFailed" else None

    active = wait_until(marked, timeout=WAIT_S, what="Active=False TranslationFailed", on_timeout=_diag(rec))
    assert "KNS210" in active["message"]
    assert cp.find("scaledobject", rev, ns) is None
