"""How Knative samples a revision's pods and extrapolates (reference knative-kpa.md §6.2). Pure.

Knative scrapes at most ~16 pods per revision per second: enough for a 95 % confidence
interval of ±5 around the mean (assumed variance 100), shrunk for small populations.
Pods that have been up for at least a stable window are preferred; young pods fill in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import PodInfo

# z² · σ² / MOE² with z = 1.96 (95 %), σ² = 100, MOE = 5: the unbounded-population sample size.
_UNBOUNDED_SAMPLE = 1.96 * 1.96 * 100.0 / (5.0 * 5.0)


def population_mean_sample_size(population: float) -> int:
    """n = N for N ≤ 3 (never negative), else ceil(N·X / (N + X − 1))."""
    if population <= 3:
        return int(max(population, 0))
    return math.ceil(population * _UNBOUNDED_SAMPLE / (population + _UNBOUNDED_SAMPLE - 1))


def split_by_age(pods: Sequence[PodInfo], cutoff: float, now: float) -> tuple[list[PodInfo], list[PodInfo]]:
    """(old, young): old pods started at least ``cutoff`` seconds before ``now``."""
    old: list[PodInfo] = []
    young: list[PodInfo] = []
    for pod in pods:
        started = pod.start_time if pod.start_time is not None else now
        (old if now - started >= cutoff else young).append(pod)
    return old, young


def sampling_order(
    old: Sequence[PodInfo], young: Sequence[PodInfo], sample_size: int, rng: random.Random
) -> list[PodInfo]:
    """The order in which pods are tried: old pods first, shuffled where the choice matters.

    If there are fewer old pods than the sample needs, all of them are used and the young
    ones are shuffled to fill up; otherwise the old pods are shuffled and young ones are
    only a fallback for old pods that fail.
    """
    old_list, young_list = list(old), list(young)
    if len(old_list) < sample_size:
        rng.shuffle(young_list)
    else:
        rng.shuffle(old_list)
    return old_list + young_list


def extrapolate(samples: Sequence[StatTotals], sample_size: int, population: int) -> StatTotals:
    """Revision-wide totals: each field summed over the sample, divided by n, times N."""
    conc = sum(s.concurrency for s in samples)
    pconc = sum(s.proxied_concurrency for s in samples)
    rps = sum(s.rps for s in samples)
    prps = sum(s.proxied_rps for s in samples)
    n, total = float(sample_size), float(population)
    return StatTotals(conc / n * total, pconc / n * total, rps / n * total, prps / n * total)
