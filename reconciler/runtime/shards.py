"""Multi-Lease election: each replica campaigns for every bucket Lease, leads its fair share.

One thread per replica runs election rounds every `retry_period` (jittered while it holds
nothing, as client-go's candidates are). A round:

1. (N > 1) heartbeats into the members Lease and counts the live replicas R — members whose
   heartbeat changed within one lease duration on this replica's clock;
2. keeps the lowest-numbered held buckets up to the fair share ceil(N / R), releases the rest
   (holder cleared, so a peer takes them within its next round), and renews the kept ones;
3. observes every other bucket Lease (its expiry timer runs) and takes free or expired ones
   while below the fair share, starting at a per-identity offset so replicas starting together
   do not all race for bucket 0.

Each bucket is one `LeaderElector` (leader.py): the Lease record, expiry on the candidate's own
clock, updates with resourceVersion (two racers cannot both win) and the renew deadline.
`owns(key)` asks that bucket's elector at the moment of the call, so a replica whose renewals
stall stops acting at the renew deadline, before the Lease could expire for anyone else — even
if this thread is stuck in a request. Changes of the held set go to the subscribers after each
round (gained: resync those keys; lost: drop their state).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import ApiError, Conflict, NotFound
from kubeapi.resources import LEASES
from reconciler.runtime.buckets import (
    OwnershipChange,
    bucket_lease_names,
    bucket_of,
    live_members,
    members_lease_name,
    plan_round,
)
from reconciler.runtime.clock import Clock, micro_time
from reconciler.runtime.leader import JITTER_FACTOR, LeaderElector, LeaseConfig

log = logging.getLogger(__name__)

MEMBERS_ANNOTATION = "knscale.dev/members"


class _Members:
    """The members Lease: `{identity: heartbeat}` in one annotation, pruned of the silent."""

    def __init__(self, api: KubeApi, config: LeaseConfig, clock: Clock) -> None:
        self._api, self._cfg, self._clock = api, config, clock
        self._name = members_lease_name(config.name)
        self._seen: dict[str, tuple[str, float]] = {}  # member → (heartbeat, monotonic of its change)

    def _read(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        try:
            lease = self._api.get(LEASES, self._cfg.namespace, self._name)
        except NotFound:
            return None, {}
        raw = ((lease.get("metadata") or {}).get("annotations") or {}).get(MEMBERS_ANNOTATION, "{}")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        entries = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        return lease, entries

    def _write(self, lease: dict[str, Any] | None, entries: dict[str, str]) -> None:
        value = json.dumps(entries, sort_keys=True, separators=(",", ":"))
        if lease is None:
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {
                    "name": self._name,
                    "namespace": self._cfg.namespace,
                    "annotations": {MEMBERS_ANNOTATION: value},
                },
                "spec": {},
            }
            self._api.create(LEASES, self._cfg.namespace, body)
            return
        md = dict(lease.get("metadata") or {})
        md["annotations"] = {**(md.get("annotations") or {}), MEMBERS_ANNOTATION: value}
        self._api.replace(LEASES, self._cfg.namespace, self._name, {**lease, "metadata": md})

    def heartbeat(self) -> int:
        """Announce this replica, prune members silent for a lease duration; the live count."""
        me = self._cfg.identity
        for _attempt in range(2):  # one retry on a write conflict with a peer's heartbeat
            mono = self._clock.monotonic()
            try:
                lease, entries = self._read()
            except ApiError as exc:
                log.warning("members lease: get failed: %s", exc)
                break
            for member, beat in entries.items():
                if self._seen.get(member, ("", 0.0))[0] != beat:
                    self._seen[member] = (beat, mono)
            for gone in set(self._seen) - set(entries):
                del self._seen[gone]
            others = {m: at for m, (_beat, at) in self._seen.items() if m != me}
            alive = live_members(others, me, mono, self._cfg.lease_duration)
            kept = {m: entries[m] for m in alive if m in entries}
            kept[me] = micro_time(self._clock.now())
            try:
                self._write(lease, kept)
            except Conflict:
                continue
            except ApiError as exc:
                log.warning("members lease: write failed: %s", exc)
            break
        return len(self.alive())

    def alive(self) -> frozenset[str]:
        others = {m: at for m, (_beat, at) in self._seen.items() if m != self._cfg.identity}
        return live_members(others, self._cfg.identity, self._clock.monotonic(), self._cfg.lease_duration)

    def leave(self) -> None:
        """Shutdown: remove this replica so the others' fair share grows at once."""
        try:
            lease, entries = self._read()
            if lease is not None and entries.pop(self._cfg.identity, None) is not None:
                self._write(lease, entries)
        except ApiError as exc:
            log.info("members lease: leaving failed (peers notice within a lease duration): %s", exc)


