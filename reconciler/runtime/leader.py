"""Leader election on a `coordination.k8s.io/v1` Lease: one active reconciler, the rest warm.

The rules follow client-go's leaderelection package (written here from its documented
behaviour, not copied):

* A candidate takes the Lease when it is free (no holder) or expired. "Expired" is judged on
  the candidate's own monotonic clock: the record must not have changed for the record's
  `leaseDurationSeconds` since this process last saw it change. Clocks of different nodes
  never get compared.
* Every write is an update with the Lease's resourceVersion, so two candidates racing for
  the same Lease cannot both win: the loser gets 409 and stays a candidate.
* The leader renews every `retry_period`. If it has not renewed successfully for
  `renew_deadline` (counted from the *start* of the last successful attempt, so a slow answer
  never stretches it) it stops leading — and `is_leader()` turns False at that deadline even if
  the renewing thread is stuck in a hung request. The controller checks `is_leader()` right
  before each write (fencing), so a deposed leader stops writing before a successor can have
  taken over (`renew_deadline < lease_duration`).
* On shutdown the leader releases the Lease: holder cleared and duration 1 s, so a standby
  takes over within one retry period instead of waiting out the whole lease.

`LeaderElector` is one Lease; `reconciler.runtime.shards.BucketElector` runs one per bucket
(N = 1 is the single Lease above) and owns the campaign loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import AlreadyExists, ApiError, Conflict, NotFound
from kubeapi.resources import LEASES
from reconciler.runtime.buckets import MAX_BUCKETS, LeaseView, believes_owned, may_take
from reconciler.runtime.clock import Clock, micro_time

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2  # candidates retry after retry_period × [1, 1 + JITTER_FACTOR)


def default_identity() -> str:
    """The Lease holder name: the pod name in a cluster (downward API), else host + random."""
    pod = os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    buckets: int = 1  # shards: one Lease per bucket (reconciler.runtime.buckets)

    def problems(self) -> list[str]:
        """Every inconsistency, for the one-place configuration check."""
        out: list[str] = []
        if not self.identity:
            out.append("lease identity must not be empty (set POD_NAME or --lease-identity)")
        if self.lease_duration <= self.renew_deadline:
            out.append(
                f"--lease-duration ({self.lease_duration:g}s) must be greater than "
                f"--renew-deadline ({self.renew_deadline:g}s)"
            )
        if self.renew_deadline <= self.retry_period * JITTER_FACTOR:
            out.append(
                f"--renew-deadline ({self.renew_deadline:g}s) must be greater than "
                f"{JITTER_FACTOR} × --retry-period ({self.retry_period:g}s)"
            )
        if self.retry_period <= 0:
            out.append("--retry-period must be positive")
        if not 1 <= self.buckets <= MAX_BUCKETS:
            out.append(f"--buckets ({self.buckets}) must be between 1 and {MAX_BUCKETS}")
        return out


@dataclass(frozen=True, slots=True)
class _Record:
    holder: str
    duration: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: dict[str, Any]) -> _Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )


class LeaderElector:
    def __init__(
        self,
        api: KubeApi,
        config: LeaseConfig,
        clock: Clock,
    ) -> None:
        self._api = api
        self._cfg = config
        self._clock = clock
        self._lock = threading.Lock()
        self._observed: _Record | None = None
        self._observed_at = 0.0  # monotonic time the record last changed, as seen here
        self._renewed_at: float | None = None  # monotonic time of our last successful write
        self._leading = False

    @property
    def identity(self) -> str:
        return self._cfg.identity

    def is_leader(self) -> bool:
        """True only while our last successful renewal is younger than the renew deadline."""
        with self._lock:
            return self._fresh_locked()

    def _fresh_locked(self) -> bool:
        view = LeaseView(self._leading, self._renewed_at)
        return believes_owned(view, self._clock.monotonic(), self._cfg.renew_deadline)

    # -- one attempt --

    def try_acquire_or_renew(self, *, acquire: bool = True) -> bool:
        """One get-and-update round. True if we hold the Lease afterwards.

        `acquire=False` renews a Lease we lead but never takes one we do not: the record is
        only observed (its expiry timer runs here), as a candidate over its fair share does."""
        started = self._clock.monotonic()
        now = self._clock.now()
        cfg = self._cfg
        with self._lock:
            leading = self._leading
        try:
            lease = self._api.get(LEASES, cfg.namespace, cfg.name)
        except NotFound:
            if not acquire and not leading:
                return False
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": self._spec(now, acquire_time=micro_time(now), transitions=0),
            }
            try:
                created = self._api.create(LEASES, cfg.namespace, body)
            except (AlreadyExists, ApiError) as exc:
                log.info("lease %s/%s: create failed: %s", cfg.namespace, cfg.name, exc)
                return self._failed()
            return self._succeeded(created, started)
        except ApiError as exc:
            log.warning("lease %s/%s: get failed: %s", cfg.namespace, cfg.name, exc)
            return self._failed()

        record = _Record.of(lease)
        mono = self._clock.monotonic()
        with self._lock:
            if record != self._observed:
                self._observed = record
                self._observed_at = mono
            takeable = may_take(record.holder, cfg.identity, self._observed_at, record.duration, mono)
        if not takeable:
            self._lose()  # no-op unless another holder replaced us
            return False
        if not acquire and not leading:
            return False
        if record.holder == cfg.identity:
            spec = self._spec(
                now, acquire_time=record.acquire_time or micro_time(now), transitions=record.transitions
            )
        else:
            spec = self._spec(now, acquire_time=micro_time(now), transitions=record.transitions + 1)
        updated = dict(lease)
        updated["spec"] = {**(lease.get("spec") or {}), **spec}
        try:
            written = self._api.replace(LEASES, cfg.namespace, cfg.name, updated)
        except Conflict:
            return self._failed()
        except ApiError as exc:
            log.warning("lease %s/%s: update failed: %s", cfg.namespace, cfg.name, exc)
            return self._failed()
        return self._succeeded(written, started)

    def _spec(self, now: float, *, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self._cfg.identity,
            "leaseDurationSeconds": max(1, round(self._cfg.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    def _succeeded(self, lease: dict[str, Any], started: float) -> bool:
        with self._lock:
            record = _Record.of(lease)
            self._observed = record
            self._observed_at = self._clock.monotonic()
            self._renewed_at = started
            became = not self._leading
            self._leading = True
        if became:
            log.info(
                "%s became leader of lease %s/%s", self._cfg.identity, self._cfg.namespace, self._cfg.name
            )
        return True

    def _failed(self) -> bool:
        with self._lock:
            still = self._fresh_locked()
        return still

    def _lose(self) -> None:
        with self._lock:
            was = self._leading
            self._leading = False
            self._renewed_at = None
        if was:
            log.warning(
                "%s lost leadership of lease %s/%s", self._cfg.identity, self._cfg.namespace, self._cfg.name
            )

    def lapse(self) -> None:
        """Renewals failed past the renew deadline: stop leading (fenced already by time)."""
        if not self.is_leader():
            self._lose()

    def release(self) -> bool:
        """Give the Lease up (holder cleared, 1 s duration) if we still hold it."""
        with self._lock:
            leading = self._leading
        if not leading:
            return False
        cfg = self._cfg
        self._lose()
        try:
            lease = self._api.get(LEASES, cfg.namespace, cfg.name)
            if _Record.of(lease).holder != cfg.identity:
                return False
            now = micro_time(self._clock.now())
            spec = dict(lease.get("spec") or {})
            spec.update(
                {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now}
            )
            self._api.replace(LEASES, cfg.namespace, cfg.name, {**lease, "spec": spec})
        except ApiError as exc:
            log.warning(
                "lease %s/%s: release failed (standbys wait out the lease): %s", cfg.namespace, cfg.name, exc
            )
            return False
        log.info("%s released lease %s/%s", cfg.identity, cfg.namespace, cfg.name)
        return True
