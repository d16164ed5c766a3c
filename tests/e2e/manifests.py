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
