"""An in-memory Kubernetes API implementing `kubeapi.client.KubeApi`: the one fake of every test.

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
from collections.abc import Iterator, Mapping
from typing import Any

import jsonpatch

from kubeapi.client import ListResult, PatchType, WatchEvent
from kubeapi.errors import ApiError, Gone, error_from_status
from kubeapi.resources import Resource
from kubeapi.testing.model import Call, Failure, match_labels, merge_patch, res_key
from kubeapi.testing.store import FakeStore


class FakeKube(FakeStore):
    # -- test helpers --------------------------------------------------------------------

    def seed(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if a user had created it (not logged as a call)."""
        with self._cond:
            return self._create(res, obj)

    def obj(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._cond:
            o = self._objects.get((res_key(res), namespace or "", name))
            return copy.deepcopy(o) if o else None

    def objects(self, res: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        rk = res_key(res)
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
            key = (res_key(res), namespace, name)
            obj = copy.deepcopy(self._objects[key])
            obj["status"] = copy.deepcopy(dict(status))
            return self._store(res, key, obj, "MODIFIED")

    def put(self, res: Resource, obj: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Store `obj` as another client would have, creating or overwriting it (not logged).

        An overwrite takes the object as given (a stale copy re-applied by someone, a field
        edited by hand), with a new resourceVersion.
        """
        with self._cond:
            meta = obj.get("metadata") or {}
            ns = (meta.get("namespace") or namespace or "") if res.namespaced else ""
            key = (res_key(res), ns, str(meta.get("name")))
            if key not in self._objects:
                return self._create(res, obj, namespace)
            return self._store(res, key, copy.deepcopy(dict(obj)), "MODIFIED")

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
                Failure(verb, res_key(res) if res else None, name, subresource, status, reason, times)
            )

    def clear_failures(self) -> None:
        """Forget every failure `fail_next` armed and that has not fired yet."""
        with self._cond:
            self._failures.clear()

    def compact(self) -> None:
        """Forget history: watches from any version seen so far now get 410 Gone."""
        with self._cond:
            self._compacted_rv = self._rv
            self._events.clear()

    def writes(self, res: Resource | None = None, subresource: str | None = "*") -> list[Call]:
        out = [c for c in self.calls if c.verb in {"create", "replace", "patch"}]
        if res is not None:
            out = [c for c in out if c.resource == res_key(res)]
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

    # -- KubeApi -------------------------------------------------------------------------

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None) -> ListResult:
        with self._cond:
            self.calls.append(Call("list", res_key(res), namespace))
            self._check_failure("list", res, None, None)
            rk = res_key(res)
            items = [
                copy.deepcopy(o)
                for (r, ns, _), o in sorted(self._objects.items())
                if r == rk and (namespace is None or ns == namespace) and match_labels(o, label_selector)
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
            self.calls.append(Call("watch", res_key(res), namespace, body=resource_version))
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
        rk = res_key(res)
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
                if match_labels(e.obj, label_selector):
                    yield WatchEvent(e.type, copy.deepcopy(e.obj))

    def get(
        self, res: Resource, namespace: str | None, name: str, *, subresource: str | None = None
    ) -> dict[str, Any]:
        with self._cond:
            self.calls.append(Call("get", res_key(res), namespace, name, subresource))
            self._check_failure("get", res, name, subresource)
            _, obj = self._existing(res, namespace, name)
            return self._view(res, obj, subresource)

    def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._cond:
            self._before_write()
            name = (body.get("metadata") or {}).get("name")
            with self._logged(Call("create", res_key(res), namespace, name, None, copy.deepcopy(dict(body)))):
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
            self._before_write()
            call = Call("replace", res_key(res), namespace, name, subresource, copy.deepcopy(dict(body)))
            with self._logged(call):
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
            self._before_write()
            with self._logged(
                Call("patch", res_key(res), namespace, name, subresource, copy.deepcopy(patch))
            ):
                return self._patch(res, namespace, name, patch, patch_type, subresource)

    def _patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: PatchType,
        subresource: str | None,
    ) -> dict[str, Any]:
        with self._cond:
            self._check_failure("patch", res, name, subresource)
            _, cur = self._existing(res, namespace, name)
            view = self._view(res, cur, subresource)
            try:
                if patch_type == "json":
                    new = jsonpatch.apply_patch(view, patch)
                elif patch_type == "merge":
                    new = merge_patch(view, patch)
                else:
                    raise ApiError(415, "UnsupportedMediaType", "the fake supports json and merge patches")
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise error_from_status(422, {"reason": "Invalid", "message": str(exc)}) from None
            # A patch applies to the latest version unless it carries its own resourceVersion test.
            new.setdefault("metadata", {})["resourceVersion"] = (new.get("metadata") or {}).get(
                "resourceVersion"
            ) or cur["metadata"]["resourceVersion"]
            return self._write(res, namespace, name, new, subresource)

    def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        """Also what tests call to play another client deleting an object: logged, not failed."""
        with self._cond:
            self._before_write()
            self.calls.append(Call("delete", res_key(res), namespace, name))
            key = (res_key(res), (namespace or "") if res.namespaced else "", name)
            obj = self._objects.pop(key, None)
            if obj is None:
                return False
            self._bump(obj)
            self._log_event(res, key[1], "DELETED", obj)
            return True
