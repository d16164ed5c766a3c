"""HPA-class revision → KEDA ScaledObject, with autoscaler-keda's naming and semantics.

What autoscaler-keda does (knative-extensions/autoscaler-keda `resources/keda.go`, reference
keda-translation.md §C3), restated: the ScaledObject is named after the PodAutoscaler (= the
revision), targets the PA's scale target (`<revision>-deployment`), names its HPA after the
revision, carries the PA's labels and annotations and a controller reference to the PA;
max = max-scale or MaxInt32; min = min-scale when > 0; triggers: cpu (default target 70,
Utilization), memory (target MiB, AverageValue) or Prometheus (query template with
`{{.revisionName}}`, address from the annotation or `config-autoscaler-keda`); extra triggers
appended; `window` becomes the stabilization window of both HPA directions; explicit scale-up/
down rules replace those blocks; an override JSON replaces everything but identity, target,
HPA name and max.

What knscale does differently, on purpose (each is a defect upstream):
- a fractional Prometheus threshold is kept (`0.5`), never truncated to `0`;
- `metric-type: Utilization` with a Prometheus trigger is an error (KEDA rejects it later);
- memory with `Utilization` gets a percentage value KEDA can parse (upstream writes `100Mi`);
- a threshold or target ≤ 0, or an override KEDA's admission or the HPA API would reject,
  is an error now instead of a ScaledObject that never becomes ready;
- an object whose triggers are all cpu/memory always has minReplicaCount ≥ 1 (KEDA refuses
  scale to zero for them), whichever annotation supplied the triggers.

Everything here is pure: `render_scaled_object` returns the manifest and the issues; the lint
(`translator/autoscaling.py`) and the reconciler call the same function, so a translation
problem has one rule id and one text wherever it shows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from translator.annotations import table as A
from translator.config.autoscaler import HPA_CLASS, AutoscalerConfig, KedaConfig
from translator.core.findings import Severity
from translator.core.rules import RULES
from translator.core.values import (
    INT32_MAX,
    ParseError,
    RangeError,
    binary_si,
    cpu_quantity,
    decimal_str,
    parse_bool,
    parse_float,
    parse_http_url,
    parse_int,
    parse_quantity,
)
from translator.keda import schema as S

API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledObject"
DEFAULT_CPU_TARGET = 70.0
DEFAULT_PROMETHEUS_TRIGGER = "default-trigger-custom"
CPU_TRIGGER = "default-trigger-cpu"
MEMORY_TRIGGER = "default-trigger-memory"
MIB = 1024 * 1024
MAX_NAME = 63  # KEDA uses the ScaledObject and HPA names as label values
KEDA_DEFAULT_MAX = 100  # the CRD's CEL rule compares min with max, or 100 when max is unset
RESOURCE_TRIGGERS = frozenset({"cpu", "memory"})
NO_CACHED_METRICS = frozenset({"cpu", "memory", "cron"})


@dataclass(frozen=True, slots=True)
class Issue:
    """A translation problem before it is tied to an object: becomes a Finding in lint."""

    rule_id: str
    key: str | None
    value: Any
    message: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ScaleTargetRef:
    api_version: str
    kind: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True, slots=True)
class HpaRevision:
    """What the renderers need to know about one HPA-class revision (what its PA carries)."""

    name: str
    annotations: Mapping[str, Any]
    target: ScaleTargetRef
    namespace: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    owner: OwnerRef | None = None
    reachable: bool = True
    # The pod template's containers when known (lint of a ksvc/Deployment); None for a bare PA.
    containers: Sequence[Any] | None = None

    def object_meta(self) -> dict[str, Any]:
        """metadata of what is rendered for it: its name, namespace, labels, annotations and owner."""
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        if self.owner is not None:
            meta["ownerReferences"] = [self.owner.to_dict()]
        return meta


@dataclass(frozen=True, slots=True)
class Rendered:
    manifest: dict[str, Any] | None
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return self.manifest is not None


def _issue(
    rule: str, ann: A.Annotation | None, ann_map: Mapping[str, Any], message: str, fix: str | None
) -> Issue:
    """An issue about one annotation, naming it as the user wrote it."""
    if ann is None:
        return Issue(rule, None, None, message, fix)
    found = ann.lookup(ann_map)
    key, value = found if found is not None else (ann.name, None)
    return Issue(rule, key, value, message, fix)


# ---- shared pieces (also used by the plain-HPA renderer) ------------------------------------


def scale_bounds(rev: HpaRevision, config: AutoscalerConfig) -> tuple[int, int]:
    """Knative's ScaleBounds: (min, max) with annotation over config; min 0 when unreachable."""
    ann = rev.annotations
    lo = 0
    if rev.reachable:
        ann_min = A.read_int32(ann, A.MIN_SCALE)
        lo = config.min_scale if ann_min is None else ann_min
    ann_max = A.read_int32(ann, A.MAX_SCALE)
    hi = config.max_scale if ann_max is None else ann_max
    return lo, hi


