"""The pure injection plan: what is added to a pod, applied with jsonpatch and checked field by field."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from helpers.paths import ADMISSION_FIXTURES

from translator.config.knscale import DEFAULT_DOWNLOADER_IMAGE, InjectionConfig, KnscaleConfig
from translator.injection.common import HOME_VOLUME, INIT_CONTAINER_NAME, MODEL_VOLUME, TMP_VOLUME
from translator.injection.plan import plan_injection
from webhook.patch import plan_ops

FIXTURES = ADMISSION_FIXTURES
SEED_URI = "s3://autotables_47/autotables/47/trained_model/2616/1629363245/"
SEED_IMAGE = "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0"
CONFIG = KnscaleConfig()


def seed_pod() -> dict[str, Any]:
    pod: dict[str, Any] = json.loads((FIXTURES / "helloworld-go-pod.json").read_text())
    return pod


def pod_with(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "example.com/app:1"}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ml", "annotations": annotations},
        "spec": base,
    }


def inject(pod: dict[str, Any], config: KnscaleConfig = CONFIG, namespace: str = "ml") -> dict[str, Any]:
    plan, findings = plan_injection(pod, namespace, config)
    assert not [f for f in findings if f.is_error], [f.text() for f in findings]
    assert plan is not None
    result: dict[str, Any] = jsonpatch.apply_patch(pod, plan_ops(pod, plan))
    return result


def init_container(pod: dict[str, Any]) -> dict[str, Any]:
    [c] = [c for c in pod["spec"]["initContainers"] if c["name"] == INIT_CONTAINER_NAME]
    return c


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


CANONICAL = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "gs://models/resnet/v2/"}


def test_seed_example_gets_exactly_the_documented_injection() -> None:
    pod = seed_pod()
    before = copy.deepcopy(pod)
    plan, findings = plan_injection(pod, "default", CONFIG)
    assert pod == before, "planning must not mutate its input"
    assert plan is not None
    # Accepted with one warning per legacy key, each naming the canonical key.
    assert [(f.rule_id, f.key) for f in findings] == [
        ("KNS004", "injectModelInitContainer"),
        ("KNS004", "modelBucket"),
        ("KNS004", "modelPath"),
        ("KNS004", "initContainerImage"),
    ]
    assert "knscale.dev/inject-model" in findings[0].message
    assert "knscale.dev/model-uri" in findings[1].message
    assert "knscale.dev/model-init-image" in findings[3].message

    out = jsonpatch.apply_patch(pod, plan_ops(pod, plan))
    assert out["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
    assert out["spec"]["initContainers"] == [
        {
            "name": "knscale-model-init",
            "image": SEED_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "args": [SEED_URI, "/mnt/models"],
            "env": [
                {"name": "MODEL_URI", "value": SEED_URI},
                {"name": "MODEL_BUCKET", "value": "autotables_47"},
                {"name": "MODEL_PATH", "value": "/autotables/47/trained_model/2616/1629363245/"},
                {"name": "MODEL_DIR", "value": "/mnt/models"},
                {"name": "HOME", "value": "/home/knscale"},
            ],
            "resources": {
                "requests": {"cpu": "100m", "memory": "100Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
            "securityContext": {
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [
                {"name": "knscale-model", "mountPath": "/mnt/models"},
                {"name": "knscale-model-tmp", "mountPath": "/tmp"},
                {"name": "knscale-model-home", "mountPath": "/home/knscale"},
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
    ]
    assert out["spec"]["volumes"][1:] == [
        {"name": "knscale-model", "emptyDir": {}},
        {"name": "knscale-model-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "knscale-model-home", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    user, queue = out["spec"]["containers"]
    assert user["volumeMounts"][-1] == {"name": "knscale-model", "mountPath": "/mnt/models", "readOnly": True}
    assert queue == before["spec"]["containers"][1], "queue-proxy never gets the model"
    assert out["spec"]["securityContext"] == {"fsGroup": 1000}
    # Nothing else changed.
    for key in ("labels", "ownerReferences", "generateName"):
        assert out["metadata"][key] == before["metadata"][key]
    kubernetes_validate.validate(out, "1.30", strict=True)
    # Reinvocation: nothing more to do.
    assert plan_injection(out, "default", CONFIG) == (None, [])


def test_canonical_keys_give_no_warnings_and_the_default_image() -> None:
    out_plan, findings = plan_injection(pod_with(CANONICAL), "ml", CONFIG)
    assert findings == []
    assert out_plan is not None
    out = inject(pod_with(CANONICAL))
    c = init_container(out)
    assert c["image"] == DEFAULT_DOWNLOADER_IMAGE
    assert c["args"] == ["gs://models/resnet/v2/", "/mnt/models"]
    assert env_of(c)["MODEL_BUCKET"] == "models"
    assert env_of(c)["MODEL_PATH"] == "/resnet/v2/"


@pytest.mark.parametrize("flag", ["true", "TRUE", "True", " true "])
def test_inject_flag_any_case(flag: str) -> None:
    plan, _ = plan_injection(pod_with({**CANONICAL, "knscale.dev/inject-model": flag}), "ml", CONFIG)
    assert plan is not None


@pytest.mark.parametrize("flag", ["false", "FALSE", "False"])
def test_inject_false_plans_nothing_and_warns_nothing(flag: str) -> None:
    assert plan_injection(pod_with({**CANONICAL, "knscale.dev/inject-model": flag}), "ml", CONFIG) == (
        None,
        [],
    )


def test_pod_without_model_keys_costs_nothing() -> None:
    assert plan_injection(pod_with({"app": "x"}), "ml", CONFIG) == (None, [])
    assert plan_injection({"metadata": {}, "spec": {}}, None, CONFIG) == (None, [])
    assert plan_injection({}, None, CONFIG) == (None, [])


@pytest.mark.parametrize(
    ("bucket", "path", "uri", "env_bucket"),
    [
        ("autotables_47", "/a/b/", "s3://autotables_47/a/b/", "autotables_47"),
        ("autotables_47", "a/b", "s3://autotables_47/a/b", "autotables_47"),
        ("gs://example-models", "/m/1/", "gs://example-models/m/1/", "example-models"),
        ("gs://example-models/", "m", "gs://example-models/m", "example-models"),
        ("Upper_Case.bucket", None, "s3://Upper_Case.bucket", "Upper_Case.bucket"),
    ],
)
def test_bucket_and_path_compose_a_uri(bucket: str, path: str | None, uri: str, env_bucket: str) -> None:
    ann = {"injectModelInitContainer": "true", "modelBucket": bucket}
    if path is not None:
        ann["modelPath"] = path
    c = init_container(inject(pod_with(ann)))
    assert c["args"] == [uri, "/mnt/models"]
    assert env_of(c)["MODEL_URI"] == uri
    assert env_of(c)["MODEL_BUCKET"] == env_bucket
    assert env_of(c)["MODEL_PATH"] == (path or "")


def test_default_scheme_is_configurable() -> None:
    config = KnscaleConfig(injection=InjectionConfig(default_scheme="gs"))
    ann = {"injectModelInitContainer": "true", "modelBucket": "b", "modelPath": "/m"}
    assert init_container(inject(pod_with(ann), config))["args"][0] == "gs://b/m"


def test_mount_path_reaches_every_app_container_but_not_sidecars_or_other_init_containers() -> None:
    pod = pod_with(
        {**CANONICAL, "knscale.dev/model-mount-path": "/models/"},
        containers=[
            {"name": "server", "image": "s"},
            {"name": "istio-proxy", "image": "i"},
            {"name": "transformer", "image": "t", "volumeMounts": []},
            {"name": "queue-proxy", "image": "q"},
            {"name": "log-shipper", "image": "l"},
        ],
        initContainers=[{"name": "migrate", "image": "m"}],
    )
    config = KnscaleConfig(injection=InjectionConfig(skip_containers=("log-shipper",)))
    out = inject(pod, config)
    mounted = [c["name"] for c in out["spec"]["containers"] if c.get("volumeMounts")]
    assert mounted == ["server", "transformer"]
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/models", "readOnly": True}
    ]
    assert out["spec"]["initContainers"][0] == {"name": "migrate", "image": "m"}
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["migrate", INIT_CONTAINER_NAME]
    assert env_of(init_container(out))["MODEL_DIR"] == "/models"


def test_pvc_source_mounts_the_claim_directly_without_an_init_container() -> None:
    ann = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "pvc://model-store/llama/7b/"}
    out = inject(pod_with(ann))
    assert "initContainers" not in out["spec"]
    assert out["spec"]["volumes"] == [
        {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True}}
    ]
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True, "subPath": "llama/7b"}
    ]
    assert "securityContext" not in out["spec"], "no fsGroup: kubelet would chown the whole claim"
    kubernetes_validate.validate(out, "1.30", strict=True)


def test_pvc_without_sub_path_mounts_the_whole_claim() -> None:
    ann = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "pvc://model-store"}
    out = inject(pod_with(ann))
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True}
    ]


def test_credentials_are_a_secret_reference_never_a_value() -> None:
    out = inject(pod_with({**CANONICAL, "knscale.dev/model-credentials-secret": "gcs-reader"}))
    c = init_container(out)
    assert c["envFrom"] == [{"secretRef": {"name": "gcs-reader"}}]
    assert all("valueFrom" not in e and "SECRET" not in e["name"] for e in c["env"])


def test_size_limit_from_annotation_or_config() -> None:
    out = inject(pod_with({**CANONICAL, "knscale.dev/model-size-limit": "20Gi"}))
    assert out["spec"]["volumes"][0] == {"name": MODEL_VOLUME, "emptyDir": {"sizeLimit": "20Gi"}}
    config = KnscaleConfig(injection=InjectionConfig(model_size_limit="5Gi"))
    out = inject(pod_with(CANONICAL), config)
    assert out["spec"]["volumes"][0] == {"name": MODEL_VOLUME, "emptyDir": {"sizeLimit": "5Gi"}}


def test_resources_identity_and_extra_env_come_from_config() -> None:
    config = KnscaleConfig(
        injection=InjectionConfig(
            run_as_user=2000,
            run_as_group=3000,
            fs_group=4000,
            cpu_request="50m",
            cpu_limit="2",
            memory_request="64Mi",
            memory_limit="2Gi",
            env={"S3_ENDPOINT": "https://minio.example.com"},
            image_pull_policy="Always",
            home_dir="/var/knscale-home",
        )
    )
    out = inject(pod_with(CANONICAL), config)
    c = init_container(out)
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (2000, 3000)
    assert out["spec"]["securityContext"] == {"fsGroup": 4000}
    assert env_of(c)["S3_ENDPOINT"] == "https://minio.example.com"
    assert env_of(c)["HOME"] == "/var/knscale-home"
    assert {"name": HOME_VOLUME, "mountPath": "/var/knscale-home"} in c["volumeMounts"]
    assert c["imagePullPolicy"] == "Always"


def test_existing_fs_group_is_kept() -> None:
    out = inject(pod_with(CANONICAL, securityContext={"fsGroup": 777, "runAsNonRoot": True}))
    assert out["spec"]["securityContext"] == {"fsGroup": 777, "runAsNonRoot": True}


def test_pre_declared_init_container_is_completed_and_user_env_wins() -> None:
    mine = {
        "name": INIT_CONTAINER_NAME,
        "image": "registry.example.com/my-downloader:2",
        "env": [
            {"name": "MODEL_DIR", "value": "/data/custom"},
            {"name": "S3_ENDPOINT", "value": "http://minio"},
        ],
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }
    pod = pod_with(CANONICAL, initContainers=[{"name": "first", "image": "f"}, mine])
    out = inject(pod)
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["first", INIT_CONTAINER_NAME]
    c = init_container(out)
    assert c["image"] == "registry.example.com/my-downloader:2", "their image stays"
    env = env_of(c)
    assert env["MODEL_DIR"] == "/data/custom", "user env wins over knscale's default"
    assert env["S3_ENDPOINT"] == "http://minio"
    assert env["MODEL_URI"] == "gs://models/resnet/v2/"
    assert [e["name"] for e in c["env"]].count("MODEL_DIR") == 1
    assert [m["name"] for m in c["volumeMounts"]] == [TMP_VOLUME, MODEL_VOLUME, HOME_VOLUME]
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["args"] == ["gs://models/resnet/v2/", "/mnt/models"]
    kubernetes_validate.validate(out, "1.30", strict=True)
    assert plan_injection(out, "ml", CONFIG) == (None, [])


def test_existing_volume_with_our_name_is_used_not_duplicated() -> None:
    pod = pod_with(CANONICAL, volumes=[{"name": MODEL_VOLUME, "emptyDir": {"medium": "Memory"}}])
    out = inject(pod)
    names = [v["name"] for v in out["spec"]["volumes"]]
    assert names.count(MODEL_VOLUME) == 1
    assert out["spec"]["volumes"][0] == {"name": MODEL_VOLUME, "emptyDir": {"medium": "Memory"}}


def test_container_already_mounting_our_volume_is_left_alone() -> None:
    mount = {"name": MODEL_VOLUME, "mountPath": "/elsewhere", "readOnly": True}
    pod = pod_with(
        CANONICAL, containers=[{"name": "a", "image": "a", "volumeMounts": [mount]}, {"name": "b"}]
    )
    out = inject(pod)
    assert out["spec"]["containers"][0]["volumeMounts"] == [mount]
    assert out["spec"]["containers"][1]["volumeMounts"][0]["mountPath"] == "/mnt/models"


def test_status_marker_means_done_even_when_keys_are_broken() -> None:
    pod = pod_with({"knscale.dev/inject-model": "maybe", "knscale.dev/model-injected": "true"})
    assert plan_injection(pod, "ml", CONFIG) == (None, [])


def test_reinjection_after_the_marker_is_removed_only_restores_the_marker() -> None:
    out = inject(pod_with(CANONICAL))
    del out["metadata"]["annotations"]["knscale.dev/model-injected"]
    plan, _ = plan_injection(out, "ml", CONFIG)
    assert plan is not None
    assert plan_ops(out, plan) == [
        {"op": "add", "path": "/metadata/annotations/knscale.dev~1model-injected", "value": "true"}
    ]


def test_null_lists_and_maps_are_created_whole() -> None:
    pod = pod_with(CANONICAL, volumes=None, initContainers=None, securityContext=None)
    pod["spec"]["containers"][0]["volumeMounts"] = None
    out = inject(pod)
    assert out["spec"]["volumes"][0]["name"] == MODEL_VOLUME
    assert out["spec"]["securityContext"] == {"fsGroup": 1000}
    assert out["spec"]["containers"][0]["volumeMounts"][0]["name"] == MODEL_VOLUME


def test_plan_is_a_pure_function_of_its_inputs() -> None:
    pod = pod_with(CANONICAL)
    first = plan_injection(pod, "ml", CONFIG)
    second = plan_injection(copy.deepcopy(pod), "ml", CONFIG)
    assert first == second
