"""Knative's pod sampling and extrapolation (reference §6.2, §7.3 sample-size vectors)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import PodInfo
from reconciler.metrics.sampling import (
    extrapolate,
    population_mean_sample_size,
    sampling_order,
    split_by_age,
)


@pytest.mark.parametrize(
    ("population", "sample"),
    # §7.3 (sample_size_test.go) plus the §6.2 table.
    [
        *[(0, 0), (1, 1), (2, 2), (5, 4), (10, 7), (100, 14), (1000, 16)],
        *[(3, 3), (4, 4), (15, 8), (20, 9), (50, 12), (200, 15)],
    ],
)
def test_population_mean_sample_size(population: int, sample: int) -> None:
    assert population_mean_sample_size(population) == sample


def test_sample_size_never_negative() -> None:
    assert population_mean_sample_size(-5) == 0


@given(st.integers(min_value=0, max_value=100_000))
def test_sample_size_bounded_by_population_and_16(n: int) -> None:
    s = population_mean_sample_size(n)
    assert 0 <= s <= min(n, 16)


def pods(names: str, start: float) -> list[PodInfo]:
    return [PodInfo(name=n, ip="10.0.0.1", start_time=start) for n in names]


def test_split_by_age_at_the_stable_window() -> None:
    now = 1000.0
    all_pods = [*pods("ab", now - 60), *pods("c", now - 59.9), PodInfo("d", "10.0.0.2", None)]
    old, young = split_by_age(all_pods, 60, now)
    assert [p.name for p in old] == ["a", "b"]  # exactly a window old counts as old
    assert [p.name for p in young] == ["c", "d"]  # unknown start time: just started


def test_sampling_order_prefers_old_pods() -> None:
    old, young = pods("abcd", 0), pods("xyz", 0)
    order = sampling_order(old, young, 3, random.Random(7))
    assert {p.name for p in order[:4]} == set("abcd")  # enough old pods: shuffled old first
    assert [p.name for p in order[4:]] == list("xyz")  # young only as fallback, unshuffled

    few_old = sampling_order(pods("a", 0), young, 3, random.Random(7))
    assert few_old[0].name == "a"  # too few old: all old first, young shuffled after
    assert {p.name for p in few_old[1:]} == set("xyz")


def test_extrapolate_sum_over_n_times_population() -> None:
    samples = [StatTotals(2, 1, 10, 0), StatTotals(4, 0, 20, 5)]
    assert extrapolate(samples, 2, 10) == StatTotals(30, 5, 150, 25)
