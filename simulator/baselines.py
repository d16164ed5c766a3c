"""Baseline policies that are not KPA: HPA and KEDA defaults (tick-driven, the ``Policy`` protocol),
fixed keep-alive and Shahrad's hybrid histogram (event-driven, per replica as in §4.4).

Modelling choices, stated once: HPA's metric is the app's concurrency per ready pod over the
last panic window (6 s; HPA's CPU metric is a short average too) against 80 % of container
concurrency; KEDA's is the same concurrency against KPA's 70 % target (what autoscaler-keda
translates), polled every 30 s. The hybrid policy's ARIMA forecast for out-of-range idle times
is replaced by the mean of the last eight of them (ARIMA(0,1,0)-like), with the paper's ±15 %
margin; its pre-warm starts S before the pre-warm window ends so the pod is loaded on time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from reconciler.kpa.decider import Decision, Observation
from reconciler.kpa.policy import PolicyResult
from reconciler.kpa.scaler import ScaleContext, ScaleOutcome
from simulator.model import AppSim, EventPolicyBase
from translator.autoscaling.kpa import KpaSettings


@dataclass(frozen=True, slots=True)
class HpaState:
    last_sync: float = -math.inf
    recs: tuple[tuple[float, int], ...] = ()  # (time, recommendation) of the stabilisation window


def _result(want: int, current: int, reason: str) -> PolicyResult:
    write = want >= 0 and want != current
    decision = Decision(max(want, 0), "stable", reason, 0)
    return PolicyResult(decision, ScaleOutcome(want, write, want if write else None, reason))


def _hpa_desired(
    state: HpaState,
    conc: float,
    current: int,
    target: float,
    now: float,
    min_replicas: int,
    window: float,
    tolerance: float = 0.1,
) -> tuple[int, HpaState]:
    ratio = conc / (max(current, 1) * target)
    raw = current if abs(ratio - 1.0) <= tolerance and current > 0 else math.ceil(conc / target)
    raw = max(raw, min_replicas)
    raw = min(raw, max(current + 4, 2 * current))  # scale-up policy: +4 pods or +100 % per sync
    recs = (*(r for r in state.recs if r[0] > now - window), (now, raw))
    want = max(r[1] for r in recs) if raw < current else raw  # scale-down stabilisation: highest rec
    return want, HpaState(now, recs)


class HpaPolicy:
    """Kubernetes HPA defaults: min 1, sync 15 s, tolerance 0.1, +max(4, 100 %) up, 300 s down window."""

    def __init__(self, target_utilization: float = 0.8, sync: float = 15.0, window: float = 300.0) -> None:
        self.target_utilization, self.sync, self.window = target_utilization, sync, window

    @property
    def name(self) -> str:
        return "hpa"

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> HpaState:
        return HpaState()

    def step(
        self,
        settings: KpaSettings,
        state: HpaState,
        observation: Observation,
        context: ScaleContext,
        now: float,
    ) -> tuple[PolicyResult, HpaState]:
        current = context.current_replicas or 0
        if now - state.last_sync < self.sync:
            return _result(-1, current, "hpa: between syncs"), state
        conc = observation.panic or 0.0
        target = settings.total_value * self.target_utilization
        want, new = _hpa_desired(state, conc, current, target, now, 1, self.window)
        return _result(want, current, f"hpa: concurrency {conc:.2f} → {want}"), new


@dataclass(frozen=True, slots=True)
class KedaState:
    hpa: HpaState = HpaState()
    last_poll: float = -math.inf
    last_active: float = -math.inf


class KedaPolicy:
    """KEDA defaults: poll 30 s, 0 → 1 on any activity, 1 → 0 after 300 s cooldown, HPA for 1 ↔ N."""

    def __init__(self, polling: float = 30.0, cooldown: float = 300.0) -> None:
        self.polling, self.cooldown = polling, cooldown
        self._hpa = HpaPolicy()

    @property
    def name(self) -> str:
        return "keda"

    def initial_state(
        self, settings: KpaSettings, ready_pods: int | None, current_replicas: int | None, now: float
    ) -> KedaState:
        return KedaState()

    def step(
        self,
        settings: KpaSettings,
        state: KedaState,
        observation: Observation,
        context: ScaleContext,
        now: float,
    ) -> tuple[PolicyResult, KedaState]:
        current = context.current_replicas or 0
        conc = observation.panic or 0.0
        if current == 0 and observation.stable is None:
            return _result(-1, current, "keda: no metric data at zero"), state  # nothing to poll
        if now - state.last_poll >= self.polling:
            active = conc > 0 or (observation.stable or 0.0) > 0
            state = replace(state, last_poll=now, last_active=now if active else state.last_active)
            if current == 0:
                return _result(1 if active else 0, current, "keda: activation poll"), state
            if not active and now - state.last_active >= self.cooldown:
                return _result(0, current, "keda: cooldown over, to zero"), replace(state, hpa=HpaState())
        if current == 0 or now - state.hpa.last_sync < self._hpa.sync:
            return _result(-1, current, "keda: between syncs"), state
        want, hpa = _hpa_desired(state.hpa, conc, current, settings.target_value, now, 1, self._hpa.window)
        return _result(want, current, f"keda/hpa: concurrency {conc:.2f} → {want}"), replace(state, hpa=hpa)


class KeepAlive(EventPolicyBase):
    """Fixed keep-alive T (§4.4): an idle replica goes at idle_since + T."""

    def __init__(self, keep: float, name: str | None = None) -> None:
        self.keep = keep
        self.name = name or f"keepalive-{keep:g}s"

    def fresh(self) -> KeepAlive:
        return KeepAlive(self.keep, self.name)

    def on_pod_idle(self, sim: AppSim, pid: int, now: float) -> None:
        if self.keep <= 0:
            sim.remove_pod(pid, now)
        else:
            sim.timer(now + self.keep, pid)

    def on_timer(self, sim: AppSim, now: float, data: int) -> None:
        since = sim.idle.get(data)
        if since is not None and since + self.keep <= now + 1e-9:
            sim.remove_pod(data, now)


class HybridHistogram(EventPolicyBase):
    """Shahrad et al.'s hybrid histogram (ATC'20), per app; parameters as in dslab's implementation."""

    RANGE, BIN = 4 * 3600.0, 60.0
    CV_THR, OOB_THR, ARIMA_MARGIN, HIST_MARGIN, HEAD, TAIL, MIN_SAMPLES = 2.0, 0.5, 0.15, 0.1, 0.05, 0.99, 10

    def __init__(self, cold_start: float) -> None:
        self.cold_start = cold_start
        self.name = "hybrid"
        self.hist = [0] * int(self.RANGE / self.BIN)
        self.oob: list[float] = []
        self.oob_total = 0
        self.idle_start: float | None = None
        self.version = 0
        self.deadline = math.inf  # keep-alive end of the current idle period
        self.keep = self.RANGE

    def fresh(self) -> HybridHistogram:
        return HybridHistogram(self.cold_start)

    def windows(self) -> tuple[float, float]:
        """(pre-warm, keep-alive) in seconds."""
        total = sum(self.hist) + self.oob_total
        if total < self.MIN_SAMPLES:
            return 0.0, self.RANGE
        if self.oob_total / total > self.OOB_THR:
            pred = sum(self.oob[-8:]) / len(self.oob[-8:])
            return pred * (1 - self.ARIMA_MARGIN), pred * 2 * self.ARIMA_MARGIN
        counts = self.hist
        n = len(counts)
        mean = sum(counts) / n
        cv = math.sqrt(sum((c - mean) ** 2 for c in counts) / n) / mean if mean else 0.0
        if cv < self.CV_THR:
            return 0.0, self.RANGE
        in_range = sum(counts)
        acc, head, tail = 0, None, n
        for i, c in enumerate(counts):
            acc += c
            if head is None and acc >= self.HEAD * in_range:
                head = i
            if acc >= self.TAIL * in_range:
                tail = i + 1
                break
        prewarm = (head or 0) * self.BIN * (1 - self.HIST_MARGIN)
        keep = tail * self.BIN * (1 + self.HIST_MARGIN) - prewarm
        return prewarm, keep

    def on_arrival(self, sim: AppSim, now: float) -> None:
        if sim.in_system == 1 and self.idle_start is not None:
            gap = now - self.idle_start
            if gap >= self.RANGE:
                self.oob.append(gap)
                self.oob = self.oob[-8:]
                self.oob_total += 1
            else:
                self.hist[int(gap // self.BIN)] += 1
            self.idle_start = None
            self.version += 1  # cancels a pending pre-warm
            self.deadline = math.inf

    def on_app_idle(self, sim: AppSim, now: float) -> None:
        self.idle_start = now
        prewarm, self.keep = self.windows()
        if prewarm > 0:
            for pid in list(sim.idle):
                sim.remove_pod(pid, now)
            self.deadline = now + prewarm + self.keep
            self.version += 1
            sim.timer(now + max(0.0, prewarm - self.cold_start), -self.version)
        else:
            self.deadline = now + self.keep
            for pid in list(sim.idle):
                sim.timer(self.deadline, pid)

    def on_pod_idle(self, sim: AppSim, pid: int, now: float) -> None:
        if sim.in_system > 0:  # an extra replica while the app is busy: plain keep-alive
            sim.timer(now + self.keep, pid)
        elif self.deadline < math.inf and self.idle_start is not None and now > self.idle_start:
            sim.timer(max(now, self.deadline), pid)  # the pre-warmed replica

    def on_timer(self, sim: AppSim, now: float, data: int) -> None:
        if data < 0:
            if -data == self.version and sim.alive == 0 and sim.in_system == 0:
                sim.start_pods(1, now)
            return
        since = sim.idle.get(data)
        if since is not None and (now >= self.deadline - 1e-9 or since + self.keep <= now + 1e-9):
            sim.remove_pod(data, now)
