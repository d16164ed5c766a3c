"""Benchmark: one reconciler tick for many revisions (decider + window aggregation).

Target (issue 5): one tick for 10,000 revisions < 200 ms CPU on one core, < 300 MB.
"Tick" = what the loop does per revision every 2 s once metrics are collected: record the two
1-second collections since the last tick into the revision's windows (4 windows each), read
the stable/panic averages, run the KPA policy (decider + bounds/scale-to-zero step). Windows
start full (60 s of history) so the numbers are steady-state, and the load varies per revision
so stable, panic, scale-up and scale-down paths all run.

Run: ``python -m bench.reconciler`` (or via the ``python -m bench`` dispatcher). Prints a table;
exits 1 if the 10,000-revision tick misses its CPU or memory target.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

from reconciler.kpa.policy import KpaPolicy, KpaState
from reconciler.kpa.scaler import ScaleContext
from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import Collection, RevisionKey
from reconciler.metrics.store import MetricsStore
from translator.autoscaling.kpa import KpaSettings

CPU_TARGET_S = 0.200
MEMORY_TARGET_MB = 300.0
T0 = 1_700_000_000.0


@dataclass
class Fleet:
    keys: list[RevisionKey]
    settings: KpaSettings
    store: MetricsStore
    policy: KpaPolicy
    states: list[KpaState]
    replicas: list[int]
    loads: list[float]
    now: float


def build(n: int, seed: int = 42) -> Fleet:
    rng = random.Random(seed)
    settings = KpaSettings()
    store = MetricsStore()
    policy = KpaPolicy()
    keys = [RevisionKey("bench", f"rev-{i:05d}") for i in range(n)]
    loads = [rng.choice([0.0, 5.0, 70.0, 140.0, 700.0]) * rng.uniform(0.5, 1.5) for _ in keys]
    replicas = [max(1, int(load // 70)) for load in loads]
    states = []
    now = T0
    for key, reps in zip(keys, replicas, strict=True):
        store.ensure(key, settings, now)
        states.append(policy.initial_state(settings, reps, reps, now))
    # 60 s of history so every window is full.
    for second in range(60):
        t = T0 + second
        for key, load in zip(keys, loads, strict=True):
            store.record(Collection(key, "ok", StatTotals(concurrency=load, rps=load * 3)), t)
    return Fleet(keys, settings, store, policy, states, replicas, loads, T0 + 60)


def collected(fleet: Fleet, rng: random.Random) -> list[Collection]:
    """This tick's collections (the collectors' output, made before the timed part)."""
    out = []
    for key, base in zip(fleet.keys, fleet.loads, strict=True):
        load = base * rng.uniform(0.8, 1.25)
        out.append(Collection(key, "ok", StatTotals(concurrency=load, rps=load * 3)))
    return out


def tick(fleet: Fleet, first: list[Collection], second: list[Collection]) -> int:
    """One 2-s tick for every revision; returns how many writes it would make."""
    store, policy, settings = fleet.store, fleet.policy, fleet.settings
    t1, t2 = fleet.now, fleet.now + 1
    states, replicas = fleet.states, fleet.replicas
    writes = 0
    for i, key in enumerate(fleet.keys):
        store.record(first[i], t1)
        store.record(second[i], t2)
        reps = replicas[i]
        obs = store.observation(key, settings, reps, True, t2)
        result, states[i] = policy.step(settings, states[i], obs, ScaleContext(reps, reps), t2)
        outcome = result.outcome
        if outcome.apply and outcome.replicas is not None:
            replicas[i] = outcome.replicas
            writes += 1
    fleet.now += 2
    return writes


def cpu_per_tick(n: int, samples: int) -> float:
    """Median CPU seconds of one tick; small fleets run several ticks per sample (timer resolution)."""
    fleet = build(n)
    rng = random.Random(7)
    tick(fleet, collected(fleet, rng), collected(fleet, rng))  # warm-up
    per_sample = max(1, 10_000 // n)
    results = []
    for _ in range(samples):
        inputs = [(collected(fleet, rng), collected(fleet, rng)) for _ in range(per_sample)]
        gc.collect()
        start = time.process_time()
        for first, second in inputs:
            tick(fleet, first, second)
        results.append((time.process_time() - start) / per_sample)
    return statistics.median(results)


def traced_peak_mb(n: int) -> float:
    """Peak Python allocation (tracemalloc) while building the fleet and running two ticks."""
    gc.collect()
    tracemalloc.start()
    try:
        fleet = build(n)
        rng = random.Random(7)
        for _ in range(2):
            tick(fleet, collected(fleet, rng), collected(fleet, rng))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del fleet
    return peak / 1e6


def rss_mb(n: int) -> float:
    """Max RSS of a fresh interpreter that builds the fleet and runs two ticks (no tracemalloc)."""
    # VmHWM (peak RSS of this address space), not ru_maxrss: Linux carries ru_maxrss across
    # exec, so a child of a big parent would report the parent's peak.
    code = (
        "import random; from bench.reconciler import build, tick, collected; "
        f"f = build({n}); r = random.Random(7); "
        "[tick(f, collected(f, r), collected(f, r)) for _ in range(2)]; "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024  # kB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.reconciler", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--samples", type=int, default=5, help="timed samples per size (median reported)")
    args = parser.parse_args(argv)

    print("bench/reconciler: one 2-s tick per revision = 2 window records + observe + KPA policy step")
    print(f"{'revisions':>10} {'CPU/tick ms':>12} {'µs/revision':>12} {'traced MB':>10} {'max RSS MB':>11}")
    ok = True
    rows = []
    for n in args.sizes:
        cpu = cpu_per_tick(n, args.samples)
        traced = traced_peak_mb(n)
        rss = rss_mb(n)
        rows.append((n, cpu))
        print(f"{n:>10} {cpu * 1e3:>12.2f} {cpu / n * 1e6:>12.2f} {traced:>10.1f} {rss:>11.0f}")
        if n == 10_000 and (cpu >= CPU_TARGET_S or rss >= MEMORY_TARGET_MB):
            ok = False
    if len(rows) > 1:
        (n0, c0), (n1, c1) = rows[0], rows[-1]
        print(f"growth {n0}→{n1} revisions: ×{c1 / c0:.1f} CPU for ×{n1 / n0:.0f} revisions (linear = equal)")
    print("max RSS: peak of a fresh interpreter (imports ≈ 45 MB) that builds the fleet and runs two ticks")
    print(
        f"targets at 10,000: CPU < {CPU_TARGET_S * 1e3:.0f} ms, memory < {MEMORY_TARGET_MB:.0f} MB: ", end=""
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
