"""Scenario 1 through the real Knative Serving: the seed's `kn service create`, end to end.

Knative Serving's own controller and webhook (knative_cp.py, built from knative.dev/serving) run for this
module. `kn service create` with the seed's model annotations (and with the canonical knscale.dev ones)
→ Knative's webhook defaults and validates the Service → Knative's controller creates the Configuration,
the Revision and its Deployment (with queue-proxy) → kube-controller-manager creates the pods → knscale's
webhook injects the init container, volumes and mounts. Asserted on what the API server stored: the
Revision's pods carry the injection, queue-proxy gets no mount. The Route's Ingress is marked Ready in
scenario 4-real (no networking layer is built; the Route here waits for a Ready Revision).

Template mode on a real Knative Service: knscale mutates the Service's template, Knative's webhook
accepts the mutated template (with the two podspec features knative_cp.py enables), and Knative's
controller creates a Revision that carries the injection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knative_cp import QUEUE_IMAGE, KnativeServing, digest_image
from knscale_procs import Webhook, new_namespace
from manifests import DOWNLOADER, SEED_ANNOTATIONS, assert_injected

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# The seed's image, by digest: a tag would make Knative's controller resolve it against gcr.io.
SEED_IMAGE = digest_image("gcr.io/knative-samples/helloworld-go", "helloworld-go")
CANONICAL_ANNOTATIONS = {
    "knscale.dev/inject-model": "true",
    "knscale.dev/model-uri": "s3://autotables_47/autotables/47/trained_model/2616/1629363245/",
    "knscale.dev/model-init-image": DOWNLOADER,
}
WAIT_S = 90.0


def _pods(cp: ControlPlane, ns: str, revision: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "pods", "-n", ns, "-l", f"serving.knative.dev/revision={revision}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def _kn_create(cp: ControlPlane, ns: str, name: str, annotations: dict[str, str]) -> str:
    args = ["service", "create", name, "-n", ns, "--image", SEED_IMAGE, "--no-wait"]
    for key, value in annotations.items():
        args += ["--annotation", f"{key}={value}"]
    done = cp.kn(*args)
    assert f"Service '{name}' created" in done.stdout, done.stdout + done.stderr
    return done.stderr


def _revision_pods(cp: ControlPlane, kn: KnativeServing, ns: str, revision: str) -> list[dict[str, Any]]:
    def pods() -> list[dict[str, Any]] | None:
        kn.check_alive()
        found = _pods(cp, ns, revision)
        return found or None

    return wait_until(pods, timeout=WAIT_S, what=f"pods of Revision {ns}/{revision}", on_timeout=kn.tails)


@pytest.mark.parametrize(
    ("name", "annotations"),
    [("seed", SEED_ANNOTATIONS), ("canonical", CANONICAL_ANNOTATIONS)],
    ids=["seed-annotations", "canonical-annotations"],
)
def test_kn_service_create_through_knative_injects_the_revision_pods(
    workloads: ControlPlane, knative: KnativeServing, name: str, annotations: dict[str, str]
) -> None:
    cp = workloads
    ns = new_namespace(cp, f"s1k-{name}")
    _kn_create(cp, ns, name, annotations)

    # Knative's webhook defaulted the Service (it ran: these fields are not in kn's request).
    svc = cp.get("ksvc", name, ns)
    tmpl = svc["spec"]["template"]
    assert tmpl["spec"]["containers"][0]["name"] == "user-container"
    assert tmpl["spec"]["timeoutSeconds"] == 300
    assert svc["metadata"]["annotations"]["serving.knative.dev/creator"] == "knscale-e2e-admin"

    revision = f"{name}-00001"
    rev = wait_until(
        lambda: cp.find("revision", revision, ns),
        timeout=WAIT_S,
        what="the Revision",
        on_timeout=knative.tails,
    )
    assert rev["metadata"]["ownerReferences"][0]["kind"] == "Configuration"
    for key, value in annotations.items():
        assert rev["metadata"]["annotations"][key] == value
    deployment = wait_until(
        lambda: cp.find("deployment", f"{revision}-deployment", ns),
        timeout=WAIT_S,
        what="the Revision's Deployment",
        on_timeout=knative.tails,
    )
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"user-container", "queue-proxy"}
    assert containers["queue-proxy"]["image"] == QUEUE_IMAGE
    assert containers["user-container"]["image"] == SEED_IMAGE
    # The Deployment's template is Knative's, untouched: knscale injects into pods (pod mode).
    assert not deployment["spec"]["template"]["spec"].get("initContainers")
    # And Knative made the PodAutoscaler for the Revision (kpa class: knscale's reconciler's job).
    pa = wait_until(lambda: cp.find("podautoscaler", revision, ns), timeout=WAIT_S, what="the PodAutoscaler")
    assert pa["spec"]["scaleTargetRef"]["name"] == f"{revision}-deployment"

    for pod in _revision_pods(cp, knative, ns, revision):
        assert_injected(pod, ["user-container"], skipped=("queue-proxy",))
        qp = next(c for c in pod["spec"]["containers"] if c["name"] == "queue-proxy")
        assert not [m for m in qp.get("volumeMounts") or [] if m["name"].startswith("knscale")]
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"

    # No Ingress yet: the Route waits for a Ready Revision, and nothing reconciles this kpa-class PA in
    # this module (the Ingress, marked Ready, is scenario 4-real's: test_scenario_4_real_keda.py).
    route = cp.get("route", name, ns)
    assert {c["type"]: c.get("reason") for c in route["status"]["conditions"]}["Ready"] == "RevisionMissing"


@pytest.fixture
def template_webhook(workloads: ControlPlane, webhook: Webhook) -> Iterator[Webhook]:
    config = workloads.root / "s1k-knscale-config.yaml"
    config.write_text("injection:\n  mutate_templates: true\n")
    hook = Webhook(workloads, "webhook-templates-s1k", serve_args=[f"--config={config}"])
    try:
        hook.start()
        hook.register("--mutate-templates")
        yield hook
    finally:
        webhook.register()  # back to the session's registration: pods only
        hook.stop()
        config.unlink(missing_ok=True)


def test_template_mode_knative_accepts_the_mutated_template(
    workloads: ControlPlane, knative: KnativeServing, template_webhook: Webhook
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s1k-tmpl")
    _kn_create(cp, ns, "tmpl", SEED_ANNOTATIONS)
    tmpl = cp.get("ksvc", "tmpl", ns)["spec"]["template"]
    inits = tmpl["spec"].get("initContainers") or []
    assert [c["name"] for c in inits] == ["knscale-model-init"], tmpl["spec"]
    assert tmpl["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"

    rev = wait_until(
        lambda: cp.find("revision", "tmpl-00001", ns),
        timeout=WAIT_S,
        what="the Revision of the mutated template",
        on_timeout=knative.tails,
    )
    assert [c["name"] for c in rev["spec"].get("initContainers") or []] == ["knscale-model-init"]
    assert {v["name"] for v in rev["spec"]["volumes"]} >= {"knscale-model", "knscale-model-tmp"}
    deployment = wait_until(
        lambda: cp.find("deployment", "tmpl-00001-deployment", ns),
        timeout=WAIT_S,
        what="the Deployment of the mutated template",
        on_timeout=knative.tails,
    )
    assert [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]] == [
        "knscale-model-init"
    ]
    # The pods have exactly one init container: the pod webhook sees the marker and adds nothing.
    for pod in _revision_pods(cp, knative, ns, "tmpl-00001"):
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["knscale-model-init"]
        qp = next(c for c in pod["spec"]["containers"] if c["name"] == "queue-proxy")
        assert not [m for m in qp.get("volumeMounts") or [] if m["name"].startswith("knscale")]
