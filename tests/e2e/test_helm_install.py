"""charts/knscale installed with real helm (tools/helm/build.sh) onto the real kube-apiserver, and
scenario 1 run through the chart's own webhook (issue 14).

Its own control plane: the chart registers webhook configurations named knscale-webhook, as the
session `webhook` fixture does with `knscale register`, and there is one of each per API server.
No kubelet runs here, so the chart's webhook pods never answer; first, with no webhook answering,
what is proven is the install itself (every object accepted by a 1.36 API server, the release
deployed) and the admission behaviour of the chart's registration: pods that ask for a model fail
closed (failurePolicy Fail), every other pod is admitted because the CEL matchConditions never send
it (the claim that makes Fail safe), validation fails open (Ignore), and knscale's own namespace is
never sent. Then the chart's webhook is made to answer: `knscale serve --in-cluster` with the chart's
arguments, ConfigMap and ServiceAccount (incluster_webhook.py) creates the chart's certificate Secret
and fills the caBundle of the chart's configurations, and an EndpointSlice points the chart's Service
at it, so the API server calls it through the chart's service reference; scenario 1's checks
(injection_checks.py) pass through it. Uninstall removes the registration.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import injection_checks as checks
import pytest
import yaml
from cluster import ControlPlane, ControlPlaneError, Toolchain, running_control_plane, wait_until
from cryptography import x509
from helm_release import CHART, NAMESPACE, helm
from incluster_webhook import (
    InClusterWebhook,
    apply_endpoint_slices,
    ca_bundles,
    config_file_from_chart,
    secret,
)
from knscale_procs import new_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://bucket/model"}


@pytest.fixture(scope="module")
def cluster(toolchain: Toolchain) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(toolchain, workloads=True) as cp:
            yield cp
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)


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


@pytest.fixture(scope="module")
def served(cluster: ControlPlane, release: list[dict[str, Any]]) -> Iterator[InClusterWebhook]:
    """The chart's webhook Deployment, run as a local process: its arguments, ConfigMap and
    ServiceAccount; reached through the chart's Service by an EndpointSlice."""
    [deployment] = [
        o for o in release if o["kind"] == "Deployment" and o["metadata"]["name"] == "knscale-webhook"
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["serve", "--in-cluster"], args  # the chart's self-managed certificate mode
    # Address, port and paths are the pod's; everything else the chart passes is passed as is.
    local = ("--host=", "--port=", "--cert-dir=", "--config=")
    hook = InClusterWebhook(
        cluster,
        "chart-webhook",
        config_file_from_chart(cluster, cluster.root),
        [a for a in args[2:] if not a.startswith(local)],
    )
    try:
        hook.start()
        apply_endpoint_slices(cluster, {"chart-webhook": hook.port})
        probe = _pod("probe", MODEL)
        wait_until(
            lambda: (
                cluster.kubectl(
                    "create", "-n", "team-a", "--dry-run=server", "-f", "-", input=probe, check=False
                ).returncode
                == 0
            ),
            timeout=60,
            what="the API server to reach the chart's webhook through its Service",
            on_timeout=hook.tail,
        )
        yield hook
    finally:
        hook.stop()


def test_chart_certificate_flow_fills_the_chart_registration(
    cluster: ControlPlane, served: InClusterWebhook
) -> None:
    """The server made the chart's Secret (as the chart's Role allows) and put its CA into every
    webhook of the chart's two configurations; the leaf it serves chains to that CA and names the
    chart's Service, and the registration still calls the Service, not a URL."""
    stored = secret(cluster)
    assert stored is not None and stored["type"] == "kubernetes.io/tls"
    ca_pem = base64.b64decode(stored["data"]["ca.crt"])
    for kind, bundles in ca_bundles(cluster).items():
        assert bundles and all(base64.b64decode(b) == ca_pem for b in bundles), kind
    leaf = x509.load_der_x509_certificate(served.served_leaf())
    ca = x509.load_pem_x509_certificate(ca_pem)
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"knscale-webhook.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    for hook in cluster.get("mutatingwebhookconfiguration", "knscale-webhook")["webhooks"]:
        assert hook["clientConfig"]["service"] == {
            "name": "knscale-webhook", "namespace": NAMESPACE, "path": "/mutate", "port": 443,
        }  # fmt: skip
        assert "url" not in hook["clientConfig"]
    assert served.trusted_by(ca_bundles(cluster)["mutatingwebhookconfiguration"][0])


def test_seed_pod_is_injected_through_the_chart(cluster: ControlPlane, served: InClusterWebhook) -> None:
    before = served.metric("knscale_webhook_requests_total", endpoint="mutate", outcome="patched")
    checks.check_seed_pod(cluster, new_namespace(cluster, "helm-s1-pod"))
    checks.check_canonical_keys(cluster, new_namespace(cluster, "helm-s1-canon"))
    # The chart's replica answered them (nothing else is registered on this API server).
    assert served.metric("knscale_webhook_requests_total", endpoint="mutate", outcome="patched") > before


def test_bad_flag_is_refused_through_the_chart(cluster: ControlPlane, served: InClusterWebhook) -> None:
    checks.check_bad_flag_refused(cluster, new_namespace(cluster, "helm-s1-bad"))


@pytest.mark.parametrize("case", sorted(checks.NOT_OPTED_IN))
def test_pod_without_opt_in_is_untouched_through_the_chart(
    cluster: ControlPlane, served: InClusterWebhook, case: str
) -> None:
    checks.check_not_opted_in(cluster, new_namespace(cluster, "helm-s1-plain"), case)


def test_deployment_pods_are_injected_through_the_chart(
    cluster: ControlPlane, served: InClusterWebhook
) -> None:
    hits = {"endpoint": "mutate", "result": "hit"}
    checks.check_deployment_pods(
        cluster,
        new_namespace(cluster, "helm-s1-deploy"),
        lambda: served.metric("knscale_webhook_decision_cache_total", **hits),
    )


def test_kn_service_from_the_seed_through_the_chart(cluster: ControlPlane, served: InClusterWebhook) -> None:
    checks.check_kn_service_and_revision_pod(cluster, new_namespace(cluster, "helm-s1-kn"))


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
