"""`knscale simulate` — replay workloads or traces against scaling policies, print the comparison table.

The simulator drives the reconciler's own policy objects (KPA, knscale's cold-start-aware
policy) on a simulated clock; see docs/autoscaling.md. Exit 0 on success, 2 on bad flags or an
unreadable/malformed trace (the message names file and line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.traces import Workload


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate scaling policies on synthetic workloads (W1–W7) or a trace; print the table",
        description=(
            "Trace-driven simulation of KPA, knscale's cold-start-aware policy and baselines "
            "(hpa, keda, keepalive-T, hybrid, kpa-sweep, oracle). One row per workload × policy, "
            "mean ± 95%% CI over seeds."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--workload", nargs="+", metavar="W", help="W1 … W7 (default: all seven)")
    src.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="Azure 2021 (app,func,end_timestamp,duration), Azure 2019 per-minute, or timestamp,duration CSV",
    )
    p.add_argument(
        "--spreading",
        choices=("exponential", "uniform"),
        default="exponential",
        help="how a 2019 trace's per-minute counts are spread within the minute",
    )
    p.add_argument(
        "--policy",
        default=None,
        metavar="A,B,…",
        help="comma-separated policies (default: kpa,hpa,keda,keepalive-10m,keepalive-20m,hybrid,"
        "knscale,oracle); kpa-sweep expands to §5.3's KPA variants",
    )
    p.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds per workload (default 5)")
    p.add_argument(
        "--seed-base", type=int, default=0, metavar="K", help="first seed (default 0; tune on 100+)"
    )
    p.add_argument(
        "--cold-start", type=float, default=2.0, metavar="S", help="pod start time in seconds (default 2)"
    )
    p.add_argument(
        "--cold-start-sigma",
        type=float,
        default=0.0,
        metavar="σ",
        help="draw each start from log-normal(median S, σ) (default 0: fixed)",
    )
    p.add_argument("--container-concurrency", type=int, default=1, metavar="N", help="default 1")
    p.add_argument(
        "--start-rate", type=float, default=0.0, metavar="R", help="pod starts/s per app (0 = unlimited)"
    )
    p.add_argument(
        "--scrape-lag", type=float, default=1.0, metavar="SEC", help="metric age at each tick (default 1)"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="workload parameter, e.g. rate=80 or apps=500 (applies to every chosen workload that has it)",
    )
    p.add_argument(
        "--policy-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter of knscale's policy, e.g. miss_cost=120",
    )
    p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def _pairs(items: list[str], flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"knscale simulate: {flag} {item!r}: expected NAME=NUMBER") from None
    return out


def run(args: argparse.Namespace) -> int:
    from simulator.model import ModelConfig
    from simulator.policies import DEFAULT_POLICIES, PolicyError, expand
    from simulator.report import aggregate, render
    from simulator.runner import run_matrix, synthetic
    from simulator.traces import TraceError, load_trace
    from simulator.workloads import GENERATORS, PARAMS

    def fail(msg: str) -> int:
        print(f"knscale simulate: {msg}", file=sys.stderr)
        return 2

    if args.seeds < 1 or args.container_concurrency < 1 or args.cold_start < 0:
        return fail("--seeds and --container-concurrency must be ≥ 1, --cold-start ≥ 0")
    try:
        params = _pairs(args.param, "--param")
        policy_params = _pairs(args.policy_param, "--policy-param")
    except SystemExit as exc:
        return fail(str(exc).removeprefix("knscale simulate: "))
    policies = expand(
        [p.strip() for p in (args.policy or ",".join(DEFAULT_POLICIES)).split(",") if p.strip()]
    )
    cfg = ModelConfig(
        cold_start=args.cold_start,
        cold_start_sigma=args.cold_start_sigma,
        container_concurrency=args.container_concurrency,
        start_rate=args.start_rate,
        scrape_lag=args.scrape_lag,
        timeline=args.plots is not None,
    )
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    if args.trace is not None:
        try:
            trace = load_trace(args.trace, spreading=args.spreading, seed=args.seed_base)
        except TraceError as exc:
            return fail(str(exc))

        def replay(_seed: int, t: Workload = trace) -> Workload:
            return t

        sources: list[tuple[str, Callable[[int], Workload]]] = [(trace.name, replay)]
    else:
        names = [w.upper() for item in (args.workload or list(GENERATORS)) for w in item.split(",") if w]
        unknown = [w for w in names if w not in GENERATORS]
        if unknown:
            return fail(f"unknown workload {unknown[0]!r}; choose from {', '.join(GENERATORS)}")
        known = {k for w in names for k in PARAMS[w]}
        bad = sorted(set(params) - known)
        if bad:
            return fail(f"--param {bad[0]!r} is not a parameter of {', '.join(names)}")
        sources = [(w, synthetic(w, params)) for w in names]
    try:
        runs = run_matrix(
            sources, policies, seeds, cfg, policy_params=policy_params or None, progress=not args.no_progress
        )
    except (PolicyError, TypeError) as exc:
        return fail(str(exc))
    rows = aggregate(runs)
    sys.stdout.write(render(rows, args.format))
    if args.plots is not None:
        _plots(args.plots, sources, runs, rows, cfg, seeds[0])
    return 0


def _plots(out: Path, sources: Any, runs: Any, rows: Any, cfg: Any, seed: int) -> None:
    from simulator.oracle import levels
    from simulator.plots import plot_pareto, plot_timeline

    out.mkdir(parents=True, exist_ok=True)
    for name, source in sources:
        wl = source(seed)
        mine = [r for r in runs if r.workload == name and r.seed == seed and r.timeline is not None]
        plot_timeline(wl, [r for r in mine if not r.policy.startswith("kpa-r")], out / f"{name}-timeline.png")
        lvs = [levels(a, cfg.container_concurrency) for a in wl.apps]
        plot_pareto(name, rows, out / f"{name}-pareto.png", lvs, cfg.cold_start, float(wl.requests))
        print(f"plots: {out / name}-timeline.png, {out / name}-pareto.png", file=sys.stderr)
