"""What an input object means for autoscaling: the revision it becomes and how it is scaled.

Pure helpers shared by the lint rules, `knscale translate` and the reconciler: the revision a
Knative Service/Configuration creates (named `spec.template.metadata.name`, else
`<name>-00001`), the scale target and owner a ScaledObject gets, and `kind: List` expansion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from translator.annotations import table as A
from translator.core.objects import (
    PA_API_VERSION,
    REVISION_LABEL,
    SERVING_GROUP,
    controlled_by_revision,
    dig,
    mapping,
)
from translator.keda.render import HpaRevision, OwnerRef, ScaleTargetRef


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision-like thing to scale, as its PodAutoscaler would describe it."""

    name: str
    namespace: str | None
    annotations: Mapping[str, Any]
    labels: Mapping[str, Any]
    target: ScaleTargetRef
    # None: the class is not set and must not default (a plain Deployment without a class).
    class_value: str | None
    container_concurrency: int = 0
    owner: OwnerRef | None = None
    containers: Sequence[Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def hpa(self) -> HpaRevision:
        return HpaRevision(
            name=self.name,
            annotations=self.annotations,
            target=self.target,
            namespace=self.namespace,
            labels=self.labels,
            owner=self.owner,
            containers=self.containers,
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _strings(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _containers(spec: Any) -> list[Mapping[str, Any]] | None:
    containers = dig(spec, "containers")
    return [c for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else None


def revision_of(
    obj: Mapping[str, Any], role: str, default_class: str, revision_name: str | None = None
) -> Revision | None:
    """The revision an object stands for (None for kinds that are not scaled, such as Pods).

    `revision_name` overrides the derived name (`knscale translate --revision`).
    """
    meta = mapping(obj.get("metadata"))
    name = str(meta.get("name") or "")
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    if role == "knative-template":
        template = mapping(dig(obj, "spec", "template"))
        tmeta = mapping(template.get("metadata"))
        rev = revision_name or tmeta.get("name") or (f"{name}-00001" if name else "")
        rev = str(rev)
        annotations = _strings(tmeta.get("annotations"))
        labels = _strings(tmeta.get("labels"))
        kind = str(obj.get("kind"))
        labels.setdefault(f"{SERVING_GROUP}/{kind.lower()}", name)
        if kind == "Service":
            labels.setdefault(f"{SERVING_GROUP}/configuration", name)
        labels.setdefault(REVISION_LABEL, rev)
        spec = template.get("spec")
        return Revision(
            name=rev,
            namespace=namespace,
            annotations=annotations,
            labels=labels,
            target=ScaleTargetRef("apps/v1", "Deployment", f"{rev}-deployment"),
            class_value=A.autoscaler_class(annotations, default_class),
            container_concurrency=_int(dig(spec, "containerConcurrency")),
            containers=_containers(spec),
        )
    if role == "revision":
        rev = revision_name or name
        annotations = _strings(meta.get("annotations"))
        spec = obj.get("spec")
        return Revision(
            name=rev,
            namespace=namespace,
            annotations=annotations,
            labels=_strings(meta.get("labels")),
            target=ScaleTargetRef("apps/v1", "Deployment", f"{rev}-deployment"),
            class_value=A.autoscaler_class(annotations, default_class),
            container_concurrency=_int(dig(spec, "containerConcurrency")),
            containers=_containers(spec),
        )
    if role == "podautoscaler":
        annotations = _strings(meta.get("annotations"))
        ref = mapping(dig(obj, "spec", "scaleTargetRef"))
        uid = meta.get("uid")
        pa_name = revision_name or name
        return Revision(
            name=pa_name,
            namespace=namespace,
            annotations=annotations,
            labels=_strings(meta.get("labels")),
            target=ScaleTargetRef(
                str(ref.get("apiVersion") or "apps/v1"),
                str(ref.get("kind") or "Deployment"),
                str(ref.get("name") or f"{pa_name}-deployment"),
            ),
            class_value=A.autoscaler_class(annotations, default_class),
            container_concurrency=_int(dig(obj, "spec", "containerConcurrency")),
            owner=OwnerRef(str(obj.get("apiVersion") or PA_API_VERSION), "PodAutoscaler", name, uid)
            if isinstance(uid, str) and uid
            else None,
        )
    if role == "workload":
        if controlled_by_revision(obj):
            return None
        annotations = _strings(meta.get("annotations"))
        class_value = annotations.get(A.CLASS.name)
        uid = meta.get("uid")
        kind = str(obj.get("kind"))
        api_version = str(obj.get("apiVersion") or "apps/v1")
        return Revision(
            name=revision_name or name,
            namespace=namespace,
            annotations=annotations,
            labels=_strings(meta.get("labels")),
            target=ScaleTargetRef(api_version, kind, name),
            class_value=class_value if isinstance(class_value, str) else None,
            containers=_containers(dig(obj, "spec", "template", "spec")),
            owner=OwnerRef(api_version, kind, name, uid) if isinstance(uid, str) and uid else None,
        )
    return None
