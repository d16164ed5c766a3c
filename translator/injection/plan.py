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

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from translator.annotations.model_keys import ALL_KEYS, INJECTED, MOUNT_PATH, ModelRequest, read_model_request
from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.names import normalize_path
from translator.core.objects import AnnotationSite
from translator.core.rules import RULES
from translator.core.values import parse_quantity

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


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # Admission objects are plain dicts: test for dict first, the (slow) ABC check only for others.
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _Fixed:
    """What every plan takes from the configuration alone, worked out once per configuration.

    Only immutable values (strings, ints, tuples, frozensets): the dicts and lists of a plan are
    built fresh for each pod, so a caller that edits one plan (or the pod a patch was applied
    to) can never change the next one.
    """

    skipped: frozenset[str]  # containers that never get the model mount
    system_namespaces: frozenset[str]
    pull_policy: str
    fixed_env: tuple[tuple[str, str], ...]  # HOME, then injection.env, after the MODEL_* vars
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    run_as_user: int
    run_as_group: int
    home_dir: str
    scratch_size_limit: str
    fs_group: int


# One configuration serves a process; keyed by identity because the config is frozen but not
# hashable (its `env` is a dict). A one-entry cache: another configuration just recomputes.
_fixed_cache: tuple[InjectionConfig, _Fixed] | None = None


def _fixed(cfg: InjectionConfig) -> _Fixed:
    global _fixed_cache
    cached = _fixed_cache
    if cached is not None and cached[0] is cfg:
        return cached[1]
    fixed = _Fixed(
        skipped=ALWAYS_SKIPPED_CONTAINERS.union(cfg.skip_containers),
        system_namespaces=frozenset(cfg.system_namespaces),
        pull_policy=cfg.image_pull_policy,
        fixed_env=(("HOME", cfg.home_dir), *cfg.env.items()),
        cpu_request=cfg.cpu_request,
        memory_request=cfg.memory_request,
        cpu_limit=cfg.cpu_limit,
        memory_limit=cfg.memory_limit,
        run_as_user=cfg.run_as_user,
        run_as_group=cfg.run_as_group,
        home_dir=cfg.home_dir,
        scratch_size_limit=cfg.scratch_size_limit,
        fs_group=cfg.fs_group,
    )
    _fixed_cache = (cfg, fixed)
    return fixed


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
    cfg = config.injection
    ref = pod_ref(pod, namespace)
    request, findings = read_model_request(annotations, ref=ref, path=POD_ANNOTATIONS, config=cfg)
    if request is None:
        return None, findings
    fixed = _fixed(cfg)
    if namespace is not None and namespace in fixed.system_namespaces:
        findings += _namespace_findings(namespace, ref, POD_ANNOTATIONS, config)
    spec = pod.get("spec")
    structural = _spec_shape_findings(spec, ref, POD_ANNOTATIONS, "spec")
    if structural:
        return None, findings + structural
    assert _is_map(spec)
    apps = _app_containers(spec, fixed.skipped)
    findings += _spec_findings(spec, apps, request, ref, POD_ANNOTATIONS, "spec")
    for f in findings:
        if f.is_error:
            return None, findings
    return _build_plan(spec, apps, request, fixed), findings


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
        apps = _app_containers(spec, _fixed(config.injection).skipped)
        findings += _spec_findings(spec, apps, request, ref, site.path, spec_path)
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


def _spec_shape_findings(
    spec: Any, ref: ObjectRef, path: str, spec_path: str, *, names_required: bool = True
) -> list[Finding]:
    """The lists the patch appends to must be lists (or absent): otherwise no op could apply.

    `names_required=False`: a Knative template, whose single container may be unnamed (Knative
    names it when it makes the revision)."""
    problems: list[str] = []
    if not _is_map(spec):
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
        if security is not None and not _is_map(security):
            problems.append(f"{spec_path}.securityContext is not an object")
        for list_field in ("containers", "initContainers"):
            containers = get(list_field)
            if not isinstance(containers, list):
                continue
            for i, c in enumerate(containers):
                if not _is_map(c):
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
                problems += _named_items(c.get("volumeMounts"), f"{spec_path}.{list_field}[{i}].volumeMounts")
    return [
        RULES["KNS022"].finding(ref, path, None, None, p, "send a well-formed pod spec") for p in problems
    ]


