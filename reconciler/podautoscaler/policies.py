"""Which policy scales a revision of knscale's class: ``knscale.dev/scaling-policy`` on the PA.

``knscale`` (the default) is knscale's cold-start-aware policy (``reconciler.kpa.predictive``);
``kpa`` is the faithful KPA. The annotation is read here with its default when absent; an unknown
value falls back to the default and is reported once per reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.kpa.policy import KpaPolicy, Policy
from reconciler.kpa.predictive import PredictivePolicy
from reconciler.runtime.objects import annotations_of

SCALING_POLICY = "knscale.dev/scaling-policy"
DEFAULT_POLICY_NAME = "knscale"
POLICIES: Mapping[str, Policy[Any]] = {"knscale": PredictivePolicy(), "kpa": KpaPolicy()}


@dataclass(frozen=True, slots=True)
class PolicyChoice:
    name: str
    policy: Policy[Any]
    problem: str | None = None


def choose_policy(pa: Mapping[str, Any]) -> PolicyChoice:
    written = annotations_of(pa).get(SCALING_POLICY)
    if written is None:
        return PolicyChoice(DEFAULT_POLICY_NAME, POLICIES[DEFAULT_POLICY_NAME])
    text = str(written).strip().lower()
    if text in POLICIES:
        return PolicyChoice(text, POLICIES[text])
    return PolicyChoice(
        DEFAULT_POLICY_NAME,
        POLICIES[DEFAULT_POLICY_NAME],
        f"{SCALING_POLICY}: {written!r} is not one of {', '.join(sorted(POLICIES))}; "
        f"using {DEFAULT_POLICY_NAME}",
    )
