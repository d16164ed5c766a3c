"""knscale's cold-start-aware policy: KPA for bursts, a learned plan for every idle gap. Pure.

Why: a model-serving pod first downloads its model, so one cold start costs S seconds of a
starting replica *and* a request that waits that long. Knative's defaults drop an idle
revision to zero after 60–90 s whatever its history, so an app called every few minutes is
cold on almost every call, and an app called once a day still pays 90 s of idle replica per
call. This policy keeps KPA's reactive decider (``KpaPolicy``, unchanged, wrapped) for load,
bursts and panic mode, and replaces only what happens to the *last* replica while the revision
is idle:

* It learns, per revision, the distribution of idle gaps (from the tick where the panic
  window empties to the tick where it fills again) in a 40-bin log-spaced histogram (2 s to
  2 days; counts halve when they reach 256, so old behaviour fades) and the last six
  intervals between busy-period starts (periodicity: timers, cron-like clients).
* At the start of every idle gap it picks a plan ``(keep_until, warm_at, warm_until)``: keep
  the replica for T then release it, or release it now and pre-warm (start at ``warm_at``,
  ready S later) until ``warm_until``. The plan minimises, over the learned histogram, the
  expected replica-seconds plus ``miss_cost`` (κ) for every request that meets a cold pod —
  the ski-rental break-even at κ + S, generalised to pre-warming. A periodic revision (six
  intervals within ``max(10 s, 2 %)`` of each other) is pre-warmed just before its next call.
* Extra replicas above one are released ``upper_hold`` seconds into an idle gap instead of
  decaying over KPA's stable window.

While the revision has demand, and until it has ``min_samples`` idle gaps, the result is
exactly KPA's. Cost per tick is O(1); the plan is refitted in O(bins²) = 820 steps after 1, 2, 4,
8 gaps and then every 16th, not per tick. State size: 40 counts + 40 sums + 6 intervals + 9
scalars ≈ 0.8 kB of numbers per revision; ``state_size_bytes`` counts ≈ 3.1 kB of Python objects.

The cold-start cost S is ``PredictiveParams.cold_start`` (in the simulator, the model's S);
the reconciler sets the median measured creation→Ready time (``registry.with_cold_start``;
``record_cold_start`` is an EWMA alternative).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

from reconciler.kpa.decider import Observation
from reconciler.kpa.policy import KpaPolicy, KpaState, PolicyResult
from reconciler.kpa.scaler import ScaleContext, ScaleOutcome
from translator.autoscaling.kpa import KpaSettings

NBINS = 40
_LO, _HI = 2.0, 172800.0
_RATIO = (_HI / _LO) ** (1.0 / (NBINS - 1))
EDGES: tuple[float, ...] = (0.0, *(_LO * _RATIO**i for i in range(NBINS - 1)), math.inf)
"""Bin i holds gaps in [EDGES[i], EDGES[i+1]); the last bin is open-ended."""
_LOG_RATIO = math.log(_RATIO)
_AGE_AT = 256
_RISES = 6


@dataclass(frozen=True, slots=True)
class PredictiveParams:
    cold_start: float = 2.0  # S, seconds from start decision to Ready (model download included)
    miss_cost: float = 300.0  # κ: replica-seconds one cold-start-affected call is worth avoiding
    min_samples: int = 4  # idle gaps seen before the plan replaces KPA's scale-to-zero timing
    upper_hold: float = 10.0  # seconds into an idle gap before replicas above one are released
    periodic_tolerance: float = 10.0  # seconds (or 2 % of the period, whichever is larger)


@dataclass(frozen=True, slots=True)
class Plan:
    keep_until: float  # keep one replica until here (absolute time)
    warm_at: float  # then none until here, when one starts (inf = no pre-warm)
    warm_until: float  # and keep it until here
    why: str


@dataclass(frozen=True, slots=True)
class Fit:
    keep: float  # the plan relative to the idle start: keep T, or pre-warm [r − S, b)
    warm_from: float
    warm_to: float
    samples: int


@dataclass(frozen=True, slots=True)
class PredictiveState:
    kpa: KpaState
    active: bool = False
    idle_since: float | None = None
    last_rise: float | None = None
    counts: tuple[float, ...] = (0.0,) * NBINS
    sums: tuple[float, ...] = (0.0,) * NBINS
    rises: tuple[float, ...] = ()
    samples: int = 0
    fit: Fit | None = None
    plan: Plan | None = None
    cold_start: float | None = None  # measured S (EWMA), overrides the parameter when known


def _bin(gap: float) -> int:
    if gap < _LO:
        return 0
    return min(NBINS - 1, 1 + int(math.log(gap / _LO) / _LOG_RATIO))


def fit_plan(counts: tuple[float, ...], sums: tuple[float, ...], s: float, kappa: float, samples: int) -> Fit:
    """The (keep, warm_from, warm_to) minimising replica-seconds + κ per cold call over the histogram."""
    n = sum(counts)
    cum_c, cum_s = [0.0], [0.0]  # gaps < EDGES[i]: count and sum
    for c, v in zip(counts, sums, strict=True):
        cum_c.append(cum_c[-1] + c)
        cum_s.append(cum_s[-1] + v)
    miss = s + kappa
    best = (cum_s[-1], math.inf, math.inf, math.inf)  # keep forever
    for j in range(NBINS):  # keep-alive T = EDGES[j]
        t = EDGES[j]
        cost = cum_s[j] + (n - cum_c[j]) * (t + miss)
        if cost < best[0]:
            best = (cost, t, math.inf, math.inf)
    for i in range(1, NBINS):  # release now, ready at r = EDGES[i], keep until b = EDGES[j]
        r = EDGES[i]
        if r <= s:
            continue
        early = miss * cum_c[i]
        for j in range(i + 1, NBINS + 1):
            b = EDGES[j]
            if math.isinf(b):
                break
            cost = (
                early
                + (cum_s[j] - cum_s[i])
                - (r - s) * (cum_c[j] - cum_c[i])
                + (n - cum_c[j]) * (b - r + 2 * s + kappa)
            )
            if cost < best[0]:
                best = (cost, 0.0, r - s, b)
    return Fit(best[1], best[2], best[3], samples)


def _refit_due(samples: int, fit: Fit | None) -> bool:
    if fit is None:
        return True
    if samples <= 8:
        return samples != fit.samples and samples & (samples - 1) == 0
    return samples - fit.samples >= 16


class PredictivePolicy:
    """``Policy`` protocol: KPA decides under load; the learned plan decides the idle replica."""

    def __init__(self, params: PredictiveParams | None = None, name: str = "knscale") -> None:
        self.params = params or PredictiveParams()
        self._name = name
        self._kpa = KpaPolicy()

    @property
    def name(self) -> str:
        return self._name

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> PredictiveState:
        return PredictiveState(self._kpa.initial_state(settings, ready_pods, current_replicas, now))

    def cold_start(self, state: PredictiveState) -> float:
        return state.cold_start if state.cold_start is not None else self.params.cold_start

    def next_wakeup(self, state: PredictiveState, now: float) -> float | None:
        """When the plan next needs a tick while nothing else happens (the simulator skips idle ticks)."""
        plan = state.plan
        if plan is None:
            return None
        for t in (plan.keep_until, plan.warm_at, plan.warm_until):
            if now < t < math.inf:
                return t
        return None

    def is_quiescent(self, state: PredictiveState) -> bool:
        """True when only the plan's own times (``next_wakeup``) can change a decision at rest."""
        kpa = state.kpa
        return kpa.decider.panic_time is None and kpa.scaler.activity == "inactive"

    def _learn(self, state: PredictiveState, demand: bool, now: float) -> PredictiveState:
        if demand == state.active:
            return state
        if not demand:  # an idle gap begins: plan it
            return replace(state, active=False, idle_since=now, plan=self._plan(state, now))
        counts, sums, samples = state.counts, state.sums, state.samples
        if state.idle_since is not None:
            gap = now - state.idle_since
            k = _bin(gap)
            c, v = list(counts), list(sums)
            c[k] += 1.0
            v[k] += gap
            if sum(c) >= _AGE_AT:
                c, v = [x / 2 for x in c], [x / 2 for x in v]
            counts, sums, samples = tuple(c), tuple(v), samples + 1
        rises = state.rises
        if state.last_rise is not None:
            rises = (*rises[-(_RISES - 1) :], now - state.last_rise)
        fit = state.fit
        if samples >= self.params.min_samples and _refit_due(samples, fit):
            fit = fit_plan(counts, sums, self.cold_start(state), self.params.miss_cost, samples)
        return replace(
            state,
            active=True,
            idle_since=None,
            last_rise=now,
            counts=counts,
            sums=sums,
            rises=rises,
            samples=samples,
            fit=fit,
            plan=None,
        )

    def _plan(self, state: PredictiveState, now: float) -> Plan | None:
        p, s = self.params, self.cold_start(state)
        rises = state.rises
        if len(rises) == _RISES and state.last_rise is not None:
            period = sorted(rises)[_RISES // 2]
            tol = max(p.periodic_tolerance, 0.02 * period)
            if max(rises) - min(rises) <= tol:
                due = state.last_rise + period
                margin = tol + 4.0
                if due - margin - s - now > s + 2 * margin:  # pre-warming is cheaper than keeping
                    return Plan(now, due - margin - s, due + margin, f"periodic {period:.0f}s")
                return Plan(due + margin, math.inf, math.inf, f"periodic {period:.0f}s: keep")
        fit = state.fit
        if fit is None:
            return None
        return Plan(
            now + fit.keep,
            now + fit.warm_from,
            now + fit.warm_to,
            f"learned: keep {fit.keep:.0f}s, warm {fit.warm_from:.0f}–{fit.warm_to:.0f}s",
        )

    def step(
        self,
        settings: KpaSettings,
        state: PredictiveState,
        observation: Observation,
        context: ScaleContext,
        now: float,
    ) -> tuple[PolicyResult, PredictiveState]:
        result, kpa_state = self._kpa.step(settings, state.kpa, observation, context, now)
        # Demand = something was in flight or queued during the panic window (6 s by default).
        demand = (observation.panic or 0.0) > 0.0
        learned = self._learn(state, demand, now)
        new_state = learned if kpa_state == state.kpa else replace(learned, kpa=kpa_state)
        if demand or new_state.idle_since is None:
            return result, new_state
        out = result.outcome
        want = out.want
        idle_for = now - new_state.idle_since
        if want > 1 and idle_for >= self.params.upper_hold:
            want = 1  # nobody is in flight: release the extra replicas early
        plan = new_state.plan
        why = ""
        if plan is not None and want <= 1:  # includes -1: KPA holds (no metrics while at zero)
            warm = now < plan.keep_until or plan.warm_at <= now < plan.warm_until
            want = 1 if warm else 0
            why = f"; {plan.why}: {'warm' if warm else 'released'}"
        current = 1 if context.current_replicas is None else context.current_replicas
        if want == out.want and not why:
            return result, new_state
        write = want >= 0 and want != current
        if write and want == 0:
            # Released to zero by the plan: the reactive part starts afresh, as after KPA's own
            # scale to zero (no panic memory, Inactive), so nothing in it is left to time out.
            new_state = replace(new_state, kpa=self._kpa.initial_state(settings, 0, 0, now))
        outcome = ScaleOutcome(
            want, write, want if write else None, out.reason + why, out.requeue_after, out.activity
        )
        return PolicyResult(result.decision, outcome), new_state


def record_cold_start(state: PredictiveState, seconds: float, weight: float = 0.3) -> PredictiveState:
    """Feed one measured pod start (creation → Ready) into the revision's S estimate (EWMA)."""
    old = state.cold_start
    return replace(state, cold_start=seconds if old is None else old + weight * (seconds - old))


def state_size_bytes(state: PredictiveState) -> int:
    """Shallow size of the policy's own part of the state (tuples and their floats), KPA's excluded."""
    total = sys.getsizeof(state)
    for part in (state.counts, state.sums, state.rises):
        total += sys.getsizeof(part) + sum(sys.getsizeof(x) for x in part)
    for obj in (state.fit, state.plan):
        if obj is not None:
            total += sys.getsizeof(obj)
    return total
