"""Session fixtures for the e2e suite: one real control plane per test session.

``control_plane``: etcd + kube-apiserver with the Knative Serving and KEDA CRDs installed.
``workloads``: the same control plane plus kube-controller-manager, kube-scheduler and kwok with two
fake nodes (Deployments get Ready pods, ownerReferences are garbage-collected).
``webhook``: `knscale serve` registered with the control plane (tests/e2e/knscale_procs.py).

Both are torn down by finalizers registered *before* anything starts, so a failing test, a failing
startup or a pytest-timeout still leaves no process, port or temp directory behind
(test_control_plane.py::test_teardown_after_failing_test_leaks_nothing checks this).
The binaries must be built first: ``make e2e`` or ``bash tests/e2e/build.sh``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import ControlPlane, ControlPlaneError, Toolchain
from knscale_procs import Webhook


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    try:
        return Toolchain.locate()
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def control_plane(toolchain: Toolchain) -> Iterator[ControlPlane]:
    cp = ControlPlane(toolchain)
    try:
        try:
            cp.start()
        except ControlPlaneError as exc:
            pytest.fail(f"control plane did not start: {exc}", pytrace=False)
        yield cp
    finally:
        cp.stop()


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
