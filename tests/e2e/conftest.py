"""Session fixtures for the e2e suite: one real control plane per test session.

``control_plane``: etcd + kube-apiserver with the Knative Serving and KEDA CRDs installed.
``workloads``: the same control plane plus kube-controller-manager, kube-scheduler and kwok with two
fake nodes (Deployments get Ready pods, ownerReferences are garbage-collected).
``webhook``: `knscale serve` registered with the control plane (tests/e2e/knscale_procs.py).

Both are torn down by finalizers registered *before* anything starts, so a failing test, a failing
startup or a pytest-timeout still leaves no process, port or temp directory behind
(test_control_plane.py::test_teardown_after_failing_test_leaks_nothing checks this).
The binaries must be built first: ``make e2e`` or ``bash tests/e2e/build.sh``.

``netguard`` (session, autouse): the suite refuses to start a control plane outside tests/e2e/netns.sh's
loopback-only network namespace, and samples every socket and process of the suite for the whole session
(tests/e2e/netguard.py); test_zz_network_isolation.py asserts on what it saw.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import ControlPlane, ControlPlaneError, Toolchain, running_control_plane
from knative_cp import KnativeServing
from knscale_procs import Webhook
from netguard import NetSampler, isolation_problem


@pytest.fixture(scope="session", autouse=True)
def netguard() -> Iterator[NetSampler]:
    problem = isolation_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    sampler = NetSampler()
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


@pytest.fixture(scope="session")
def toolchain(netguard: NetSampler) -> Toolchain:
    try:
        return Toolchain.locate()
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def control_plane(toolchain: Toolchain) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(toolchain) as cp:
            yield cp
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def workloads(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    try:
        try:
            control_plane.start_workloads()
        except ControlPlaneError as exc:
            pytest.fail(f"controller-manager/scheduler/kwok did not start: {exc}", pytrace=False)
        yield control_plane
    finally:
        control_plane.stop_workloads()


@pytest.fixture(scope="session")
def webhook(control_plane: ControlPlane) -> Iterator[Webhook]:
    """`knscale serve` on a loopback port with `knscale certs` certificates, registered with
    `knscale register --apply`; unregistered and stopped at the end. Scenario 6 kills and
    restarts it, and rotates its certificate, so it must leave it running and registered."""
    hook = Webhook(control_plane)
    try:
        try:
            hook.start()
            hook.register()
        except ControlPlaneError as exc:
            pytest.fail(f"knscale webhook did not start: {exc}\n{hook.tail()}", pytrace=False)
        yield hook
    finally:
        try:
            if control_plane.component("kube-apiserver").alive():
                hook.unregister()
        finally:
            hook.stop()


@pytest.fixture(scope="module")
def knative(workloads: ControlPlane, webhook: Webhook) -> Iterator[KnativeServing]:
    """Knative Serving's controller and webhook (knative_cp.py) for one test module: stopped, and its
    webhook configurations removed, when the module ends, so other modules' Knative objects (created
    directly, standing in for Knative) never meet Knative's controller or webhook."""
    kn = KnativeServing(workloads)
    try:
        try:
            kn.install()
            kn.start()
        except ControlPlaneError as exc:
            pytest.fail(f"Knative Serving did not start: {exc}\n{kn.tails()}", pytrace=False)
        yield kn
    finally:
        kn.stop()
