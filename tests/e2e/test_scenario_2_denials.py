"""Scenario 2: invalid model or autoscaling annotations are refused by the API server.

The expected rule ids and texts are not typed here: `knscale lint -f json` is run on the very
manifest `kubectl apply` sends, and kubectl's error must carry each error finding's rule id,
object, location, message and fix. `--dry-run=server` must give the same answer (the webhooks
are side-effect free, so the API server calls them on dry runs) and store nothing.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from cluster import ControlPlane
from knscale_procs import Webhook, new_namespace, run_knscale
from manifests import workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONTAINERS = [{"name": "app", "image": "registry.example.com/app:1"}]


def _pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": CONTAINERS},
    }


def _deployment(
    name: str, annotations: dict[str, str], template_annotations: dict[str, str]
) -> dict[str, Any]:
    return workload(
        name, containers=CONTAINERS, annotations=annotations, template_annotations=template_annotations
    )


def _ksvc(name: str, template_annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": template_annotations},
                "spec": {"containers": [{"image": "registry.example.com/app:1"}]},
            }
        },
    }


KPA = {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}

# (object, the rule ids lint must report as errors) — the ids are checked here so that a lint
# and a webhook that agreed on accepting everything could not pass.
CASES: list[tuple[dict[str, Any], set[str]]] = [
    (_pod("flag-yes", {"injectModelInitContainer": "yes", "modelBucket": "autotables_47"}), {"KNS001"}),
    (_pod("no-source", {"knscale.dev/inject-model": "true"}), {"KNS002"}),
    (
        _pod(
            "traversal",
            {
                "injectModelInitContainer": "true",
                "modelBucket": "autotables_47",
                "modelPath": "/a/../../etc/",
            },
        ),
        {"KNS010"},
    ),
    (
        _pod(
            "creds",
            {
                "knscale.dev/inject-model": "true",
                "knscale.dev/model-uri": "https://u:p@models.example.com/m/",
            },
        ),
        {"KNS011"},
    ),
    (
        _deployment(
            "minmax",
            {**KPA, "autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"},
            {},
        ),
        {"KNS106"},
    ),
    (_deployment("target-abc", {**KPA, "autoscaling.knative.dev/target": "abc"}, {}), {"KNS101"}),
    (
        _deployment(
            "both-bad",
            {**KPA, "autoscaling.knative.dev/window": "1s"},
            {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://models/../secrets/"},
        ),
        {"KNS102", "KNS010"},
    ),
    (_ksvc("bad-class", {"autoscaling.knative.dev/class": "foo.autoscaling.knative.dev"}), {"KNS104"}),
    (
        _ksvc(
            "hpa-concurrency",
            {
                "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/metric": "concurrency",
            },
        ),
        {"KNS210"},
    ),
]


def _lint_errors(cp: ControlPlane, obj: dict[str, Any]) -> list[dict[str, Any]]:
    done = run_knscale(cp, "lint", "-f", "json", "-", input=json.dumps(obj))
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    findings: list[dict[str, Any]] = json.loads(done.stdout)["findings"]
    return [f for f in findings if f["severity"] == "error"]


def _expected_line(f: dict[str, Any]) -> str:
    o = f["object"]
    where = f"{f['path']}[{f['key']}]" if f["key"] else f["path"]
    return f"{f['ruleId']} {o['kind']} {o['namespace']}/{o['name']}: {where}: {f['message']}; fix: {f['fix']}"


def _kubectl_apply(
    cp: ControlPlane, ns: str, obj: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess[str]:
    return cp.kubectl("apply", "-n", ns, *extra, "-f", "-", input=json.dumps(obj), check=False)


def _ids(case: tuple[dict[str, Any], set[str]]) -> str:
    return str(case[0]["metadata"]["name"])


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_invalid_annotations_are_refused_as_lint_says(
    control_plane: ControlPlane, webhook: Webhook, case: tuple[dict[str, Any], set[str]]
) -> None:
    cp = control_plane
    obj, expected_ids = case
    ns = new_namespace(cp, "s2")
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
    errors = _lint_errors(cp, obj)
    assert {f["ruleId"] for f in errors} == expected_ids
    kind, name = obj["kind"], obj["metadata"]["name"]
    resource = {"Pod": "pod", "Deployment": "deployment.apps", "Service": "service.serving.knative.dev"}[kind]

    answers = []
    for extra in (("--dry-run=server",), ()):  # the dry run first: it must not store anything either
        done = _kubectl_apply(cp, ns, obj, *extra)
        assert done.returncode != 0, f"{extra}: accepted:\n{done.stdout}"
        assert "denied the request" in done.stderr and "(Forbidden)" in done.stderr, done.stderr
        for finding in errors:
            assert _expected_line(finding) in done.stderr, (_expected_line(finding), done.stderr)
        assert not cp.exists(resource, name, ns), f"{kind} {name} was stored after {extra or 'apply'}"
        # The denial names knscale's webhook (the mutating one for pods that ask for a model).
        answers.append(done.stderr.split("denied the request:", 1)[1].strip())
    assert answers[0] == answers[1], "--dry-run=server and a real apply gave different answers"


def test_valid_dry_run_is_admitted_and_stores_nothing(control_plane: ControlPlane, webhook: Webhook) -> None:
    cp = control_plane
    ns = new_namespace(cp, "s2-dry")
    pod = _pod("dry", {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://models/m/"})
    done = cp.kubectl("apply", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod))
    admitted = json.loads(done.stdout)
    # The dry run went through the mutating webhook: the answer shows the injection...
    assert [c["name"] for c in admitted["spec"]["initContainers"]] == ["knscale-model-init"]
    # ...and nothing was stored.
    assert not cp.exists("pod", "dry", ns)


def test_update_to_invalid_annotations_is_refused_and_the_stored_object_kept(
    control_plane: ControlPlane, webhook: Webhook
) -> None:
    cp = control_plane
    ns = new_namespace(cp, "s2-upd")
    good = _deployment("web", {**KPA, "autoscaling.knative.dev/max-scale": "10"}, {})
    assert _kubectl_apply(cp, ns, good).returncode == 0
    before = cp.get("deployment", "web", ns)
    bad = _deployment(
        "web",
        {**KPA, "autoscaling.knative.dev/max-scale": "10", "autoscaling.knative.dev/min-scale": "20"},
        {},
    )
    bad["metadata"]["namespace"] = ns
    [finding] = _lint_errors(cp, bad)
    assert finding["ruleId"] == "KNS106"
    for extra in (("--dry-run=server",), ()):
        done = _kubectl_apply(cp, ns, bad, *extra)
        assert done.returncode != 0
        assert _expected_line(finding) in done.stderr, done.stderr
    after = cp.get("deployment", "web", ns)
    # Not the resourceVersion: the deployment controller writes status meanwhile. A Deployment's
    # generation moves on any change to its spec or annotations.
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert after["spec"] == before["spec"]
    assert "autoscaling.knative.dev/min-scale" not in after["metadata"]["annotations"]