class BucketElector:
    """`Ownership` over N bucket Leases (N = 1: the single Lease of before, no members Lease)."""

    def __init__(
        self, api: KubeApi, config: LeaseConfig, clock: Clock, *, rand: Callable[[], float] = random.random
    ) -> None:
        self._cfg = config
        self._clock = clock
        self._rand = rand
        self.buckets = config.buckets
        self._electors = [
            LeaderElector(api, replace(config, name=name), clock)
            for name in bucket_lease_names(config.name, config.buckets)
        ]
        self._members = _Members(api, config, clock) if config.buckets > 1 else None
        self._subscribers: list[Callable[[OwnershipChange], None]] = []
        self._notified: frozenset[int] = frozenset()
        self._offset = bucket_of(config.identity, config.buckets)
        self._round_lock = threading.Lock()  # rounds and release never interleave

    @property
    def identity(self) -> str:
        return self._cfg.identity

    # -- Ownership --

    def owns(self, key: str) -> bool:
        return self._electors[bucket_of(key, self.buckets)].is_leader()

    def held(self) -> frozenset[int]:
        return frozenset(i for i, e in enumerate(self._electors) if e.is_leader())

    def holds_any(self) -> bool:
        return any(e.is_leader() for e in self._electors)

    def subscribe(self, callback: Callable[[OwnershipChange], None]) -> None:
        self._subscribers.append(callback)

    def _notify(self, regained: frozenset[int] = frozenset()) -> None:
        now = self.held()
        # `regained`: buckets whose ownership lapsed between rounds (a renewal stuck past the
        # renew deadline) and that this round renewed: keys dropped while lapsed need a resync.
        gained, lost = (now - self._notified) | (now & regained), self._notified - now
        self._notified = now
        if gained or lost:
            log.info(
                "%s holds buckets %s of %d (gained %s, lost %s)",
                self.identity, sorted(now), self.buckets, sorted(gained), sorted(lost),
            )  # fmt: skip
            change = OwnershipChange(self.buckets, frozenset(gained), frozenset(lost))
            for callback in self._subscribers:
                callback(change)

    # -- rounds --

    def run_round(self) -> frozenset[int]:
        """One election round (see the module docstring). Returns the buckets held after it."""
        with self._round_lock:
            lapsed = self._notified - self.held()
            members = self._members.heartbeat() if self._members is not None else 1
            for e in self._electors:
                e.lapse()  # renewals failed past the deadline: no longer leading
            plan = plan_round(self.held(), self.buckets, members)
            for i in sorted(plan.release):
                log.info("%s releases bucket %d (fair share of %d replicas)", self.identity, i, members)
                self._electors[i].release()
            for i in sorted(plan.keep):
                self._electors[i].try_acquire_or_renew()
            room = plan.room
            for step in range(self.buckets):
                i = (self._offset + step) % self.buckets
                if i in plan.keep or i in plan.release:
                    continue
                if self._electors[i].try_acquire_or_renew(acquire=room > 0):
                    room -= 1
        self._notify(regained=lapsed)
        return self.held()

    def run(self, stop: threading.Event) -> None:
        """Campaign and renew until `stop` is set."""
        while not stop.is_set():
            if self._clock.wait(self.next_wait(self.run_round()), stop):
                break

    def next_wait(self, held: frozenset[int]) -> float:
        """Seconds to the next round: the retry period, jittered while nothing is held."""
        period = self._cfg.retry_period
        return period if held else period * (1 + self._rand() * JITTER_FACTOR)

    def release_all(self) -> bool:
        """Shutdown: give up every held bucket and leave the members Lease. True if any was held."""
        with self._round_lock:
            released = [e.release() for e in self._electors]
            if self._members is not None:
                self._members.leave()
        self._notify()
        return any(released)
