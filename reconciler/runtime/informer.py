"""Informer-style caches: list once, then watch from the list's resourceVersion.

One `Informer` per resource keeps a local copy of every object, tells a handler what
changed, and re-delivers every cached object each `resync_period` (so a missed or failed
reconcile is retried even when nothing changes). API errors back off exponentially with
jitter; a 410 Gone (the version we watch from was compacted away) triggers a fresh list,
and the handler sees the difference between the old and the new cache as ADDED/MODIFIED/
DELETED, so no object is lost across a relist.

`transform` trims objects before they are cached — pods keep only what ready counts and
metric scraping need — so memory stays proportional to what the controller uses.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import ApiError, Gone, NotFound
from kubeapi.resources import Resource
from reconciler.runtime.clock import Clock

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]  # (ADDED|MODIFIED|DELETED|SYNC, object)
Transform = Callable[[dict[str, Any]], dict[str, Any]]
ObjKey = tuple[str, str]  # (namespace, name)


@dataclass
class Backoff:
    """Exponential backoff with jitter: base, ×factor per failure, capped; reset on success."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    failures: int = 0

    def next_delay(self, rand: Callable[[], float] = random.random) -> float:
        delay = min(self.cap, self.base * self.factor**self.failures)
        self.failures += 1
        return delay * (1 + self.jitter * rand())

    def reset(self) -> None:
        self.failures = 0


