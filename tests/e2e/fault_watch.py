"""What scenario 9 observes and scripts besides the fault proxy (tests/e2e/faultproxy.py).

- ``WatchLog``: list + watch of one resource in one namespace straight to the apiserver (never
  through the proxy), recording every stored version the API server announced: the API server's
  view of every write, independent of what the reconciler logs.
- ``ScriptedStatServer``: a fake queue-proxy (knscale_procs.StatServer) whose answer the test
  switches between a good Stat, undecodable bytes, a Stat with an impossible value, and a hang.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from knscale_procs import StatServer

from kubeapi.client import KubernetesApi
from kubeapi.errors import ApiError, Gone
from kubeapi.resources import Resource
from reconciler.metrics.stat_pb import encode_stat


@dataclass(frozen=True)
class Seen:
    at: float  # monotonic
    type: str  # ADDED, MODIFIED, DELETED (a list counts as ADDED for objects not seen before)
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])


class WatchLog:
    def __init__(self, api: KubernetesApi, res: Resource, namespace: str) -> None:
        self._api = api
        self._res = res
        self._ns = namespace
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self._versions: dict[str, str] = {}  # uid → last resourceVersion recorded
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watchlog-{res.plural}", daemon=True)

    def __enter__(self) -> WatchLog:
        self._thread.start()
        if not self._synced.wait(30):
            raise RuntimeError(f"WatchLog for {self._res} did not list")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _record(self, etype: str, obj: dict[str, Any]) -> None:
        md = obj.get("metadata") or {}
        uid, rv = str(md.get("uid")), str(md.get("resourceVersion"))
        with self._lock:
            if etype != "DELETED" and self._versions.get(uid) == rv:
                return  # a relist or re-watch repeating a version already recorded
            if etype == "ADDED" and uid in self._versions:
                etype = "MODIFIED"
            self._versions[uid] = rv
            self.seen.append(Seen(time.monotonic(), etype, obj))

    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    listed = self._api.list(self._res, self._ns)
                    for item in listed.items:
                        self._record("ADDED", item)
                    rv = listed.resource_version
                    self._synced.set()
                for event in self._api.watch(self._res, self._ns, resource_version=rv, timeout_seconds=5):
                    new_rv = (event.object.get("metadata") or {}).get("resourceVersion")
                    if event.type != "BOOKMARK":
                        self._record(event.type, event.object)
                    if new_rv:
                        rv = str(new_rv)
            except Gone:
                rv = ""
            except ApiError:
                time.sleep(0.5)

    def events(self, name: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if name is None or s.name == name]


def _quiet(*_args: object) -> None:
    return


class ScriptedStatServer(StatServer):
    """`mode`: "ok" (a Stat of `concurrency`), "junk" (bytes that are no protobuf Stat),
    "impossible" (a Stat whose concurrency is negative), "hang" (answers after `hang_s`)."""

    mode = "ok"
    hang_s = 5.0

    def __init__(self, pod_name: str) -> None:
        super().__init__(pod_name)
        # A hung answer's client has given up by the time it is written: not worth a traceback.
        setattr(self.httpd, "handle_error", _quiet)  # noqa: B010 (an instance attribute, on purpose)

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        if self.mode == "junk":
            return 200, "application/protobuf", b"\xff\xff\xff\xff garbage, not a Stat \x00\x07"
        if self.mode == "impossible":
            body = encode_stat(pod_name=self.pod_name, average_concurrent_requests=-1e9, request_count=0.0)
            return 200, "application/protobuf", body
        if self.mode == "hang":
            time.sleep(self.hang_s)
        return super()._answer(path)
