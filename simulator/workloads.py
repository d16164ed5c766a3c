"""The seven synthetic workloads of autoscaling-benchmark.md §5.2, seeded and vectorised.

Every generator takes a numpy ``Generator`` and its parameters (defaults in ``PARAMS``; the CLI
sets them with ``--param NAME=VALUE``) and returns a ``Workload``. Where §5.2 leaves a choice
open the default is stated here: W2–W3 and W7 reuse W1's service time (log-normal, median
100 ms, σ 0.5); W4 and W5 use median 1 s, σ 0.5; W6 gives each app one function (per-app
aggregation is what the scaler sees) and spreads its calls over the day.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from simulator.traces import AppTrace, FloatArray, Workload, make_app

Params = Mapping[str, float]

PARAMS: dict[str, dict[str, float]] = {
    "W1": {"rate": 50.0, "duration": 1800.0, "median": 0.1, "sigma": 0.5},
    "W2": {
        "low": 10.0,
        "high": 100.0,
        "before": 600.0,
        "step": 300.0,
        "after": 900.0,
        "median": 0.1,
        "sigma": 0.5,
    },
    "W3": {
        "mean": 30.0,
        "amplitude": 0.8,
        "period": 14400.0,
        "cycles": 3.0,
        "noise": 0.1,
        "median": 0.1,
        "sigma": 0.5,
    },
    "W4": {
        "functions": 300.0,
        "hours": 48.0,
        "min_gap": 60.0,
        "max_gap": 86400.0,
        "median": 1.0,
        "sigma": 0.5,
    },
    "W5": {"functions": 100.0, "hours": 24.0, "jitter": 2.0, "median": 1.0, "sigma": 0.5},
    "W6": {"apps": 200.0, "hours": 24.0, "mu": 1.6, "sd": 1.77, "max_daily": 86400.0},
    "W7": {
        "functions": 50.0,
        "hours": 6.0,
        "on": 30.0,
        "on_rate": 20.0,
        "off_mean": 240.0,
        "median": 0.1,
        "sigma": 0.5,
    },
}

W5_PERIODS_MIN = (1, 2, 5, 10, 15, 30, 60, 120)


def _service(rng: np.random.Generator, n: int, p: Params) -> FloatArray:
    return rng.lognormal(math.log(p["median"]), p["sigma"], n)


def _poisson_times(rng: np.random.Generator, rate: float, t0: float, t1: float) -> FloatArray:
    n = rng.poisson(rate * (t1 - t0))
    return np.sort(rng.uniform(t0, t1, n))


def _thinned(
    rng: np.random.Generator, peak: float, t1: float, shape: Callable[[FloatArray], FloatArray]
) -> FloatArray:
    """Inhomogeneous Poisson on [0, t1) with rate peak·shape(t), shape ≤ 1, by thinning."""
    t = _poisson_times(rng, peak, 0.0, t1)
    return t[rng.uniform(0.0, 1.0, t.size) < shape(t)]


def _one(name: str, rng: np.random.Generator, start: FloatArray, p: Params, horizon: float) -> Workload:
    app = make_app(name, start, _service(rng, start.size, p))
    return Workload(name, (app,), horizon)


def w1(rng: np.random.Generator, p: Params) -> Workload:
    return _one("W1", rng, _poisson_times(rng, p["rate"], 0.0, p["duration"]), p, p["duration"])


def w2(rng: np.random.Generator, p: Params) -> Workload:
    a, b = p["before"], p["before"] + p["step"]
    end = b + p["after"]
    start = np.concatenate(
        [
            _poisson_times(rng, p["low"], 0.0, a),
            _poisson_times(rng, p["high"], a, b),
            _poisson_times(rng, p["low"], b, end),
        ]
    )
    return _one("W2", rng, start, p, end)


def w3(rng: np.random.Generator, p: Params) -> Workload:
    period, end = p["period"], p["period"] * p["cycles"]
    amp, noise = p["amplitude"], p["noise"]
    # Multiplicative noise, one factor per minute (U(1 − noise, 1 + noise)).
    factors = rng.uniform(1 - noise, 1 + noise, int(end // 60) + 1)
    peak = p["mean"] * (1 + amp) * (1 + noise)

    def shape(t: FloatArray) -> FloatArray:
        lam = p["mean"] * (1 + amp * np.sin(2 * np.pi * t / period)) * factors[(t // 60).astype(np.int64)]
        out: FloatArray = lam / peak
        return out

    return _one("W3", rng, _thinned(rng, peak, end, shape), p, end)


def _many(
    name: str, rng: np.random.Generator, starts: list[FloatArray], p: Params, horizon: float
) -> Workload:
    apps: list[AppTrace] = []
    for i, s in enumerate(starts):
        if s.size:
            apps.append(make_app(f"{name.lower()}-{i:03d}", s, _service(rng, s.size, p)))
    return Workload(name, tuple(apps), horizon)


def w4(rng: np.random.Generator, p: Params) -> Workload:
    end = p["hours"] * 3600.0
    n = int(p["functions"])
    gaps = np.exp(rng.uniform(math.log(p["min_gap"]), math.log(p["max_gap"]), n))
    return _many("W4", rng, [_poisson_times(rng, 1.0 / g, 0.0, end) for g in gaps], p, end)


def w5(rng: np.random.Generator, p: Params) -> Workload:
    end = p["hours"] * 3600.0
    starts = []
    for i in range(int(p["functions"])):
        period = 60.0 * W5_PERIODS_MIN[i % len(W5_PERIODS_MIN)]
        ticks = np.arange(rng.uniform(0.0, period), end, period)
        starts.append(np.clip(ticks + rng.uniform(-p["jitter"], p["jitter"], ticks.size), 0.0, None))
    return _many("W5", rng, starts, p, end)


def w7(rng: np.random.Generator, p: Params) -> Workload:
    end = p["hours"] * 3600.0
    starts = []
    for _ in range(int(p["functions"])):
        parts, t = [], rng.exponential(p["off_mean"])
        while t < end:
            on_end = min(t + p["on"], end)
            parts.append(_poisson_times(rng, p["on_rate"], t, on_end))
            t = on_end + rng.exponential(p["off_mean"])
        starts.append(np.concatenate(parts) if parts else np.zeros(0))
    return _many("W7", rng, starts, p, end)


def _diurnal(phase: float) -> Callable[[FloatArray], FloatArray]:
    """Daily cycle ±20 % (as a fraction of its 1.2× peak, for thinning)."""

    def shape(t: FloatArray) -> FloatArray:
        out: FloatArray = (1 + 0.2 * np.sin(2 * np.pi * t / 86400 + phase)) / 1.2
        return out

    return shape


def w6(rng: np.random.Generator, p: Params) -> Workload:
    """Azure-like mix: per-app daily rate from a truncated log-normal, trigger mix 55/16/15/14."""
    end = p["hours"] * 3600.0
    days = end / 86400.0
    n = int(p["apps"])
    daily = np.empty(0)
    while daily.size < n:  # the > 1/s apps are left out (§5.2): draw from the truncated law
        draw = 10 ** rng.normal(p["mu"], p["sd"], 2 * n)
        daily = np.concatenate([daily, draw[draw <= p["max_daily"]]])
    daily = daily[:n]
    kinds = rng.choice(4, n, p=[0.55, 0.16, 0.15, 0.14])  # http, timer, queue, other
    apps: list[AppTrace] = []
    for i in range(n):
        rate = daily[i] / 86400.0
        if kinds[i] == 0:
            s = _thinned(rng, rate * 1.2, end, _diurnal(float(rng.uniform(0, 2 * np.pi))))
        elif kinds[i] == 1:
            period = max(1.0, 86400.0 / max(daily[i], 1.0 / days))
            s = np.arange(rng.uniform(0.0, period), end, period)
        elif kinds[i] == 2:
            cv = rng.uniform(2.0, 10.0)
            sigma2 = math.log(1 + cv * cv)
            mean_gap = 1.0 / rate
            count = int(min(4 * rate * end + 20, 2_000_000))
            gaps = rng.lognormal(math.log(mean_gap) - sigma2 / 2, math.sqrt(sigma2), count)
            s = np.cumsum(gaps) - rng.uniform(0.0, gaps[0])
            s = s[(s >= 0) & (s < end)]
        else:
            s = _poisson_times(rng, rate, 0.0, end)
        if s.size:
            d = np.minimum(rng.lognormal(-0.38, 2.36, s.size), 600.0)
            apps.append(make_app(f"w6-{i:03d}", s, d))
    return Workload("W6", tuple(apps), end)


GENERATORS: dict[str, Callable[[np.random.Generator, Params], Workload]] = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5": w5,
    "W6": w6,
    "W7": w7,
}


def generate(name: str, seed: int, overrides: Mapping[str, float] | None = None) -> Workload:
    """Workload ``name`` for ``seed``; ``overrides`` must name parameters the workload has."""
    key = name.upper()
    if key not in GENERATORS:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(GENERATORS)}")
    params = dict(PARAMS[key])
    for k, v in (overrides or {}).items():
        if k in params:
            params[k] = float(v)
    # Seed per workload as well, so W4 of seed 1 does not share a stream with W5 of seed 1.
    rng = np.random.default_rng([seed, int(key[1:])])
    return GENERATORS[key](rng, params)
