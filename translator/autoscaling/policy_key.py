"""`knscale.dev/scaling-policy`: which policy knscale runs (KNS128, KNS129).

Two loops read it: knscale's KPA loop for plain kpa-class Deployments/StatefulSets, and the
PodAutoscaler loop for Knative revisions of knscale's class (the PA carries the revision's
annotations). Anywhere else nothing reads it."""

from __future__ import annotations

from collections.abc import Mapping

from translator.annotations import table as A
from translator.autoscaling.collector import Collector
from translator.config.autoscaler import KNSCALE_CLASS, KPA_CLASS
from translator.core.rule_ids import RuleId


def scaling_policy_findings(
    out: Collector, ann: Mapping[str, str], role: str, family: str | None, class_value: str
) -> None:
    """Unknown policy name: an error (the reconciler would not know what to run). The key where
    nothing reads it — anything but a plain kpa-class Deployment/StatefulSet or a Knative object
    of knscale's class — is a warning."""
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
    if role == "workload":
        read = family == A.KPA and class_value != KNSCALE_CLASS  # the KPA loop
    else:
        read = class_value == KNSCALE_CLASS  # the PodAutoscaler loop
    if read:
        return
    where = (
        "on a Knative object of this autoscaler class (Knative's own autoscaler scales it)"
        if role != "workload"
        else "with this autoscaler class"
    )
    out.add(
        RuleId.KNS129,
        A.KNSCALE_SCALING_POLICY,
        value,
        f"{A.KNSCALE_SCALING_POLICY} has no effect {where}: knscale reads it on a Deployment or "
        f"StatefulSet of class {KPA_CLASS} and on a Knative revision of class {KNSCALE_CLASS}",
        f"remove it, or set {A.CLASS.name}: {KNSCALE_CLASS} on the Knative object "
        f"({KPA_CLASS} on a Deployment/StatefulSet)",
    )
