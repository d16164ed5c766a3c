"""Every write of the controller goes through here: `GuardedWriter` (ownership fencing per
target, dry run, events) over `InstrumentedApi` (per-verb request and error counts)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubeapi.client import KubeApi, ListResult, PatchType, WatchEvent
from kubeapi.errors import ApiError
from kubeapi.resources import Resource
from reconciler.runtime.exporter import ReconcilerMetrics
from reconciler.runtime.ports import Fenced


class InstrumentedApi:
    """A `KubeApi` that counts every failed call in `knscale_reconciler_api_errors_total`."""

    def __init__(self, api: KubeApi, metrics: ReconcilerMetrics) -> None:
        self._api = api
        self._metrics = metrics

    @contextlib.contextmanager
    def _counted(self, verb: str, res: Resource, *, uncounted: int | None = None) -> Iterator[None]:
        """Count an `ApiError` raised inside (except one of status `uncounted`) and re-raise it."""
        try:
            yield
        except ApiError as exc:
            if exc.status != uncounted:
                self._metrics.api_errors.labels(verb, str(res), str(exc.status)).inc()
            raise

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None) -> ListResult:
        with self._counted("list", res):
            return self._api.list(res, namespace, label_selector=label_selector)

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
    ) -> Iterator[WatchEvent]:
        with self._counted("watch", res):
            events = self._api.watch(
                res,
                namespace,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                label_selector=label_selector,
            )
        return self._counted_events(res, events)

    def _counted_events(self, res: Resource, events: Iterator[WatchEvent]) -> Iterator[WatchEvent]:
        with self._counted("watch", res):
            yield from events

    def get(
        self, res: Resource, namespace: str | None, name: str, *, subresource: str | None = None
    ) -> dict[str, Any]:
        with self._counted("get", res, uncounted=404):  # a miss is an answer, not an error
            return self._api.get(res, namespace, name, subresource=subresource)

    def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._counted("create", res):
            return self._api.create(res, namespace, body)

    def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        with self._counted("replace", res):
            return self._api.replace(res, namespace, name, body, subresource=subresource)

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
        with self._counted("patch", res):
            return self._api.patch(
                res, namespace, name, patch, patch_type=patch_type, subresource=subresource
            )

    def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        with self._counted("delete", res):
            return self._api.delete(res, namespace, name)

    def close(self) -> None:
        self._api.close()


def _describe(res: Resource, namespace: str, name: str, subresource: str | None) -> str:
    target = f"{res.kind} {namespace}/{name}"
    return f"{target}/{subresource}" if subresource else target


class GuardedWriter:
    """Every write passes here: refused unless this replica owns the written object's target
    (`can_write(namespace, name)`; every object knscale writes is named after its target), printed
    instead in dry-run mode."""

    def __init__(
        self,
        api: KubeApi,
        metrics: ReconcilerMetrics,
        *,
        can_write: Callable[[str, str], bool],
        dry_run: bool = False,
        out: Callable[[str], None] = print,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._can_write = can_write
        self._dry_run = dry_run
        self._out = out

    def _gate(self, op: str, res: Resource, namespace: str, name: str, sub: str | None, why: str) -> bool:
        what = f"{op} {_describe(res, namespace, name, sub)}"
        if self._dry_run:
            self._out(f"dry-run: would {what} ({why})")
            return False
        if not self._can_write(namespace, name):
            raise Fenced(f"not the owner of {namespace}/{name}'s bucket: refusing to {what}")
        return True

    def create(
        self, res: Resource, namespace: str, body: Mapping[str, Any], *, why: str
    ) -> dict[str, Any] | None:
        name = str((body.get("metadata") or {}).get("name"))
        if not self._gate("create", res, namespace, name, None, why):
            return None
        out = self._api.create(res, namespace, body)
        self._metrics.writes.labels(str(res), "create").inc()
        return out

    def replace(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
        why: str,
    ) -> dict[str, Any] | None:
        if not self._gate("update", res, namespace, name, subresource, why):
            return None
        out = self._api.replace(res, namespace, name, body, subresource=subresource)
        self._metrics.writes.labels(str(res), f"update{'/' + subresource if subresource else ''}").inc()
        return out

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "json",
        subresource: str | None = None,
        why: str,
    ) -> dict[str, Any] | None:
        if not self._gate("patch", res, namespace, name, subresource, why):
            return None
        out = self._api.patch(res, namespace, name, patch, patch_type=patch_type, subresource=subresource)
        self._metrics.writes.labels(str(res), f"patch{'/' + subresource if subresource else ''}").inc()
        return out


def scale_patch(current: int | None, replicas: int) -> list[dict[str, Any]]:
    """The JSON patch of a scale subresource's ``spec.replicas`` (docs/reconciler.md): a ``test`` of
    the value decided on, then ``replace`` — or, from zero, a bare ``add``: an autoscaling/v1
    Scale at zero has no ``replicas`` field (omitempty) to test or replace."""
    if current:
        return [
            {"op": "test", "path": "/spec/replicas", "value": current},
            {"op": "replace", "path": "/spec/replicas", "value": replicas},
        ]
    return [{"op": "add", "path": "/spec/replicas", "value": replicas}]
