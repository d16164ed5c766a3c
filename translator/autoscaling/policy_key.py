"""`knscale.dev/scaling-policy`: which policy knscale's KPA loop runs (KNS128, KNS129)."""

from __future__ import annotations

from collections.abc import Mapping

from translator.annotations import table as A
from translator.autoscaling.collector import Collector
from translator.config.autoscaler import KPA_CLASS
from translator.core.rule_ids import RuleId


def scaling_policy_findings(out: Collector, ann: Mapping[str, str], role: str, family: str | None) -> None:
    """Unknown policy name: an error (the reconciler would not know what to run). The key where
    nothing reads it — anything but a plain kpa-class Deployment/StatefulSet, whose scaling
    knscale's own loop does — is a warning."""
    value = ann.get(A.KNSCALE_SCALING_POLICY)
    if value is None:
        return
    choices = ", ".join(A.SCALING_POLICIES)
    if value not in A.SCALING_POLICIES:
        hint = (
            " (the cold-start-aware policy is called knscale)"
            if value.strip().lower() == "predictive"
            else ""
        )
        out.add(
            RuleId.KNS128,
            A.KNSCALE_SCALING_POLICY,
            value,
            f"{A.KNSCALE_SCALING_POLICY}: {value!r} is not a scaling policy; known: {choices}{hint}",
            f"set it to one of {choices}",
        )
        return
    if role != "workload" or family != A.KPA:
        where = (
            "on a Knative object (Knative's own autoscaler scales revisions)"
            if role != "workload"
            else ("with this autoscaler class")
        )
        out.add(
            RuleId.KNS129,
            A.KNSCALE_SCALING_POLICY,
            value,
            f"{A.KNSCALE_SCALING_POLICY} has no effect {where}: only knscale's KPA loop reads it, on a "
            f"Deployment or StatefulSet of class {KPA_CLASS}",
            f"remove it, or set {A.CLASS.name}: {KPA_CLASS} on a Deployment/StatefulSet",
        )
