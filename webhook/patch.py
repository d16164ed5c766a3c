"""RFC 6902 ops built directly from an `InjectionPlan` — no deep copy, no diff.

A diff (`jsonpatch.make_patch` over a copied and mutated pod) costs far more than the rest of an
admission request; the plan already knows every addition, so the ops are written out here.
Rules that keep each op applicable by the API server (a patch that fails to apply is an HTTP
500 for the user whatever the failurePolicy):

* a missing or null parent (list or map) is added whole first; later items use `/-`;
* only `add` ops, into paths whose parents the pod has or an earlier op created (template mode,
  which must also update and remove what it added before, diffs the template instead);
* keys are escaped per RFC 6901 (`~` → `~0`, `/` → `~1`): annotation keys contain `/`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import jsonpatch
import orjson

from translator.injection.plan import InjectionPlan
from translator.injection.template import TemplateChange

Op = dict[str, Any]


def escape(token: str) -> str:
    """One RFC 6901 reference token."""
    if "~" not in token and "/" not in token:  # most tokens: field names and list indexes
        return token
    return token.replace("~", "~0").replace("/", "~1")


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # Admission objects are plain dicts: test for dict first, the (slow) ABC check only for others.
    return type(value) is dict or isinstance(value, Mapping)


def _append(
    ops: list[Op], parent: Mapping[str, Any], parent_path: str, key: str, items: Sequence[Any]
) -> None:
    """Append `items` to the list `parent[key]`, creating it whole if absent or null."""
    if not items:
        return
    path = f"{parent_path}/{escape(key)}"
    if isinstance(parent.get(key), list):
        end = f"{path}/-"
        for item in items:
            ops.append({"op": "add", "path": end, "value": item})
    else:
        ops.append({"op": "add", "path": path, "value": list(items)})


def _merge_map(
    ops: list[Op], parent: Mapping[str, Any], parent_path: str, key: str, values: Mapping[str, Any]
) -> None:
    """Set `values` inside the map `parent[key]`, creating it whole if absent or null."""
    if not values:
        return
    path = f"{parent_path}/{escape(key)}"
    if _is_map(parent.get(key)):
        for k, v in values.items():
            ops.append({"op": "add", "path": f"{path}/{escape(k)}", "value": v})
    else:
        ops.append({"op": "add", "path": path, "value": dict(values)})


def plan_ops(pod: Mapping[str, Any], plan: InjectionPlan, *, prefix: str = "") -> list[Op]:
    """The JSON Patch applying `plan` to `pod`; `prefix` points at a pod template (/spec/template)."""
    ops: list[Op] = []
    metadata = pod.get("metadata")
    if _is_map(metadata):
        _merge_map(ops, metadata, f"{prefix}/metadata", "annotations", plan.annotations)
    else:
        ops.append(
            {"op": "add", "path": f"{prefix}/metadata", "value": {"annotations": dict(plan.annotations)}}
        )
    spec = pod["spec"]
    spec_path = f"{prefix}/spec"
    _append(ops, spec, spec_path, "volumes", plan.volumes)
    if plan.init_container is not None:
        _append(ops, spec, spec_path, "initContainers", [plan.init_container])
    for edit in plan.container_edits:
        container = spec[edit.list_field][edit.index]
        container_path = f"{spec_path}/{edit.list_field}/{edit.index}"
        for k, v in edit.set_fields.items():
            ops.append({"op": "add", "path": f"{container_path}/{escape(k)}", "value": v})
        for key, items in edit.append.items():
            _append(ops, container, container_path, key, items)
    _merge_map(ops, spec, spec_path, "securityContext", plan.pod_security_context)
    return ops


TEMPLATE_PREFIX = "/spec/template"


def injected_template(change: TemplateChange) -> dict[str, Any]:
    """A copy of the template with knscale's earlier injection taken out and the plan applied."""
    template: dict[str, Any] = copy.deepcopy(dict(change.stripped))
    if change.plan is not None:
        jsonpatch.apply_patch(template, plan_ops(template, change.plan), in_place=True)
    return template


def diff_ops(original: Any, desired: Any, path: str) -> list[Op]:
    """RFC 6902 ops turning `original` into `desired`: maps key by key, lists of the same length
    item by item, anything else replaced whole. For template mode only (a pod template is small and
    rarely admitted); pods get ops built from the plan, which is far cheaper than any diff."""
    if original == desired:
        return []
    if _is_map(original) and _is_map(desired):
        ops: list[Op] = [
            {"op": "remove", "path": f"{path}/{escape(k)}"} for k in original if k not in desired
        ]
        for k, v in desired.items():
            if k not in original:
                ops.append({"op": "add", "path": f"{path}/{escape(k)}", "value": v})
            else:
                ops += diff_ops(original[k], v, f"{path}/{escape(k)}")
        return ops
    if isinstance(original, list) and isinstance(desired, list) and len(original) == len(desired):
        return [
            op
            for i, (a, b) in enumerate(zip(original, desired, strict=True))
            for op in diff_ops(a, b, f"{path}/{i}")
        ]
    return [{"op": "replace", "path": path, "value": desired}]


def encode_patch(ops: Sequence[Op]) -> str:
    """The AdmissionResponse `patch` field: base64 of the compact JSON array (UTF-8)."""
    return base64.b64encode(orjson.dumps(ops)).decode("ascii")