def metric_type_for(metric: str, ann: Mapping[str, Any]) -> tuple[str | None, list[Issue]]:
    """The HPA target type of the default trigger, and why it cannot be built if it cannot."""
    text = A.read_string(ann, A.METRIC_TYPE)
    if text is not None and text not in A.METRIC_TYPE.choices:
        return None, [
            _issue(
                "KNS204",
                A.METRIC_TYPE,
                ann,
                f"{text!r} is not a metric type; autoscaler-keda refuses it",
                "use AverageValue, Utilization or Value",
            )
        ]
    if metric in RESOURCE_TRIGGERS:
        if text == "Value":
            return None, [
                _issue(
                    "KNS205",
                    A.METRIC_TYPE,
                    ann,
                    f"a {metric} target cannot be a Value; autoscaler-keda refuses it",
                    "use Utilization (a percentage of the request) or AverageValue",
                )
            ]
        return text or ("Utilization" if metric == "cpu" else "AverageValue"), []
    if text == "Utilization":
        return None, [
            _issue(
                "KNS206",
                A.METRIC_TYPE,
                ann,
                "Utilization applies to cpu and memory only; KEDA rejects it for a Prometheus trigger "
                "(autoscaler-keda would create a ScaledObject that never becomes ready)",
                "use AverageValue (per pod) or Value (for the whole revision)",
            )
        ]
    return text or "AverageValue", []


def resource_value(metric: str, metric_type: str, target: float) -> str:
    """The cpu/memory trigger's `value`: a percentage for Utilization, else a quantity."""
    if metric_type == "Utilization":
        return str(math.ceil(target))
    if metric == "cpu":
        return cpu_quantity(target)
    return binary_si(math.ceil(target * MIB))


def behavior(ann: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Issue]]:
    """HPA behaviour: `window` for both directions, replaced per direction by the rule annotations."""
    out: dict[str, Any] = {}
    issues: list[Issue] = []
    window = A.read_seconds(ann, A.WINDOW)
    if window is not None:
        seconds = int(window)
        out = {
            "scaleDown": {"stabilizationWindowSeconds": seconds},
            "scaleUp": {"stabilizationWindowSeconds": seconds},
        }
    for spec, direction in ((A.SCALE_UP_RULES, "scaleUp"), (A.SCALE_DOWN_RULES, "scaleDown")):
        rules, problems = _json_annotation(ann, spec, S.HPA_SCALING_RULES, dict)
        issues += problems
        if rules is not None:
            out[direction] = rules
    return (out or None), issues


_RANGE_WORDS = ("minimum", "maximum", "is not one of", "must not be negative")


def _json_annotation(
    ann: Mapping[str, Any], spec: A.Annotation, shape: S.Shape, top: type
) -> tuple[Any, list[Issue]]:
    """Decode a JSON annotation and check its shape; (value | None, issues)."""
    text = A.read_string(ann, spec)
    if text is None:
        return None, []
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, [
            _issue(
                "KNS209",
                spec,
                ann,
                f"not valid JSON ({exc}); autoscaler-keda refuses it",
                f"write a JSON {spec.json_shape}",
            )
        ]
    if value is None:
        return None, []
    if not isinstance(value, top):
        return None, [
            _issue(
                "KNS209",
                spec,
                ann,
                f"expected a JSON {spec.json_shape}, got {S._describe(value)}",
                f"write a JSON {spec.json_shape}",
            )
        ]
    try:
        problems = S.check(value, shape)
        if not problems:
            return S.drop_nulls(value), []
    except RecursionError:
        return None, [
            _issue("KNS209", spec, ann, "the JSON is nested too deeply", f"write a JSON {spec.json_shape}")
        ]
    is_hpa_rules = shape is S.HPA_SCALING_RULES
    issues = []
    for p in problems:
        rule = "KNS221" if is_hpa_rules and any(w in p for w in _RANGE_WORDS) else "KNS209"
        fix = (
            "stabilizationWindowSeconds 0-3600; policies of type Pods or Percent, "
            "value ≥ 1, periodSeconds 1-1800"
            if is_hpa_rules
            else f"see the {spec.json_shape} fields in KEDA's documentation"
        )
        issues.append(_issue(rule, spec, ann, p, fix))
    return None, issues


