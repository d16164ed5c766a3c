"""Scaling policies behind one small interface, so the simulator can compare better ones.

A policy turns (settings, its own state, an ``Observation``, a ``ScaleContext``, ``now``) into
a ``PolicyResult`` and a new state — pure, no clock, no I/O. ``KpaPolicy`` is the default and
the reference: Knative's decider (``reconciler.kpa.decider``, faithful) followed by the KPA
reconciler's bounds and scale-to-zero step (``reconciler.kpa.scaler``). Other policies may use
any state type they like; the controller stores it per target and hands it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from reconciler.kpa.decider import DeciderState, Decision, Observation, decide, initial_state
from reconciler.kpa.scaler import (
    ScaleContext,
    ScaleOutcome,
    ScalerState,
    initial_scaler_state,
    reconcile_scale,
)
from translator.autoscaling.kpa import KpaSettings

StateT = TypeVar("StateT")


@dataclass(frozen=True, slots=True)
class PolicyResult:
    decision: Decision  # the raw decision (desired pods, mode, reason, EBC)
    outcome: ScaleOutcome  # what to write, if anything, and why


class Policy(Protocol[StateT]):
    """A scaling policy. ``name`` identifies it in reports, metrics and the simulator."""

    @property
    def name(self) -> str: ...

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> StateT: ...

    def step(
        self,
        settings: KpaSettings,
        state: StateT,
        observation: Observation,
        context: ScaleContext,
        now: float,
    ) -> tuple[PolicyResult, StateT]: ...


@dataclass(frozen=True, slots=True)
class KpaState:
    decider: DeciderState
    scaler: ScalerState


class KpaPolicy:
    """Knative's KPA: faithful decider + KPA reconciler post-processing (knscale's no-activator rules)."""

    @property
    def name(self) -> str:
        return "kpa"

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> KpaState:
        return KpaState(initial_state(settings, ready_pods, now), initial_scaler_state(current_replicas, now))

    def step(
        self,
        settings: KpaSettings,
        state: KpaState,
        observation: Observation,
        context: ScaleContext,
        now: float,
    ) -> tuple[PolicyResult, KpaState]:
        decision, decider_state = decide(settings, state.decider, observation, now)
        outcome, scaler_state = reconcile_scale(settings, state.scaler, decision, context, now)
        return PolicyResult(decision, outcome), KpaState(decider_state, scaler_state)


DEFAULT_POLICY: Policy[KpaState] = KpaPolicy()
