"""Knative's own webhook rules for the autoscaling keys (`annotation_validation.go`), with the
cluster's config-autoscaler (`max-scale-limit`, `allow-zero-initial-scale`, the default class):
KNS101–110. Ranges come from the table in `translator/annotations/table.py`."""

from __future__ import annotations

import math
from collections.abc import Mapping

from translator.annotations import table as A
from translator.autoscaling.collector import Collector
from translator.config.autoscaler import HPA_CLASS, KNSCALE_CLASS, KPA_CLASS, AutoscalerConfig
from translator.core.rule_ids import RuleId
from translator.core.values import SECOND, ParseError, RangeError, parse_duration, parse_float, parse_int

DOMAIN_SUFFIX = ".knative.dev"


def _bounds_text(spec: A.Annotation, unit: str = "") -> str:
    lo = "" if spec.minimum is None else f"{spec.minimum:g}{unit}"
    hi = "" if spec.maximum is None else f"{spec.maximum:g}{unit}"
    if spec.maximum is None:
        return f"at least {lo}"
    return f"between {lo} and {hi}"


def _check_float(out: Collector, ann: Mapping[str, str], spec: A.Annotation) -> None:
    found = spec.lookup(ann)
    if found is None:
        return
    key, text = found
    try:
        number = parse_float(text)
    except (ParseError, RangeError):
        out.add(RuleId.KNS101, key, text, f"{text!r} is not a number", f"give a number {_bounds_text(spec)}")
        return
    if math.isnan(number) or math.isinf(number):
        out.add(
            RuleId.KNS101,
            key,
            text,
            f"{text!r} is not a finite number",
            f"give a number {_bounds_text(spec)}",
        )
        return
    lo = -math.inf if spec.minimum is None else spec.minimum
    hi = math.inf if spec.maximum is None else spec.maximum
    if lo <= number <= hi or number in spec.also_allowed:
        return
    if spec is A.TARGET:
        message = f"target {text} should be at least {A.TARGET.minimum:g}"
        fix = "use a positive target such as 100 (concurrency), 200 (rps) or 80 (cpu %)"
    elif spec is A.TARGET_BURST_CAPACITY:
        message = f"{text} is invalid: must be non-negative, or -1 for unlimited"
        fix = "use 0 (activator only at zero scale), a positive capacity, or -1"
    else:
        message = f"{text} is out of range: must be {_bounds_text(spec)}"
        fix = f"use a value {_bounds_text(spec)}"
    out.add(RuleId.KNS102, key, text, message, fix)


def _example_duration(spec: A.Annotation) -> str:
    low = spec.minimum or 0
    return f"{max(int(low), 60) if spec.maximum is None or spec.maximum >= 60 else int(low)}s"


def _check_duration(out: Collector, ann: Mapping[str, str], spec: A.Annotation) -> None:
    found = spec.lookup(ann)
    if found is None:
        return
    key, text = found
    if spec is A.PROGRESS and text == "":
        return  # Knative skips an empty progress deadline
    try:
        nanos = parse_duration(text)
    except (ParseError, RangeError) as exc:
        out.add(RuleId.KNS101, key, text, f"{exc}", "write a duration such as 60s, 2m or 1h")
        return
    lo = None if spec.minimum is None else spec.minimum * SECOND
    hi = None if spec.maximum is None else spec.maximum * SECOND
    if (lo is not None and nanos < lo) or (hi is not None and nanos > hi):
        out.add(
            RuleId.KNS102,
            key,
            text,
            f"{text} is out of range: must be {_bounds_text(spec, 's')}",
            f"use a duration {_bounds_text(spec, 's')}, e.g. {_example_duration(spec)}",
        )
        return
    if spec.precision is not A.Precision.ANY and nanos % SECOND:
        out.add(
            RuleId.KNS103,
            key,
            text,
            f"{text} must be specified with at most second precision",
            f"round it to whole seconds, e.g. {max(nanos // SECOND, 1)}s",
        )


