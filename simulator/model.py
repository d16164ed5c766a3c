"""Deterministic discrete-event model of one app: requests, pods, the activator's queue, the metric pipe.

Conventions (autoscaling-benchmark.md §4.4; every departure is named here):

* Requests occupy [start, start + service); at equal times completions go first, then pods
  becoming ready, then arrivals, then timers, then the policy tick.
* A pod serves ``container_concurrency`` requests at once. A request that finds no free slot
  waits in one FIFO queue per app (the activator); the first slot to free up takes the head.
  Free slots are reused most-recently-freed first.
* A pod start takes S seconds (fixed, or log-normal around S per start); with a start-rate
  limit, starts of one app begin at most ``start_rate`` per second. A start decided while a
  request waits is a *cold start*; a request is *cold-start-affected* when it waited and its
  wait overlaps a start in progress (a start in progress at its arrival, or one decided while
  it waited).
* Replica-seconds run from the start decision to removal; pods still alive at the end of the
  run (trace end + ``tail``) are charged up to there.
* Scale-down removes starting pods first (newest first), then idle pods (longest idle first),
  then busy ones, which drain: they take no new request and go when their last one ends.

Tick-driven policies (``reconciler.kpa.policy.Policy``: KPA, knscale's, HPA, KEDA) see the
metric pipeline the reconciler sees: every second the app's time-averaged concurrency (in
flight + queued, as queue-proxy and the activator report it) is recorded into the
reconciler's own ``RevisionWindows`` while the app has pods or requests; the policy ticks every
2 s on data ``scrape_lag`` seconds old. A request arriving while the app is at zero replicas
*pokes* the autoscaler, as Knative's activator does: a stat of concurrency 1 is recorded and
the policy ticks at once. While the app has no pods and no requests, the policy's state did
not change on the last tick, and no timer inside it can fire (its windows are empty, so KPA's
step is a no-op; or its decider is out of panic and its scaler Inactive; or the policy's
``is_quiescent`` says so), ticks are skipped until the next arrival, the scaler's requeue time
or the policy's ``next_wakeup``. Skipping changes no result (tested against ticking always).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.traces import AppTrace, FloatArray
from translator.autoscaling.kpa import KpaSettings

STARTING, READY, DRAINING, GONE = 0, 1, 2, 3
_DONE, _READY, _TIMER = 0, 1, 3  # heap priorities at equal times (arrivals are 2, ticks last)
INF = math.inf


@dataclass(frozen=True, slots=True)
class ModelConfig:
    cold_start: float = 2.0
    cold_start_sigma: float = 0.0  # > 0: S of each start ~ log-normal(median cold_start, sigma)
    container_concurrency: int = 1
    start_rate: float = 0.0  # pod starts per second per app; 0 = unlimited
    tick: float = 2.0
    scrape_lag: float = 1.0
    tail: float = 1200.0  # replicas are charged up to trace end + tail (keep-alive tails in full)
    exact_ticks: bool = False  # never skip idle ticks (slow; the tests compare both)
    timeline: bool = False  # keep (time, replicas) change points for the plots


@dataclass(slots=True)
class AppResult:
    wait: FloatArray
    affected: np.ndarray[Any, np.dtype[np.bool_]]
    cold_starts: int = 0
    replica_s: float = 0.0
    replica_s_cut: float = 0.0  # the same, cut at the end of the trace
    busy_s: float = 0.0  # pod-time with at least one request in flight
    starting_s: float = 0.0
    scale_events: int = 0
    max_replicas: int = 0
    times: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)


@dataclass
class TickDriver:
    """A ``Policy`` object plus the settings it runs with, as the reconciler holds them."""

    policy: Any  # reconciler.kpa.policy.Policy[Any]; Any because the state type varies per policy
    settings: KpaSettings
    interval: float = 2.0


class AppSim:
    """One app under one policy. ``run()`` once; the object is then spent."""

    def __init__(
        self,
        app: AppTrace,
        horizon: float,
        cfg: ModelConfig,
        controller: TickDriver | EventPolicyBase,
        seed: int = 0,
    ) -> None:
        self.cfg = cfg
        self.cc = cfg.container_concurrency
        self.start = app.start.tolist()
        self.dur = app.duration.tolist()
        self.n = len(self.start)
        self.horizon = horizon
        self.t_stop = horizon + cfg.tail
        self.rng = np.random.default_rng(seed)
        self.controller = controller
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        # pods
        self.p_state: list[int] = []
        self.p_busy: list[int] = []
        self.p_born: list[float] = []
        self.p_busy_since: list[float] = []
        self.p_ready_at: list[float] = []
        self.idle: dict[int, float] = {}  # ready, idle pods in idle order (oldest first)
        self.starting: dict[int, None] = {}  # pods starting, oldest first
        self.free: list[int] = []  # one entry per free slot; top = most recently freed
        self.ready = 0
        self.alive = 0  # starting + ready + draining
        self.spec = 0  # the replica count last written (scale subresource spec.replicas)
        self.next_start_slot = -INF
        # requests
        self.queue: deque[int] = deque()
        self.in_system = 0
        self.enq_seq: list[int] = [0] * self.n
        self.enq_flag = bytearray(self.n)
        self.start_seq = 0
        self.res = AppResult(wait=np.zeros(self.n), affected=np.zeros(self.n, dtype=bool))
        self._wait = [0.0] * self.n
        self._aff = bytearray(self.n)
        self.last_event_t = -INF
        self.now = 0.0
        self.policy_state: Any = None

    # ---- pods ------------------------------------------------------------------------------

    def _scale_event(self, now: float) -> None:
        if now != self.last_event_t:
            self.res.scale_events += 1
            self.last_event_t = now
        if self.cfg.timeline:
            self.res.times.append(now)
            self.res.replicas.append(self.alive)

    def start_pods(self, k: int, now: float) -> None:
        cfg = self.cfg
        for _ in range(k):
            pid = len(self.p_state)
            begin = now
            if cfg.start_rate > 0:
                begin = max(now, self.next_start_slot)
                self.next_start_slot = begin + 1.0 / cfg.start_rate
            s = cfg.cold_start
            if cfg.cold_start_sigma > 0:
                s = float(self.rng.lognormal(math.log(s), cfg.cold_start_sigma))
            self.p_state.append(STARTING)
            self.p_busy.append(0)
            self.p_born.append(now)
            self.p_busy_since.append(0.0)
            self.p_ready_at.append(begin + s)
            self.starting[pid] = None
            self.seq += 1
            heapq.heappush(self.heap, (begin + s, _READY, self.seq, pid, 0))
        self.alive += k
        self.start_seq += k
        if self.queue:
            self.res.cold_starts += k
        self.res.max_replicas = max(self.res.max_replicas, self.alive)
        self._scale_event(now)

    def _gone(self, pid: int, now: float) -> None:
        self.p_state[pid] = GONE
        self.alive -= 1
        if self.cfg.timeline and self.res.times and self.res.times[-1] != now:
            self.res.times.append(now)  # a drained pod leaves later than its scale event
            self.res.replicas.append(self.alive)
        born = self.p_born[pid]
        self.res.replica_s += now - born
        self.res.replica_s_cut += max(0.0, min(now, self.horizon) - born)

    def remove_pod(self, pid: int, now: float) -> None:
        """Remove one pod now (idle or starting) or let it drain (busy)."""
        state = self.p_state[pid]
        if state == STARTING:
            del self.starting[pid]
            self.res.starting_s += now - self.p_born[pid]
            self._gone(pid, now)
        elif state == READY:
            self.ready -= 1
            if self.p_busy[pid] == 0:
                del self.idle[pid]
                self._gone(pid, now)
            else:
                self.p_state[pid] = DRAINING
        self._scale_event(now)

    def remove_pods(self, k: int, now: float) -> None:
        for _ in range(k):
            if self.starting:
                self.remove_pod(next(reversed(self.starting)), now)
            elif self.idle:
                self.remove_pod(next(iter(self.idle)), now)
            else:
                busy = [p for p in range(len(self.p_state)) if self.p_state[p] == READY]
                if not busy:
                    return
                self.remove_pod(busy[-1], now)

    def set_replicas(self, n: int, now: float) -> None:
        self.spec = n
        current = len(self.starting) + self.ready
        if n > current:
            self.start_pods(n - current, now)
        elif n < current:
            self.remove_pods(current - n, now)

    def timer(self, at: float, data: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, _TIMER, self.seq, -1, data))

    # ---- requests --------------------------------------------------------------------------

    def _dispatch(self, idx: int, now: float) -> None:
        free, p_state = self.free, self.p_state
        while True:
            pid = free.pop()
            if p_state[pid] == READY:
                break
        if self.p_busy[pid] == 0:
            del self.idle[pid]
            self.p_busy_since[pid] = now
        self.p_busy[pid] += 1
        self.seq += 1
        heapq.heappush(self.heap, (now + self.dur[idx], _DONE, self.seq, pid, idx))

    def _has_free(self) -> bool:
        free, p_state = self.free, self.p_state
        while free and p_state[free[-1]] != READY:
            free.pop()
        return bool(free)

    def _dequeue(self, now: float) -> None:
        idx = self.queue.popleft()
        self._wait[idx] = now - self.start[idx]
        if self.enq_flag[idx] or self.start_seq > self.enq_seq[idx]:
            self._aff[idx] = 1
        self._dispatch(idx, now)

    def _on_ready(self, pid: int, now: float) -> None:
        if self.p_state[pid] != STARTING:
            return  # removed while starting
        del self.starting[pid]
        self.p_state[pid] = READY
        self.res.starting_s += now - self.p_born[pid]
        self.ready += 1
        self.idle[pid] = now
        self.free.extend([pid] * self.cc)
        while self.queue and self._has_free():
            self._dequeue(now)
        if self.p_busy[pid] == 0 and isinstance(self.controller, EventPolicyBase):
            self.controller.on_pod_idle(self, pid, now)

    def _on_done(self, pid: int, now: float) -> None:
        self.in_system -= 1
        self.p_busy[pid] -= 1
        busy = self.p_busy[pid]
        if busy == 0:
            self.res.busy_s += now - self.p_busy_since[pid]
        if self.p_state[pid] == DRAINING:
            if busy == 0:
                self._gone(pid, now)
            return
        self.free.append(pid)
        if busy == 0:
            self.idle[pid] = now
        if self.queue:
            self._dequeue(now)  # the first slot to free up takes the head of the queue
        elif busy == 0:
            ctl = self.controller
            if isinstance(ctl, EventPolicyBase):
                ctl.on_pod_idle(self, pid, now)
                if self.in_system == 0:
                    ctl.on_app_idle(self, now)

    def _on_arrival(self, idx: int, now: float) -> None:
        self.in_system += 1
        ctl = self.controller
        if isinstance(ctl, EventPolicyBase):
            ctl.on_arrival(self, now)
        if not self.queue and self._has_free():
            self._dispatch(idx, now)
            return
        self.queue.append(idx)
        self.enq_seq[idx] = self.start_seq
        self.enq_flag[idx] = 1 if self.starting else 0
        if isinstance(ctl, EventPolicyBase):
            ctl.on_enqueue(self, now)

    # ---- run -------------------------------------------------------------------------------

    def run_events(self) -> None:
        heap, start, n, t_stop = self.heap, self.start, self.n, self.t_stop
        ctl = self.controller
        assert isinstance(ctl, EventPolicyBase)
        i = 0
        while True:
            t_arr = start[i] if i < n else INF
            if heap and (heap[0][0] < t_arr or (heap[0][0] == t_arr and heap[0][1] < _TIMER)):
                t, kind, _, pid, data = heap[0]
                if t > t_stop:
                    break
                heapq.heappop(heap)
                if kind == _DONE:
                    self._on_done(pid, t)
                elif kind == _READY:
                    self._on_ready(pid, t)
                else:
                    ctl.on_timer(self, t, data)
            elif i < n:
                self._on_arrival(i, t_arr)
                i += 1
            else:
                break
        self.now = t_stop

    def finish(self) -> AppResult:
        end = self.t_stop
        for pid, state in enumerate(self.p_state):
            if state == GONE:
                continue
            if state == STARTING:
                self.res.starting_s += end - self.p_born[pid]
            elif self.p_busy[pid]:
                self.res.busy_s += end - self.p_busy_since[pid]
            self._gone(pid, end)
        self.res.wait = np.asarray(self._wait)
        self.res.affected = np.frombuffer(bytes(self._aff), dtype=np.uint8).astype(bool)
        return self.res


class EventPolicyBase:
    """Base of the event-driven policies (the isinstance checks above dispatch on it)."""

    name = "event"

    def fresh(self) -> EventPolicyBase:
        raise NotImplementedError

    def on_enqueue(self, sim: AppSim, now: float) -> None:
        # §4.4: start a replica iff replicas starting < queue length.
        if len(sim.starting) < len(sim.queue):
            sim.start_pods(1, now)

    def on_pod_idle(self, sim: AppSim, pid: int, now: float) -> None:
        pass

    def on_app_idle(self, sim: AppSim, now: float) -> None:
        pass

    def on_arrival(self, sim: AppSim, now: float) -> None:
        pass

    def on_timer(self, sim: AppSim, now: float, data: int) -> None:
        pass
