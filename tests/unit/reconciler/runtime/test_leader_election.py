"""Leader election on a Lease: takeover timing (fake clock), races, fencing, graceful release,
and a failover of the whole controller without duplicate writes."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.controller import build_controller

from kubeapi.resources import DEPLOYMENTS, HPAS, LEASES, PODAUTOSCALERS, SCALEDOBJECTS, SERVERLESSSERVICES
from kubeapi.testing import FakeKube, hpa, pod_autoscaler, sks_ready_status, workload
from reconciler.runtime.clock import FakeClock
from reconciler.runtime.leader import LeaderElector, LeaseConfig
from reconciler.runtime.ports import Fenced

NS, NAME = "knscale-system", "knscale-reconciler"
HPA_CLASS = "hpa.autoscaling.knative.dev"


def cfg(identity: str) -> LeaseConfig:
    return LeaseConfig(NAME, NS, identity, lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


def lease(fake: FakeKube) -> dict[str, Any]:
    obj = fake.obj(LEASES, NS, NAME)
    assert obj is not None
    return dict(obj["spec"])


def test_first_candidate_creates_the_lease() -> None:
    fake, clock = FakeKube(), FakeClock()
    a = LeaderElector(fake, cfg("a"), clock)
    assert a.try_acquire_or_renew() and a.is_leader()
    spec = lease(fake)
    assert (
        spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    )
    assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]  # MicroTime


def test_standby_takes_over_exactly_one_lease_duration_after_the_last_change_it_saw() -> None:
    fake, clock = FakeKube(), FakeClock()
    a, b = LeaderElector(fake, cfg("a"), clock), LeaderElector(fake, cfg("b"), clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b observes a's record now (t=0)
    clock.advance(8)
    assert a.try_acquire_or_renew()  # a renews at t=8: b must wait until 8 + 15
    clock.advance(0.5)
    assert not b.try_acquire_or_renew()  # b sees the renewal at t=8.5
    clock.advance(14.75)  # t=23.25 < 8.5 + 15
    assert not b.try_acquire_or_renew()
    assert not a.is_leader()  # a has not renewed for 15.25 s > renew deadline: fenced already
    clock.advance(0.25)  # t=23.5 = 8.5 + 15
    assert b.try_acquire_or_renew() and b.is_leader()
    spec = lease(fake)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


def test_leader_stops_writing_when_renewals_fail_before_a_standby_can_take_over() -> None:
    fake, clock = FakeKube(), FakeClock()
    a = LeaderElector(fake, cfg("a"), clock)
    assert a.try_acquire_or_renew()
    fake.fail_next(status=503, times=100)  # the API server is unreachable for a's renewals
    for _ in range(4):
        clock.advance(2)
        a.try_acquire_or_renew()
    assert a.is_leader()  # t=8 < renew deadline 10
    clock.advance(2)
    a.try_acquire_or_renew()
    assert not a.is_leader()  # t=10: fenced, 5 s before any standby may take the lease


def test_guarded_writes_are_refused_once_fenced() -> None:
    fake, clock = FakeKube(), FakeClock()
    ctrl = build_controller(fake, clock, lease=cfg("a"))
    assert ctrl.elector is not None and ctrl.elector.run_round()
    ctrl.writer.create(LEASES, NS, {"metadata": {"name": "probe"}}, why="test")  # allowed while leading
    clock.advance(10)
    with pytest.raises(Fenced):
        ctrl.writer.create(LEASES, NS, {"metadata": {"name": "probe-2"}}, why="test")
    assert fake.obj(LEASES, NS, "probe-2") is None


class _Racing:
    """Delegates to a FakeKube, but lets a rival act between our read and our write."""

    def __init__(self, fake: FakeKube, rival: LeaderElector) -> None:
        self._fake, self._rival = fake, rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, name)

    def replace(self, *args: Any, **kwargs: Any) -> Any:
        self._rival.try_acquire_or_renew()
        return self._fake.replace(*args, **kwargs)


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win() -> None:
    fake, clock = FakeKube(), FakeClock()
    old = LeaderElector(fake, cfg("old"), clock)
    assert old.try_acquire_or_renew()
    a = LeaderElector(fake, cfg("a"), clock)
    b = LeaderElector(_Racing(fake, a), cfg("b"), clock)  # type: ignore[arg-type]
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()  # both observe old's record at t=0
    clock.advance(15)
    won_b = b.try_acquire_or_renew()  # a updates first (inside b's round); b's update is stale → 409
    assert a.is_leader() and not won_b and not b.is_leader()
    assert lease(fake)["holderIdentity"] == "a"


def test_graceful_release_lets_a_standby_take_over_at_once() -> None:
    fake, clock = FakeKube(), FakeClock()
    a, b = LeaderElector(fake, cfg("a"), clock), LeaderElector(fake, cfg("b"), clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    spec = lease(fake)
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert not a.is_leader()
    clock.advance(0.1)
    assert b.try_acquire_or_renew()  # no need to wait out the 15 s lease
    assert lease(fake)["holderIdentity"] == "b"
    assert not a.release()  # no longer ours: nothing to do


def test_lease_settings_are_checked_together() -> None:
    problems = LeaseConfig("l", "ns", "", lease_duration=5, renew_deadline=10, retry_period=9).problems()
    assert len(problems) == 3
    assert any("--lease-duration" in p for p in problems)
    assert any("1.2 × --retry-period" in p for p in problems)


def test_failover_resumes_without_duplicate_writes() -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(PODAUTOSCALERS, pod_autoscaler("hello-00001"))
    fake.seed(HPAS, hpa("hello-00001", desired=1, current=1))
    a = build_controller(fake, clock, lease=cfg("a"), identity="a")
    b = build_controller(fake, clock, lease=cfg("b"), identity="b")
    assert a.elector is not None and b.elector is not None
    for ctrl in (a, b):
        ctrl.step_informers()
    assert a.elector.run_round()
    assert not b.elector.run_round()
    for _ in range(3):
        clock.advance(0.5)
        for ctrl in (a, b):
            ctrl.step_informers()
            if ctrl.is_leader():
                ctrl.step()
    fake.set_status(SERVERLESSSERVICES, "default", "hello-00001", sks_ready_status("hello-00001"))
    for _ in range(3):
        clock.advance(0.5)
        for ctrl in (a, b):
            ctrl.step_informers()
            if ctrl.is_leader():
                ctrl.step()
    assert fake.obj(PODAUTOSCALERS, "default", "hello-00001")["status"]["conditions"]
    writes_before = len(fake.writes())
    by_a = [c for c in fake.writes() if c.resource != "leases.coordination.k8s.io"]

    # a shuts down gracefully; b takes over and re-syncs everything it knows.
    a._shutdown()
    clock.advance(0.1)
    assert b.elector.run_round()
    b.step_informers()
    b.step()
    assert b.queue.failures == {}
    after = [c for c in fake.writes()[writes_before:] if c.resource != "leases.coordination.k8s.io"]
    assert after == [], [(c.verb, c.resource, c.name) for c in after]
    assert len([c for c in by_a if c.resource == "scaledobjects.keda.sh" and c.verb == "create"]) == 1
    assert len(fake.objects(SCALEDOBJECTS)) == 1


def test_keys_dropped_while_ownership_lapsed_are_resynced_when_renewal_succeeds() -> None:
    """A renewal stuck past the renew deadline ends ownership without the Lease being lost; the
    keys synced meanwhile are skipped. When the next round renews it, that counts as a gained
    bucket, so every key is resynced at once, not at the next periodic resync (found by e2e
    scenario 9, slow API responses under the fault proxy; kept through the sharding merge)."""
    fake, clock = FakeKube(), FakeClock()
    names = ["web-0", "web-1", "web-2"]
    for name in names:
        fake.seed(DEPLOYMENTS, workload(name, annotations={"autoscaling.knative.dev/class": HPA_CLASS}))
    ctrl = build_controller(fake, clock, lease=cfg("a"))
    assert ctrl.elector is not None and ctrl.elector.run_round()
    ctrl.step_informers()  # three work keys, due now
    clock.advance(10)  # the renewal did not come back in time: not owned now, still holding the Lease
    ctrl.step()  # every key skipped; the periodic resync is now a full period away
    assert [n for n in names if fake.obj(SCALEDOBJECTS, "default", n) is not None] == []
    assert ctrl.elector.run_round() and ctrl.is_leader()  # renewed: leading again
    ctrl.step()
    assert [n for n in names if fake.obj(SCALEDOBJECTS, "default", n) is not None] == names
