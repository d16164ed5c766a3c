"""Kubernetes Events about the objects the reconciler acts on (core/v1 Events).

Events are best effort: a failure is logged and counted, never raised. Repeats of the same
event (same object, type, reason and message) are folded into one Event whose `count` and
`lastTimestamp` are patched — at most once per `min_interval` — instead of one new object
per tick, which is what `kubectl describe` readers and etcd both want.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kubeapi.client import KubeApi
from kubeapi.errors import ApiError, NotFound
from kubeapi.resources import EVENTS
from reconciler.runtime.clock import Clock, rfc3339

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
COMPONENT = "knscale-reconciler"
_MAX_MESSAGE = 1024


class Recorder(Protocol):
    def event(self, obj: Mapping[str, Any], etype: EventType, reason: str, message: str) -> None: ...


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first: float
    last_sent: float


class EventRecorder:
    def __init__(
        self,
        api: KubeApi,
        clock: Clock,
        *,
        instance: str,
        min_interval: float = 60.0,
        max_tracked: int = 10_000,
        on_error: Callable[[str, ApiError], None] | None = None,
    ) -> None:
        self._api = api
        self._clock = clock
        self._instance = instance
        self._min_interval = min_interval
        self._max_tracked = max_tracked
        self._on_error = on_error
        self._seen: dict[tuple[str, str, str, str], _Seen] = {}

    def event(self, obj: Mapping[str, Any], etype: EventType, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        message = message[:_MAX_MESSAGE]
        ident = (str(meta.get("uid") or f"{namespace}/{meta.get('name')}"), etype, reason, message)
        now = self._clock.now()
        seen = self._seen.get(ident)
        log.log(
            logging.WARNING if etype == "Warning" else logging.INFO,
            "%s %s %s/%s: %s: %s",
            etype,
            obj.get("kind"),
            namespace,
            meta.get("name"),
            reason,
            message,
        )
        try:
            if seen is not None:
                seen.count += 1
                if now - seen.last_sent < self._min_interval:
                    return
                try:
                    self._api.patch(
                        EVENTS,
                        seen.namespace,
                        seen.name,
                        {"count": seen.count, "lastTimestamp": rfc3339(now)},
                        patch_type="merge",
                    )
                    seen.last_sent = now
                    return
                except NotFound:
                    del self._seen[ident]  # expired (events live ~1 h); start a new one
            name = f"{meta.get('name')}.{secrets.token_hex(8)}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta.get("name"),
                    "namespace": namespace,
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "type": etype,
                "reason": reason,
                "message": message,
                "count": 1,
                "firstTimestamp": rfc3339(now),
                "lastTimestamp": rfc3339(now),
                "source": {"component": COMPONENT},
                "reportingComponent": f"knscale.dev/{COMPONENT}",
                "reportingInstance": self._instance,
            }
            self._api.create(EVENTS, namespace, body)
            if len(self._seen) >= self._max_tracked:
                self._seen.pop(next(iter(self._seen)))
            self._seen[ident] = _Seen(name, namespace, 1, now, now)
        except ApiError as exc:
            log.warning("could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), exc)
            if self._on_error:
                self._on_error("event", exc)


class PrintingRecorder:
    """Dry run: events are printed, not written."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self._out = out

    def event(self, obj: Mapping[str, Any], etype: EventType, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        self._out(
            f"event {etype} {obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}: {reason}: {message}"
        )