# ---- Prometheus query template -------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)


def render_query(template: str, revision: str) -> str:
    """Go text/template as autoscaler-keda uses it: only `{{.revisionName}}` (and comments) exist.

    Raises ParseError for anything else, which Go would either reject or print as `<no value>`.
    """
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        out.append(text)
        body = m.group(2)
        if body == ".revisionName":
            out.append(revision)
        elif not (body.startswith("/*") and body.endswith("*/")):
            raise ParseError(
                f"unsupported template action {{{{{body}}}}}; only {{{{.revisionName}}}} is available"
            )
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    tail = template[pos:]
    if "{{" in tail:
        raise ParseError("unclosed template action '{{'")
    out.append(tail)
    return "".join(out)


# ---- the ScaledObject -----------------------------------------------------------------------


def should_auto_create(ann: Mapping[str, Any], keda: KedaConfig) -> bool:
    """ConfigMap default, then the annotation when it parses as a Go bool (else ignored, as upstream)."""
    text = A.read_string(ann, A.AUTO_CREATE)
    if text is not None:
        try:
            return parse_bool(text)
        except ParseError:
            pass
    return keda.scaledobject_autocreate


def _identity(rev: HpaRevision, spec: dict[str, Any], max_replicas: int) -> dict[str, Any]:
    meta = rev.object_meta()
    target = dict(spec.get("scaleTargetRef") or {})
    target.update(rev.target.to_dict())
    spec["scaleTargetRef"] = target
    advanced = spec.setdefault("advanced", {})
    hpa_config = advanced.get("horizontalPodAutoscalerConfig")
    if not isinstance(hpa_config, dict):
        # autoscaler-keda dereferences a nil horizontalPodAutoscalerConfig here when an
        # override has `advanced` without it; knscale creates the block instead.
        hpa_config = advanced["horizontalPodAutoscalerConfig"] = {}
    hpa_config["name"] = rev.name
    spec["maxReplicaCount"] = max_replicas
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": _ordered_spec(spec)}


_SPEC_ORDER = (
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
)


def _ordered_spec(spec: dict[str, Any]) -> dict[str, Any]:
    ordered = {k: spec[k] for k in _SPEC_ORDER if k in spec}
    ordered.update({k: v for k, v in spec.items() if k not in ordered})
    return ordered


def _override(rev: HpaRevision, max_replicas: int) -> tuple[dict[str, Any] | None, list[Issue]]:
    ann = rev.annotations
    value, issues = _json_annotation(ann, A.OVERRIDE, S.SCALED_OBJECT, dict)
    if value is None:
        return None, issues
    spec = value.get("spec")
    if not isinstance(spec, dict):
        return None, [
            _issue(
                "KNS212",
                A.OVERRIDE,
                ann,
                "the override has no spec; KEDA requires spec.scaleTargetRef and spec.triggers",
                "give a whole ScaledObject with spec.triggers",
            )
        ]
    return _identity(rev, dict(spec), max_replicas), []


_EXAMPLE_QUERY = 'sum(rate(http_requests_total{pod=~"{{.revisionName}}-.*"}[1m]))'


