"""Safety: no packet of the e2e suite leaves the machine (runs last: file names sort after the scenarios).

The suite runs inside tests/e2e/netns.sh's network namespace (only ``lo``); netguard.NetSampler watched
every socket of that namespace and every process pytest started while the scenarios ran. A socket to a
non-loopback address that is not one of the namespace's own, or a suite process in the host network
namespace, fails this test.
"""

from __future__ import annotations

import ipaddress
import os

import pytest
from cluster import ControlPlane
from netguard import (
    HOST_NETNS_ENV,
    NetSampler,
    _decode,
    current_netns,
    dial_off_machine,
    interfaces,
    isolation_problem,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def test_suite_runs_in_a_loopback_only_namespace() -> None:
    assert isolation_problem() is None, isolation_problem()
    assert current_netns() != os.environ[HOST_NETNS_ENV]
    assert interfaces() == ["lo"]


def test_nothing_off_the_machine_is_reachable() -> None:
    outcome = dial_off_machine()
    assert "connected" not in outcome and "resolved" not in outcome, outcome
    assert "errno=101" in outcome, outcome  # ENETUNREACH: there is no route at all, not a timeout


def test_no_suite_socket_left_the_namespace(netguard: NetSampler, workloads: ControlPlane) -> None:
    # `workloads`: after the scenarios it is the running session cluster; alone, this starts one, so
    # there is always something to sample.
    netguard.sample()  # one more, now
    assert netguard.samples >= 2, "the sampler did not run"
    assert netguard.sockets_seen > 0 and netguard.processes_seen, "the sampler saw nothing: it proves nothing"
    assert not netguard.violations, "\n".join(sorted(set(netguard.violations))[:50])
    # Every peer any socket had is loopback or an address of this namespace.
    peers = {ipaddress.ip_address(r) for r in netguard.remotes_seen}
    assert all(netguard.allowed(p) for p in peers), peers


def test_the_sampler_would_see_an_off_machine_peer(netguard: NetSampler) -> None:
    """The check itself: /proc/net/tcp{,6} rows decode to the right addresses, and a peer off the
    machine is not allowed (a socket to one cannot exist here, so the decoder is fed rows)."""
    assert _decode("0100007F:1F90") == (ipaddress.ip_address("127.0.0.1"), 8080)
    assert _decode("0100FA0A:01BB") == (ipaddress.ip_address("10.250.0.1"), 443)
    mapped = "0000000000000000FFFF00000100C0C0:0050"  # ::ffff:192.192.0.1 as the kernel prints it
    assert _decode(mapped) == (ipaddress.ip_address("192.192.0.1"), 80)
    assert _decode("00000000000000000000000001000000:0016")[0] == ipaddress.ip_address("::1")
    for peer in ("192.0.2.1", "8.8.8.8", "2001:db8::1", "10.250.0.2"):
        assert not netguard.allowed(ipaddress.ip_address(peer)), peer
    for peer in ("127.0.0.1", "::1", "10.250.0.1", "0.0.0.0"):
        assert netguard.allowed(ipaddress.ip_address(peer)), peer
