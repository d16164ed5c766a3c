"""Template mode (injection.mutate_templates): the pod templates of workloads and Knative Services.

Every case goes through `webhook.admission.mutate` with a real AdmissionReview body and applies
the returned JSON Patch with `jsonpatch`, as the API server would.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch
import kubernetes_validate
import orjson
import pytest
from helpers.strategies import pods
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.annotations.model_keys import INJECTED
from translator.config.knscale import KnscaleConfig
from translator.injection.common import INIT_CONTAINER_NAME, MODEL_VOLUME, OWNED_VOLUMES
from webhook import admission

ON = KnscaleConfig.model_validate({"injection": {"mutate_templates": True}})
OFF = KnscaleConfig()
SEED = {
    "autoscaling.knative.dev/target": "10",
    "modelBucket": "autotables_47",
    "modelPath": "/autotables/47/trained_model/2616/1629363245/",
    "initContainerImage": "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0",
    "injectModelInitContainer": "true",
}
KINDS = {
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "Service": ("serving.knative.dev", "v1", "services"),
    "Configuration": ("serving.knative.dev", "v1", "configurations"),
}


def workload(
    kind: str, annotations: dict[str, str], containers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    group, version, _ = KINDS[kind]
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "web"}, "annotations": dict(annotations)},
        "spec": {"containers": containers or [{"name": "app", "image": "registry.example.com/app:1"}]},
    }
    spec: dict[str, Any] = {"template": template}
    if group == "apps":
        spec.update(replicas=1, selector={"matchLabels": {"app": "web"}})
    if kind == "StatefulSet":
        spec["serviceName"] = "web"
    return {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "models"},
        "spec": spec,
    }


def admit(obj: dict[str, Any], config: KnscaleConfig = ON, operation: str = "CREATE") -> dict[str, Any]:
    group, version, resource = KINDS[obj["kind"]]
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": "models",
            "operation": operation,
            "object": obj,
        },
    }
    decision = admission.mutate(admission.parse_review(orjson.dumps(review)), config)
    response: dict[str, Any] = orjson.loads(decision.body)["response"]
    return response


def apply(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    assert response["allowed"] is True, response
    if "patch" not in response:
        return obj
    ops = orjson.loads(base64.b64decode(response["patch"]))
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, ops)
    return patched


def knscale_parts(template: dict[str, Any]) -> dict[str, Any]:
    spec = template["spec"]
    return {
        "marker": ((template.get("metadata") or {}).get("annotations") or {}).get(INJECTED),
        "init": [c for c in spec.get("initContainers") or [] if c["name"] == INIT_CONTAINER_NAME],
        "volumes": sorted(v["name"] for v in spec.get("volumes") or [] if v["name"] in OWNED_VOLUMES),
        "mounts": [
            [m for m in c.get("volumeMounts") or [] if m["name"] == MODEL_VOLUME] for c in spec["containers"]
        ],
    }


def test_off_by_default_templates_pass_untouched() -> None:
    response = admit(workload("Deployment", SEED), OFF)
    assert response["allowed"] is True and "patch" not in response and "warnings" not in response


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_template_is_injected_like_a_pod_and_a_second_admission_changes_nothing(kind: str) -> None:
    obj = workload(kind, SEED)
    injected = apply(obj, admit(obj))
    parts = knscale_parts(injected["spec"]["template"])
    assert parts["marker"] == "true"
    assert len(parts["init"]) == 1 and parts["volumes"] == sorted(OWNED_VOLUMES)
    init = parts["init"][0]
    assert init["image"] == SEED["initContainerImage"]
    assert init["args"] == ["s3://autotables_47/autotables/47/trained_model/2616/1629363245/", "/mnt/models"]
    assert parts["mounts"] == [[{"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True}]]
    assert injected["metadata"] == obj["metadata"]  # only the template is touched
    if kind in ("Deployment", "StatefulSet"):
        kubernetes_validate.validate(injected, "1.32", strict=True)
    # Re-admission (reinvocation, or an unchanged `kubectl apply` as an UPDATE): no patch.
    for operation in ("CREATE", "UPDATE"):
        again = admit(injected, operation=operation)
        assert again["allowed"] is True and "patch" not in again, again


def test_a_knative_template_may_have_one_unnamed_container() -> None:
    obj = workload("Service", SEED, [{"image": "registry.example.com/app:1"}])
    injected = apply(obj, admit(obj))
    assert knscale_parts(injected["spec"]["template"])["mounts"] == [
        [{"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True}]
    ]
    # A Deployment's containers must be named (Kubernetes requires it): refused, not guessed.
    bad = workload("Deployment", SEED, [{"image": "registry.example.com/app:1"}])
    response = admit(bad)
    assert response["allowed"] is False and "KNS022" in response["status"]["message"]


def test_changing_the_model_uri_rebuilds_the_init_container() -> None:
    obj = workload("Deployment", SEED)
    injected = apply(obj, admit(obj))
    changed = copy.deepcopy(injected)
    ann = changed["spec"]["template"]["metadata"]["annotations"]
    ann["modelPath"] = "/autotables/47/trained_model/2617/"
    ann["knscale.dev/model-mount-path"] = "/models"
    updated = apply(changed, admit(changed, operation="UPDATE"))
    parts = knscale_parts(updated["spec"]["template"])
    assert len(parts["init"]) == 1 and len(parts["volumes"]) == 3
    assert parts["init"][0]["args"] == ["s3://autotables_47/autotables/47/trained_model/2617/", "/models"]
    assert parts["mounts"] == [[{"name": MODEL_VOLUME, "mountPath": "/models", "readOnly": True}]]
    assert "patch" not in admit(updated, operation="UPDATE")


def test_removing_the_opt_in_removes_the_injection_but_keeps_the_users_own_fields() -> None:
    containers = [
        {
            "name": "app",
            "image": "registry.example.com/app:1",
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
        }
    ]
    obj = workload("Deployment", SEED, containers)
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "cache", "emptyDir": {}}]
    obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "warmup", "image": "busybox:1"}]
    injected = apply(obj, admit(obj))
    assert [c["name"] for c in injected["spec"]["template"]["spec"]["initContainers"]] == [
        "warmup",
        INIT_CONTAINER_NAME,
    ]
    opted_out = copy.deepcopy(injected)
    ann = opted_out["spec"]["template"]["metadata"]["annotations"]
    for key in ("modelBucket", "modelPath", "initContainerImage", "injectModelInitContainer"):
        del ann[key]
    undone = apply(opted_out, admit(opted_out, operation="UPDATE"))
    template = undone["spec"]["template"]
    assert knscale_parts(template) == {"marker": None, "init": [], "volumes": [], "mounts": [[]]}
    expected = copy.deepcopy(obj["spec"]["template"])
    for key in ("modelBucket", "modelPath", "initContainerImage", "injectModelInitContainer"):
        del expected["metadata"]["annotations"][key]
    expected["spec"]["securityContext"] = {"fsGroup": 1000}  # cannot be told from the user's own: stays
    assert template == expected
    assert "patch" not in admit(undone, operation="UPDATE")


def test_errors_deny_the_object_with_the_rule_id_and_warnings_are_left_to_validate() -> None:
    response = admit(workload("Deployment", {**SEED, "knscale.dev/model-mount-path": "../x"}))
    assert response["allowed"] is False
    assert "Deployment models/web" in response["status"]["message"]
    assert "spec.template.metadata.annotations" in response["status"]["message"]
    ok = admit(workload("Deployment", SEED))
    assert "patch" in ok and "warnings" not in ok  # the KNS004 legacy-key warnings come from /validate


def test_a_template_with_parts_under_knscales_names_is_left_to_the_pod_webhook() -> None:
    obj = workload("Deployment", SEED)
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {"name": INIT_CONTAINER_NAME, "image": "registry.example.com/fetch:2", "command": ["/fetch"]}
    ]
    response = admit(obj)
    assert response["allowed"] is True and "patch" not in response


def test_pods_made_from_an_injected_template_are_not_injected_again() -> None:
    injected = apply(workload("Deployment", SEED), admit(workload("Deployment", SEED)))
    template = injected["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", **template["metadata"]},
        "spec": template["spec"],
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-2",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "models",
            "operation": "CREATE",
            "object": pod,
        },
    }
    response = orjson.loads(admission.mutate(admission.parse_review(orjson.dumps(review)), ON).body)[
        "response"
    ]
    assert response["allowed"] is True and "patch" not in response


def test_other_kinds_and_operations_pass_untouched() -> None:
    obj = workload("Deployment", SEED)
    assert "patch" not in admit(obj, operation="DELETE")
    review = admission.parse_review(
        orjson.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u-3",
                    "kind": {"group": "apps", "version": "v1", "kind": "DaemonSet"},
                    "operation": "CREATE",
                    "object": {**obj, "kind": "DaemonSet"},
                },
            }
        )
    )
    assert "patch" not in orjson.loads(admission.mutate(review, ON).body)["response"]


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(pods(), st.sampled_from(sorted(KINDS)))
def test_inject_then_opt_out_round_trips_over_generated_templates(pod: dict[str, Any], kind: str) -> None:
    """For any pod spec the pod property tests generate, used as a template: the patch applies,
    a second admission changes nothing; after the opt-in is removed, one more admission takes
    every knscale part out and the next changes nothing."""
    template = {"metadata": pod.get("metadata") or {}, "spec": pod["spec"]}
    obj = workload(kind, {})
    obj["spec"]["template"] = template
    before = copy.deepcopy(obj)
    response = admit(obj)
    assert obj == before  # planning never edits the object under review
    if response["allowed"] is False:
        return  # refused (e.g. a mount-path conflict): the pod tests cover the message
    injected = apply(obj, response)
    if "patch" not in response:
        return
    assert "patch" not in admit(injected, operation="UPDATE")
    opted_out = copy.deepcopy(injected)
    ann = opted_out["spec"]["template"]["metadata"]["annotations"]
    for key in [
        k for k in ann if k.startswith("knscale.dev/model") or k.startswith("knscale.dev/inject") or k in SEED
    ]:
        if key != INJECTED:
            del ann[key]
    undone = apply(opted_out, admit(opted_out, operation="UPDATE"))
    parts = knscale_parts(undone["spec"]["template"])
    assert parts["marker"] is None and parts["init"] == [] and parts["volumes"] == []
    assert all(m == [] for m in parts["mounts"])
    assert "patch" not in admit(undone, operation="UPDATE")
    # The template is back as the author wrote it (less the keys removed above), but for the
    # pod's fsGroup, which stays (docs/annotations.md), and null or empty lists, which Kubernetes
    # reads as absent.
    expected = copy.deepcopy(before["spec"]["template"])
    expected["metadata"]["annotations"] = {
        k: v for k, v in (expected["metadata"].get("annotations") or {}).items() if k in ann
    }
    # A mount of knscale's volume the author wrote before the injection would dangle without it.
    volumes = {v.get("name") for v in expected["spec"].get("volumes") or []}
    for c in [*(expected["spec"].get("initContainers") or []), *expected["spec"]["containers"]]:
        if c.get("volumeMounts"):
            c["volumeMounts"] = [
                m for m in c["volumeMounts"] if m.get("name") not in OWNED_VOLUMES or m.get("name") in volumes
            ]
    got = copy.deepcopy(undone["spec"]["template"])
    if "fsGroup" not in (expected["spec"].get("securityContext") or {}):
        security = got["spec"].get("securityContext") or {}
        security.pop("fsGroup", None)
        if not security and expected["spec"].get("securityContext") is None:
            got["spec"].pop("securityContext", None)
    assert _without_empty_values(got) == _without_empty_values(expected)


def _without_empty_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty_values(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_without_empty_values(v) for v in value]
    return value


def test_knscales_init_container_keeps_its_place_among_the_authors() -> None:
    obj = workload("Deployment", SEED)
    injected = apply(obj, admit(obj))
    # The author adds a step that must run after the download (kubectl apply/edit appends it).
    injected["spec"]["template"]["spec"]["initContainers"].append(
        {"name": "after-download", "image": "busybox:1"}
    )
    assert "patch" not in admit(injected, operation="UPDATE")
    changed = copy.deepcopy(injected)
    changed["spec"]["template"]["metadata"]["annotations"]["modelPath"] = "/autotables/48/"
    updated = apply(changed, admit(changed, operation="UPDATE"))
    inits = updated["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in inits] == [INIT_CONTAINER_NAME, "after-download"]
    assert inits[0]["args"][0] == "s3://autotables_47/autotables/48/"
    ops = orjson.loads(base64.b64decode(admit(changed, operation="UPDATE")["patch"]))
    assert all(op["path"].startswith("/spec/template/spec/initContainers/0/") for op in ops), ops


def test_fields_the_api_server_defaulted_do_not_make_a_patch() -> None:
    obj = workload("Deployment", SEED)
    stored = apply(obj, admit(obj))
    init = stored["spec"]["template"]["spec"]["initContainers"][0]
    init["terminationMessagePath"] = "/dev/termination-log"  # what the API server adds
    init["resources"]["claims"] = []
    for volume in stored["spec"]["template"]["spec"]["volumes"]:
        volume.setdefault("emptyDir", {})
    assert "patch" not in admit(stored, operation="UPDATE")


def test_opting_out_drops_every_mount_of_the_removed_volumes() -> None:
    obj = workload("Deployment", SEED)
    injected = apply(obj, admit(obj))
    # The author's own init step reads the model: it mounts knscale's volume.
    injected["spec"]["template"]["spec"]["initContainers"].append(
        {"name": "warm", "image": "busybox:1", "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": "/m"}]}
    )
    opted_out = copy.deepcopy(injected)
    ann = opted_out["spec"]["template"]["metadata"]["annotations"]
    for key in ("modelBucket", "modelPath", "initContainerImage", "injectModelInitContainer"):
        del ann[key]
    undone = apply(opted_out, admit(opted_out, operation="UPDATE"))
    spec = undone["spec"]["template"]["spec"]
    volumes = {v["name"] for v in spec.get("volumes") or []}
    for c in [*spec["containers"], *spec["initContainers"]]:
        assert all(m["name"] in volumes for m in c.get("volumeMounts") or []), c
    assert [c["name"] for c in spec["initContainers"]] == ["warm"]


def test_knative_templates_get_no_pod_security_context() -> None:
    deployment = apply(workload("Deployment", SEED), admit(workload("Deployment", SEED)))
    assert deployment["spec"]["template"]["spec"]["securityContext"] == {"fsGroup": 1000}
    ksvc = apply(workload("Service", SEED), admit(workload("Service", SEED)))
    assert "securityContext" not in ksvc["spec"]["template"]["spec"]


OPT_IN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://models/resnet/1/"}


def _updated(stored: dict[str, Any], **annotations: str | None) -> dict[str, Any]:
    """`stored` after the author changed its template annotations (None removes a key), admitted."""
    changed = copy.deepcopy(stored)
    ann = changed["spec"]["template"]["metadata"]["annotations"]
    for key, value in annotations.items():
        key = key.replace("_", "-").replace("knscale-dev-", "knscale.dev/")
        if value is None:
            del ann[key]
        else:
            ann[key] = value
    return apply(changed, admit(changed, operation="UPDATE"))


@pytest.mark.parametrize(
    ("added", "removed_from"),
    [
        ({"knscale.dev/model-credentials-secret": "creds"}, lambda s: s["initContainers"][0].get("envFrom")),
        ({"knscale.dev/model-size-limit": "10Gi"}, lambda s: s["volumes"][0]["emptyDir"].get("sizeLimit")),
    ],
)
def test_removing_an_annotation_removes_what_it_added(added: dict[str, str], removed_from: Any) -> None:
    obj = workload("Deployment", {**OPT_IN, **added})
    stored = apply(obj, admit(obj))
    spec = stored["spec"]["template"]["spec"]
    assert removed_from({**spec, "volumes": [v for v in spec["volumes"] if v["name"] == MODEL_VOLUME]})
    fresh = apply(workload("Deployment", OPT_IN), admit(workload("Deployment", OPT_IN)))
    undone = _updated(stored, **{k.replace("knscale.dev/", "knscale_dev_"): None for k in added})
    assert undone["spec"]["template"] == fresh["spec"]["template"]


def test_a_pvc_sub_path_goes_when_the_source_no_longer_has_one() -> None:
    obj = workload("Deployment", {**OPT_IN, "knscale.dev/model-uri": "pvc://claim/sub/dir"})
    stored = apply(obj, admit(obj))
    assert stored["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["subPath"] == "sub/dir"
    updated = _updated(stored, knscale_dev_model_uri="pvc://claim")
    assert updated["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True}
    ]


def test_a_hand_edit_of_knscales_init_container_is_undone() -> None:
    stored = apply(workload("Deployment", OPT_IN), admit(workload("Deployment", OPT_IN)))
    edited = copy.deepcopy(stored)
    edited["spec"]["template"]["spec"]["initContainers"][0]["command"] = ["sh", "-c", "true"]
    assert apply(edited, admit(edited, operation="UPDATE"))["spec"]["template"] == stored["spec"]["template"]


def test_quantities_the_api_server_wrote_canonically_make_no_patch() -> None:
    obj = workload("Deployment", {**OPT_IN, "knscale.dev/model-size-limit": "2048Mi"})
    config = KnscaleConfig.model_validate({"injection": {"mutate_templates": True, "cpu_limit": "1000m"}})
    stored = apply(obj, admit(obj, config))
    spec = stored["spec"]["template"]["spec"]
    model = next(v for v in spec["volumes"] if v["name"] == MODEL_VOLUME)
    assert model["emptyDir"]["sizeLimit"] == "2048Mi"
    model["emptyDir"]["sizeLimit"] = "2Gi"  # as the API server stores it
    spec["initContainers"][0]["resources"]["limits"]["cpu"] = "1"
    assert "patch" not in admit(stored, config, operation="UPDATE")
    spec["initContainers"][0]["resources"]["limits"]["cpu"] = "2"  # a real difference
    assert "patch" in admit(stored, config, operation="UPDATE")


@pytest.mark.parametrize("kind", ["Service", "Deployment"])
def test_opting_out_gives_back_the_template_as_written(kind: str) -> None:
    obj = workload(kind, OPT_IN)
    stored = apply(obj, admit(obj))
    undone = _updated(stored, knscale_dev_inject_model=None, knscale_dev_model_uri=None)
    spec = undone["spec"]["template"]["spec"]
    if kind == "Deployment":
        assert spec.pop("securityContext") == {"fsGroup": 1000}  # stays (docs/annotations.md)
    assert spec == obj["spec"]["template"]["spec"]  # no empty initContainers/volumes/volumeMounts
    assert undone["spec"]["template"]["metadata"]["annotations"] == {}


def test_the_authors_mounts_in_skipped_sidecars_stay() -> None:
    containers = [
        {"name": "app", "image": "registry.example.com/app:1"},
        {"name": "istio-proxy", "image": "istio/proxyv2:1"},
    ]
    stored = apply(
        workload("Deployment", OPT_IN, containers), admit(workload("Deployment", OPT_IN, containers))
    )
    sidecar_mount = {"name": MODEL_VOLUME, "mountPath": "/model", "readOnly": True}
    stored["spec"]["template"]["spec"]["containers"][1]["volumeMounts"] = [sidecar_mount]
    assert "patch" not in admit(stored, operation="UPDATE")
    moved = _updated(stored, knscale_dev_model_mount_path="/models")
    app, sidecar = moved["spec"]["template"]["spec"]["containers"]
    assert app["volumeMounts"] == [{"name": MODEL_VOLUME, "mountPath": "/models", "readOnly": True}]
    assert sidecar["volumeMounts"] == [sidecar_mount]


def test_a_second_mount_of_the_model_volume_in_an_app_container_is_refused_not_dropped() -> None:
    stored = apply(workload("Service", OPT_IN), admit(workload("Service", OPT_IN)))
    mounts = stored["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    mounts.append({"name": MODEL_VOLUME, "mountPath": "/etc/model-config", "subPath": "config"})
    response = admit(stored, operation="UPDATE")
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("KNS023 Service models/web: spec.template.metadata.annotations"), message
    assert "/mnt/models, /etc/model-config" in message and "fix: " in message


@pytest.mark.parametrize(
    "spec_change",
    [
        {"volumes": [{"name": ["x"], "emptyDir": {}}]},
        {"volumes": ["x"]},
        {
            "containers": [
                {"name": "app", "image": "a:1", "volumeMounts": [{"name": {"a": 1}, "mountPath": "/x"}]}
            ]
        },
    ],
)
@pytest.mark.parametrize("kind", ["Service", "Deployment"])
def test_malformed_volumes_and_mounts_are_denied_with_kns022(kind: str, spec_change: dict[str, Any]) -> None:
    obj = workload(kind, OPT_IN)
    obj["spec"]["template"]["spec"].update(copy.deepcopy(spec_change))
    response = admit(obj)
    assert response["allowed"] is False and response["status"]["message"].startswith("KNS022"), response
    stored = apply(workload(kind, OPT_IN), admit(workload(kind, OPT_IN)))
    stored["spec"]["template"]["spec"].update(copy.deepcopy(spec_change))
    response = admit(stored, operation="UPDATE")  # a marked template: stripped before planning
    assert response["allowed"] is False and response["status"]["message"].startswith("KNS022"), response


def test_knative_templates_leave_privileged_to_its_default() -> None:
    """Knative Serving before 1.17 refuses `privileged` in a container securityContext."""
    ksvc = apply(workload("Service", OPT_IN), admit(workload("Service", OPT_IN)))
    security = ksvc["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    assert "privileged" not in security
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    deployment = apply(workload("Deployment", OPT_IN), admit(workload("Deployment", OPT_IN)))
    assert (
        deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["privileged"] is False
    )