def _prometheus_trigger(
    rev: HpaRevision, keda: KedaConfig, target: float, metric_type: str
) -> tuple[dict[str, Any] | None, list[Issue]]:
    ann = rev.annotations
    issues: list[Issue] = []
    query_template = A.read_string(ann, A.PROMETHEUS_QUERY)
    query: str | None = None
    if query_template is None:
        issues.append(
            _issue(
                "KNS201",
                A.METRIC,
                ann,
                f"metric {A.metric_of(ann, HPA_CLASS)!r} is read from Prometheus and needs a query; "
                "autoscaler-keda refuses the revision without one",
                f"add {A.PROMETHEUS_QUERY.name}: {_EXAMPLE_QUERY}",
            )
        )
    else:
        try:
            query = render_query(query_template, rev.name)
        except ParseError as exc:
            issues.append(
                _issue(
                    "KNS202", A.PROMETHEUS_QUERY, ann, str(exc), "use {{.revisionName}} for the revision name"
                )
            )
    address = A.read_string(ann, A.PROMETHEUS_ADDRESS)
    if address is None:
        address = keda.prometheus_address
    else:
        try:
            parse_http_url(address)
        except ParseError as exc:
            issues.append(
                _issue(
                    "KNS203", A.PROMETHEUS_ADDRESS, ann, str(exc), "use http://prometheus.monitoring.svc:9090"
                )
            )
    trigger: dict[str, Any] = {
        "type": "prometheus",
        "name": A.read_string(ann, A.TRIGGER_NAME) or DEFAULT_PROMETHEUS_TRIGGER,
        "metricType": metric_type,
        "metadata": {"serverAddress": address, "query": query or "", "threshold": decimal_str(target)},
    }
    if rev.namespace:
        trigger["metadata"]["namespace"] = rev.namespace
    auth_name = A.read_string(ann, A.AUTH_NAME)
    auth_kind = A.read_string(ann, A.AUTH_KIND)
    auth_modes = A.read_string(ann, A.AUTH_MODES)
    if auth_name is None and (auth_kind is not None or auth_modes is not None):
        spec = A.AUTH_KIND if auth_kind is not None else A.AUTH_MODES
        issues.append(
            _issue(
                "KNS208",
                spec,
                ann,
                "authentication kind or modes without a name; autoscaler-keda refuses it",
                f"add {A.AUTH_NAME.name} naming the TriggerAuthentication",
            )
        )
    if auth_kind is not None and auth_kind not in A.AUTH_KIND.choices:
        issues.append(
            _issue(
                "KNS207",
                A.AUTH_KIND,
                ann,
                f"{auth_kind!r} is not an authentication kind; autoscaler-keda refuses it",
                "use TriggerAuthentication or ClusterTriggerAuthentication",
            )
        )
    if auth_name is not None and auth_modes is None:
        issues.append(
            _issue(
                "KNS208",
                A.AUTH_NAME,
                ann,
                "an authentication name without modes; autoscaler-keda refuses it",
                f"add {A.AUTH_MODES.name}, e.g. bearer",
            )
        )
    if auth_name is not None:
        ref = {"name": auth_name}
        if auth_kind is not None:
            ref["kind"] = auth_kind
        trigger["authenticationRef"] = ref
        if auth_modes is not None:
            trigger["metadata"]["authModes"] = auth_modes
    return (None if issues else trigger), issues


