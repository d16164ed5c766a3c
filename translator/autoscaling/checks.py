"""Autoscaling annotations → findings, with Knative's rules and then autoscaler-keda's.

Three layers, one validation step that collects every problem at once:
1. Knative's own webhook rules (`annotation_validation.go`, in `knative.py`), with the cluster's
   config-autoscaler (`max-scale-limit`, `allow-zero-initial-scale`, the default class): KNS101–110.
   Ranges come from the table in `translator/annotations/table.py`.
2. Where Knative is silent but the user is surely wrong: unknown and misspelt keys, shadowed
   aliases, keys the chosen class ignores, a target above containerConcurrency, a model download
   without a progress deadline: KNS111–120 (warnings unless Knative's behaviour is certainly
   broken).
3. For HPA-class revisions, everything autoscaler-keda, KEDA or the HPA API would refuse later,
   found by rendering the ScaledObject exactly as the reconciler will (`translator/keda/render.py`):
   KNS2xx. This layer runs once layer 1 passes, so a broken value is reported once, by the rule
   that owns it, not again by every consumer of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations import model_keys
from translator.annotations import table as A
from translator.autoscaling.collector import Collector
from translator.autoscaling.knative import knative_rules
from translator.autoscaling.policy_key import scaling_policy_findings
from translator.autoscaling.traps import silent_traps
from translator.config.autoscaler import HPA_CLASS, KNSCALE_CLASS, KPA_CLASS, AutoscalerConfig
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.objects import META_ANNOTATIONS, AnnotationSite, controlled_by_revision, text_of
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.keda.render import render_scaled_object, should_auto_create
from translator.keda.revision import revision_of


def autoscaling_findings(
    obj: Mapping[str, Any], role: str, site: AnnotationSite, ref: ObjectRef, config: KnscaleConfig
) -> list[Finding]:
    """Every autoscaling finding for one annotations map of one object."""
    out = Collector(ref, site.path)
    ann = site.annotations
    if role == "knative-template" and site.path == META_ANNOTATIONS:
        _on_service_metadata(out, ann, text_of(obj.get("kind")))
        return out.findings
    if role == "workload" and controlled_by_revision(obj):
        return []  # Knative made it for a revision and copied the revision's annotations onto it
    strings = {k: v for k, v in ann.items() if isinstance(v, str)}  # non-strings: KNS903, in validate

    _key_spelling(out, strings)
    knative_site = role in ("knative-template", "revision", "podautoscaler")
    if role == "workload" and A.CLASS.name not in strings:
        present = [k for k in strings if k in A.AUTOSCALING_SPELLINGS]
        if present:
            out.add(
                RuleId.KNS117,
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
    knative_rules(out, strings, class_value, config.autoscaler, progress=knative_site)
    family = A.class_family(class_value)
    scaling_policy_findings(out, strings, role, family, class_value)
    if out.has_errors:
        return out.findings

    _class_effects(out, strings, family, class_value)
    if role == "workload" and class_value == KNSCALE_CLASS:
        # knscale's class is a PodAutoscaler class: only Knative revisions have one. A plain
        # workload with it is scaled by nothing (knscale's own loop takes the kpa class).
        out.add(
            RuleId.KNS127,
            A.CLASS.name,
            class_value,
            f"{KNSCALE_CLASS} is a PodAutoscaler class for Knative revisions; nothing scales a plain "
            f"{obj.get('kind')} that carries it",
            f"use {KPA_CLASS} (knscale's KPA loop), or run it as a Knative Service",
        )
        family = None  # nothing reads its keys: no traps to report either
    revision = revision_of(obj, role, config.autoscaler.pod_autoscaler_class)
    if revision is not None and family == A.KPA:
        _concurrency_cap(out, strings, revision.container_concurrency)
    _effective_bounds(out, strings, config.autoscaler)
    if knative_site and role != "podautoscaler":
        _progress_deadline(out, strings)
    # (a bring-your-own ScaledObject is the user's: knscale renders none to judge)
    renders_keda = family == A.HPA and should_auto_create(strings, config.keda)
    silent_traps(
        out, obj, role, strings, family if family != A.HPA or renders_keda else None, config.autoscaler
    )
    if family == A.HPA and revision is not None and should_auto_create(strings, config.keda):
        rendered = render_scaled_object(revision.hpa, config.autoscaler, config.keda)
        for issue in rendered.issues:
            out.add(issue.rule_id, issue.key, issue.value, issue.message, issue.fix)
    elif family == A.HPA and revision is not None:
        out.add(
            RuleId.KNS223,
            A.AUTO_CREATE.name if A.AUTO_CREATE.lookup(strings) else None,
            strings.get(A.AUTO_CREATE.name),
            f"ScaledObject auto-creation is off: yours must target {revision.target.name} and set "
            f"spec.advanced.horizontalPodAutoscalerConfig.name: {revision.name}",
            "track each new revision in your ScaledObject, or turn auto-creation back on",
        )
    return out.findings


def _on_service_metadata(out: Collector, ann: Mapping[str, Any], kind: str) -> None:
    for key, value in ann.items():
        if key.startswith(A.AUTOSCALING_PREFIX):
            out.add(
                RuleId.KNS114,
                key,
                value,
                f"autoscaling annotations on a {kind}'s own metadata are refused by Knative; "
                "they must be put under spec.template.metadata.annotations to work",
                f"move {key} to spec.template.metadata.annotations",
            )


def misplaced_findings(site: AnnotationSite, ref: ObjectRef, kind: str) -> list[Finding]:
    """Autoscaling keys where knscale does not read them: a pod template of a workload, or a Pod."""
    out = Collector(ref, site.path)
    for key, value in site.annotations.items():
        if key in A.AUTOSCALING_SPELLINGS:
            where = "on a Pod" if kind == "Pod" else "in a pod template"
            fix = (
                "put it on the Knative Service's spec.template, or on the Deployment's own metadata"
                if kind == "Pod"
                else "move it to the workload's metadata.annotations"
            )
            out.add(RuleId.KNS116, key, value, f"{key} has no effect {where}", fix)
    return out.findings


def _key_spelling(out: Collector, ann: Mapping[str, str]) -> None:
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
        finding = RULES[RuleId.KNS111].finding(out.ref, out.path, key, value, message, fix)
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
                RuleId.KNS112,
                loser,
                ann[loser],
                f"{loser} is ignored because {winner} is also set (Knative reads {winner} first)",
                f"remove {loser}",
            )
        if winner != spec.name:
            out.add(
                RuleId.KNS113,
                winner,
                ann[winner],
                f"{winner} is a legacy alias of {spec.name}",
                f"rename it to {spec.name}",
            )


# ---- knscale's own checks -------------------------------------------------------------------


def _class_effects(out: Collector, ann: Mapping[str, str], family: str | None, class_value: str) -> None:
    if family is None:
        return  # a custom autoscaler: its keys are its business
    for spec in A.AUTOSCALING_KEYS:
        found = spec.lookup(ann)
        if found is None or family in spec.classes:
            continue
        if spec.owner is A.Owner.AUTOSCALER_KEDA:
            out.add(
                RuleId.KNS217,
                found[0],
                found[1],
                f"{found[0]} is read by autoscaler-keda, which scales only {HPA_CLASS} revisions; "
                f"this one is {class_value}",
                f"set {A.CLASS.name}: {HPA_CLASS}, or remove {found[0]}",
            )
        else:
            out.add(
                RuleId.KNS115,
                found[0],
                found[1],
                f"{found[0]} has no effect with {class_value}",
                f"remove it, or use {KPA_CLASS if family == A.HPA else HPA_CLASS}",
            )


def _concurrency_cap(out: Collector, ann: Mapping[str, str], container_concurrency: int) -> None:
    if container_concurrency <= 0 or ann.get(A.METRIC.name, "concurrency") != "concurrency":
        return
    target = A.read_float(ann, A.TARGET)
    if target is not None and target > container_concurrency:
        out.add(
            RuleId.KNS119,
            A.TARGET.name,
            ann[A.TARGET.name],
            f"target {ann[A.TARGET.name]} is above containerConcurrency {container_concurrency}; "
            f"Knative silently uses {container_concurrency}",
            f"lower the target to at most {container_concurrency}, or raise containerConcurrency",
        )


def _effective_bounds(out: Collector, ann: Mapping[str, str], asc: AutoscalerConfig) -> None:
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
            RuleId.KNS120,
            key,
            value,
            f"effective min-scale {lo} exceeds effective max-scale {hi} (one comes from config-autoscaler); "
            "the revision is pinned at max-scale",
            "set both min-scale and max-scale on the revision",
        )


def _progress_deadline(out: Collector, ann: Mapping[str, str]) -> None:
    if A.PROGRESS.name in ann:
        return
    flag = ann.get(model_keys.INJECT, ann.get(model_keys.BARE_INJECT))
    if flag is None or flag.strip().lower() != "true":
        return
    key = model_keys.INJECT if model_keys.INJECT in ann else model_keys.BARE_INJECT
    out.add(
        RuleId.KNS118,
        key,
        flag,
        "the model is downloaded before the container starts, and the download counts against "
        "Knative's progress deadline (600s by default) — a large model can fail the revision",
        f'set {A.PROGRESS.name} on the template, e.g. "1800s", longer than the download takes',
    )