def key_of(obj: dict[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Informer:
    def __init__(
        self,
        api: KubeApi,
        res: Resource,
        namespace: str | None,
        clock: Clock,
        *,
        handler: Handler | None = None,
        transform: Transform | None = None,
        label_selector: str | None = None,
        watch_timeout: int = 300,
        resync_period: float = 300.0,
        on_error: Callable[[Resource, str, ApiError], None] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.res = res
        self._api = api
        self._ns = namespace
        self._clock = clock
        self._handler = handler
        self._transform = transform
        self._selector = label_selector
        self._watch_timeout = watch_timeout
        self._resync_period = resync_period
        self._on_error = on_error
        self._rand = rand
        self._lock = threading.Lock()
        self._store: dict[ObjKey, dict[str, Any]] = {}
        self._rv = ""
        self._synced = threading.Event()
        self._last_resync = 0.0
        self.backoff = Backoff()
        self.relists = 0
        self.absent_recheck = 60.0
        self.absent = False  # the API itself is not served (a CRD that is not installed)

    # -- reading the cache --

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._store.get((namespace or "", name))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._store.values())

    def has_synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str:
        return self._rv

    # -- keeping it current --

    def _emit(self, etype: str, obj: dict[str, Any]) -> None:
        if self._handler is None:
            return
        try:
            self._handler(etype, obj)
        except Exception:  # a handler bug must not kill the informer
            log.exception("handler for %s failed on %s %s", self.res, etype, key_of(obj))

    def _prepare(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("apiVersion", self.res.api_version)
        obj.setdefault("kind", self.res.kind)
        return self._transform(obj) if self._transform else obj

    def relist(self) -> None:
        """Replace the cache with a fresh list; tell the handler what changed."""
        result = self._api.list(self.res, self._ns, label_selector=self._selector)
        if self.absent:
            log.info("%s is served now", self.res)
            self.absent = False
        fresh = {key_of(o): self._prepare(o) for o in result.items}
        with self._lock:
            old = self._store
            self._store = fresh
            self._rv = result.resource_version
        self.relists += 1
        for k, obj in fresh.items():
            prev = old.get(k)
            if prev is None:
                self._emit("ADDED", obj)
            elif _rv_of(prev) != _rv_of(obj):
                self._emit("MODIFIED", obj)
        for k, obj in old.items():
            if k not in fresh:
                self._emit("DELETED", obj)
        self._synced.set()
        self._last_resync = self._clock.monotonic()

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        """Apply one watch event to the cache and pass it on."""
        rv = _rv_of(obj)
        if etype == "BOOKMARK":
            if rv:
                self._rv = rv
            return
        obj = self._prepare(obj)
        k = key_of(obj)
        with self._lock:
            if etype == "DELETED":
                self._store.pop(k, None)
            else:
                self._store[k] = obj
            if rv:
                self._rv = rv
        self._emit(etype, obj)

    def watch_once(self) -> None:
        """One watch from the current version until the server ends it. Raises ApiError."""
        events = self._api.watch(
            self.res,
            self._ns,
            resource_version=self._rv,
            timeout_seconds=self._watch_timeout,
            label_selector=self._selector,
        )
        for event in events:
            self.apply(event.type, event.object)

    def resync_due(self) -> bool:
        return self._clock.monotonic() - self._last_resync >= self._resync_period

    def resync(self) -> None:
        """Re-deliver every cached object (client-go's periodic resync)."""
        self._last_resync = self._clock.monotonic()
        for obj in self.items():
            self._emit("SYNC", obj)

    def step(self) -> float:
        """One unit of work: list if needed, else watch. Returns how long to wait before the next."""
        try:
            if not self._synced.is_set() or not self._rv:
                self.relist()
            else:
                self.watch_once()
                if self.resync_due():
                    self.resync()
        except Gone:
            log.info("%s: watch version %s expired (410); relisting", self.res, self._rv)
            self._rv = ""
            return 0.0
        except NotFound as exc:
            # The collection itself is not served: its CRD (KEDA's, Knative's) is not installed.
            # That is a valid cluster — the features that need it stay idle — so count as synced
            # and empty, and look again now and then.
            if not self.absent:
                log.warning(
                    "%s is not served by this cluster (%s); checking again every %.0fs",
                    self.res,
                    exc.message,
                    self.absent_recheck,
                )
            self.absent = True
            self._rv = ""
            with self._lock:
                dropped = list(self._store.values())
                self._store = {}
            for obj in dropped:
                self._emit("DELETED", obj)
            self._synced.set()
            return self.absent_recheck
        except ApiError as exc:
            if self._on_error:
                self._on_error(self.res, "watch" if self._rv else "list", exc)
            delay = exc.retry_after if exc.retry_after else self.backoff.next_delay(self._rand)
            log.warning("%s: %s; retrying in %.1fs", self.res, exc, delay)
            return delay
        self.backoff.reset()
        return 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self.step()
            if delay and self._clock.wait(delay, stop):
                return


def _rv_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """What the controller reads of a pod: identity, labels, owner, readiness, address, start."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ready_cond = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready" and c.get("status") == "True"),
        None,
    )
    ready = ready_cond is not None
    ready_since = (
        {"lastTransitionTime": ready_cond["lastTransitionTime"]}
        if ready_cond and ready_cond.get("lastTransitionTime")
        else {}
    )
    return {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": "Pod",
        "metadata": {
            k: meta[k]
            for k in (
                "name",
                "namespace",
                "uid",
                "labels",
                "resourceVersion",
                "deletionTimestamp",
                "ownerReferences",
                "creationTimestamp",
            )
            if k in meta
        },
        "status": {
            "phase": status.get("phase"),
            "podIP": status.get("podIP"),
            "startTime": status.get("startTime"),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", **ready_since}],
            # what the cold-start measurement reads (reconciler/scaling/pods.py: pod_start)
            **{
                key: [_slim_container(c) for c in status[key] if isinstance(c, dict)]
                for key in ("initContainerStatuses", "containerStatuses")
                if isinstance(status.get(key), list)
            },
        },
    }


def _slim_container(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.get("name"), "restartCount": c.get("restartCount") or 0}
    done = (c.get("state") or {}).get("terminated")
    if isinstance(done, dict):
        out["state"] = {"terminated": {k: done.get(k) for k in ("startedAt", "finishedAt")}}
    return out
