"""What an input object means for autoscaling: the revision it becomes and how it is scaled.

Pure helpers shared by the lint rules, `knscale translate` and the reconciler: the revision a
Knative Service/Configuration creates (named `spec.template.metadata.name`, else
`<name>-00001`), and the scale target and owner a ScaledObject gets.

`hpa_revision` is the one builder of an `HpaRevision` from an object that carries its own
scaling metadata (a PodAutoscaler, or a Deployment/StatefulSet scaled as one): lint and the
reconciler both call it, so they cannot disagree on what they render (reachability included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.annotations import table as A
from translator.core.objects import (
    PA_API_VERSION,
    REVISION_LABEL,
    SERVING_GROUP,
    controlled_by_revision,
    dig,
    mapping,
    text_of,
)
from translator.keda.types import HpaRevision, OwnerRef, ScaleTargetRef

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision-like thing to scale: what the renderers are given, and how it is classed."""

    hpa: HpaRevision
    # None: the class is not set and must not default (a plain Deployment without a class).
    class_value: str | None
    container_concurrency: int = 0

    @property
    def name(self) -> str:
        return self.hpa.name

    @property
    def namespace(self) -> str | None:
        return self.hpa.namespace

    @property
    def annotations(self) -> Mapping[str, Any]:
        return self.hpa.annotations

    @property
    def target(self) -> ScaleTargetRef:
        return self.hpa.target


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _strings(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _containers(spec: Any) -> list[Mapping[str, Any]] | None:
    containers = dig(spec, "containers")
    return [c for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else None


def pa_target(pa: Mapping[str, Any], name: str | None = None) -> ScaleTargetRef:
    """A PodAutoscaler's `spec.scaleTargetRef`, defaulting as Knative does (`<name>-deployment`)."""
    ref = mapping(dig(pa, "spec", "scaleTargetRef"))
    pa_name = name or text_of(mapping(pa.get("metadata")).get("name"))
    return ScaleTargetRef(
        text_of(ref.get("apiVersion")) or "apps/v1",
        text_of(ref.get("kind")) or "Deployment",
        text_of(ref.get("name")) or f"{pa_name}-deployment",
    )


def workload_target(workload: Mapping[str, Any]) -> ScaleTargetRef:
    """A Deployment/StatefulSet scaled as a revision targets itself."""
    return ScaleTargetRef(
        text_of(workload.get("apiVersion")) or "apps/v1",
        text_of(workload.get("kind")) or "Deployment",
        text_of(mapping(workload.get("metadata")).get("name")),
    )


def hpa_revision(obj: Mapping[str, Any], target: ScaleTargetRef, *, name: str | None = None) -> HpaRevision:
    """The HpaRevision of a PodAutoscaler or of a workload scaled as one, from its own metadata.

    `name` overrides the object's name (`knscale translate --revision`). The owner reference is
    the object itself (when it has a uid, as every object read from the API server has); a
    PodAutoscaler whose `spec.reachability` is `Unreachable` gets min 0, as in Knative.
    """
    meta = mapping(obj.get("metadata"))
    obj_name = text_of(meta.get("name"))
    namespace = meta.get("namespace")
    kind = text_of(obj.get("kind"))
    uid = meta.get("uid")
    default_api_version = PA_API_VERSION if kind == "PodAutoscaler" else "apps/v1"
    api_version = text_of(obj.get("apiVersion")) or default_api_version
    return HpaRevision(
        name=name or obj_name,
        annotations=_strings(meta.get("annotations")),
        target=target,
        namespace=namespace if isinstance(namespace, str) else None,
        labels=_strings(meta.get("labels")),
        owner=OwnerRef(api_version, kind, obj_name, uid) if isinstance(uid, str) and uid else None,
        reachable=dig(obj, "spec", "reachability") != "Unreachable",
        containers=_containers(dig(obj, "spec", "template", "spec")) if kind in WORKLOAD_KINDS else None,
    )


def revision_of(
    obj: Mapping[str, Any], role: str, default_class: str, revision_name: str | None = None
) -> Revision | None:
    """The revision an object stands for (None for kinds that are not scaled, such as Pods).

    `revision_name` overrides the derived name (`knscale translate --revision`).
    """
    meta = mapping(obj.get("metadata"))
    name = text_of(meta.get("name"))
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    if role == "knative-template":
        template = mapping(dig(obj, "spec", "template"))
        tmeta = mapping(template.get("metadata"))
        rev = revision_name or text_of(tmeta.get("name")) or (f"{name}-00001" if name else "")
        annotations = _strings(tmeta.get("annotations"))
        labels = _strings(tmeta.get("labels"))
        kind = text_of(obj.get("kind"))
        labels.setdefault(f"{SERVING_GROUP}/{kind.lower()}", name)
        if kind == "Service":
            labels.setdefault(f"{SERVING_GROUP}/configuration", name)
        labels.setdefault(REVISION_LABEL, rev)
        spec = template.get("spec")
        hpa = HpaRevision(
            name=rev,
            annotations=annotations,
            target=ScaleTargetRef("apps/v1", "Deployment", f"{rev}-deployment"),
            namespace=namespace,
            labels=labels,
            containers=_containers(spec),
        )
        return Revision(
            hpa,
            class_value=A.autoscaler_class(annotations, default_class),
            container_concurrency=_int(dig(spec, "containerConcurrency")),
        )
    if role == "revision":
        rev = revision_name or name
        annotations = _strings(meta.get("annotations"))
        spec = obj.get("spec")
        hpa = HpaRevision(
            name=rev,
            annotations=annotations,
            target=ScaleTargetRef("apps/v1", "Deployment", f"{rev}-deployment"),
            namespace=namespace,
            labels=_strings(meta.get("labels")),
            containers=_containers(spec),
        )
        return Revision(
            hpa,
            class_value=A.autoscaler_class(annotations, default_class),
            container_concurrency=_int(dig(spec, "containerConcurrency")),
        )
    if role == "podautoscaler":
        hpa = hpa_revision(obj, pa_target(obj, revision_name), name=revision_name)
        return Revision(
            hpa,
            class_value=A.autoscaler_class(hpa.annotations, default_class),
            container_concurrency=_int(dig(obj, "spec", "containerConcurrency")),
        )
    if role == "workload":
        if controlled_by_revision(obj):
            return None
        hpa = hpa_revision(obj, workload_target(obj), name=revision_name)
        class_value = hpa.annotations.get(A.CLASS.name)
        return Revision(hpa, class_value=class_value if isinstance(class_value, str) else None)
    return None
