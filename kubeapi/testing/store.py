"""The fake API's state: objects, resourceVersions, the event history and write semantics.

`FakeKube` (fake.py) puts the `KubeApi` verbs and the test helpers on top of this.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kubeapi.errors import AlreadyExists, ApiError, Conflict, NotFound, error_from_status
from kubeapi.resources import Resource
from kubeapi.testing.model import (
    REQUIRED_PA_STATUS,
    SCALABLE,
    Call,
    Event,
    Failure,
    Key,
    res_key,
    scale_of,
)


class FakeStore:
    def __init__(self, *, blocking_watches: bool = False, history: int = 10_000) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._events: list[Event] = []
        self._compacted_rv = 0  # watches from a version at or below this get 410
        self._rv = 100
        self._cond = threading.Condition()
        self._failures: list[Failure] = []
        self._closed = False
        self.blocking_watches = blocking_watches
        self.history = history
        self.calls: list[Call] = []
        # Run (and consumed) before the next write, to simulate another client acting in between.
        self.before_write: list[Callable[[Any], None]] = []

    # -- internals -----------------------------------------------------------------------

    def _before_write(self) -> None:
        while self.before_write:
            self.before_write.pop(0)(self)

    @contextmanager
    def _logged(self, call: Call) -> Iterator[None]:
        """Log `call`; if it fails, record the status it failed with (tests count real writes)."""
        self.calls.append(call)
        try:
            yield
        except ApiError as exc:
            call.error = exc.status
            raise

    def _check_failure(self, verb: str, res: Resource, name: str | None, subresource: str | None) -> None:
        for f in self._failures:
            if (
                (f.verb is None or f.verb == verb)
                and (f.resource is None or f.resource == res_key(res))
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
        self._events.append(Event(self._rv, res_key(res), namespace, etype, copy.deepcopy(obj)))
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
        key = (res_key(res), ns, name)
        if key in self._objects:
            raise AlreadyExists(409, "AlreadyExists", f'{res} "{name}" already exists')
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        return self._store(res, key, obj, "ADDED")

    def _existing(self, res: Resource, namespace: str | None, name: str) -> tuple[Key, dict[str, Any]]:
        key = (res_key(res), (namespace or "") if res.namespaced else "", name)
        obj = self._objects.get(key)
        if obj is None:
            raise NotFound(404, "NotFound", f'{res} "{name}" not found')
        return key, obj

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
            return scale_of(obj)
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
            return scale_of(obj)
        return copy.deepcopy(obj)
