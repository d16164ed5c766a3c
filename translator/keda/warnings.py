"""Warnings about an HPA-class revision: keys that do nothing, and prerequisites KEDA checks
at admission (resource requests for cpu/memory triggers)."""

from __future__ import annotations

from collections.abc import Mapping

from translator.annotations import table as A
from translator.config.autoscaler import HPA_CLASS
from translator.core.rule_ids import RuleId
from translator.core.values import ParseError, parse_bool
from translator.keda.types import RESOURCE_TRIGGERS, HpaRevision, Issue, annotation_issue

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


def revision_warnings(rev: HpaRevision) -> list[Issue]:
    ann = rev.annotations
    out: list[Issue] = []
    auto = A.AUTO_CREATE.lookup(ann)
    if auto is not None and isinstance(auto[1], str):
        try:
            parse_bool(auto[1])
        except ParseError:
            out.append(
                Issue(
                    RuleId.KNS218,
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
                annotation_issue(
                    RuleId.KNS216,
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
                    RuleId.KNS220,
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
                    annotation_issue(
                        RuleId.KNS219,
                        A.METRIC,
                        ann,
                        f"container {name} has no {metric} request; KEDA refuses a {metric} trigger unless "
                        "every container requests it (or a namespace LimitRange supplies a default)",
                        f"set resources.requests.{metric} on container {name}",
                    )
                )
    return out
