"""Workload manifests the e2e scenarios apply: one builder, so every Deployment/StatefulSet a
scenario creates has the same shape (selector and template labels ``app: <name>``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

APP_IMAGE = "registry.example.com/app:1"


def workload(
    name: str,
    *,
    kind: str = "Deployment",
    replicas: int = 1,
    containers: Sequence[Mapping[str, Any]] | None = None,
    annotations: Mapping[str, str] | None = None,
    template_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An apps/v1 Deployment or StatefulSet; one container ``app`` running APP_IMAGE unless
    ``containers`` says otherwise. Annotations are only written when given."""
    metadata: dict[str, Any] = {"name": name}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    template_metadata: dict[str, Any] = {"labels": {"app": name}}
    if template_annotations is not None:
        template_metadata["annotations"] = dict(template_annotations)
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": template_metadata,
            "spec": {"containers": [dict(c) for c in containers or [{"name": "app", "image": APP_IMAGE}]]},
        },
    }
    if kind == "StatefulSet":
        spec.update(serviceName=name, podManagementPolicy="Parallel")
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


# The seed's `kn service create` example: its annotations and what injecting it must give.
DOWNLOADER = "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0"
SEED_ANNOTATIONS = {
    "injectModelInitContainer": "true",
    "modelBucket": "autotables_47",
    "modelPath": "/autotables/47/trained_model/2616/1629363245/",
    "initContainerImage": DOWNLOADER,
}
MODEL_URI = "s3://autotables_47/autotables/47/trained_model/2616/1629363245/"


def assert_injected(pod: dict[str, Any], app_containers: list[str], skipped: tuple[str, ...] = ()) -> None:
    """The seed's injection as the API server stored it on a pod (init container, volumes, mounts)."""
    spec = pod["spec"]
    inits = spec.get("initContainers") or []
    assert [c["name"] for c in inits] == ["knscale-model-init"], inits
    init = inits[0]
    assert init["image"] == DOWNLOADER
    assert init["args"] == [MODEL_URI, "/mnt/models"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["MODEL_URI"] == MODEL_URI
    assert env["MODEL_BUCKET"] == "autotables_47"
    assert env["MODEL_PATH"] == SEED_ANNOTATIONS["modelPath"]
    sc = init["securityContext"]
    assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert init_mounts["/mnt/models"] == "knscale-model"
    assert init_mounts["/tmp"] == "knscale-model-tmp"  # the read-only root needs writable scratch space
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert {"knscale-model", "knscale-model-tmp", "knscale-model-home"} <= set(volumes)
    assert "emptyDir" in volumes["knscale-model"]
    by_name = {c["name"]: c for c in spec["containers"]}
    for name in app_containers:
        mounts = [m for m in by_name[name].get("volumeMounts") or [] if m["name"] == "knscale-model"]
        assert mounts == [{"name": "knscale-model", "mountPath": "/mnt/models", "readOnly": True}], (
            name,
            mounts,
        )
    for name in skipped:
        assert not [m for m in by_name[name].get("volumeMounts") or [] if m["name"].startswith("knscale")], (
            name
        )
    assert spec["securityContext"].get("fsGroup") == 1000
    assert pod["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