def _int32_ge0(out: Collector, ann: Mapping[str, str], spec: A.Annotation) -> tuple[int, bool]:
    """Knative's getIntGE0: (value, parsed); absent or broken counts as 0."""
    found = spec.lookup(ann)
    if found is None:
        return 0, False
    key, text = found
    try:
        value = parse_int(text, 32)
    except RangeError:
        out.add(
            RuleId.KNS102,
            key,
            text,
            f"{text} is out of range: must be between 0 and 2147483647",
            "use 0 or more",
        )
        return 0, False
    except ParseError:
        out.add(RuleId.KNS101, key, text, f"{text!r} is not a whole number", "write a whole number such as 1")
        return 0, False
    if value < 0:
        out.add(
            RuleId.KNS102,
            key,
            text,
            f"{text} is out of range: must be between 0 and 2147483647",
            "use 0 or more",
        )
        return 0, False
    return value, True


# Classes that scale on Knative's KPA keys, judged alike: Knative's KPA and knscale's own class
# (knscale's reconciler reads every KPA key with Knative's meaning, so knscale applies Knative's
# KPA checks to it, also those Knative runs only for an explicit kpa class annotation).
KPA_LIKE = (KPA_CLASS, KNSCALE_CLASS)


def knative_rules(
    out: Collector, ann: Mapping[str, str], class_value: str, asc: AutoscalerConfig, *, progress: bool
) -> None:
    # class
    if A.CLASS.name in ann:
        written = ann[A.CLASS.name]
        if written.endswith(DOMAIN_SUFFIX) and written not in (KPA_CLASS, HPA_CLASS):
            out.add(
                RuleId.KNS104,
                A.CLASS.name,
                written,
                f"{written!r} is not a Knative autoscaler class",
                f"use {KPA_CLASS} or {HPA_CLASS}",
            )
        elif written.lower() in ("kpa", "hpa"):
            # Knative accepts it (a custom class) and knscale renders nothing for a custom class:
            # a warning, KNS121 (it was KNS104, an error, before the severity audit).
            full = KPA_CLASS if written.lower() == "kpa" else HPA_CLASS
            out.add(
                RuleId.KNS121,
                A.CLASS.name,
                written,
                f"{written!r} is taken as a custom autoscaler class that nothing implements, so the revision "
                f"would never scale; did you mean {full}?",
                f"use {full}",
            )
    # min/max/activation-scale, with the cluster's max-scale-limit
    lo, _ = _int32_ge0(out, ann, A.MIN_SCALE)
    hi, hi_ok = _int32_ge0(out, ann, A.MAX_SCALE)
    max_found = A.MAX_SCALE.lookup(ann)
    min_found = A.MIN_SCALE.lookup(ann)
    if hi != 0 and hi < lo and max_found is not None:
        out.add(
            RuleId.KNS106,
            max_found[0],
            max_found[1],
            f"max-scale={hi} is less than min-scale={lo}"
            + (f" ({min_found[0]})" if min_found is not None and min_found[0] != A.MIN_SCALE.name else ""),
            f"raise {max_found[0]} to at least {lo}, or lower the minimum",
        )
    if max_found is not None and hi_ok and asc.max_scale_limit > 0:
        limit = asc.max_scale_limit
        if hi > limit:
            out.add(
                RuleId.KNS107,
                max_found[0],
                max_found[1],
                f"max-scale={hi} is out of bounds: the cluster's max-scale-limit allows 1 to {limit}",
                f"use a max-scale between 1 and {limit}",
            )
        elif hi == 0:
            out.add(
                RuleId.KNS107,
                max_found[0],
                max_found[1],
                f"max-scale=0 (unlimited), must be less than {limit} (the cluster's max-scale-limit)",
                f"use a max-scale between 1 and {limit}",
            )
    act = A.ACTIVATION_SCALE.lookup(ann)
    if act is not None:
        key, text = act
        try:
            activation = parse_int(text, 32)
        except (ParseError, RangeError):
            out.add(RuleId.KNS101, key, text, f"{text!r} is not a whole number", "write a whole number ≥ 2")
        else:
            message = None
            if lo > activation:
                message = f"min-scale={lo} is greater than activation-scale={activation}"
            elif hi != 0 and hi < activation:
                message = f"max-scale={hi} is less than activation-scale={activation}"
            elif activation < 2:
                message = f"activation-scale={activation} must be greater than 1"
            if message is not None:
                out.add(
                    RuleId.KNS108,
                    key,
                    text,
                    message,
                    "activation-scale must be ≥ 2, ≥ min-scale and ≤ max-scale (when max-scale is set)",
                )
    # floats
    for spec in (
        A.PANIC_WINDOW_PERCENTAGE,
        A.PANIC_THRESHOLD_PERCENTAGE,
        A.TARGET,
        A.TARGET_UTILIZATION,
        A.TARGET_BURST_CAPACITY,
    ):
        _check_float(out, ann, spec)
    # durations
    for spec in (A.WINDOW, A.RETENTION, A.SCALE_DOWN_DELAY):
        _check_duration(out, ann, spec)
    if progress:
        _check_duration(out, ann, A.PROGRESS)
    # metric, judged against the class annotation or the cluster's default class
    if A.METRIC.name in ann:
        metric = ann[A.METRIC.name]
        # Knative's PA defaulting writes metric "" for a class it does not know (knscale's): that
        # is the default, concurrency, as knscale's reconciler reads it.
        if class_value == KNSCALE_CLASS and metric == "":
            pass
        elif class_value in KPA_LIKE and metric not in ("concurrency", "rps"):
            fix = (
                f"set {A.CLASS.name}: {HPA_CLASS} to scale on {metric}"
                if metric
                else "use concurrency or rps"
            )
            out.add(
                RuleId.KNS105,
                A.METRIC.name,
                metric,
                f"metric {metric!r} is not supported by {class_value}, which scales on concurrency or rps",
                fix,
            )
        elif class_value == HPA_CLASS and metric == "":
            out.add(
                RuleId.KNS105,
                A.METRIC.name,
                metric,
                f"an empty metric is not supported by {HPA_CLASS}",
                "use cpu, memory or the name of a Prometheus metric",
            )
    # metric-aggregation-algorithm: Knative checks it only when the class annotation says kpa;
    # with the class left to the cluster default an unknown value silently means linear.
    agg = A.AGGREGATION.lookup(ann)
    if agg is not None and agg[1] != "" and class_value in KPA_LIKE and agg[1] not in A.AGGREGATION.choices:
        note = (
            ""
            if A.CLASS.name in ann
            else " (Knative does not check it without a class annotation, and averages linearly)"
        )
        # Knative refuses it only with an explicit class annotation; with the class from the
        # cluster default it silently averages linearly: then a warning (KNS122), as Knative.
        out.add(
            RuleId.KNS110 if A.CLASS.name in ann else RuleId.KNS122,
            agg[0],
            agg[1],
            f"{agg[1]!r} is not an aggregation algorithm{note}",
            "use linear or weighted-exponential",
        )
    # initial-scale, with the cluster's allow-zero-initial-scale
    init = A.INITIAL_SCALE.lookup(ann)
    if init is not None:
        key, text = init
        try:
            initial = parse_int(text, 64)
        except (ParseError, RangeError):
            out.add(
                RuleId.KNS101, key, text, f"{text!r} is not a whole number", "write a whole number such as 1"
            )
        else:
            if initial < 0:
                out.add(
                    RuleId.KNS102, key, text, f"{key} must be greater than or equal to 0", "use 0 or more"
                )
            elif initial > 2**31 - 1:
                # Knative admits it (strconv.Atoi) and uses the cluster's initial-scale, and so
                # does knscale's rendering: a warning (KNS123; it was KNS102, an error).
                out.add(
                    RuleId.KNS123,
                    key,
                    text,
                    f"{text} does not fit a 32-bit integer; "
                    "Knative would silently use the cluster's initial-scale",
                    "use a realistic replica count",
                )
            elif initial == 0 and not asc.allow_zero_initial_scale:
                out.add(
                    RuleId.KNS109,
                    key,
                    text,
                    f"{key}=0 not allowed by cluster (config-autoscaler allow-zero-initial-scale is false)",
                    "use initial-scale 1 or more, or enable allow-zero-initial-scale in config-autoscaler",
                )
