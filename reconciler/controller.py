"""`knscale reconcile`: the controller process — informers, leader election, the loops.

Threads: one informer per watched resource keeps the cache current (also on standby
replicas, so a failover starts warm); the leader-election thread campaigns and renews; the
scrape thread collects metrics once per second into the KPA windows; the main thread runs
the reconcile loop — HPA-class syncs as their objects change (work queue, per-key backoff)
and the KPA tick every `interval` — and owns shutdown.

Targets are sharded into `--buckets` bucket Leases (N = 1: one leader for everything); a
replica reconciles only the keys of the buckets it holds (`Ownership.owns`), and every write
re-checks that at the moment of writing (`GuardedWriter`), so a replica that missed its
renewals stops writing before a successor can have taken the Lease. On SIGTERM the loop
finishes the current tick, the Leases are released (peers take over within one retry period)
and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import ApiError
from kubeapi.resources import (
    DEPLOYMENTS,
    HPAS,
    PODAUTOSCALERS,
    PODS,
    SCALEDOBJECTS,
    SERVERLESSSERVICES,
    STATEFULSETS,
    WORKLOADS,
    Resource,
)
from reconciler.hpa.sync import ScaledObjectSync, SyncResult
from reconciler.kpa.policy import DEFAULT_POLICY, KpaState, Policy
from reconciler.podautoscaler.loop import PaScaler
from reconciler.podautoscaler.probe import ActivatorProber
from reconciler.runtime.buckets import OwnAll, Ownership, OwnershipChange, target_key
from reconciler.runtime.cache import InformerCache
from reconciler.runtime.clock import Clock, SystemClock
from reconciler.runtime.events import EventRecorder, PrintingRecorder, Recorder
from reconciler.runtime.exporter import ReconcilerMetrics
from reconciler.runtime.informer import Informer, slim_pod
from reconciler.runtime.leader import LeaseConfig, default_identity
from reconciler.runtime.objects import (
    HPA_CLASS,
    autoscaler_class,
    is_revision_controlled,
    meta,
    name_of,
    namespace_of,
)
from reconciler.runtime.ports import Fenced, ScaledObjectRenderer, TranslatorRenderer
from reconciler.runtime.shards import BucketElector
from reconciler.runtime.workqueue import WorkKey, WorkQueue, work_keys
from reconciler.runtime.writes import GuardedWriter, InstrumentedApi
from reconciler.scaling.loop import KpaScaler
from reconciler.scaling.sources import DecisionRecord, MetricSources
from translator.config.knscale import KnscaleConfig

log = logging.getLogger(__name__)

WATCHED: tuple[Resource, ...] = (
    PODAUTOSCALERS,
    DEPLOYMENTS,
    STATEFULSETS,
    SCALEDOBJECTS,
    HPAS,
    SERVERLESSSERVICES,
    PODS,
)
MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class ControllerOptions:
    namespace: str | None = None  # None: all namespaces
    interval: float = 2.0
    scrape_interval: float = 1.0
    resync_period: float = 300.0
    watch_timeout: int = 300
    retry_after: float = 5.0
    dry_run: bool = False
    lease: LeaseConfig | None = None  # None: no election (dry run, or a single replica by choice)
    identity: str = field(default_factory=default_identity)
    activator_probe_address: str | None = None  # tests: probe the activator at HOST:PORT
    activator_metrics: tuple[str, ...] | None = None  # HOST:PORTs; None: the activator pods; (): off


class Controller:
    def __init__(
        self,
        api: KubeApi,
        options: ControllerOptions,
        *,
        config: Callable[[], KnscaleConfig],
        sources: MetricSources,
        clock: Clock | None = None,
        metrics: ReconcilerMetrics | None = None,
        renderer: ScaledObjectRenderer | None = None,
        policy: Policy[KpaState] = DEFAULT_POLICY,
        out: Callable[[str], None] = print,
        elector_rand: Callable[[], float] | None = None,
    ) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        self.metrics = metrics or ReconcilerMetrics()
        self.api = InstrumentedApi(api, self.metrics)
        self._out = out
        self._sources = sources
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.queue = WorkQueue()

        informers = {
            res: Informer(
                self.api,
                res,
                options.namespace,
                self.clock,
                handler=self._handler(res),
                transform=slim_pod if res is PODS else None,
                watch_timeout=options.watch_timeout,
                resync_period=options.resync_period,
            )
            for res in WATCHED
        }
        self.cache = InformerCache(informers)

        self.elector: BucketElector | None = None
        self.ownership: Ownership = OwnAll()
        if options.lease is not None and not options.dry_run:
            kwargs: dict[str, Any] = {}
            if elector_rand is not None:
                kwargs["rand"] = elector_rand
            self.elector = BucketElector(self.api, options.lease, self.clock, **kwargs)
            self.ownership = self.elector
        self.ownership.subscribe(self._on_ownership)

        self.writer = GuardedWriter(
            self.api,
            self.metrics,
            can_write=lambda ns, name: self.ownership.owns(target_key(ns, name)),
            dry_run=options.dry_run,
            out=out,
        )
        self.recorder: Recorder
        if options.dry_run:
            self.recorder = PrintingRecorder(out)
        else:
            self.recorder = EventRecorder(self.api, self.clock, instance=options.identity)
        self.sync = ScaledObjectSync(
            api=self.api,
            cache=self.cache,
            writer=self.writer,
            recorder=self.recorder,
            renderer=renderer or TranslatorRenderer(),
            config=config,
            clock=self.clock,
            retry_after=options.retry_after,
        )
        self.kpa = KpaScaler(
            cache=self.cache,
            writer=self.writer,
            recorder=self.recorder,
            metrics=self.metrics,
            config=config,
            sources=sources,
            policy=policy,
            namespace=options.namespace,
            on_decision=self._on_decision,
            owns=self.ownership.owns,
        )
        # knscale's autoscaler class (reconciler/podautoscaler): PAs of autoscaling.knscale.dev only.
        self.pas = PaScaler(
            cache=self.cache,
            writer=self.writer,
            sync=self.sync,
            recorder=self.recorder,
            metrics=self.metrics,
            config=config,
            sources=sources,
            prober=ActivatorProber(options.activator_probe_address),
            activator_metrics=options.activator_metrics,
            namespace=options.namespace,
            on_decision=self._on_decision,
            owns=self.ownership.owns,
        )
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = (
            None  # one thread at a time: tests, or the scrape thread
        )
        self._next_tick = 0.0
        self._next_resync = 0.0
        self._became_leader = threading.Event()

    # ---- leadership ---------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while this replica holds any bucket (N = 1: the Lease)."""
        return self.ownership.holds_any()

    def _on_ownership(self, change: OwnershipChange) -> None:
        held = self.elector.held() if self.elector is not None else frozenset()
        self.metrics.is_leader.set(1 if held else 0)
        self.metrics.buckets_held.set(len(held))
        if change.lost:
            self.kpa.forget_state(change.lost_key)
            self.pas.forget_state(change.lost_key)
        if change.gained:  # the main loop re-enqueues every key it now owns
            self._became_leader.set()
            self._wake.set()

    # ---- events → work ------------------------------------------------------------------------

    def _handler(self, res: Resource) -> Callable[[str, dict[str, Any]], None]:
        def handle(etype: str, obj: dict[str, Any]) -> None:
            for key in work_keys(res, etype, obj):
                self.queue.add(key, self.clock.monotonic())
                self._wake.set()

        return handle

    def enqueue_all(self) -> None:
        now = self.clock.monotonic()
        owns = self.ownership.owns
        for pa in self.cache.items(PODAUTOSCALERS):
            if owns(target_key(namespace_of(pa), name_of(pa))):
                self.queue.add(("pa", namespace_of(pa), name_of(pa)), now)
        for res in (DEPLOYMENTS, STATEFULSETS):
            for wl in self.cache.items(res):
                if owns(target_key(namespace_of(wl), name_of(wl))):
                    self.queue.add(("wl", res.kind, namespace_of(wl), name_of(wl)), now)

    def sync_key(self, key: WorkKey) -> SyncResult | None:
        """Run the sync one key names, if it is (still) an HPA-class object in a bucket we hold."""
        if not self.ownership.owns(target_key(key[-2], key[-1])):
            return None
        if key[0] == "pa":
            _, ns, name = key
            pa = self.cache.get(PODAUTOSCALERS, ns, name)
            if pa is None or meta(pa).get("deletionTimestamp") or autoscaler_class(pa) != HPA_CLASS:
                return None
            return self.sync.sync_pod_autoscaler(pa)
        _, kind, ns, name = key
        res = WORKLOADS.get(kind)
        wl = self.cache.get(res, ns, name) if res else None
        if wl is None or meta(wl).get("deletionTimestamp"):
            return None
        if autoscaler_class(wl) != HPA_CLASS or is_revision_controlled(wl):
            return None
        return self.sync.sync_workload(wl)

    def process_queue(self) -> int:
        """Sync every due key; reschedule the ones that asked for it (with per-key backoff)."""
        done = 0
        for key in self.queue.pop_due(self.clock.monotonic()):
            try:
                result = self.sync_key(key)
            except Fenced as exc:
                # Its bucket was lost (or the lease not renewed in time) mid-sync: re-queued, and
                # the other keys popped with it go on, so none waits for the next resync.
                log.warning("%s", exc)
                self.queue.add(key, self.clock.monotonic() + self.options.retry_after)
                continue
            except ApiError as exc:
                result = SyncResult(requeue_after=self.options.retry_after, problem=str(exc))
            except Exception:  # a bug in one sync must not stop the loop
                log.exception("sync of %s failed", key)
                result = SyncResult(requeue_after=self.options.retry_after, problem="internal error")
            done += 1
            if result is None:
                self.queue.failures.pop(key, None)
                continue
            for action in result.actions:
                log.info("%s", action)
            if result.requeue_after is None:
                self.queue.failures.pop(key, None)
                if result.problem:
                    log.info("%s: %s", "/".join(key), result.problem)
                continue
            failures = self.queue.failures.get(key, 0)
            self.queue.failures[key] = failures + 1
            delay = min(MAX_BACKOFF, result.requeue_after * (2 ** min(failures, 10)))
            if result.problem:
                log.warning("%s: %s (retry in %.1fs)", "/".join(key), result.problem, delay)
            self.queue.add(key, self.clock.monotonic() + delay)
        return done

    # ---- the KPA loop -------------------------------------------------------------------------

    def _on_decision(self, record: DecisionRecord) -> None:
        # The log line of every decision is the loop's own (reconciler.scaling.decisionlog).
        if self.options.dry_run:
            self._out(f"decision {record.line()}")

    def scrape_once(self) -> None:
        """One collection round on the controller's own event loop (collectors keep HTTP
        connection pools bound to the loop they first ran on, so it is always the same one)."""
        now = self.clock.now()
        self.kpa.refresh(now)
        self.pas.refresh(now)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()

        async def both() -> None:
            await asyncio.gather(self.kpa.scrape(now), self.pas.scrape(now))

        self._loop.run_until_complete(both())
        if self.pas.poked():
            self._wake.set()  # requests wait at zero: the main loop decides them now

    def tick(self) -> list[DecisionRecord]:
        """One KPA tick: refresh the tracked set and decide every workload."""
        now = self.clock.now()
        started = self.clock.monotonic()
        self.kpa.refresh(now)
        records = self.kpa.tick(now)
        self.pas.refresh(now)
        records += self.pas.tick(now)
        self.metrics.loop_duration.observe(max(0.0, self.clock.monotonic() - started))
        return records

    # ---- one synchronous round (tests drive this; `run` repeats it) -----------------------------

    def step_informers(self) -> None:
        """List or watch once on every informer (non-blocking with the fake API)."""
        for inf in self.cache.informers():
            inf.step()

    def step(self) -> None:
        """Everything the main loop does in one pass, for the leader."""
        if self._became_leader.is_set():
            self._became_leader.clear()
            self.enqueue_all()
        self.process_queue()
        mono = self.clock.monotonic()
        if mono >= self._next_resync:
            self._next_resync = mono + self.options.resync_period
            self.enqueue_all()
            self.process_queue()
        if mono >= self._next_tick:
            self._next_tick = mono + self.options.interval
            self.tick()
        elif self.pas.poked():
            self.pas.poke(self.clock.now())

    # ---- process lifetime ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def ready(self) -> bool:
        return self.cache.synced()

    def start_background(self) -> None:
        for inf in self.cache.informers():
            t = threading.Thread(
                target=inf.run, args=(self._stop,), name=f"informer-{inf.res.plural}", daemon=True
            )
            t.start()
            self._threads.append(t)
        if self.elector is not None:
            t = threading.Thread(
                target=self.elector.run, args=(self._stop,), name="leader-election", daemon=True
            )
            t.start()
            self._threads.append(t)
        else:
            self._became_leader.set()
        t = threading.Thread(target=self._scrape_loop, name="scrape", daemon=True)
        t.start()
        self._threads.append(t)

    def _scrape_loop(self) -> None:
        try:
            while not self._stop.is_set():
                started = self.clock.monotonic()
                if self.is_leader() and self.cache.synced():
                    try:
                        self.scrape_once()
                    except Exception:
                        log.exception("scrape round failed")
                delay = self.options.scrape_interval - (self.clock.monotonic() - started)
                if self.clock.wait(max(0.0, delay), self._stop):
                    break
        finally:
            self.close_collectors()

    def close_collectors(self) -> None:
        """Close the collectors' HTTP clients and the scrape event loop (idempotent)."""
        loop = self._loop or asyncio.new_event_loop()
        self._loop = None
        try:
            for name, close in [(c.name, c.aclose) for c in self._sources.all()] + [
                ("activator", self.pas.aclose)
            ]:
                try:
                    loop.run_until_complete(close())
                except Exception:
                    log.debug("closing collector %s failed", name, exc_info=True)
        finally:
            loop.close()

    def run(self, *, sync_timeout: float = 60.0) -> int:
        """Run until `request_stop`; then drain and release the Lease. Returns the exit code."""
        self.start_background()
        deadline = self.clock.monotonic() + sync_timeout
        while not self.cache.synced() and not self._stop.is_set():
            if self.clock.monotonic() > deadline:
                log.error("caches did not sync within %.0fs; exiting", sync_timeout)
                self.request_stop()
                self._shutdown()
                return 1
            self.clock.wait(0.1, self._stop)
        while not self._stop.is_set():
            leading = self.is_leader()
            if leading:
                try:
                    self.step()
                except Fenced as exc:
                    log.warning("%s", exc)
            self._wait_for_work(leading)
        self._shutdown()
        return 0

    def _wait_for_work(self, leading: bool) -> None:
        timeout = self.options.interval
        if leading:
            now = self.clock.monotonic()
            next_at = self._next_tick
            due = self.queue.next_due()
            if due is not None:
                next_at = min(next_at, due)
            timeout = max(0.0, min(next_at - now, self.options.interval))
        self._wake.clear()
        if timeout > 0 and not self._stop.is_set():
            self._wake.wait(timeout)

    def _shutdown(self) -> None:
        """Drain: the loop has finished its tick; stop campaigning, then release the Lease so a
        standby takes over now instead of after the lease duration."""
        self._stop.set()
        for t in self._threads:
            if t.name == "leader-election":
                # Joined first: a renewal still in flight must not re-take the Lease after release.
                t.join(timeout=self.options.lease.renew_deadline if self.options.lease else 5.0)
        if self.elector is not None:
            self.elector.release_all()
        for t in self._threads:
            if t.name == "scrape":
                t.join(timeout=5.0)
        log.info("reconciler stopped")
