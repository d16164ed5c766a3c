"""Replies remembered per request body: the pods of one ReplicaSet are admitted identically.

Every pod a ReplicaSet (or a Knative revision's Deployment) creates reaches the webhook as the
same bytes except the AdmissionReview's `request.uid`: same template, same generateName, same
owner reference, same service account in userInfo. Admission decisions are pure functions of
(body, configuration), so the reply to such a pod is the previous reply with the uid swapped.
Scaling a model Deployment from 1 to 50 pods then parses 50 reviews but plans once.

Exactness rules (a hit must give the bytes a miss would have given):

* the key is the body with the value of its first `"uid": "…"` removed. A reply is stored only
  when that value is the request's uid (checked against the parsed review), occurs nowhere else
  in the body, and occurs exactly once in the reply (so nothing else can depend on it);
* so a body with the same key is the stored body with another string in the request uid's
  place: the same review for another uid. It is answered without being parsed, which is why the
  value must be plain printable ASCII without quote or backslash (then it is valid JSON, means itself,
  and is spelled the same in the reply);
* the one name the API server makes up per pod before any webhook runs -- the ServiceAccount
  admission plugin's projected token volume `kube-api-access-<5 random characters>`, named in
  `volumes` and in each container's `volumeMounts` -- is replaced in the key by a fixed
  placeholder (only when the body has one such name). A decision depends on that name only by
  comparing it with other names in the same pod, so a renamed copy gets the same decision; a
  reply that mentions it (e.g. a denial naming the volume) is never stored;
* the configuration is part of the key by identity (a reload starts afresh), and so is the
  handler (each endpoint its own entries);
* only decisions are cached (allowed, patched, denied), never internal errors;
* bounded in entries and in bytes; the least recently used entry goes first.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson

CACHEABLE_OUTCOMES = frozenset({"allowed", "patched", "denied"})
# The first `"uid": "` (JSON allows whitespace around the colon; the API server sends none).
_UID_FIELD = re.compile(rb'"uid"[ \t\r\n]*:[ \t\r\n]*"')
# ServiceAccount admission: "kube-api-access-" + utilrand.String(5).
_TOKEN_VOLUME = re.compile(rb'kube-api-access-[a-z0-9]{5}(?=")')
_TOKEN_VOLUME_PREFIX = b"kube-api-access-"
_TOKEN_VOLUME_PLACEHOLDER = b"kube-api-access-?????"
_TOKEN_VOLUME_LENGTH = len(_TOKEN_VOLUME_PLACEHOLDER)
_MAX_UID_BYTES = 128  # Kubernetes sends a UUID (36 bytes)
# Printable ASCII but quote and backslash: such a string needs no escape, so the body, orjson and
# the reply all spell it the same.
_PLAIN_UID = re.compile(rb"[ !#-\[\]-~]+")


@dataclass(frozen=True, slots=True)
class CachedReply:
    body: bytes  # the reply as sent, with the uid of the request that made it
    uid_json: bytes  # that uid as a JSON string literal, e.g. b'"705ab4f5-..."'
    outcome: str


class DecisionCache:
    """LRU of replies keyed by (handler, body without its uid), for one configuration at a time."""

    def __init__(self, *, max_entries: int = 1024, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[object, bytes], CachedReply] = OrderedDict()
        self._bytes = 0
        self._config: object | None = None
        # Uvicorn serves from one event loop thread; the lock only makes a second loop (tests,
        # or a future threaded server) safe, and is uncontended otherwise.
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @staticmethod
    def key(body: bytes) -> tuple[bytes, bytes] | None:
        """(body without its first uid value and with the token volume's name made fixed, that
        uid value as a JSON string), or None.

        Found by byte search, not by parsing: this is what lets a hit skip the parse. Whether the
        value is the request's uid is checked before anything is stored (`put`).
        """
        found = _UID_FIELD.search(body)
        if found is None:
            return None
        start = found.end()
        end = body.find(b'"', start)
        if end <= start or end - start > _MAX_UID_BYTES:
            return None
        uid = body[start:end]
        if not _PLAIN_UID.fullmatch(uid):
            return None
        stripped = body[:start] + body[end:]
        at = stripped.find(_TOKEN_VOLUME_PREFIX)
        if at >= 0:
            if _TOKEN_VOLUME.match(stripped, at) is None:
                return None
            name = stripped[at : at + _TOKEN_VOLUME_LENGTH]
            # Every occurrence must be this one name (which also rules out the placeholder).
            if stripped.count(_TOKEN_VOLUME_PREFIX) != stripped.count(name):
                return None
            stripped = stripped.replace(name, _TOKEN_VOLUME_PLACEHOLDER)
        return stripped, b'"' + uid + b'"'

    def get(
        self, config: object, handler: Callable[..., object], stripped: bytes, uid_json: bytes
    ) -> CachedReply | None:
        with self._lock:
            if config is not self._config:
                return None
            entry = self._entries.get((handler, stripped))
            if entry is None:
                return None
            self._entries.move_to_end((handler, stripped))
        if entry.uid_json == uid_json:
            return entry
        return CachedReply(entry.body.replace(entry.uid_json, uid_json, 1), uid_json, entry.outcome)

    def put(
        self,
        config: object,
        handler: Callable[..., object],
        key: tuple[bytes, bytes],
        request_uid: str,
        reply: bytes,
        outcome: str,
    ) -> bool:
        """Remember `reply` under `key` (`DecisionCache.key` of the body whose parsed request.uid is
        `request_uid`); False when it may not be cached (see the module's rules)."""
        if outcome not in CACHEABLE_OUTCOMES:
            return False
        stripped, uid_json = key
        if (
            uid_json != orjson.dumps(request_uid)
            or uid_json in stripped  # the uid also appears elsewhere in the body
            or reply.count(uid_json) != 1
            or _TOKEN_VOLUME_PREFIX in reply
        ):
            return False
        size = len(stripped) + len(reply)
        if size > self.max_bytes // 8:
            return False  # one huge review must not flush everything else
        with self._lock:
            if config is not self._config:
                self._entries.clear()
                self._bytes = 0
                self._config = config
            old = self._entries.pop((handler, stripped), None)
            if old is not None:
                self._bytes -= len(stripped) + len(old.body)
            self._entries[(handler, stripped)] = CachedReply(reply, uid_json, outcome)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                (_, old_stripped), evicted = self._entries.popitem(last=False)
                self._bytes -= len(old_stripped) + len(evicted.body)
        return True
