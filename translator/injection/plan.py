"""Model injection: annotations + pod → an `InjectionPlan` (what to add), pure and idempotent.

The plan says what to add and where; `webhook.patch` turns it into RFC 6902 ops without diffing.
Idempotency rules (the webhook runs with `reinvocationPolicy: IfNeeded`):

* the status marker `knscale.dev/model-injected` on the pod means "done": nothing is planned;
* otherwise each piece is added only if absent: a volume whose name is ours, a pre-declared
  `knscale-model-init` initContainer (completed, never duplicated: its own env, image, args,
  resources and securityContext win over ours), an app container that already mounts our volume;
* so admitting the mutated pod again plans nothing.

`model_findings` is the same reading for `/validate` and `knscale lint` on Pods, Deployments,
StatefulSets and Knative Services/Configurations/Revisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from translator.annotations.model_keys import ALL_KEYS, INJECTED
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.names import normalize_path
from translator.core.objects import META_ANNOTATIONS, POD_SPEC, display_name, text_of
from translator.injection.cache import cache_key, cache_volume, for_cache
from translator.injection.checks import app_containers, namespace_findings, spec_findings, spec_shape_findings
from translator.injection.common import (
    HOME_VOLUME,
    INIT_CONTAINER_NAME,
    INJECTED_VALUE,
    MODEL_VOLUME,
    TMP_VOLUME,
    as_list,
    as_map,
    is_map,
    kubelet_literal,
)
from translator.injection.fixed import FixedParts, fixed_parts
from translator.injection.oci import make_copy_container, oci_volume
from translator.injection.request import ModelRequest, read_model_request

ListField = Literal["containers", "initContainers"]


@dataclass(frozen=True, slots=True)
class ContainerEdit:
    """Additions to one existing container: whole fields it lacks, and items appended to lists."""

    list_field: ListField
    index: int
    name: str
    set_fields: Mapping[str, Any] = field(default_factory=dict)
    append: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InjectionPlan:
    """Everything to add to one pod, in patch order. Only additions: nothing is replaced or removed."""

    request: ModelRequest
    annotations: Mapping[str, str]
    volumes: Sequence[Mapping[str, Any]]
    init_container: Mapping[str, Any] | None
    container_edits: Sequence[ContainerEdit]
    pod_security_context: Mapping[str, Any]


def pod_ref(pod: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    return ObjectRef("Pod", display_name(pod.get("metadata")), namespace or None, "v1")


def plan_injection(
    pod: Mapping[str, Any], namespace: str | None, config: KnscaleConfig
) -> tuple[InjectionPlan | None, list[Finding]]:
    """What to add to `pod` (None: nothing), and the findings (errors mean: deny the pod)."""
    annotations = as_map(as_map(pod.get("metadata")).get("annotations"))
    if ALL_KEYS.isdisjoint(annotations) or INJECTED in annotations:
        return None, []
    cfg = config.injection
    ref = pod_ref(pod, namespace)
    request, findings = read_model_request(annotations, ref=ref, path=META_ANNOTATIONS, config=cfg)
    if request is None:
        return None, findings
    fixed = fixed_parts(cfg)
    if namespace is not None and namespace in fixed.system_namespaces:
        findings += namespace_findings(namespace, ref, META_ANNOTATIONS, config)
    spec = pod.get("spec")
    structural = spec_shape_findings(spec, ref, META_ANNOTATIONS, POD_SPEC)
    if structural:
        return None, findings + structural
    assert is_map(spec)
    apps = app_containers(spec, fixed.skipped)
    findings += spec_findings(spec, apps, request, ref, META_ANNOTATIONS, POD_SPEC)
    for f in findings:
        if f.is_error:
            return None, findings
    return build_plan(spec, apps, request, fixed), findings


def build_plan(
    spec: Mapping[str, Any],
    apps: list[tuple[int, Mapping[str, Any]]],
    request: ModelRequest,
    fixed: FixedParts,
) -> InjectionPlan:
    direct = request.mounted_directly  # pvc://, or oci:// as an image volume: no initContainer
    existing_volumes = {as_map(v).get("name") for v in as_list(spec.get("volumes"))}
    volumes: list[Mapping[str, Any]] = []
    if MODEL_VOLUME not in existing_volumes:
        volumes.append(_model_volume(request))

    app_mount: dict[str, Any] = {"name": MODEL_VOLUME, "mountPath": request.mount_path, "readOnly": True}
    sub_path = request.oci.sub_path if request.oci is not None else request.source.pvc_sub_path
    if direct and sub_path:
        app_mount["subPath"] = sub_path
    elif request.cache_claim is not None:
        app_mount["subPath"] = cache_key(request.source.uri)  # the entry, never the whole cache
    edits: list[ContainerEdit] = []
    for i, c in apps:
        if not any(as_map(m).get("name") == MODEL_VOLUME for m in as_list(c.get("volumeMounts"))):
            name = text_of(c.get("name"))
            edits.append(ContainerEdit("containers", i, name, append={"volumeMounts": [app_mount]}))

    init_container: Mapping[str, Any] | None = None
    security: dict[str, Any] = {}
    if not direct:
        size_limit = fixed.scratch_size_limit
        for name in (TMP_VOLUME, HOME_VOLUME):
            if name not in existing_volumes:
                volumes.append({"name": name, "emptyDir": {"sizeLimit": size_limit}})
        wanted = _init_container(request, fixed)
        for i, c in enumerate(as_list(spec.get("initContainers"))):
            if as_map(c).get("name") == INIT_CONTAINER_NAME:  # the first one is completed
                edit = _complete_container(i, c, wanted)
                if edit is not None:
                    edits.append(edit)
                break
        else:
            init_container = wanted
        if as_map(spec.get("securityContext")).get("fsGroup") is None:
            security["fsGroup"] = fixed.fs_group
            if request.cache_claim is not None:  # not a recursive chown of the whole cache per pod
                security["fsGroupChangePolicy"] = "OnRootMismatch"

    return InjectionPlan(
        request=request,
        annotations={INJECTED: INJECTED_VALUE},
        volumes=volumes,
        init_container=init_container,
        container_edits=edits,
        pod_security_context=security,
    )


def _model_volume(request: ModelRequest) -> dict[str, Any]:
    if request.oci is not None and request.mounted_directly:
        return oci_volume(request.oci)
    if request.cache_claim is not None:
        return cache_volume(request.cache_claim)
    if request.source.scheme == "pvc":
        claim = {"claimName": request.source.location, "readOnly": True}
        return {"name": MODEL_VOLUME, "persistentVolumeClaim": claim}
    empty_dir: dict[str, Any] = {}
    if request.size_limit is not None:
        empty_dir["sizeLimit"] = request.size_limit
    return {"name": MODEL_VOLUME, "emptyDir": empty_dir}


def _init_container(request: ModelRequest, fixed: FixedParts) -> dict[str, Any]:
    # Every dict and list here is new: plans share no mutable state (see FixedParts).
    # The user's text goes in as kubelet literals (`$` doubled): the kubelet would otherwise
    # expand `$(NAME)` in args and env values after these checks. fixed_env is the cluster
    # admin's configuration, where a `$(NAME)` reference may be meant.
    source = request.source
    uri = kubelet_literal(source.uri)
    mount_path = kubelet_literal(request.mount_path)
    env = [
        {"name": "MODEL_URI", "value": uri},
        {"name": "MODEL_BUCKET", "value": kubelet_literal(source.env_bucket)},
        {"name": "MODEL_PATH", "value": kubelet_literal(source.env_path)},
        {"name": "MODEL_DIR", "value": mount_path},
    ]
    env += [{"name": k, "value": v} for k, v in fixed.fixed_env]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": request.image,
        "imagePullPolicy": fixed.pull_policy,
        "args": [uri, mount_path],
        "env": env,
    }
    if request.credentials_secret is not None:
        # Secret keys become env by reference: the values never pass through knscale or the pod spec.
        container["envFrom"] = [{"secretRef": {"name": request.credentials_secret}}]
    container["resources"] = {
        "requests": {"cpu": fixed.cpu_request, "memory": fixed.memory_request},
        "limits": {"cpu": fixed.cpu_limit, "memory": fixed.memory_limit},
    }
    container["securityContext"] = {
        "runAsUser": fixed.run_as_user,
        "runAsGroup": fixed.run_as_group,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["volumeMounts"] = [
        {"name": MODEL_VOLUME, "mountPath": request.mount_path},  # mountPath is not expanded
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
        {"name": HOME_VOLUME, "mountPath": fixed.home_dir},
    ]
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    if request.oci is not None:  # copy mode: the model image copies its model dir
        make_copy_container(container, request.oci, request.mount_path)
        return container
    return container if request.cache_claim is None else for_cache(container, source.uri)


def _complete_container(index: int, existing: Any, wanted: Mapping[str, Any]) -> ContainerEdit | None:
    """Fill a pre-declared knscale-model-init: absent fields whole, missing env/mounts appended.

    What the user wrote wins: an env var they set keeps their value, their image, args, resources
    and securityContext stay. Mounts are added only where neither the volume nor the path is used.
    """
    c = as_map(existing)
    set_fields = {k: v for k, v in wanted.items() if c.get(k) is None and k not in ("name",)}
    if "command" in c and c.get("args") is None:
        set_fields.pop("args", None)  # their own command decides its arguments
    if "args" in c and c.get("command") is None:
        set_fields.pop("command", None)  # their args are for the image's entrypoint
    append: dict[str, list[Mapping[str, Any]]] = {}
    if "env" not in set_fields:
        have = {as_map(e).get("name") for e in as_list(c.get("env"))}
        missing = [e for e in wanted["env"] if e["name"] not in have]
        if missing:
            append["env"] = missing
    if "envFrom" not in set_fields and "envFrom" in wanted:
        secret_ref = wanted["envFrom"][0]["secretRef"]
        if all(as_map(e).get("secretRef") != secret_ref for e in as_list(c.get("envFrom"))):
            append["envFrom"] = list(wanted["envFrom"])
    if "volumeMounts" not in set_fields:
        mounts = [as_map(m) for m in as_list(c.get("volumeMounts"))]
        names = {m.get("name") for m in mounts}
        paths = {normalize_path(m["mountPath"]) for m in mounts if isinstance(m.get("mountPath"), str)}
        missing = [
            m
            for m in wanted["volumeMounts"]
            if m["name"] not in names and normalize_path(m["mountPath"]) not in paths
        ]
        if missing:
            append["volumeMounts"] = missing
    if not set_fields and not append:
        return None
    return ContainerEdit("initContainers", index, INIT_CONTAINER_NAME, set_fields=set_fields, append=append)
