"""Bucket shards, the pure core: the stable hash, the Lease names and the ownership decision."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter

import pytest

from reconciler.runtime.buckets import (
    LeaseView,
    OwnAll,
    OwnershipChange,
    all_lease_names,
    believes_owned,
    bucket_lease_names,
    bucket_of,
    fair_share,
    live_members,
    may_take,
    owned_buckets,
    plan_round,
    target_key,
)


def test_the_hash_is_sha256_mod_n_and_the_same_in_another_process() -> None:
    # Pinned values: a change to the hash would silently move every target on upgrade.
    assert [bucket_of(k, 10) for k in ("default/hello", "ns-a/rev-00001", "x/y")] == [8, 6, 9]
    assert (
        bucket_of("default/hello", 7)
        == int.from_bytes(hashlib.sha256(b"default/hello").digest()[:8], "big") % 7
    )
    code = "from reconciler.runtime.buckets import bucket_of; print(bucket_of('default/hello', 1000))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "1"}
    )
    assert int(other.stdout) == bucket_of("default/hello", 1000) == 298
    assert bucket_of("anything", 1) == 0
    with pytest.raises(ValueError):
        bucket_of("k", 0)


def test_keys_spread_over_the_buckets() -> None:
    counts = Counter(bucket_of(target_key("ns", f"rev-{i:05d}"), 10) for i in range(3000))
    assert set(counts) == set(range(10))
    assert min(counts.values()) > 200  # 300 expected each; a broken hash would pile them up


def test_lease_names_keep_the_single_lease_for_one_bucket() -> None:
    assert bucket_lease_names("knscale-reconciler", 1) == ["knscale-reconciler"]
    assert all_lease_names("knscale-reconciler", 1) == ["knscale-reconciler"]
    assert bucket_lease_names("knscale-reconciler", 3) == [
        "knscale-reconciler-0",
        "knscale-reconciler-1",
        "knscale-reconciler-2",
    ]
    assert all_lease_names("l", 2) == ["l-0", "l-1", "l-members"]


def test_belief_ends_at_the_renew_deadline_counted_from_the_attempt_start() -> None:
    view = LeaseView(leading=True, renewed_at=100.0)
    assert believes_owned(view, 109.99, renew_deadline=10.0)
    assert not believes_owned(view, 110.0, renew_deadline=10.0)
    assert not believes_owned(LeaseView(False, 100.0), 100.0, 10.0)
    assert not believes_owned(LeaseView(True, None), 100.0, 10.0)
    views = {0: view, 1: LeaseView(True, 95.0), 2: LeaseView(False, None)}
    assert owned_buckets(views, 104.0, 10.0) == {0, 1}
    assert owned_buckets(views, 106.0, 10.0) == {0}


def test_a_rival_may_take_a_lease_only_after_it_stood_still_a_full_duration() -> None:
    assert may_take("", "b", observed_at=0.0, duration_s=15, now=0.0)  # free
    assert may_take("b", "b", observed_at=0.0, duration_s=15, now=0.0)  # ours
    assert not may_take("a", "b", observed_at=10.0, duration_s=15, now=24.9)
    assert may_take("a", "b", observed_at=10.0, duration_s=15, now=25.0)
    # The holder's belief (renew deadline 10 from its attempt start at ≤ 10) ends by 20 < 25.
    assert not believes_owned(LeaseView(True, 10.0), 20.0, 10.0)


def test_fair_share_covers_every_bucket() -> None:
    for buckets in range(1, 25):
        for members in range(1, 8):
            assert fair_share(buckets, members) * members >= buckets
    assert fair_share(10, 3) == 4 and fair_share(10, 0) == 10


def test_a_round_keeps_the_lowest_buckets_and_releases_the_surplus() -> None:
    plan = plan_round({7, 1, 3, 9, 0}, buckets=10, members=3)
    assert plan.keep == {0, 1, 3, 7} and plan.release == {9} and plan.room == 0
    plan = plan_round({2}, buckets=10, members=3)
    assert plan.keep == {2} and plan.release == set() and plan.room == 3
    assert plan_round(set(), buckets=1, members=5).room == 1  # one Lease: everybody campaigns


def test_members_that_went_silent_for_a_lease_duration_are_not_counted() -> None:
    seen = {"a": 0.0, "b": 10.0}
    assert live_members(seen, "me", now=14.0, lease_duration=15.0) == {"a", "b", "me"}
    assert live_members(seen, "me", now=15.0, lease_duration=15.0) == {"b", "me"}
    assert live_members({}, "me", now=0.0, lease_duration=15.0) == {"me"}


def test_ownership_changes_answer_per_key() -> None:
    key = "ns/rev"
    change = OwnershipChange(4, gained=frozenset({bucket_of(key, 4)}), lost=frozenset())
    assert change.gained_key(key) and not change.lost_key(key)
    everything = OwnAll()
    everything.subscribe(lambda _c: None)
    assert everything.owns(key) and everything.holds_any()