def render_scaled_object(rev: HpaRevision, autoscaler: AutoscalerConfig, keda: KedaConfig) -> Rendered:
    """The ScaledObject for one HPA-class revision, or None and the reasons it cannot be built.

    Warnings (keys without effect, missing resource requests) come back with a manifest too.
    """
    ann = rev.annotations
    lo, hi = scale_bounds(rev, autoscaler)
    max_replicas = hi if hi > 0 else INT32_MAX
    issues = _warnings(rev)
    sources: dict[int, A.Annotation] = {}  # trigger index → annotation that wrote it

    if A.OVERRIDE.lookup(ann) is not None:
        manifest, problems = _override(rev, max_replicas)
        issues += problems
        if manifest is not None:
            for i in range(len(manifest["spec"].get("triggers") or [])):
                sources[i] = A.OVERRIDE
            issues += admission_issues(manifest, ann, sources, A.OVERRIDE)
        return _result(manifest, issues)

    spec: dict[str, Any] = {}
    modifiers, problems = _json_annotation(ann, A.SCALING_MODIFIERS, S.SCALING_MODIFIERS, dict)
    issues += problems
    if modifiers:
        spec.setdefault("advanced", {})["scalingModifiers"] = modifiers
    if lo > 0:
        spec["minReplicaCount"] = lo

    metric = A.metric_of(ann, HPA_CLASS)
    target = A.read_float(ann, A.TARGET)
    if target is None and metric == "cpu":
        target = DEFAULT_CPU_TARGET
    triggers: list[dict[str, Any]] = []
    metric_type, problems = metric_type_for(metric, ann)
    issues += problems
    if metric in RESOURCE_TRIGGERS:
        if target is not None and metric_type is not None:
            triggers.append(
                {
                    "type": metric,
                    "name": CPU_TRIGGER if metric == "cpu" else MEMORY_TRIGGER,
                    "metricType": metric_type,
                    "metadata": {"value": resource_value(metric, metric_type, target)},
                }
            )
    elif target is not None:
        # Without a target autoscaler-keda makes no Prometheus trigger (extra triggers may stand
        # alone). With one, the trigger is checked even when the metric type is already refused,
        # so one run reports every problem (query, address, authentication) at once.
        trigger, problems = _prometheus_trigger(rev, keda, target, metric_type or "AverageValue")
        issues += problems
        if trigger is not None and metric_type is not None:
            triggers.append(trigger)
    if triggers:
        sources[0] = A.METRIC

    extra, extra_problems = _json_annotation(ann, A.EXTRA_TRIGGERS, S.TRIGGERS, list)
    issues += extra_problems
    for item in extra or []:
        sources[len(triggers)] = A.EXTRA_TRIGGERS
        triggers.append(item)
    if not triggers and target is None and not extra_problems:
        has_extra = A.EXTRA_TRIGGERS.lookup(ann) is not None
        issues.append(
            _issue(
                "KNS210",
                A.EXTRA_TRIGGERS if has_extra else A.METRIC,
                ann,
                f"no trigger: metric {metric!r} has no target and no extra triggers are given; "
                "autoscaler-keda refuses the revision",
                f"add {A.TARGET.name} (the per-pod value to keep) or {A.EXTRA_TRIGGERS.name}",
            )
        )
    spec["triggers"] = triggers

    hpa_behavior, problems = behavior(ann)
    issues += problems
    if hpa_behavior is not None:
        spec.setdefault("advanced", {}).setdefault("horizontalPodAutoscalerConfig", {})["behavior"] = (
            hpa_behavior
        )

    if triggers and all(t.get("type") in RESOURCE_TRIGGERS for t in triggers):
        # KEDA cannot scale a cpu/memory-only object to zero and refuses min 0 for it.
        spec["minReplicaCount"] = max(1, int(spec.get("minReplicaCount", 0)))

    if any(_is_error(i) for i in issues):
        return _result(None, issues)
    manifest = _identity(rev, spec, max_replicas)
    issues += admission_issues(manifest, ann, sources, None)
    return _result(manifest, issues)


def _is_error(issue: Issue) -> bool:
    return RULES[issue.rule_id].severity is Severity.ERROR


def _result(manifest: dict[str, Any] | None, issues: list[Issue]) -> Rendered:
    if any(_is_error(i) for i in issues):
        return Rendered(None, issues)
    return Rendered(manifest, issues)


# ---- KEDA admission, the CRD, and the scalers' own metadata parsing -------------------------