def _named_items(items: Any, path: str) -> list[str]:
    """Volumes and mounts are matched by name: each must be an object with a string name."""
    if not isinstance(items, list):
        return []
    return [
        f"{path}[{i}] is not an object" if not _is_map(item) else f"{path}[{i}] has no name"
        for i, item in enumerate(items)
        if not (_is_map(item) and isinstance(item.get("name"), str))
    ]


def _app_containers(spec: Mapping[str, Any], skipped: frozenset[str]) -> list[tuple[int, Mapping[str, Any]]]:
    return [
        (i, c)
        for i, c in enumerate(_list(spec.get("containers")))
        if _is_map(c) and c.get("name") not in skipped
    ]


def _spec_findings(
    spec: Mapping[str, Any],
    apps: list[tuple[int, Mapping[str, Any]]],
    request: ModelRequest,
    ref: ObjectRef,
    path: str,
    spec_path: str,
) -> list[Finding]:
    """`apps`: the containers that get the model mount (`_app_containers` of `spec`)."""
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
    # The app containers, and a pre-declared downloader: it would download into another volume at
    # the model path while the apps mount an empty knscale-model.
    checked = [(f"{spec_path}.containers[{i}]", c) for i, c in apps]
    if request.source.scheme != "pvc":
        checked += [
            (f"{spec_path}.initContainers[{i}]", _mapping(c))
            for i, c in enumerate(_list(spec.get("initContainers")))
            if _mapping(c).get("name") == INIT_CONTAINER_NAME
        ][:1]  # the first one is completed (_build_plan)
    for where, c in checked:
        for m in _list(c.get("volumeMounts")):
            m = _mapping(m)
            mount_path = m.get("mountPath")
            if m.get("name") == MODEL_VOLUME or not isinstance(mount_path, str):
                continue
            if normalize_path(mount_path) == request.mount_path:
                findings.append(
                    RULES["KNS013"].finding(
                        ref,
                        path,
                        request.mount_key,
                        request.mount_path,
                        f"container {c.get('name')!r} ({where}) already mounts volume "
                        f"{m.get('name')!r} at {request.mount_path}",
                        f"set {mount_key} to a free directory, e.g. {mount_key}: /mnt/knscale-models"
                        + (
                            f", or name that volume {MODEL_VOLUME}"
                            if c.get("name") == INIT_CONTAINER_NAME
                            else ""
                        ),
                    )
                )
    return findings


def _build_plan(
    spec: Mapping[str, Any],
    apps: list[tuple[int, Mapping[str, Any]]],
    request: ModelRequest,
    fixed: _Fixed,
) -> InjectionPlan:
    pvc = request.source.scheme == "pvc"
    existing_volumes = {_mapping(v).get("name") for v in _list(spec.get("volumes"))}
    volumes: list[Mapping[str, Any]] = []
    if MODEL_VOLUME not in existing_volumes:
        volumes.append(_model_volume(request))

    app_mount: dict[str, Any] = {"name": MODEL_VOLUME, "mountPath": request.mount_path, "readOnly": True}
    if pvc and request.source.pvc_sub_path:
        app_mount["subPath"] = request.source.pvc_sub_path
    edits: list[ContainerEdit] = []
    for i, c in apps:
        if not any(_mapping(m).get("name") == MODEL_VOLUME for m in _list(c.get("volumeMounts"))):
            name = str(c.get("name") or "")
            edits.append(ContainerEdit("containers", i, name, append={"volumeMounts": [app_mount]}))

    init_container: Mapping[str, Any] | None = None
    security: dict[str, Any] = {}
    if not pvc:
        size_limit = fixed.scratch_size_limit
        for name in (TMP_VOLUME, HOME_VOLUME):
            if name not in existing_volumes:
                volumes.append({"name": name, "emptyDir": {"sizeLimit": size_limit}})
        wanted = _init_container(request, fixed)
        for i, c in enumerate(_list(spec.get("initContainers"))):
            if _mapping(c).get("name") == INIT_CONTAINER_NAME:  # the first one is completed
                edit = _complete_container(i, c, wanted)
                if edit is not None:
                    edits.append(edit)
                break
        else:
            init_container = wanted
        if _mapping(spec.get("securityContext")).get("fsGroup") is None:
            security["fsGroup"] = fixed.fs_group

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


