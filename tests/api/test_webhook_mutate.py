"""POST /mutate with AdmissionReview fixtures in v1 and v1beta1, through the real FastAPI app."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers.admission import load

from translator.config.knscale import KnscaleConfig
from webhook import admission
from webhook.app import get_mutate_handler

SEED_URI = "s3://autotables_47/autotables/47/trained_model/2616/1629363245/"


def post(client: TestClient, review: dict[str, Any], path: str = "/mutate") -> dict[str, Any]:
    r = client.post(path, content=json.dumps(review), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


@pytest.mark.parametrize("fixture", ["pod-create-v1.json", "pod-create-v1beta1.json"])
def test_seed_knative_pod_is_patched_in_the_version_received(client: TestClient, fixture: str) -> None:
    review = load(fixture)
    body = post(client, review)
    assert body["apiVersion"] == review["apiVersion"]
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert response["warnings"] == [
        "KNS004: injectModelInitContainer is a legacy key, use knscale.dev/inject-model",
        "KNS004: modelBucket is a legacy key, use knscale.dev/model-uri",
        "KNS004: modelPath is a legacy key, use knscale.dev/model-uri",
        "KNS004: initContainerImage is a legacy key, use knscale.dev/model-init-image",
    ]
    pod = review["request"]["object"]
    mutated = jsonpatch.apply_patch(pod, decode_patch(response))
    kubernetes_validate.validate(mutated, "1.30", strict=True)
    [init] = mutated["spec"]["initContainers"]
    assert init["name"] == "knscale-model-init"
    assert init["image"] == "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0"
    assert init["args"] == [SEED_URI, "/mnt/models"]
    assert mutated["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
    assert {"name": "knscale-model", "mountPath": "/mnt/models", "readOnly": True} in mutated["spec"][
        "containers"
    ][0]["volumeMounts"]
    assert mutated["spec"]["containers"][1] == pod["spec"]["containers"][1]

    # Reinvocation (reinvocationPolicy: IfNeeded): the mutated pod is allowed without a patch.
    again = copy.deepcopy(review)
    again["request"]["object"] = mutated
    response = post(client, again)["response"]
    assert response == {"uid": review["request"]["uid"], "allowed": True}


def test_dry_run_is_answered_identically(client: TestClient) -> None:
    review = load("pod-create-v1.json")
    dry = copy.deepcopy(review)
    dry["request"]["dryRun"] = True
    assert post(client, dry) == post(client, review)


def test_pod_without_model_keys_is_allowed_without_patch(client: TestClient) -> None:
    review = load("pod-create-v1.json")
    review["request"]["object"]["metadata"]["annotations"] = {"app": "x"}
    assert post(client, review)["response"] == {"uid": review["request"]["uid"], "allowed": True}


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "UPDATE"},
        {"operation": "DELETE", "object": None},
        {"operation": "CONNECT"},
        {"subResource": "ephemeralcontainers"},
        {"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
    ],
    ids=["update", "delete", "connect", "subresource", "other-kind"],
)
def test_other_operations_and_kinds_pass_untouched(client: TestClient, change: dict[str, Any]) -> None:
    review = load("pod-create-v1.json")
    review["request"].update(change)
    assert post(client, review)["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_mirror_pods_are_never_mutated(client: TestClient) -> None:
    review = load("pod-create-v1.json")
    review["request"]["object"]["metadata"]["annotations"]["kubernetes.io/config.mirror"] = "abc"
    assert "patch" not in post(client, review)["response"]


@pytest.mark.parametrize("fixture", ["pod-create-v1.json", "pod-create-v1beta1.json"])
def test_policy_violation_is_a_denial_with_rule_object_annotation_and_fix(
    client: TestClient, fixture: str
) -> None:
    review = load(fixture)
    review["request"]["object"]["metadata"]["annotations"]["modelPath"] = "/autotables/../../etc/"
    body = post(client, review)
    assert body["apiVersion"] == review["apiVersion"]
    response = body["response"]
    assert response["allowed"] is False
    assert "patch" not in response and "patchType" not in response
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith(
        "KNS010 Pod default/helloworld-go-00001-deployment-5f8c7b9d4c-: metadata.annotations[modelPath]:"
    )
    assert "fix: " in message
    assert len(response["warnings"]) == 4  # the legacy-key warnings still reach the user


def test_system_namespace_is_refused_using_the_request_namespace(client: TestClient) -> None:
    review = load("pod-create-v1.json")
    review["request"]["namespace"] = "kube-system"
    review["request"]["object"]["metadata"].pop("namespace")
    response = post(client, review)["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("KNS018 Pod kube-system/")


def test_every_error_is_in_the_denial(client: TestClient) -> None:
    review = load("pod-create-v1.json")
    ann = review["request"]["object"]["metadata"]["annotations"]
    ann.update({"knscale.dev/model-mount-path": "rel", "knscale.dev/model-credentials-secret": "NO"})
    message = post(client, review)["response"]["status"]["message"]
    assert [line.split(" ", 1)[0] for line in message.splitlines()] == ["KNS012", "KNS016"]


def test_internal_error_is_an_explicit_denial_not_a_500(fresh_app: FastAPI) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    def mutate_with_a_broken_planner(review: admission.Review, config: KnscaleConfig) -> admission.Decision:
        return admission.mutate(review, config, plan_pod=broken)

    fresh_app.dependency_overrides[get_mutate_handler] = lambda: mutate_with_a_broken_planner
    client = TestClient(fresh_app)
    review = load("pod-create-v1.json")
    r = client.post("/mutate", content=json.dumps(review), headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    response = r.json()["response"]
    assert response["allowed"] is False
    assert response["uid"] == review["request"]["uid"]
    assert response["status"]["message"].startswith(
        "KNS030 Pod default/helloworld-go-00001-deployment-5f8c7b9d4c-"
    )
    assert "boom" not in response["status"]["message"], "internals stay in the log"
