"""Time-bucketed metric windows, as Knative's autoscaler keeps them (reference knative-kpa.md §2.3, §6.3).

Time representation (the whole ``reconciler`` package): ``now`` is always a ``float`` of
**seconds since the Unix epoch** — what ``time.time()`` returns — and may be negative. Knative's
own tests use Go's zero ``time.Time{}`` (0001-01-01 UTC) as the base time of the scale-down-delay
vectors; that instant is ``GO_ZERO_TIME`` (−62 135 596 800 s) here. Floats hold every whole second
of that range exactly (|t| < 2**53), so the integer slot arithmetic below reproduces Go's:
``time.Unix()`` floors to whole seconds and Go's integer ``/`` truncates toward zero, which is
what ``go_unix`` and ``go_div`` implement.

Nothing here reads a clock: every method takes ``now``. The bucket windows are mutable
(one per revision and metric, updated every second, like Knative's); the scale-down-delay
window ``MaxTimeWindow`` is immutable, because it is part of the decider's state, and the
decider returns a new state instead of changing the old one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GO_ZERO_TIME = -62_135_596_800.0
"""Go's zero ``time.Time{}`` (year 1) in Unix seconds: the base time of Knative's delay-window tests."""

_GO_ZERO_INT = -62_135_596_800

BUCKET_SIZE = 1
"""Knative's ``config.BucketSize``: the metric buckets hold one second each."""

DELAY_WINDOW_GRANULARITY = 2
"""Slot width of the scale-down-delay window: the decider's tick interval (2 s)."""

# Weighted-exponential averaging: the weights of a full window must add up to at least
# `_WEIGHT_PRECISION`, but decay no slower than `_MIN_SMOOTHING` (else very long windows
# would approach a plain average).
_WEIGHT_PRECISION = 0.9999
_MIN_SMOOTHING = 0.2
_AVERAGE_DIGITS = 6


def go_unix(now: float) -> int:
    """Whole seconds like Go's ``Time.Unix()``: floor, also before 1970."""
    return math.floor(now)


def go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero, unlike Python's ``//``)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def go_round(x: float) -> float:
    """Go's ``math.Round``: half away from zero (Python's ``round`` rounds half to even)."""
    if not math.isfinite(x):
        return x  # Go returns ±Inf and NaN unchanged
    whole = math.trunc(x)
    if abs(x - whole) >= 0.5:  # x - trunc(x) is exact in binary floating point
        whole += 1 if x > 0 else -1
    return float(whole)


def round_to_digits(digits: int, x: float) -> float:
    p = 1e6 if digits == 6 else 10.0**digits  # Go: math.Pow10(n), exact for these n
    return go_round(x * p) / p


def smoothing_coefficient(num_buckets: float) -> float:
    """The decay α of the weighted-exponential window for ``num_buckets`` buckets (§6.3)."""
    return max(1 - math.pow(1 - _WEIGHT_PRECISION, 1 / num_buckets), _MIN_SMOOTHING)


def _bucket_count(window: float, granularity: int) -> int:
    n = math.ceil(window / granularity)
    if n < 1:
        raise ValueError(f"window {window}s must be at least one bucket of {granularity}s")
    return n