def _init_container(request: ModelRequest, fixed: _Fixed) -> dict[str, Any]:
    # Every dict and list here is new: plans share no mutable state (see _Fixed).
    source = request.source
    mount_path = request.mount_path
    env = [
        {"name": "MODEL_URI", "value": source.uri},
        {"name": "MODEL_BUCKET", "value": source.env_bucket},
        {"name": "MODEL_PATH", "value": source.env_path},
        {"name": "MODEL_DIR", "value": mount_path},
    ]
    env += [{"name": k, "value": v} for k, v in fixed.fixed_env]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": request.image,
        "imagePullPolicy": fixed.pull_policy,
        "args": [source.uri, mount_path],
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
        {"name": MODEL_VOLUME, "mountPath": mount_path},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
        {"name": HOME_VOLUME, "mountPath": fixed.home_dir},
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


# ---- template mode (opt-in: injection.mutate_templates) ----------------------------------------

TEMPLATE_ANNOTATIONS = "spec.template.metadata.annotations"
TEMPLATE_SPEC = "spec.template.spec"
# (group, kind) of the workloads whose pod template is injected in template mode → whether it is
# a Knative template (its single container may be unnamed).
TEMPLATE_KINDS: Mapping[tuple[str, str], bool] = {
    ("apps", "Deployment"): False,
    ("apps", "StatefulSet"): False,
    ("serving.knative.dev", "Service"): True,
    ("serving.knative.dev", "Configuration"): True,
}
OWNED_VOLUMES: frozenset[str] = frozenset({MODEL_VOLUME, TMP_VOLUME, HOME_VOLUME})


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
    template = _mapping(obj.get("spec")).get("template")
    if not _is_map(template):
        return None, []
    annotations = _mapping(_mapping(template.get("metadata")).get("annotations"))
    if ALL_KEYS.isdisjoint(annotations) and INJECTED not in annotations:
        return None, []
    cfg = config.injection
    spec = template.get("spec")
    structural = _spec_shape_findings(
        spec, ref, TEMPLATE_ANNOTATIONS, TEMPLATE_SPEC, names_required=not knative
    )
    if structural:
        return None, structural
    assert _is_map(spec)
    stripped: Mapping[str, Any] = template
    skipped = _fixed(cfg).skipped
    marked = INJECTED in annotations
    if marked:
        repeated = _repeated_model_mounts(spec, ref, skipped)
        if repeated:
            return None, repeated
        stripped = _strip_injection(template, skipped)
        annotations = _mapping(_mapping(stripped.get("metadata")).get("annotations"))
    elif _has_owned_names(spec):
        # The author declared parts under knscale's names (e.g. a customised knscale-model-init):
        # the template is theirs to keep as written; the pod webhook completes the pods, as for
        # any pod. (Injecting here would make knscale own those parts and rebuild them later.)
        return None, []
    request, findings = read_model_request(annotations, ref=ref, path=TEMPLATE_ANNOTATIONS, config=cfg)
    errors = [f for f in findings if f.is_error]
    if request is None:
        return (TemplateChange(stripped, None) if marked and not errors else None), errors
    findings = errors + _namespace_findings(ref.namespace, ref, TEMPLATE_ANNOTATIONS, config)
    stripped_spec = _mapping(stripped.get("spec"))
    apps = _app_containers(stripped_spec, skipped)
    findings += [
        f
        for f in _spec_findings(stripped_spec, apps, request, ref, TEMPLATE_ANNOTATIONS, TEMPLATE_SPEC)
        if f.is_error
    ]
    if findings:
        return None, findings
    plan = _build_plan(stripped_spec, apps, request, _fixed(cfg))
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
    old_spec = _mapping(original.get("spec"))
    _settle_list(
        spec, "volumes", _list(old_spec.get("volumes")), lambda i: _mapping(i).get("name") in OWNED_VOLUMES
    )
    _settle_list(
        spec,
        "initContainers",
        _list(old_spec.get("initContainers")),
        lambda i: _mapping(i).get("name") == INIT_CONTAINER_NAME,
    )
    old_containers = _list(old_spec.get("containers"))
    new_containers = _list(spec.get("containers"))
    if len(old_containers) == len(new_containers):
        for old, new in zip(old_containers, new_containers, strict=True):
            if isinstance(new, dict):
                _settle_list(
                    new,
                    "volumeMounts",
                    _list(_mapping(old).get("volumeMounts")),
                    lambda m: _mapping(m).get("name") == MODEL_VOLUME,
                )
    volumes = {_mapping(v).get("name") for v in _list(spec.get("volumes"))}
    gone = OWNED_VOLUMES - volumes
    for field_name in ("initContainers", "containers"):
        for c in _list(spec.get(field_name)):
            _drop_items(c, "volumeMounts", lambda m: m.get("name") in gone)
    return desired


