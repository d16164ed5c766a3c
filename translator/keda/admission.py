"""KEDA's admission, the ScaledObject CRD (schema + CEL) and the scalers' own metadata
parsing, emulated: what KEDA would refuse in a rendered ScaledObject, found before it is
written (a refused object never becomes ready, and says so only in KEDA's logs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations import table as A
from translator.core.objects import text_of
from translator.core.rule_ids import RuleId
from translator.core.values import (
    ParseError,
    RangeError,
    parse_float,
    parse_http_url,
    parse_int,
    parse_quantity,
)
from translator.keda import schema as S
from translator.keda.types import (
    KEDA_DEFAULT_MAX,
    MAX_NAME,
    NO_CACHED_METRICS,
    RESOURCE_TRIGGERS,
    Issue,
    annotation_issue,
)


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

    def add(rule: RuleId, where: A.Annotation | None, message: str, fix: str) -> None:
        out.append(annotation_issue(rule, whole or where, ann, message, fix))

    for problem in S.check(dict(spec), S.SCALED_OBJECT_SPEC, "spec"):
        add(RuleId.KNS212, whole, f"{problem} (ScaledObject CRD)", "fix the field named in the message")

    min_set = spec.get("minReplicaCount")
    max_replicas = spec.get("maxReplicaCount")
    lo = min_set if isinstance(min_set, int) else None
    hi = max_replicas if isinstance(max_replicas, int) else None
    if lo is not None and lo > (hi if hi is not None else KEDA_DEFAULT_MAX):
        add(
            RuleId.KNS212,
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
            RuleId.KNS212,
            None,
            f"idleReplicaCount {idle} must be less than minReplicaCount {effective_min}",
            "set idleReplicaCount: 0 and minReplicaCount ≥ 1",
        )

    name = text_of(meta.get("name"))
    advanced = spec.get("advanced") if isinstance(spec.get("advanced"), Mapping) else {}
    assert isinstance(advanced, Mapping)
    hpa_cfg = advanced.get("horizontalPodAutoscalerConfig")
    hpa_name = (
        (text_of(hpa_cfg.get("name")) or f"keda-hpa-{name}")
        if isinstance(hpa_cfg, Mapping)
        else f"keda-hpa-{name}"
    )
    for label, value in (("ScaledObject", name), ("HPA", hpa_name)):
        if len(value) > MAX_NAME:
            out.append(
                Issue(
                    RuleId.KNS215,
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
                    RuleId.KNS214,
                    where,
                    f"trigger name {trig_name!r} is used by triggers {seen[trig_name]} and {i}; "
                    "KEDA refuses duplicates",
                    f"rename one (the default Prometheus trigger's name is set by {A.TRIGGER_NAME.name})",
                )
            seen.setdefault(trig_name, i)
        out += [
            annotation_issue(rule, whole or where, ann, msg, fix)
            for rule, msg, fix in _trigger_problems(trig, f"spec.triggers[{i}]")
        ]

    modifiers = advanced.get("scalingModifiers")
    if isinstance(modifiers, Mapping) and any(modifiers.get(k) for k in modifiers):
        named = {str(t["name"]) for t in triggers if t.get("name") and t.get("type") not in RESOURCE_TRIGGERS}
        for msg in _modifier_problems(modifiers, named):
            add(
                RuleId.KNS213,
                A.SCALING_MODIFIERS,
                msg,
                "see KEDA's scalingModifiers: formula, target > 0, AverageValue",
            )

    fallback = spec.get("fallback")
    if isinstance(fallback, Mapping):
        uses_modifiers = isinstance(modifiers, Mapping) and any(modifiers.values())
        if not uses_modifiers and all(t.get("type") in RESOURCE_TRIGGERS for t in triggers):
            add(
                RuleId.KNS212,
                None,
                "fallback needs at least one trigger that is not cpu or memory",
                "remove spec.fallback or add an external trigger",
            )
        if fallback.get("behavior") == "scalingModifiers" and not (
            isinstance(modifiers, Mapping) and modifiers.get("formula")
        ):
            add(
                RuleId.KNS212,
                None,
                "fallback behavior scalingModifiers needs a scalingModifiers formula",
                "add one",
            )

    if triggers and all(t.get("type") in RESOURCE_TRIGGERS for t in triggers) and not lo:
        add(
            RuleId.KNS212,
            None,
            "only cpu/memory triggers and minReplicaCount 0: KEDA refuses scale to zero on resource metrics",
            "set minReplicaCount ≥ 1 or add a trigger that can see idle traffic",
        )
    return out


def _trigger_problems(trig: Mapping[str, Any], path: str) -> list[tuple[RuleId, str, str]]:
    """(rule, message, fix) for what the trigger's scaler would refuse."""
    kind = trig.get("type")
    meta = trig.get("metadata") if isinstance(trig.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    metric_type = trig.get("metricType") or ""
    out: list[tuple[RuleId, str, str]] = []
    if trig.get("useCachedMetrics") and kind in NO_CACHED_METRICS:
        out.append(
            (RuleId.KNS212, f"{path}: useCachedMetrics is not supported for a {kind} trigger", "remove it")
        )
    if kind in RESOURCE_TRIGGERS:
        if metric_type not in ("Utilization", "AverageValue"):
            out.append(
                (
                    RuleId.KNS212,
                    f"{path}: a {kind} trigger needs metricType Utilization or AverageValue, "
                    f"got {metric_type or 'none'}",
                    "set metricType (the metadata 'type' field was removed in KEDA 2.18)",
                )
            )
        value = meta.get("value")
        if not isinstance(value, str) or not value:
            out.append((RuleId.KNS212, f"{path}.metadata.value: is required", "give the target value"))
        elif metric_type == "Utilization":
            try:
                if parse_int(value, 32) < 1:
                    out.append(
                        (RuleId.KNS211, f"{path}.metadata.value: {value} must be at least 1 (%)", "use 1-100")
                    )
            except (ParseError, RangeError):
                out.append(
                    (RuleId.KNS212, f"{path}.metadata.value: {value!r} is not a whole percentage", "e.g. 70")
                )
        elif metric_type == "AverageValue":
            try:
                if parse_quantity(value) <= 0:
                    out.append(
                        (
                            RuleId.KNS211,
                            f"{path}.metadata.value: {value} must be greater than zero",
                            "e.g. 500m",
                        )
                    )
            except ParseError:
                out.append(
                    (
                        RuleId.KNS212,
                        f"{path}.metadata.value: {value!r} is not a quantity",
                        "e.g. 500m or 256Mi",
                    )
                )
        return out
    if metric_type == "Utilization":
        out.append(
            (
                RuleId.KNS206,
                f"{path}: metricType Utilization is only for cpu and memory; KEDA rejects it for {kind}",
                "use AverageValue or Value",
            )
        )
    elif metric_type and metric_type not in ("AverageValue", "Value"):
        out.append(
            (
                RuleId.KNS212,
                f"{path}: metricType {metric_type!r} is not AverageValue or Value",
                "fix metricType",
            )
        )
    if kind == "prometheus":
        for required in ("serverAddress", "query", "threshold"):
            if not meta.get(required):
                out.append(
                    (
                        RuleId.KNS212,
                        f"{path}.metadata.{required}: is required by the Prometheus scaler",
                        "add it",
                    )
                )
        address = meta.get("serverAddress")
        if isinstance(address, str) and address:
            try:
                parse_http_url(address)
            except ParseError as exc:
                out.append((RuleId.KNS203, f"{path}.metadata.serverAddress: {exc}", "use an http(s) URL"))
        for key in ("threshold", "activationThreshold"):
            text = meta.get(key)
            if not isinstance(text, str) or not text:
                continue
            try:
                number = parse_float(text)
            except (ParseError, RangeError):
                out.append(
                    (RuleId.KNS212, f"{path}.metadata.{key}: {text!r} is not a number", "e.g. 5 or 0.5")
                )
                continue
            if key == "threshold" and not number > 0:
                out.append(
                    (
                        RuleId.KNS211,
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