def admission_issues(
    so: Mapping[str, Any],
    ann: Mapping[str, Any],
    sources: Mapping[int, A.Annotation],
    whole: A.Annotation | None,
) -> list[Issue]:
    """What KEDA's webhook, the CRD (schema + CEL) and the scalers would refuse in this object.

    `sources` maps trigger indexes to the annotation that wrote them; `whole` is the annotation
    that wrote the entire object (the override), which every problem is then attributed to.
    """
    spec: Mapping[str, Any] = so.get("spec") or {}
    meta: Mapping[str, Any] = so.get("metadata") or {}
    out: list[Issue] = []

    def add(rule: str, where: A.Annotation | None, message: str, fix: str) -> None:
        out.append(_issue(rule, whole or where, ann, message, fix))

    for problem in S.check(dict(spec), S.SCALED_OBJECT_SPEC, "spec"):
        add("KNS212", whole, f"{problem} (ScaledObject CRD)", "fix the field named in the message")

    min_set = spec.get("minReplicaCount")
    max_replicas = spec.get("maxReplicaCount")
    lo = min_set if isinstance(min_set, int) else None
    hi = max_replicas if isinstance(max_replicas, int) else None
    if lo is not None and lo > (hi if hi is not None else KEDA_DEFAULT_MAX):
        add(
            "KNS212",
            A.MIN_SCALE,
            f"minReplicaCount {lo} is greater than maxReplicaCount "
            f"{hi if hi is not None else KEDA_DEFAULT_MAX}; "
            "the CRD and KEDA's webhook refuse it",
            f"lower {A.MIN_SCALE.name} or raise {A.MAX_SCALE.name} "
            "(the cluster's config-autoscaler may set one)",
        )
    idle = spec.get("idleReplicaCount")
    effective_min = 0 if lo is None else max(lo, 1)
    if isinstance(idle, int) and idle >= effective_min:
        add(
            "KNS212",
            None,
            f"idleReplicaCount {idle} must be less than minReplicaCount {effective_min}",
            "set idleReplicaCount: 0 and minReplicaCount ≥ 1",
        )

    name = str(meta.get("name", ""))
    advanced = spec.get("advanced") if isinstance(spec.get("advanced"), Mapping) else {}
    assert isinstance(advanced, Mapping)
    hpa_cfg = advanced.get("horizontalPodAutoscalerConfig")
    hpa_name = (
        str(hpa_cfg.get("name") or f"keda-hpa-{name}") if isinstance(hpa_cfg, Mapping) else f"keda-hpa-{name}"
    )
    for label, value in (("ScaledObject", name), ("HPA", hpa_name)):
        if len(value) > MAX_NAME:
            out.append(
                Issue(
                    "KNS215",
                    None,
                    value,
                    f"{label} name {value!r} is {len(value)} characters; KEDA allows at most {MAX_NAME}",
                    "shorten the revision (or workload) name",
                )
            )

    triggers = [t for t in spec.get("triggers") or [] if isinstance(t, Mapping)]
    seen: dict[str, int] = {}
    for i, trig in enumerate(triggers):
        where = sources.get(i)
        trig_name = trig.get("name")
        if isinstance(trig_name, str) and trig_name:
            if trig_name in seen:
                add(
                    "KNS214",
                    where,
                    f"trigger name {trig_name!r} is used by triggers {seen[trig_name]} and {i}; "
                    "KEDA refuses duplicates",
                    f"rename one (the default Prometheus trigger's name is set by {A.TRIGGER_NAME.name})",
                )
            seen.setdefault(trig_name, i)
        out += [
            _issue(rule, whole or where, ann, msg, fix)
            for rule, msg, fix in _trigger_problems(trig, f"spec.triggers[{i}]")
        ]

    modifiers = advanced.get("scalingModifiers")
    if isinstance(modifiers, Mapping) and any(modifiers.get(k) for k in modifiers):
        named = {str(t["name"]) for t in triggers if t.get("name") and t.get("type") not in RESOURCE_TRIGGERS}
        for msg in _modifier_problems(modifiers, named):
            add(
                "KNS213",
                A.SCALING_MODIFIERS,
                msg,
                "see KEDA's scalingModifiers: formula, target > 0, AverageValue",
            )

    fallback = spec.get("fallback")
    if isinstance(fallback, Mapping):
        uses_modifiers = isinstance(modifiers, Mapping) and any(modifiers.values())
        if not uses_modifiers and all(t.get("type") in RESOURCE_TRIGGERS for t in triggers):
            add(
                "KNS212",
                None,
                "fallback needs at least one trigger that is not cpu or memory",
                "remove spec.fallback or add an external trigger",
            )
        if fallback.get("behavior") == "scalingModifiers" and not (
            isinstance(modifiers, Mapping) and modifiers.get("formula")
        ):
            add(
                "KNS212",
                None,
                "fallback behavior scalingModifiers needs a scalingModifiers formula",
                "add one",
            )

    if triggers and all(t.get("type") in RESOURCE_TRIGGERS for t in triggers) and not lo:
        add(
            "KNS212",
            None,
            "only cpu/memory triggers and minReplicaCount 0: KEDA refuses scale to zero on resource metrics",
            "set minReplicaCount ≥ 1 or add a trigger that can see idle traffic",
        )
    return out


