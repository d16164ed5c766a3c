"""Scenario 4 through the real Knative Serving and the real KEDA: HPA class, end to end.

Running for this module: Knative Serving's controller and webhook (knative_cp.py), KEDA's operator,
admission webhooks and metrics adapter (keda_cp.py), a kube-controller-manager with only the HPA
controller, a real Prometheus scraping a test exporter, and `knscale reconcile`.

`kn service create` with the hpa class → Knative's controller creates the Revision, its Deployment and an
HPA-class PodAutoscaler → `knscale reconcile` writes the ScaledObject (owned by the PA) → KEDA's admission
webhook validates it → KEDA's operator creates its HPA (named after the PA) → knscale sees the HPA and
writes the ServerlessService (Serve) and the PA's status → the Revision becomes Ready (and, with the SKS
and the Route's Ingress marked Ready as a networking layer would, the Service). The exporter's value
goes through Prometheus, KEDA's operator and adapter (external.metrics.k8s.io, through the aggregation
layer) to kube-controller-manager's HPA controller, which changes the Deployment's replicas. Deleting the
Service garbage-collects the ScaledObject and KEDA's HPA. Also a plain Deployment with the hpa class (no
Knative object): its ScaledObject, KEDA's HPA, scaling to 3, garbage collection.

Knative's autoscaler-hpa does not run, and must not beside knscale: it reconciles the same HPA-class
PodAutoscalers — it would create an HPA of its own *with the same name* (the PA's), owned by the PA,
where KEDA's HPA (owned by the ScaledObject) already is, and write the same PA status and SKS that
knscale writes. Two controllers would fight over every field. The test asserts the HPA KEDA made is the
only one and is controlled by the ScaledObject, and that no autoscaler-hpa process runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, wait_until
from keda_cp import Keda, keda_stack
from knative_cp import KnativeServing, digest_image
from knscale_procs import Exporter, Prometheus, Reconciler, apply_json, new_namespace, reconciler
from manifests import workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

HPA_CLASS = "hpa.autoscaling.knative.dev"
IMAGE = digest_image("registry.knscale.invalid/hello", "hello")
WAIT_S = 90.0


@pytest.fixture(scope="module")
def stack(
    workloads: ControlPlane, knative: KnativeServing
) -> Iterator[tuple[str, Keda, Prometheus, Exporter, Reconciler]]:
    cp = workloads
    try:
        with keda_stack(cp) as (keda, prom, exporter):
            ns = new_namespace(cp, "s4k")
            with reconciler(cp, "s4k-reconciler", "--namespace", ns, "--no-leader-election") as rec:
                yield ns, keda, prom, exporter, rec
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)


def _conds(obj: dict[str, Any] | None) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj or {}).get("status", {}).get("conditions") or []}


def _mark_sks_ready(cp: ControlPlane, ns: str, name: str) -> None:
    """What Knative's SKS reconciler (in the autoscaler binary, not run) would report in Serve mode."""
    sks = cp.get("serverlessservice", name, ns)
    since = "2026-01-01T00:00:00Z"
    status = {
        "serviceName": name,
        "privateServiceName": f"{name}-private",
        "observedGeneration": sks["metadata"]["generation"],
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": since},
            {"type": "EndpointsPopulated", "status": "True", "lastTransitionTime": since},
            {
                "type": "ActivatorEndpointsPopulated",
                "status": "False",
                "reason": "ServeMode",
                "lastTransitionTime": since,
            },
        ],
    }
    cp.kubectl(
        "patch", "serverlessservice", name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_hpa_class_service_scales_through_keda_and_is_garbage_collected(
    workloads: ControlPlane,
    knative: KnativeServing,
    stack: tuple[str, Keda, Prometheus, Exporter, Reconciler],
) -> None:
    cp = workloads
    ns, keda, prom, exporter, rec = stack
    name = "hello"
    revision = f"{name}-00001"

    def diag() -> str:
        return f"{knative.tails()}\n{keda.tails()}\n--- reconciler ---\n{rec.tail()}"

    exporter.set(ns, name, 1)
    query = f'sum(knscale_e2e_inflight_requests{{namespace="{ns}",name="{name}"}})'
    prom.wait_for_value(query, 1)
    annotations = {
        "autoscaling.knative.dev/class": HPA_CLASS,
        "autoscaling.knative.dev/metric": "rps",
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "4",
        "autoscaling.knative.dev/prometheus-address": prom.url,
        "autoscaling.knative.dev/prometheus-query": query,
    }
    args = ["service", "create", name, "-n", ns, "--image", IMAGE, "--no-wait"]
    for key, value in annotations.items():
        args += ["--annotation-revision", f"{key}={value}"]
    done = cp.kn(*args)
    assert f"Service '{name}' created" in done.stdout, done.stdout + done.stderr

    # Knative's controller: the Revision's HPA-class PodAutoscaler.
    pa = wait_until(
        lambda: cp.find("podautoscaler", revision, ns),
        timeout=WAIT_S,
        what="Knative's PA",
        on_timeout=diag,
    )
    assert pa["metadata"]["annotations"]["autoscaling.knative.dev/class"] == HPA_CLASS
    assert pa["metadata"]["ownerReferences"][0]["kind"] == "Revision"

    # knscale: the ScaledObject, owned by the PA; KEDA's webhook validated it.
    so = wait_until(
        lambda: cp.find("scaledobject", revision, ns),
        timeout=WAIT_S,
        what="the ScaledObject",
        on_timeout=diag,
    )
    owner = so["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("PodAutoscaler", revision, pa["metadata"]["uid"])
    trigger = so["spec"]["triggers"][0]
    assert (trigger["type"], trigger["metadata"]["serverAddress"]) == ("prometheus", prom.url)
    wait_until(
        lambda: (
            "scaledobject is valid" in keda.components[1].log.read_text(errors="replace")
            and revision in keda.components[1].log.read_text(errors="replace")
        ),
        timeout=WAIT_S,
        what="KEDA's admission webhook to validate the ScaledObject",
        on_timeout=diag,
    )

    # KEDA's operator: its HPA, named after the PA, controlled by the ScaledObject; the SO Ready.
    hpa = wait_until(lambda: cp.find("hpa", revision, ns), timeout=WAIT_S, what="KEDA's HPA", on_timeout=diag)
    hpa_owner = hpa["metadata"]["ownerReferences"][0]
    assert (hpa_owner["kind"], hpa_owner["name"], hpa_owner.get("controller")) == (
        "ScaledObject",
        revision,
        True,
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["type"] == "External"
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{revision}-deployment"
    wait_until(
        lambda: _conds(cp.find("scaledobject", revision, ns)).get("Ready") == "True",
        timeout=WAIT_S,
        what="the ScaledObject Ready (KEDA's operator)",
        on_timeout=diag,
    )
    # Knative's autoscaler-hpa is not running; it would make an HPA of the same name, owned by the PA.
    assert not [c for c in cp.components if "autoscaler-hpa" in c.name]
    hpas = json.loads(cp.kubectl("get", "hpa", "-n", ns, "-o", "json").stdout)["items"]
    assert [h["metadata"]["name"] for h in hpas] == [revision]

    # knscale: SKS (Serve) once the HPA exists; the networking part is marked Ready by the test.
    sks = wait_until(
        lambda: cp.find("serverlessservice", revision, ns),
        timeout=WAIT_S,
        what="the SKS",
        on_timeout=diag,
    )
    assert sks["spec"]["mode"] == "Serve"
    assert sks["metadata"]["ownerReferences"][0]["uid"] == pa["metadata"]["uid"]
    _mark_sks_ready(cp, ns, revision)
    wait_until(
        lambda: _conds(cp.find("podautoscaler", revision, ns)).get("Ready") == "True",
        timeout=WAIT_S,
        what="the PA Ready (knscale)",
        on_timeout=diag,
    )
    wait_until(
        lambda: _conds(cp.find("revision", revision, ns)).get("Ready") == "True",
        timeout=WAIT_S,
        what="the Revision Ready (Knative's controller)",
        on_timeout=diag,
    )

    # The Route's Ingress, as a networking layer would report it: the Service becomes Ready.
    knative.mark_ingress_ready(ns, name)
    wait_until(
        lambda: _conds(cp.find("ksvc", name, ns)).get("Ready") == "True",
        timeout=WAIT_S,
        what="the Knative Service Ready",
        on_timeout=diag,
    )

    # The metric, end to end: 12 rps at a target of 5 per pod -> ceil(12 / 5) = 3 replicas.
    exporter.set(ns, name, 12)
    prom.wait_for_value(query, 12)

    def scaled_to(n: int) -> Any:
        def check() -> dict[str, Any] | None:
            keda.check_alive()
            deployment = cp.find("deployment", f"{revision}-deployment", ns)
            current = cp.find("hpa", revision, ns)
            replicas = (deployment or {}).get("spec", {}).get("replicas")
            if current and replicas == n and current.get("status", {}).get("desiredReplicas") == n:
                return current
            return None

        return check

    scaled = wait_until(
        scaled_to(3), timeout=WAIT_S, what="the HPA controller to scale to 3", on_timeout=diag
    )
    metric = scaled["status"]["currentMetrics"][0]["external"]
    assert metric["metric"]["name"].startswith("s0-prometheus"), metric
    assert float(metric["current"]["averageValue"].rstrip("m") or 0) > 0, metric

    # Deleting the Service: Configuration -> Revision -> PA -> ScaledObject -> KEDA's HPA are collected.
    cp.kubectl("delete", "ksvc", name, "-n", ns, "--wait=true", timeout=120)
    wait_until(
        lambda: cp.find("scaledobject", revision, ns) is None and cp.find("hpa", revision, ns) is None,
        timeout=WAIT_S,
        what="the ScaledObject and KEDA's HPA to be garbage-collected",
        on_timeout=diag,
    )
    assert cp.find("podautoscaler", revision, ns) is None
    assert rec.alive(), rec.tail()


def test_plain_deployment_with_the_hpa_class_scales_through_keda(
    workloads: ControlPlane, stack: tuple[str, Keda, Prometheus, Exporter, Reconciler]
) -> None:
    """No Knative object at all: an HPA-class Deployment gets a ScaledObject named after it (owned by
    it), KEDA's HPA, and the HPA controller scales it on the Prometheus value; deleting the
    Deployment collects both."""
    cp = workloads
    ns, keda, prom, exporter, rec = stack
    name = "plain"

    def diag() -> str:
        return f"{keda.tails()}\n--- reconciler ---\n{rec.tail()}"

    exporter.set(ns, name, 1)
    query = f'sum(knscale_e2e_inflight_requests{{namespace="{ns}",name="{name}"}})'
    prom.wait_for_value(query, 1)
    deployment = workload(
        name,
        containers=[{"name": "app", "image": IMAGE}],
        annotations={
            "autoscaling.knative.dev/class": HPA_CLASS,
            "autoscaling.knative.dev/metric": "rps",
            "autoscaling.knative.dev/target": "5",
            "autoscaling.knative.dev/min-scale": "1",
            "autoscaling.knative.dev/max-scale": "4",
            "autoscaling.knative.dev/prometheus-address": prom.url,
            "autoscaling.knative.dev/prometheus-query": query,
        },
    )
    apply_json(cp, ns, deployment)
    uid = cp.get("deployment", name, ns)["metadata"]["uid"]
    so = wait_until(
        lambda: cp.find("scaledobject", name, ns),
        timeout=WAIT_S,
        what="the ScaledObject",
        on_timeout=diag,
    )
    owner = so["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner.get("controller")) == ("Deployment", uid, True)
    hpa = wait_until(lambda: cp.find("hpa", name, ns), timeout=WAIT_S, what="KEDA's HPA", on_timeout=diag)
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"

    exporter.set(ns, name, 12)
    prom.wait_for_value(query, 12)

    def scaled() -> bool:
        current = cp.find("deployment", name, ns)
        return bool(current) and current["spec"]["replicas"] == 3

    wait_until(scaled, timeout=WAIT_S, what="the HPA to scale the Deployment to 3", on_timeout=diag)
    cp.kubectl("delete", "deployment", name, "-n", ns, "--wait=true", timeout=120)
    wait_until(
        lambda: cp.find("scaledobject", name, ns) is None and cp.find("hpa", name, ns) is None,
        timeout=WAIT_S,
        what="the ScaledObject and KEDA's HPA to be garbage-collected",
        on_timeout=diag,
    )
