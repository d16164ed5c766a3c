"""CA rotation with two replicas on the real API server, with pods created all the way through (issue 16).

The chart is installed with helm (its Service, ServiceAccount, RBAC and webhook configurations); two
replicas of `knscale serve --in-cluster` (incluster_webhook.py) sit behind the chart's Service, one
EndpointSlice each, and manage the Secret and caBundles themselves, as in a cluster. The Secret is
seeded with a CA that enters its last 30 days LEAD_S seconds later, so the replicas start the rotation
by themselves (webhook/carotation.py), on their own clock, while a client creates the seed's pod
(dry run) back to back through the API server and a monitor checks that the caBundle trusts the
leaf each replica serves (rotation_probe.py). Every create must succeed and come back injected.

The negative control replaces CA and leaf in one step (the Secret and the caBundle hold only the new
CA) while the replicas still serve the old leaf: creates fail and the monitor sees untrusted leaves,
so the harness can see what the three-step rotation prevents.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, Toolchain, running_control_plane, wait_until
from cryptography import x509
from helm_release import CHART, NAMESPACE, helm
from incluster_webhook import (
    SECRET,
    SERVICE,
    InClusterWebhook,
    apply_endpoint_slices,
    config_file_from_chart,
)
from rotation_probe import AdminApi, Traffic, TrustMonitor, probe_pod

from certs.pki import CertBundle, issue_serving_cert, new_bundle, new_ca, subject_names
from webhook.certmanager import secret_data

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

LEAD_S = 75  # seconds until the seeded CA is within 30 days of its expiry
CHECK_INTERVAL_S = 3  # --cert-check-interval: the grace is two of these plus the 0.5 s poll
EXPIRING_CN = "knscale-webhook-ca-expiring"
NAMES = subject_names(service=SERVICE, namespace=NAMESPACE, local=False)
PODS = "rotation-pods"


@pytest.fixture(scope="module")
def cluster(toolchain: Toolchain) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(toolchain) as cp:
            cp.create_namespace(NAMESPACE)
            helm(cp, "install", "knscale", str(CHART), "--namespace", NAMESPACE)
            cp.create_namespace(PODS)
            yield cp
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)


def _write_secret(cp: ControlPlane, bundle: CertBundle) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": secret_data(bundle),
    }
    cp.kubectl("apply", "-f", "-", input=json.dumps(body))


def _replicas(cp: ControlPlane, prefix: str, interval: int) -> list[InClusterWebhook]:
    config = config_file_from_chart(cp, cp.root)
    args = [f"--cert-check-interval={interval}", "--cert-poll-interval=0.5"]
    hooks = [InClusterWebhook(cp, f"{prefix}-{i}", config, args) for i in "ab"]
    for hook in hooks:
        hook.start()
    cp.kubectl("delete", "endpointslice", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={SERVICE}")
    apply_endpoint_slices(cp, {h.name: h.port for h in hooks})
    api = AdminApi(cp)
    body = probe_pod()
    streak = [0]

    def answered() -> bool:  # ten in a row: the API server no longer dials an endpoint that is gone
        ok = api.request("POST", f"/api/v1/namespaces/{PODS}/pods?dryRun=All", body)[0] == 201
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 10

    wait_until(
        answered,
        timeout=90,
        what="the API server to reach both replicas through the chart's Service",
        on_timeout=lambda: "\n".join(h.tail() for h in hooks),
    )
    api.close()
    return hooks


def _mutations(hook: InClusterWebhook) -> float:
    return hook.metric("knscale_webhook_requests_total", endpoint="mutate", outcome="patched")


def _secret_cas(api: AdminApi) -> list[x509.Certificate]:
    _, _, obj = api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}")
    return x509.load_pem_x509_certificates(base64.b64decode(obj["data"]["ca.crt"]))


def _transitions(monitor: TrustMonitor, start: float) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for s in monitor.samples:
        if not out or out[-1][0] != s.phase:
            out.append((s.phase, round(s.at - start, 1)))
    return out


def test_two_replicas_rotate_the_ca_without_one_failed_admission(cluster: ControlPlane) -> None:
    now = datetime.now(UTC)
    ca_cert, ca_key = new_ca(now, common_name=EXPIRING_CN, validity=timedelta(days=30, seconds=LEAD_S))
    cert, key = issue_serving_cert(ca_cert, ca_key, NAMES, now)
    _write_secret(cluster, CertBundle(ca_cert, ca_key, cert, key))
    deadline = time.monotonic() + LEAD_S
    hooks = _replicas(cluster, "rot", CHECK_INTERVAL_S)
    before = {h.name: _mutations(h) for h in hooks}
    creator, monitor = Traffic(cluster, PODS), TrustMonitor(cluster, hooks)
    creator.start()
    monitor.start()
    started = time.monotonic()
    assert started < deadline, "the replicas took longer to start than the CA's lead: raise LEAD_S"
    api = AdminApi(cluster)

    def rotated() -> bool:
        cas = _secret_cas(api)
        latest = {s.replica: s for s in monitor.samples[-2 * len(hooks) :]}
        new_leaves = len(latest) == len(hooks) and all(
            s.phase == "none" and f"CN={EXPIRING_CN}" not in s.leaf_issuer for s in latest.values()
        )
        return len(cas) == 1 and EXPIRING_CN not in cas[0].subject.rfc4514_string() and new_leaves

    try:
        wait_until(rotated, timeout=LEAD_S + 180, what="the CA rotation to finish", interval=1.0)
        time.sleep(2 * CHECK_INTERVAL_S)  # and traffic goes on after it
    finally:
        creator.stop()
        monitor.halt.set()
        monitor.join(timeout=60)
        api.close()
    elapsed = time.monotonic() - started
    served = {h.name: _mutations(h) - before[h.name] for h in hooks}
    print(
        f"\nCA rotation: {len(creator.results)} dry-run creates in {elapsed:.0f} s, "
        f"{len(creator.failures)} failed; per replica {served}; {len(monitor.samples)} trust samples, "
        f"{len(monitor.untrusted)} untrusted; phases (s after traffic started): "
        f"{_transitions(monitor, started)}"
    )
    assert creator.failures == [], creator.failures[:5]
    assert monitor.untrusted == [], monitor.untrusted[:5]
    # The whole rotation ran under traffic: from before step 1 to after step 3, each step seen.
    assert monitor.phases() == ["none", "trusting", "switched", "none"], monitor.phases()
    assert all(count > 0 for count in served.values()), served  # both replicas answered
    for hook in hooks:
        issuers = [s.leaf_issuer for s in monitor.samples if s.replica == hook.name]
        assert f"CN={EXPIRING_CN}" in issuers[0] and f"CN={EXPIRING_CN}" not in issuers[-1], hook.name
    for hook in hooks:
        hook.stop()


def _set_ca_bundles(cluster: ControlPlane, ca_pem: bytes) -> None:
    value = base64.b64encode(ca_pem).decode("ascii")
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        hooks: list[dict[str, Any]] = cluster.get(kind, SERVICE)["webhooks"]
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": value}
            for i in range(len(hooks))
        ]
        cluster.kubectl("patch", kind, SERVICE, "--type=json", "-p", json.dumps(ops))


def test_negative_control_one_step_rotation_fails_admissions(cluster: ControlPlane) -> None:
    """CA and leaf replaced at once, caBundle set to the new CA only, while both replicas (checking
    the Secret only every 600 s) still serve the old leaf: the harness must see failures."""
    hooks = _replicas(cluster, "onestep", 600)
    creator, monitor = Traffic(cluster, PODS), TrustMonitor(cluster, hooks)
    creator.start()
    monitor.start()
    try:
        wait_until(lambda: len(creator.results) >= 5, timeout=60, what="traffic before the one-step rotation")
        fresh = new_bundle(NAMES, datetime.now(UTC))
        switched = time.monotonic()  # an answer after this may already meet the new caBundle
        _write_secret(cluster, fresh)
        _set_ca_bundles(cluster, fresh.ca_cert_pem)
        wait_until(
            lambda: sum(1 for a in creator.failures if a.at > switched) >= 5,
            timeout=60,
            what="failed admissions after the one-step rotation",
        )
    finally:
        creator.stop()
        monitor.halt.set()
        monitor.join(timeout=60)
        for hook in hooks:
            hook.stop()
    early = [a for a in creator.results if a.at < switched]
    late = [a for a in creator.results if a.at > switched]
    print(
        f"\none-step rotation: {len(early)} creates before, all ok: {all(a.ok for a in early)}; "
        f"{len(late)} after, {sum(not a.ok for a in late)} failed; "
        f"{len(monitor.untrusted)} of {len(monitor.samples)} trust samples untrusted"
    )
    assert all(a.ok for a in early), [a for a in early if not a.ok][:3]
    assert any("x509" in a.message or "certificate" in a.message for a in creator.failures), creator.failures[
        :3
    ]
    assert monitor.untrusted
