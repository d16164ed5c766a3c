"""Scenario 1: model injection through the real admission chain.

`kubectl apply` / `kn service create` go to a real kube-apiserver that calls `knscale serve`
(registered by `knscale register --apply`); every assertion reads what the API server stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Webhook, new_namespace
from manifests import DOWNLOADER, MODEL_URI, SEED_ANNOTATIONS, assert_injected, workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SEED_IMAGE = "gcr.io/knative-samples/helloworld-go"
# What kubectl prints for each bare seed key: the rule id and the canonical key to use instead.
CANONICAL = {
    "injectModelInitContainer": "knscale.dev/inject-model",
    "modelBucket": "knscale.dev/model-uri",
    "modelPath": "knscale.dev/model-uri",
    "initContainerImage": "knscale.dev/model-init-image",
}
SA_TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pod(
    name: str, annotations: dict[str, str], containers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": containers or [{"name": "app", "image": SEED_IMAGE}]},
    }


def _apply(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> str:
    """kubectl apply; returns kubectl's stderr (where API warnings are printed)."""
    done = cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))
    return done.stderr


def _assert_seed_warnings(stderr: str) -> None:
    for key, canonical in CANONICAL.items():
        assert re.search(
            rf"Warning: KNS004: {re.escape(key)} is a legacy key, use {re.escape(canonical)}", stderr
        ), (
            key,
            stderr,
        )


def _assert_untouched(pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    assert not spec.get("initContainers"), spec.get("initContainers")
    # Only what the ServiceAccount admission plugin adds: the projected token volume and its mount.
    assert [v["name"].startswith("kube-api-access-") for v in spec["volumes"]] == [True]
    for c in spec["containers"]:
        assert [m["mountPath"] for m in c.get("volumeMounts") or []] == [SA_TOKEN_MOUNT]
    assert "knscale.dev/model-injected" not in (pod["metadata"].get("annotations") or {})
    assert not (spec.get("securityContext") or {}).get("fsGroup")


def test_seed_pod_is_injected_with_warnings(control_plane: ControlPlane, webhook: Webhook) -> None:
    ns = new_namespace(control_plane, "s1-pod")
    stderr = _apply(control_plane, ns, _pod("seed", dict(SEED_ANNOTATIONS)))
    _assert_seed_warnings(stderr)
    stored = control_plane.get("pod", "seed", ns)
    assert_injected(stored, ["app"])
    # The user's annotations are kept as written; only the status marker is added.
    for key, value in SEED_ANNOTATIONS.items():
        assert stored["metadata"]["annotations"][key] == value


def test_canonical_keys_inject_without_legacy_warnings(control_plane: ControlPlane, webhook: Webhook) -> None:
    ns = new_namespace(control_plane, "s1-canon")
    pod = _pod(
        "canon",
        {
            "knscale.dev/inject-model": "true",
            "knscale.dev/model-uri": MODEL_URI,
            "knscale.dev/model-init-image": DOWNLOADER,
        },
    )
    stderr = _apply(control_plane, ns, pod)
    assert "KNS004" not in stderr
    stored = control_plane.get("pod", "canon", ns)
    inits = stored["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["knscale-model-init"]
    assert inits[0]["args"] == [MODEL_URI, "/mnt/models"]


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param(
            {k: v for k, v in SEED_ANNOTATIONS.items() if k != "injectModelInitContainer"}, id="no-flag"
        ),
        pytest.param({**SEED_ANNOTATIONS, "injectModelInitContainer": "false"}, id="flag-false"),
        pytest.param({}, id="no-annotations"),
    ],
)
def test_pod_without_opt_in_is_stored_unchanged(
    control_plane: ControlPlane, webhook: Webhook, annotations: dict[str, str]
) -> None:
    ns = new_namespace(control_plane, "s1-plain")
    stderr = _apply(control_plane, ns, _pod("plain", annotations))
    stored = control_plane.get("pod", "plain", ns)
    _assert_untouched(stored)
    if "modelBucket" in annotations and annotations.get("injectModelInitContainer") != "false":
        # /validate still judges the keys: they do nothing without the flag, and it says so.
        assert "KNS003" in stderr, stderr


