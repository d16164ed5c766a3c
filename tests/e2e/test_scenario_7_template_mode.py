"""Scenario 7: template mode (opt-in), against the real API server and Knative's CRDs.

A second `knscale serve` with `injection.mutate_templates: true` is registered with
`knscale register --mutate-templates` for this module (the session's webhook is registered again
afterwards). Asserted on what the API server stored:

1. `kubectl apply` of a Deployment → its stored template carries the injection; the pods
   kube-controller-manager makes from it have exactly one knscale-model-init (the pod webhook
   sees the marker and adds nothing); an update that leaves the template alone gets no patch
   (no new ReplicaSet), although the API server has defaulted fields of the injection.
2. Changing `knscale.dev/model-uri` by `kubectl apply` updates the stored initContainer; removing
   the opt-in removes the injection.
3. `kn service create` with the seed's annotations → the stored ksvc template carries the
   injection (Knative's CRD schema accepts it; its own webhook, absent here, would need
   `kubernetes.podspec-init-containers`); `kn service update` of an unrelated env var keeps
   exactly one initContainer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, wait_until
from knscale_procs import Webhook, new_namespace
from manifests import workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

INIT = "knscale-model-init"
MARKER = "knscale.dev/model-injected"
APP_IMAGE = "registry.example.com/model-server:1"
MODEL_URI = "s3://models/resnet/1/"
OPT_IN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": MODEL_URI}


@pytest.fixture(scope="module")
def template_webhook(control_plane: ControlPlane, webhook: Webhook) -> Iterator[Webhook]:
    config = control_plane.root / "s7-knscale-config.yaml"
    config.write_text("injection:\n  mutate_templates: true\n")
    hook = Webhook(control_plane, "webhook-templates", serve_args=[f"--config={config}"])
    try:
        try:
            hook.start()
            out = hook.register("--mutate-templates")
        except ControlPlaneError as exc:
            pytest.fail(f"template-mode webhook did not start: {exc}\n{hook.tail()}", pytrace=False)
        assert "MutatingWebhookConfiguration/knscale-webhook" in out, out
        stored = control_plane.get("mutatingwebhookconfiguration", "knscale-webhook")
        assert [w["name"] for w in stored["webhooks"]] == [
            "inject-model.knscale.dev",
            "inject-model-templates.knscale.dev",
        ]
        yield hook
    finally:
        webhook.register()  # back to the session's registration: pods only
        hook.stop()
        config.unlink(missing_ok=True)


def _deployment(annotations: dict[str, str]) -> dict[str, Any]:
    container = {"name": "app", "image": APP_IMAGE}
    return workload("model-server", replicas=2, containers=[container], template_annotations=annotations)


def _apply(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> None:
    cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def _injection(template: dict[str, Any]) -> dict[str, Any]:
    spec = template["spec"]
    inits = [c for c in spec.get("initContainers") or [] if c["name"] == INIT]
    return {
        "marker": (template["metadata"].get("annotations") or {}).get(MARKER),
        "args": [c.get("args") for c in inits],
        "volumes": sorted(
            v["name"] for v in spec.get("volumes") or [] if v["name"].startswith("knscale-model")
        ),
        "mounts": [
            [m["mountPath"] for m in c.get("volumeMounts") or [] if m["name"] == "knscale-model"]
            for c in spec["containers"]
        ],
    }


INJECTED = {
    "marker": "true",
    "args": [[MODEL_URI, "/mnt/models"]],
    "volumes": ["knscale-model", "knscale-model-home", "knscale-model-tmp"],
    "mounts": [["/mnt/models"]],
}


def test_deployment_template_is_injected_once_and_reapply_changes_nothing(
    workloads: ControlPlane, template_webhook: Webhook
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s7-deploy")
    _apply(cp, ns, _deployment(OPT_IN))
    stored = cp.get("deployment", "model-server", ns)
    assert _injection(stored["spec"]["template"]) == INJECTED

    def pods() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = json.loads(
            cp.kubectl("get", "pods", "-n", ns, "-l", "app=model-server", "-o", "json").stdout
        )["items"]
        return items if len(items) == 2 else None

    for pod in wait_until(pods, timeout=60, what="2 pods of the injected Deployment"):
        assert [c["name"] for c in pod["spec"]["initContainers"]] == [INIT], pod["spec"]["initContainers"]
        assert _injection(pod)["mounts"] == [["/mnt/models"]]

    # An update that leaves the template alone. The stored initContainer now has fields the API
    # server defaulted (terminationMessagePath …): still no patch, so no new rollout.
    assert stored["spec"]["template"]["spec"]["initContainers"][0]["terminationMessagePath"]
    patched = {"endpoint": "mutate", "outcome": "patched"}
    patched_before = template_webhook.metric("knscale_webhook_requests_total", **patched)
    relabelled = _deployment(OPT_IN)
    relabelled["metadata"]["labels"] = {"team": "ml"}  # so kubectl really sends an UPDATE
    _apply(cp, ns, relabelled)
    assert template_webhook.metric("knscale_webhook_requests_total", **patched) == patched_before
    again = cp.get("deployment", "model-server", ns)
    assert again["metadata"]["labels"] == {"team": "ml"}
    # (The generation moves anyway: Deployments bump it on annotation changes too, and kubectl
    # rewrites last-applied-configuration.) The template did not change: no new ReplicaSet.
    assert again["spec"]["template"] == stored["spec"]["template"]
    replica_sets = json.loads(cp.kubectl("get", "replicasets", "-n", ns, "-o", "json").stdout)["items"]
    assert len(replica_sets) == 1, [r["metadata"]["name"] for r in replica_sets]


def test_changing_the_model_updates_and_opting_out_removes_the_injection(
    workloads: ControlPlane, template_webhook: Webhook
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s7-change")
    _apply(cp, ns, _deployment(OPT_IN))
    new_uri = "s3://models/resnet/2/"
    _apply(cp, ns, _deployment({**OPT_IN, "knscale.dev/model-uri": new_uri}))
    stored = cp.get("deployment", "model-server", ns)
    assert _injection(stored["spec"]["template"]) == {**INJECTED, "args": [[new_uri, "/mnt/models"]]}

    _apply(cp, ns, _deployment({}))
    stored = cp.get("deployment", "model-server", ns)
    assert _injection(stored["spec"]["template"]) == {
        "marker": None,
        "args": [],
        "volumes": [],
        "mounts": [[]],
    }
    assert not stored["spec"]["template"]["spec"].get("initContainers")


def test_stored_quantities_make_no_patch_and_removed_annotations_take_their_fields(
    workloads: ControlPlane, template_webhook: Webhook
) -> None:
    """The API server stores `2048Mi` as `2Gi`: re-applying is still no change. Dropping the
    credentials and size-limit keys drops the envFrom and sizeLimit they added."""
    cp = workloads
    ns = new_namespace(cp, "s7-fields")
    extra = {"knscale.dev/model-credentials-secret": "model-creds", "knscale.dev/model-size-limit": "2048Mi"}
    _apply(cp, ns, _deployment({**OPT_IN, **extra}))
    spec = cp.get("deployment", "model-server", ns)["spec"]["template"]["spec"]
    model = next(v for v in spec["volumes"] if v["name"] == "knscale-model")
    assert model["emptyDir"] == {"sizeLimit": "2Gi"}  # canonical form, as stored
    assert spec["initContainers"][0]["envFrom"] == [{"secretRef": {"name": "model-creds"}}]

    patched = {"endpoint": "mutate", "outcome": "patched"}
    patched_before = template_webhook.metric("knscale_webhook_requests_total", **patched)
    relabelled = _deployment({**OPT_IN, **extra})
    relabelled["metadata"]["labels"] = {"team": "ml"}
    _apply(cp, ns, relabelled)
    assert template_webhook.metric("knscale_webhook_requests_total", **patched) == patched_before

    _apply(cp, ns, _deployment(OPT_IN))
    spec = cp.get("deployment", "model-server", ns)["spec"]["template"]["spec"]
    model = next(v for v in spec["volumes"] if v["name"] == "knscale-model")
    assert model["emptyDir"] == {}
    assert "envFrom" not in spec["initContainers"][0], spec["initContainers"][0]


def test_kn_service_template_is_injected_and_kn_update_keeps_one_init_container(
    workloads: ControlPlane, template_webhook: Webhook
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s7-kn")
    done = cp.kn(
        "service",
        "create",
        "helloworld-go",
        "-n",
        ns,
        "--image",
        APP_IMAGE,
        "--annotation",
        "modelBucket=autotables_47",
        "--annotation",
        "modelPath=/autotables/47/trained_model/2616/1629363245/",
        "--annotation",
        "injectModelInitContainer=true",
        "--no-wait",
    )
    assert "Service 'helloworld-go' created" in done.stdout, done.stdout + done.stderr
    uri = "s3://autotables_47/autotables/47/trained_model/2616/1629363245/"
    template = cp.get("ksvc", "helloworld-go", ns)["spec"]["template"]
    assert _injection(template) == {**INJECTED, "args": [[uri, "/mnt/models"]]}

    cp.kn("service", "update", "helloworld-go", "-n", ns, "--env", "TARGET=World", "--no-wait")
    template = cp.get("ksvc", "helloworld-go", ns)["spec"]["template"]
    assert {"name": "TARGET", "value": "World"} in template["spec"]["containers"][0]["env"]
    assert _injection(template) == {**INJECTED, "args": [[uri, "/mnt/models"]]}
