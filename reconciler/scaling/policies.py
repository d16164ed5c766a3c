"""Per-target policy of the KPA loop: which `Policy` object runs (`knscale.dev/scaling-policy`),
its state, the measured cold-start cost, and the stored learned state.

* **Choice.** `KpaSettings.scaling_policy` names an object of `reconciler.kpa.registry.POLICIES`
  (the simulator runs the same ones). When the annotation changes, the reactive KPA part of the
  state carries over (`registry.carry_over`): switching never restarts the decider in panic.
* **S.** Every refresh feeds the target's ready pods' starts (`pods.pod_start`) into
  `coldstart.ColdStarts`; the median of the last 16 is the S the knscale policy plans with, from
  the first tick after a restart on (the pods are still there, their timestamps too).
* **Learned idle-gap state** (knscale policy only) is written to the workload as
  `knscale.dev/scaling-state` (`statecodec`, ≤ 4 kB) when it changed, at most every
  `PERSIST_EVERY` seconds, and read back when a target is first seen (restart, failover).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.kpa import coldstart, registry, statecodec
from reconciler.kpa.coldstart import ColdStarts, PodStart
from reconciler.kpa.decider import Observation
from reconciler.kpa.policy import Policy, PolicyResult
from reconciler.kpa.predictive import PredictiveState
from reconciler.kpa.scaler import ScaleContext
from translator.annotations.table import KNSCALE_SCALING_STATE
from translator.autoscaling.kpa import KpaSettings

log = logging.getLogger(__name__)

STATE_ANNOTATION = KNSCALE_SCALING_STATE
PERSIST_EVERY = 60.0  # seconds between two state writes of one target (a change waits, it is not lost)


@dataclass
class Step:
    result: PolicyResult
    policy: str
    reason: str  # one of registry.REASONS
    cold_start: float | None  # the S the policy planned with (None: the policy has no use for it)


@dataclass
class PolicySlot:
    """One target's policy, state and measurements. Not thread-safe: the loop holds its lock."""

    kpa_policy: Policy[Any]  # what `kpa` means here (the loop's injected policy; tests swap it)
    name: str = ""
    policy: Policy[Any] | None = None
    state: Any = None
    starts: ColdStarts = field(default_factory=ColdStarts)
    stored: str | None = None  # the state text the workload carries (or that we last wrote)
    next_store: float = 0.0

    def _lookup(self, name: str) -> Policy[Any]:
        return self.kpa_policy if name == "kpa" else registry.POLICIES[name]

    def choose(self, name: str) -> None:
        """Select the policy by name; switching keeps the reactive part of the state."""
        if name == self.name and self.policy is not None:
            return
        policy = self._lookup(name)
        if self.state is not None:
            self.state = registry.carry_over(self.state, policy)
        self.name, self.policy = name, policy

    def observe_pods(self, starts: Iterable[PodStart]) -> list[PodStart]:
        """Record new pod starts; returns them (for the start-time histogram)."""
        self.starts, fresh = coldstart.observe(self.starts, starts)
        return fresh

    def step(
        self,
        settings: KpaSettings,
        observation: Observation,
        context: ScaleContext,
        workload: Mapping[str, Any],
        now: float,
        adjust: Callable[[Any], Any] | None = None,
    ) -> Step:
        """One decision. ``adjust`` rewrites the state before the step (knscale's PA class puts
        the scale-to-zero part read back from the PA status there)."""
        policy = self.policy or self._lookup(settings.scaling_policy)
        if self.state is None:
            self.state = self._initial(policy, settings, context, workload, now)
        state = registry.with_cold_start(self.state, self.starts.cold_start)
        if adjust is not None:
            state = adjust(state)
        result, state = policy.step(settings, state, observation, context, now)
        self.state = state
        return Step(
            result,
            policy.name,
            registry.reason_of(policy, state, result, observation, now),
            registry.cold_start_of(policy, state),
        )

    def view(self, last: Step | None) -> tuple[str, str, float | None]:
        """(policy, reason, S) of ``last`` for the decision record; the measured S without one."""
        if last is None:
            return self.name or "-", "-", self.starts.cold_start
        return (
            last.policy,
            last.reason,
            self.starts.cold_start if last.cold_start is None else last.cold_start,
        )

    def _initial(
        self,
        policy: Policy[Any],
        settings: KpaSettings,
        ctx: ScaleContext,
        workload: Mapping[str, Any],
        now: float,
    ) -> Any:
        state = policy.initial_state(settings, ctx.ready_pods, ctx.current_replicas, now)
        text = ((workload.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION)
        self.stored = text if isinstance(text, str) else None
        if isinstance(state, PredictiveState) and self.stored is not None:
            restored = statecodec.decode(self.stored, state)
            if restored is None:
                log.warning(
                    "ignoring malformed %s (%d bytes); learning afresh", STATE_ANNOTATION, len(self.stored)
                )
            else:
                state = restored
        return state

    def store_patch(self, now: float) -> dict[str, Any] | None:
        """The merge patch that stores the learned state, when it changed and one is due."""
        if not isinstance(self.state, PredictiveState) or now < self.next_store:
            return None
        state = self.state
        if self.stored is None and not (state.samples or state.rises or state.cold_start is not None):
            return None  # nothing learned yet: no write
        text = statecodec.encode(state)
        if text == self.stored:
            return None
        return {"metadata": {"annotations": {STATE_ANNOTATION: text}}}

    def stored_ok(self, patch: Mapping[str, Any], now: float) -> None:
        """The write of ``patch`` went through (or was printed, in dry-run mode)."""
        self.stored = patch["metadata"]["annotations"][STATE_ANNOTATION]
        self.next_store = now + PERSIST_EVERY

    def store_failed(self, now: float) -> None:
        self.next_store = now + PERSIST_EVERY

    def forget(self) -> None:
        """Leadership lost: the next leader (maybe us) starts from the cluster's state."""
        self.state = None
        self.stored = None
        self.next_store = 0.0
