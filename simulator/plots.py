"""PNG plots (matplotlib, Agg backend): demand vs replicas over time, and the per-workload Pareto plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter

from simulator.metrics import Run
from simulator.oracle import Levels, frontier
from simulator.report import Row
from simulator.traces import FloatArray, Workload

_SWEEP_PREFIX = "kpa-r"


def demand_on_grid(workload: Workload, grid: FloatArray) -> FloatArray:
    """Requests (on time, no waiting) that are in flight at some moment of each grid interval.

    Counting overlaps rather than sampling the grid instants keeps 1-second calls visible on a
    day-long axis (sampling would alias them away and make demand look sparser than it is).
    """
    total = np.zeros(grid.size)
    step = grid[1] - grid[0] if grid.size > 1 else 1.0
    for app in workload.apps:
        ends = np.sort(app.start + app.duration)
        total += np.searchsorted(app.start, grid + step, side="left") - np.searchsorted(
            ends, grid, side="right"
        )
    return total


def replicas_on_grid(run: Run, grid: FloatArray) -> FloatArray:
    total = np.zeros(grid.size)
    for times, reps in run.timeline or []:
        if not times:
            continue
        t = np.asarray(times)
        r = np.asarray(reps, dtype=float)
        idx = np.searchsorted(t, grid, side="right") - 1
        total += np.where(idx >= 0, r[np.clip(idx, 0, None)], 0.0)
    return total


def plot_timeline(workload: Workload, runs: Sequence[Run], path: Path, points: int = 1500) -> Path:
    grid = np.linspace(0.0, workload.horizon, points)
    hours = grid / 3600.0
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    for run in runs:
        if run.timeline is not None:
            ax.step(hours, replicas_on_grid(run, grid), where="post", lw=1.0, label=f"{run.policy} replicas")
    # Demand last and in black, so it is not hidden when replicas dwarf it (cc = 1 from zero).
    demand = demand_on_grid(workload, grid)
    ax.step(
        hours,
        demand,
        where="post",
        color="k",
        lw=1.4,
        label="demand: requests in flight (if served on time) during each interval",
    )
    ax.set_xlabel("time (hours)")
    ax.set_ylabel("count (summed over apps)")
    ax.set_title(f"{workload.name}: demand vs replicas (seed {runs[0].seed if runs else '-'})")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(0, hours[-1])
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_pareto(
    workload: str,
    rows: Sequence[Row],
    path: Path,
    lvs: list[Levels] | None = None,
    cold_start: float = 2.0,
    requests: float = 0.0,
) -> Path:
    """x: replica-seconds / ORACLE-0CS; y: cold-start-affected requests per 1k; error bars = 95 % CI."""
    mine = [r for r in rows if r.workload == workload]
    fig, ax = plt.subplots(figsize=(9.5, 5.2), dpi=100)
    sweep = sorted(
        (r for r in mine if r.policy.startswith(_SWEEP_PREFIX)), key=lambda r: r.stats["x_oracle"][0]
    )
    if sweep:
        ax.plot(
            [r.stats["x_oracle"][0] for r in sweep],
            [r.stats["cs_affected_per_1k"][0] for r in sweep],
            "-",
            color="tab:blue",
            alpha=0.5,
            lw=1.5,
            label="KPA sweep (retention × window)",
        )
        for r in sweep:
            ax.annotate(
                r.policy.removeprefix("kpa-"),
                (r.stats["x_oracle"][0], r.stats["cs_affected_per_1k"][0]),
                fontsize=6,
                color="tab:blue",
                xytext=(3, 3),
                textcoords="offset points",
            )
    mine_sweep = sorted(
        (r for r in mine if r.policy.startswith("knscale")), key=lambda r: r.stats["x_oracle"][0]
    )
    if len(mine_sweep) > 1:
        ax.plot(
            [r.stats["x_oracle"][0] for r in mine_sweep],
            [r.stats["cs_affected_per_1k"][0] for r in mine_sweep],
            "--",
            color="tab:red",
            alpha=0.6,
            lw=1.2,
            label="knscale, κ sweep",
        )
    if lvs and requests:
        kappas = np.concatenate([[0.0], np.geomspace(1.0, 86400.0, 40)])
        rs, cold = frontier(lvs, cold_start, kappas)
        oracle = sum(lv.busy for lv in lvs) + sum(float(np.minimum(lv.gaps, cold_start).sum()) for lv in lvs)
        ax.plot(
            rs / oracle,
            1000.0 * cold / requests,
            ":",
            color="k",
            lw=1,
            label="ORACLE-KA(κ) frontier (y = cold starts per 1k)",
        )
    markers = {
        "kpa": ("o", "tab:blue"),
        "knscale": ("*", "tab:red"),
        "hybrid": ("s", "tab:green"),
        "oracle": ("P", "k"),
        "hpa": ("v", "tab:purple"),
        "keda": ("^", "tab:brown"),
    }
    others = iter(["tab:olive", "tab:cyan", "tab:pink", "tab:gray", "tab:orange", "gold"])
    for r in mine:
        if r.policy.startswith(_SWEEP_PREFIX):
            continue
        if r.policy not in markers and not r.policy.startswith("knscale"):
            markers[r.policy] = ("D", next(others, "tab:gray"))
        m, c = markers.get(
            r.policy, ("*", "tab:red") if r.policy.startswith("knscale") else ("D", "tab:gray")
        )
        x, xe = r.stats["x_oracle"]
        y, ye = r.stats["cs_affected_per_1k"]
        ax.errorbar(
            [x], [y], xerr=[xe], yerr=[ye], fmt=m, color=c, ms=9 if m == "*" else 6, capsize=2, label=r.policy
        )
        if r.policy.startswith("knscale"):  # three red stars: say which κ each one is
            kappa = r.policy.removeprefix("knscale-k") if r.policy != "knscale" else "300 (default)"
            ax.annotate(
                f"κ={kappa}", (x, y), fontsize=7, color="tab:red", xytext=(6, -10), textcoords="offset points"
            )
    ax.set_xscale("log")
    ax.set_xlabel("replica-seconds / ORACLE-0CS (log; 1 = oracle)")
    ax.set_ylabel("cold-start-affected requests per 1k (lower is better)")
    ax.set_title(f"{workload}: cold starts vs cost, S = {cold_start:g} s (mean ± 95% CI)")
    top = max([sum(r.stats["cs_affected_per_1k"]) for r in mine] + [1.0])
    # Points at 0 (oracle, HPA) stay visible above the axis; the frontier's far end (κ → 0, every
    # gap cold) would squash the policies into the bottom strip, so the y range follows them.
    ax.set_ylim(-0.03 * top, 1.25 * top)
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=6)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
