"""Session fixtures for the e2e suite: one real control plane per test session.

``control_plane``: etcd + kube-apiserver with the Knative Serving and KEDA CRDs installed.
``workloads``: the same control plane plus kube-controller-manager, kube-scheduler and kwok with two
fake nodes (Deployments get Ready pods, ownerReferences are garbage-collected).

Both are torn down by finalizers registered *before* anything starts, so a failing test, a failing
startup or a pytest-timeout still leaves no process, port or temp directory behind
(test_control_plane.py::test_teardown_after_failing_test_leaks_nothing checks this).
The binaries must be built first: ``make e2e`` or ``bash tests/e2e/build.sh``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import ControlPlane, ControlPlaneError, Toolchain


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
