"""Scenario 11: three `knscale reconcile` replicas shard 300 targets over bucket Leases.

The targets are HPA-class Deployments (each gets one ScaledObject): revisions of knscale's own
class do not exist yet, and KPA-class scaling needs pods and metrics the bare API server cannot
give cheaply (the KPA path's sharding is covered with FakeKube in
tests/unit/reconciler/runtime/test_controller_shards.py). Only the API server runs: no
kube-controller-manager, KEDA or Knative is needed for Deployments and ScaledObjects.

Who wrote what is read twice, independently: each replica's log ("created ScaledObject
ns/name", its own file) and the `reportingInstance` of the ScaledObjectCreated events (the
replica's Lease identity). The bucket of a target is `reconciler.runtime.buckets.bucket_of`,
the same function the replicas use.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Reconciler, new_namespace
from manifests import workload

from reconciler.runtime.buckets import bucket_of, target_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

BUCKETS, TARGETS = 10, 300
LEASE_S, RENEW_S, RETRY_S = 6.0, 4.0, 1.0
JITTER = 1.2  # reconciler/runtime/leader.py JITTER_FACTOR
TARGET_KEY = "autoscaling.knative.dev/target"
HPA_CLASS = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
IDS = ("rec-0", "rec-1", "rec-2")
CREATED = re.compile(r"created ScaledObject ([a-z0-9-]+)/([a-z0-9-]+)\s*$", re.MULTILINE)
UPDATED = re.compile(r"updated ScaledObject ([a-z0-9-]+)/([a-z0-9-]+)\s*$", re.MULTILINE)


def _deployments(names: list[str], target: str = "70") -> str:
    items = [workload(n, annotations={**HPA_CLASS, TARGET_KEY: target}) for n in names]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _holders(cp: ControlPlane, ns: str) -> dict[int, str]:
    out = cp.kubectl("get", "leases", "-n", ns, "-o", "json").stdout
    holders = {}
    for lease in json.loads(out)["items"]:
        name = lease["metadata"]["name"]
        suffix = name.rsplit("-", 1)[-1]
        if name.startswith("knscale-reconciler-") and suffix.isdigit():
            holders[int(suffix)] = (lease.get("spec") or {}).get("holderIdentity") or ""
    return holders


def _shares(holders: dict[int, str]) -> Counter[str]:
    return Counter(h for h in holders.values() if h)


def _scaled_objects(cp: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    items = json.loads(cp.kubectl("get", "scaledobjects", "-n", ns, "-o", "json").stdout)["items"]
    return {so["metadata"]["name"]: so for so in items}


@pytest.fixture
def cp(control_plane: ControlPlane) -> ControlPlane:
    return control_plane  # only the API server: Deployments and ScaledObjects need no controller


def _created_by_events(cp: ControlPlane, ns: str) -> dict[str, list[str]]:
    out = json.loads(cp.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    by: dict[str, list[str]] = defaultdict(list)
    for e in out:
        if e.get("reason") == "ScaledObjectCreated":
            by[e["involvedObject"]["name"]] += [e.get("reportingInstance") or "?"] * int(e.get("count") or 1)
    return by


def _writes(rec: Reconciler, ns: str, pattern: re.Pattern[str]) -> list[str]:
    return [name for n, name in pattern.findall(rec.text()) if n == ns]


def _bucket(ns: str, name: str) -> int:
    return bucket_of(target_key(ns, name), BUCKETS)


def test_three_replicas_split_300_targets_and_a_killed_ones_buckets_move(cp: ControlPlane) -> None:
    ns = new_namespace(cp, "s11", labels={"knscale.dev/injection": "disabled"})
    common = [
        f"--namespace={ns}",
        f"--lease-namespace={ns}",
        f"--buckets={BUCKETS}",
        f"--lease-duration={LEASE_S:g}s",
        f"--renew-deadline={RENEW_S:g}s",
        f"--retry-period={RETRY_S:g}s",
        "--resync-period=10m",  # every sync seen here comes from an event or a bucket move
    ]
    recs = {i: Reconciler(cp, f"s11-{i}", [*common, f"--lease-identity={i}"]) for i in IDS}
    diag = lambda: "\n".join(f"--- {i}\n{r.tail(30)}" for i, r in recs.items())  # noqa: E731
    try:
        for rec in recs.values():
            rec.start()
        # Every bucket held, by exactly one replica (a Lease has one holder), shared out fairly.
        share = -(-BUCKETS // len(IDS))
        wait_until(
            lambda: (
                len(h := _holders(cp, ns)) == BUCKETS
                and set(_shares(h)) == set(IDS)
                and max(_shares(h).values()) <= share
            ),
            timeout=120,
            what="three replicas to share the bucket Leases",
            on_timeout=diag,
        )
        time.sleep(3 * RETRY_S)  # and it stays so
        before = _holders(cp, ns)
        assert set(_shares(before)) == set(IDS) and max(_shares(before).values()) <= share, before

        names = [f"rev-{i:04d}" for i in range(TARGETS)]
        started = time.monotonic()
        cp.kubectl("create", "-n", ns, "-f", "-", input=_deployments(names), timeout=180)
        wait_until(
            lambda: len(_scaled_objects(cp, ns)) == TARGETS,
            timeout=180,
            what=f"{TARGETS} ScaledObjects",
            on_timeout=diag,
        )
        fill_s = time.monotonic() - started
        assert _holders(cp, ns) == before  # nothing moved meanwhile

        # Each ScaledObject created exactly once, by the holder of its target's bucket.
        creates = {i: _writes(r, ns, CREATED) for i, r in recs.items()}
        all_creates = Counter(n for c in creates.values() for n in c)
        assert sorted(all_creates) == names and set(all_creates.values()) == {1}
        for ident, created in creates.items():
            assert created, f"{ident} created nothing"
            wrong = [n for n in created if before[_bucket(ns, n)] != ident]
            assert not wrong, (ident, wrong[:5])
        events = _created_by_events(cp, ns)
        assert {n: len(v) for n, v in events.items()} == dict.fromkeys(names, 1)
        assert all(events[n] == [before[_bucket(ns, n)]] for n in names)
        # No target written by two replicas (creates and updates).
        writers: dict[str, set[str]] = defaultdict(set)
        for ident, rec in recs.items():
            for n in _writes(rec, ns, CREATED) + _writes(rec, ns, UPDATED):
                writers[n].add(ident)
        assert all(len(w) == 1 for w in writers.values())
        print(f"shares {dict(_shares(before))}; {TARGETS} ScaledObjects in {fill_s:.1f} s")

        # SIGKILL the replica with the most buckets: no release, its Leases must expire.
        victim = _shares(before).most_common(1)[0][0]
        moved = sorted(b for b, h in before.items() if h == victim)
        survivors = set(IDS) - {victim}
        marks = {i: len(r.text()) for i, r in recs.items()}
        recs[victim].kill()
        killed = time.monotonic()
        wait_until(
            lambda: all(_holders(cp, ns).get(b) in survivors for b in moved),
            timeout=LEASE_S + 4 * (1 + JITTER) * RETRY_S + 30,
            what=f"the survivors to take {victim}'s buckets {moved}",
            on_timeout=diag,
        )
        takeover_s = time.monotonic() - killed
        # A survivor sees the last renewal within one round, waits a lease duration from that
        # sighting and takes the bucket at its next round; slack for two shared CPUs.
        bound = LEASE_S + 2 * (1 + JITTER) * RETRY_S
        assert takeover_s <= bound + 3.0, f"takeover {takeover_s:.1f} s, bound {bound:.1f} s"
        after = _holders(cp, ns)
        assert set(after.values()) <= survivors and len(after) == BUCKETS, after
        print(f"{victim}'s buckets {moved} taken over in {takeover_s:.2f} s (bound {bound:.1f} s)")

        # Nothing orphaned: in every moved bucket an edit and a new target are reconciled.
        edited = [next(n for n in names if _bucket(ns, n) == b) for b in moved]
        added: list[str] = []
        for b in moved:
            added.append(next(f"new-{i:04d}" for i in range(10_000) if _bucket(ns, f"new-{i:04d}") == b))
        for n in edited:
            cp.kubectl("annotate", "deployment", n, "-n", ns, "--overwrite", f"{TARGET_KEY}=55")
        cp.kubectl("create", "-n", ns, "-f", "-", input=_deployments(added))

        def reconciled() -> bool:
            objs = _scaled_objects(cp, ns)
            return all(n in objs for n in added) and all(
                [t["metadata"]["value"] for t in objs[n]["spec"]["triggers"]] == ["55"] for n in edited
            )

        wait_until(reconciled, timeout=60, what="the moved buckets' changes", on_timeout=diag)
        for n in edited + added:
            owner = after[_bucket(ns, n)]
            text = {i: r.text()[marks[i] :] for i, r in recs.items() if i != victim}
            assert [i for i, t in text.items() if f"ScaledObject {ns}/{n}\n" in t] == [owner], n
        events = _created_by_events(cp, ns)
        assert all(events[n] == [after[_bucket(ns, n)]] for n in added)
        assert len(_scaled_objects(cp, ns)) == TARGETS + len(added)
        assert all(recs[i].alive() for i in survivors), diag()
    finally:
        for rec in recs.values():
            rec.stop()
