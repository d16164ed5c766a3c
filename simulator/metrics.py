"""One run = one workload × one policy × one seed → the reference's columns (§5.4, issue 11).

* ``cs_affected_per_1k``: requests that waited on a starting replica, per 1000 requests.
* ``slo_viol_pct``: latency > max(2 × service, service + 250 ms).
* ``x_oracle`` = replica_s / ORACLE-0CS; ``x_busy`` = replica_s / (Σ service / cc).
* ``fn_cold_pct_p50/p75``: per function, the % of its requests that were cold-start-affected;
  the 50th and 75th percentile over functions (Shahrad's "3rd-quartile app").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.model import AppResult, AppSim, ModelConfig
from simulator.oracle import Levels, levels, oracle_0cs
from simulator.policies import Built
from simulator.tick import simulate
from simulator.traces import Workload

COLUMNS = (
    "workload",
    "policy",
    "requests",
    "cold_starts",
    "cs_affected_per_1k",
    "queued",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "slo_viol_pct",
    "replica_s",
    "idle_replica_s",
    "x_oracle",
    "x_busy",
    "fn_cold_pct_p50",
    "fn_cold_pct_p75",
    "scale_events",
    "max_replicas",
)
NUMERIC = COLUMNS[2:]


@dataclass
class Run:
    workload: str
    policy: str
    seed: int
    values: dict[str, float]
    timeline: list[tuple[list[float], list[int]]] | None = None


def _oracle_values(lvs: list[Levels], s: float) -> float:
    return sum(oracle_0cs(lv, s) for lv in lvs)


def run_one(
    workload: Workload,
    built: Built,
    cfg: ModelConfig,
    seed: int,
    lvs: list[Levels] | None = None,
    on_app: Callable[[int], None] | None = None,
) -> Run:
    cc = cfg.container_concurrency
    lvs = lvs if lvs is not None else [levels(a, cc) for a in workload.apps]
    oracle_rs = _oracle_values(lvs, cfg.cold_start)
    service = np.concatenate([a.duration for a in workload.apps]) if workload.apps else np.zeros(0)
    work = float(service.sum()) / cc
    waits, affected, fn_pct = [], [], []
    cold = scale_events = max_rep = 0
    replica_s = busy = starting = 0.0
    timeline: list[tuple[list[float], list[int]]] = []
    for k, app in enumerate(workload.apps):
        if built.oracle:
            res = AppResult(
                wait=np.zeros(app.requests),
                affected=np.zeros(app.requests, dtype=bool),
                replica_s=oracle_0cs(lvs[k], cfg.cold_start),
                busy_s=lvs[k].busy,
            )
        else:
            ctl = built.tick if built.tick is not None else built.event.fresh()  # type: ignore[union-attr]
            res = simulate(AppSim(app, workload.horizon, cfg, ctl, seed=seed * 100_003 + k))
        waits.append(res.wait)
        affected.append(res.affected)
        for f in range(len(app.functions)):
            mask = app.func == f
            if mask.any():
                fn_pct.append(100.0 * float(res.affected[mask].mean()))
        cold += res.cold_starts
        scale_events += res.scale_events
        max_rep = max(max_rep, res.max_replicas)
        replica_s += res.replica_s
        busy += res.busy_s
        starting += res.starting_s
        if cfg.timeline:
            timeline.append((res.times, res.replicas))
        if on_app:
            on_app(app.requests)
    wait = np.concatenate(waits) if waits else np.zeros(0)
    aff = np.concatenate(affected) if affected else np.zeros(0, dtype=bool)
    latency = wait + service
    n = max(1, wait.size)
    slo = np.maximum(2 * service, service + 0.25)
    pct = np.percentile(latency, [50, 95, 99]) * 1000 if latency.size else np.zeros(3)
    fn = np.asarray(fn_pct) if fn_pct else np.zeros(1)
    values = {
        "requests": float(wait.size),
        "cold_starts": float(cold),
        "cs_affected_per_1k": 1000.0 * float(aff.sum()) / n,
        "queued": float((wait > 0).sum()),
        "p50_ms": float(pct[0]),
        "p95_ms": float(pct[1]),
        "p99_ms": float(pct[2]),
        "slo_viol_pct": 100.0 * float((latency > slo + 1e-9).sum()) / n,
        "replica_s": replica_s,
        "idle_replica_s": replica_s - busy - starting,
        "x_oracle": replica_s / oracle_rs if oracle_rs else float("nan"),
        "x_busy": replica_s / work if work else float("nan"),
        "fn_cold_pct_p50": float(np.percentile(fn, 50)),
        "fn_cold_pct_p75": float(np.percentile(fn, 75)),
        "scale_events": float(scale_events),
        "max_replicas": float(max_rep),
    }
    return Run(workload.name, built.name, seed, values, timeline if cfg.timeline else None)


# Two-sided 95 % Student-t quantiles by degrees of freedom (n − 1).
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}


def t95(df: int) -> float:
    if df <= 0:
        return float("nan")
    keys = [k for k in _T95 if k <= df]
    return _T95[max(keys)] if df not in _T95 else _T95[df]


def mean_ci(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student t; 0 for one seed)."""
    a = np.asarray(xs, dtype=float)
    if a.size < 2:
        return float(a.mean()) if a.size else float("nan"), 0.0
    return float(a.mean()), t95(a.size - 1) * float(a.std(ddof=1)) / float(np.sqrt(a.size))