def _settle_list(
    parent: dict[str, Any], key: str, old_items: list[Any], owned: Callable[[Any], bool]
) -> None:
    items = parent.get(key)
    if not isinstance(items, list):
        return
    old_owned = {(_mapping(item).get("name")): (i, item) for i, item in enumerate(old_items) if owned(item)}
    others = [item for item in items if not owned(item)]
    placed: list[tuple[int, Any]] = []
    appended: list[Any] = []
    for item in (item for item in items if owned(item)):
        old = old_owned.get(_mapping(item).get("name"))
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
    if _is_map(want):
        return (
            _is_map(have)
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
        any(_mapping(v).get("name") in OWNED_VOLUMES for v in _list(spec.get("volumes")))
        or any(_mapping(c).get("name") == INIT_CONTAINER_NAME for c in _list(spec.get("initContainers")))
        or any(
            _mapping(m).get("name") == MODEL_VOLUME
            for c in _list(spec.get("containers"))
            for m in _list(_mapping(c).get("volumeMounts"))
        )
    )


def _repeated_model_mounts(spec: Mapping[str, Any], ref: ObjectRef, skipped: frozenset[str]) -> list[Finding]:
    """knscale rebuilds the one model mount of each app container of a template it manages; a
    second mount of that volume (the author's) would go with it, so it is refused, not dropped."""
    findings = []
    for i, c in _app_containers(spec, skipped):
        paths = [
            m.get("mountPath")
            for m in map(_mapping, _list(c.get("volumeMounts")))
            if m.get("name") == MODEL_VOLUME
        ]
        if len(paths) > 1:
            findings.append(
                RULES["KNS023"].finding(
                    ref,
                    TEMPLATE_ANNOTATIONS,
                    None,
                    None,
                    f"container {c.get('name')!r} ({TEMPLATE_SPEC}.containers[{i}]) mounts volume "
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
    for _, c in _app_containers(spec, skipped):
        _drop_items(c, "volumeMounts", lambda m: m.get("name") == MODEL_VOLUME)
    return stripped


def _drop_items(parent: Any, key: str, owned: Callable[[Mapping[str, Any]], bool]) -> None:
    """Remove the items of `parent[key]` that are knscale's; a list that held only those goes with
    them (Kubernetes reads an empty list as absent, but a Knative template without the
    init-container feature refuses even an empty initContainers)."""
    items = _mapping(parent).get(key)
    if not isinstance(items, list) or not isinstance(parent, dict):
        return
    kept = [item for item in items if not owned(_mapping(item))]
    if kept or len(kept) == len(items):
        items[:] = kept
    else:
        del parent[key]
