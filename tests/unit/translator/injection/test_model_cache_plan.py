"""The shared model cache in the plan: `knscale.dev/model-cache` (or `injection.model_cache_claim`)
turns the download into knscale's cache script on a ReadWriteMany claim, mounted read-only at the
entry of the model's URI. The script itself runs in tests/integration/test_model_cache.py."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pydantic
import pytest

import translator.injection.cache_script as cache_script
from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.rule_ids import RuleId
from translator.injection.cache import CACHE_ROOT, PYTHON, SCRIPT
from translator.injection.cache_script import cache_key, shown
from translator.injection.common import INIT_CONTAINER_NAME, MODEL_VOLUME
from translator.injection.plan import plan_injection
from webhook.patch import plan_ops

URI = "s3://models/resnet/v2/"
CACHE = {
    "knscale.dev/inject-model": "true",
    "knscale.dev/model-uri": URI,
    "knscale.dev/model-cache": "models",
}
CONFIG = KnscaleConfig()


def pod_with(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "example.com/app:1"}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ml", "annotations": annotations},
        "spec": base,
    }


def inject(pod: dict[str, Any], config: KnscaleConfig = CONFIG) -> dict[str, Any]:
    plan, findings = plan_injection(pod, "ml", config)
    assert plan is not None and not findings, [f.text() for f in findings]
    result: dict[str, Any] = jsonpatch.apply_patch(pod, plan_ops(pod, plan))
    return result


def init_of(pod: dict[str, Any]) -> dict[str, Any]:
    [c] = [c for c in pod["spec"]["initContainers"] if c["name"] == INIT_CONTAINER_NAME]
    return c


def test_cache_pod_gets_the_claim_the_script_and_a_read_only_entry_mount() -> None:
    out = inject(pod_with(CACHE))
    key = "uri-sha256-" + hashlib.sha256(URI.encode()).hexdigest()
    spec = out["spec"]
    assert spec["volumes"][0] == {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": "models"}}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True, "subPath": key}
    ]
    init = init_of(out)
    assert init["command"] == [PYTHON, "-c", SCRIPT]
    assert init["args"] == [URI, CACHE_ROOT, key, str(cache_script.DEFAULT_WAIT_SECONDS)]
    assert {"name": MODEL_VOLUME, "mountPath": CACHE_ROOT} in init["volumeMounts"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"] == {"fsGroup": 1000, "fsGroupChangePolicy": "OnRootMismatch"}
    kubernetes_validate.validate(out, "1.30", strict=True)
    assert plan_injection(out, "ml", KnscaleConfig()) == (None, [])  # reinvocation: nothing more


def test_the_cluster_default_applies_and_an_empty_value_opts_out() -> None:
    config = KnscaleConfig(injection=InjectionConfig(model_cache_claim="shared-models"))
    plain = {k: v for k, v in CACHE.items() if k != "knscale.dev/model-cache"}
    out = inject(pod_with(plain), config)
    assert out["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "shared-models"}
    opted_out = inject(pod_with({**plain, "knscale.dev/model-cache": ""}), config)
    assert opted_out["spec"]["volumes"][0] == {"name": MODEL_VOLUME, "emptyDir": {}}
    assert "command" not in init_of(opted_out)


def test_a_bad_claim_name_is_kns040_naming_the_key_and_a_fix() -> None:
    bad = pod_with({**CACHE, "knscale.dev/model-cache": "Model_Cache"})
    plan, findings = plan_injection(bad, "ml", CONFIG)
    assert plan is None
    [f] = findings
    assert f.rule_id == RuleId.KNS046 and f.is_error
    assert f.key == "knscale.dev/model-cache" and f.value == "Model_Cache"
    assert "PersistentVolumeClaim name" in f.message and f.fix is not None and "model-cache" in f.fix


def test_a_bad_cluster_default_is_refused_when_the_settings_load() -> None:
    with pytest.raises(pydantic.ValidationError, match="model_cache_claim"):
        InjectionConfig(model_cache_claim="Not A Claim")


def test_a_pvc_source_ignores_the_cache_with_kns019() -> None:
    ann = {**CACHE, "knscale.dev/model-uri": "pvc://store/resnet"}
    plan, findings = plan_injection(pod_with(ann), "ml", KnscaleConfig())
    assert plan is not None and plan.init_container is None
    assert [(f.rule_id, f.key) for f in findings] == [(RuleId.KNS019, "knscale.dev/model-cache")]
    # and the cluster default is simply not applied to pvc:// sources
    config = KnscaleConfig(injection=InjectionConfig(model_cache_claim="shared"))
    assert plan_injection(pod_with({k: v for k, v in ann.items() if "cache" not in k}), "ml", config)[1] == []


def test_user_text_is_a_kubelet_literal_and_the_key_is_of_the_text_checked() -> None:
    uri = "s3://models/$(HOME)/m/"
    init = init_of(inject(pod_with({**CACHE, "knscale.dev/model-uri": uri})))
    assert init["args"][0] == "s3://models/$$(HOME)/m/"
    assert init["args"][2] == cache_key(uri)
    assert "$" not in SCRIPT  # so doubling it changes nothing the kubelet hands over
    assert all("$" not in e["value"] or "$$" in e["value"] for e in init["env"])


def test_a_digest_pinned_uri_is_keyed_by_its_digest() -> None:
    digest = "ab" * 32
    assert cache_key(f"https://models.example.com/m@sha256:{digest}") == f"sha256-{digest}"
    assert cache_key("https://a.example/m") != cache_key("https://a.example/m?v=2")


def test_logs_never_show_a_signature_or_userinfo() -> None:
    assert shown("https://u:pw@h.example/m.bin?X-Amz-Signature=s3cr3t#f") == "https://h.example/m.bin"
    assert shown("s3://bucket/path/") == "s3://bucket/path/"


def test_the_embedded_script_is_the_module_and_small() -> None:
    assert Path(cache_script.__file__).read_text(encoding="utf-8") == SCRIPT
    assert len(SCRIPT.encode()) < 16 * 1024  # rides in every pod spec (the API server stores <= 1.5 MiB)


def test_a_pre_declared_init_container_with_its_own_args_keeps_its_entrypoint() -> None:
    mine = {"name": INIT_CONTAINER_NAME, "image": "example.com/dl:1", "args": ["x", "/mnt/models"]}
    out = inject(pod_with(CACHE, initContainers=[mine]))
    init = init_of(out)
    assert init["args"] == ["x", "/mnt/models"] and "command" not in init


def test_a_cache_has_no_effect_on_an_oci_model() -> None:
    """An oci:// model is an image the node pulls and keeps itself: no download to cache."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ml",
            "annotations": {
                "knscale.dev/inject-model": "true",
                "knscale.dev/model-uri": "oci://registry.example/models/bert@sha256:" + "a" * 64,
                "knscale.dev/model-cache": "model-cache",
            },
        },
        "spec": {"containers": [{"name": "app", "image": "registry.example/app@sha256:" + "b" * 64}]},
    }
    config = KnscaleConfig.model_validate({"injection": {"oci_mode": "image-volume"}})
    plan, findings = plan_injection(pod, "ml", config)
    assert "KNS043" in {f.rule_id for f in findings}
    volumes = [v for v in plan.volumes if "persistentVolumeClaim" in v] if plan is not None else []
    assert volumes == []
