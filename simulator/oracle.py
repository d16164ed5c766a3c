"""Clairvoyant lower bounds (autoscaling-benchmark.md §4.2, level form of §4.4).

r(t) = ceil(in_flight(t) / cc) with every request on time (no waiting). Slot k is busy while
r(t) ≥ k. ORACLE-0CS charges ∫ r dt plus min(g, S) for every idle gap g of every slot (the
time before a slot's first busy interval and after its last is free, and so is its first
start): the exact minimum of ∫ w dt + S·starts over w ≥ r, because each level is its own
ski-rental problem and the per-level optima nest.

ORACLE-KA(κ) keeps a slot warm across a gap iff g < S + κ and otherwise releases it and takes a
cold start (cost S); it never pre-warms. Sweeping κ traces the offline keep-alive frontier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.traces import AppTrace, FloatArray, Workload


@dataclass(frozen=True, slots=True)
class Levels:
    busy: float  # ∫ r dt
    gaps: FloatArray  # every idle gap of every slot
    first_starts: int  # slots' first starts (free for the oracle, cold for keep-alive)


def levels(app: AppTrace, cc: int) -> Levels:
    """The slot gaps of one app, from its requests' [start, end) intervals."""
    if not app.requests:
        return Levels(0.0, np.zeros(0), 0)
    start = app.start
    end = app.start + app.duration
    times = np.concatenate([end, start])
    deltas = np.concatenate([-np.ones(end.size, dtype=np.int64), np.ones(start.size, dtype=np.int64)])
    # Sort by time, ends before starts at equal times (§4.4).
    order = np.lexsort((deltas, times))
    times, deltas = times[order], deltas[order]
    inflight = np.cumsum(deltas)
    r = -(-inflight // cc)  # ceil for non-negative ints
    prev = np.concatenate([[0], r[:-1]])
    busy = float(np.sum(r[:-1] * np.diff(times))) if times.size > 1 else 0.0
    last_end: dict[int, float] = {}
    gaps: list[float] = []
    firsts = 0
    # Work is Σ|Δr| level changes; r moves by at most one level per event when cc = 1.
    change = np.nonzero(r != prev)[0]
    for idx in change.tolist():
        a, b, t = int(prev[idx]), int(r[idx]), float(times[idx])
        if b > a:
            for k in range(a + 1, b + 1):
                if k in last_end:
                    gaps.append(t - last_end[k])
                else:
                    firsts += 1
        else:
            for k in range(b + 1, a + 1):
                last_end[k] = t
    return Levels(busy, np.asarray(gaps, dtype=np.float64), firsts)


def oracle_0cs(lv: Levels, s: float) -> float:
    return lv.busy + float(np.minimum(lv.gaps, s).sum())


def oracle_ka(lv: Levels, s: float, kappa: float) -> tuple[float, int]:
    """(replica-seconds, cold starts) of clairvoyant keep-alive with miss price κ."""
    keep = lv.gaps < s + kappa
    replica_s = lv.busy + float(lv.gaps[keep].sum()) + s * float((~keep).sum())
    return replica_s, int((~keep).sum()) + lv.first_starts


def workload_levels(workload: Workload, cc: int) -> list[Levels]:
    return [levels(a, cc) for a in workload.apps]


def frontier(lvs: list[Levels], s: float, kappas: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ORACLE-KA over κ: summed (replica-seconds, cold starts) per κ."""
    rs = np.zeros(kappas.size)
    cold = np.zeros(kappas.size)
    for lv in lvs:
        for i, k in enumerate(kappas.tolist()):
            a, b = oracle_ka(lv, s, k)
            rs[i] += a
            cold[i] += b
    return rs, cold
