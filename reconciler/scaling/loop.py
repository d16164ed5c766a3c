"""KPA class for plain Deployments and StatefulSets: collectors → policy → `scale` subresource.

Targets are workloads annotated `autoscaling.knative.dev/class: kpa.autoscaling.knative.dev`
that no Knative Revision controls (Knative's own KPA scales those). Each second the metric
sources are scraped into per-workload windows (`MetricsStore`); every tick the policy (the
faithful KPA decider plus the no-activator scaler step, `reconciler.kpa.policy`) turns the
windows into a desired scale, and the controller writes it through the target's `scale`
subresource — one JSON patch of `spec.replicas`, only when it differs from the current
value. The patch starts with a `test` of the value the decision was based on, so a decision
made on a stale cache fails instead of overwriting someone else's change.

Which metrics: a workload whose requests are counted at the ingress (a Prometheus query —
its own `knscale.dev/prometheus-query` annotation or the `--prometheus-query` default)
may scale to zero and back; any other workload is scraped through queue-proxy on its pods
and keeps at least one replica, because nothing would see a request while it has none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubeapi.errors import ApiError, Conflict, Invalid, NotFound
from kubeapi.resources import PODS, SCALEDOBJECTS, WORKLOADS
from reconciler.kpa.policy import DEFAULT_POLICY, Policy
from reconciler.kpa.scaler import ScaleContext
from reconciler.metrics.base import Collection, CollectTarget, PodInfo, RevisionKey, missing
from reconciler.metrics.store import MetricsStore
from reconciler.runtime.buckets import target_key
from reconciler.runtime.clock import parse_time
from reconciler.runtime.events import Recorder
from reconciler.runtime.exporter import ReconcilerMetrics
from reconciler.runtime.objects import (
    KPA_CLASS,
    annotations_of,
    autoscaler_class,
    is_revision_controlled,
    meta,
    name_of,
    namespace_of,
)
from reconciler.runtime.ports import Cache, Fenced, Writer
from reconciler.scaling.decisionlog import log_scale_decision
from reconciler.scaling.pods import PodIndex, pod_is_ready, pod_start
from reconciler.scaling.policies import PolicySlot, Step
from reconciler.scaling.sources import DecisionRecord, MetricSources, SourceChoice, conflicting_scaled_object
from reconciler.scaling.stored import store_state
from translator.autoscaling.kpa import KpaSettings, resolve_kpa_settings
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding
from translator.core.objects import META_ANNOTATIONS
from translator.validate import validate_object

log = logging.getLogger(__name__)

WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)


# ---- per-workload state ---------------------------------------------------------------------


@dataclass
class _Target:
    key: WorkloadKey
    rkey: RevisionKey
    workload: dict[str, Any]
    settings: KpaSettings
    source: SourceChoice
    slot: PolicySlot
    last: Step | None = None  # the policy's last step (policy name, reason, S) for the record
    pods: tuple[PodInfo, ...] = ()
    ready: int = 0
    missing: str | None = None  # reported "metrics missing" reason while it lasts
    blocked: str | None = None  # why the workload is not scaled at all (invalid annotations, …)


class KpaScaler:
    def __init__(
        self,
        *,
        cache: Cache,
        writer: Writer,
        recorder: Recorder,
        metrics: ReconcilerMetrics,
        config: Callable[[], KnscaleConfig],
        sources: MetricSources,
        policy: Policy[Any] = DEFAULT_POLICY,
        namespace: str | None = None,
        on_decision: Callable[[DecisionRecord], None] | None = None,
        owns: Callable[[str], bool] = lambda _key: True,
    ) -> None:
        self._cache = cache
        self._writer = writer
        self._recorder = recorder
        self._metrics = metrics
        self._config = config
        self._sources = sources
        self._policy = policy
        self._namespace = namespace
        self._on_decision = on_decision
        self._owns = owns  # the ownership filter (bucket shards): only `namespace/name` keys we hold
        self._store = MetricsStore(strict=True)
        self._lock = threading.Lock()  # guards _targets and _store between scrape and tick threads
        self._targets: dict[WorkloadKey, _Target] = {}

    # -- which workloads --

    def _candidates(self) -> list[dict[str, Any]]:
        out = []
        for res in WORKLOADS.values():
            for obj in self._cache.items(res):
                if autoscaler_class(obj) != KPA_CLASS or is_revision_controlled(obj):
                    continue
                if meta(obj).get("deletionTimestamp"):
                    continue
                if self._namespace and namespace_of(obj) != self._namespace:
                    continue
                if not self._owns(target_key(namespace_of(obj), name_of(obj))):
                    continue
                out.append(obj)
        return out

    def _ready_pods(self) -> PodIndex:
        index = PodIndex()
        for pod in self._cache.items(PODS):
            if pod_is_ready(pod):
                index.add(pod)
        return index

    def _validation_errors(self, workload: Mapping[str, Any], config: KnscaleConfig) -> list[Finding]:
        return [f for f in validate_object(workload, config) if f.is_error and f.path == META_ANNOTATIONS]

    def refresh(self, now: float) -> None:
        """Bring the tracked set in line with the cache: new workloads, changed settings, pods."""
        config = self._config()
        pods_by_ns = self._ready_pods()
        seen: set[WorkloadKey] = set()
        for obj in self._candidates():
            key = (str(obj.get("kind")), namespace_of(obj), name_of(obj))
            seen.add(key)
            try:
                rkey = RevisionKey(key[1], key[2])
            except ValueError as exc:
                log.warning("skipping %s %s/%s: %s", *key, exc)
                continue
            blocked = None
            errors = self._validation_errors(obj, config)
            if errors:
                blocked = "; ".join(f.text() for f in errors)[:900]
            settings = resolve_kpa_settings(annotations_of(obj), config.autoscaler)
            selector = (obj.get("spec") or {}).get("selector")
            ready = pods_by_ns.select(key[1], selector)
            infos = tuple(
                PodInfo(
                    name_of(p),
                    str((p.get("status") or {}).get("podIP")),
                    parse_time((p.get("status") or {}).get("startTime")),
                )
                for p in ready
                if (p.get("status") or {}).get("podIP")
            )
            with self._lock:
                source = self._sources.choose(obj, settings)
                target = self._targets.get(key)
                if target is None:
                    target = _Target(key, rkey, obj, settings, source, PolicySlot(self._policy))
                    self._targets[key] = target
                target.slot.choose(settings.scaling_policy)
                for start in target.slot.observe_pods(s for s in map(pod_start, ready) if s is not None):
                    self._metrics.observe_pod_start(start)
                if blocked and blocked != target.blocked:
                    self._recorder.event(obj, "Warning", "TranslationFailed", blocked)
                target.blocked = blocked
                target.workload = obj
                target.settings = settings
                target.source = source
                target.pods = infos
                target.ready = len(ready)
                self._store.ensure(rkey, settings, now)
        with self._lock:
            for key in [k for k in self._targets if k not in seen]:
                gone = self._targets.pop(key)
                self._store.forget(gone.rkey)
                self._metrics.forget(key[1], key[2], key[0])

    def tracked(self) -> list[WorkloadKey]:
        with self._lock:
            return sorted(self._targets)

    # -- metrics in --

    async def scrape(self, now: float) -> list[Collection]:
        """One collection round for every tracked workload; results go into the windows."""
        with self._lock:
            jobs = [
                (t.rkey, t.source, CollectTarget(t.rkey, t.pods, t.settings.stable_window, t.source.query))
                for t in self._targets.values()
                if t.blocked is None
            ]

        async def one(rkey: RevisionKey, source: SourceChoice, target: CollectTarget) -> Collection:
            if source.collector is None:
                return missing(rkey, "none", source.problem or "no metric source")
            try:
                return await source.collector.collect(target, now)
            except Exception as exc:  # a collector bug must not stop the other workloads
                log.exception("collector %s failed for %s", source.collector.name, rkey)
                return missing(rkey, source.collector.name, f"collector error: {type(exc).__name__}: {exc}")

        results = list(await asyncio.gather(*(one(*job) for job in jobs)))
        with self._lock:
            for result in results:
                self._store.record(result, now)
        return results

    # -- decisions out --

    def tick(self, now: float) -> list[DecisionRecord]:
        """Decide every tracked workload and write the scales that differ."""
        with self._lock:
            targets = list(self._targets.values())
        records = []
        for target in targets:
            if not self._owns(target_key(target.key[1], target.key[2])):
                continue  # its bucket went since the last refresh
            try:
                records.append(self._tick_one(target, now))
                store_state(target.slot, target.key, self._writer, self._cache, now)
            except Fenced:
                raise
            except Exception:  # one broken workload must not stop the others
                log.exception("tick failed for %s %s/%s", *target.key)
        return records

    def _tick_one(self, target: _Target, now: float) -> DecisionRecord:
        kind, ns, name = target.key
        spec_replicas = (target.workload.get("spec") or {}).get("replicas")
        current = spec_replicas if isinstance(spec_replicas, int) else None
        held = current if current is not None else 1  # what "keep the scale" reports as desired
        settings = target.settings
        target.last = None
        if target.blocked is not None:
            return self._record(target, None, None, current, held, "-", "blocked", target.blocked)
        conflict = conflicting_scaled_object(self._cache.items(SCALEDOBJECTS), *target.key)
        if conflict is not None:
            self._recorder.event(target.workload, "Warning", "ConflictingScaledObject", conflict)
            return self._record(target, None, None, current, held, "-", "blocked", conflict)
        with self._lock:
            observation = self._store.observation(target.rkey, settings, target.ready, True, now)
            latest = self._store.latest(target.rkey)
            ctx = ScaleContext(
                current_replicas=current, ready_pods=target.ready, zero_capable=target.source.zero_capable
            )
            target.last = target.slot.step(settings, observation, ctx, target.workload, now)
        decision, outcome = target.last.result.decision, target.last.result.outcome
        self._report_missing(
            target, decision.valid, observation.missing_reason or (latest.reason if latest else "")
        )
        mode = decision.mode
        self._metrics.panic_mode.labels(ns, name, kind).set(1 if mode == "panic" else 0)
        self._metrics.actual_scale.labels(ns, name, kind).set(target.ready)
        if not decision.valid:
            self._metrics.metrics_missing.labels(ns, name).inc()
            return self._record(target, None, None, current, held, mode, "held", outcome.reason)
        if outcome.want >= 0:
            self._metrics.desired_scale.labels(ns, name, kind).set(outcome.want)
        stable, panic = decision.observed_stable, decision.observed_panic
        if not outcome.apply or outcome.replicas is None:
            return self._record(
                target, stable, panic, current, outcome.want, mode, "unchanged", outcome.reason
            )
        return self._write_scale(target, current, outcome.replicas, stable, panic, mode, outcome.reason)

    def _write_scale(
        self,
        target: _Target,
        current: int | None,
        replicas: int,
        stable: float,
        panic: float,
        mode: str,
        reason: str,
    ) -> DecisionRecord:
        kind, ns, name = target.key
        res = WORKLOADS[kind]
        ops: list[dict[str, Any]] = []
        if current:
            ops.append({"op": "test", "path": "/spec/replicas", "value": current})
            ops.append({"op": "replace", "path": "/spec/replicas", "value": replicas})
        else:
            # autoscaling/v1 Scale omits `replicas` when it is 0 (omitempty), so at zero there is
            # no path to test or replace: `add` sets it either way.
            ops.append({"op": "add", "path": "/spec/replicas", "value": replicas})
        try:
            scale = self._writer.patch(
                res, ns, name, ops, subresource="scale", why=f"scale {current} → {replicas}: {reason}"
            )
        except (Conflict, Invalid, NotFound) as exc:
            # The scale moved under us (or the workload went away): decide again on fresh data.
            log.info("%s %s/%s: scale write refused (%s); retrying next tick", kind, ns, name, exc.reason)
            return self._record(
                target,
                stable,
                panic,
                current,
                replicas,
                mode,
                "failed",
                f"{reason}; write refused: {exc.reason}",
            )
        except ApiError as exc:
            self._recorder.event(
                target.workload, "Warning", "ScaleFailed", f"Failed to scale to {replicas}: {exc}"
            )
            return self._record(
                target, stable, panic, current, replicas, mode, "failed", f"{reason}; write failed: {exc}"
            )
        if scale is None:
            return self._record(target, stable, panic, current, replicas, mode, "would-scale", reason)
        updated = dict(target.workload)
        updated["spec"] = {**(target.workload.get("spec") or {}), "replicas": replicas}
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv:
            updated["metadata"] = {**meta(target.workload), "resourceVersion": rv}
        target.workload = updated
        self._cache.remember(res, updated)
        self._recorder.event(
            target.workload, "Normal", "Scaled", f"Scaled from {current} to {replicas}: {reason}"[:1000]
        )
        return self._record(target, stable, panic, current, replicas, mode, "scaled", reason)

    def _report_missing(self, target: _Target, valid: bool, reason: str) -> None:
        if valid:
            if target.missing is not None:
                self._recorder.event(
                    target.workload, "Normal", "MetricsRecovered", "Metrics are available again"
                )
                target.missing = None
            return
        if target.missing is None:
            text = f"Holding the current scale: {reason or 'metrics are missing'}"
            self._recorder.event(target.workload, "Warning", "MetricsMissing", text[:1000])
            target.missing = reason or "missing"

    def _record(
        self,
        target: _Target,
        stable: float | None,
        panic: float | None,
        current: int | None,
        desired: int,
        mode: str,
        action: str,
        reason: str,
    ) -> DecisionRecord:
        kind, ns, name = target.key
        starts = target.slot.starts
        self._metrics.set_cold_start(ns, name, kind, starts.cold_start, starts.download)
        policy, why, cold = target.slot.view(target.last)
        record = DecisionRecord(
            kind,
            ns,
            name,
            stable,
            panic,
            target.settings.metric,
            target.ready,
            current,
            desired,
            mode,
            action,
            reason,
            policy,
            why,
            cold,
            starts.download,
        )
        self._metrics.decisions.labels(kind, mode, action).inc()
        log_scale_decision(record, policy)
        if why != "-":
            self._metrics.policy_decisions.labels(policy, why).inc()
        if self._on_decision is not None:
            self._on_decision(record)
        return record

    def forget_state(self, lost: Callable[[str], bool] = lambda _key: True) -> None:
        """Buckets lost: drop their targets' decider memory and windows, as a freshly started
        autoscaler has none (`lost(namespace/name)`; default: every target)."""
        with self._lock:
            for key in [k for k in self._targets if lost(target_key(k[1], k[2]))]:
                self._store.forget(self._targets.pop(key).rkey)
