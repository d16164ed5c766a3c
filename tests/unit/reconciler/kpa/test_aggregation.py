"""Knative's window vectors (reference knative-kpa.md §7.3, bucketing_test.go) and the delay window."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.kpa.aggregation import (
    GO_ZERO_TIME,
    MaxTimeWindow,
    TimedBuckets,
    WeightedBuckets,
    go_div,
    go_round,
    go_unix,
    make_window,
    round_to_digits,
    smoothing_coefficient,
)

NOW = 1_700_000_123.25  # a "time.Now()" with a fractional second, as in the Go tests


def bucket_sum(b: TimedBuckets, now: float) -> float:
    return sum(v for _, v in b.bucket_values(now))


# --- smoothing coefficient (TestComputeDecayMultiplier) -------------------------------------


@pytest.mark.parametrize(
    ("buckets", "alpha"), [(100, 0.2), (60, 0.2), (40, 0.20567), (6, 0.78456), (5, 0.8415)]
)
def test_smoothing_coefficient(buckets: int, alpha: float) -> None:
    assert smoothing_coefficient(buckets) == pytest.approx(alpha, abs=5e-5)


# --- linear window average (TestTimedFloat64BucketsWindowAverage, steps a–l) ----------------


def test_linear_window_average_vectors() -> None:
    b = TimedBuckets(5)
    t0 = NOW
    b.record(t0, 1)
    assert b.window_average(t0) == 1  # a: partial window, not 1/5
    for i in range(1, 5):
        b.record(t0 + i, i + 1)
    assert b.window_average(t0 + 4) == 15 / 5  # b
    assert b.window_average(t0 + 3.6) == 15 / 5  # c: reader lags behind the last write
    assert b.window_average(t0 + 6) == (15 - 1 - 2) / (5 - 2)  # d: trailing silence shrinks the window
    assert b.window_average(t0 + 10) == 0  # e: a whole window of silence
    b.record(t0 + 6, 91)
    assert b.window_average(t0 + 6) == (15 - 1 - 2 + 91) / 5  # f: the gap second counts as 0
    t1 = t0 + 60
    b.record(t1, 1984)
    assert b.window_average(t1) == 1984  # g: reset after a window of silence
    b.record(t1 - 3, 4)
    assert b.window_average(t1) == (4 + 1984) / 4  # h: late write moves firstWrite back
    t2 = t1 + 1
    b.record(t2, 5)
    assert b.window_average(t2) == (4 + 1984 + 5) / 5  # i
    b.record(t2 - 3, 10)
    assert b.window_average(t2) == (4 + 10 + 1984 + 5) / 5  # j
    b.record(t2 - 6, 10)
    b.record(t2 - 5, 10)
    assert b.window_average(t2) == (4 + 10 + 1984 + 5) / 5  # k: a window old or more: ignored
    b.record(t2 + 5, 10)
    assert b.window_average(t2 + 5) == 10  # l: exactly one window of silence clears


def test_same_second_writes_are_summed_and_gaps_zeroed() -> None:
    # TestTimedFloat64BucketsSimple / Holes: writes in one second add up; skipped seconds become 0.
    base = math.floor(NOW)
    b = TimedBuckets(120)
    assert b.is_empty(base)
    b.record(base, 1)
    b.record(base + 0.1, 10)
    b.record(base + 1, 1)
    b.record(base + 3, 1)
    values = {t: v for t, v in b.bucket_values(base + 60) if v > 0}
    assert values == {base: 11, base + 1: 1, base + 3: 1}

    h = TimedBuckets(5)
    for i in range(5):
        h.record(base + i, i + 1)
    assert bucket_sum(h, base + 4) == 15
    h.record(base + 8, 2)  # seconds 5, 6, 7 become zero, overwriting 1, 2, 3
    assert bucket_sum(h, base + 8) == 7


def test_descending_writes_average_to_the_value() -> None:
    b = TimedBuckets(5)
    for i in range(8, -1, -1):
        b.record(NOW + i, 5)
    assert b.window_average(NOW + 5) == 5


def test_granularity_3s_truncates_to_go_time_multiples() -> None:
    # TestTimedFloat64BucketsWindowUpdate3sGranularity: ceil(5/3) = 2 buckets.
    g = 3
    trunc = math.floor(NOW) - (math.floor(NOW) - int(GO_ZERO_TIME)) % g
    b = TimedBuckets(5, granularity=g)
    assert b.bucket_count == 2
    for i, v in enumerate([10, 2, 3, 4, 5, 6, 7]):
        b.record(trunc + i, v)
    assert bucket_sum(b, trunc + 6) == 4 + 5 + 6 + 7  # the first bucket (10+2+3) was overwritten
    b.resize(10, trunc + 6)
    assert b.bucket_count == 4
    assert bucket_sum(b, trunc + 6) == 22
    b.record(trunc + 9.3, 42)
    assert bucket_sum(b, trunc + 9) == 22 + 42
    b.resize(4, trunc + 9)
    assert b.bucket_count == 2
    assert bucket_sum(b, trunc + 9) == 42 + 7


def test_resize_keeps_newest_buckets() -> None:
    # TestTimedFloat64BucketsResizeWindow
    b = TimedBuckets(5)
    for i in range(6):
        b.record(NOW + i, i + 1)
    now = NOW + 5
    initial = 2 + 3 + 4 + 5 + 6
    assert bucket_sum(b, now) == initial
    assert b.window_average(now) == initial / 5
    b.resize(10, now)
    assert b.bucket_count == 10 and b.window == 10
    assert bucket_sum(b, now) == initial
    assert b.window_average(now) == initial / 5  # at most 5 buckets were ever valid
    now += 1
    b.record(now, 7)
    assert bucket_sum(b, now) == initial + 7
    assert b.window_average(now) == round_to_digits(6, (initial + 7) / 6)
    b.resize(4, now)
    assert b.bucket_count == 4
    assert bucket_sum(b, now) == initial + 7 - 2 - 3
    assert b.window_average(now) == (initial + 7 - 2 - 3) / 4
    buckets_before = b._buckets
    b.resize(4, now)  # same window: nothing happens
    assert b._buckets is buckets_before


def test_resize_after_long_silence_forgets_first_write() -> None:
    b = TimedBuckets(5)
    b.record(NOW - 60, 19.82)
    b.resize(10, NOW)
    assert b._first_write == int(GO_ZERO_TIME)
    assert b.window_average(NOW) == 0


# --- weighted window (TestTimedFloat64BucketsWeightedAverage) -----------------------------


def test_weighted_average_vectors() -> None:
    b = WeightedBuckets(5)
    a = b.smoothing
    assert a == pytest.approx(1 - 10 ** (-4 / 5), rel=1e-12)
    t = NOW
    b.record(t, 2)
    assert b.window_average(t) == pytest.approx(2 * a, rel=1e-12)
    assert b.window_average(t + 1) == pytest.approx(2 * a * (1 - a), rel=1e-12)
    b.record(t + 1, 2)
    assert b.window_average(t + 1) == pytest.approx(2 * a * (1 - a) + 2 * a, rel=1e-12)
    for i in range(5):
        b.record(t + 2 + i, i + 2)
    m = a
    want = 6 * m + 5 * m * (1 - m) + 4 * m * (1 - m) ** 2 + 3 * m * (1 - m) ** 3 + 2 * m * (1 - m) ** 4
    assert b.window_average(t + 6) == pytest.approx(want, rel=1e-12)
    assert b.window_average(t + 16) == 0


def test_weighted_resize_recomputes_smoothing() -> None:
    # TestWeightedFloat64BucketsResizeWindow
    b = WeightedBuckets(5)
    for i in range(6):
        b.record(NOW + i, i + 1)
    now = NOW + 5
    assert bucket_sum(b, now) == 2 + 3 + 4 + 5 + 6
    assert round_to_digits(3, b.window_average(now)) == 5.812
    b.resize(10, now)
    assert b.bucket_count == 10 and b.window == 10
    assert b.smoothing == pytest.approx(smoothing_coefficient(10))


def test_make_window_picks_the_algorithm() -> None:
    assert type(make_window("linear", 60)) is TimedBuckets
    assert type(make_window("weighted-exponential", 60)) is WeightedBuckets
    assert type(make_window("weightedExponential", 60)) is WeightedBuckets
    assert type(make_window("anything-else", 60)) is TimedBuckets  # Knative: unknown means linear


# --- Go arithmetic helpers ----------------------------------------------------------------


def test_go_rounding_and_division() -> None:
    # TestRoundToNDigits
    assert round_to_digits(6, 3.6e-17) == 0
    assert round_to_digits(3, -3.6e-17) == 0
    assert round_to_digits(3, 0.0004) == 0
    assert round_to_digits(3, 1.2345) == 1.235
    assert round_to_digits(4, 1.2345) == 1.2345
    assert round_to_digits(6, 12345) == 12345
    assert go_round(2.5) == 3 and go_round(-2.5) == -3 and go_round(0.49999999999999994) == 0
    assert go_div(-3, 2) == -1 and go_div(3, 2) == 1 and go_div(-4, 2) == -2
    assert go_unix(-0.5) == -1  # Unix() floors before 1970
    assert go_round(math.inf) == math.inf and math.isnan(go_round(math.nan))


def test_window_with_overflowing_values_does_not_raise() -> None:
    b = TimedBuckets(5)
    b.record(NOW, 1e308)
    b.record(NOW + 1, 1e308)
    assert b.window_average(NOW + 1) == math.inf  # the decider rejects non-finite observations


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_go_round_is_half_away_from_zero(x: float) -> None:
    r = go_round(x)
    assert abs(x - r) <= 0.5
    if abs(x - math.trunc(x)) == 0.5:
        assert abs(r) > abs(x)


# --- scale-down-delay window (max/window.go, §2.3) ----------------------------------------


def test_max_window_slots_from_go_zero_time() -> None:
    w = MaxTimeWindow.for_duration(300)
    assert w.size == 150
    w = w.record(GO_ZERO_TIME + 2, 4)
    for t in range(4, 300, 2):
        w = w.record(GO_ZERO_TIME + t, 0)
    assert w.record(GO_ZERO_TIME + 300, 0).current() == 4  # slot difference 149 < 150
    assert w.record(GO_ZERO_TIME + 302, 0).current() == 0  # 150: scrolled out


def test_max_window_same_slot_keeps_larger_and_is_immutable() -> None:
    w0 = MaxTimeWindow.for_duration(10)
    assert w0.current() == 0  # Go's zero entry before any record
    w1 = w0.record(NOW, 3)
    w2 = w1.record(NOW + 0.5, 1)  # same second, same 2-s slot: the larger value stays
    assert w2.current() == 3
    assert w2.entries == w1.entries == ((w1.slot(NOW), 3),)
    assert w0.entries == ()  # recording returned new windows


def test_max_window_descending_deque() -> None:
    w = MaxTimeWindow.for_duration(10)  # 5 slots
    for i, v in enumerate([5, 3, 4, 1]):
        w = w.record(2 * i, v)
    assert [v for _, v in w.entries] == [5, 4, 1]
    w = w.record(10, 0)  # slot 5: the 5 (slot 0) expires
    assert w.current() == 4


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=60), st.integers(1, 8))
def test_max_window_equals_brute_force_max(values: list[int], size: int) -> None:
    w = MaxTimeWindow(size=size)
    for i, v in enumerate(values):
        w = w.record(2.0 * i, v)
        assert w.current() == max(values[max(0, i - size + 1) : i + 1])


# --- the linear window against a plain model of §6.3 ---------------------------------------


class ModelWindow:
    """§6.3 restated with a dict of seconds: the sum of the last n seconds up to the last write."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.data: dict[int, float] = {}
        self.first: int | None = None
        self.last: int | None = None

    def record(self, t: float, v: float) -> None:
        bt = math.floor(t)
        if self.last is not None and bt != self.last:
            if bt + self.n <= self.last:
                return
            if self.first is None or self.first > bt:
                self.first = bt
            if bt > self.last:
                if bt - self.last >= self.n:
                    self.data.clear()
                    self.first = bt
                self.last = bt
        elif self.last is None:
            self.first = self.last = bt
        self.data[bt] = self.data.get(bt, 0.0) + v

    def average(self, t: float) -> float:
        if self.last is None or self.first is None:
            return 0.0
        now = math.floor(t)
        d = now - self.last
        if d >= self.n:
            return 0.0
        lo = max(now, self.last) - self.n
        total = sum(v for k, v in self.data.items() if lo < k <= self.last)
        span = min(self.last - self.first + 1, self.n - max(d, 0))
        return round_to_digits(6, total / span)


@given(
    st.integers(min_value=2, max_value=12),
    st.lists(
        st.tuples(st.integers(-15, 4), st.sampled_from([0.0, 0.25, 0.75]), st.integers(0, 50), st.booleans()),
        max_size=80,
    ),
)
def test_linear_window_matches_the_model(n: int, steps: list[tuple[int, float, int, bool]]) -> None:
    real, model = TimedBuckets(n), ModelWindow(n)
    t = float(math.floor(NOW))
    for jump, frac, value, read in steps:
        t += 1  # time moves on; `jump` writes around it (late, same second, or ahead)
        when = t + jump + frac
        real.record(when, float(value))
        model.record(when, float(value))
        if read:
            assert real.window_average(t) == model.average(t)
            assert real.is_empty(t) == (model.last is None or math.floor(t) - model.last > n)
