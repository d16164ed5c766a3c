"""Replies remembered per request body: the pods of one ReplicaSet are admitted identically.

Every pod a ReplicaSet (or a Knative revision's Deployment) creates reaches the webhook as the
same bytes except the AdmissionReview's `request.uid`: same template, same generateName, same
owner reference, same service account in userInfo. Admission decisions are pure functions of
(body, configuration), so the reply to such a pod is the previous reply with the uid swapped.
Scaling a model Deployment from 1 to 50 pods then parses 50 reviews but plans once.

Exactness rules (a hit must give the bytes a miss would have given):

* the key is the body with the value of its first `"uid": "…"` removed. That value must be plain
  printable ASCII without quote or backslash: a single JSON string token that means itself and is
  spelled the same in the reply. A reply is stored only when the value equals the parsed
  request.uid, occurs nowhere else in the body, and once in the reply;
* so a body with the same key is the stored body with another plain string in that place. Before
  an entry answers its first hit, that body is parsed once to check that the string in that place
  is its request.uid (an escaped or duplicated `uid` key could make an earlier `uid` field the
  first one found); the check is about the shape both bodies share, so it holds for every later
  hit, which is answered without parsing;
* the one name the API server makes up per pod before any webhook runs -- the ServiceAccount
  admission plugin's projected token volume `kube-api-access-<5 random characters>` -- is replaced
  in the key by a fixed placeholder, only when every occurrence of `kube-api-access-` in the body
  is that one name as the value of a `"name"` field (a volume's or a mount's). The decision uses
  such names only to compare them with other names, and those are renamed alike -- unless a
  configured string could be one (say `injection.skip_containers` lists a `kube-api-access-…`
  name: `key_for` then keeps every name) or the body spells a character of one with a JSON
  unicode escape, which the byte search cannot see but the parse decodes (then the reply is not
  stored). A reply in which the name appears (in its text or in its decoded patch) is never
  stored;
* the configuration is part of the key by identity (a reload starts afresh), and so is the
  handler (each endpoint its own entries);
* only decisions are cached (allowed, patched, denied), never internal errors;
* bounded in entries and in bytes; the least recently used entry goes first.
"""

from __future__ import annotations

import base64
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
_TOKEN_VOLUME_FIELDS = (b'"name":"', b'"name": "')  # compact (the API server) or spaced
_PATCH_FIELD = re.compile(rb'"patch":"([A-Za-z0-9+/=]*)"')
_TOKEN_VOLUME_PLACEHOLDER = b"kube-api-access-?????"
# A \u escape of a printable ASCII character from "-" on (digits, letters): it could spell part of
# a token volume name in a value the decision compares with one. (Not the escapes of <, > and &,
# which the API server's encoder writes for HTML safety.)
_ESCAPED_NAME_CHARACTER = re.compile(rb"\\u00(?:2[dD]|3[0-9]|[4-7][0-9a-fA-F])")
_TOKEN_VOLUME_LENGTH = len(_TOKEN_VOLUME_PLACEHOLDER)
_MAX_UID_BYTES = 128  # Kubernetes sends a UUID (36 bytes)
# Printable ASCII but quote and backslash: such a string needs no escape, so the body, orjson and
# the reply all spell it the same.
_PLAIN_UID = re.compile(rb"[ !#-\[\]-~]+")


@dataclass(slots=True)
class CachedReply:
    body: bytes  # the reply as sent, with the uid of the request that made it
    uid_json: bytes  # that uid as a JSON string literal, e.g. b'"705ab4f5-..."'
    outcome: str
    verified: bool = False  # a later body of this shape was parsed: its uid is where we look
    # What the caller wants to know about a hit without parsing (the app's log summary); the
    # same for every body with this key, since it is made from the parts of the body they share.
    info: object = None


