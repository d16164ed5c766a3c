"""The event loop of tick-driven policies: the per-second metric pipeline and the 2 s policy tick.

See ``simulator.model`` for the conventions; this is its loop for ``TickDriver`` policies
(KPA, knscale's, HPA, KEDA), kept apart so each file stays readable.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from reconciler.kpa.policy import KpaState
from reconciler.kpa.scaler import ScaleContext
from reconciler.kpa.windows import RevisionWindows, StatTotals, observe
from simulator.model import _DONE, _READY, INF, AppResult, AppSim, TickDriver


class TickLoop:
    """The event loop with the policy tick and the per-second metric pipeline."""

    def __init__(self, sim: AppSim, driver: TickDriver) -> None:
        self.sim, self.driver = sim, driver
        self.settings = driver.settings
        self.windows = RevisionWindows.for_settings(driver.settings)
        self.area = [0.0] * (int(sim.t_stop) + 4)
        self.area_hi = -1
        self.t_acc = 0.0
        self.flushed = 0  # seconds < flushed are in the windows
        self.poke_credit = 0.0
        self.lag = sim.cfg.scrape_lag
        self.interval = driver.interval
        self.wakeup = getattr(driver.policy, "next_wakeup", None)
        self.requeue: float | None = None

    def _acc(self, t: float) -> None:
        """Integrate the number of requests in the system up to ``t`` into per-second areas."""
        last, n = self.t_acc, self.sim.in_system
        if n and t > last:
            area = self.area
            s0, s1 = int(last), int(t)
            if s0 == s1:
                area[s0] += n * (t - last)
            else:
                area[s0] += n * (s0 + 1 - last)
                for s in range(s0 + 1, s1):
                    area[s] += n
                area[s1] += n * (t - s1)
            if s1 > self.area_hi:
                self.area_hi = s1
        self.t_acc = t

    def _flush(self, now: float) -> None:
        upto = math.floor(now - self.lag)
        if upto <= self.flushed:
            return
        sim, area = self.sim, self.area
        # RevisionWindows.record(now, StatTotals(concurrency=v)) without the per-second wrapper.
        stable, panic = self.windows.stable.record, self.windows.panic.record
        last = upto if sim.alive else min(upto, self.area_hi + 1)
        for s in range(self.flushed, last):
            v = area[s]
            if self.poke_credit and v > 0:
                v, self.poke_credit = max(0.0, v - self.poke_credit), 0.0
            if v > 0.0 or sim.alive:
                stable(float(s), v)
                panic(float(s), v)
        self.flushed = upto

    def _tick(self, now: float) -> bool:
        """One policy tick; True when the app is at rest (no pods, no requests, state unchanged)."""
        sim, drv = self.sim, self.driver
        self._acc(now)
        self._flush(now)
        obs = observe(self.windows, self.settings, sim.ready, True, now - self.lag)
        ctx = ScaleContext(current_replicas=sim.spec, ready_pods=sim.ready, zero_capable=True)
        old = sim.policy_state
        result, new = drv.policy.step(self.settings, old, obs, ctx, now)
        sim.policy_state = new
        out = result.outcome
        wrote = out.apply and out.replicas is not None and out.replicas != sim.spec
        if wrote:
            sim.set_replicas(out.replicas, now)
        # A timer the scaler asked for (e.g. "the last pod goes after 30 s") ends a skip, too.
        self.requeue = None if out.requeue_after is None else now + out.requeue_after
        return (
            not wrote
            and sim.alive == 0
            and sim.in_system == 0
            and not sim.cfg.exact_ticks
            and (new is old or new == old)
            and (obs.stable is None or self._quiescent(new))
        )

    def _quiescent(self, state: Any) -> bool:
        """No timer inside the policy's state can fire while nothing happens (see module doc)."""
        check = getattr(self.driver.policy, "is_quiescent", None)
        if check is not None:
            return bool(check(state))
        if isinstance(state, KpaState):
            return state.decider.panic_time is None and state.scaler.activity == "inactive"
        return False

    def _next_grid(self, t: float) -> float:
        return math.floor(t / self.interval + 1e-9) * self.interval + self.interval

    def run(self) -> None:
        sim, drv = self.sim, self.driver
        sim.policy_state = drv.policy.initial_state(self.settings, 0, 0, 0.0)
        heap, start, n, t_stop = sim.heap, sim.start, sim.n, sim.t_stop
        i = 0
        next_tick = 0.0
        while True:
            t_arr = start[i] if i < n else INF
            t_heap = heap[0][0] if heap else INF
            if t_heap <= t_arr and t_heap <= next_tick:
                if t_heap > t_stop:
                    break
                t, kind, _, pid, _data = heapq.heappop(heap)
                self._acc(t)
                if kind == _DONE:
                    sim._on_done(pid, t)
                elif kind == _READY:
                    sim._on_ready(pid, t)
            elif t_arr <= next_tick:
                if t_arr > t_stop:
                    break
                self._acc(t_arr)
                sim._on_arrival(i, t_arr)
                i += 1
                if sim.spec == 0 and sim.alive == 0:
                    # Knative's activator: an immediate stat of concurrency 1 and a tick now (Poke).
                    self._flush(t_arr)
                    self.windows.record(float(math.floor(t_arr - self.lag)), StatTotals(concurrency=1.0))
                    self.poke_credit = 1.0
                    self._tick(t_arr)
                    next_tick = self._next_grid(t_arr)
            else:
                if next_tick > t_stop:
                    break
                now = next_tick
                if self._tick(now):
                    wake = self.wakeup(sim.policy_state, now) if self.wakeup else None
                    if self.requeue is not None:
                        wake = self.requeue if wake is None else min(wake, self.requeue)
                    next_tick = (
                        INF if wake is None else max(self._next_grid(wake - 1e-9), now + self.interval)
                    )
                    if i >= n and wake is None:
                        break
                else:
                    next_tick = now + self.interval
        self._acc(t_stop)


def simulate(sim: AppSim) -> AppResult:
    """Run one app to the end: the tick loop for a ``TickDriver`` (the reconciler's policies), the
    event loop for the others. Here, not on ``AppSim``, so the model does not import its loop."""
    ctl = sim.controller
    if isinstance(ctl, TickDriver):
        TickLoop(sim, ctl).run()
    else:
        sim.run_events()
    return sim.finish()
