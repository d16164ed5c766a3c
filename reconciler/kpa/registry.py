"""Scaling policies by name: the objects the reconciler runs per target and the simulator runs
per app, so a policy is one code path in both. Pure.

Names are the values of `knscale.dev/scaling-policy` (translator/annotations/table.py):

* ``kpa`` — ``reconciler.kpa.policy.DEFAULT_POLICY``, Knative's KPA (the default);
* ``knscale`` — ``PredictivePolicy``, KPA under load plus a learned plan for each idle gap, with
  the cold-start cost S measured from the target's pod starts (``reconciler.kpa.coldstart``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.kpa.decider import Observation
from reconciler.kpa.policy import DEFAULT_POLICY, KpaState, Policy, PolicyResult
from reconciler.kpa.predictive import PredictiveParams, PredictivePolicy, PredictiveState
from translator.annotations.table import DEFAULT_SCALING_POLICY, SCALING_POLICIES

KNSCALE = "knscale"

# Why a decision is what it is, as a bounded label (/metrics, --dry-run): KPA's modes, and what
# the knscale plan does with the idle replica.
REASONS = ("stable", "panic", "learning", "keepalive", "prewarm", "released")


def knscale_policy(params: PredictiveParams | None = None, name: str = KNSCALE) -> PredictivePolicy:
    """The cold-start-aware policy; the simulator passes its model's S, the reconciler measures it."""
    return PredictivePolicy(params, name)


POLICIES: dict[str, Policy[Any]] = {DEFAULT_SCALING_POLICY: DEFAULT_POLICY, KNSCALE: knscale_policy()}
NAMES = SCALING_POLICIES  # the annotation's choices; a unit test checks they are POLICIES' keys


def carry_over(state: Any, to: Policy[Any]) -> Any | None:
    """A state for ``to`` from another policy's state, keeping the reactive (KPA) part, so that
    changing the annotation neither restarts the decider in panic nor forgets its windows. None
    when nothing carries over (the caller starts ``to`` afresh)."""
    kpa = state.kpa if isinstance(state, PredictiveState) else state
    if not isinstance(kpa, KpaState):
        return None
    if isinstance(to, PredictivePolicy):
        return PredictiveState(kpa)
    return kpa


def with_cold_start(state: Any, seconds: float | None) -> Any:
    """``state`` with the measured S, for policies that plan with it (others ignore it)."""
    if seconds is None or not isinstance(state, PredictiveState) or state.cold_start == seconds:
        return state
    return replace(state, cold_start=seconds)


def cold_start_of(policy: Policy[Any], state: Any) -> float | None:
    """The S the policy plans with (the measured value, else its parameter); None for KPA."""
    if isinstance(policy, PredictivePolicy) and isinstance(state, PredictiveState):
        return policy.cold_start(state)
    return None


def reason_of(
    policy: Policy[Any], state: Any, result: PolicyResult, observation: Observation, now: float
) -> str:
    """One of ``REASONS`` for the decision ``result`` that left ``state`` behind."""
    if result.decision.mode == "panic":
        return "panic"
    if not isinstance(policy, PredictivePolicy) or not isinstance(state, PredictiveState):
        return "stable"
    if (observation.panic or 0.0) > 0.0 or state.idle_since is None:
        return "stable"
    plan = state.plan
    if plan is None:
        return "learning" if state.samples < policy.params.min_samples else "stable"
    if now < plan.keep_until:
        return "keepalive"
    if plan.warm_at <= now < plan.warm_until:
        return "prewarm"
    return "released"
