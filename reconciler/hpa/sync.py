"""HPA class: knscale as a drop-in replacement for autoscaler-keda.

For an HPA-class Knative PodAutoscaler, `sync_pod_autoscaler` does what autoscaler-keda's
reconcile does (reference keda-translation.md §C4): render the ScaledObject, create it or
update its spec when it differs semantically (never an object another owner controls), wait
for the HPA KEDA makes, put the ServerlessService in Serve mode, and write the PA status —
desired/actual scale and the Ready/Active/SKSReady/ScaleTargetInitialized conditions — so
the Revision becomes Ready. For an HPA-class Deployment/StatefulSet that no Revision
controls, `sync_workload` keeps a ScaledObject named after the workload, targeting and owned
by it. Outcomes become Events (and, on a PA, conditions).

Every write is idempotent: reads come from the informer cache, a create that meets
AlreadyExists re-reads and compares, and an update carries the resourceVersion it was based
on, so a restarted or newly elected reconciler converges without duplicate writes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import AlreadyExists, ApiError, Conflict, NotFound
from kubeapi.resources import BY_KIND, HPAS, PODAUTOSCALERS, SCALEDOBJECTS, SERVERLESSSERVICES, Resource
from reconciler.hpa.objects import (
    PaConditions,
    auto_create,
    desired_sks,
    is_ready,
    pa_scale_bounds,
    status_view,
)
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.events import Recorder
from reconciler.runtime.objects import (
    controller_of,
    controller_ref,
    is_controlled_by,
    meta,
    name_of,
    namespace_of,
    semantic_equal,
)
from reconciler.runtime.ports import Cache, Fenced, Rendered, ScaledObjectRenderer, Writer
from translator.config.knscale import KnscaleConfig

log = logging.getLogger(__name__)

CONFLICT_RETRY = 0.2  # a 409 means our cache was behind: retry as soon as the watch catches up


@dataclass
class SyncResult:
    """What one sync did. `requeue_after` asks for another pass (None: wait for an event)."""

    actions: list[str] = field(default_factory=list)
    requeue_after: float | None = None
    problem: str | None = None


class _Stop(Exception):
    """Ends a sync early; the status gathered so far is still written."""

    def __init__(self, requeue_after: float | None = None, problem: str | None = None) -> None:
        super().__init__(problem or "stop")
        self.requeue_after = requeue_after
        self.problem = problem


def _not_owned_text(kind: str, current: Mapping[str, Any], owner: Mapping[str, Any]) -> str:
    ref = controller_of(current)
    holder = f"{ref.get('kind')} {ref.get('name')}" if ref else "no controller"
    return (
        f"{kind} {name_of(current)} already exists and is controlled by {holder}, not by this "
        f"{owner.get('kind')}; leaving it alone (delete it, or set "
        'autoscaling.knative.dev/scaled-object-auto-create: "false" to bring your own)'
    )


def _findings_text(rendered: Rendered) -> str:
    return "; ".join(f.text() for f in rendered.errors)[:900]


class ScaledObjectSync:
    def __init__(
        self,
        *,
        api: KubeApi,
        cache: Cache,
        writer: Writer,
        recorder: Recorder,
        renderer: ScaledObjectRenderer,
        config: Callable[[], KnscaleConfig],
        clock: Clock,
        retry_after: float = 5.0,
    ) -> None:
        self._api = api
        self._cache = cache
        self._writer = writer
        self._recorder = recorder
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._retry_after = retry_after

    # ---- shared: create-or-update one owned object ------------------------------------------

    def _fresh(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached object, or — when the cache has none — the API's (a just-created object the
        watch has not delivered yet must not be created twice)."""
        cached = self._cache.get(res, namespace, name)
        if cached is not None:
            return cached
        try:
            obj = self._api.get(res, namespace, name)
        except NotFound:
            return None
        self._cache.remember(res, obj)
        return obj

    def _owner_still_there(self, owner: Mapping[str, Any]) -> None:
        """A live read of the owner before creating its dependent. The cache can still hold an owner
        that was just deleted (a watch cut, a relist in flight): the API server would accept a
        dependent whose owner is gone, and the garbage collector would delete it again — a created
        and collected orphan per deleted owner (seen by e2e scenario 9). One GET per create only."""
        res = BY_KIND.get(str(owner.get("kind")))
        if res is None:
            return
        ns, name, uid = namespace_of(owner), name_of(owner), meta(owner).get("uid")
        try:
            live = self._api.get(res, ns, name)
        except NotFound:
            raise _Stop(None, f"{res.kind} {ns}/{name} was deleted; not creating its objects") from None
        except ApiError as exc:
            raise _Stop(self._retry_after, f"reading {res.kind} {ns}/{name} failed: {exc}") from None
        if uid and meta(live).get("uid") != uid:
            raise _Stop(CONFLICT_RETRY, f"{res.kind} {ns}/{name} was replaced; retrying with the new one")
        if meta(live).get("deletionTimestamp"):
            raise _Stop(None, f"{res.kind} {ns}/{name} is being deleted; not creating its objects")

    def _ensure(
        self,
        res: Resource,
        owner: Mapping[str, Any],
        desired: dict[str, Any],
        result: SyncResult,
        *,
        conds: PaConditions | None = None,
    ) -> dict[str, Any] | None:
        """Create `desired` or bring an owned object's spec to it. Returns the live object
        (None in dry-run when it does not exist yet). Raises `_Stop` when the sync cannot go on.
        A failed create or a foreign owner becomes a Warning event on `owner` (and, for a PA,
        its `conds`)."""
        ns, name = namespace_of(desired), name_of(desired)
        kind = desired.get("kind", res.kind)
        current = self._fresh(res, ns, name)
        if current is None:
            self._owner_still_there(owner)
            try:
                created = self._writer.create(res, ns, desired, why=f"{kind} {ns}/{name} does not exist")
            except AlreadyExists:
                # Someone (a previous leader, a racing replica) created it since our read.
                current = self._api.get(res, ns, name)
                self._cache.remember(res, current)
            except ApiError as exc:
                if conds is not None:
                    conds.mark_resource_failed_creation(kind, name)
                self._recorder.event(
                    owner, "Warning", "CreationFailed", f"Failed to create {kind} {name}: {exc}"
                )
                raise _Stop(self._retry_after, f"creating {kind} {ns}/{name} failed: {exc}") from None
            else:
                result.actions.append(f"created {kind} {ns}/{name}")
                if created is None:
                    return None
                self._cache.remember(res, created)
                self._recorder.event(owner, "Normal", f"{kind}Created", f"Created {kind} {name}")
                return created
        if not is_controlled_by(current, owner):
            if conds is not None:
                conds.mark_resource_not_owned(kind, name)
            self._recorder.event(owner, "Warning", f"{kind}NotOwned", _not_owned_text(kind, current, owner))
            raise _Stop(
                None,
                f"{kind} {ns}/{name} exists and is not controlled by {owner.get('kind')} {name_of(owner)}",
            )
        if semantic_equal(current.get("spec"), desired.get("spec")):
            return current
        update = copy.deepcopy(current)
        update["spec"] = copy.deepcopy(desired.get("spec"))
        try:
            written = self._writer.replace(
                res, ns, name, update, why=f"{kind} {ns}/{name} spec differs from desired"
            )
        except Conflict:
            raise _Stop(CONFLICT_RETRY, f"{kind} {ns}/{name} changed while updating; retrying") from None
        except NotFound:
            raise _Stop(CONFLICT_RETRY, f"{kind} {ns}/{name} vanished while updating; retrying") from None
        result.actions.append(f"updated {kind} {ns}/{name}")
        if written is None:
            return current
        self._cache.remember(res, written)
        self._recorder.event(owner, "Normal", f"{kind}Updated", f"Updated the spec of {kind} {name}")
        return written

    def ensure_owned(
        self,
        res: Resource,
        owner: Mapping[str, Any],
        desired: dict[str, Any],
        result: SyncResult,
        *,
        conds: PaConditions | None = None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """`_ensure` for the other PodAutoscaler classes (reconciler/podautoscaler): (live object,
        True), or (None, False) with `result` saying why the sync cannot go on."""
        try:
            return self._ensure(res, owner, desired, result, conds=conds), True
        except _Stop as stop:
            result.requeue_after = stop.requeue_after
            result.problem = stop.problem
            return None, False

    # ---- PodAutoscaler ------------------------------------------------------------------------

    def sync_pod_autoscaler(self, pa: dict[str, Any]) -> SyncResult:
        result = SyncResult()
        conds = PaConditions((pa.get("status") or {}).get("conditions"), rfc3339(self._clock.now()))
        conds.initialize()
        status: dict[str, Any] = dict(pa.get("status") or {})
        try:
            self._reconcile_pa(pa, conds, status, result)
        except _Stop as stop:
            result.requeue_after = stop.requeue_after
            result.problem = stop.problem
        except Fenced:
            raise
        except ApiError as exc:
            result.requeue_after = self._retry_after
            result.problem = f"API error: {exc}"
        status["conditions"] = conds.to_list()
        status["observedGeneration"] = meta(pa).get("generation")
        # Knative's CRD schema requires both names in every status write (its Go type always
        # sends them, empty until the ServerlessService exists); without them the API server
        # refuses the write with 422 and conditions such as TranslationFailed are never stored.
        status.setdefault("serviceName", "")
        status.setdefault("metricsServiceName", "")
        self.write_pa_status(pa, status, result)
        return result

    def _reconcile_pa(
        self, pa: dict[str, Any], conds: PaConditions, status: dict[str, Any], result: SyncResult
    ) -> None:
        config = self._config()
        ns, name = namespace_of(pa), name_of(pa)
        create, problem = auto_create(pa, config.keda)
        if problem:
            log.warning("PodAutoscaler %s/%s: %s", ns, name, problem)
        scaled_object: dict[str, Any] | None = None
        if create:
            rendered = self._renderer.for_pod_autoscaler(pa, config)
            if rendered.errors or rendered.manifest is None:
                text = _findings_text(rendered) or "the ScaledObject could not be rendered"
                conds.mark_inactive("TranslationFailed", text)
                self._recorder.event(pa, "Warning", "TranslationFailed", text)
                raise _Stop(None, text)
            desired = self._pin_identity(rendered.manifest, pa, name)
            scaled_object = self._ensure(SCALEDOBJECTS, pa, desired, result, conds=conds)

        hpa = self._cache.get(HPAS, ns, name)
        if hpa is None:
            raise _Stop(None, f"waiting for KEDA to create HorizontalPodAutoscaler {ns}/{name}")
        hpa_status = hpa.get("status") or {}
        desired_replicas = int(hpa_status.get("desiredReplicas") or 0)
        current_replicas = int(hpa_status.get("currentReplicas") or 0)
        min_count = ((scaled_object or {}).get("spec") or {}).get("minReplicaCount")
        if isinstance(min_count, int) and desired_replicas < min_count:
            raise _Stop(
                None, f"HPA {ns}/{name} wants {desired_replicas} < minReplicaCount {min_count}; waiting"
            )
        sks = self._ensure(SERVERLESSSERVICES, pa, desired_sks(pa), result, conds=conds)
        sks_status = (sks or {}).get("status") or {}
        status["metricsServiceName"] = sks_status.get("privateServiceName", "")
        status["serviceName"] = sks_status.get("serviceName", "")
        if sks is None or not is_ready(sks):
            conds.mark_sks_not_ready("SKS Services are not ready yet")
        else:
            conds.mark_sks_ready()
            if not conds.is_true("ScaleTargetInitialized"):
                lo, initial = pa_scale_bounds(pa, config.autoscaler)
                if current_replicas >= max(lo, initial):
                    conds.mark_scale_target_initialized()
        conds.mark_active()
        status["desiredScale"] = desired_replicas
        status["actualScale"] = current_replicas

    @staticmethod
    def _pin_identity(manifest: Mapping[str, Any], owner: Mapping[str, Any], name: str) -> dict[str, Any]:
        """Whatever the renderer produced, the identity and the owner are the controller's call."""
        desired = copy.deepcopy(dict(manifest))
        desired["apiVersion"] = SCALEDOBJECTS.api_version
        desired["kind"] = SCALEDOBJECTS.kind
        md = desired.setdefault("metadata", {})
        md["name"] = name
        md["namespace"] = namespace_of(owner)
        md["ownerReferences"] = [controller_ref(owner)]
        for volatile in ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"):
            md.pop(volatile, None)
        desired.pop("status", None)
        return desired

    def write_pa_status(self, pa: dict[str, Any], status: dict[str, Any], result: SyncResult) -> bool:
        """The /status write, only when the status changed (shared with reconciler/podautoscaler).
        False when a write was due and did not go through."""
        if status_view(status) == status_view(pa.get("status")):
            return True
        body = copy.deepcopy(pa)
        body["status"] = status
        ns, name = namespace_of(pa), name_of(pa)
        try:
            written = self._writer.replace(
                PODAUTOSCALERS, ns, name, body, subresource="status", why="PodAutoscaler status changed"
            )
        except (Conflict, NotFound):
            result.requeue_after = CONFLICT_RETRY
            return False
        except ApiError as exc:
            # Logged on its own: the result may already carry the reason the sync stopped, and
            # a refused status write must not hide behind it.
            log.error("PodAutoscaler %s/%s: status update failed: %s", ns, name, exc)
            result.requeue_after = self._retry_after
            result.problem = result.problem or f"status update failed: {exc}"
            return False
        result.actions.append(f"updated status of PodAutoscaler {ns}/{name}")
        if written is not None:
            self._cache.remember(PODAUTOSCALERS, written)
        return True

    # ---- Deployments and StatefulSets ---------------------------------------------------------

    def sync_workload(self, workload: dict[str, Any]) -> SyncResult:
        result = SyncResult()
        config = self._config()
        name, kind = name_of(workload), workload.get("kind")
        create, problem = auto_create(workload, config.keda)
        if problem:
            self._recorder.event(workload, "Warning", "InvalidAnnotation", problem)
        if not create:
            return result  # bring-your-own ScaledObject: nothing to manage
        rendered = self._renderer.for_workload(workload, config)
        if rendered.errors or rendered.manifest is None:
            text = _findings_text(rendered) or "the ScaledObject could not be rendered"
            self._recorder.event(workload, "Warning", "TranslationFailed", text)
            result.problem = text
            return result
        desired = self._pin_identity(rendered.manifest, workload, name)
        desired.setdefault("spec", {})["scaleTargetRef"] = {
            "apiVersion": workload.get("apiVersion"),
            "kind": kind,
            "name": name,
        }
        try:
            self._ensure(SCALEDOBJECTS, workload, desired, result)
        except _Stop as stop:
            result.requeue_after = stop.requeue_after
            result.problem = stop.problem
        except ApiError as exc:
            result.requeue_after = self._retry_after
            result.problem = f"API error: {exc}"
        return result
