"""Pure accessors of Kubernetes objects as the controller reads them (dicts from the API).

Shared by the HPA-class sync and the KPA scaling loop; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations import table as ann
from translator.config.autoscaler import HPA_CLASS, KPA_CLASS
from translator.core.objects import SERVING_GROUP, has_revision_label

__all__ = ["HPA_CLASS", "KPA_CLASS"]


# ---- identity and ownership -------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    a = meta(obj).get("annotations")
    return a if isinstance(a, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def autoscaler_class(obj: Mapping[str, Any]) -> str | None:
    """The class annotation exactly as written (no default: an unannotated workload is not ours)."""
    value = annotations_of(obj).get(ann.CLASS.name)
    return value if isinstance(value, str) else None


def is_revision_controlled(obj: Mapping[str, Any]) -> bool:
    """A Deployment Knative made for a Revision: Knative's own autoscaler owns its scale.

    Either signal is enough — an ownerReference to a serving.knative.dev Revision, or the
    `serving.knative.dev/revision` label (older Knative copies the class annotation onto these
    Deployments, so the annotation alone says nothing).
    """
    for ref in meta(obj).get("ownerReferences") or []:
        if not isinstance(ref, Mapping):
            continue
        api_version = str(ref.get("apiVersion") or "")
        if ref.get("kind") == "Revision" and api_version.split("/", 1)[0] == SERVING_GROUP:
            return True
    return has_revision_label(meta(obj).get("labels"))


def controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to `owner`.

    blockOwnerDeletion is left unset on purpose: setting it needs `update` on the owner's
    `finalizers` subresource where OwnerReferencesPermissionEnforcement is on, and garbage
    collection of the dependent works without it.
    """
    m = meta(owner)
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
    }


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and bool(ref.get("uid")) and ref.get("uid") == meta(owner).get("uid")


# ---- semantic equality ------------------------------------------------------------------


def normalize(value: Any) -> Any:
    """Drop what JSON round trips and API defaulting make meaningless: nulls and empty maps/lists
    (Go's semantic equality treats nil and empty alike), and int/float spellings of one number."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            n = normalize(v)
            if n is None or n == {} or n == []:
                continue
            out[k] = n
        return out
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    return bool(normalize(a) == normalize(b))
