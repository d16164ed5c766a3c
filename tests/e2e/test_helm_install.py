"""charts/knscale installed with real helm (tools/helm/build.sh) onto the real kube-apiserver.

Its own control plane: the chart registers webhook configurations named knscale-webhook, as the
session `webhook` fixture does with `knscale register`, and there is one of each per API server.
This control plane has no kube-controller-manager or nodes, so the chart's Deployments are stored
but run no pods: what is proven is the install itself (every object accepted by a 1.36 API
server, the release deployed, uninstall removes it) and the admission behaviour of the chart's
registration with no webhook answering: pods that ask for a model fail closed (failurePolicy
Fail), every other pod is admitted because the CEL matchConditions never send it (the claim that
makes Fail safe), validation fails open (Ignore), and knscale's own namespace is never sent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster import ControlPlane, ControlPlaneError, Toolchain, running_control_plane

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "knscale"
NAMESPACE = "knscale-system"
MODEL = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://bucket/model"}


@pytest.fixture(scope="module")
def cluster(toolchain: Toolchain) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(toolchain) as cp:
            yield cp
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)


def helm(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    path = subprocess.run(
        ["bash", str(ROOT / "tools/helm/build.sh"), "--print"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(path).is_file(), f"{path} is missing: `make e2e` builds it (tools/helm/build.sh)"
    env = {
        **cp.env(),
        "HELM_CACHE_HOME": str(cp.home / "helm-cache"),
        "HELM_CONFIG_HOME": str(cp.home / "helm"),
    }
    env["HELM_DATA_HOME"] = str(cp.home / "helm-data")
    done = subprocess.run(
        [path, *args, "--kubeconfig", str(cp.kubeconfig)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _pod(name: str, annotations: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        }
    )


@pytest.fixture(scope="module")
def release(cluster: ControlPlane) -> Iterator[list[dict[str, Any]]]:
    cluster.create_namespace(NAMESPACE)  # with its default ServiceAccount (no controller-manager here)
    helm(cluster, "install", "knscale", str(CHART), "--namespace", NAMESPACE)
    manifest = helm(cluster, "get", "manifest", "knscale", "--namespace", NAMESPACE).stdout
    yield [d for d in yaml.safe_load_all(manifest) if d]
    helm(cluster, "uninstall", "knscale", "--namespace", NAMESPACE, check=False)


def test_helm_install_stores_every_object_of_the_chart(
    cluster: ControlPlane, release: list[dict[str, Any]]
) -> None:
    status = json.loads(helm(cluster, "status", "knscale", "--namespace", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in release)
    assert ("MutatingWebhookConfiguration", "knscale-webhook") in kinds and (
        "Deployment",
        "knscale-reconciler",
    ) in kinds
    for obj in release:
        namespaced = "namespace" in obj["metadata"]
        stored = cluster.get(obj["kind"].lower(), obj["metadata"]["name"], NAMESPACE if namespaced else None)
        assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        if obj["kind"].endswith("WebhookConfiguration"):
            assert stored["webhooks"] == obj["webhooks"]  # nothing defaulted, nothing dropped
        if obj["kind"] == "Deployment":
            assert (
                stored["spec"]["template"]["spec"]["containers"][0]["image"]
                == "ghcr.io/knscale/knscale:0.1.0"
            )


def test_chart_registration_fails_closed_only_for_pods_that_ask(
    cluster: ControlPlane, release: list[dict[str, Any]]
) -> None:
    del release
    cluster.create_namespace("team-a")
    plain = cluster.kubectl("apply", "-n", "team-a", "-f", "-", input=_pod("plain", {}), check=False)
    assert plain.returncode == 0, plain.stderr  # never sent to the (unreachable) webhook
    judged = cluster.kubectl(
        "apply",
        "-n",
        "team-a",
        "-f",
        "-",
        input=_pod("judged", {"autoscaling.knative.dev/min-scale": "1"}),
        check=False,
    )
    assert judged.returncode == 0, judged.stderr  # /validate is sent, fails, and is ignored
    asks = cluster.kubectl("apply", "-n", "team-a", "-f", "-", input=_pod("asks", MODEL), check=False)
    assert asks.returncode != 0
    assert 'failed calling webhook "inject-model.knscale.dev"' in asks.stderr, asks.stderr
    assert not cluster.exists("pod", "asks", "team-a")
    own = cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=_pod("own", MODEL), check=False)
    assert own.returncode == 0, own.stderr  # knscale's own namespace is excluded by name


def test_helm_uninstall_removes_the_registration(
    cluster: ControlPlane, release: list[dict[str, Any]]
) -> None:
    helm(cluster, "uninstall", "knscale", "--namespace", NAMESPACE)
    for obj in release:
        namespaced = "namespace" in obj["metadata"]
        assert not cluster.exists(
            obj["kind"].lower(), obj["metadata"]["name"], NAMESPACE if namespaced else None
        )
    after = cluster.kubectl("apply", "-n", "team-a", "-f", "-", input=_pod("after", MODEL), check=False)
    assert after.returncode == 0, after.stderr
