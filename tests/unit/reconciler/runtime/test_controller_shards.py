"""Three whole controllers sharing the fake API, sharded over bucket Leases: every HPA-class
target's ScaledObject is created exactly once and only by its bucket's holder, KPA-class
targets are scaled only by theirs, and after one replica stops, a change to a target in one of
its buckets is reconciled by the replica that took the bucket over."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, LEASES, PODS, SCALEDOBJECTS
from kubeapi.testing import CLASS_KEY, HPA, KPA, FakeKube, pod, workload
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.runtime.buckets import bucket_of, target_key
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.leader import LeaseConfig
from reconciler.scaling.sources import MetricSources

NS, BASE, BUCKETS = "knscale-system", "knscale-reconciler", 6
HPA_TARGETS = [f"api-{i:03d}" for i in range(60)]
KPA_TARGETS = [f"web-{i:02d}" for i in range(9)]
METRIC_TARGET = "autoscaling.knative.dev/target"


class _Recorded:
    """A replica's view of the shared fake API that remembers which objects this replica wrote."""

    def __init__(self, fake: FakeKube, log: list[tuple[str, str, str]]) -> None:
        self._fake, self._log = fake, log

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fake, name)
        if name not in {"create", "replace", "patch"}:
            return attr

        def write(res: Any, namespace: str, *args: Any, **kwargs: Any) -> Any:
            obj_name = args[0] if name != "create" else args[0]["metadata"]["name"]
            if res is not LEASES:
                self._log.append((str(res), namespace, str(obj_name)))
            return attr(res, namespace, *args, **kwargs)

        return write


class Fleet:
    def __init__(self) -> None:
        self.fake, self.clock = FakeKube(), FakeClock()
        self.load = StaticCollector()
        self.writes: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self.ctrls: dict[str, Any] = {}
        self.next_at: dict[str, float] = {}
        for ident in ("a", "b", "c"):
            cfg = LeaseConfig(BASE, NS, ident, 15.0, 10.0, 2.0, BUCKETS)
            api = _Recorded(self.fake, self.writes[ident])
            sources = MetricSources(queue_proxy=self.load)
            self.ctrls[ident] = build_controller(api, self.clock, lease=cfg, identity=ident, sources=sources)  # type: ignore[arg-type]
            self.next_at[ident] = 0.0
        self.alive = {"a", "b", "c"}

    def add_targets(self) -> None:
        for name in HPA_TARGETS:
            self.fake.put(DEPLOYMENTS, workload(name, annotations={CLASS_KEY: HPA, METRIC_TARGET: "70"}))
        for i, name in enumerate(KPA_TARGETS):
            self.fake.put(PODS, pod(f"{name}-0", name, ip=f"10.0.1.{i + 1}"))
            self.load.values[RevisionKey("default", name)] = StatTotals(concurrency=140)
            self.fake.put(DEPLOYMENTS, workload(name, annotations={CLASS_KEY: KPA}, replicas=1))

    def run(self, seconds: float) -> None:
        for tick in range(int(seconds * 2)):
            self.clock.advance(0.5)
            for ident in sorted(self.alive):
                ctrl = self.ctrls[ident]
                ctrl.step_informers()
                if self.clock.monotonic() >= self.next_at[ident]:
                    wait = ctrl.elector.next_wait(ctrl.elector.run_round())
                    self.next_at[ident] = self.clock.monotonic() + wait
                if ctrl.is_leader():
                    if tick % 2:
                        ctrl.scrape_once()
                    ctrl.step()

    def holder(self, key: str) -> str:
        lease = self.fake.obj(LEASES, NS, f"{BASE}-{bucket_of(key, BUCKETS)}")
        assert lease is not None
        return str(lease["spec"]["holderIdentity"])

    def writers(self, name: str, since: dict[str, int] | None = None) -> set[str]:
        start = since or {}
        return {
            ident
            for ident, log in self.writes.items()
            if any(n == name for _res, _ns, n in log[start.get(ident, 0) :])
        }

    def close(self) -> None:
        for ctrl in self.ctrls.values():
            ctrl.close_collectors()


@pytest.fixture
def fleet() -> Any:
    f = Fleet()
    yield f
    f.close()


def test_three_controllers_split_the_targets_and_a_stopped_one_s_targets_are_taken_over(fleet: Fleet) -> None:
    fleet.run(20)  # a starts a moment first and takes every bucket, then shares them out
    held = {i: fleet.ctrls[i].elector.held() for i in ("a", "b", "c")}
    assert sorted(b for bs in held.values() for b in bs) == list(range(BUCKETS)), held
    assert all(len(h) == 2 for h in held.values()), held  # 6 buckets, 3 replicas: 2 each
    fleet.add_targets()
    fleet.run(30)
    assert {i: fleet.ctrls[i].elector.held() for i in ("a", "b", "c")} == held
    creates = [c for c in fleet.fake.writes(SCALEDOBJECTS) if c.verb == "create"]
    assert sorted(c.name for c in creates) == HPA_TARGETS  # each exactly once
    for name in HPA_TARGETS:
        assert fleet.writers(name) == {fleet.holder(target_key("default", name))}, name
    for name in KPA_TARGETS:  # scaled 1 → 2 by the holder of its bucket alone
        obj = fleet.fake.obj(DEPLOYMENTS, "default", name)
        assert obj is not None and obj["spec"]["replicas"] == 2, name
        assert fleet.writers(name) == {fleet.holder(target_key("default", name))}, name
    assert fleet.ctrls["a"].metrics.buckets_held._value.get() == len(held["a"])

    # c stops (no release: a crash). Its buckets expire and move to a and b.
    fleet.alive.discard("c")
    mark = {i: len(log) for i, log in fleet.writes.items()}
    fleet.run(40)
    for i in ("a", "b"):
        fleet.ctrls[i].step_informers()
    assert not fleet.ctrls["c"].elector.held()
    moved_hpa = [n for n in HPA_TARGETS if bucket_of(target_key("default", n), BUCKETS) in held["c"]]
    moved_kpa = [n for n in KPA_TARGETS if bucket_of(target_key("default", n), BUCKETS) in held["c"]]
    assert moved_hpa and moved_kpa
    assert all(fleet.holder(target_key("default", n)) in {"a", "b"} for n in moved_hpa)
    assert fleet.writers(moved_hpa[0], mark) == set()  # the takeover re-sync writes nothing new

    # A change to a moved target is reconciled by its new owner; nothing is orphaned.
    wl = fleet.fake.obj(DEPLOYMENTS, "default", moved_hpa[0])
    assert wl is not None
    wl["metadata"]["annotations"][METRIC_TARGET] = "55"
    fleet.fake.put(DEPLOYMENTS, wl)
    fleet.load.values[RevisionKey("default", moved_kpa[0])] = StatTotals(concurrency=280)
    fleet.run(10)
    so = fleet.fake.obj(SCALEDOBJECTS, "default", moved_hpa[0])
    assert so is not None and [t["metadata"]["value"] for t in so["spec"]["triggers"]] == ["55"]
    kpa = fleet.fake.obj(DEPLOYMENTS, "default", moved_kpa[0])
    assert kpa is not None and kpa["spec"]["replicas"] == 4
    new_owner = fleet.holder(target_key("default", moved_hpa[0]))
    assert fleet.writers(moved_hpa[0], mark) == {new_owner}
    assert fleet.writers(moved_kpa[0], mark) == {fleet.holder(target_key("default", moved_kpa[0]))}
    assert "c" not in {fleet.holder(target_key("default", n)) for n in HPA_TARGETS + KPA_TARGETS}
