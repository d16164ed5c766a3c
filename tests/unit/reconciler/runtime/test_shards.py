"""Multi-Lease election over FakeKube with a fake clock: three replicas split N bucket Leases,
a stopped replica's buckets move within one lease duration, and at no instant do two replicas
both believe they own a bucket — checked before and after every API call and every tick, with
request latency and a network partition in play (the renew deadline is what keeps it safe)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from kubeapi.errors import ApiError
from kubeapi.resources import LEASES
from kubeapi.testing import FakeKube
from reconciler.runtime.buckets import bucket_of, target_key
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.leader import JITTER_FACTOR, LeaseConfig
from reconciler.runtime.shards import MEMBERS_ANNOTATION, BucketElector

NS, BASE = "knscale-system", "knscale-reconciler"
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
BUCKETS = 10
KEYS = [target_key(f"ns-{i % 7}", f"rev-{i:04d}") for i in range(700)]


class _Link:
    """One replica's connection to the shared API: latency each way, an optional partition,
    and the global invariant checked before and after every call."""

    def __init__(self, fake: FakeKube, clock: FakeClock, check: Callable[[], None]) -> None:
        self._fake, self._clock, self._check = fake, clock, check
        self.latency = 0.0
        self.partitioned = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fake, name)
        if name not in {"get", "create", "replace", "patch", "delete"}:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._clock.advance(self.latency / 2)
            self._check()
            if self.partitioned:
                raise ApiError(503, "ServiceUnavailable", "partitioned")
            try:
                return attr(*args, **kwargs)
            finally:
                self._clock.advance(self.latency / 2)
                self._check()

        return call


class Cluster:
    def __init__(self, names: list[str], buckets: int = BUCKETS) -> None:
        self.fake, self.clock = FakeKube(), FakeClock()
        self.checks = 0
        self.links: dict[str, _Link] = {}
        self.electors: dict[str, BucketElector] = {}
        self.running: set[str] = set()
        self.next_at: dict[str, float] = {}
        for n, name in enumerate(names):
            link = _Link(self.fake, self.clock, self.check)
            cfg = LeaseConfig(BASE, NS, name, LEASE, RENEW, RETRY, buckets)
            self.links[name] = link
            self.electors[name] = BucketElector(link, cfg, self.clock, rand=random.Random(n).random)  # type: ignore[arg-type]

    def check(self) -> None:
        """At most one replica believes it owns each bucket — stopped and partitioned ones included."""
        self.checks += 1
        for b in range(next(iter(self.electors.values())).buckets):
            believers = [n for n, e in self.electors.items() if b in e.held()]
            assert len(believers) <= 1, f"bucket {b} owned by {believers} at {self.clock.monotonic()}"

    def start(self, name: str) -> None:
        self.running.add(name)
        self.next_at[name] = self.clock.monotonic()

    def run(self, seconds: float, until: Callable[[], bool] | None = None, dt: float = 0.1) -> float:
        """Drive the running replicas' rounds; returns the seconds it took (`until` stops early)."""
        start = self.clock.monotonic()
        while self.clock.monotonic() - start < seconds:
            for name in sorted(self.running):
                if self.clock.monotonic() >= self.next_at[name]:
                    elector = self.electors[name]
                    self.next_at[name] = self.clock.monotonic() + elector.next_wait(elector.run_round())
            if until is not None and until():
                break
            self.clock.advance(dt)
            self.check()
        return self.clock.monotonic() - start

    def owners(self, key: str) -> list[str]:
        return [n for n, e in self.electors.items() if e.owns(key)]

    def all_held_by(self, names: set[str]) -> bool:
        held = [b for n in names for b in self.electors[n].held()]
        return sorted(held) == list(range(BUCKETS))

    def lease_holder(self, bucket: int) -> str:
        lease = self.fake.obj(LEASES, NS, f"{BASE}-{bucket}")
        assert lease is not None
        return str(lease["spec"]["holderIdentity"])


def converged(cluster: Cluster, names: set[str]) -> None:
    cluster.run(90, until=lambda: cluster.all_held_by(names) and _balanced(cluster, names))
    assert cluster.all_held_by(names), {n: sorted(cluster.electors[n].held()) for n in names}
    assert _balanced(cluster, names), {n: sorted(cluster.electors[n].held()) for n in names}


