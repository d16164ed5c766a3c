"""The object model the rules judge: which kinds are checked, where their annotations sit.

Kept in `core` (not in `validate`) because the autoscaling and injection checks take an
`AnnotationSite` too; with it in the orchestrator they imported their own caller.

Design decision ("Kinds checked"): Knative Service, Configuration, Revision, PodAutoscaler;
Deployment and StatefulSet; Pod. Each path below is written once here: the webhook, the
reconciler and the CLI name the same annotations map with the same constant, so a finding's
path is the same string wherever it fires.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from translator.core.findings import ObjectRef

# Dotted paths into an object, as findings report them.
META_ANNOTATIONS = "metadata.annotations"
TEMPLATE_ANNOTATIONS = "spec.template.metadata.annotations"
TEMPLATE_PREFIX = "spec.template."
TEMPLATE_SPEC = "spec.template.spec"
POD_SPEC = "spec"

SERVING_GROUP = "serving.knative.dev"
AUTOSCALING_INTERNAL_GROUP = "autoscaling.internal.knative.dev"
PA_API_VERSION = AUTOSCALING_INTERNAL_GROUP + "/v1alpha1"
REVISION_LABEL = SERVING_GROUP + "/revision"

# (api group, kind) → role. The group is matched without the version so v1/v1beta1 both count.
CHECKED_KINDS: dict[tuple[str, str], str] = {
    (SERVING_GROUP, "Service"): "knative-template",
    (SERVING_GROUP, "Configuration"): "knative-template",
    (SERVING_GROUP, "Revision"): "revision",
    (AUTOSCALING_INTERNAL_GROUP, "PodAutoscaler"): "podautoscaler",
    ("apps", "Deployment"): "workload",
    ("apps", "StatefulSet"): "workload",
    ("", "Pod"): "pod",
}


@dataclass(frozen=True, slots=True)
class AnnotationSite:
    """One annotations map of an object and what is judged there."""

    path: str
    annotations: Mapping[str, Any]
    model_keys: bool
    autoscaling_keys: bool


def api_group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def role_of(obj: Mapping[str, Any]) -> str | None:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    return CHECKED_KINDS.get((api_group(api_version), kind))


def text_of(value: Any) -> str:
    """`value` when it is a string, else "": a field a hostile review fills with another type (a
    map nested a thousand deep) is never formatted, whose repr would recurse past the limit."""
    return value if isinstance(value, str) else ""


def display_name(meta: Any) -> str:
    """`name`, else `generateName`, of a metadata map — only ever a string: a name of another type
    (a hostile review can nest one a thousand deep) is never formatted into a message."""
    if not isinstance(meta, Mapping):
        return ""
    return next((n for n in (meta.get("name"), meta.get("generateName")) if isinstance(n, str) and n), "")


def object_ref(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = display_name(meta)
    ns = meta.get("namespace")
    return ObjectRef(
        kind=text_of(obj.get("kind")),
        name=name,
        namespace=ns if isinstance(ns, str) and ns else None,
        api_version=text_of(obj.get("apiVersion")) or None,
    )


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def dig(obj: Any, *path: str) -> Any:
    node = obj
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def dig_map(obj: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    """The map at a dotted path (`META_ANNOTATIONS`), or an empty one."""
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return {}
    return node if isinstance(node, Mapping) else {}


def iter_objects(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path prefix, object) for a document; a `kind: List` yields its items (`items[3].`)."""
    if isinstance(doc, Mapping) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            yield from iter_objects(item, f"{prefix}items[{i}].")
    else:
        yield prefix, doc


def controlled_by_revision(obj: Mapping[str, Any]) -> bool:
    """A workload Knative made for a revision: Knative's own autoscaler or the HPA-class path scales it."""
    refs = dig(obj, "metadata", "ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("kind") == "Revision":
            api_version = ref.get("apiVersion")
            if isinstance(api_version, str) and api_version.startswith(SERVING_GROUP + "/"):
                return True
    return False


def has_revision_label(labels: Any) -> bool:
    return isinstance(labels, Mapping) and REVISION_LABEL in labels


def annotation_sites(obj: Mapping[str, Any]) -> list[AnnotationSite]:
    """Where model and autoscaling keys are read for this object (empty for unchecked kinds)."""
    role = role_of(obj)
    if role is None:
        return []
    meta = dig_map(obj, META_ANNOTATIONS)
    template = dig_map(obj, TEMPLATE_ANNOTATIONS)
    if role == "knative-template":
        # Autoscaling keys on the Service/Configuration's own metadata are judged too: Knative
        # rejects them there. Model keys there are copies `kn` makes; they are judged once, on
        # the template, which is what reaches the pods.
        return [
            AnnotationSite(TEMPLATE_ANNOTATIONS, template, model_keys=True, autoscaling_keys=True),
            AnnotationSite(META_ANNOTATIONS, meta, model_keys=False, autoscaling_keys=True),
        ]
    if role == "revision":
        return [AnnotationSite(META_ANNOTATIONS, meta, model_keys=True, autoscaling_keys=True)]
    if role == "podautoscaler":
        return [AnnotationSite(META_ANNOTATIONS, meta, model_keys=False, autoscaling_keys=True)]
    if role == "workload":
        return [
            AnnotationSite(META_ANNOTATIONS, meta, model_keys=False, autoscaling_keys=True),
            AnnotationSite(TEMPLATE_ANNOTATIONS, template, model_keys=True, autoscaling_keys=False),
        ]
    return [AnnotationSite(META_ANNOTATIONS, meta, model_keys=True, autoscaling_keys=False)]  # pod
