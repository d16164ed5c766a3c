"""oci:// model images (translator/injection/oci.py): image-volume and copy mode, the mode's
default from the minimum Kubernetes version, the keys, the allowlists, redaction, idempotency,
and Knative templates (left to the pod path)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch
import kubernetes_validate
import orjson
import pytest
from helpers.strategies import oci_sources, pods
from hypothesis import given, settings
from pydantic import ValidationError

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.findings import Finding
from translator.injection.common import INIT_CONTAINER_NAME, MODEL_VOLUME
from translator.injection.oci import COPY, IMAGE_VOLUME, oci_mode
from translator.injection.plan import plan_injection
from translator.validate import validate_object
from webhook import admission
from webhook.patch import plan_ops

DIGEST = "sha256:" + "0a" * 32
IMAGE = f"registry.example.com/models/resnet@{DIGEST}"
OPT_IN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": f"oci://{IMAGE}"}
VOLUME = KnscaleConfig.model_validate({"injection": {"oci_mode": "image-volume"}})
COPYING = KnscaleConfig.model_validate({"injection": {"oci_mode": "copy"}})


def config(**injection: Any) -> KnscaleConfig:
    return KnscaleConfig.model_validate({"injection": injection})


def pod_with(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "containers": [{"name": "app", "image": "example.com/app:1"}, {"name": "queue-proxy", "image": "q:1"}]
    }
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": annotations},
        "spec": base,
    }


def findings_of(annotations: dict[str, str], cfg: KnscaleConfig = VOLUME) -> list[Finding]:
    return plan_injection(pod_with(annotations), "ml", cfg)[1]


def ids(findings: list[Finding]) -> list[str]:
    return [f.rule_id for f in findings]


def inject(pod: dict[str, Any], cfg: KnscaleConfig = VOLUME) -> dict[str, Any]:
    plan, findings = plan_injection(pod, "ml", cfg)
    assert not [f for f in findings if f.is_error], [f.text() for f in findings]
    assert plan is not None
    result: dict[str, Any] = jsonpatch.apply_patch(pod, plan_ops(pod, plan))
    return result


def test_image_volume_mode_mounts_the_image_and_adds_nothing_else() -> None:
    pod = inject(pod_with({**OPT_IN, "knscale.dev/model-sub-path": "resnet/v2/"}))
    spec = pod["spec"]
    assert spec["volumes"] == [
        {"name": MODEL_VOLUME, "image": {"reference": IMAGE, "pullPolicy": "IfNotPresent"}}
    ]
    assert "initContainers" not in spec and "securityContext" not in spec
    app, sidecar = spec["containers"]
    assert app["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True, "subPath": "models/resnet/v2"}
    ]
    assert "volumeMounts" not in sidecar
    assert pod["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
    kubernetes_validate.validate(pod, "1.36", strict=True)


def test_copy_mode_runs_the_model_image_copying_its_model_dir_into_the_emptydir() -> None:
    cfg = config(oci_mode="copy", oci_model_dir="/opt/model-store/")
    ann = {**OPT_IN, "knscale.dev/model-sub-path": "a/b", "knscale.dev/model-mount-path": "/m$(HOME)"}
    pod = inject(pod_with(ann), cfg)
    spec = pod["spec"]
    [init] = spec["initContainers"]
    assert init["name"] == INIT_CONTAINER_NAME
    assert init["image"] == IMAGE and init["imagePullPolicy"] == "IfNotPresent"
    # No shell: cp alone. The kubelet expands $(NAME) in command: user text has `$` doubled.
    assert init["command"] == ["cp", "-R", "--", "/opt/model-store/a/b/.", "/m$$(HOME)"]
    assert "args" not in init and "envFrom" not in init
    assert init["securityContext"]["runAsNonRoot"] is True
    assert {"name": MODEL_VOLUME, "mountPath": "/m$(HOME)"} in init["volumeMounts"]
    assert spec["volumes"][0] == {"name": MODEL_VOLUME, "emptyDir": {}}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/m$(HOME)", "readOnly": True}
    ]
    assert spec["securityContext"] == {"fsGroup": 1000}
    kubernetes_validate.validate(pod, "1.34", strict=True)


def test_copy_mode_keeps_the_size_limit_image_volume_mode_ignores_it() -> None:
    ann = {**OPT_IN, "knscale.dev/model-size-limit": "5Gi"}
    assert inject(pod_with(ann), COPYING)["spec"]["volumes"][0]["emptyDir"] == {"sizeLimit": "5Gi"}
    found = findings_of(ann, VOLUME)
    assert ids(found) == ["KNS043"] and found[0].key == "knscale.dev/model-size-limit"


@pytest.mark.parametrize(
    ("minimum", "mode"), [("1.30", COPY), ("1.34", COPY), ("1.35", IMAGE_VOLUME), ("1.36", IMAGE_VOLUME)]
)
def test_the_default_mode_follows_the_minimum_kubernetes_version(minimum: str, mode: str) -> None:
    assert oci_mode(InjectionConfig(min_kubernetes_version=minimum)) == mode
    explicit = COPY if mode == IMAGE_VOLUME else IMAGE_VOLUME
    assert oci_mode(InjectionConfig(min_kubernetes_version=minimum, oci_mode=explicit)) == explicit


def test_the_shipped_default_is_copy_mode() -> None:
    assert oci_mode(InjectionConfig()) == COPY
    assert "oci" in InjectionConfig().allowed_schemes


@pytest.mark.parametrize("bad", ["1", "v1.35", "1.35.2", "2.0", "1.035", " 1.35"])
def test_minimum_version_must_be_a_minor_version(bad: str) -> None:
    with pytest.raises(ValidationError, match="min_kubernetes_version"):
        InjectionConfig(min_kubernetes_version=bad)


@pytest.mark.parametrize(
    ("uri", "warned", "policy"),
    [
        (f"oci://{IMAGE}", False, "IfNotPresent"),
        ("oci://registry.example.com/models/resnet:v1", True, "IfNotPresent"),
        ("oci://registry.example.com/models/resnet:latest", True, "Always"),
        ("oci://registry.example.com:5000/models/resnet", True, "Always"),
        (f"oci://localhost/m:v1@{DIGEST}", False, "IfNotPresent"),
    ],
)
def test_tags_warn_and_the_pull_policy_defaults_as_kubernetes_does(
    uri: str, warned: bool, policy: str
) -> None:
    ann = {**OPT_IN, "knscale.dev/model-uri": uri}
    found = findings_of(ann)
    assert ids(found) == (["KNS040"] if warned else [])
    if warned:
        assert found[0].key == "knscale.dev/model-uri" and "digest" in (found[0].fix or "")
    assert inject(pod_with(ann))["spec"]["volumes"][0]["image"]["pullPolicy"] == policy


def test_pull_policy_annotation_sets_both_modes() -> None:
    ann = {**OPT_IN, "knscale.dev/model-pull-policy": "Never"}
    assert inject(pod_with(ann))["spec"]["volumes"][0]["image"]["pullPolicy"] == "Never"
    assert inject(pod_with(ann), COPYING)["spec"]["initContainers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("annotations", "rule", "key"),
    [
        ({"knscale.dev/model-pull-policy": "always"}, "KNS041", "knscale.dev/model-pull-policy"),
        ({"knscale.dev/model-sub-path": "/abs"}, "KNS042", "knscale.dev/model-sub-path"),
        ({"knscale.dev/model-sub-path": "a b"}, "KNS042", "knscale.dev/model-sub-path"),
        ({"knscale.dev/model-sub-path": "a/$(X)"}, "KNS042", "knscale.dev/model-sub-path"),
        ({"knscale.dev/model-sub-path": "a/../../etc"}, "KNS010", "knscale.dev/model-sub-path"),
        ({"knscale.dev/model-sub-path": "a/%2e%2e"}, "KNS010", "knscale.dev/model-sub-path"),
        ({"knscale.dev/model-uri": "oci://org/model:1"}, "KNS006", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://registry.example.com"}, "KNS006", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://registry.example.com/M:1"}, "KNS006", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://r.example.com/m@sha256:abc"}, "KNS006", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://r.example.com/m:1?x=1"}, "KNS006", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://r.example.com/a/../m:1"}, "KNS010", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://u:pw@r.example.com/m:1"}, "KNS011", "knscale.dev/model-uri"),
        ({"knscale.dev/model-uri": "oci://r%2eexample.com/m:1"}, "KNS006", "knscale.dev/model-uri"),
    ],
)
def test_bad_oci_requests_are_denied_naming_key_and_rule(
    annotations: dict[str, str], rule: str, key: str
) -> None:
    found = [f for f in findings_of({**OPT_IN, **annotations}) if f.is_error]
    assert [(f.rule_id, f.key) for f in found] == [(rule, key)]
    assert found[0].fix
    assert "pw" not in found[0].text()


@pytest.mark.parametrize(
    "key", ["knscale.dev/model-init-image", "knscale.dev/model-credentials-secret", "initContainerImage"]
)
def test_downloader_keys_have_no_effect_on_an_oci_source(key: str) -> None:
    value = "creds" if key.endswith("secret") else "registry.example.com/dl:1"
    ann = {**OPT_IN, key: value}
    assert "KNS043" in ids(findings_of(ann))
    pod = inject(pod_with(ann), COPYING)
    assert (
        "envFrom" not in pod["spec"]["initContainers"][0]
        and pod["spec"]["initContainers"][0]["image"] == IMAGE
    )


@pytest.mark.parametrize("key", ["knscale.dev/model-pull-policy", "knscale.dev/model-sub-path"])
def test_oci_keys_have_no_effect_on_other_sources(key: str) -> None:
    ann = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://models/m/", key: "Always"}
    found = findings_of(ann)
    assert [(f.rule_id, f.key) for f in found] == [("KNS043", key)]


@pytest.mark.parametrize(
    ("patterns", "allowed"),
    [
        (["registry.example.com"], True),
        (["oci://*.example.com"], True),
        (["oci://registry.example.com/models/*"], True),
        (["registry.example.com/models/*"], True),
        (["oci://registry.example.com/other/*"], False),
        (["oci://registry.example.com/*"], False),  # '*' never crosses '/'
        (["s3://registry.example.com"], False),
        (["registry.example.com:5000"], False),
        (["evil.io/registry.example.com"], False),
    ],
)
def test_source_allowlist_judges_the_registry_host_and_optionally_the_repository(
    patterns: list[str], allowed: bool
) -> None:
    found = findings_of(OPT_IN, config(oci_mode="image-volume", source_allowlist=patterns))
    assert ids(found) == ([] if allowed else ["KNS009"])


def test_copy_mode_runs_the_model_image_so_the_image_allowlist_applies() -> None:
    allow = ["registry.example.com/models/*"]
    assert ids(findings_of(OPT_IN, config(oci_mode="copy", image_allowlist=allow))) == []
    other = {**OPT_IN, "knscale.dev/model-uri": f"oci://elsewhere.example.org/m@{DIGEST}"}
    assert ids(findings_of(other, config(oci_mode="copy", image_allowlist=allow))) == ["KNS044"]
    # Only mounted, never run: the downloader allowlist does not apply.
    assert ids(findings_of(other, config(oci_mode="image-volume", image_allowlist=allow))) == []


def test_findings_quote_a_digest_as_written_and_still_hide_userinfo() -> None:
    tagged = f"oci://registry.example.com/models/resnet:v1@{DIGEST}"
    bad = {**OPT_IN, "knscale.dev/model-uri": tagged, "knscale.dev/model-pull-policy": "x"}
    [kns041] = [f for f in findings_of(bad) if f.rule_id == "KNS041"]
    assert kns041.value == "x"
    [warning] = findings_of({**OPT_IN, "knscale.dev/model-uri": "oci://registry.example.com/m:v1"})
    assert warning.value == "oci://registry.example.com/m:v1"
    text = findings_of({**OPT_IN, "knscale.dev/model-uri": f"oci://a:b@r.example.com/m@{DIGEST}"})[0].text()
    assert "a:b" not in text and "<redacted>" in text


@pytest.mark.parametrize("cfg", [VOLUME, COPYING], ids=["image-volume", "copy"])
def test_admitting_the_injected_pod_again_adds_no_second_volume(cfg: KnscaleConfig) -> None:
    once = inject(pod_with(dict(OPT_IN)), cfg)
    assert plan_injection(once, "ml", cfg)[0] is None  # the marker
    unmarked = copy.deepcopy(once)
    del unmarked["metadata"]["annotations"]["knscale.dev/model-injected"]
    twice = inject(unmarked, cfg)
    assert twice["spec"]["volumes"] == once["spec"]["volumes"]
    assert twice["spec"]["containers"] == once["spec"]["containers"]
    assert twice["spec"].get("initContainers") == once["spec"].get("initContainers")


@pytest.mark.parametrize("cfg", [VOLUME, COPYING], ids=["image-volume", "copy"])
@settings(max_examples=40, deadline=None)
@given(pod=pods(oci_sources))
def test_oci_patch_applies_only_adds_is_schema_valid_and_idempotent(
    cfg: KnscaleConfig, pod: dict[str, Any]
) -> None:
    original = copy.deepcopy(pod)
    plan, findings = plan_injection(pod, "ml", cfg)
    assert not [f for f in findings if f.is_error], [f.text() for f in findings]
    assert plan is not None
    result = jsonpatch.apply_patch(pod, plan_ops(pod, plan))
    assert pod == original
    kubernetes_validate.validate(result, "1.36", strict=True)
    volumes = [v for v in result["spec"]["volumes"] if v["name"] == MODEL_VOLUME]
    assert len(volumes) == 1
    if "image" in volumes[0]:
        assert (
            volumes[0]["image"]["reference"]
            == original["metadata"]["annotations"]["knscale.dev/model-uri"][6:]
        )
        # Nothing runs: a knscale-model-init the author declared is theirs, left as written.
        assert plan.init_container is None
        assert result["spec"].get("initContainers") == original["spec"].get("initContainers")
    assert plan_injection(result, "ml", cfg)[0] is None


# --- Knative and template mode ------------------------------------------------------------------


def ksvc(annotations: dict[str, str]) -> dict[str, Any]:
    template = {
        "metadata": {"annotations": dict(annotations)},
        "spec": {"containers": [{"image": "registry.example.com/app:1"}]},
    }
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "models"},
        "spec": {"template": template},
    }


def deployment(annotations: dict[str, str]) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}, "annotations": dict(annotations)},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
    }
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "models"},
        "spec": spec,
    }


def admit_template(obj: dict[str, Any], cfg: KnscaleConfig) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    resource = {"Service": "services", "Deployment": "deployments"}[obj["kind"]]
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": "models",
            "operation": "CREATE",
            "object": obj,
        },
    }
    response = orjson.loads(admission.mutate(admission.parse_review(orjson.dumps(review)), cfg).body)[
        "response"
    ]
    assert response["allowed"] is True, response
    if "patch" not in response:
        return obj
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, orjson.loads(base64.b64decode(response["patch"])))
    return patched


def test_template_mode_leaves_image_volumes_out_of_knative_templates() -> None:
    cfg = config(oci_mode="image-volume", mutate_templates=True)
    obj = ksvc(OPT_IN)
    assert admit_template(copy.deepcopy(obj), cfg) == obj
    # Deployments take the image volume in their template.
    stored = admit_template(deployment(OPT_IN), cfg)
    assert stored["spec"]["template"]["spec"]["volumes"][0]["image"]["reference"] == IMAGE


def test_template_mode_copies_into_a_knative_template_like_a_download() -> None:
    stored = admit_template(ksvc(OPT_IN), config(oci_mode="copy", mutate_templates=True))
    [init] = stored["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == IMAGE and init["command"][0] == "cp"


def test_lint_explains_the_knative_field_mask() -> None:
    found = validate_object(ksvc(OPT_IN), VOLUME)
    [info] = [f for f in found if f.rule_id == "KNS045"]
    assert "kubernetes.podspec-volumes-image" in info.message
    assert info.key == "knscale.dev/model-uri" and not info.is_error
    assert "KNS045" not in ids(validate_object(ksvc(OPT_IN), COPYING))
    assert "KNS045" not in ids(validate_object(deployment(OPT_IN), VOLUME))
