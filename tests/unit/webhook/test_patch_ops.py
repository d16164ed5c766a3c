"""RFC 6902 ops from a plan: escaping, creating missing parents, template prefixes, encoding."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import pytest

from translator.config.knscale import KnscaleConfig
from translator.injection.plan import ContainerEdit, InjectionPlan, plan_injection
from webhook.patch import encode_patch, escape, plan_ops

CONFIG = KnscaleConfig()
ANN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m/"}


@pytest.mark.parametrize(
    ("token", "escaped"),
    [
        ("plain", "plain"),
        ("knscale.dev/model-injected", "knscale.dev~1model-injected"),
        ("a~b/c", "a~0b~1c"),
        ("~1", "~01"),
    ],
)
def test_escape_is_rfc6901(token: str, escaped: str) -> None:
    assert escape(token) == escaped
    doc = {"m": {token: 1}}
    assert jsonpatch.JsonPointer(f"/m/{escaped}").resolve(doc) == 1


def _plan(pod: dict[str, Any]) -> InjectionPlan:
    plan, findings = plan_injection(pod, "ml", CONFIG)
    assert plan is not None, [f.text() for f in findings]
    return plan


def test_first_op_into_a_missing_list_adds_the_whole_list_then_appends() -> None:
    pod = {"metadata": {"annotations": dict(ANN)}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    ops = plan_ops(pod, _plan(pod))
    paths = [op["path"] for op in ops]
    assert paths == [
        "/metadata/annotations/knscale.dev~1model-injected",
        "/spec/volumes",
        "/spec/initContainers",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/1/volumeMounts",
        "/spec/securityContext",
    ]
    assert [v["name"] for v in ops[1]["value"]] == [
        "knscale-model",
        "knscale-model-tmp",
        "knscale-model-home",
    ]
    jsonpatch.apply_patch(pod, ops)


def test_existing_lists_get_appends_with_dash() -> None:
    pod = {
        "metadata": {"annotations": dict(ANN)},
        "spec": {
            "containers": [{"name": "a", "volumeMounts": []}],
            "initContainers": [],
            "volumes": [{"name": "x", "emptyDir": {}}],
            "securityContext": {},
        },
    }
    ops = plan_ops(pod, _plan(pod))
    assert [op["path"] for op in ops] == [
        "/metadata/annotations/knscale.dev~1model-injected",
        "/spec/volumes/-",
        "/spec/volumes/-",
        "/spec/volumes/-",
        "/spec/initContainers/-",
        "/spec/containers/0/volumeMounts/-",
        "/spec/securityContext/fsGroup",
    ]
    jsonpatch.apply_patch(pod, ops)


def test_missing_metadata_maps_are_created() -> None:
    plan = _plan({"metadata": {"annotations": dict(ANN)}, "spec": {"containers": [{"name": "a"}]}})
    no_annotations = {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a"}]}}
    ops = plan_ops(no_annotations, plan)
    assert ops[0] == {
        "op": "add",
        "path": "/metadata/annotations",
        "value": {"knscale.dev/model-injected": "true"},
    }
    no_metadata = {"spec": {"containers": [{"name": "a"}]}}
    ops = plan_ops(no_metadata, plan)
    assert ops[0] == {
        "op": "add",
        "path": "/metadata",
        "value": {"annotations": {"knscale.dev/model-injected": "true"}},
    }
    assert jsonpatch.apply_patch(no_metadata, ops)["metadata"]["annotations"]


def test_container_edit_sets_absent_fields_and_appends() -> None:
    pod = {
        "metadata": {"annotations": {}},
        "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i", "env": [{"name": "X"}]}]},
    }
    plan = InjectionPlan(
        request=_plan(
            {"metadata": {"annotations": dict(ANN)}, "spec": {"containers": [{"name": "a"}]}}
        ).request,
        annotations={},
        volumes=[],
        init_container=None,
        container_edits=[
            ContainerEdit(
                "initContainers",
                0,
                "i",
                set_fields={"image": "img:1"},
                append={"env": [{"name": "Y"}], "envFrom": [{}]},
            )
        ],
        pod_security_context={},
    )
    ops = plan_ops(pod, plan)
    assert ops == [
        {"op": "add", "path": "/spec/initContainers/0/image", "value": "img:1"},
        {"op": "add", "path": "/spec/initContainers/0/env/-", "value": {"name": "Y"}},
        {"op": "add", "path": "/spec/initContainers/0/envFrom", "value": [{}]},
    ]


def test_prefix_targets_a_pod_template() -> None:
    template = {"metadata": {"annotations": dict(ANN)}, "spec": {"containers": [{"name": "a"}]}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": json.loads(json.dumps(template))},
    }
    ops = plan_ops(template, _plan(template), prefix="/spec/template")
    assert all(op["path"].startswith("/spec/template/") for op in ops)
    out = jsonpatch.apply_patch(deployment, ops)
    assert out["spec"]["template"]["spec"]["initContainers"][0]["name"] == "knscale-model-init"


def test_encode_patch_is_base64_of_compact_json() -> None:
    ops = [{"op": "add", "path": "/a~1b", "value": "é"}]
    encoded = encode_patch(ops)
    assert json.loads(base64.b64decode(encoded)) == ops
    assert b" " not in base64.b64decode(encoded)