def _balanced(cluster: Cluster, names: set[str]) -> bool:
    share = -(-BUCKETS // len(names))
    return all(1 <= len(cluster.electors[n].held()) <= share for n in names)


def test_three_replicas_split_the_buckets_and_every_key_has_exactly_one_owner() -> None:
    cluster = Cluster(["a", "b", "c"])
    cluster.start("a")
    cluster.run(6)
    assert cluster.electors["a"].held() == set(range(BUCKETS))  # alone, it takes every bucket
    cluster.start("b")
    cluster.start("c")
    converged(cluster, {"a", "b", "c"})
    settled = {n: e.held() for n, e in cluster.electors.items()}
    cluster.run(30)  # and it stays so: no churn once shared
    assert {n: e.held() for n, e in cluster.electors.items()} == settled
    for key in KEYS:
        owners = cluster.owners(key)
        assert len(owners) == 1, (key, owners)
        assert cluster.lease_holder(bucket_of(key, BUCKETS)) == owners[0]
    members = cluster.fake.obj(LEASES, NS, f"{BASE}-members")
    assert members is not None
    assert set(json.loads(members["metadata"]["annotations"][MEMBERS_ANNOTATION])) == {"a", "b", "c"}
    assert cluster.checks > 300


def test_a_stopped_replica_s_buckets_move_within_one_lease_duration() -> None:
    cluster = Cluster(["a", "b", "c"])
    for name in ("a", "b", "c"):
        cluster.start(name)
    converged(cluster, {"a", "b", "c"})
    cluster.run(2 * RETRY)
    lost = cluster.electors["c"].held()
    assert lost
    cluster.running.discard("c")  # stops renewing (a SIGKILL, or a hung process)
    took = cluster.run(3 * LEASE, until=lambda: cluster.all_held_by({"a", "b"}))
    assert cluster.all_held_by({"a", "b"})
    # Survivors see c's last renewal within one round, wait a lease duration from that sighting,
    # and notice the expiry at their next round.
    assert took <= LEASE + 2 * RETRY * (1 + JITTER_FACTOR), took
    assert took > LEASE - RETRY  # not before the lease could have expired
    assert not cluster.electors["c"].held()  # c stopped believing at its renew deadline
    for key in KEYS:
        assert len(cluster.owners(key)) == 1, key
    converged(cluster, {"a", "b"})


def test_partition_and_slow_answers_never_give_a_bucket_two_owners() -> None:
    cluster = Cluster(["a", "b", "c"])
    for link in cluster.links.values():
        link.latency = 0.1  # each request takes 0.1 s (the simulation runs replicas one at a time)
    for name in ("a", "b", "c"):
        cluster.start(name)
    converged(cluster, {"a", "b", "c"})
    b_had = cluster.electors["b"].held()
    cluster.links["b"].partitioned = True  # b keeps running rounds that all fail
    took = cluster.run(3 * LEASE, until=lambda: cluster.all_held_by({"a", "c"}))
    assert cluster.all_held_by({"a", "c"}) and b_had
    assert took >= RENEW  # b's buckets were untouched until b had given them up
    cluster.links["b"].partitioned = False  # healed: b rejoins and gets a share back
    converged(cluster, {"a", "b", "c"})
    assert cluster.checks > 300


def test_a_graceful_shutdown_hands_the_buckets_over_at_once() -> None:
    cluster = Cluster(["a", "b", "c"])
    for name in ("a", "b", "c"):
        cluster.start(name)
    converged(cluster, {"a", "b", "c"})
    cluster.running.discard("a")
    assert cluster.electors["a"].release_all()
    assert not cluster.electors["a"].held()
    took = cluster.run(3 * LEASE, until=lambda: cluster.all_held_by({"b", "c"}))
    assert cluster.all_held_by({"b", "c"})
    assert took <= 3 * RETRY * (1 + JITTER_FACTOR), took  # no lease duration to wait out
    members = cluster.fake.obj(LEASES, NS, f"{BASE}-members")
    assert members is not None
    assert "a" not in json.loads(members["metadata"]["annotations"][MEMBERS_ANNOTATION])


def test_one_bucket_is_the_single_lease_of_before() -> None:
    cluster = Cluster(["a", "b"], buckets=1)
    cluster.start("a")
    cluster.start("b")
    cluster.run(10)
    holders = [n for n, e in cluster.electors.items() if e.held() == {0}]
    assert len(holders) == 1
    lease = cluster.fake.obj(LEASES, NS, BASE)
    assert lease is not None and lease["spec"]["holderIdentity"] == holders[0]
    assert cluster.fake.obj(LEASES, NS, f"{BASE}-members") is None  # no membership with one bucket
    assert cluster.fake.obj(LEASES, NS, f"{BASE}-0") is None
