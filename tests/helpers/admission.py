"""AdmissionReview fixtures (tests/fixtures/admission) and how tests post them."""

from __future__ import annotations

import json
from typing import Any

from helpers.paths import ADMISSION_FIXTURES

JSON_HEADERS = {"Content-Type": "application/json"}


def load(name: str) -> dict[str, Any]:
    """A review from tests/fixtures/admission, as a fresh dict each call."""
    doc: dict[str, Any] = json.loads((ADMISSION_FIXTURES / name).read_text())
    return doc


# The seed's `kn service create` example as the pod Knative makes from it, and a review around it.
SEED_ANNOTATIONS = {
    "autoscaling.knative.dev/target": "10",
    "modelBucket": "autotables_47",
    "modelPath": "/autotables/47/trained_model/2616/1629363245/",
    "initContainerImage": "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0",
    "injectModelInitContainer": "true",
}


def seed_pod() -> dict[str, Any]:
    """The pod Knative makes from the seed's `kn service create` (user-container + queue-proxy)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "helloworld-go-00001-deployment-",
            "namespace": "default",
            "annotations": dict(SEED_ANNOTATIONS),
            "labels": {"serving.knative.dev/service": "helloworld-go"},
        },
        "spec": {
            "containers": [
                {
                    "name": "user-container",
                    "image": "gcr.io/knative-samples/helloworld-go",
                    "env": [{"name": "TARGET", "value": "World"}],
                },
                {"name": "queue-proxy", "image": "gcr.io/knative-releases/queue"},
            ]
        },
    }


def review(
    api_version: str,
    obj: dict[str, Any],
    uid: str,
    *,
    kind: str = "Pod",
    group: str = "",
    resource: str = "pods",
) -> dict[str, Any]:
    version = obj["apiVersion"].split("/")[-1]
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }
