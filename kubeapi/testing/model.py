"""The fake API's data model: its call log, injected failures, events and Kubernetes semantics
that need no state (label selectors, JSON merge patch, the Scale view)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeapi.resources import DEPLOYMENTS, STATEFULSETS, Resource

REQUIRED_PA_STATUS = ("serviceName", "metricsServiceName")
SCALABLE = {DEPLOYMENTS.plural, STATEFULSETS.plural}
Key = tuple[str, str, str]  # (resource "plural.group", namespace, name)


@dataclass
class Call:
    verb: str
    resource: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    body: Any = None
    error: int | None = None  # the HTTP status the call failed with; None if it succeeded


@dataclass
class Failure:
    verb: str | None
    resource: str | None
    name: str | None
    subresource: str | None
    status: int
    reason: str
    times: int


@dataclass
class Event:
    rv: int
    res: str
    namespace: str
    type: str
    obj: dict[str, Any] = field(repr=False)


def res_key(res: Resource) -> str:
    return f"{res.plural}.{res.group}"


def match_labels(obj: Mapping[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.strip().rstrip("=")) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def scale_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = ",".join(
        f"{k}={v}" for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())
    )
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        # autoscaling/v1 ScaleSpec.replicas is omitempty: a Scale at zero has no replicas field.
        "spec": {"replicas": spec.get("replicas", 1)} if spec.get("replicas", 1) else {},
        "status": {"replicas": status.get("replicas", 0), "selector": selector},
    }
