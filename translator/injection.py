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
from typing import TYPE_CHECKING, Any, Literal

from translator.config import KnscaleConfig
from translator.findings import Finding, ObjectRef
from translator.model_keys import ALL_KEYS, INJECTED, MOUNT_PATH, ModelRequest, read_model_request
from translator.model_values import normalize_path
from translator.rules import RULES

if TYPE_CHECKING:
    from translator.validate import AnnotationSite

INIT_CONTAINER_NAME = "knscale-model-init"
MODEL_VOLUME = "knscale-model"
TMP_VOLUME = "knscale-model-tmp"
HOME_VOLUME = "knscale-model-home"
ALWAYS_SKIPPED_CONTAINERS: frozenset[str] = frozenset({"queue-proxy", "istio-proxy"})
INJECTED_VALUE = "true"

POD_ANNOTATIONS = "metadata.annotations"

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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_ref(pod: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    meta = _mapping(pod.get("metadata"))
    name = meta.get("name") or meta.get("generateName") or ""
    return ObjectRef("Pod", str(name), namespace or None, "v1")


def plan_injection(
    pod: Mapping[str, Any], namespace: str | None, config: KnscaleConfig
) -> tuple[InjectionPlan | None, list[Finding]]:
    """What to add to `pod` (None: nothing), and the findings (errors mean: deny the pod)."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    if ALL_KEYS.isdisjoint(annotations) or INJECTED in annotations:
        return None, []
    ref = pod_ref(pod, namespace)
    request, findings = read_model_request(
        annotations, ref=ref, path=POD_ANNOTATIONS, config=config.injection
    )
    if request is None:
        return None, findings
    findings += _namespace_findings(namespace, ref, POD_ANNOTATIONS, config)
    spec = pod.get("spec")
    structural = _spec_shape_findings(spec, ref, POD_ANNOTATIONS, "spec")
    if structural:
        return None, findings + structural
    assert isinstance(spec, Mapping)
    findings += _spec_findings(spec, request, ref, POD_ANNOTATIONS, "spec", config)
    if any(f.is_error for f in findings):
        return None, findings
    return _build_plan(spec, request, config), findings


def model_findings(
    obj: Mapping[str, Any], site: AnnotationSite, ref: ObjectRef, config: KnscaleConfig
) -> list[Finding]:
    """Findings for the model keys of one annotations site (validate_object's model hook)."""
    findings: list[Finding] = []
    spec_path = "spec.template.spec" if site.path.startswith("spec.template.") else "spec"
    if spec_path == "spec.template.spec":
        findings += _misplaced_findings(obj, ref)
    if INJECTED in site.annotations:
        return findings
    request, more = read_model_request(site.annotations, ref=ref, path=site.path, config=config.injection)
    findings += more
    if request is None:
        return findings
    findings += _namespace_findings(ref.namespace, ref, site.path, config)
    spec: Any = obj
    for part in spec_path.split("."):
        spec = _mapping(spec).get(part)
    if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
        findings += _spec_findings(spec, request, ref, site.path, spec_path, config)
    return findings


def _misplaced_findings(obj: Mapping[str, Any], ref: ObjectRef) -> list[Finding]:
    """Model keys on a workload's or Service's own metadata never reach its pods: say so.

    `kn` copies keys onto both the Service and its template; a key present in both is that
    copy and is judged once, on the template.
    """
    own = _mapping(_mapping(obj.get("metadata")).get("annotations"))
    template = _mapping(
        _mapping(_mapping(_mapping(obj.get("spec")).get("template")).get("metadata")).get("annotations")
    )
    return [
        RULES["KNS021"].finding(
            ref,
            "metadata.annotations",
            key,
            own[key],
            f"{key} on the {ref.kind}'s own metadata does not reach its pods",
            f"move {key} to spec.template.metadata.annotations",
        )
        for key in sorted(ALL_KEYS.intersection(own))
        if key not in template
    ]


def _namespace_findings(
    namespace: str | None, ref: ObjectRef, path: str, config: KnscaleConfig
) -> list[Finding]:
    if namespace is None or namespace not in config.injection.system_namespaces:
        return []
    return [
        RULES["KNS018"].finding(
            ref,
            path,
            None,
            namespace,
            f"knscale does not inject models into the system namespace {namespace}",
            "run the model workload in an application namespace",
        )
    ]


def _spec_shape_findings(spec: Any, ref: ObjectRef, path: str, spec_path: str) -> list[Finding]:
    """The lists the patch appends to must be lists (or absent): otherwise no op could apply."""
    problems: list[str] = []
    if not isinstance(spec, Mapping):
        problems.append(f"{spec_path} is not an object")
    else:
        if not isinstance(spec.get("containers"), list):
            problems.append(f"{spec_path}.containers is not a list")
        for name in ("initContainers", "volumes"):
            if spec.get(name) is not None and not isinstance(spec.get(name), list):
                problems.append(f"{spec_path}.{name} is not a list")
        if spec.get("securityContext") is not None and not isinstance(spec.get("securityContext"), Mapping):
            problems.append(f"{spec_path}.securityContext is not an object")
        for list_field in ("containers", "initContainers"):
            for i, c in enumerate(_list(spec.get(list_field))):
                if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
                    problems.append(f"{spec_path}.{list_field}[{i}] has no name")
                    continue
                for name in ("volumeMounts", "env", "envFrom"):
                    if c.get(name) is not None and not isinstance(c.get(name), list):
                        problems.append(f"{spec_path}.{list_field}[{i}].{name} is not a list")
    return [
        RULES["KNS022"].finding(ref, path, None, None, p, "send a well-formed pod spec") for p in problems
    ]


def _app_containers(spec: Mapping[str, Any], config: KnscaleConfig) -> list[tuple[int, Mapping[str, Any]]]:
    skipped = ALWAYS_SKIPPED_CONTAINERS.union(config.injection.skip_containers)
    return [
        (i, c)
        for i, c in enumerate(_list(spec.get("containers")))
        if isinstance(c, Mapping) and c.get("name") not in skipped
    ]


def _spec_findings(
    spec: Mapping[str, Any],
    request: ModelRequest,
    ref: ObjectRef,
    path: str,
    spec_path: str,
    config: KnscaleConfig,
) -> list[Finding]:
    apps = _app_containers(spec, config)
    mount_key = request.mount_key or MOUNT_PATH
    if not apps:
        return [
            RULES["KNS020"].finding(
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
    if request.source.scheme != "pvc":
        findings += [
            RULES["KNS022"].finding(
                ref,
                path,
                None,
                None,
                f"{spec_path}.containers[{i}] is named {INIT_CONTAINER_NAME}, knscale's initContainer name",
                "rename that container",
            )
            for i, c in enumerate(_list(spec.get("containers")))
            if _mapping(c).get("name") == INIT_CONTAINER_NAME
        ]
    for i, c in apps:
        for m in _list(c.get("volumeMounts")):
            m = _mapping(m)
            if m.get("name") == MODEL_VOLUME or not isinstance(m.get("mountPath"), str):
                continue
            if normalize_path(m["mountPath"]) == request.mount_path:
                findings.append(
                    RULES["KNS013"].finding(
                        ref,
                        path,
                        request.mount_key,
                        request.mount_path,
                        f"container {c.get('name')!r} ({spec_path}.containers[{i}]) already mounts volume "
                        f"{m.get('name')!r} at {request.mount_path}",
                        f"set {mount_key} to a free directory, e.g. {mount_key}: /mnt/knscale-models",
                    )
                )
    return findings


def _build_plan(spec: Mapping[str, Any], request: ModelRequest, config: KnscaleConfig) -> InjectionPlan:
    cfg = config.injection
    pvc = request.source.scheme == "pvc"
    existing_volumes = {_mapping(v).get("name") for v in _list(spec.get("volumes"))}
    volumes: list[Mapping[str, Any]] = []
    if MODEL_VOLUME not in existing_volumes:
        volumes.append(_model_volume(request))

    app_mount: dict[str, Any] = {"name": MODEL_VOLUME, "mountPath": request.mount_path, "readOnly": True}
    if pvc and request.source.pvc_sub_path:
        app_mount["subPath"] = request.source.pvc_sub_path
    edits: list[ContainerEdit] = []
    for i, c in _app_containers(spec, config):
        if not any(_mapping(m).get("name") == MODEL_VOLUME for m in _list(c.get("volumeMounts"))):
            edits.append(ContainerEdit("containers", i, str(c["name"]), append={"volumeMounts": [app_mount]}))

    init_container: Mapping[str, Any] | None = None
    security: dict[str, Any] = {}
    if not pvc:
        for name, volume in (
            (TMP_VOLUME, _scratch_volume(TMP_VOLUME, cfg.scratch_size_limit)),
            (HOME_VOLUME, _scratch_volume(HOME_VOLUME, cfg.scratch_size_limit)),
        ):
            if name not in existing_volumes:
                volumes.append(volume)
        wanted = _init_container(request, config)
        existing = [
            (i, c)
            for i, c in enumerate(_list(spec.get("initContainers")))
            if _mapping(c).get("name") == INIT_CONTAINER_NAME
        ]
        if existing:
            i, c = existing[0]
            edit = _complete_container(i, c, wanted)
            if edit is not None:
                edits.append(edit)
        else:
            init_container = wanted
        if _mapping(spec.get("securityContext")).get("fsGroup") is None:
            security["fsGroup"] = cfg.fs_group

    return InjectionPlan(
        request=request,
        annotations={INJECTED: INJECTED_VALUE},
        volumes=volumes,
        init_container=init_container,
        container_edits=edits,
        pod_security_context=security,
    )


def _model_volume(request: ModelRequest) -> dict[str, Any]:
    if request.source.scheme == "pvc":
        claim = {"claimName": request.source.location, "readOnly": True}
        return {"name": MODEL_VOLUME, "persistentVolumeClaim": claim}
    empty_dir: dict[str, Any] = {}
    if request.size_limit is not None:
        empty_dir["sizeLimit"] = request.size_limit
    return {"name": MODEL_VOLUME, "emptyDir": empty_dir}


def _scratch_volume(name: str, size_limit: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size_limit}}


def _init_container(request: ModelRequest, config: KnscaleConfig) -> dict[str, Any]:
    cfg = config.injection
    source = request.source
    env = [
        {"name": "MODEL_URI", "value": source.uri},
        {"name": "MODEL_BUCKET", "value": source.env_bucket},
        {"name": "MODEL_PATH", "value": source.env_path},
        {"name": "MODEL_DIR", "value": request.mount_path},
        {"name": "HOME", "value": cfg.home_dir},
    ]
    env += [{"name": k, "value": v} for k, v in cfg.env.items()]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": request.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "args": [source.uri, request.mount_path],
        "env": env,
    }
    if request.credentials_secret is not None:
        # Secret keys become env by reference: the values never pass through knscale or the pod spec.
        container["envFrom"] = [{"secretRef": {"name": request.credentials_secret}}]
    container["resources"] = {
        "requests": {"cpu": cfg.cpu_request, "memory": cfg.memory_request},
        "limits": {"cpu": cfg.cpu_limit, "memory": cfg.memory_limit},
    }
    container["securityContext"] = {
        "runAsUser": cfg.run_as_user,
        "runAsGroup": cfg.run_as_group,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["volumeMounts"] = [
        {"name": MODEL_VOLUME, "mountPath": request.mount_path},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
        {"name": HOME_VOLUME, "mountPath": cfg.home_dir},
    ]
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return container


def _complete_container(index: int, existing: Any, wanted: Mapping[str, Any]) -> ContainerEdit | None:
    """Fill a pre-declared knscale-model-init: absent fields whole, missing env/mounts appended.

    What the user wrote wins: an env var they set keeps their value, their image, args, resources
    and securityContext stay. Mounts are added only where neither the volume nor the path is used.
    """
    c = _mapping(existing)
    set_fields = {k: v for k, v in wanted.items() if c.get(k) is None and k not in ("name",)}
    if "command" in c and c.get("args") is None:
        set_fields.pop("args", None)  # their own command decides its arguments
    append: dict[str, list[Mapping[str, Any]]] = {}
    if "env" not in set_fields:
        have = {_mapping(e).get("name") for e in _list(c.get("env"))}
        missing = [e for e in wanted["env"] if e["name"] not in have]
        if missing:
            append["env"] = missing
    if "envFrom" not in set_fields and "envFrom" in wanted:
        secret_ref = wanted["envFrom"][0]["secretRef"]
        if all(_mapping(e).get("secretRef") != secret_ref for e in _list(c.get("envFrom"))):
            append["envFrom"] = list(wanted["envFrom"])
    if "volumeMounts" not in set_fields:
        mounts = [_mapping(m) for m in _list(c.get("volumeMounts"))]
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
