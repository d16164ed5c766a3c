"""Scenario 1's checks, run through whichever knscale webhook a test module set up: the session's
`knscale register --url` process (test_scenario_1_injection.py) or the helm-installed chart served by
`knscale serve --in-cluster` behind its Service (test_helm_install.py). Each check applies objects with
kubectl to the real API server and asserts on what it stored or refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from cluster import ControlPlane, wait_until
from manifests import DOWNLOADER, MODEL_URI, SEED_ANNOTATIONS, assert_injected, workload

SEED_IMAGE = "gcr.io/knative-samples/helloworld-go"
# What kubectl prints for each bare seed key: the rule id and the canonical key to use instead.
CANONICAL = {
    "injectModelInitContainer": "knscale.dev/inject-model",
    "modelBucket": "knscale.dev/model-uri",
    "modelPath": "knscale.dev/model-uri",
    "initContainerImage": "knscale.dev/model-init-image",
}
SA_TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Pods that do not opt in (the ids of test parameters): each must be stored as sent.
NOT_OPTED_IN: dict[str, dict[str, str]] = {
    "no-flag": {k: v for k, v in SEED_ANNOTATIONS.items() if k != "injectModelInitContainer"},
    "flag-false": {**SEED_ANNOTATIONS, "injectModelInitContainer": "false"},
    "no-annotations": {},
}


def pod(
    name: str, annotations: dict[str, str], containers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": containers or [{"name": "app", "image": SEED_IMAGE}]},
    }


def apply(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> str:
    """kubectl apply; returns kubectl's stderr (where API warnings are printed)."""
    return cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj)).stderr


def assert_seed_warnings(stderr: str) -> None:
    for key, canonical in CANONICAL.items():
        pattern = rf"Warning: KNS004: {re.escape(key)} is a legacy key, use {re.escape(canonical)}"
        assert re.search(pattern, stderr), (key, stderr)


def assert_untouched(stored: dict[str, Any]) -> None:
    spec = stored["spec"]
    assert not spec.get("initContainers"), spec.get("initContainers")
    # Only what the ServiceAccount admission plugin adds: the projected token volume and its mount.
    assert [v["name"].startswith("kube-api-access-") for v in spec["volumes"]] == [True]
    for c in spec["containers"]:
        assert [m["mountPath"] for m in c.get("volumeMounts") or []] == [SA_TOKEN_MOUNT]
    assert "knscale.dev/model-injected" not in (stored["metadata"].get("annotations") or {})
    assert not (spec.get("securityContext") or {}).get("fsGroup")


def check_seed_pod(cp: ControlPlane, ns: str) -> None:
    """The seed's pod is stored injected, with a KNS004 warning per legacy key, its annotations kept."""
    assert_seed_warnings(apply(cp, ns, pod("seed", dict(SEED_ANNOTATIONS))))
    stored = cp.get("pod", "seed", ns)
    assert_injected(stored, ["app"])
    for key, value in SEED_ANNOTATIONS.items():
        assert stored["metadata"]["annotations"][key] == value


def check_canonical_keys(cp: ControlPlane, ns: str) -> None:
    canonical = {
        "knscale.dev/inject-model": "true",
        "knscale.dev/model-uri": MODEL_URI,
        "knscale.dev/model-init-image": DOWNLOADER,
    }
    assert "KNS004" not in apply(cp, ns, pod("canon", canonical))
    inits = cp.get("pod", "canon", ns)["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["knscale-model-init"]
    assert inits[0]["args"] == [MODEL_URI, "/mnt/models"]


def check_not_opted_in(cp: ControlPlane, ns: str, case: str) -> None:
    annotations = NOT_OPTED_IN[case]
    stderr = apply(cp, ns, pod("plain", annotations))
    assert_untouched(cp.get("pod", "plain", ns))
    if "modelBucket" in annotations and annotations.get("injectModelInitContainer") != "false":
        # /validate still judges the keys: they do nothing without the flag, and it says so.
        assert "KNS003" in stderr, stderr


def check_bad_flag_refused(cp: ControlPlane, ns: str) -> None:
    """An inject flag that is neither true nor false is refused, naming rule KNS001; nothing stored."""
    bad = pod("flag-yes", {**SEED_ANNOTATIONS, "injectModelInitContainer": "yes"})
    done = cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert done.returncode != 0, done.stdout
    assert "KNS001" in done.stderr and "denied the request" in done.stderr, done.stderr
    assert not cp.exists("pod", "flag-yes", ns)


def check_deployment_pods(cp: ControlPlane, ns: str, cache_hits: Callable[[], float] | None = None) -> None:
    """kube-controller-manager creates a Deployment's pods; the webhook injects every one (all pods
    after the first from its decision cache, when ``cache_hits`` can read that counter); the
    Deployment's own template is not mutated."""
    container = {"name": "app", "image": SEED_IMAGE}
    deployment = workload(
        "model-server", replicas=3, containers=[container], template_annotations=SEED_ANNOTATIONS
    )
    hits_before = cache_hits() if cache_hits else 0.0
    assert_seed_warnings(apply(cp, ns, deployment))  # /validate reads model keys on the pod template
    for stored in wait_pods(cp, ns, "app=model-server", 3):
        assert_injected(stored, ["app"])
    if cache_hits is not None:
        assert cache_hits() - hits_before >= 2
    template = cp.get("deployment", "model-server", ns)["spec"]["template"]["spec"]
    assert not template.get("initContainers")
    cp.kubectl("rollout", "status", "-n", ns, "deployment/model-server", "--timeout=60s", timeout=90)


def check_kn_service_and_revision_pod(cp: ControlPlane, ns: str) -> None:
    """The seed's exact `kn service create` is accepted (with the warnings); the pod Knative would
    render for its revision — user-container + queue-proxy, the template's annotations — is injected,
    with the model mounted into user-container only."""
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
    assert_seed_warnings(done.stderr)
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
    apply(cp, ns, deployment)
    [pod] = wait_pods(cp, ns, f"serving.knative.dev/revision={revision}", 1)
    assert_injected(pod, ["user-container"], skipped=("queue-proxy",))
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["TARGET"] == "World"  # the user's container is otherwise as Knative rendered it


def wait_pods(cp: ControlPlane, ns: str, selector: str, count: int) -> list[dict[str, Any]]:
    def pods() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = json.loads(
            cp.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout
        )["items"]
        return items if len(items) == count else None

    return wait_until(pods, timeout=90, what=f"{count} pods {selector} in {ns}")
