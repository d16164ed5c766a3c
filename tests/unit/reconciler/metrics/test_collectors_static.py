"""Static and file sources, and the store that turns collections into decider observations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reconciler.kpa.decider import decide, initial_state
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import (
    Collection,
    CollectTarget,
    FileCollector,
    RevisionKey,
    StaticCollector,
)
from reconciler.metrics.base import missing
from reconciler.metrics.store import MetricsStore, run_scrape_loop, scrape_once
from translator.autoscaling.kpa import KpaSettings

A = RevisionKey("default", "a")
B = RevisionKey("default", "b")
NOW = 1_700_000_000.0


def collect(collector: StaticCollector | FileCollector, key: RevisionKey) -> Collection:
    return asyncio.run(collector.collect(CollectTarget(key), NOW))


def test_static_collector_answers_from_its_mapping() -> None:
    c = StaticCollector({A: StatTotals(concurrency=3)})
    assert collect(c, A).stat == StatTotals(concurrency=3)
    assert collect(c, B).status == "missing"
    c.values[B] = StatTotals(rps=1)
    assert collect(c, B).status == "ok"


def test_file_collector_rereads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"default/a": {"concurrency": 12.5, "rps": 40}, "default/b": None}))
    c = FileCollector(path)
    assert collect(c, A).stat == StatTotals(concurrency=12.5, rps=40.0)
    assert "has no value" in collect(c, B).reason
    path.write_text(json.dumps({"default/a": {"concurrency": -1}}))
    assert "concurrency is negative" in collect(c, A).reason
    path.write_text(json.dumps({"default/a": {"cpu": 1}}))
    assert "unknown fields ['cpu']" in collect(c, A).reason
    path.write_text(json.dumps({"default/a": {"rps": "7"}}))
    assert "rps must be a number" in collect(c, A).reason
    path.write_text("{not json")
    assert "cannot read" in collect(c, A).reason
    assert "cannot read" in collect(FileCollector(tmp_path / "absent.json"), A).reason


def settings(**kw: object) -> KpaSettings:
    base: dict[str, object] = {"target_value": 10.0, "stable_window": 6.0, "panic_window": 2.0}
    base.update(kw)
    return KpaSettings(**base)  # type: ignore[arg-type]


def test_store_records_ok_collections_and_subtracts_proxied() -> None:
    store = MetricsStore()
    s = settings()
    store.ensure(A, s, NOW)
    for i in range(6):
        store.record(Collection(A, "ok", StatTotals(concurrency=25, proxied_concurrency=5)), NOW + i)
    obs = store.observation(A, s, ready_pods=2, reachable=True, now=NOW + 5)
    assert (obs.stable, obs.panic, obs.ready_pods) == (20.0, 20.0, 2)
    decision, _ = decide(s, initial_state(s, 2, NOW), obs, NOW + 5)
    assert decision.valid and decision.desired == 2


def test_store_strict_missing_holds_but_knative_mode_keeps_window() -> None:
    s = settings()
    strict, lenient = MetricsStore(), MetricsStore(strict=False)
    for store in (strict, lenient):
        store.ensure(A, s, NOW)
        store.record(Collection(A, "ok", StatTotals(concurrency=30)), NOW)
        store.record(missing(A, "queue-proxy", "too many pods failed"), NOW + 1)
    obs = strict.observation(A, s, 3, True, NOW + 1)
    assert obs.stable is None and "queue-proxy: too many pods failed" in obs.missing_reason
    decision, _ = decide(s, initial_state(s, 3, NOW), obs, NOW + 1)
    assert not decision.valid and "too many pods failed" in decision.reason
    assert lenient.observation(A, s, 3, True, NOW + 1).stable == 30.0  # trailing silence shrinks the window
    assert strict.latest(A) is not None and strict.latest(A).status == "missing"  # type: ignore[union-attr]


def test_store_without_data_and_unknown_revisions() -> None:
    store = MetricsStore()
    s = settings()
    assert "not being collected" in store.observation(A, s, 1, True, NOW).missing_reason
    store.ensure(A, s, NOW)
    assert "no concurrency data in the last 6s" in store.observation(A, s, 1, True, NOW).missing_reason
    store.record(Collection(B, "ok", StatTotals(concurrency=1)), NOW)  # untracked: dropped
    assert store.keys() == [A]
    store.record(Collection(A, "empty", reason="no ready pods"), NOW)
    assert store.observation(A, s, 0, True, NOW).stable is None  # empty records nothing
    store.forget(A)
    assert len(store) == 0


def test_store_resizes_or_recreates_windows_on_settings_change() -> None:
    store = MetricsStore()
    w = store.ensure(A, settings(metric="rps"), NOW)
    for i in range(6):
        store.record(Collection(A, "ok", StatTotals(rps=float(i))), NOW + i)
    assert store.ensure(A, settings(metric="rps", stable_window=10.0, panic_window=2.0), NOW + 5) is w
    assert w.stable.window == 10.0 and w.stable.window_average(NOW + 5) == pytest.approx(15 / 6)
    w2 = store.ensure(
        A, settings(stable_window=10.0, panic_window=2.0, aggregation="weighted-exponential"), NOW
    )
    assert w2 is not w and w2.algorithm == "weighted-exponential"


def test_scrape_once_records_every_target_and_survives_a_broken_collector() -> None:
    store = MetricsStore()
    s = settings()
    for key in (A, B):
        store.ensure(key, s, NOW)
    static = StaticCollector({A: StatTotals(concurrency=5)})
    results = asyncio.run(scrape_once(static, [CollectTarget(A), CollectTarget(B)], store, NOW))
    assert [r.status for r in results] == ["ok", "missing"]
    assert store.observation(A, s, 1, True, NOW).stable == 5.0

    class Broken(StaticCollector):
        async def collect(self, target: CollectTarget, now: float) -> Collection:
            raise RuntimeError("boom")

    results = asyncio.run(scrape_once(Broken(), [CollectTarget(A)], store, NOW + 1))
    assert results[0].status == "missing" and "collector error: RuntimeError: boom" in results[0].reason


def test_scrape_loop_ticks_until_stopped() -> None:
    store = MetricsStore()
    s = settings()
    store.ensure(A, s, NOW)
    static = StaticCollector({A: StatTotals(concurrency=7)})
    clock_value = [NOW]
    rounds: list[int] = []

    def clock() -> float:
        clock_value[0] += 0.5
        return clock_value[0]

    async def go() -> None:
        stop = asyncio.Event()

        def on_round(results: list[Collection]) -> None:
            rounds.append(len(results))
            if len(rounds) == 3:
                stop.set()

        await run_scrape_loop(
            static, lambda: [CollectTarget(A)], store, clock, stop, interval=0.01, on_round=on_round
        )

    asyncio.run(go())
    assert rounds == [1, 1, 1]
    assert store.latest(A) is not None
