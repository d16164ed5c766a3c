"""Time at the edges: the controller, the informers and leader election read time only here.

`SystemClock` is the real one; `FakeClock` lets tests move time by hand (lease takeover
timing, scale-to-zero grace periods) with no sleeping. `wait` is the single blocking seam:
it returns early when the given event is set, so SIGTERM interrupts any wait at once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (durations, deadlines)."""
        ...

    def now(self) -> float:
        """Seconds since the Unix epoch (timestamps written into objects, decider `now`)."""
        ...

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep up to `seconds`; True if `stop` was set (early or already)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        return time.time()

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return False
        return stop.wait(max(0.0, seconds))


class FakeClock:
    """Manual time. `wait` advances time instead of sleeping, so loops run instantly in tests."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start
        self._mono = 1000.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds
            self._mono += seconds

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        self.advance(max(0.0, seconds))
        return stop is not None and stop.is_set()


def rfc3339(ts: float) -> str:
    """`2024-05-01T12:00:00Z` (metav1.Time, second precision)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(ts: float) -> str:
    """`2024-05-01T12:00:00.123456Z` (metav1.MicroTime, used by Leases and events)."""
    dt = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=round(ts * 1_000_000))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> float | None:
    """Parse metav1.Time / MicroTime; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