class DecisionCache:
    """LRU of replies keyed by (handler, body without its uid), for one configuration at a time."""

    def __init__(self, *, max_entries: int = 1024, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[object, bytes], CachedReply] = OrderedDict()
        self._bytes = 0
        self._config: object | None = None
        # (configuration, whether the token volume name may be normalised under it)
        self._token_rule: tuple[object, bool] | None = None
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

    def key_for(self, config: object, body: bytes) -> tuple[bytes, bytes] | None:
        """`key` under `config`: the token volume name stays in the key when some configured
        string contains `kube-api-access-` (it could be compared with a renamed name)."""
        rule = self._token_rule
        if rule is None or rule[0] is not config:
            # repr spells every field of the (pydantic or dataclass) configuration; once per
            # configuration object.
            rule = (config, _TOKEN_VOLUME_PREFIX.decode() not in repr(config))
            self._token_rule = rule
        return self.key(body, normalise_token=rule[1])

    @staticmethod
    def key(body: bytes, *, normalise_token: bool = True) -> tuple[bytes, bytes] | None:
        """(body without its first uid value and, when `normalise_token`, with the token volume's
        name made fixed; that uid value as a JSON string), or None.

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
        if at >= 0 and normalise_token:
            if _TOKEN_VOLUME.match(stripped, at) is None:
                return None
            name = stripped[at : at + _TOKEN_VOLUME_LENGTH]
            # Every occurrence must be this one name as a "name" value (which also rules out the
            # placeholder, and the name inside annotation values the decision could copy).
            count = stripped.count(_TOKEN_VOLUME_PREFIX)
            as_names = sum(stripped.count(field + name) for field in _TOKEN_VOLUME_FIELDS)
            if count != stripped.count(name) or count != as_names:
                return None
            stripped = stripped.replace(name, _TOKEN_VOLUME_PLACEHOLDER)
        return stripped, b'"' + uid + b'"'

    def get(
        self, config: object, handler: Callable[..., object], stripped: bytes, uid_json: bytes, body: bytes
    ) -> CachedReply | None:
        """The reply to `body` (whose `key` is (stripped, uid_json)), or None: decide afresh."""
        with self._lock:
            if config is not self._config:
                return None
            entry = self._entries.get((handler, stripped))
            if entry is None:
                return None
            self._entries.move_to_end((handler, stripped))
        if entry.uid_json == uid_json:
            return entry
        if not entry.verified:
            if not _uid_is_request_uid(body, uid_json):
                with self._lock:
                    if self._entries.get((handler, stripped)) is entry:
                        del self._entries[(handler, stripped)]
                        self._bytes -= len(stripped) + len(entry.body)
                return None
            entry.verified = True
        return CachedReply(
            entry.body.replace(entry.uid_json, uid_json, 1), uid_json, entry.outcome, True, entry.info
        )

    def put(
        self,
        config: object,
        handler: Callable[..., object],
        key: tuple[bytes, bytes],
        request_uid: str,
        reply: bytes,
        outcome: str,
        info: object = None,
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
            or _mentions_token_volume(reply)
            # Renamed, but the body may spell a name character in an escape: not stored. (Checked
            # here, not per request: a body with this key has the same bytes outside the name.)
            or (_TOKEN_VOLUME_PLACEHOLDER in stripped and _ESCAPED_NAME_CHARACTER.search(stripped))
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
            self._entries[(handler, stripped)] = CachedReply(reply, uid_json, outcome, info=info)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                (_, old_stripped), evicted = self._entries.popitem(last=False)
                self._bytes -= len(old_stripped) + len(evicted.body)
        return True


def _uid_is_request_uid(body: bytes, uid_json: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    request = doc.get("request") if isinstance(doc, dict) else None
    return isinstance(request, dict) and orjson.dumps(request.get("uid")) == uid_json


def _mentions_token_volume(reply: bytes) -> bool:
    if _TOKEN_VOLUME_PREFIX in reply:
        return True
    patch = _PATCH_FIELD.search(reply)
    return patch is not None and _TOKEN_VOLUME_PREFIX in base64.b64decode(patch.group(1))
