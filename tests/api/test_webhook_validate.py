"""POST /validate: the translator's findings over one admission request."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers.admission import load

from translator.config.knscale import KnscaleConfig
from webhook import admission
from webhook.app import get_validate_handler


def post(client: TestClient, review: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/validate", content=json.dumps(review), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["apiVersion"] == review["apiVersion"] and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    response: dict[str, Any] = body["response"]
    return response


def test_seed_kn_service_is_accepted_with_legacy_key_warnings(client: TestClient) -> None:
    response = post(client, load("ksvc-create-v1.json"))
    assert response["allowed"] is True
    assert "patch" not in response
    legacy = [w for w in response["warnings"] if w.startswith("KNS004")]
    # kn copies the keys onto the Service and the template: each is judged once, on the template.
    assert legacy == [
        "KNS004: injectModelInitContainer is a legacy key, use knscale.dev/inject-model",
        "KNS004: modelBucket is a legacy key, use knscale.dev/model-uri",
        "KNS004: modelPath is a legacy key, use knscale.dev/model-uri",
        "KNS004: initContainerImage is a legacy key, use knscale.dev/model-init-image",
    ]


def test_bad_model_key_on_a_service_template_fails_fast(client: TestClient) -> None:
    review = load("ksvc-create-v1.json")
    template = review["request"]["object"]["spec"]["template"]["metadata"]["annotations"]
    template["injectModelInitContainer"] = "yes please"
    response = post(client, review)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "KNS001 Service default/helloworld-go: spec.template.metadata.annotations[injectModelInitContainer]: "
    )


def test_deployment_template_is_checked_and_misplaced_keys_warn(client: TestClient) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scorer", "annotations": {"knscale.dev/model-size-limit": "1Gi"}},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m"}
                },
                "spec": {
                    "containers": [
                        {"name": "app", "volumeMounts": [{"name": "x", "mountPath": "/mnt/models"}]}
                    ]
                },
            }
        },
    }
    review = {
        "apiVersion": admission.V1BETA1,
        "kind": "AdmissionReview",
        "request": {
            "uid": "d-1",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "UPDATE",
            "namespace": "team-a",
            "object": deployment,
        },
    }
    response = post(client, review)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "KNS013 Deployment team-a/scorer: spec.template.metadata.annotations"
    )
    assert any(w.startswith("KNS021") for w in response["warnings"])


def test_system_namespace_deployment_is_denied(client: TestClient) -> None:
    review = load("ksvc-create-v1.json")
    review["request"]["namespace"] = "kube-public"
    review["request"]["object"]["metadata"]["namespace"] = "kube-public"
    response = post(client, review)
    assert response["allowed"] is False
    assert "KNS018 Service kube-public/helloworld-go" in response["status"]["message"]


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_pass(client: TestClient, operation: str) -> None:
    review = load("ksvc-create-v1.json")
    review["request"]["operation"] = operation
    review["request"]["object"] = None
    assert post(client, review) == {"uid": review["request"]["uid"], "allowed": True}


def test_status_subresource_updates_pass_unchecked(client: TestClient) -> None:
    review = load("ksvc-create-v1.json")
    review["request"]["operation"] = "UPDATE"
    review["request"]["subResource"] = "status"
    review["request"]["object"]["spec"]["template"]["metadata"]["annotations"]["injectModelInitContainer"] = (
        "?"
    )
    assert post(client, review) == {"uid": review["request"]["uid"], "allowed": True}


def test_unchecked_kinds_are_allowed_silently(client: TestClient) -> None:
    review = load("ksvc-create-v1.json")
    review["request"]["object"] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert post(client, review) == {"uid": review["request"]["uid"], "allowed": True}


def test_dry_run_is_identical(client: TestClient) -> None:
    review = load("ksvc-create-v1.json")
    dry = copy.deepcopy(review)
    dry["request"]["dryRun"] = True
    assert post(client, dry) == post(client, review)


def test_internal_error_fails_open_with_a_warning(fresh_app: FastAPI) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    def validate_with_a_broken_check(review: admission.Review, config: KnscaleConfig) -> admission.Decision:
        return admission.validate(review, config, check=broken)

    fresh_app.dependency_overrides[get_validate_handler] = lambda: validate_with_a_broken_check
    response = post(TestClient(fresh_app), load("ksvc-create-v1.json"))
    assert response["allowed"] is True
    assert response["warnings"][0].startswith("KNS031")
