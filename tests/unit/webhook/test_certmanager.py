"""webhook/certmanager.py against the in-memory API server of kubeapi.testing (resourceVersions, 409s)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from certs.files import CertPaths, read_bundle
from certs.pki import assess, ca_bundle, subject_names
from kubeapi.apply import apply, get_or_none
from kubeapi.client import KubeApi
from kubeapi.errors import Conflict
from kubeapi.resources import MUTATING_WEBHOOKS, SECRETS, VALIDATING_WEBHOOKS
from kubeapi.testing import FakeKube
from webhook.certmanager import (
    CertManager,
    CertManagerSettings,
    bundle_from_secret,
    secret_data,
)
from webhook.registration import ServiceTarget, keep_live_ca_bundle, render_all

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NS = "knscale-system"
NAMES = subject_names(service="knscale-webhook", namespace=NS, local=False)


# Webhook kinds by the fake's resource key, so write logs read as (verb, kind, name).
_KINDS = {f"{r.plural}.{r.group}": r.kind for r in (SECRETS, MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS)}


def _writes(api: FakeKube) -> list[tuple[str, str, str | None]]:
    """The writes that took effect (a write refused with 409 changed nothing)."""
    return [(c.verb, _KINDS[c.resource], c.name) for c in api.writes() if c.error is None]


def _installed(api: FakeKube) -> None:
    mutating, validating = render_all(ServiceTarget(), own_namespace=NS)
    api.put(MUTATING_WEBHOOKS, mutating)
    api.put(VALIDATING_WEBHOOKS, validating)


def _manager(api: KubeApi, tmp_path: Path, name: str = "a") -> CertManager:
    settings = CertManagerSettings(namespace=NS, service_name="knscale-webhook", cert_dir=tmp_path / name)
    return CertManager(api, settings, NAMES)


def _ca_bundles(api: FakeKube) -> list[str | None]:
    out = []
    for kind in (MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS):
        obj = api.obj(kind, None, "knscale-webhook")
        assert obj is not None
        out += [w["clientConfig"].get("caBundle") for w in obj["webhooks"]]
    return out


def _secret(api: FakeKube) -> dict[str, Any]:
    secret = api.obj(SECRETS, NS, "knscale-webhook-certs")
    assert secret is not None
    return secret


def test_first_start_creates_secret_files_and_ca_bundles(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    report = _manager(api, tmp_path).reconcile(NOW)
    assert report.secret == "created" and report.files_changed and report.in_sync
    secret = _secret(api)
    assert secret["type"] == "kubernetes.io/tls"
    assert sorted(secret["data"]) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    bundle = bundle_from_secret(secret)
    assert assess(bundle, NAMES, NOW).ok
    assert _ca_bundles(api) == [ca_bundle(bundle.ca_cert_pem)] * 2
    # The serving files match the Secret; the CA key is not written to the pod's disk.
    on_disk = read_bundle(CertPaths(tmp_path / "a"))
    assert on_disk is not None
    assert (on_disk.cert_pem, on_disk.key_pem) == (bundle.cert_pem, bundle.key_pem)
    assert on_disk.ca_key_pem is None


def test_steady_state_writes_nothing(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    manager = _manager(api, tmp_path)
    manager.reconcile(NOW)
    api.calls.clear()
    report = manager.reconcile(NOW + timedelta(hours=1))
    assert report.secret == "kept" and not report.files_changed
    assert set(report.configurations.values()) == {"in sync"}
    assert _writes(api) == []


def test_second_replica_uses_the_same_secret(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    _manager(api, tmp_path, "a").reconcile(NOW)
    first = _secret(api)["data"]
    report = _manager(api, tmp_path, "b").reconcile(NOW)
    assert report.secret == "kept"
    assert _secret(api)["data"] == first
    assert (tmp_path / "a" / "tls.crt").read_bytes() == (tmp_path / "b" / "tls.crt").read_bytes()


def test_lost_create_race_adopts_the_winners_secret(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    winner = _manager(api, tmp_path, "winner")

    def other_replica_wins(fake: FakeKube) -> None:
        winner.reconcile(NOW)

    api.before_write.append(other_replica_wins)
    report = _manager(api, tmp_path, "loser").reconcile(NOW)
    assert report.secret == "kept"
    assert (tmp_path / "loser" / "tls.crt").read_bytes() == (tmp_path / "winner" / "tls.crt").read_bytes()
    assert [w for w in _writes(api) if w[1] == "Secret"] == [("create", "Secret", "knscale-webhook-certs")]


def test_renewal_keeps_the_ca_so_ca_bundles_do_not_change(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    manager = _manager(api, tmp_path)
    manager.reconcile(NOW)
    before = bundle_from_secret(_secret(api))
    api.calls.clear()
    later = NOW + timedelta(days=61)  # inside the 30-day renewal window of a 90-day leaf
    report = manager.reconcile(later)
    assert report.secret == "renewed" and report.files_changed
    after = bundle_from_secret(_secret(api))
    assert after.ca_cert_pem == before.ca_cert_pem and after.cert_pem != before.cert_pem
    assert assess(after, NAMES, later).ok
    assert _writes(api) == [("replace", "Secret", "knscale-webhook-certs")]  # no webhook writes
    assert (tmp_path / "a" / "tls.crt").read_bytes() == after.cert_pem


def test_concurrent_renewal_is_judged_again_not_overwritten(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    a, b = _manager(api, tmp_path, "a"), _manager(api, tmp_path, "b")
    a.reconcile(NOW)
    later = NOW + timedelta(days=61)
    api.before_write.append(lambda fake: a.reconcile(later))  # a renews while b is deciding
    report = b.reconcile(later)
    assert report.secret == "kept"  # b's stale write got a 409; it re-read a's fresh leaf
    assert (tmp_path / "a" / "tls.crt").read_bytes() == (tmp_path / "b" / "tls.crt").read_bytes()


def test_names_changed_renews_leaf(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    _manager(api, tmp_path).reconcile(NOW)
    settings = CertManagerSettings(namespace=NS, service_name="knscale-webhook", cert_dir=tmp_path / "w")
    wider = subject_names(
        service="knscale-webhook", namespace=NS, dns_names=["hook.example.com"], local=False
    )
    report = CertManager(api, settings, wider).reconcile(NOW)
    assert report.secret == "renewed"
    assert "hook.example.com" in report.reasons[0]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"ca.crt": "!!!", "tls.crt": "eA==", "tls.key": "eA=="},
        {"ca.crt": base64.b64encode(b"junk").decode(), "tls.crt": "eA==", "tls.key": "eA=="},
    ],
)
def test_corrupt_secret_is_regenerated(tmp_path: Path, data: dict[str, str]) -> None:
    api = FakeKube()
    _installed(api)
    api.put(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "knscale-webhook-certs", "namespace": NS},
            "data": data,
        },
        NS,
    )
    report = _manager(api, tmp_path).reconcile(NOW)
    assert report.secret == "regenerated"
    assert assess(bundle_from_secret(_secret(api)), NAMES, NOW).ok
    assert _ca_bundles(api) == [report.ca_bundle] * 2


def test_missing_configurations_are_reported_not_fatal(tmp_path: Path) -> None:
    api = FakeKube()
    report = _manager(api, tmp_path).reconcile(NOW)
    assert report.configurations == {
        "MutatingWebhookConfiguration/knscale-webhook": "missing",
        "ValidatingWebhookConfiguration/knscale-webhook": "missing",
    }
    assert not report.in_sync and report.secret == "created"


def test_drifted_ca_bundle_is_put_back(tmp_path: Path) -> None:
    api = FakeKube()
    _installed(api)
    manager = _manager(api, tmp_path)
    report = manager.reconcile(NOW)
    # Someone re-applies an old copy with a stale caBundle on the validating webhook.
    stale = api.obj(VALIDATING_WEBHOOKS, None, "knscale-webhook")
    assert stale is not None
    stale["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(b"old").decode()
    api.put(VALIDATING_WEBHOOKS, stale)
    again = manager.reconcile(NOW)
    assert again.configurations["ValidatingWebhookConfiguration/knscale-webhook"] == "updated"
    assert again.configurations["MutatingWebhookConfiguration/knscale-webhook"] == "in sync"
    assert _ca_bundles(api) == [report.ca_bundle] * 2
    # Everything else in the configuration is left as it was.
    live = api.obj(VALIDATING_WEBHOOKS, None, "knscale-webhook")
    assert live is not None
    assert live["webhooks"][0]["rules"] == render_all(ServiceTarget())[1]["webhooks"][0]["rules"]


def test_secret_data_round_trip(tmp_path: Path) -> None:
    api = FakeKube()
    _manager(api, tmp_path).reconcile(NOW)
    bundle = bundle_from_secret(_secret(api))
    assert bundle_from_secret({"data": secret_data(bundle)}) == bundle


def test_apply_creates_then_replaces_keeping_the_live_ca_bundle() -> None:
    api = FakeKube()
    mutating = render_all(ServiceTarget())[0]
    assert apply(api, mutating) == "created"
    live = api.obj(MUTATING_WEBHOOKS, None, "knscale-webhook")
    assert live is not None
    live["webhooks"][0]["clientConfig"]["caBundle"] = "Q0E="
    api.put(MUTATING_WEBHOOKS, live)
    assert apply(api, mutating, keep=keep_live_ca_bundle) == "replaced"
    after = api.obj(MUTATING_WEBHOOKS, None, "knscale-webhook")
    assert after is not None and after["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E="


# --- the real adapter's request/response mapping, with the HTTP layer stubbed ----------------


class _Raw:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = body
        self.headers: dict[str, str] = {}  # urllib3's responses carry them (Retry-After is read)

    def read(self, limit: int) -> bytes:
        return self._body[:limit]

    def release_conn(self) -> None:
        pass


class _StubClient:
    def __init__(self, replies: list[tuple[int, bytes]]) -> None:
        self.replies = replies
        self.requests: list[tuple[str, str, list[tuple[str, str]], Any]] = []

    def param_serialize(self, **kw: Any) -> tuple[str, str, dict[str, str], Any, Any]:
        self.requests.append((kw["method"], kw["resource_path"], kw["query_params"], kw["body"]))
        return kw["method"], kw["resource_path"], kw["header_params"], kw["body"], None

    def call_api(self, *args: Any, **kw: Any) -> Any:
        status, body = self.replies.pop(0)
        return type("R", (), {"response": _Raw(status, body)})()


def test_kubernetes_api_paths_and_error_mapping() -> None:
    from kubeapi.client import KubernetesApi
    from kubeapi.errors import ApiError

    stub = _StubClient(
        [
            (404, b'{"kind":"Status","reason":"NotFound","message":"secrets \\"x\\" not found"}'),
            (201, b'{"metadata":{"name":"x"}}'),
            (409, b'{"kind":"Status","reason":"Conflict","message":"modified"}'),
            (403, b'{"kind":"Status","reason":"Forbidden","message":"no"}'),
            (404, b""),
        ]
    )
    api = KubernetesApi(stub)
    assert get_or_none(api, SECRETS, NS, "x") is None
    assert api.create(SECRETS, NS, {"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}
    with pytest.raises(Conflict, match="modified"):
        api.replace(MUTATING_WEBHOOKS, None, "knscale-webhook", {"metadata": {"name": "knscale-webhook"}})
    with pytest.raises(ApiError, match="403 Forbidden: no"):
        api.get(VALIDATING_WEBHOOKS, None, "knscale-webhook")
    assert api.delete(MUTATING_WEBHOOKS, None, "knscale-webhook") is False
    paths = [(m, p) for m, p, _, _ in stub.requests]
    assert paths == [
        ("GET", "/api/v1/namespaces/knscale-system/secrets/x"),
        ("POST", "/api/v1/namespaces/knscale-system/secrets"),
        ("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/knscale-webhook"),
        ("GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/knscale-webhook"),
        ("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/knscale-webhook"),
    ]
    with pytest.raises(ValueError, match="invalid path segment"):
        SECRETS.path(NS, "../x")


def test_documented_two_step_ca_rotation(tmp_path: Path) -> None:
    from cryptography import x509

    from certs.pki import new_ca

    api = FakeKube()
    _installed(api)
    manager = _manager(api, tmp_path)
    manager.reconcile(NOW)
    old = bundle_from_secret(_secret(api))
    new_ca_cert, new_ca_key = new_ca(NOW)

    # Step 1: trust old + new, still sign with the old key.
    secret = _secret(api)
    secret["data"]["ca.crt"] = base64.b64encode(old.ca_cert_pem + new_ca_cert).decode()
    api.put(SECRETS, secret)
    step1 = manager.reconcile(NOW)
    assert step1.secret == "kept"
    assert base64.b64decode(step1.ca_bundle) == old.ca_cert_pem + new_ca_cert
    assert _ca_bundles(api) == [step1.ca_bundle] * 2

    # Step 2: switch the signing key; the leaf is reissued under the new CA, the bundle stays.
    secret = _secret(api)
    secret["data"]["ca.key"] = base64.b64encode(new_ca_key).decode()
    api.put(SECRETS, secret)
    step2 = manager.reconcile(NOW)
    assert step2.secret == "renewed" and step2.ca_bundle == step1.ca_bundle
    leaf = x509.load_pem_x509_certificate((tmp_path / "a" / "tls.crt").read_bytes())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(new_ca_cert))


# ---- CA rotation in steps (webhook/carotation.py) ------------------------------------------


def _served_leaf_trusted(api: FakeKube, cert_dir: Path) -> bool:
    """What the API server would do on a handshake with this replica: is its leaf issued by a
    CA in the caBundle of every webhook (both configurations)?"""
    served = read_bundle(CertPaths(cert_dir))
    assert served is not None
    leaf = x509.load_pem_x509_certificate(served.cert_pem)
    for bundle_b64 in _ca_bundles(api):
        assert bundle_b64 is not None
        cas = x509.load_pem_x509_certificates(base64.b64decode(bundle_b64))
        if not any(_issued(leaf, ca) for ca in cas):
            return False
    return True


def _issued(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_ca_near_expiry_rotates_in_three_steps_and_no_replica_ever_serves_an_untrusted_leaf(
    tmp_path: Path,
) -> None:
    """Two replicas, each reconciling once per 5-minute interval at its own phase, across a CA
    rotation started 10 days before the CA expires: at every instant — after each single
    reconcile of either replica — both serve a leaf the caBundle trusts; in the end only the new
    CA is trusted and both serve leaves it issued."""
    api = FakeKube()
    _installed(api)
    grace = timedelta(minutes=10)
    replicas = [
        CertManager(
            api,
            CertManagerSettings(
                namespace=NS, service_name="knscale-webhook", cert_dir=tmp_path / n, rotation_grace=grace
            ),
            NAMES,
        )
        for n in ("a", "b")
    ]
    start = NOW
    for r in replicas:
        r.reconcile(start)
    t0 = start + timedelta(days=3650 - 10)  # the CA is now within its 30-day renewal window
    for r in replicas:  # the leaf was renewed as usual before (its CA still outside the window)
        r.reconcile(t0 - timedelta(days=35))
    old_ca = bundle_from_secret(_secret(api)).ca_cert_pem
    actions: list[str] = []
    phases: list[str | None] = []
    for i in range(40):  # 40 rounds of 2.5 minutes: a then b, each every 5 minutes
        replica = replicas[i % 2]
        report = replica.reconcile(t0 + timedelta(minutes=2.5 * i))
        actions.append(report.secret)
        phases.append((_secret(api)["metadata"].get("annotations") or {}).get("knscale.dev/ca-rotation"))
        for r in replicas:
            assert _served_leaf_trusted(api, r.settings.cert_dir), (i, actions, phases)
    assert actions.count("rotating") == 3, actions  # start, switch, finish: each once
    assert phases[-1] is None and "trusting" in phases and "switched" in phases
    final = bundle_from_secret(_secret(api))
    assert final.ca_cert_pem != old_ca and len(x509.load_pem_x509_certificates(final.ca_cert_pem)) == 1
    assert _ca_bundles(api) == [ca_bundle(final.ca_cert_pem)] * 2
    assert carotation_key_gone(api)
    for r in replicas:
        served = read_bundle(CertPaths(r.settings.cert_dir))
        assert served is not None and assess(served, NAMES, t0 + timedelta(hours=2), require_ca_key=False).ok


def carotation_key_gone(api: FakeKube) -> bool:
    return "next-ca.key" not in (_secret(api).get("data") or {})


def test_a_rotation_waits_until_every_configuration_trusts_the_new_ca(tmp_path: Path) -> None:
    """Step 2 never happens while a caBundle lacks the new CA (a replica that could not update a
    configuration must not let another switch the signing key)."""
    api = FakeKube()
    _installed(api)
    manager = _manager(api, tmp_path)
    manager.reconcile(NOW)
    t0 = NOW + timedelta(days=3650 - 10)
    manager.reconcile(t0 - timedelta(days=35))  # an ordinary leaf renewal first
    assert manager.reconcile(t0).secret == "rotating"  # step 1, and the caBundles follow
    # Someone puts the old caBundle back on the validating configuration.
    validating = api.obj(VALIDATING_WEBHOOKS, None, "knscale-webhook")
    assert validating is not None
    old = ca_bundle(
        x509.load_pem_x509_certificates(bundle_from_secret(_secret(api)).ca_cert_pem)[0].public_bytes(
            Encoding.PEM
        )
    )
    for w in validating["webhooks"]:
        w["clientConfig"]["caBundle"] = old
    api.put(VALIDATING_WEBHOOKS, validating)
    cm = CertManager(
        api,
        CertManagerSettings(namespace=NS, service_name="knscale-webhook", cert_dir=tmp_path / "x"),
        NAMES,
    )
    assert cm.ensure_secret(t0 + timedelta(hours=1))[1] == "kept"  # waits: not trusted everywhere
    assert (_secret(api)["metadata"]["annotations"] or {})["knscale.dev/ca-rotation"] == "trusting"