class TimedBuckets:
    """A ring of per-second sums covering ``window`` seconds; its average is Knative's linear one.

    Bucket times are whole seconds (Go's ``Truncate`` to the granularity, counted from Go's zero
    time); ``_first_write`` and ``_last_write`` start at Go's zero time, as the Go fields do, so
    "never written" needs no special case: it is simply more than a window ago.
    """

    __slots__ = ("_buckets", "_first_write", "_granularity", "_last_write", "_total", "_window")

    def __init__(self, window: float, granularity: int = BUCKET_SIZE) -> None:
        if granularity < 1:
            raise ValueError("granularity must be a whole number of seconds ≥ 1")
        self._granularity = granularity
        self._window = float(window)
        self._buckets = [0.0] * _bucket_count(window, granularity)
        self._first_write = _GO_ZERO_INT
        self._last_write = _GO_ZERO_INT
        # Sum of every bucket in the ring (stale ones included until they are overwritten).
        self._total = 0.0

    @property
    def window(self) -> float:
        return self._window

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def _truncate(self, now: float) -> int:
        sec = math.floor(now)
        if self._granularity != 1:
            sec -= (sec - _GO_ZERO_INT) % self._granularity
        return sec

    def _index(self, sec: int) -> int:
        # Go: int(t.Unix()) / int(granularity.Seconds()).
        return sec if self._granularity == 1 else go_div(sec, self._granularity)

    def is_empty(self, now: float) -> bool:
        """True when nothing was written in the last ``window`` seconds."""
        return self._truncate(now) - self._last_write > self._window

    def record(self, now: float, value: float) -> None:
        """Add ``value`` to the bucket of ``now``.

        Buckets skipped since the last write become zero; a write a whole window after the
        last one starts afresh (partial window again); a write up to a window in the past is
        added to its bucket; anything older is dropped.
        """
        buckets = self._buckets
        n = len(buckets)
        last = self._last_write
        if self._granularity == 1:
            bucket_time = write_index = math.floor(now)
            if bucket_time == last + 1 and self._window > 1 and self._first_write != _GO_ZERO_INT:
                # The steady state (one write per second), same float operations as the general path.
                j = write_index % n
                self._total -= buckets[j]
                buckets[j] = 0.0 + value
                self._total += value
                self._last_write = bucket_time
                return
        else:
            bucket_time = self._truncate(now)
            write_index = self._index(math.floor(now))
        if last != bucket_time:
            if not bucket_time + self._window > last:
                return  # at least a window older than the newest data
            if self._first_write == _GO_ZERO_INT or self._first_write > bucket_time:
                self._first_write = bucket_time
            if bucket_time > last:
                if bucket_time - last >= self._window:
                    self._first_write = bucket_time
                    self._buckets = buckets = [0.0] * n
                    self._total = 0.0
                else:
                    for i in range(self._index(last) + 1, write_index + 1):
                        j = i % n
                        self._total -= buckets[j]
                        buckets[j] = 0.0
                self._last_write = bucket_time
        buckets[write_index % n] += value
        self._total += value

    def _valid_span(self) -> int:
        # Buckets from the first to the last write, both inclusive (Go truncates the duration division).
        return (self._last_write - self._first_write) // self._granularity + 1

    def window_average(self, now: float) -> float:
        """Average over the window, rounded to 6 digits (Knative's linear algorithm).

        A young window (first write less than a window ago) is averaged over its own length;
        trailing seconds without data shrink the window instead of counting as zeros; a whole
        window without data gives 0.
        """
        now_sec = self._truncate(now)
        d = now_sec - self._last_write
        buckets = self._buckets
        n = len(buckets)
        if d <= 0:
            return round_to_digits(_AVERAGE_DIGITS, self._total / min(self._valid_span(), n))
        if d < self._window:
            start = self._index(self._last_write)
            end = self._index(now_sec)
            total = self._total
            for i in range(start + 1, end + 1):
                total -= buckets[i % n]
            return round_to_digits(_AVERAGE_DIGITS, total / min(self._valid_span(), n - (end - start)))
        return 0.0

    def resize(self, window: float, now: float) -> None:
        """Change the window length, keeping the newest buckets that fit (annotation/CM change)."""
        window = float(window)
        if window == self._window:
            return
        new_n = _bucket_count(window, self._granularity)
        new_buckets = [0.0] * new_n
        new_total = 0.0
        if self._truncate(now) - self._last_write <= self._window:
            old = self._buckets
            old_n = len(old)
            idx = self._index(self._last_write)
            for _ in range(min(new_n, old_n)):
                value = old[idx % old_n]
                new_buckets[idx % new_n] = value
                new_total += value
                idx -= 1
            self._first_write = self._last_write - (old_n - 1) * self._granularity
        else:
            self._first_write = _GO_ZERO_INT
        self._window = window
        self._buckets = new_buckets
        self._total = new_total

    def bucket_values(self, now: float) -> list[tuple[int, float]]:
        """(bucket second, value) from the newest back over the still-valid part of the ring.

        For tests and debugging: what Knative's test helper ``forEachBucket`` visits.
        """
        now_sec = self._truncate(now)
        count = len(self._buckets) - (now_sec - self._last_write) // self._granularity
        out: list[tuple[int, float]] = []
        t = self._last_write
        idx = self._index(t)
        for _ in range(max(count, 0)):
            out.append((t, self._buckets[idx % len(self._buckets)]))
            idx -= 1
            t -= self._granularity
        return out


