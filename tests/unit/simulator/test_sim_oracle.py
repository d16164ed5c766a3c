"""ORACLE-0CS (level form) equals a brute-force dynamic program over replica counts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.oracle import levels, oracle_0cs, oracle_ka
from simulator.traces import make_app


def brute_force(start: np.ndarray, dur: np.ndarray, cc: int, s: float) -> float:
    """min ∫ w dt + S·(re-)starts over piecewise-constant w ≥ r; a slot's first start is free (§4.4)."""
    ends = start + dur
    times = sorted(set(start.tolist()) | set(ends.tolist()))
    segs = []
    for a, b in itertools.pairwise(times):
        mid = (a + b) / 2
        inflight = int(((start <= mid) & (ends > mid)).sum())
        segs.append((b - a, math.ceil(inflight / cc)))
    top = max((r for _, r in segs), default=0)
    # State (w, m): replicas now, highest slot ever started. Memo over segments.
    best: dict[tuple[int, int], float] = {(0, 0): 0.0}
    for length, need in segs:
        nxt: dict[tuple[int, int], float] = {}
        for (w, m), cost in best.items():
            for w2 in range(need, top + 1):
                restarts = max(0, min(w2, m) - w)  # slots ≤ m started again; above m: first start, free
                c = cost + s * restarts + w2 * length
                key = (w2, max(m, w2))
                if c < nxt.get(key, math.inf):
                    nxt[key] = c
        best = nxt
    return min(best.values())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("cc", [1, 2])
def test_oracle_equals_brute_force(seed: int, cc: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    start = np.round(rng.uniform(0, 30, n), 1)
    dur = np.round(rng.uniform(0.5, 6, n), 1)
    s = float(rng.choice([0.0, 1.0, 2.5, 10.0]))
    app = make_app("a", start, dur)
    assert oracle_0cs(levels(app, cc), s) == pytest.approx(
        brute_force(app.start, app.duration, cc, s), abs=1e-9
    )


def test_end_and_start_at_the_same_instant_is_no_gap() -> None:
    app = make_app("a", np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    lv = levels(app, 1)
    assert lv.busy == 2.0 and lv.gaps.tolist() == [0.0] and lv.first_starts == 1


def test_keepalive_oracle_keeps_iff_gap_below_s_plus_kappa() -> None:
    app = make_app("a", np.array([0.0, 11.0, 111.0]), np.array([1.0, 1.0, 1.0]))
    lv = levels(app, 1)  # gaps 10 and 99
    assert oracle_ka(lv, 2.0, 20.0) == (3.0 + 10.0 + 2.0, 2)  # keeps the 10 s gap, releases the 99 s one
    assert oracle_ka(lv, 2.0, 0.0) == (3.0 + 2.0 + 2.0, 3)
    assert oracle_ka(lv, 2.0, 1e9) == (3.0 + 109.0, 1)
    assert oracle_0cs(lv, 2.0) == 3.0 + 2.0 + 2.0
