"""Object builders shared by the tests (and reusable by the e2e scenarios): plain manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
CLASS_KEY = "autoscaling.knative.dev/class"


def workload(
    name: str,
    namespace: str = "default",
    *,
    kind: str = "Deployment",
    annotations: Mapping[str, str] | None = None,
    replicas: int | None = 1,
    labels: Mapping[str, str] | None = None,
    owner_references: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    app = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": app},
        "template": {
            "metadata": {"labels": app},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": dict(annotations or {})}
    if labels:
        meta["labels"] = dict(labels)
    if owner_references:
        meta["ownerReferences"] = owner_references
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def pod(
    name: str,
    app: str,
    namespace: str = "default",
    *,
    ready: bool = True,
    ip: str = "10.0.0.1",
    start_time: str = "2024-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "startTime": start_time,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod_autoscaler(
    name: str,
    namespace: str = "default",
    *,
    annotations: Mapping[str, str] | None = None,
    protocol: str = "http1",
    reachability: str | None = None,
) -> dict[str, Any]:
    ann = {CLASS_KEY: HPA, "autoscaling.knative.dev/metric": "cpu"}
    ann.update(annotations or {})
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
        "protocolType": protocol,
    }
    if reachability:
        spec["reachability"] = reachability
    return {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": ann,
            "labels": {"serving.knative.dev/revision": name},
        },
        "spec": spec,
    }


def hpa(name: str, namespace: str = "default", *, desired: int = 1, current: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
            "maxReplicas": 10,
        },
        "status": {"desiredReplicas": desired, "currentReplicas": current},
    }


def sks_ready_status(name: str) -> dict[str, Any]:
    """What Knative's SKS controller writes once the services exist."""
    return {
        "serviceName": name,
        "privateServiceName": f"{name}-private",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
