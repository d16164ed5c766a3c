"""Validate one Kubernetes object: which kinds are checked and where each key is read.

Design decision ("Kinds checked"): Knative Service, Configuration, Revision, PodAutoscaler;
Deployment and StatefulSet; Pod. On Knative Service/Configuration both autoscaling and model
keys are read from `spec.template.metadata.annotations`; on a Revision from its own
`metadata.annotations`; on a PodAutoscaler autoscaling keys only; on a Deployment/StatefulSet
autoscaling keys from `metadata.annotations` and model keys from the pod template; on a Pod
model keys only. `knscale lint`, `knscale translate` and the webhook's `/validate` all call
`validate_object`, so one rule has one id and one text wherever it fires.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from translator.annotations.table import LINT_IGNORE
from translator.autoscaling.checks import autoscaling_findings, misplaced_findings
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.objects import (
    META_ANNOTATIONS,
    AnnotationSite,
    annotation_sites,
    controlled_by_revision,
    dig_map,
    has_revision_label,
    object_ref,
    role_of,
    text_of,
)
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.injection.checks import model_findings

_RULE_ID = re.compile(r"(?<![A-Za-z0-9])KNS[0-9]{3}(?![0-9])")  # KNS1111 is not KNS111


def validate_object(obj: Mapping[str, Any], config: KnscaleConfig, *, suppress: bool = True) -> list[Finding]:
    """Every finding for one object, errors and warnings, in a stable order.

    With `suppress` (the default, used by lint and `/validate` alike) the rule ids listed in the
    object's `knscale.dev/lint-ignore` annotation are dropped — except errors of policy rules
    (KNS0xx) and input errors (KNS9xx). The annotation is written by the same person whose
    object is being judged, so in the webhook it must not be able to switch off the policy the
    cluster enforces (image and location allowlists, path traversal…); for Knative's and KEDA's
    own rules (KNS1xx/KNS2xx) suppression only skips knscale's early warning, Knative and KEDA
    still judge the object themselves. Lint applies the same exemption, so whatever lint passes
    the webhook admits.
    """
    role = role_of(obj)
    if role is None:
        return []
    ref = object_ref(obj)
    kind = text_of(obj.get("kind"))
    findings: list[Finding] = _metadata_findings(obj, ref)
    for site in annotation_sites(obj):
        findings += _shape_findings(obj, site, ref)
        if not all(isinstance(k, str) for k in site.annotations):
            # KNS903 names each non-string key (parsed YAML: `1: x`, `~: y`, a date); the rules
            # below read keys as text, so they judge the string keys only.
            site = dataclasses.replace(
                site, annotations={k: v for k, v in site.annotations.items() if isinstance(k, str)}
            )
        if site.model_keys:
            findings += model_findings(obj, site, ref, config)
        if site.autoscaling_keys:
            findings += autoscaling_findings(obj, role, site, ref, config)
        elif _judges_misplaced_autoscaling(obj, role):
            findings += misplaced_findings(site, ref, kind)
    findings = _dedupe(findings)
    if suppress:
        findings = apply_lint_ignore(obj, findings)
    return findings


def _metadata_findings(obj: Mapping[str, Any], ref: ObjectRef) -> list[Finding]:
    """KNS902: names that are not strings would otherwise end up in rendered objects as Python
    reprs (`['a', 'b']-00001`)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return []
    return [
        RULES[RuleId.KNS902].finding(
            ref,
            f"metadata.{field}",
            None,
            meta[field],
            f"metadata.{field} must be a string, got {_type_name(meta[field])}",
            f"write metadata.{field} as a string",
        )
        for field in ("name", "generateName", "namespace")
        if meta.get(field) is not None and not isinstance(meta[field], str)
    ]


def _shape_findings(obj: Mapping[str, Any], site: AnnotationSite, ref: ObjectRef) -> list[Finding]:
    """KNS903: the API server accepts only a map of strings to strings (YAML `min-scale: 3` is not)."""
    raw: Any = obj
    for part in site.path.split("."):
        raw = raw.get(part) if isinstance(raw, Mapping) else None
    rule = RULES[RuleId.KNS903]
    if raw is not None and not isinstance(raw, Mapping):
        return [
            rule.finding(
                ref,
                site.path,
                None,
                raw,
                f"annotations must be a map, got {type(raw).__name__}",
                "write key: value pairs",
            )
        ]
    out = []
    written_map: Mapping[Any, Any] = site.annotations  # parsed YAML: keys need not be strings
    for key, value in written_map.items():
        if isinstance(value, str) and isinstance(key, str):
            continue
        if not isinstance(key, str):
            # YAML `42: x` or `~: x`: the key is the problem, whatever the value.
            written = _yaml_scalar(key) or "~"
            out.append(
                rule.finding(
                    ref,
                    site.path,
                    written,
                    value,
                    f"annotation keys must be strings, got {_type_name(key)}; {_REFUSED}",
                    f'quote the key: "{written}": …',
                )
            )
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            fix = f'quote it: {key}: "{_yaml_scalar(value)}"'
        else:  # a list, a map, binary …: shown by type only (an alias bomb must not be expanded)
            fix = f"write one string (structured data as a JSON string, e.g. {key}: '[\"a\"]')"
        out.append(
            rule.finding(
                ref,
                site.path,
                key,
                value,
                f"annotation values must be strings, got {_type_name(value)}; {_REFUSED}",
                fix,
            )
        )
    return out


_REFUSED = "the API server refuses the object"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _yaml_scalar(value: Any) -> str:
    """A YAML scalar as written (only called on None, bool, int, float and str)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _judges_misplaced_autoscaling(obj: Mapping[str, Any], role: str) -> bool:
    """Autoscaling keys on pods and pod templates do nothing — unless Knative put them there."""
    if role == "workload":
        return not controlled_by_revision(obj)
    if role == "pod":
        return not has_revision_label(dig_map(obj, "metadata").get("labels"))
    return False


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for f in findings:
        key = (f.rule_id, f.path, f.key)
        if f.rule_id == RuleId.KNS903 and key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def ignored_rule_ids(obj: Mapping[str, Any]) -> frozenset[str]:
    value = dig_map(obj, META_ANNOTATIONS).get(LINT_IGNORE)
    return frozenset(_RULE_ID.findall(value.upper())) if isinstance(value, str) else frozenset()


def suppressible(finding: Finding) -> bool:
    """Policy errors (KNS0xx) and input errors (KNS9xx) cannot be switched off by the object."""
    if finding.rule_id.startswith("KNS9"):
        return False
    return not (finding.rule_id.startswith("KNS0") and finding.is_error)


def apply_lint_ignore(obj: Mapping[str, Any], findings: list[Finding]) -> list[Finding]:
    ignored = ignored_rule_ids(obj)
    if not ignored:
        return findings
    return [f for f in findings if f.rule_id not in ignored or not suppressible(f)]
