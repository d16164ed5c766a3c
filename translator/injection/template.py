"""Template mode (opt-in: `injection.mutate_templates`): inject the pod template of a
Deployment/StatefulSet/Knative Service, and keep what knscale added there its own."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from translator.annotations.model_keys import ALL_KEYS, INJECTED
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.objects import SERVING_GROUP, TEMPLATE_ANNOTATIONS, TEMPLATE_SPEC, text_of
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.core.values import parse_quantity
from translator.injection.bounds import nesting_findings
from translator.injection.checks import app_containers, namespace_findings, spec_findings, spec_shape_findings
from translator.injection.common import (
    INIT_CONTAINER_NAME,
    MODEL_VOLUME,
    OWNED_VOLUMES,
    as_list,
    as_map,
    is_map,
)
from translator.injection.fixed import fixed_parts
from translator.injection.plan import InjectionPlan, build_plan
from translator.injection.request import read_model_request

# (group, kind) of the workloads whose pod template is injected in template mode → whether it is
# a Knative template (its single container may be unnamed).
TEMPLATE_KINDS: Mapping[tuple[str, str], bool] = {
    ("apps", "Deployment"): False,
    ("apps", "StatefulSet"): False,
    (SERVING_GROUP, "Service"): True,
    (SERVING_GROUP, "Configuration"): True,
}


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """How to bring a pod template to its injected form: `plan` (None: nothing) applied to
    `stripped`, the template with knscale's earlier injection taken out. The webhook applies it,
    settles the result against the template (`settle_template`) and sends the difference."""

    stripped: Mapping[str, Any]
    plan: InjectionPlan | None


def plan_template_injection(
    obj: Mapping[str, Any], ref: ObjectRef, config: KnscaleConfig, *, knative: bool
) -> tuple[TemplateChange | None, list[Finding]]:
    """What to change in the pod template of a workload (`spec.template`) in template mode.

    A template that carries the status marker was injected by knscale before, and knscale owns
    what it added there (everything named `knscale-model*`): that is taken out and the injection
    planned afresh from the annotations, so changing `knscale.dev/model-uri` updates the
    initContainer and removing the opt-in removes it. The caller applies the plan, settles the
    result against the template (`settle_template`) and sends only the difference. Without the
    marker, a template with nothing under knscale's names is planned like a pod; one that has such
    parts (e.g. a customised knscale-model-init) is left as written, its pods completed by the pod
    webhook, so whatever knscale adds to a template is wholly its own.

    Warnings are not returned: the validating webhook reports them for the same request.
    """
    template = as_map(obj.get("spec")).get("template")
    if not is_map(template):
        return None, []
    annotations = as_map(as_map(template.get("metadata")).get("annotations"))
    if ALL_KEYS.isdisjoint(annotations) and INJECTED not in annotations:
        return None, []
    cfg = config.injection
    spec = template.get("spec")
    # The template is copied and diffed (recursively): bound its depth, metadata included.
    deep = nesting_findings(template.get("metadata"), ref, TEMPLATE_ANNOTATIONS, "spec.template.metadata")
    if deep:
        return None, deep
    structural = spec_shape_findings(
        spec, ref, TEMPLATE_ANNOTATIONS, TEMPLATE_SPEC, names_required=not knative
    )
    if structural:
        return None, structural
    assert is_map(spec)
    stripped: Mapping[str, Any] = template
    skipped = fixed_parts(cfg).skipped
    marked = INJECTED in annotations
    if marked:
        repeated = _repeated_model_mounts(spec, ref, skipped)
        if repeated:
            return None, repeated
        stripped = _strip_injection(template, skipped)
        annotations = as_map(as_map(stripped.get("metadata")).get("annotations"))
    elif _has_owned_names(spec):
        # The author declared parts under knscale's names (e.g. a customised knscale-model-init):
        # the template is theirs to keep as written; the pod webhook completes the pods, as for
        # any pod. (Injecting here would make knscale own those parts and rebuild them later.)
        return None, []
    request, findings = read_model_request(annotations, ref=ref, path=TEMPLATE_ANNOTATIONS, config=cfg)
    errors = [f for f in findings if f.is_error]
    if request is None:
        return (TemplateChange(stripped, None) if marked and not errors else None), errors
    if knative and request.oci is not None and request.mounted_directly:
        # Knative Serving's field mask drops image volumes from a template unless config-features
        # has kubernetes.podspec-volumes-image (off by default): the pod webhook adds them (oci.py).
        return (TemplateChange(stripped, None) if marked else None), errors
    findings = errors + namespace_findings(ref.namespace, ref, TEMPLATE_ANNOTATIONS, config)
    stripped_spec = as_map(stripped.get("spec"))
    apps = app_containers(stripped_spec, skipped)
    findings += [
        f
        for f in spec_findings(stripped_spec, apps, request, ref, TEMPLATE_ANNOTATIONS, TEMPLATE_SPEC)
        if f.is_error
    ]
    if findings:
        return None, findings
    plan = build_plan(stripped_spec, apps, request, fixed_parts(cfg))
    if knative:
        # Knative accepts a pod securityContext only with kubernetes.podspec-securitycontext
        # (off by default), and the downloader needs no fsGroup: its emptyDirs are world-writable.
        # Knative Serving before 1.17 refuses `privileged` in a container's securityContext; false
        # is the default, and the restricted profile holds without it.
        init = plan.init_container
        if init is not None:
            security = {k: v for k, v in init["securityContext"].items() if k != "privileged"}
            init = {**init, "securityContext": security}
        plan = dataclasses.replace(plan, pod_security_context={}, init_container=init)
    return TemplateChange(stripped, plan), []


def settle_template(original: Mapping[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """`desired` (the stripped template with the plan applied) made to differ from `original` only
    where it must, in place:

    * a part knscale owns that `original` already has, and that says everything the new one says
      (it may say more: fields the API server or Knative defaulted, such as
      terminationMessagePath), is kept as it is — so an unchanged template yields no patch;
    * owned parts stay at the index they had (an initContainer the author placed after
      knscale-model-init keeps running after the download); new ones go at the end;
    * mounts of owned volumes that no longer exist are dropped from every container (after the
      opt-in is removed, or pvc:// replaced the scratch volumes), so no mount is left dangling.
    """
    spec = desired.get("spec")
    if not isinstance(spec, dict):
        return desired
    old_spec = as_map(original.get("spec"))
    _settle_list(
        spec, "volumes", as_list(old_spec.get("volumes")), lambda i: as_map(i).get("name") in OWNED_VOLUMES
    )
    _settle_list(
        spec,
        "initContainers",
        as_list(old_spec.get("initContainers")),
        lambda i: as_map(i).get("name") == INIT_CONTAINER_NAME,
    )
    old_containers = as_list(old_spec.get("containers"))
    new_containers = as_list(spec.get("containers"))
    if len(old_containers) == len(new_containers):
        for old, new in zip(old_containers, new_containers, strict=True):
            if isinstance(new, dict):
                _settle_list(
                    new,
                    "volumeMounts",
                    as_list(as_map(old).get("volumeMounts")),
                    lambda m: as_map(m).get("name") == MODEL_VOLUME,
                )
    volumes = {as_map(v).get("name") for v in as_list(spec.get("volumes"))}
    gone = OWNED_VOLUMES - volumes
    for field_name in ("initContainers", "containers"):
        for c in as_list(spec.get(field_name)):
            _drop_items(c, "volumeMounts", lambda m: m.get("name") in gone)
    return desired


def _settle_list(
    parent: dict[str, Any], key: str, old_items: list[Any], owned: Callable[[Any], bool]
) -> None:
    items = parent.get(key)
    if not isinstance(items, list):
        return
    old_owned = {(as_map(item).get("name")): (i, item) for i, item in enumerate(old_items) if owned(item)}
    others = [item for item in items if not owned(item)]
    placed: list[tuple[int, Any]] = []
    appended: list[Any] = []
    for item in (item for item in items if owned(item)):
        old = old_owned.get(as_map(item).get("name"))
        if old is None:
            appended.append(item)
        else:
            placed.append((old[0], old[1] if _covers(old[1], item) else item))
    result = list(others)
    for index, item in sorted(placed, key=lambda p: p[0]):
        result.insert(min(index, len(result)), item)
    result.extend(appended)
    items[:] = result


# Fields the API server (or Knative's defaulting) fills in on a container when absent. An owned
# part that holds any other field the new plan lacks is rebuilt: knscale wrote it (envFrom from a
# credentials Secret, a sizeLimit, a pvc subPath) or someone edited knscale's part by hand.
_DEFAULTED_FIELDS = frozenset({"terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy"})
# Stored in canonical form (2048Mi comes back as 2Gi): compared by value.
_QUANTITY_FIELDS = frozenset({"cpu", "memory", "ephemeral-storage", "sizeLimit"})


def _covers(have: Any, want: Any, key: str = "") -> bool:
    """`have` says what `want` says, give or take what the server defaults: maps may hold more
    keys only from _DEFAULTED_FIELDS or with empty values (the same as absent to Kubernetes),
    lists match item by item, quantities by value."""
    if is_map(want):
        return (
            is_map(have)
            and all(k in have and _covers(have[k], v, k) for k, v in want.items())
            and all(k in want or k in _DEFAULTED_FIELDS or _is_empty(have[k]) for k in have)
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_covers(h, w) for h, w in zip(have, want, strict=True))
        )
    if key in _QUANTITY_FIELDS and isinstance(have, str) and isinstance(want, str) and have != want:
        try:
            return parse_quantity(have) == parse_quantity(want)
        except ValueError:
            return False
    return bool(have == want and type(have) is type(want))


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, list | dict | str) and not value)


def _has_owned_names(spec: Mapping[str, Any]) -> bool:
    return (
        any(as_map(v).get("name") in OWNED_VOLUMES for v in as_list(spec.get("volumes")))
        or any(as_map(c).get("name") == INIT_CONTAINER_NAME for c in as_list(spec.get("initContainers")))
        or any(
            as_map(m).get("name") == MODEL_VOLUME
            for c in as_list(spec.get("containers"))
            for m in as_list(as_map(c).get("volumeMounts"))
        )
    )


def _repeated_model_mounts(spec: Mapping[str, Any], ref: ObjectRef, skipped: frozenset[str]) -> list[Finding]:
    """knscale rebuilds the one model mount of each app container of a template it manages; a
    second mount of that volume (the author's) would go with it, so it is refused, not dropped."""
    findings = []
    for i, c in app_containers(spec, skipped):
        paths = [
            m.get("mountPath")
            for m in map(as_map, as_list(c.get("volumeMounts")))
            if m.get("name") == MODEL_VOLUME
        ]
        if len(paths) > 1:
            findings.append(
                RULES[RuleId.KNS023].finding(
                    ref,
                    TEMPLATE_ANNOTATIONS,
                    None,
                    None,
                    f"container {text_of(c.get('name'))!r} ({TEMPLATE_SPEC}.containers[{i}]) mounts volume "
                    f"{MODEL_VOLUME} {len(paths)} times ({', '.join(map(str, paths))}); knscale manages "
                    "that volume's one mount here and would replace the others",
                    f"mount {MODEL_VOLUME} once and read subdirectories below its mount path, or mount "
                    "another volume",
                )
            )
    return findings


def _strip_injection(template: Mapping[str, Any], skipped: frozenset[str]) -> dict[str, Any]:
    """A copy of `template` without knscale's earlier injection: the marker, its volumes, its
    initContainer and the model mount of each container it mounted the model into. Mounts in the
    sidecars it skips are the author's. A list that held only knscale's items goes with them, so
    opting out gives back the template as written (a Knative template must not even carry an
    empty initContainers list unless Knative's init-container feature is on)."""
    stripped: dict[str, Any] = copy.deepcopy(dict(template))
    del stripped["metadata"]["annotations"][INJECTED]
    spec = stripped["spec"]
    _drop_items(spec, "volumes", lambda v: v.get("name") in OWNED_VOLUMES)
    _drop_items(spec, "initContainers", lambda c: c.get("name") == INIT_CONTAINER_NAME)
    for _, c in app_containers(spec, skipped):
        _drop_items(c, "volumeMounts", lambda m: m.get("name") == MODEL_VOLUME)
    return stripped


def _drop_items(parent: Any, key: str, owned: Callable[[Mapping[str, Any]], bool]) -> None:
    """Remove the items of `parent[key]` that are knscale's; a list that held only those goes with
    them (Kubernetes reads an empty list as absent, but a Knative template without the
    init-container feature refuses even an empty initContainers)."""
    items = as_map(parent).get(key)
    if not isinstance(items, list) or not isinstance(parent, dict):
        return
    kept = [item for item in items if not owned(as_map(item))]
    if kept or len(kept) == len(items):
        items[:] = kept
    else:
        del parent[key]
