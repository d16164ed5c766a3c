"""Tables: one row per workload × policy, mean ± 95 % CI over seeds; and the §5.5 comparison."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import numpy as np

from simulator.metrics import COLUMNS, NUMERIC, Run, mean_ci, t95

_INT_COLUMNS = {"requests", "cold_starts", "queued", "scale_events", "max_replicas"}


@dataclass(frozen=True, slots=True)
class Row:
    workload: str
    policy: str
    seeds: int
    stats: dict[str, tuple[float, float]]  # column → (mean, ci half-width)


def aggregate(runs: list[Run]) -> list[Row]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.workload, r.policy), []).append(r)
    rows = []
    for (w, p), rs in groups.items():
        stats = {c: mean_ci([r.values[c] for r in rs]) for c in NUMERIC}
        rows.append(Row(w, p, len(rs), stats))
    return rows


def _fmt(col: str, mean: float, ci: float, with_ci: bool) -> str:
    if math.isnan(mean):
        return "–"
    digits = 0 if col in _INT_COLUMNS or abs(mean) >= 1000 else (2 if abs(mean) < 10 else 1)
    text = f"{mean:.{digits}f}"
    if with_ci and ci > 0:
        text += f" ± {ci:.{digits}f}"
    return text


def to_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [row.workload, row.policy]
        cells += [_fmt(c, *row.stats[c], with_ci=True) for c in NUMERIC]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*COLUMNS[:2], "seeds", *(x for c in NUMERIC for x in (c, f"{c}_ci95"))])
    for row in rows:
        w.writerow(
            [row.workload, row.policy, row.seeds, *(f"{v:.6g}" for c in NUMERIC for v in row.stats[c])]
        )
    return out.getvalue()


def to_json(rows: list[Row], extra: dict[str, object] | None = None) -> str:
    data = {
        "columns": list(COLUMNS),
        "rows": [
            {
                "workload": r.workload,
                "policy": r.policy,
                "seeds": r.seeds,
                **{c: {"mean": r.stats[c][0], "ci95": r.stats[c][1]} for c in NUMERIC},
            }
            for r in rows
        ],
        **(extra or {}),
    }
    return json.dumps(data, indent=2, allow_nan=False, default=str).replace("NaN", "null") + "\n"


def render(rows: list[Row], fmt: str) -> str:
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows)
    return to_markdown(rows)


# ---- §5.5: does a candidate beat KPA? --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    workload: str
    dominates: bool
    dominated: bool
    x_ratio: float  # candidate x_oracle / KPA's
    y_ratio: float  # candidate cs_affected_per_1k / KPA's
    note: str


def _paired(cand: list[Run], base: list[Run], col: str) -> tuple[float, float]:
    by_seed = {r.seed: r.values[col] for r in base}
    diffs = [r.values[col] - by_seed[r.seed] for r in cand if r.seed in by_seed]
    if len(diffs) < 2:
        return (diffs[0] if diffs else 0.0), 0.0
    a = np.asarray(diffs)
    return float(a.mean()), t95(a.size - 1) * float(a.std(ddof=1)) / math.sqrt(a.size)


def _better(cand: float, base: float, small: float) -> tuple[bool, bool]:
    """(not worse beyond tolerance, better by ≥ 10 %) on a lower-is-better axis."""
    ok = cand <= base * 1.02 if small == 0 else (cand <= base * 0.98 or cand - base <= small)
    return ok, cand <= base * 0.9 and base > 0


def compare(runs: list[Run], workload: str, candidate: str, baseline: str = "kpa") -> Verdict:
    cand = [r for r in runs if r.workload == workload and r.policy == candidate]
    base = [r for r in runs if r.workload == workload and r.policy == baseline]
    if not cand or not base:
        return Verdict(workload, False, False, math.nan, math.nan, "missing runs")
    mx_c = float(np.mean([r.values["x_oracle"] for r in cand]))
    mx_b = float(np.mean([r.values["x_oracle"] for r in base]))
    my_c = float(np.mean([r.values["cs_affected_per_1k"] for r in cand]))
    my_b = float(np.mean([r.values["cs_affected_per_1k"] for r in base]))
    x_ok, x_win = _better(mx_c, mx_b, 0.0)
    y_ok, y_win = _better(my_c, my_b, 0.1) if my_b < 1 else _better(my_c, my_b, 0.0)
    if my_b >= 1:
        y_ok = my_c <= my_b * 0.98
    dx = _paired(cand, base, "x_oracle")
    dy = _paired(cand, base, "cs_affected_per_1k")
    sig = (x_win and dx[0] + dx[1] < 0) or (y_win and dy[0] + dy[1] < 0)
    dominates = x_ok and y_ok and (x_win or y_win) and sig
    # Dominated: KPA is at least as good on both axes and clearly better on one.
    bx_ok, bx_win = _better(mx_b, mx_c, 0.0)
    by_ok, by_win = _better(my_b, my_c, 0.1 if my_c < 1 else 0.0)
    dominated = bx_ok and by_ok and (bx_win or by_win)
    rx = mx_c / mx_b if mx_b else math.nan
    ry = my_c / my_b if my_b else math.nan
    note = f"x {rx:.2f}× ({dx[0]:+.3f} ± {dx[1]:.3f}), cs/1k {ry:.2f}× ({dy[0]:+.2f} ± {dy[1]:.2f})"
    return Verdict(workload, dominates, dominated, rx, ry, note)
