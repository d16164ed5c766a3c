"""An in-memory Kubernetes API implementing `reconciler.kube.KubeApi`.

What it models, because the controller relies on it: monotonically increasing
resourceVersions shared by all kinds; optimistic concurrency (a replace carrying a stale
resourceVersion gets 409 Conflict); AlreadyExists on create; `metadata.generation` bumped on
spec changes; the `status` subresource (main-resource writes keep the stored status, status
writes keep everything else); the `scale` subresource of Deployments and StatefulSets
(autoscaling/v1 Scale, read and written through spec.replicas); watches from a
resourceVersion, with 410 Gone once history before it has been compacted; and injected
failures (`fail_next`). Every call is logged in `calls`, so tests can count writes.

Watches do not block by default: they yield what happened after the given version and end,
which keeps single-threaded tests deterministic. `blocking_watches=True` makes them wait for
new events up to their timeout (or until `close()`), as a real API server does.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from reconciler.kube import (
    DEPLOYMENTS,
    STATEFULSETS,
    AlreadyExists,
    ApiError,
    Conflict,
    Gone,
    ListResult,
    NotFound,
    PatchType,
    Resource,
    WatchEvent,
    error_from_status,
)

REQUIRED_PA_STATUS = ("serviceName", "metricsServiceName")
SCALABLE = {DEPLOYMENTS.plural, STATEFULSETS.plural}
Key = tuple[str, str, str]  # (resource "plural.group", namespace, name)


@dataclass
class Call:
    verb: str
    resource: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    body: Any = None


@dataclass
class _Failure:
    verb: str | None
    resource: str | None
    name: str | None
    subresource: str | None
    status: int
    reason: str
    times: int


@dataclass
class _Event:
    rv: int
    res: str
    namespace: str
    type: str
    obj: dict[str, Any] = field(repr=False)


def _res_key(res: Resource) -> str:
    return f"{res.plural}.{res.group}"


def _match_labels(obj: Mapping[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.strip().rstrip("=")) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class FakeKube:
    def __init__(self, *, blocking_watches: bool = False, history: int = 10_000) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._events: list[_Event] = []
        self._compacted_rv = 0  # watches from a version at or below this get 410
        self._rv = 100
        self._cond = threading.Condition()
        self._failures: list[_Failure] = []
        self._closed = False
        self.blocking_watches = blocking_watches
        self.history = history
        self.calls: list[Call] = []

    # -- test helpers --------------------------------------------------------------------

    def seed(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if a user had created it (not logged as a call)."""
        with self._cond:
            return self._create(res, obj)

    def obj(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._cond:
            o = self._objects.get((_res_key(res), namespace or "", name))
            return copy.deepcopy(o) if o else None

    def objects(self, res: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        rk = _res_key(res)
        with self._cond:
            return [
                copy.deepcopy(o)
                for (r, ns, _), o in sorted(self._objects.items())
                if r == rk and (namespace is None or ns == namespace)
            ]

    def set_status(
        self, res: Resource, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What another controller (KEDA, the Deployment controller, Knative) would write."""
        with self._cond:
            key = (_res_key(res), namespace, name)
            obj = copy.deepcopy(self._objects[key])
            obj["status"] = copy.deepcopy(dict(status))
            return self._store(res, key, obj, "MODIFIED")

    def delete(self, res: Resource, namespace: str, name: str) -> None:
        with self._cond:
            key = (_res_key(res), namespace, name)
            obj = self._objects.pop(key)
            self._bump(obj)
            self._log_event(res, namespace, "DELETED", obj)

    def fail_next(
        self,
        verb: str | None = None,
        res: Resource | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
        status: int = 500,
        reason: str = "",
        times: int = 1,
    ) -> None:
        """Make the next `times` matching calls fail with `status` (verb/res/name None = any)."""
        with self._cond:
            self._failures.append(
                _Failure(verb, _res_key(res) if res else None, name, subresource, status, reason, times)
            )

    def compact(self) -> None:
        """Forget history: watches from any version seen so far now get 410 Gone."""
        with self._cond:
            self._compacted_rv = self._rv
            self._events.clear()

    def writes(self, res: Resource | None = None, subresource: str | None = "*") -> list[Call]:
        out = [c for c in self.calls if c.verb in {"create", "replace", "patch"}]
        if res is not None:
            out = [c for c in out if c.resource == _res_key(res)]
        if subresource != "*":
            out = [c for c in out if c.subresource == subresource]
        return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- internals -----------------------------------------------------------------------

    def _check_failure(self, verb: str, res: Resource, name: str | None, subresource: str | None) -> None:
        for f in self._failures:
            if (
                (f.verb is None or f.verb == verb)
                and (f.resource is None or f.resource == _res_key(res))
                and (f.name is None or f.name == name)
                and (f.subresource is None or f.subresource == subresource)
            ):
                f.times -= 1
                if f.times <= 0:
                    self._failures.remove(f)
                body = {
                    "reason": f.reason,
                    "message": f"injected failure for {verb} {res}/{name}",
                    "code": f.status,
                }
                raise error_from_status(f.status, body)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)

    def _log_event(self, res: Resource, namespace: str, etype: str, obj: dict[str, Any]) -> None:
        self._events.append(_Event(self._rv, _res_key(res), namespace, etype, copy.deepcopy(obj)))
        if len(self._events) > self.history:
            dropped = self._events[: len(self._events) - self.history]
            self._compacted_rv = dropped[-1].rv
            del self._events[: len(dropped)]
        self._cond.notify_all()

    def _store(self, res: Resource, key: Key, obj: dict[str, Any], etype: str) -> dict[str, Any]:
        self._bump(obj)
        self._objects[key] = obj
        self._log_event(res, key[1], etype, obj)
        return copy.deepcopy(obj)

    def _create(self, res: Resource, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(dict(body))
        meta = obj.setdefault("metadata", {})
        ns = (meta.get("namespace") or namespace or "") if res.namespaced else ""
        if res.namespaced:
            meta["namespace"] = ns
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            meta["name"] = name
        if not name:
            raise error_from_status(422, {"reason": "Invalid", "message": "metadata.name is required"})
        key = (_res_key(res), ns, name)
        if key in self._objects:
            raise AlreadyExists(409, "AlreadyExists", f'{res} "{name}" already exists')
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        return self._store(res, key, obj, "ADDED")

    def _existing(self, res: Resource, namespace: str | None, name: str) -> tuple[Key, dict[str, Any]]:
        key = (_res_key(res), (namespace or "") if res.namespaced else "", name)
        obj = self._objects.get(key)
        if obj is None:
            raise NotFound(404, "NotFound", f'{res} "{name}" not found')
        return key, obj

    @staticmethod
    def _scale_of(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        selector = ",".join(
            f"{k}={v}" for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())
        )
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            # autoscaling/v1 ScaleSpec.replicas is omitempty: a Scale at zero has no replicas field.
            "spec": {"replicas": spec.get("replicas", 1)} if spec.get("replicas", 1) else {},
            "status": {"replicas": status.get("replicas", 0), "selector": selector},
        }

    def _write(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        new_sub: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        """Store `new_sub` (a whole object, a status view or a Scale) with subresource semantics."""
        key, cur = self._existing(res, namespace, name)
        want_rv = (new_sub.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != cur["metadata"]["resourceVersion"]:
            raise Conflict(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        obj = copy.deepcopy(cur)
        if subresource == "scale":
            if res.plural not in SCALABLE:
                raise NotFound(404, "NotFound", f"{res} has no scale subresource")
            replicas = (new_sub.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or replicas < 0:
                raise error_from_status(
                    422, {"reason": "Invalid", "message": f"spec.replicas: invalid {replicas!r}"}
                )
            obj.setdefault("spec", {})["replicas"] = replicas
            if replicas != (cur.get("spec") or {}).get("replicas"):
                obj["metadata"]["generation"] = int(cur["metadata"].get("generation", 1)) + 1
            self._store(res, key, obj, "MODIFIED")
            return self._scale_of(obj)
        if subresource == "status":
            status = new_sub.get("status")
            if res.plural == "podautoscalers":
                # As Knative's CRD schema (podautoscalers.autoscaling.internal.knative.dev)
                # does: both names are required in every status the API server stores.
                missing = [f for f in REQUIRED_PA_STATUS if f not in (status or {})]
                if missing:
                    raise error_from_status(
                        422,
                        {"reason": "Invalid", "message": f"status.{missing[0]}: Required value"},
                    )
            obj["status"] = copy.deepcopy(status)
            return self._store(res, key, obj, "MODIFIED")
        if subresource is not None:
            raise NotFound(404, "NotFound", f"unknown subresource {subresource}")
        meta = copy.deepcopy(new_sub.get("metadata") or {})
        for immutable in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if immutable in cur["metadata"]:
                meta[immutable] = cur["metadata"][immutable]
        obj = {**copy.deepcopy(new_sub), "metadata": meta}
        if "status" in cur:
            obj["status"] = copy.deepcopy(cur["status"])
        else:
            obj.pop("status", None)
        if obj.get("spec") != cur.get("spec"):
            meta["generation"] = int(cur["metadata"].get("generation", 1)) + 1
        return self._store(res, key, obj, "MODIFIED")

    def _view(self, res: Resource, obj: dict[str, Any], subresource: str | None) -> dict[str, Any]:
        if subresource == "scale":
            if res.plural not in SCALABLE:
                raise NotFound(404, "NotFound", f"{res} has no scale subresource")
            return self._scale_of(obj)
        return copy.deepcopy(obj)

    # -- KubeApi -------------------------------------------------------------------------

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None) -> ListResult:
        with self._cond:
            self.calls.append(Call("list", _res_key(res), namespace))
            self._check_failure("list", res, None, None)
            rk = _res_key(res)
            items = [
                copy.deepcopy(o)
                for (r, ns, _), o in sorted(self._objects.items())
                if r == rk and (namespace is None or ns == namespace) and _match_labels(o, label_selector)
            ]
            return ListResult(items, str(self._rv))

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
    ) -> Iterator[WatchEvent]:
        with self._cond:
            self.calls.append(Call("watch", _res_key(res), namespace, body=resource_version))
            self._check_failure("watch", res, None, None)
            start = int(resource_version or 0)
            if start < self._compacted_rv:
                raise Gone(410, "Expired", f"too old resource version: {start} ({self._compacted_rv})")
        return self._watch_events(res, namespace, start, timeout_seconds, label_selector)

    def _watch_events(
        self,
        res: Resource,
        namespace: str | None,
        start: int,
        timeout_seconds: int,
        label_selector: str | None,
    ) -> Iterator[WatchEvent]:
        rk = _res_key(res)
        seen = start
        deadline_waits = 0
        while True:
            with self._cond:
                if seen < self._compacted_rv:
                    raise Gone(410, "Expired", "history compacted during the watch")
                batch = [
                    e
                    for e in self._events
                    if e.rv > seen and e.res == rk and (namespace is None or e.namespace == namespace)
                ]
                if not batch:
                    if not self.blocking_watches or self._closed or deadline_waits:
                        return
                    deadline_waits += 1
                    self._cond.wait(timeout=min(timeout_seconds, 5))
                    continue
                seen = max(e.rv for e in self._events) if self._events else seen
            deadline_waits = 0
            for e in batch:
                if _match_labels(e.obj, label_selector):
                    yield WatchEvent(e.type, copy.deepcopy(e.obj))

    def get(
        self, res: Resource, namespace: str | None, name: str, *, subresource: str | None = None
    ) -> dict[str, Any]:
        with self._cond:
            self.calls.append(Call("get", _res_key(res), namespace, name, subresource))
            self._check_failure("get", res, name, subresource)
            _, obj = self._existing(res, namespace, name)
            return self._view(res, obj, subresource)

    def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._cond:
            name = (body.get("metadata") or {}).get("name")
            self.calls.append(Call("create", _res_key(res), namespace, name, None, copy.deepcopy(dict(body))))
            self._check_failure("create", res, name, None)
            return self._create(res, body, namespace)

    def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        with self._cond:
            self.calls.append(
                Call("replace", _res_key(res), namespace, name, subresource, copy.deepcopy(dict(body)))
            )
            self._check_failure("replace", res, name, subresource)
            return self._write(res, namespace, name, copy.deepcopy(dict(body)), subresource)

    def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "json",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        with self._cond:
            self.calls.append(
                Call("patch", _res_key(res), namespace, name, subresource, copy.deepcopy(patch))
            )
            self._check_failure("patch", res, name, subresource)
            _, cur = self._existing(res, namespace, name)
            view = self._view(res, cur, subresource)
            try:
                if patch_type == "json":
                    new = jsonpatch.apply_patch(view, patch)
                elif patch_type == "merge":
                    new = _merge_patch(view, patch)
                else:
                    raise ApiError(415, "UnsupportedMediaType", "the fake supports json and merge patches")
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise error_from_status(422, {"reason": "Invalid", "message": str(exc)}) from None
            # A patch applies to the latest version unless it carries its own resourceVersion test.
            new.setdefault("metadata", {})["resourceVersion"] = (new.get("metadata") or {}).get(
                "resourceVersion"
            ) or cur["metadata"]["resourceVersion"]
            return self._write(res, namespace, name, new, subresource)


# ---- object builders shared by the controller tests (and reusable by the e2e scenarios) -------

KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
CLASS_KEY = "autoscaling.knative.dev/class"


def workload(
    name: str,
    namespace: str = "default",
    *,
    kind: str = "Deployment",
    annotations: Mapping[str, str] | None = None,
    replicas: int | None = 1,
    labels: Mapping[str, str] | None = None,
    owner_references: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    app = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": app},
        "template": {
            "metadata": {"labels": app},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": dict(annotations or {})}
    if labels:
        meta["labels"] = dict(labels)
    if owner_references:
        meta["ownerReferences"] = owner_references
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def pod(
    name: str,
    app: str,
    namespace: str = "default",
    *,
    ready: bool = True,
    ip: str = "10.0.0.1",
    start_time: str = "2024-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "startTime": start_time,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod_autoscaler(
    name: str,
    namespace: str = "default",
    *,
    annotations: Mapping[str, str] | None = None,
    protocol: str = "http1",
    reachability: str | None = None,
) -> dict[str, Any]:
    ann = {CLASS_KEY: HPA, "autoscaling.knative.dev/metric": "cpu"}
    ann.update(annotations or {})
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
        "protocolType": protocol,
    }
    if reachability:
        spec["reachability"] = reachability
    return {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": ann,
            "labels": {"serving.knative.dev/revision": name},
        },
        "spec": spec,
    }


def hpa(name: str, namespace: str = "default", *, desired: int = 1, current: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
            "maxReplicas": 10,
        },
        "status": {"desiredReplicas": desired, "currentReplicas": current},
    }


def sks_ready_status(name: str) -> dict[str, Any]:
    """What Knative's SKS controller writes once the services exist."""
    return {
        "serviceName": name,
        "privateServiceName": f"{name}-private",
        "conditions": [{"type": "Ready", "status": "True"}],
    }


def build_controller(
    fake: FakeKube,
    clock: Any,
    *,
    sources: Any = None,
    dry_run: bool = False,
    lease: Any = None,
    out: Any = None,
    config: Any = None,
    identity: str = "test-replica",
    interval: float = 2.0,
) -> Any:
    """A Controller over the fake API with a fake clock; tests drive it step by step."""
    from reconciler.controller import Controller, ControllerOptions
    from reconciler.controller_kpa import MetricSources
    from translator.config.knscale import KnscaleConfig

    cfg = config or KnscaleConfig()
    options = ControllerOptions(dry_run=dry_run, lease=lease, identity=identity, interval=interval)
    return Controller(
        fake,
        options,
        config=lambda: cfg,
        sources=sources or MetricSources(),
        clock=clock,
        out=out or (lambda _line: None),
        elector_rand=lambda: 0.0,
    )
