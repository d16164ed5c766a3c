"""The value types of HPA-class rendering: the revision as its PodAutoscaler describes it, the
rendered result, and an issue before it is tied to an object (it becomes a Finding in lint)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from translator.annotations import table as A
from translator.core.rule_ids import RuleId

API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledObject"
DEFAULT_CPU_TARGET = 70.0
DEFAULT_PROMETHEUS_TRIGGER = "default-trigger-custom"
CPU_TRIGGER = "default-trigger-cpu"
MEMORY_TRIGGER = "default-trigger-memory"
MIB = 1024 * 1024
MAX_NAME = 63  # KEDA uses the ScaledObject and HPA names as label values
KEDA_DEFAULT_MAX = 100  # the CRD's CEL rule compares min with max, or 100 when max is unset
RESOURCE_TRIGGERS = frozenset({"cpu", "memory"})
NO_CACHED_METRICS = frozenset({"cpu", "memory", "cron"})


@dataclass(frozen=True, slots=True)
class Issue:
    """A translation problem before it is tied to an object: becomes a Finding in lint."""

    rule_id: RuleId
    key: str | None
    value: Any
    message: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ScaleTargetRef:
    api_version: str
    kind: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True, slots=True)
class HpaRevision:
    """What the renderers need to know about one HPA-class revision (what its PA carries)."""

    name: str
    annotations: Mapping[str, Any]
    target: ScaleTargetRef
    namespace: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    owner: OwnerRef | None = None
    reachable: bool = True
    # The pod template's containers when known (lint of a ksvc/Deployment); None for a bare PA.
    containers: Sequence[Any] | None = None

    def object_meta(self) -> dict[str, Any]:
        """metadata of what is rendered for it: its name, namespace, labels, annotations and owner."""
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        if self.owner is not None:
            meta["ownerReferences"] = [self.owner.to_dict()]
        return meta


@dataclass(frozen=True, slots=True)
class Rendered:
    manifest: dict[str, Any] | None
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return self.manifest is not None


def annotation_issue(
    rule: RuleId, ann: A.Annotation | None, ann_map: Mapping[str, Any], message: str, fix: str | None
) -> Issue:
    """An issue about one annotation, naming it as the user wrote it."""
    if ann is None:
        return Issue(rule, None, None, message, fix)
    found = ann.lookup(ann_map)
    key, value = found if found is not None else (ann.name, None)
    return Issue(rule, key, value, message, fix)
