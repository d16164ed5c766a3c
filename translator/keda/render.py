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
(`translator/autoscaling/checks.py`) and the reconciler call the same function, so a translation
problem has one rule id and one text wherever it shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations import table as A
from translator.config.autoscaler import HPA_CLASS, AutoscalerConfig, KedaConfig
from translator.core.findings import Severity
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.core.values import INT32_MAX, ParseError, decimal_str, parse_bool, parse_http_url
from translator.keda import schema as S
from translator.keda.admission import admission_issues
from translator.keda.gotemplate import render_query
from translator.keda.parts import behavior, json_annotation, metric_type_for, resource_value, scale_bounds
from translator.keda.types import (
    API_VERSION,
    CPU_TRIGGER,
    DEFAULT_CPU_TARGET,
    DEFAULT_PROMETHEUS_TRIGGER,
    KIND,
    MEMORY_TRIGGER,
    RESOURCE_TRIGGERS,
    HpaRevision,
    Issue,
    Rendered,
    annotation_issue,
)
from translator.keda.warnings import revision_warnings


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
    value, issues = json_annotation(ann, A.OVERRIDE, S.SCALED_OBJECT, dict)
    if value is None:
        return None, issues
    spec = value.get("spec")
    if not isinstance(spec, dict):
        return None, [
            annotation_issue(
                RuleId.KNS212,
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
            annotation_issue(
                RuleId.KNS201,
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
                annotation_issue(
                    RuleId.KNS202,
                    A.PROMETHEUS_QUERY,
                    ann,
                    str(exc),
                    "use {{.revisionName}} for the revision name",
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
                annotation_issue(
                    RuleId.KNS203,
                    A.PROMETHEUS_ADDRESS,
                    ann,
                    str(exc),
                    "use http://prometheus.monitoring.svc:9090",
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
            annotation_issue(
                RuleId.KNS208,
                spec,
                ann,
                "authentication kind or modes without a name; autoscaler-keda refuses it",
                f"add {A.AUTH_NAME.name} naming the TriggerAuthentication",
            )
        )
    if auth_kind is not None and auth_kind not in A.AUTH_KIND.choices:
        issues.append(
            annotation_issue(
                RuleId.KNS207,
                A.AUTH_KIND,
                ann,
                f"{auth_kind!r} is not an authentication kind; autoscaler-keda refuses it",
                "use TriggerAuthentication or ClusterTriggerAuthentication",
            )
        )
    if auth_name is not None and auth_modes is None:
        issues.append(
            annotation_issue(
                RuleId.KNS208,
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
    issues = revision_warnings(rev)
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
    modifiers, problems = json_annotation(ann, A.SCALING_MODIFIERS, S.SCALING_MODIFIERS, dict)
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

    extra, extra_problems = json_annotation(ann, A.EXTRA_TRIGGERS, S.TRIGGERS, list)
    issues += extra_problems
    for item in extra or []:
        sources[len(triggers)] = A.EXTRA_TRIGGERS
        triggers.append(item)
    if not triggers and target is None and not extra_problems:
        has_extra = A.EXTRA_TRIGGERS.lookup(ann) is not None
        issues.append(
            annotation_issue(
                RuleId.KNS210,
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
