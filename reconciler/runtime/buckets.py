"""Bucket shards, the pure part: which bucket a target is in, the Lease names, and who owns what.

Targets are sharded by a stable hash of `namespace/name` into N buckets, one Lease per bucket,
as Knative's autoscaler does with its bucket Leases. Everything here is pure (no clock, no I/O):
the caller passes `now` (a monotonic reading) and the lease state it has seen.

**The hash.** `bucket_of(key, n)` is the first 8 bytes of SHA-256 of the UTF-8 key, read as a
big-endian unsigned integer, modulo n. SHA-256 is the same in every process, host and Python
version (Python's `hash()` is salted per process and must never be used here). Keys of one
target's objects share the target's name — a PodAutoscaler, its ScaledObject, SKS and status,
a workload's ScaledObject and `scale` — so one bucket covers all of a target's writes.
Changing N moves most keys (mod-N, unlike Knative's consistent `ChooseSubset`); N is a
deployment-wide setting, changed by a rollout that stops every replica first.

**The names.** N = 1 keeps today's single Lease (`<base>`, by default `knscale-reconciler`);
N > 1 uses `<base>-0` … `<base>-<N-1>` plus `<base>-members`, where each replica announces
itself so the others can compute a fair share.

**Ownership.** A replica believes it owns a bucket while its last successful renewal of that
bucket's Lease started less than `renew_deadline` ago; a rival may take the Lease only once the
record has not changed for `lease_duration` on the rival's clock. With renew_deadline <
lease_duration (client-go's rule) the two beliefs never overlap, even when a request hangs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

MAX_BUCKETS = 32  # one round is sequential: 2 + 2·held + (N − held) requests, well under renew_deadline


def target_key(namespace: str, name: str) -> str:
    """The shard key of a target: `namespace/name`."""
    return f"{namespace}/{name}"


def bucket_of(key: str, buckets: int) -> int:
    """Bucket index of `key` in 0..buckets-1 (SHA-256, first 8 bytes big-endian, mod buckets)."""
    if buckets < 1:
        raise ValueError("buckets must be ≥ 1")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def bucket_lease_names(base: str, buckets: int) -> list[str]:
    """The Lease name of every bucket, in index order."""
    if buckets == 1:
        return [base]
    return [f"{base}-{i}" for i in range(buckets)]


def members_lease_name(base: str) -> str:
    return f"{base}-members"


def all_lease_names(base: str, buckets: int) -> list[str]:
    """Every Lease a replica with this setting may write (for RBAC and the settings check)."""
    names = bucket_lease_names(base, buckets)
    return names if buckets == 1 else [*names, members_lease_name(base)]


# ---- the ownership decision --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What one replica knows of one bucket Lease.

    `leading`: its last write of the Lease made it the holder and nothing since said otherwise.
    `renewed_at`: monotonic time at which that last successful write *started* (a slow answer
    must not extend the belief: the API server may have stored the write at any point after)."""

    leading: bool
    renewed_at: float | None


def believes_owned(view: LeaseView, now: float, renew_deadline: float) -> bool:
    return view.leading and view.renewed_at is not None and now - view.renewed_at < renew_deadline


def owned_buckets(views: Mapping[int, LeaseView], now: float, renew_deadline: float) -> frozenset[int]:
    return frozenset(i for i, v in views.items() if believes_owned(v, now, renew_deadline))


def may_take(holder: str, identity: str, observed_at: float, duration_s: float, now: float) -> bool:
    """May `identity` write the Lease now? Free, ours, or unchanged for its duration as seen here."""
    return not holder or holder == identity or observed_at + duration_s <= now


def fair_share(buckets: int, members: int) -> int:
    """How many buckets one of `members` live replicas should hold (the ceiling: none orphaned)."""
    return math.ceil(buckets / max(1, members))


@dataclass(frozen=True, slots=True)
class RoundPlan:
    keep: frozenset[int]  # renew these
    release: frozenset[int]  # over the fair share: give these up so a peer can take them
    room: int  # how many more buckets to try to acquire this round


def plan_round(held: Iterable[int], buckets: int, members: int) -> RoundPlan:
    """One election round: keep the lowest-numbered held buckets up to the fair share, release
    the rest, and say how many free buckets may still be taken."""
    share = fair_share(buckets, members)
    ordered = sorted(set(held))
    return RoundPlan(frozenset(ordered[:share]), frozenset(ordered[share:]), max(0, share - len(ordered)))


def live_members(
    last_change: Mapping[str, float], identity: str, now: float, lease_duration: float
) -> frozenset[str]:
    """Replicas whose heartbeat changed within one lease duration (on this replica's clock);
    this replica always counts itself."""
    alive = {m for m, at in last_change.items() if now - at < lease_duration}
    return frozenset({*alive, identity})


# ---- the generic ownership interface -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnershipChange:
    """Buckets gained and lost in one step; ask about keys, not bucket numbers."""

    buckets: int
    gained: frozenset[int]
    lost: frozenset[int]

    def gained_key(self, key: str) -> bool:
        return bucket_of(key, self.buckets) in self.gained

    def lost_key(self, key: str) -> bool:
        return bucket_of(key, self.buckets) in self.lost


class Ownership(Protocol):
    """Which targets this replica may reconcile. `owns` is judged at the moment of the call (it
    turns False at the renew deadline even if no callback ran), so call it right before acting."""

    def owns(self, key: str) -> bool: ...

    def holds_any(self) -> bool: ...

    def subscribe(self, callback: Callable[[OwnershipChange], None]) -> None: ...


class OwnAll:
    """No election (one replica by choice, or a dry run): every key is ours, nothing changes."""

    def owns(self, key: str) -> bool:
        return True

    def holds_any(self) -> bool:
        return True

    def subscribe(self, callback: Callable[[OwnershipChange], None]) -> None:
        pass  # ownership never changes
