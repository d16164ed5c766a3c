"""The pieces both renderers (ScaledObject and plain HPA) build from the annotations: scale
bounds, the default trigger's metric type and resource target, HPA behaviour, and the decoding
and shape check of autoscaler-keda's JSON annotations."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from translator.annotations import table as A
from translator.config.autoscaler import AutoscalerConfig
from translator.core.rule_ids import RuleId
from translator.core.values import binary_si, cpu_quantity
from translator.keda import schema as S
from translator.keda.types import MIB, RESOURCE_TRIGGERS, HpaRevision, Issue, annotation_issue


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
            annotation_issue(
                RuleId.KNS204,
                A.METRIC_TYPE,
                ann,
                f"{text!r} is not a metric type; autoscaler-keda refuses it",
                "use AverageValue, Utilization or Value",
            )
        ]
    if metric in RESOURCE_TRIGGERS:
        if text == "Value":
            return None, [
                annotation_issue(
                    RuleId.KNS205,
                    A.METRIC_TYPE,
                    ann,
                    f"a {metric} target cannot be a Value; autoscaler-keda refuses it",
                    "use Utilization (a percentage of the request) or AverageValue",
                )
            ]
        return text or ("Utilization" if metric == "cpu" else "AverageValue"), []
    if text == "Utilization":
        return None, [
            annotation_issue(
                RuleId.KNS206,
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
        rules, problems = json_annotation(ann, spec, S.HPA_SCALING_RULES, dict)
        issues += problems
        if rules is not None:
            out[direction] = rules
    return (out or None), issues


_RANGE_WORDS = ("minimum", "maximum", "is not one of", "must not be negative")


def json_annotation(
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
            annotation_issue(
                RuleId.KNS209,
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
            annotation_issue(
                RuleId.KNS209,
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
            annotation_issue(
                RuleId.KNS209, spec, ann, "the JSON is nested too deeply", f"write a JSON {spec.json_shape}"
            )
        ]
    is_hpa_rules = shape is S.HPA_SCALING_RULES
    issues = []
    for p in problems:
        rule = RuleId.KNS221 if is_hpa_rules and any(w in p for w in _RANGE_WORDS) else RuleId.KNS209
        fix = (
            "stabilizationWindowSeconds 0-3600; policies of type Pods or Percent, "
            "value ≥ 1, periodSeconds 1-1800"
            if is_hpa_rules
            else f"see the {spec.json_shape} fields in KEDA's documentation"
        )
        issues.append(annotation_issue(rule, spec, ann, p, fix))
    return None, issues
