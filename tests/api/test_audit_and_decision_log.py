"""auditAnnotations on AdmissionReview responses, and the one log line per admission decision.

The API server prefixes each auditAnnotations key with the webhook's name and drops any key whose
prefixed form is not a qualified name, so the keys are checked in that prefixed form for every
webhook knscale registers. Values are bounded and never carry a credential; the log line names
the review by uid, kind, namespace/name (clipped), operation, dryRun, rules, outcome and latency.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers.admission import JSON_HEADERS, review, seed_pod

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app
from webhook.audit import AUDIT_KEYS, MODEL_MAX_CHARS, NAME_MAX_CHARS
from webhook.registration import MUTATING_WEBHOOK_NAME, TEMPLATES_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME

V1 = "admission.k8s.io/v1"
# k8s.io/apimachinery/pkg/util/validation IsQualifiedName: [prefix/]name, prefix a DNS-1123
# subdomain of at most 253 characters, name at most 63 of [A-Za-z0-9_.-] starting and ending alnum.
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _is_qualified_name(key: str) -> bool:
    prefix, sep, name = key.rpartition("/")
    if sep and (not _SUBDOMAIN.match(prefix) or "/" in prefix):
        return False
    return bool(_NAME.match(name))


def _pod(annotations: dict[str, str], **meta: Any) -> dict[str, Any]:
    pod = seed_pod()
    pod["metadata"]["annotations"] = annotations
    pod["metadata"].update(meta)
    return pod


def _post(client: TestClient, body: dict[str, Any], path: str = "/mutate") -> dict[str, Any]:
    r = client.post(path, content=json.dumps(body), headers=JSON_HEADERS)
    assert r.status_code == 200, r.text
    response: dict[str, Any] = r.json()["response"]
    return response


INJECT = {"knscale.dev/inject-model": "true"}


def test_a_patched_pod_names_its_outcome_and_model(client: TestClient) -> None:
    pod = _pod({**INJECT, "knscale.dev/model-uri": "gs://bucket/models/x/"})
    audit = _post(client, review(V1, pod, "a-1"))["auditAnnotations"]
    assert audit == {"outcome": "patched", "injected-model": "gs://bucket/models/x/"}


def test_a_denied_pod_names_the_rules_that_denied_it(client: TestClient) -> None:
    response = _post(client, review(V1, _pod({"knscale.dev/inject-model": "maybe"}), "a-2"))
    assert response["allowed"] is False
    assert response["auditAnnotations"] == {"outcome": "denied", "rules": "KNS001"}


def test_warnings_are_named_as_rules_of_an_allowed_review(client: TestClient) -> None:
    response = _post(client, review(V1, seed_pod(), "a-3"))  # the seed's legacy keys: KNS004
    assert response["auditAnnotations"]["outcome"] == "patched"
    assert response["auditAnnotations"]["rules"].split(",") == ["KNS004"]


def test_a_review_with_nothing_to_judge_gets_no_annotations(client: TestClient) -> None:
    pod = _pod({})
    assert "auditAnnotations" not in _post(client, review(V1, pod, "a-4"))
    assert "auditAnnotations" not in _post(client, review(V1, pod, "a-5"), "/validate")


def test_the_model_source_is_redacted_and_bounded(client: TestClient) -> None:
    uri = "https://models.example.com/m/" + "x" * 600 + "/model.bin?X-Amz-Signature=s3cr3t"
    response = _post(client, review(V1, _pod({**INJECT, "knscale.dev/model-uri": uri}), "a-6"))
    model = response["auditAnnotations"]["injected-model"]
    assert "s3cr3t" not in json.dumps(response["auditAnnotations"])
    assert len(model) <= MODEL_MAX_CHARS and model.startswith("https://models.example.com/m/x")
    short = "https://models.example.com/m/model.bin?X-Amz-Signature=s3cr3t"
    response = _post(client, review(V1, _pod({**INJECT, "knscale.dev/model-uri": short}), "a-7"))
    assert (
        response["auditAnnotations"]["injected-model"] == "https://models.example.com/m/model.bin?<redacted>"
    )


def test_a_credential_in_the_source_is_never_an_annotation(client: TestClient) -> None:
    uri = "https://user:hunter2@models.example.com/m/"
    response = _post(client, review(V1, _pod({**INJECT, "knscale.dev/model-uri": uri}), "a-8"))
    assert response["allowed"] is False
    assert "hunter2" not in json.dumps(response)


@pytest.mark.parametrize("webhook", [MUTATING_WEBHOOK_NAME, TEMPLATES_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME])
@pytest.mark.parametrize("key", AUDIT_KEYS)
def test_keys_are_qualified_names_once_the_api_server_prefixes_them(webhook: str, key: str) -> None:
    assert _is_qualified_name(f"{webhook}/{key}")
    assert not _is_qualified_name(f"{webhook}/knscale.dev/{key}")  # why the keys have no prefix


def test_validate_denial_carries_rules(client: TestClient) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "annotations": {
                "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/min-scale": "-3",
            },
        },
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}},
    }
    body = review(V1, deployment, "a-9", kind="Deployment", group="apps", resource="deployments")
    response = _post(client, body, "/validate")
    assert response["allowed"] is False
    audit = response["auditAnnotations"]
    assert audit == {"outcome": "denied", "rules": "KNS102"}


def _decision_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [dict(r.knscale) for r in caplog.records if r.name == "knscale.admission"]


def test_one_log_line_per_decision_with_its_fields(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="knscale.admission")
    body = review(V1, _pod({"knscale.dev/inject-model": "maybe"}, name="web-1"), "log-1")
    body["request"]["dryRun"] = True
    _post(client, body)
    [line] = _decision_lines(caplog)
    latency = line.pop("latency_ms")
    assert isinstance(latency, float) and latency >= 0
    assert line == {
        "endpoint": "mutate",
        "uid": "log-1",
        "kind": "Pod",
        "namespace": "default",
        "name": "web-1",
        "operation": "CREATE",
        "dryRun": True,
        "outcome": "denied",
        "rules": ["KNS001"],
        "model": None,
    }


def test_a_cached_reply_logs_its_own_uid_and_the_same_fields(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="knscale.admission")
    pod = _pod({**INJECT, "knscale.dev/model-uri": "gs://bucket/m/"})
    first = _post(client, review(V1, pod, "hit-1"))
    second = _post(client, review(V1, pod, "hit-2"))
    assert client.app.state.decision_cache is not None  # type: ignore[attr-defined]
    assert first["auditAnnotations"] == second["auditAnnotations"]
    lines = _decision_lines(caplog)
    assert [line["uid"] for line in lines] == ["hit-1", "hit-2"]
    for line in lines:
        line.pop("uid")
        line.pop("latency_ms")
    assert lines[0] == lines[1] and lines[0]["outcome"] == "patched" and lines[0]["model"] == "gs://bucket/m/"
    metrics = client.get("/metrics").text
    assert 'knscale_webhook_decision_cache_total{endpoint="mutate",result="hit"}' in metrics


def test_hostile_names_are_clipped_and_cannot_forge_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="knscale.admission")
    name = 'evil\n{"level":"error"}' + "n" * 5000
    body = review(V1, _pod({"knscale.dev/inject-model": "maybe"}, name=name), "log-2")
    body["request"]["namespace"] = "ns\r\nforged"
    _post(client, body)
    [line] = _decision_lines(caplog)
    assert len(line["name"]) <= NAME_MAX_CHARS and "\n" not in line["name"]
    assert line["namespace"] == "ns??forged"


def test_a_body_that_is_not_a_review_is_one_line_too(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="knscale.admission")
    client.post("/validate", content=b"{not json", headers=JSON_HEADERS)
    [record] = [r for r in caplog.records if r.name == "knscale.admission"]
    fields = dict(record.knscale)  # type: ignore[attr-defined]
    assert fields["outcome"] == "invalid" and fields["status"] == 400 and fields["endpoint"] == "validate"


def test_denials_are_counted_by_rule(client: TestClient) -> None:
    _post(client, review(V1, _pod({"knscale.dev/inject-model": "maybe"}), "m-1"))
    metrics = client.get("/metrics").text
    assert re.search(r'knscale_webhook_denials_total\{endpoint="mutate",rule="KNS001"\} [1-9]', metrics)


def test_template_mode_names_the_model_it_injects() -> None:
    config = KnscaleConfig.model_validate({"injection": {"mutate_templates": True}})
    client = TestClient(create_app(config))
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        **INJECT,
                        "knscale.dev/model-uri": "https://m.example.com/m.bin?sig=t0ps3cret",
                    }
                },
                "spec": {"containers": [{"name": "a", "image": "b"}]},
            }
        },
    }
    body = review(V1, deployment, "t-1", kind="Deployment", group="apps", resource="deployments")
    response = _post(client, body)
    assert response["patchType"] == "JSONPatch"
    assert response["auditAnnotations"] == {
        "outcome": "patched",
        "injected-model": "https://m.example.com/m.bin?<redacted>",
    }
