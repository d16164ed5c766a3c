"""knscale's autoscaler class for Knative revisions: PodAutoscalers in, scale / SKS / status out.

For every PodAutoscaler whose class annotation is exactly ``autoscaling.knscale.dev`` (never one
of another class), each tick: the policy chosen by ``knscale.dev/scaling-policy`` (default
knscale's cold-start-aware policy, ``kpa`` = the faithful KPA) decides on the revision's metric
windows, ``reconcile_pa`` (pure, ``core.py``) turns that into the ServerlessService's mode and
activator count, at most one replicas write and the PA status, and this module performs them:
the SKS through the HPA sync's create-or-update (owned by the PA, a foreign one never
overwritten), ``spec.replicas`` through the Deployment's ``scale`` subresource (a guarded JSON
patch, as the KPA loop writes it), the status through ``/status`` only when it changed.

Metrics: queue-proxy's ``Stat`` scraped from the revision's ready pods every second (the
collector the KPA loop uses) into per-revision windows. Policy memory is a ``PolicySlot``, the
KPA loop's (same registry objects, same cold-start measurement from pod timestamps); the
scale-to-zero state machine is read back from the PA status on every tick, so a new leader
continues it, and the cold-start policy's learned idle-gap state is stored compactly in the PA's
``status.annotations`` (``knscale.dev/scaling-state``, ≤ 4 kB, at most once a minute) and read
back when a PA is first seen — after a restart or a failover the plan goes on where it was.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubeapi.errors import ApiError, Conflict, Invalid, NotFound
from kubeapi.resources import DEPLOYMENTS, PODAUTOSCALERS, PODS, SERVERLESSSERVICES
from reconciler.hpa.objects import PaConditions
from reconciler.hpa.sync import ScaledObjectSync, SyncResult
from reconciler.kpa.policy import DEFAULT_POLICY, Policy
from reconciler.kpa.scaler import ActivatorPath, ScaleContext
from reconciler.metrics.activator import ActivatorReading, ActivatorScraper
from reconciler.metrics.base import Collection, CollectTarget, PodInfo, RevisionKey, missing
from reconciler.metrics.store import MetricsStore
from reconciler.podautoscaler.core import (
    PaFacts,
    PaPlan,
    proxy_since,
    reconcile_pa,
    rfc3339,
    scaler_state,
    with_scaler,
)
from reconciler.podautoscaler.demand import activator_addresses, waiting_at_zero, with_activator
from reconciler.podautoscaler.policies import policy_name
from reconciler.podautoscaler.probe import ActivatorProber
from reconciler.runtime.buckets import target_key
from reconciler.runtime.clock import parse_time
from reconciler.runtime.events import Recorder
from reconciler.runtime.exporter import ReconcilerMetrics
from reconciler.runtime.objects import annotations_of, autoscaler_class, meta, name_of, namespace_of
from reconciler.runtime.ports import Cache, Fenced, Writer
from reconciler.runtime.writes import scale_patch
from reconciler.scaling.pods import PodIndex, pod_is_ready, pod_start
from reconciler.scaling.policies import STATE_ANNOTATION, PolicySlot, Step
from reconciler.scaling.sources import DecisionRecord, MetricSources
from translator.autoscaling.kpa import KpaSettings, resolve_kpa_settings
from translator.config.autoscaler import KNSCALE_CLASS
from translator.config.knscale import KnscaleConfig

log = logging.getLogger(__name__)

PaKey = tuple[str, str]  # (namespace, name)
KIND = "PodAutoscaler"


@dataclass
class _Pa:
    key: PaKey
    rkey: RevisionKey
    pa: dict[str, Any]
    settings: KpaSettings
    slot: PolicySlot
    problem: str | None = None  # an unusable knscale.dev/scaling-policy, reported once
    last: Step | None = None
    pods: tuple[PodInfo, ...] = ()
    ready: int = 0
    probe_ok: bool = False


def _container_concurrency(pa: Mapping[str, Any]) -> int:
    value = (pa.get("spec") or {}).get("containerConcurrency")
    return value if isinstance(value, int) and value > 0 else 0


class PaScaler:
    def __init__(
        self,
        *,
        cache: Cache,
        writer: Writer,
        sync: ScaledObjectSync,
        recorder: Recorder,
        metrics: ReconcilerMetrics,
        config: Callable[[], KnscaleConfig],
        sources: MetricSources,
        prober: ActivatorProber | None = None,
        namespace: str | None = None,
        on_decision: Callable[[DecisionRecord], None] | None = None,
        owns: Callable[[str], bool] = lambda _key: True,
        policy: Policy[Any] = DEFAULT_POLICY,
        activator_metrics: tuple[str, ...] | None = None,
    ) -> None:
        # The activator's Prometheus endpoints: the given HOST:PORTs, or (None) its ready pods.
        self._activator_fixed = activator_metrics
        self._activator_found: list[str] = []
        self.activator = ActivatorScraper(self._activator_targets)
        self._activator_problem: str | None = None  # logged when it changes
        self._pokes: set[PaKey] = set()
        self._policy = policy  # what `kpa` runs (the KPA loop's; tests swap it)
        self._owns = owns  # bucket ownership (reconciler.runtime.buckets): only our buckets' PAs
        self._cache = cache
        self._writer = writer
        self._sync = sync
        self._recorder = recorder
        self._metrics = metrics
        self._config = config
        self._sources = sources
        self.prober = prober or ActivatorProber()
        self._namespace = namespace
        self._on_decision = on_decision
        self._store = MetricsStore(strict=True)
        self._lock = threading.Lock()
        self._targets: dict[PaKey, _Pa] = {}

    # -- which PodAutoscalers --

    def refresh(self, now: float) -> None:
        config = self._config()
        index = PodIndex()
        pods = self._cache.items(PODS)
        for pod in pods:
            if pod_is_ready(pod):
                index.add(pod)
        if self._activator_fixed is None:
            self._activator_found = activator_addresses(pods)
        seen: set[PaKey] = set()
        for pa in self._cache.items(PODAUTOSCALERS):
            if autoscaler_class(pa) != KNSCALE_CLASS or meta(pa).get("deletionTimestamp"):
                continue  # another class's PA is never touched
            ns, name = namespace_of(pa), name_of(pa)
            if (self._namespace and ns != self._namespace) or not self._owns(target_key(ns, name)):
                continue
            try:
                rkey = RevisionKey(ns, name)
            except ValueError as exc:
                log.warning("skipping PodAutoscaler %s/%s: %s", ns, name, exc)
                continue
            seen.add((ns, name))
            settings = resolve_kpa_settings(
                annotations_of(pa), config.autoscaler, container_concurrency=_container_concurrency(pa)
            )
            revision = (meta(pa).get("labels") or {}).get("serving.knative.dev/revision", name)
            ready = index.select(ns, {"matchLabels": {"serving.knative.dev/revision": revision}})
            infos = tuple(
                PodInfo(
                    name_of(p),
                    str((p.get("status") or {}).get("podIP")),
                    parse_time((p.get("status") or {}).get("startTime")),
                )
                for p in ready
                if (p.get("status") or {}).get("podIP")
            )
            chosen = policy_name(pa)
            with self._lock:
                target = self._targets.get((ns, name))
                if target is None:
                    target = _Pa((ns, name), rkey, pa, settings, PolicySlot(self._policy))
                    self._targets[(ns, name)] = target
                if chosen.problem and chosen.problem != target.problem:
                    log.warning("PodAutoscaler %s/%s: %s", ns, name, chosen.problem)
                    self._recorder.event(pa, "Warning", "UnknownScalingPolicy", chosen.problem)
                target.problem = chosen.problem
                target.slot.choose(chosen.name)  # a switch keeps the reactive KPA state
                for start in target.slot.observe_pods(s for s in map(pod_start, ready) if s is not None):
                    self._metrics.observe_pod_start(start)
                target.pa, target.settings, target.pods, target.ready = pa, settings, infos, len(ready)
                self._store.ensure(rkey, settings, now)
        with self._lock:
            for key in [k for k in self._targets if k not in seen]:
                gone = self._targets.pop(key)
                self._store.forget(gone.rkey)
                self._metrics.forget(key[0], key[1], KIND)

    def tracked(self) -> list[PaKey]:
        with self._lock:
            return sorted(self._targets)

    # -- metrics in --

    async def scrape(self, now: float) -> list[Collection]:
        collector = self._sources.override or self._sources.queue_proxy
        with self._lock:
            jobs = [
                CollectTarget(t.rkey, t.pods, t.settings.stable_window)
                for t in self._targets.values()
                if t.settings.target_burst_capacity != -1  # Knative: no scrape target with TBC -1
            ]

        async def one(target: CollectTarget) -> Collection:
            if collector is None:
                return missing(target.key, "none", "no metric source")
            try:
                return await collector.collect(target, now)
            except Exception as exc:  # a collector bug must not stop the other revisions
                log.exception("collector %s failed for %s", collector.name, target.key)
                return missing(target.key, collector.name, f"collector error: {type(exc).__name__}: {exc}")

        reading, *results = await asyncio.gather(self.activator.scrape(), *(one(j) for j in jobs))
        assert isinstance(reading, ActivatorReading)
        by_key: dict[RevisionKey, Collection] = {r.key: r for r in results if isinstance(r, Collection)}
        self._report_activator(reading)
        out = []
        with self._lock:
            for target in self._targets.values():
                unlimited = target.settings.target_burst_capacity == -1
                demand = reading.of(target.rkey) if reading.ok else None
                collected = with_activator(
                    target.rkey,
                    by_key.get(target.rkey),
                    demand,
                    unlimited=unlimited,
                    metric=target.settings.metric,
                )
                if collected is not None:
                    self._store.record(collected, now)
                    out.append(collected)
                if waiting_at_zero(target.ready, demand, unlimited=unlimited):
                    self._pokes.add(target.key)
        return out

    def _report_activator(self, reading: ActivatorReading) -> None:
        problem = None if reading.ok and not reading.problems else "; ".join(reading.problems)[:500]
        if problem == self._activator_problem or not self._targets:
            return
        self._activator_problem = problem
        if problem is None:
            log.info("activator metrics: read from %d activator(s)", reading.answered)
        elif reading.ok:
            log.warning("activator metrics: some activators did not answer: %s", problem)
        else:
            log.warning(
                "activator metrics unavailable (%s): revisions of %s at zero stay there (min-scale aside); "
                "Knative exports them with metrics-protocol: prometheus in config-observability",
                problem,
                KNSCALE_CLASS,
            )

    def _activator_targets(self) -> list[str]:
        return list(self._activator_fixed) if self._activator_fixed is not None else self._activator_found

    def poked(self) -> bool:
        with self._lock:
            return bool(self._pokes)

    def poke(self, now: float) -> list[DecisionRecord]:
        """Decide at once the revisions at zero whose requests wait in the activator (KPA's poke:
        the first request does not wait for the next tick)."""
        with self._lock:
            keys, self._pokes = self._pokes, set()
            targets = [self._targets[k] for k in sorted(keys) if k in self._targets]
        return self._decide(targets, now)

    # -- decisions out --

    def tick(self, now: float) -> list[DecisionRecord]:
        with self._lock:
            targets = list(self._targets.values())
            self._pokes.clear()  # everything is decided now
        return self._decide(targets, now)

    def _decide(self, targets: list[_Pa], now: float) -> list[DecisionRecord]:
        records = []
        for target in targets:
            if not self._owns(target_key(*target.key)):
                continue  # its bucket went since the last refresh
            try:
                records.append(self._tick_one(target, now))
            except Fenced:
                raise
            except Exception:  # one broken PA must not stop the others
                log.exception("decision failed for PodAutoscaler %s/%s", *target.key)
        return records

    def _activator(self, target: _Pa, sks: Mapping[str, Any] | None, inactive: bool) -> ActivatorPath:
        unlimited = target.settings.target_burst_capacity == -1
        if not inactive:
            target.probe_ok = False  # proven again each time the PA goes Inactive
        elif not (unlimited or target.probe_ok):
            service = str((target.pa.get("status") or {}).get("serviceName") or "")
            target.probe_ok = bool(service) and self.prober.probe(service, target.key[0])
        return ActivatorPath(proxy_since(sks), target.probe_ok, unlimited)

    def _tick_one(self, target: _Pa, now: float) -> DecisionRecord:
        ns, name = target.key
        pa, settings = target.pa, target.settings
        ref = (pa.get("spec") or {}).get("scaleTargetRef") or {}
        deployment = self._cache.get(DEPLOYMENTS, ns, str(ref.get("name") or ""))
        spec_replicas = ((deployment or {}).get("spec") or {}).get("replicas")
        current = spec_replicas if isinstance(spec_replicas, int) else None
        sks = self._cache.get(SERVERLESSSERVICES, ns, name)
        scaler = scaler_state(pa.get("status"), now)
        path = self._activator(target, sks, scaler.activity == "inactive")
        reachable = (pa.get("spec") or {}).get("reachability") != "Unreachable"
        target.last = None
        if sks is not None and (sks.get("status") or {}).get("privateServiceName") and deployment:
            with self._lock:
                observation = self._store.observation(target.rkey, settings, target.ready, reachable, now)
                ctx = ScaleContext(
                    current_replicas=current,
                    ready_pods=target.ready,
                    reachable=reachable,
                    zero_capable=True,  # the activator buffers and counts requests at zero
                    activation_timeout=settings.progress_deadline + 30.0,
                    activator=path,
                )
                # The stored learned state lives in the PA status, where knscale alone writes.
                stored = {"metadata": {"annotations": (pa.get("status") or {}).get("annotations") or {}}}
                target.last = target.slot.step(
                    settings, observation, ctx, stored, now, adjust=lambda s: with_scaler(s, scaler)
                )
        result = target.last.result if target.last is not None else None
        facts = PaFacts(settings, sks, current, target.ready, result, path, reachable)
        plan = reconcile_pa(pa, facts, now)
        return self._apply(target, plan, deployment, current, now)

    def _apply(
        self,
        target: _Pa,
        plan: PaPlan,
        deployment: Mapping[str, Any] | None,
        current: int | None,
        now: float,
    ) -> DecisionRecord:
        ns, name = target.key
        pa = target.pa
        sync_result = SyncResult()
        status = plan.status
        store = target.slot.store_patch(now)
        if store is not None:
            text = store["metadata"]["annotations"][STATE_ANNOTATION]
            status["annotations"] = {**(status.get("annotations") or {}), STATE_ANNOTATION: text}
        conds = PaConditions(status.get("conditions"), rfc3339(now))
        _, ok = self._sync.ensure_owned(SERVERLESSSERVICES, pa, plan.sks, sync_result, conds=conds)
        status["conditions"] = conds.to_list()
        action, reason = "unchanged", plan.reason
        if ok and plan.replicas is not None and deployment is not None:
            action, reason = self._write_scale(deployment, current, plan.replicas, plan.reason)
        elif not ok:
            action, reason = "blocked", sync_result.problem or "the ServerlessService could not be reconciled"
        if self._sync.write_pa_status(pa, status, sync_result):
            if store is not None:
                target.slot.stored_ok(store, now)
        elif store is not None:
            target.slot.store_failed(now)
        decision = target.last.result.decision if target.last is not None else None
        mode = decision.mode if decision is not None and decision.valid else "-"
        self._metrics.actual_scale.labels(ns, name, KIND).set(target.ready)
        if plan.want >= 0:
            self._metrics.desired_scale.labels(ns, name, KIND).set(plan.want)
        self._metrics.panic_mode.labels(ns, name, KIND).set(1 if mode == "panic" else 0)
        starts = target.slot.starts
        self._metrics.set_cold_start(ns, name, KIND, starts.cold_start, starts.download)
        policy, why, cold = target.slot.view(target.last)
        record = DecisionRecord(
            KIND,
            ns,
            name,
            decision.observed_stable if decision is not None and decision.valid else None,
            decision.observed_panic if decision is not None and decision.valid else None,
            target.settings.metric,
            target.ready,
            current,
            plan.want,
            mode,
            action,
            f"{reason}; sks={plan.mode}/{plan.activators}",
            policy,
            why,
            cold,
            starts.download,
        )
        self._metrics.decisions.labels(KIND, mode, action).inc()
        if why != "-":
            self._metrics.policy_decisions.labels(policy, why).inc()
        if self._on_decision is not None:
            self._on_decision(record)
        return record

    def _write_scale(
        self, deployment: Mapping[str, Any], current: int | None, replicas: int, reason: str
    ) -> tuple[str, str]:
        ns, name = namespace_of(deployment), name_of(deployment)
        try:
            scale = self._writer.patch(
                DEPLOYMENTS,
                ns,
                name,
                scale_patch(current, replicas),
                subresource="scale",
                why=f"scale {current} → {replicas}: {reason}",
            )
        except (Conflict, Invalid, NotFound) as exc:
            return "failed", f"{reason}; write refused: {exc.reason}"
        except ApiError as exc:
            return "failed", f"{reason}; write failed: {exc}"
        if scale is None:
            return "would-scale", reason
        updated = dict(deployment)
        updated["spec"] = {**(deployment.get("spec") or {}), "replicas": replicas}
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv:
            updated["metadata"] = {**meta(deployment), "resourceVersion": rv}
        self._cache.remember(DEPLOYMENTS, updated)
        return "scaled", f"{reason}; scaling {current}→{replicas}" if "scaling" not in reason else reason

    async def aclose(self) -> None:
        await self.activator.aclose()

    def forget_state(self, lost: Callable[[str], bool] = lambda _key: True) -> None:
        """Buckets lost (`lost(namespace/name)`; default: all): their PAs' policy memory and windows
        go, as a restarted autoscaler has none; the PA status keeps the rest."""
        with self._lock:
            for key in [k for k in self._targets if lost(target_key(k[0], k[1]))]:
                gone = self._targets.pop(key)
                gone.slot.forget()
                self._store.forget(gone.rkey)
