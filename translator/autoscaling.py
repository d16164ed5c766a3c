"""Autoscaling annotations → findings, with Knative's rules and then autoscaler-keda's.

Three layers, one validation step that collects every problem at once:
1. Knative's own webhook rules (`annotation_validation.go`), with the cluster's
   config-autoscaler (`max-scale-limit`, `allow-zero-initial-scale`, the default class): KNS101–110.
   Ranges come from the table in `translator/annotations.py`.
2. Where Knative is silent but the user is surely wrong: unknown and misspelt keys, shadowed
   aliases, keys the chosen class ignores, a target above containerConcurrency, a model download
   without a progress deadline: KNS111–120 (warnings unless Knative's behaviour is certainly
   broken).
3. For HPA-class revisions, everything autoscaler-keda, KEDA or the HPA API would refuse later,
   found by rendering the ScaledObject exactly as the reconciler will (`translator/keda.py`):
   KNS2xx. This layer runs once layer 1 passes, so a broken value is reported once, by the rule
   that owns it, not again by every consumer of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from translator import annotations as A
from translator import documents, keda, model_keys
from translator.autoscaler_config import HPA_CLASS, KPA_CLASS, AutoscalerConfig
from translator.config import KnscaleConfig
from translator.findings import Finding, ObjectRef
from translator.rules import RULES
from translator.values import SECOND, ParseError, RangeError, parse_duration, parse_float, parse_int

if TYPE_CHECKING:
    from translator.validate import AnnotationSite

META = "metadata.annotations"
DOMAIN_SUFFIX = ".knative.dev"


class _Collector:
    def __init__(self, ref: ObjectRef, path: str) -> None:
        self.ref = ref
        self.path = path
        self.findings: list[Finding] = []

    def add(self, rule_id: str, key: str | None, value: Any, message: str, fix: str | None = None) -> None:
        self.findings.append(RULES[rule_id].finding(self.ref, self.path, key, value, message, fix))

    @property
    def has_errors(self) -> bool:
        return any(f.is_error for f in self.findings)


def autoscaling_findings(
    obj: Mapping[str, Any], role: str, site: AnnotationSite, ref: ObjectRef, config: KnscaleConfig
) -> list[Finding]:
    """Every autoscaling finding for one annotations map of one object."""
    out = _Collector(ref, site.path)
    ann = site.annotations
    if role == "knative-template" and site.path == META:
        _on_service_metadata(out, ann, str(obj.get("kind", "")))
        return out.findings
    if role == "workload" and documents.controlled_by_revision(obj):
        return []  # Knative made it for a revision and copied the revision's annotations onto it
    strings = {k: v for k, v in ann.items() if isinstance(v, str)}  # non-strings: KNS903, in validate

    _key_spelling(out, strings)
    knative_site = role in ("knative-template", "revision", "podautoscaler")
    if role == "workload" and A.CLASS.name not in strings:
        present = [k for k in strings if k in A.AUTOSCALING_SPELLINGS]
        if present:
            out.add(
                "KNS117",
                present[0],
                strings[present[0]],
                f"{', '.join(present)} {'does' if len(present) == 1 else 'do'} nothing: knscale scales a "
                f"{obj.get('kind')} only when {A.CLASS.name} is set on it",
                f'add {A.CLASS.name}: "{KPA_CLASS}" (or "{HPA_CLASS}" for a KEDA ScaledObject)',
            )
        # Severity follows Knative: nothing reads these keys (Knative never sees a plain
        # Deployment, knscale skips one without a class), so a bad value is not refused; KNS117
        # already says they do nothing.
        return out.findings
    class_value = A.autoscaler_class(strings, config.autoscaler.pod_autoscaler_class)
    _knative_rules(out, strings, class_value, config.autoscaler, progress=knative_site)
    if out.has_errors:
        return out.findings

    family = A.class_family(class_value)
    _class_effects(out, strings, family, class_value)
    revision = documents.revision_of(obj, role, config.autoscaler.pod_autoscaler_class)
    if revision is not None and family == A.KPA:
        _concurrency_cap(out, strings, revision.container_concurrency)
    _effective_bounds(out, strings, config.autoscaler)
    if knative_site and role != "podautoscaler":
        _progress_deadline(out, strings)
    # (a bring-your-own ScaledObject is the user's: knscale renders none to judge)
    renders_keda = family == A.HPA and keda.should_auto_create(strings, config.keda)
    _silent_traps(
        out, obj, role, strings, family if family != A.HPA or renders_keda else None, config.autoscaler
    )
    if family == A.HPA and revision is not None and keda.should_auto_create(strings, config.keda):
        rendered = keda.render_scaled_object(revision.hpa(), config.autoscaler, config.keda)
        for issue in rendered.issues:
            out.add(issue.rule_id, issue.key, issue.value, issue.message, issue.fix)
    elif family == A.HPA and revision is not None:
        out.add(
            "KNS223",
            A.AUTO_CREATE.name if A.AUTO_CREATE.lookup(strings) else None,
            strings.get(A.AUTO_CREATE.name),
            f"ScaledObject auto-creation is off: yours must target {revision.target.name} and set "
            f"spec.advanced.horizontalPodAutoscalerConfig.name: {revision.name}",
            "track each new revision in your ScaledObject, or turn auto-creation back on",
        )
    return out.findings


def _on_service_metadata(out: _Collector, ann: Mapping[str, Any], kind: str) -> None:
    for key, value in ann.items():
        if key.startswith(A.AUTOSCALING_PREFIX):
            out.add(
                "KNS114",
                key,
                value,
                f"autoscaling annotations on a {kind}'s own metadata are refused by Knative; "
                "they must be put under spec.template.metadata.annotations to work",
                f"move {key} to spec.template.metadata.annotations",
            )


def misplaced_findings(site: AnnotationSite, ref: ObjectRef, kind: str) -> list[Finding]:
    """Autoscaling keys where knscale does not read them: a pod template of a workload, or a Pod."""
    out = _Collector(ref, site.path)
    for key, value in site.annotations.items():
        if key in A.AUTOSCALING_SPELLINGS:
            where = "on a Pod" if kind == "Pod" else "in a pod template"
            fix = (
                "put it on the Knative Service's spec.template, or on the Deployment's own metadata"
                if kind == "Pod"
                else "move it to the workload's metadata.annotations"
            )
            out.add("KNS116", key, value, f"{key} has no effect {where}", fix)
    return out.findings


def _key_spelling(out: _Collector, ann: Mapping[str, str]) -> None:
    """Unknown keys (KNS111), shadowed aliases (KNS112), legacy aliases (KNS113)."""
    for key, value in ann.items():
        if key.startswith(A.AUTOSCALING_PREFIX):
            if key in A.AUTOSCALING_SPELLINGS:
                continue
        else:
            prefix, sep, _ = key.partition("/")
            if not sep or not A.looks_like_autoscaling_prefix(prefix):
                continue
        hint = A.did_you_mean(key)
        if hint is not None:
            message = f"Knative ignores unknown key {key}; did you mean {hint}?"
            fix = f"rename it to {hint}"
        else:
            message = f"Knative ignores unknown key {key}"
            fix = "remove it; docs/rules.md lists the keys Knative and autoscaler-keda read"
        finding = RULES["KNS111"].finding(out.ref, out.path, key, value, message, fix)
        if hint is not None:
            finding.extra["didYouMean"] = hint
        out.findings.append(finding)
    for spec in A.AUTOSCALING_KEYS:
        if not spec.aliases:
            continue
        present = [k for k in spec.keys if k in ann]
        if not present:
            continue
        winner = present[0]
        for loser in present[1:]:
            out.add(
                "KNS112",
                loser,
                ann[loser],
                f"{loser} is ignored because {winner} is also set (Knative reads {winner} first)",
                f"remove {loser}",
            )
        if winner != spec.name:
            out.add(
                "KNS113",
                winner,
                ann[winner],
                f"{winner} is a legacy alias of {spec.name}",
                f"rename it to {spec.name}",
            )


# ---- Knative's webhook rules ----------------------------------------------------------------


def _bounds_text(spec: A.Annotation, unit: str = "") -> str:
    lo = "" if spec.minimum is None else f"{spec.minimum:g}{unit}"
    hi = "" if spec.maximum is None else f"{spec.maximum:g}{unit}"
    if spec.maximum is None:
        return f"at least {lo}"
    return f"between {lo} and {hi}"


def _check_float(out: _Collector, ann: Mapping[str, str], spec: A.Annotation) -> None:
    found = spec.lookup(ann)
    if found is None:
        return
    key, text = found
    try:
        number = parse_float(text)
    except (ParseError, RangeError):
        out.add("KNS101", key, text, f"{text!r} is not a number", f"give a number {_bounds_text(spec)}")
        return
    if math.isnan(number) or math.isinf(number):
        out.add(
            "KNS101", key, text, f"{text!r} is not a finite number", f"give a number {_bounds_text(spec)}"
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
    out.add("KNS102", key, text, message, fix)


def _example_duration(spec: A.Annotation) -> str:
    low = spec.minimum or 0
    return f"{max(int(low), 60) if spec.maximum is None or spec.maximum >= 60 else int(low)}s"


def _check_duration(out: _Collector, ann: Mapping[str, str], spec: A.Annotation) -> None:
    found = spec.lookup(ann)
    if found is None:
        return
    key, text = found
    if spec is A.PROGRESS and text == "":
        return  # Knative skips an empty progress deadline
    try:
        nanos = parse_duration(text)
    except (ParseError, RangeError) as exc:
        out.add("KNS101", key, text, f"{exc}", "write a duration such as 60s, 2m or 1h")
        return
    lo = None if spec.minimum is None else spec.minimum * SECOND
    hi = None if spec.maximum is None else spec.maximum * SECOND
    if (lo is not None and nanos < lo) or (hi is not None and nanos > hi):
        out.add(
            "KNS102",
            key,
            text,
            f"{text} is out of range: must be {_bounds_text(spec, 's')}",
            f"use a duration {_bounds_text(spec, 's')}, e.g. {_example_duration(spec)}",
        )
        return
    if spec.precision is not A.Precision.ANY and nanos % SECOND:
        out.add(
            "KNS103",
            key,
            text,
            f"{text} must be specified with at most second precision",
            f"round it to whole seconds, e.g. {max(nanos // SECOND, 1)}s",
        )


def _int32_ge0(out: _Collector, ann: Mapping[str, str], spec: A.Annotation) -> tuple[int, bool]:
    """Knative's getIntGE0: (value, parsed); absent or broken counts as 0."""
    found = spec.lookup(ann)
    if found is None:
        return 0, False
    key, text = found
    try:
        value = parse_int(text, 32)
    except RangeError:
        out.add(
            "KNS102", key, text, f"{text} is out of range: must be between 0 and 2147483647", "use 0 or more"
        )
        return 0, False
    except ParseError:
        out.add("KNS101", key, text, f"{text!r} is not a whole number", "write a whole number such as 1")
        return 0, False
    if value < 0:
        out.add(
            "KNS102", key, text, f"{text} is out of range: must be between 0 and 2147483647", "use 0 or more"
        )
        return 0, False
    return value, True


