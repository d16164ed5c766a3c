"""`python -m bench autoscaling [--full] [--workers N] [--out DIR]` — the autoscaling policy matrix.

Default (what `make bench` runs): a short smoke matrix, seconds. `--full`: the seven workloads ×
policies × seeds 0–4 × S ∈ {2 s, 10 s}, at the bench sizes below (the reference sizes are the
generators' defaults, `knscale simulate --param` restores them), in `--workers` processes;
writes `autoscaling.json`, one Markdown table per S, the §5.5 verdicts and PNGs into `--out`.
`--speed` measures simulated requests per second on W6 on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

from simulator.metrics import Run, run_one
from simulator.model import ModelConfig
from simulator.oracle import levels
from simulator.plots import plot_pareto, plot_timeline
from simulator.policies import build
from simulator.report import aggregate, compare, to_markdown
from simulator.workloads import generate

# Bench sizes: the reference shapes, shortened so the whole matrix fits in 30 minutes on two
# shared cores (Python simulates ~2–20k requests/s per core, dominated by the 2 s policy tick).
BENCH_PARAMS: dict[str, dict[str, float]] = {
    "W1": {"duration": 600.0},
    "W2": {"before": 300.0, "step": 150.0, "after": 450.0},
    "W3": {"period": 1800.0, "cycles": 1.0, "mean": 10.0},
    "W4": {"functions": 40.0, "hours": 12.0},
    "W5": {"functions": 24.0, "hours": 12.0},
    "W6": {"apps": 40.0, "hours": 6.0},
    "W7": {"functions": 4.0, "hours": 1.0},
}
POLICIES = (
    "kpa",
    "knscale",
    "knscale-k60",
    "knscale-k1200",
    "hybrid",
    "hpa",
    "keda",
    "keepalive-10m",
    "keepalive-20m",
    "oracle",
)
SWEEP = ("kpa-r1m-w60s", "kpa-r10m-w60s", "kpa-r60m-w60s", "kpa-r0m-w30s", "kpa-r0m-w120s")
SWEEP_ON = ("W4", "W5", "W6", "W7")  # where retention matters; on W1–W3 KPA never idles
SEEDS = tuple(range(5))
COLD_STARTS = (2.0, 10.0)


def _job(args: tuple[str, float, int, tuple[str, ...], dict[str, float]]) -> list[dict[str, Any]]:
    name, s, seed, policies, params = args
    cfg = ModelConfig(cold_start=s)
    wl = generate(name, seed, params)
    lvs = [levels(a, 1) for a in wl.apps]
    out = []
    for p in policies:
        t0 = time.perf_counter()
        run = run_one(wl, build(p, cfg), cfg, seed, lvs)
        out.append(
            {
                "workload": name,
                "policy": p,
                "seed": seed,
                "cold_start": s,
                "values": run.values,
                "seconds": time.perf_counter() - t0,
            }
        )
    return out


def _policies_for(name: str) -> tuple[str, ...]:
    return POLICIES + (SWEEP if name in SWEEP_ON else ())


def full(out: Path, workers: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (w, s, seed, _policies_for(w), BENCH_PARAMS[w])
        for s in COLD_STARTS
        for w in BENCH_PARAMS
        for seed in SEEDS
    ]
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    with Pool(workers) as pool:
        for i, rec in enumerate(pool.imap_unordered(_job, jobs), start=1):
            records.extend(rec)
            print(
                f"[{i}/{len(jobs)}] {rec[0]['workload']} S={rec[0]['cold_start']:g} seed {rec[0]['seed']} "
                f"({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    wall = time.perf_counter() - t0
    (out / "autoscaling.json").write_text(
        json.dumps({"wall_seconds": wall, "params": BENCH_PARAMS, "runs": records}, indent=1) + "\n"
    )
    report(records, out)
    (out / "autoscaling-summary.md").write_text(summary(records))
    print(f"full matrix: {len(jobs)} jobs, {len(records)} runs, {wall:.0f}s wall with {workers} workers")
    return 0


def report(records: list[dict[str, Any]], out: Path) -> None:
    for s in COLD_STARTS:
        runs = [
            Run(r["workload"], r["policy"], r["seed"], r["values"]) for r in records if r["cold_start"] == s
        ]
        rows = sorted(aggregate(runs), key=lambda r: (r.workload, r.policy))
        text = [
            f"# Autoscaling matrix, S = {s:g} s (mean ± 95% CI over seeds 0–4)\n",
            to_markdown(rows),
            "",
            "## knscale vs KPA defaults (§5.5) and vs hybrid\n",
            "| workload | dominates KPA | dominated by KPA | vs KPA | vs hybrid: dominates | vs hybrid |",
            "|---|---|---|---|---|---|",
        ]
        for w in BENCH_PARAMS:
            v = compare(runs, w, "knscale", "kpa")
            h = compare(runs, w, "knscale", "hybrid")
            text.append(f"| {w} | {v.dominates} | {v.dominated} | {v.note} | {h.dominates} | {h.note} |")
        (out / f"autoscaling-S{s:g}.md").write_text("\n".join(text) + "\n")
        for w in ("W4", "W5", "W6", "W7"):
            cfg = ModelConfig(cold_start=s)
            wl = generate(w, 0, BENCH_PARAMS[w])
            lvs = [levels(a, 1) for a in wl.apps]
            plot_pareto(w, rows, out / f"{w}-pareto-S{s:g}.png", lvs, s, float(wl.requests))
            del cfg


def _mean(runs: list[Run], w: str, p: str, col: str) -> float:
    xs = [r.values[col] for r in runs if r.workload == w and r.policy == p]
    return sum(xs) / len(xs) if xs else float("nan")


def summary(records: list[dict[str, Any]]) -> str:
    """knscale vs KPA and hybrid, side by side, with the issue's targets checked."""
    lines = [
        "| S | workload | policy | cs_affected_per_1k | cold_starts | replica_s | x_oracle | p99_ms "
        "| slo_viol_pct |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    checks = []
    for s in COLD_STARTS:
        runs = [
            Run(r["workload"], r["policy"], r["seed"], r["values"]) for r in records if r["cold_start"] == s
        ]
        rows = {(r.workload, r.policy): r for r in aggregate(runs)}
        for w in BENCH_PARAMS:
            for p in ("kpa", "knscale", "hybrid"):
                row = rows.get((w, p))
                if row is None:
                    continue
                st = row.stats
                cs, ci = st["cs_affected_per_1k"]
                lines.append(
                    f"| {s:g} | {w} | {p} | {cs:.1f} ± {ci:.1f} | "
                    f"{st['cold_starts'][0]:.0f} | {st['replica_s'][0]:.0f} | {st['x_oracle'][0]:.2f} ± "
                    f"{st['x_oracle'][1]:.2f} | {st['p99_ms'][0]:.0f} | {st['slo_viol_pct'][0]:.2f} |"
                )
        dom = [w for w in BENCH_PARAMS if compare(runs, w, "knscale").dominates]
        lost = [w for w in BENCH_PARAMS if compare(runs, w, "knscale").dominated]
        checks.append(
            f"- S = {s:g} s: dominates KPA (§5.5) on {len(dom)}/7 ({', '.join(dom) or '–'}); "
            f"dominated on {', '.join(lost) or 'none'}"
        )
        for w in ("W4", "W6"):
            cs = _mean(runs, w, "knscale", "cs_affected_per_1k") / _mean(runs, w, "kpa", "cs_affected_per_1k")
            rs = _mean(runs, w, "knscale", "replica_s") / _mean(runs, w, "kpa", "replica_s")
            ok = cs <= 0.5 and rs <= 1.0
            checks.append(
                f"  - {w}: cs-affected {100 * (1 - cs):.0f} % fewer at {rs:.2f}× KPA replica-s "
                f"(target ≥ 50 % at ≤ 1.0×): {'met' if ok else 'missed'}"
            )
        cs = _mean(runs, "W5", "knscale", "cold_starts") / _mean(runs, "W5", "kpa", "cold_starts")
        rs = _mean(runs, "W5", "knscale", "replica_s") / _mean(runs, "W5", "kpa", "replica_s")
        checks.append(
            f"  - W5: cold starts {100 * (1 - cs):.0f} % fewer at {rs:.2f}× (target ≥ 90 % at ≤ 1.2×): "
            f"{'met' if cs <= 0.1 and rs <= 1.2 else 'missed'}"
        )
        p99 = [
            _mean(runs, w, "knscale", "p99_ms") / _mean(runs, w, "kpa", "p99_ms") for w in ("W1", "W2", "W3")
        ]
        checks.append(
            f"  - W1–W3 p99 vs KPA: {', '.join(f'{x:.3f}×' for x in p99)} (target ≤ 1.05×): "
            f"{'met' if max(p99) <= 1.05 else 'missed'}"
        )
        vs_h = [
            f"{w} {'dominates' if compare(runs, w, 'knscale', 'hybrid').dominates else 'does not dominate'}"
            f" ({compare(runs, w, 'knscale', 'hybrid').note})"
            for w in ("W4", "W5", "W6")
        ]
        checks.append("  - vs hybrid: " + "; ".join(vs_h))
    return "\n".join(lines) + "\n\n" + "\n".join(checks) + "\n"


def timelines(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for w, params in (("W7", {"functions": 3.0, "hours": 1.0}), ("W5", {"functions": 8.0, "hours": 3.0})):
        cfg = ModelConfig(cold_start=2.0, timeline=True)
        wl = generate(w, 0, params)
        runs = [run_one(wl, build(p, cfg), cfg, 0) for p in ("kpa", "knscale", "hybrid")]
        plot_timeline(wl, runs, out / f"{w}-timeline.png")


def speed(apps: int, hours: float) -> int:
    """Simulated requests per second on W6, one process."""
    wl = generate("W6", 0, {"apps": float(apps), "hours": hours})
    for p in ("kpa", "knscale"):
        cfg = ModelConfig(cold_start=2.0)
        t0 = time.perf_counter()
        run_one(wl, build(p, cfg), cfg, 0)
        dt = time.perf_counter() - t0
        print(
            f"W6 ({apps} apps, {hours:g} h, {wl.requests} requests) {p}: {dt:.1f}s, "
            f"{wl.requests / dt:,.0f} requests/s ({60 * wl.requests / dt / 1e6:.2f} M/min)"
        )
    return 0


def smoke() -> int:
    t0 = time.perf_counter()
    for w, params in (("W1", {"duration": 120.0, "rate": 20.0}), ("W5", {"functions": 8.0, "hours": 4.0})):
        cfg = ModelConfig(cold_start=2.0)
        wl = generate(w, 0, params)
        runs = [run_one(wl, build(p, cfg), cfg, 0) for p in ("kpa", "knscale", "oracle")]
        for r in runs:
            v = r.values
            print(
                f"{w} {r.policy:8s} requests {v['requests']:.0f} cs/1k {v['cs_affected_per_1k']:.1f} "
                f"x_oracle {v['x_oracle']:.2f} p99 {v['p99_ms']:.0f} ms"
            )
    print(f"autoscaling smoke: {time.perf_counter() - t0:.1f}s")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench autoscaling", description=__doc__)
    ap.add_argument("--full", action="store_true", help="the whole matrix (≈ 30 min)")
    ap.add_argument("--speed", action="store_true", help="requests/s on W6")
    ap.add_argument("--timelines", action="store_true", help="demand-vs-replicas PNGs")
    ap.add_argument("--report", action="store_true", help="rebuild tables/plots from OUT/autoscaling.json")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--apps", type=int, default=200)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    a = ap.parse_args(argv)
    if a.report:
        records = json.loads((a.out / "autoscaling.json").read_text())["runs"]
        report(records, a.out)
        (a.out / "autoscaling-summary.md").write_text(summary(records))
        print(summary(records))
        return 0
    if a.speed:
        return speed(a.apps, a.hours)
    if a.timelines:
        timelines(a.out)
        return 0
    if a.full:
        return full(a.out, a.workers)
    return smoke()