def test_deployment_pods_are_injected(workloads: ControlPlane, webhook: Webhook) -> None:
    """kube-controller-manager creates the pods (Deployment → ReplicaSet → Pod): the webhook sees
    them as the controller's CREATEs, not kubectl's, and injects every one. Those reviews are the
    same bytes but for their uid (generateName is resolved after admission), so all pods after the
    first are answered from the decision cache (webhook/decision_cache.py)."""
    cp = workloads
    ns = new_namespace(cp, "s1-deploy")
    container = {"name": "app", "image": SEED_IMAGE}
    deployment = workload(
        "model-server", replicas=3, containers=[container], template_annotations=SEED_ANNOTATIONS
    )
    hits = {"endpoint": "mutate", "result": "hit"}
    hits_before = webhook.metric("knscale_webhook_decision_cache_total", **hits)
    stderr = _apply(cp, ns, deployment)
    _assert_seed_warnings(stderr)  # /validate reads model keys on the pod template
    pods = _wait_pods(cp, ns, "app=model-server", 3)
    for pod in pods:
        assert_injected(pod, ["app"])
    assert webhook.metric("knscale_webhook_decision_cache_total", **hits) - hits_before >= 2, webhook.tail()
    # The Deployment's own template is not mutated (only pods are): kubectl apply stays idempotent.
    stored = cp.get("deployment", "model-server", ns)
    assert not stored["spec"]["template"]["spec"].get("initContainers")
    cp.kubectl("rollout", "status", "-n", ns, "deployment/model-server", "--timeout=60s", timeout=90)


def test_kn_service_create_from_the_seed_and_its_revision_pod(
    workloads: ControlPlane, webhook: Webhook
) -> None:
    """The seed's exact `kn service create` is accepted (with the warnings); the pod Knative would
    render for its revision — user-container + queue-proxy, the template's annotations — is injected,
    with the model mounted into user-container only."""
    cp = workloads
    ns = new_namespace(cp, "s1-kn")
    done = cp.kn(
        "service",
        "create",
        "helloworld-go",
        "-n",
        ns,
        "--image",
        SEED_IMAGE,
        "--env",
        "TARGET=World",
        "--annotation",
        "autoscaling.knative.dev/target=10",
        "--annotation",
        "modelBucket=autotables_47",
        "--annotation",
        "modelPath=/autotables/47/trained_model/2616/1629363245/",
        "--annotation",
        f"initContainerImage={DOWNLOADER}",
        "--annotation",
        "injectModelInitContainer=true",
        "--no-wait",
    )
    assert "Service 'helloworld-go' created" in done.stdout, done.stdout
    _assert_seed_warnings(done.stderr)
    ksvc = cp.get("ksvc", "helloworld-go", ns)
    template_annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
    for key, value in SEED_ANNOTATIONS.items():
        assert template_annotations[key] == value
    assert template_annotations["autoscaling.knative.dev/target"] == "10"

    # No Knative controller runs: render the revision's Deployment the way Knative's revision
    # reconciler does, and let kube-controller-manager create its pod.
    revision = "helloworld-go-00001"
    labels = {
        "app": revision,
        "serving.knative.dev/service": "helloworld-go",
        "serving.knative.dev/configuration": "helloworld-go",
        "serving.knative.dev/configurationGeneration": "1",
        "serving.knative.dev/revision": revision,
    }
    user = dict(ksvc["spec"]["template"]["spec"]["containers"][0])
    user.update(
        name="user-container",
        ports=[{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}],
        env=[
            *user.get("env", []),
            {"name": "PORT", "value": "8080"},
            {"name": "K_REVISION", "value": revision},
            {"name": "K_CONFIGURATION", "value": "helloworld-go"},
            {"name": "K_SERVICE", "value": "helloworld-go"},
        ],
        lifecycle={"preStop": {"httpGet": {"path": "/wait-for-drain", "port": 8022}}},
    )
    queue_proxy = {
        "name": "queue-proxy",
        "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.23.0",
        "ports": [
            {"name": "http-queueadm", "containerPort": 8022},
            {"name": "http-autometric", "containerPort": 9090},
            {"name": "http-usermetric", "containerPort": 9091},
            {"name": "queue-port", "containerPort": 8012},
        ],
        "env": [{"name": "SERVING_REVISION", "value": revision}, {"name": "USER_PORT", "value": "8080"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8012}},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{revision}-deployment", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"serving.knative.dev/revision-uid": "e2e-rev-uid"}},
            "template": {
                "metadata": {
                    "labels": {**labels, "serving.knative.dev/revision-uid": "e2e-rev-uid"},
                    "annotations": dict(template_annotations),
                },
                "spec": {
                    "containers": [user, queue_proxy],
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 300,
                },
            },
        },
    }
    _apply(cp, ns, deployment)
    [pod] = _wait_pods(cp, ns, f"serving.knative.dev/revision={revision}", 1)
    assert_injected(pod, ["user-container"], skipped=("queue-proxy",))
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["TARGET"] == "World"  # the user's container is otherwise as Knative rendered it


def _wait_pods(cp: ControlPlane, ns: str, selector: str, count: int) -> list[dict[str, Any]]:
    def pods() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = json.loads(
            cp.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout
        )["items"]
        return items if len(items) == count else None

    return wait_until(pods, timeout=60, what=f"{count} pods {selector} in {ns}")
