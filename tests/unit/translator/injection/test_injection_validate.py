"""Model keys through `validate_object` (what `/validate` and `knscale lint` run), per kind."""

from __future__ import annotations

from typing import Any

from translator.config.knscale import KnscaleConfig
from translator.validate import validate_object

CONFIG = KnscaleConfig()
GOOD = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m/"}


def model_ids(obj: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(f.rule_id, f.key, f.path) for f in validate_object(obj, CONFIG) if f.rule_id.startswith("KNS0")]


def ksvc(template_ann: dict[str, str], own: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "ml", "annotations": own or {}},
        "spec": {
            "template": {"metadata": {"annotations": template_ann}, "spec": {"containers": [{"image": "a"}]}}
        },
    }


def test_knative_service_keys_copied_by_kn_are_judged_once_on_the_template() -> None:
    bad = {"injectModelInitContainer": "maybe", "modelBucket": "b"}
    assert model_ids(ksvc(bad, own=dict(bad))) == [
        ("KNS004", "injectModelInitContainer", "spec.template.metadata.annotations"),
        ("KNS004", "modelBucket", "spec.template.metadata.annotations"),
        ("KNS001", "injectModelInitContainer", "spec.template.metadata.annotations"),
    ]


def test_keys_only_on_the_service_metadata_warn_that_they_do_nothing() -> None:
    assert model_ids(ksvc({}, own=dict(GOOD))) == [
        ("KNS021", "knscale.dev/inject-model", "metadata.annotations"),
        ("KNS021", "knscale.dev/model-uri", "metadata.annotations"),
    ]


def test_revision_reads_its_own_metadata_and_checks_its_containers() -> None:
    revision = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "r-00001", "namespace": "ml", "annotations": dict(GOOD)},
        "spec": {
            "containers": [
                {"name": "user-container", "volumeMounts": [{"name": "x", "mountPath": "/mnt/models"}]}
            ]
        },
    }
    assert model_ids(revision) == [("KNS013", None, "metadata.annotations")]


def test_statefulset_template_in_a_system_namespace() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "kube-system"},
        "spec": {
            "template": {"metadata": {"annotations": dict(GOOD)}, "spec": {"containers": [{"name": "c"}]}}
        },
    }
    assert model_ids(sts) == [("KNS018", None, "spec.template.metadata.annotations")]


def test_valid_objects_have_no_model_findings() -> None:
    assert model_ids(ksvc(dict(GOOD))) == []
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": dict(GOOD)},
        "spec": {},
    }
    assert model_ids(pod) == []  # no containers to judge in a partial manifest: lint stays quiet


def test_injected_pods_are_not_judged_again() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "annotations": {"knscale.dev/inject-model": "?", "knscale.dev/model-injected": "true"},
        },
        "spec": {"containers": [{"name": "c"}]},
    }
    assert model_ids(pod) == []
