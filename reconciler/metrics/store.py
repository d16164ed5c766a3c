"""Collections in, decider observations out: the per-revision windows and their freshness.

``MetricsStore`` is the in-memory half of Knative's ``MetricCollector``: it owns one
``RevisionWindows`` per revision, records every successful collection into them, remembers the
latest status for reporting, and builds the decider's ``Observation``. ``scrape_once`` runs
one round of a collector over many revisions concurrently; ``run_scrape_loop`` repeats it
every second (Knative's ``scrapeTickInterval``). The controller owns the event loop and the
clock; everything takes ``now`` (float Unix seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from reconciler.kpa.decider import Observation
from reconciler.kpa.windows import RevisionWindows, observe
from reconciler.metrics.base import Collection, Collector, CollectTarget, RevisionKey, missing
from translator.autoscaling.kpa import KpaSettings

log = logging.getLogger(__name__)

SCRAPE_INTERVAL = 1.0


@dataclass(slots=True)
class _Entry:
    windows: RevisionWindows
    latest: Collection | None = None


class MetricsStore:
    """Windows and latest collection per revision. Not thread-safe: use from one event loop/thread.

    ``strict`` (default): a revision whose latest collection is *missing* gets an observation
    without metrics — the decider returns an invalid decision and the scale is held. With
    ``strict=False`` the windows are read as Knative reads them (older seconds still count).
    """

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self._entries: dict[RevisionKey, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[RevisionKey]:
        return list(self._entries)

    def ensure(self, key: RevisionKey, settings: KpaSettings, now: float) -> RevisionWindows:
        """Windows for ``key`` matching ``settings`` (created, or resized keeping the newest data)."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(RevisionWindows.for_settings(settings))
        elif not entry.windows.matches(settings):
            if entry.windows.algorithm != settings.aggregation or entry.windows.metric != settings.metric:
                entry.windows = RevisionWindows.for_settings(settings)  # a different kind of window: afresh
            else:
                entry.windows.resize(settings.stable_window, settings.panic_window, now)
        return entry.windows

    def forget(self, key: RevisionKey) -> None:
        self._entries.pop(key, None)

    def latest(self, key: RevisionKey) -> Collection | None:
        entry = self._entries.get(key)
        return entry.latest if entry else None

    def record(self, collection: Collection, now: float) -> None:
        """Keep the status; record totals only from an ok collection (empty/missing record nothing)."""
        entry = self._entries.get(collection.key)
        if entry is None:
            return  # not (or no longer) tracked: Knative drops stats for unknown revisions too
        entry.latest = collection
        if collection.status == "ok" and collection.stat is not None:
            entry.windows.record(now, collection.stat)

    def observation(
        self, key: RevisionKey, settings: KpaSettings, ready_pods: int | None, reachable: bool, now: float
    ) -> Observation:
        entry = self._entries.get(key)
        if entry is None:
            return observe(None, settings, ready_pods, reachable, now)
        latest_missing = None
        if self.strict and entry.latest is not None and entry.latest.status == "missing":
            latest_missing = f"{entry.latest.source}: {entry.latest.reason}"
        return observe(entry.windows, settings, ready_pods, reachable, now, latest_missing=latest_missing)


async def scrape_once(
    collector: Collector,
    targets: Iterable[CollectTarget],
    store: MetricsStore,
    now: float,
    *,
    concurrency: int = 64,
) -> list[Collection]:
    """Collect every target (at most ``concurrency`` revisions at once) and record the results."""
    gate = asyncio.Semaphore(concurrency)

    async def one(target: CollectTarget) -> Collection:
        async with gate:
            try:
                return await collector.collect(target, now)
            except Exception as exc:  # a collector bug must not stop the other revisions
                log.exception("collector %s failed for %s", collector.name, target.key)
                return missing(target.key, collector.name, f"collector error: {type(exc).__name__}: {exc}")

    results = await asyncio.gather(*(one(t) for t in targets))
    for result in results:
        store.record(result, now)
    return list(results)


async def run_scrape_loop(
    collector: Collector,
    targets: Callable[[], Iterable[CollectTarget]],
    store: MetricsStore,
    clock: Callable[[], float],
    stop: asyncio.Event,
    *,
    interval: float = SCRAPE_INTERVAL,
    on_round: Callable[[list[Collection]], Awaitable[None] | None] | None = None,
) -> None:
    """Scrape every ``interval`` seconds until ``stop`` is set; a slow round delays, never overlaps."""
    while not stop.is_set():
        started = clock()
        results = await scrape_once(collector, list(targets()), store, started)
        if on_round is not None:
            maybe = on_round(results)
            if maybe is not None:
                await maybe
        delay = max(0.0, interval - (clock() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