def _knative_rules(
    out: _Collector, ann: Mapping[str, str], class_value: str, asc: AutoscalerConfig, *, progress: bool
) -> None:
    # class
    if A.CLASS.name in ann:
        written = ann[A.CLASS.name]
        if written.endswith(DOMAIN_SUFFIX) and written not in (KPA_CLASS, HPA_CLASS):
            out.add(
                "KNS104",
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
                "KNS121",
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
            "KNS106",
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
                "KNS107",
                max_found[0],
                max_found[1],
                f"max-scale={hi} is out of bounds: the cluster's max-scale-limit allows 1 to {limit}",
                f"use a max-scale between 1 and {limit}",
            )
        elif hi == 0:
            out.add(
                "KNS107",
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
            out.add("KNS101", key, text, f"{text!r} is not a whole number", "write a whole number ≥ 2")
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
                    "KNS108",
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
        if class_value == KPA_CLASS and metric not in ("concurrency", "rps"):
            fix = (
                f"set {A.CLASS.name}: {HPA_CLASS} to scale on {metric}"
                if metric
                else "use concurrency or rps"
            )
            out.add(
                "KNS105",
                A.METRIC.name,
                metric,
                f"metric {metric!r} is not supported by {KPA_CLASS}, which scales on concurrency or rps",
                fix,
            )
        elif class_value == HPA_CLASS and metric == "":
            out.add(
                "KNS105",
                A.METRIC.name,
                metric,
                f"an empty metric is not supported by {HPA_CLASS}",
                "use cpu, memory or the name of a Prometheus metric",
            )
    # metric-aggregation-algorithm: Knative checks it only when the class annotation says kpa;
    # with the class left to the cluster default an unknown value silently means linear.
    agg = A.AGGREGATION.lookup(ann)
    if agg is not None and agg[1] != "" and class_value == KPA_CLASS and agg[1] not in A.AGGREGATION.choices:
        note = (
            ""
            if A.CLASS.name in ann
            else " (Knative does not check it without a class annotation, and averages linearly)"
        )
        # Knative refuses it only with an explicit class annotation; with the class from the
        # cluster default it silently averages linearly: then a warning (KNS122), as Knative.
        out.add(
            "KNS110" if A.CLASS.name in ann else "KNS122",
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
            out.add("KNS101", key, text, f"{text!r} is not a whole number", "write a whole number such as 1")
        else:
            if initial < 0:
                out.add("KNS102", key, text, f"{key} must be greater than or equal to 0", "use 0 or more")
            elif initial > 2**31 - 1:
                # Knative admits it (strconv.Atoi) and uses the cluster's initial-scale, and so
                # does knscale's rendering: a warning (KNS123; it was KNS102, an error).
                out.add(
                    "KNS123",
                    key,
                    text,
                    f"{text} does not fit a 32-bit integer; "
                    "Knative would silently use the cluster's initial-scale",
                    "use a realistic replica count",
                )
            elif initial == 0 and not asc.allow_zero_initial_scale:
                out.add(
                    "KNS109",
                    key,
                    text,
                    f"{key}=0 not allowed by cluster (config-autoscaler allow-zero-initial-scale is false)",
                    "use initial-scale 1 or more, or enable allow-zero-initial-scale in config-autoscaler",
                )


# ---- knscale's own checks -------------------------------------------------------------------


def _class_effects(out: _Collector, ann: Mapping[str, str], family: str | None, class_value: str) -> None:
    if family is None:
        return  # a custom autoscaler: its keys are its business
    for spec in A.AUTOSCALING_KEYS:
        found = spec.lookup(ann)
        if found is None or family in spec.classes:
            continue
        if spec.owner is A.Owner.AUTOSCALER_KEDA:
            out.add(
                "KNS217",
                found[0],
                found[1],
                f"{found[0]} is read by autoscaler-keda, which scales only {HPA_CLASS} revisions; "
                f"this one is {class_value}",
                f"set {A.CLASS.name}: {HPA_CLASS}, or remove {found[0]}",
            )
        else:
            out.add(
                "KNS115",
                found[0],
                found[1],
                f"{found[0]} has no effect with {class_value}",
                f"remove it, or use {KPA_CLASS if family == A.HPA else HPA_CLASS}",
            )


def _concurrency_cap(out: _Collector, ann: Mapping[str, str], container_concurrency: int) -> None:
    if container_concurrency <= 0 or ann.get(A.METRIC.name, "concurrency") != "concurrency":
        return
    target = A.read_float(ann, A.TARGET)
    if target is not None and target > container_concurrency:
        out.add(
            "KNS119",
            A.TARGET.name,
            ann[A.TARGET.name],
            f"target {ann[A.TARGET.name]} is above containerConcurrency {container_concurrency}; "
            f"Knative silently uses {container_concurrency}",
            f"lower the target to at most {container_concurrency}, or raise containerConcurrency",
        )


def _effective_bounds(out: _Collector, ann: Mapping[str, str], asc: AutoscalerConfig) -> None:
    ann_min = A.read_int32(ann, A.MIN_SCALE)
    ann_max = A.read_int32(ann, A.MAX_SCALE)
    if ann_min is not None and ann_max is not None:
        return  # both from annotations: Knative's own rule (KNS106) judged the pair
    lo = asc.min_scale if ann_min is None else ann_min
    hi = asc.max_scale if ann_max is None else ann_max
    if hi > 0 and lo > hi:
        found = A.MIN_SCALE.lookup(ann) or A.MAX_SCALE.lookup(ann)
        key, value = found if found is not None else (None, None)
        out.add(
            "KNS120",
            key,
            value,
            f"effective min-scale {lo} exceeds effective max-scale {hi} (one comes from config-autoscaler); "
            "the revision is pinned at max-scale",
            "set both min-scale and max-scale on the revision",
        )


QUEUE_PROXY = "queue-proxy"
INT32_MAX = 2**31 - 1


def _silent_traps(
    out: _Collector,
    obj: Mapping[str, Any],
    role: str,
    ann: Mapping[str, str],
    family: str | None,
    asc: AutoscalerConfig,
) -> None:
    """Settings every component accepts that quietly do something else than they say (KNS124–126)."""
    plain = role == "workload"
    prometheus = isinstance(ann.get(A.KNSCALE_PROMETHEUS_QUERY), str) and bool(
        ann[A.KNSCALE_PROMETHEUS_QUERY].strip()
    )
    if plain and family == A.KPA and not prometheus:
        containers = documents.dig(obj, "spec", "template", "spec", "containers")
        names = (
            {c.get("name") for c in containers if isinstance(c, Mapping)}
            if isinstance(containers, list)
            else set()
        )
        if QUEUE_PROXY not in names:
            out.add(
                "KNS124",
                A.CLASS.name,
                ann.get(A.CLASS.name),
                f"knscale's KPA loop reads a plain {obj.get('kind')}'s load from a {QUEUE_PROXY} container "
                f"or from {A.KNSCALE_PROMETHEUS_QUERY}; this one has neither, so it is not scaled unless the "
                "reconciler runs with a default Prometheus query",
                f"set {A.KNSCALE_PROMETHEUS_QUERY} to a query of its requests (e.g. at the ingress)",
            )
    found_min = A.MIN_SCALE.lookup(ann)
    if found_min is not None and A.read_int32(ann, A.MIN_SCALE) == 0:
        why = None
        if family == A.KPA and not asc.enable_scale_to_zero:
            why = "config-autoscaler has enable-scale-to-zero: false, so the KPA keeps 1 replica"
        elif family == A.KPA and plain and not prometheus:
            why = (
                f"with no activator in front of a plain {obj.get('kind')}, knscale keeps 1 replica unless "
                f"{A.KNSCALE_PROMETHEUS_QUERY} counts its requests"
            )
        elif (
            family == A.HPA
            and A.metric_of(ann, HPA_CLASS) in ("cpu", "memory")
            and A.EXTRA_TRIGGERS.lookup(ann) is None
            and A.OVERRIDE.lookup(ann) is None
        ):
            why = "KEDA cannot scale on cpu or memory alone to zero: the ScaledObject gets minReplicaCount 1"
        if why is not None:
            out.add(
                "KNS125",
                found_min[0],
                found_min[1],
                f"{found_min[0]}: 0 never takes effect: {why}",
                "set it to 1 so the manifest says what happens, or add a source that sees idle traffic",
            )
    if family == A.HPA and A.MAX_SCALE.lookup(ann) is None and asc.max_scale == 0:
        out.add(
            "KNS126",
            None,
            None,
            f"no max-scale (and config-autoscaler max-scale is 0): the ScaledObject or HPA gets "
            f"maxReplicaCount {INT32_MAX}, so a metric spike scales without bound",
            f'set {A.MAX_SCALE.name}, e.g. "10"',
        )


def _progress_deadline(out: _Collector, ann: Mapping[str, str]) -> None:
    if A.PROGRESS.name in ann:
        return
    flag = ann.get(model_keys.INJECT, ann.get(model_keys.BARE_INJECT))
    if flag is None or flag.strip().lower() != "true":
        return
    key = model_keys.INJECT if model_keys.INJECT in ann else model_keys.BARE_INJECT
    out.add(
        "KNS118",
        key,
        flag,
        "the model is downloaded before the container starts, and the download counts against "
        "Knative's progress deadline (600s by default) — a large model can fail the revision",
        f'set {A.PROGRESS.name} on the template, e.g. "1800s", longer than the download takes',
    )
