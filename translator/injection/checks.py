"""The findings behind an injection plan: the model keys of one annotations site, the
namespace, and what the pod spec must look like for the mount to go in (`/validate`, lint and
`/mutate` read them alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations.model_keys import ALL_KEYS, INJECTED, MOUNT_PATH
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.names import normalize_path
from translator.core.objects import (
    META_ANNOTATIONS,
    POD_SPEC,
    SERVING_GROUP,
    TEMPLATE_ANNOTATIONS,
    TEMPLATE_PREFIX,
    TEMPLATE_SPEC,
    AnnotationSite,
    text_of,
)
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.injection.bounds import bound_findings
from translator.injection.common import INIT_CONTAINER_NAME, MODEL_VOLUME, as_list, as_map, is_map
from translator.injection.fixed import fixed_parts
from translator.injection.oci import knative_template_findings
from translator.injection.request import ModelRequest, read_model_request


def model_findings(
    obj: Mapping[str, Any], site: AnnotationSite, ref: ObjectRef, config: KnscaleConfig
) -> list[Finding]:
    """Findings for the model keys of one annotations site (validate_object's model hook)."""
    findings: list[Finding] = []
    spec_path = TEMPLATE_SPEC if site.path.startswith(TEMPLATE_PREFIX) else POD_SPEC
    if spec_path == TEMPLATE_SPEC:
        findings += _misplaced_findings(obj, ref)
    if INJECTED in site.annotations:
        return findings
    request, more = read_model_request(site.annotations, ref=ref, path=site.path, config=config.injection)
    findings += more
    if request is None:
        return findings
    findings += namespace_findings(ref.namespace, ref, site.path, config)
    if spec_path == TEMPLATE_SPEC and (ref.api_version or "").startswith(SERVING_GROUP + "/"):
        findings += knative_template_findings(request.oci, ref, site.path, site.annotations)
    spec: Any = obj
    for part in spec_path.split("."):
        spec = as_map(spec).get(part)
    if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
        # The same shape checks as /mutate: what lint and /validate pass, the patch can be built for.
        knative = (ref.api_version or "").startswith(SERVING_GROUP + "/")
        structural = spec_shape_findings(spec, ref, site.path, spec_path, names_required=not knative)
        if structural:
            return findings + structural
        apps = app_containers(spec, fixed_parts(config.injection).skipped)
        findings += spec_findings(spec, apps, request, ref, site.path, spec_path)
    return findings


def _misplaced_findings(obj: Mapping[str, Any], ref: ObjectRef) -> list[Finding]:
    """Model keys on a workload's or Service's own metadata never reach its pods: say so.

    `kn` copies keys onto both the Service and its template; a key present in both is that
    copy and is judged once, on the template.
    """
    own = as_map(as_map(obj.get("metadata")).get("annotations"))
    template = as_map(
        as_map(as_map(as_map(obj.get("spec")).get("template")).get("metadata")).get("annotations")
    )
    return [
        RULES[RuleId.KNS021].finding(
            ref,
            META_ANNOTATIONS,
            key,
            own[key],
            f"{key} on the {ref.kind}'s own metadata does not reach its pods",
            f"move {key} to {TEMPLATE_ANNOTATIONS}",
        )
        for key in sorted(ALL_KEYS.intersection(own))
        if key not in template
    ]


def namespace_findings(
    namespace: str | None, ref: ObjectRef, path: str, config: KnscaleConfig
) -> list[Finding]:
    if namespace is None or namespace not in config.injection.system_namespaces:
        return []
    return [
        RULES[RuleId.KNS018].finding(
            ref,
            path,
            None,
            namespace,
            f"knscale does not inject models into the system namespace {namespace}",
            "run the model workload in an application namespace",
        )
    ]


def spec_shape_findings(
    spec: Any, ref: ObjectRef, path: str, spec_path: str, *, names_required: bool = True
) -> list[Finding]:
    """The lists the patch appends to must be lists (or absent): otherwise no op could apply.

    `names_required=False`: a Knative template, whose single container may be unnamed (Knative
    names it when it makes the revision)."""
    problems: list[str] = []
    bounds = bound_findings(spec, ref, path, spec_path)
    if bounds:
        return bounds  # nothing below may walk (or recurse into) a spec past the bounds
    if not is_map(spec):
        problems.append(f"{spec_path} is not an object")
    else:
        get = spec.get
        if not isinstance(get("containers"), list):
            problems.append(f"{spec_path}.containers is not a list")
        for name in ("initContainers", "volumes"):
            value = get(name)
            if value is not None and not isinstance(value, list):
                problems.append(f"{spec_path}.{name} is not a list")
        problems += _named_items(get("volumes"), f"{spec_path}.volumes")
        security = get("securityContext")
        if security is not None and not is_map(security):
            problems.append(f"{spec_path}.securityContext is not an object")
        for list_field in ("containers", "initContainers"):
            containers = get(list_field)
            if not isinstance(containers, list):
                continue
            for i, c in enumerate(containers):
                if not is_map(c):
                    problems.append(f"{spec_path}.{list_field}[{i}] is not an object")
                    continue
                if not isinstance(c.get("name"), str) and (
                    names_required or list_field == "initContainers" or c.get("name") is not None
                ):
                    problems.append(f"{spec_path}.{list_field}[{i}] has no name")
                    continue
                for name in ("volumeMounts", "env", "envFrom"):
                    value = c.get(name)
                    if value is not None and not isinstance(value, list):
                        problems.append(f"{spec_path}.{list_field}[{i}].{name} is not a list")
                where = f"{spec_path}.{list_field}[{i}]"
                problems += _named_items(c.get("volumeMounts"), f"{where}.volumeMounts")
                problems += _named_items(c.get("env"), f"{where}.env")  # matched by name too
                problems += [
                    f"{where}.volumeMounts[{j}].mountPath is not a string"
                    for j, m in enumerate(as_list(c.get("volumeMounts")))
                    if is_map(m)
                    and m.get("mountPath") is not None
                    and not isinstance(m.get("mountPath"), str)
                ]
                problems += [
                    f"{where}.envFrom[{j}] is not an object"
                    for j, e in enumerate(as_list(c.get("envFrom")))
                    if not is_map(e)
                ]
    return [
        RULES[RuleId.KNS022].finding(ref, path, None, None, p, "send a well-formed pod spec")
        for p in problems
    ]


def _named_items(items: Any, path: str) -> list[str]:
    """Volumes and mounts are matched by name: each must be an object with a string name."""
    if not isinstance(items, list):
        return []
    return [
        f"{path}[{i}] is not an object" if not is_map(item) else f"{path}[{i}] has no name"
        for i, item in enumerate(items)
        if not (is_map(item) and isinstance(item.get("name"), str))
    ]


def app_containers(spec: Mapping[str, Any], skipped: frozenset[str]) -> list[tuple[int, Mapping[str, Any]]]:
    # A name that is not a string (a map, a list: unhashable) is never a skipped sidecar's.
    return [
        (i, c)
        for i, c in enumerate(as_list(spec.get("containers")))
        if is_map(c) and not (isinstance(c.get("name"), str) and c["name"] in skipped)
    ]


def spec_findings(
    spec: Mapping[str, Any],
    apps: list[tuple[int, Mapping[str, Any]]],
    request: ModelRequest,
    ref: ObjectRef,
    path: str,
    spec_path: str,
) -> list[Finding]:
    """`apps`: the containers that get the model mount (`app_containers` of `spec`)."""
    mount_key = request.mount_key or MOUNT_PATH
    if not apps:
        return [
            RULES[RuleId.KNS020].finding(
                ref,
                path,
                None,
                None,
                "every container is a sidecar knscale skips "
                "(queue-proxy, istio-proxy, injection.skip_containers)",
                "add the app container that reads the model",
            )
        ]
    findings = []
    if not request.mounted_directly:
        findings += [
            RULES[RuleId.KNS022].finding(
                ref,
                path,
                None,
                None,
                f"{spec_path}.containers[{i}] is named {INIT_CONTAINER_NAME}, knscale's initContainer name",
                "rename that container",
            )
            for i, c in enumerate(as_list(spec.get("containers")))
            if as_map(c).get("name") == INIT_CONTAINER_NAME
        ]
    # The app containers, and a pre-declared downloader: it would download into another volume at
    # the model path while the apps mount an empty knscale-model.
    checked = [(f"{spec_path}.containers[{i}]", c) for i, c in apps]
    if not request.mounted_directly:
        checked += [
            (f"{spec_path}.initContainers[{i}]", as_map(c))
            for i, c in enumerate(as_list(spec.get("initContainers")))
            if as_map(c).get("name") == INIT_CONTAINER_NAME
        ][:1]  # the first one is completed (build_plan)
    for where, c in checked:
        for m in as_list(c.get("volumeMounts")):
            m = as_map(m)
            mount_path = m.get("mountPath")
            if m.get("name") == MODEL_VOLUME or not isinstance(mount_path, str):
                continue
            if normalize_path(mount_path) == request.mount_path:
                findings.append(
                    RULES[RuleId.KNS013].finding(
                        ref,
                        path,
                        request.mount_key,
                        request.mount_path,
                        f"container {text_of(c.get('name'))!r} ({where}) already mounts volume "
                        f"{text_of(m.get('name'))!r} at {request.mount_path}",
                        f"set {mount_key} to a free directory, e.g. {mount_key}: /mnt/knscale-models"
                        + (
                            f", or name that volume {MODEL_VOLUME}"
                            if c.get("name") == INIT_CONTAINER_NAME
                            else ""
                        ),
                    )
                )
    return findings