class WeightedBuckets(TimedBuckets):
    """The same ring, averaged with exponentially decaying weights (``weighted-exponential``).

    The newest bucket weighs α, the one before α(1−α), and so on; seconds without data since
    the last write count as zeros at the front. Weights are not renormalised.
    """

    __slots__ = ("_smoothing",)

    def __init__(self, window: float, granularity: int = BUCKET_SIZE) -> None:
        super().__init__(window, granularity)
        self._smoothing = smoothing_coefficient(math.ceil(window / granularity))

    @property
    def smoothing(self) -> float:
        return self._smoothing

    def window_average(self, now: float) -> float:
        now_sec = self._truncate(now)
        if now_sec - self._last_write > self._window:
            return 0.0
        alpha = self._smoothing
        decay = 1 - alpha
        buckets = self._buckets
        total_buckets = len(buckets)
        count = total_buckets
        weight = alpha
        if now_sec > self._last_write:
            silent = (now_sec - self._last_write) // self._granularity
            weight *= math.pow(decay, silent)
            count -= silent
        start = self._index(self._last_write) + total_buckets
        result = 0.0
        for i in range(count):
            result += buckets[(start - i) % total_buckets] * weight
            weight *= decay
        return result

    def resize(self, window: float, now: float) -> None:
        super().resize(window, now)
        self._smoothing = smoothing_coefficient(math.ceil(float(window) / self._granularity))


def make_window(algorithm: str, window: float) -> TimedBuckets:
    """A window for ``metric-aggregation-algorithm``: anything but weighted-exponential is linear."""
    if algorithm in ("weighted-exponential", "weightedExponential"):
        return WeightedBuckets(window)
    return TimedBuckets(window)


@dataclass(frozen=True, slots=True)
class MaxTimeWindow:
    """Sliding maximum over the last ``size`` slots of ``granularity`` seconds (scale-down delay).

    Immutable: ``record`` returns a new window. ``entries`` is a deque of (slot, value) with
    ascending slots and strictly descending values, so the head is the maximum; a value can
    only matter while nothing newer is at least as large, which keeps the deque short.
    Slot of a time = ``go_div(go_unix(now), granularity)``, exactly as Knative computes it.
    """

    size: int
    granularity: int = DELAY_WINDOW_GRANULARITY
    entries: tuple[tuple[int, int], ...] = ()

    @classmethod
    def for_duration(cls, duration: float, granularity: int = DELAY_WINDOW_GRANULARITY) -> MaxTimeWindow:
        return cls(size=_bucket_count(duration, granularity), granularity=granularity)

    def slot(self, now: float) -> int:
        return go_div(go_unix(now), self.granularity)

    def record(self, now: float, value: int) -> MaxTimeWindow:
        slot = self.slot(now)
        entries = list(self.entries)
        # Newer-and-at-least-as-large beats older: drop smaller-or-equal tail entries.
        while entries and not value < entries[-1][1]:
            entries.pop()
        # Expire entries that are `size` or more slots old.
        drop = 0
        while drop < len(entries) and slot - entries[drop][0] >= self.size:
            drop += 1
        if drop:
            del entries[:drop]
        # Two values in the same slot: keep the larger.
        if entries and entries[-1][0] == slot:
            value = max(value, entries[-1][1])
            entries.pop()
        entries.append((slot, value))
        return MaxTimeWindow(self.size, self.granularity, tuple(entries))

    def current(self) -> int:
        """The maximum over the window (0 before anything was recorded, like Go's zero entry)."""
        return self.entries[0][1] if self.entries else 0