def _trigger_problems(trig: Mapping[str, Any], path: str) -> list[tuple[str, str, str]]:
    """(rule, message, fix) for what the trigger's scaler would refuse."""
    kind = trig.get("type")
    meta = trig.get("metadata") if isinstance(trig.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    metric_type = trig.get("metricType") or ""
    out: list[tuple[str, str, str]] = []
    if trig.get("useCachedMetrics") and kind in NO_CACHED_METRICS:
        out.append(("KNS212", f"{path}: useCachedMetrics is not supported for a {kind} trigger", "remove it"))
    if kind in RESOURCE_TRIGGERS:
        if metric_type not in ("Utilization", "AverageValue"):
            out.append(
                (
                    "KNS212",
                    f"{path}: a {kind} trigger needs metricType Utilization or AverageValue, "
                    f"got {metric_type or 'none'}",
                    "set metricType (the metadata 'type' field was removed in KEDA 2.18)",
                )
            )
        value = meta.get("value")
        if not isinstance(value, str) or not value:
            out.append(("KNS212", f"{path}.metadata.value: is required", "give the target value"))
        elif metric_type == "Utilization":
            try:
                if parse_int(value, 32) < 1:
                    out.append(
                        ("KNS211", f"{path}.metadata.value: {value} must be at least 1 (%)", "use 1-100")
                    )
            except (ParseError, RangeError):
                out.append(
                    ("KNS212", f"{path}.metadata.value: {value!r} is not a whole percentage", "e.g. 70")
                )
        elif metric_type == "AverageValue":
            try:
                if parse_quantity(value) <= 0:
                    out.append(
                        ("KNS211", f"{path}.metadata.value: {value} must be greater than zero", "e.g. 500m")
                    )
            except ParseError:
                out.append(
                    ("KNS212", f"{path}.metadata.value: {value!r} is not a quantity", "e.g. 500m or 256Mi")
                )
        return out
    if metric_type == "Utilization":
        out.append(
            (
                "KNS206",
                f"{path}: metricType Utilization is only for cpu and memory; KEDA rejects it for {kind}",
                "use AverageValue or Value",
            )
        )
    elif metric_type and metric_type not in ("AverageValue", "Value"):
        out.append(
            ("KNS212", f"{path}: metricType {metric_type!r} is not AverageValue or Value", "fix metricType")
        )
    if kind == "prometheus":
        for required in ("serverAddress", "query", "threshold"):
            if not meta.get(required):
                out.append(
                    ("KNS212", f"{path}.metadata.{required}: is required by the Prometheus scaler", "add it")
                )
        address = meta.get("serverAddress")
        if isinstance(address, str) and address:
            try:
                parse_http_url(address)
            except ParseError as exc:
                out.append(("KNS203", f"{path}.metadata.serverAddress: {exc}", "use an http(s) URL"))
        for key in ("threshold", "activationThreshold"):
            text = meta.get(key)
            if not isinstance(text, str) or not text:
                continue
            try:
                number = parse_float(text)
            except (ParseError, RangeError):
                out.append(("KNS212", f"{path}.metadata.{key}: {text!r} is not a number", "e.g. 5 or 0.5"))
                continue
            if key == "threshold" and not number > 0:
                out.append(
                    (
                        "KNS211",
                        f"{path}.metadata.threshold: {text} must be greater than zero "
                        "(the HPA refuses a target ≤ 0)",
                        "use a positive threshold, fractions such as 0.5 are fine",
                    )
                )
    return out


def _modifier_problems(modifiers: Mapping[str, Any], trigger_names: set[str]) -> list[str]:
    out: list[str] = []
    formula = modifiers.get("formula") or ""
    target = modifiers.get("target") or ""
    if not formula:
        out.append("scalingModifiers.formula is required")
    if not target:
        out.append("scalingModifiers.target is required with a formula")
    else:
        try:
            if not parse_float(str(target)) > 0:
                out.append(f"scalingModifiers.target {target} must be greater than zero")
        except (ParseError, RangeError):
            out.append(f"scalingModifiers.target {target!r} is not a number")
    activation = modifiers.get("activationTarget")
    if activation:
        try:
            parse_float(str(activation))
        except (ParseError, RangeError):
            out.append(f"scalingModifiers.activationTarget {activation!r} is not a number")
    if modifiers.get("metricType") == "Utilization":
        out.append("scalingModifiers.metricType must be AverageValue or Value")
    for name in S.formula_variables(str(formula)):
        if name not in trigger_names:
            known = ", ".join(sorted(trigger_names)) or "none"
            out.append(
                f"formula uses {name!r}, which names no trigger (named external triggers: {known}); "
                "cpu/memory triggers cannot appear in a formula"
            )
    return out


# ---- warnings: keys that do nothing, and prerequisites KEDA checks at admission --------------

_PROMETHEUS_KEYS = (
    A.PROMETHEUS_ADDRESS,
    A.PROMETHEUS_QUERY,
    A.TRIGGER_NAME,
    A.AUTH_NAME,
    A.AUTH_KIND,
    A.AUTH_MODES,
)
_OVERRIDDEN = (
    A.METRIC,
    A.TARGET,
    A.MIN_SCALE,
    A.WINDOW,
    A.METRIC_TYPE,
    *_PROMETHEUS_KEYS,
    A.EXTRA_TRIGGERS,
    A.SCALING_MODIFIERS,
    A.SCALE_UP_RULES,
    A.SCALE_DOWN_RULES,
)


def _warnings(rev: HpaRevision) -> list[Issue]:
    ann = rev.annotations
    out: list[Issue] = []
    auto = A.AUTO_CREATE.lookup(ann)
    if auto is not None and isinstance(auto[1], str):
        try:
            parse_bool(auto[1])
        except ParseError:
            out.append(
                Issue(
                    "KNS218",
                    auto[0],
                    auto[1],
                    f"{auto[1]!r} is not a boolean; autoscaler-keda logs this and keeps the cluster default",
                    'use "true" or "false"',
                )
            )
    if A.OVERRIDE.lookup(ann) is not None:
        ignored = [found[0] for spec in _OVERRIDDEN if (found := spec.lookup(ann)) is not None]
        if ignored:
            out.append(
                _issue(
                    "KNS216",
                    A.OVERRIDE,
                    ann,
                    f"with an override, {', '.join(ignored)} are ignored (only max-scale is applied)",
                    "put those settings into the override's spec, or drop the override",
                )
            )
        return out
    metric = A.metric_of(ann, HPA_CLASS)
    has_target = A.read_float(ann, A.TARGET) is not None
    if metric in RESOURCE_TRIGGERS or not has_target:
        present = [found[0] for spec in _PROMETHEUS_KEYS if (found := spec.lookup(ann)) is not None]
        if present:
            why = (
                f"metric {metric!r} does not use Prometheus"
                if metric in RESOURCE_TRIGGERS
                else f"metric {metric!r} has no {A.TARGET.name}, so no default trigger is built"
            )
            out.append(
                Issue(
                    "KNS220",
                    present[0],
                    ann.get(present[0]),
                    f"{', '.join(present)} {'has' if len(present) == 1 else 'have'} no effect: {why}",
                    f"set {A.TARGET.name} for the Prometheus metric, or remove the keys",
                )
            )
    if metric in RESOURCE_TRIGGERS and rev.containers is not None:
        for c in rev.containers:
            if not isinstance(c, Mapping):
                continue
            res = c.get("resources") if isinstance(c.get("resources"), Mapping) else {}
            assert isinstance(res, Mapping)
            requests = res.get("requests") if isinstance(res.get("requests"), Mapping) else {}
            limits = res.get("limits") if isinstance(res.get("limits"), Mapping) else {}
            assert isinstance(requests, Mapping) and isinstance(limits, Mapping)
            if metric not in requests and metric not in limits:
                name = c.get("name") or "(unnamed)"
                out.append(
                    _issue(
                        "KNS219",
                        A.METRIC,
                        ann,
                        f"container {name} has no {metric} request; KEDA refuses a {metric} trigger unless "
                        "every container requests it (or a namespace LimitRange supplies a default)",
                        f"set resources.requests.{metric} on container {name}",
                    )
                )
    return out
