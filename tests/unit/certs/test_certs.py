"""certs/: CA and serving certificate shape, judging existing bundles, files on disk."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers.tls import handshake

from certs.files import CertPaths, ensure_local_certs, read_bundle, write_atomic, write_bundle
from certs.pki import (
    CertBundle,
    CertError,
    assess,
    ca_bundle,
    fingerprint,
    issue_serving_cert,
    new_bundle,
    new_ca,
    renew_leaf,
    service_dns_names,
    subject_names,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMES = subject_names(service="knscale-webhook", namespace="knscale-system")


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


@pytest.fixture(scope="module")
def bundle() -> CertBundle:
    return new_bundle(NAMES, NOW)


def test_service_names_cover_every_form_the_apiserver_may_use() -> None:
    assert service_dns_names("svc", "ns") == ("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local")
    assert NAMES.dns_names[:4] == service_dns_names("knscale-webhook", "knscale-system")
    assert "localhost" in NAMES.dns_names and NAMES.ip_addresses == ("127.0.0.1",)
    assert subject_names(service="a", namespace="b", local=False).ip_addresses == ()


def test_bad_ip_is_rejected_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        subject_names(ip_addresses=["10.0.0.300"])


def test_ca_is_an_ecdsa_p256_ca_limited_to_signing_leaves(bundle: CertBundle) -> None:
    ca = _cert(bundle.ca_cert_pem)
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.not_valid_after_utc - NOW > timedelta(days=3000)


def test_leaf_is_server_auth_only_with_every_san(bundle: CertBundle) -> None:
    leaf = _cert(bundle.cert_pem)
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(NAMES.dns_names)
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert leaf.issuer == _cert(bundle.ca_cert_pem).subject
    leaf.verify_directly_issued_by(_cert(bundle.ca_cert_pem))
    # notBefore is backdated for clock skew; the leaf lives 90 days.
    assert leaf.not_valid_before_utc < NOW
    assert leaf.not_valid_after_utc == NOW + timedelta(days=90)


def test_serials_are_random_positive_and_at_most_16_octets() -> None:
    ca_cert, ca_key = new_ca(NOW)
    serials = {_cert(issue_serving_cert(ca_cert, ca_key, NAMES, NOW)[0]).serial_number for _ in range(8)}
    assert len(serials) == 8
    assert all(0 < s < 2**127 for s in serials)
    assert max(s.bit_length() for s in serials) > 100  # random, not a counter


def test_leaf_never_outlives_its_ca() -> None:
    ca_cert, ca_key = new_ca(NOW, validity=timedelta(days=10))
    leaf = _cert(issue_serving_cert(ca_cert, ca_key, NAMES, NOW, validity=timedelta(days=90))[0])
    assert leaf.not_valid_after_utc == _cert(ca_cert).not_valid_after_utc


def test_ca_bundle_is_base64_of_the_pem(bundle: CertBundle) -> None:
    decoded = base64.b64decode(ca_bundle(bundle.ca_cert_pem))
    assert decoded == bundle.ca_cert_pem
    with pytest.raises(CertError, match="CA certificate"):
        ca_bundle(b"not a certificate")


def test_a_real_tls_handshake_verifies_against_the_ca_for_every_name(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    write_bundle(paths, new_bundle(NAMES, datetime.now(UTC)))  # OpenSSL checks validity against the clock
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(paths.cert, paths.key)
    client = ssl.create_default_context(cafile=str(paths.ca_cert))
    for name in [*NAMES.dns_names, *NAMES.ip_addresses]:
        handshake(client, server, name)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn't match"):
        handshake(client, server, "other-service.default.svc")


# --- assess -----------------------------------------------------------------------------


def test_fresh_bundle_is_ok(bundle: CertBundle) -> None:
    verdict = assess(bundle, NAMES, NOW)
    assert verdict.ok and verdict.usable
    assert verdict.leaf_renew_at == NOW + timedelta(days=60)


def test_renewal_window_is_a_leaf_problem_but_still_usable(bundle: CertBundle) -> None:
    verdict = assess(bundle, NAMES, NOW + timedelta(days=61))
    assert not verdict.ok and verdict.usable and not verdict.ca_problems
    assert verdict.leaf_problems[0].startswith("renewal due")


def test_expired_leaf_is_unusable(bundle: CertBundle) -> None:
    verdict = assess(bundle, NAMES, NOW + timedelta(days=91))
    assert not verdict.usable
    assert any("expired" in p for p in verdict.leaf_problems)


def test_missing_san_is_named(bundle: CertBundle) -> None:
    wider = subject_names(
        service="knscale-webhook", namespace="knscale-system", dns_names=["extra.example.com"]
    )
    verdict = assess(bundle, wider, NOW)
    assert verdict.leaf_problems == ("serving certificate does not cover extra.example.com",)


def test_key_mismatch_and_foreign_issuer_are_detected(bundle: CertBundle) -> None:
    other = new_bundle(NAMES, NOW)
    mixed_key = CertBundle(bundle.ca_cert_pem, bundle.ca_key_pem, bundle.cert_pem, other.key_pem)
    assert "serving key does not match the serving certificate" in assess(mixed_key, NAMES, NOW).leaf_problems
    foreign = CertBundle(bundle.ca_cert_pem, bundle.ca_key_pem, other.cert_pem, other.key_pem)
    assert "serving certificate was not issued by the current CA" in assess(foreign, NAMES, NOW).leaf_problems


def test_ca_problems_need_a_new_ca(bundle: CertBundle) -> None:
    other = new_bundle(NAMES, NOW)
    wrong_ca_key = CertBundle(bundle.ca_cert_pem, other.ca_key_pem, bundle.cert_pem, bundle.key_pem)
    assert assess(wrong_ca_key, NAMES, NOW).ca_problems == (
        "CA key does not match any certificate in the CA file",
    )
    no_ca_key = CertBundle(bundle.ca_cert_pem, None, bundle.cert_pem, bundle.key_pem)
    assert assess(no_ca_key, NAMES, NOW).ca_problems
    assert assess(no_ca_key, NAMES, NOW, require_ca_key=False).ok  # e.g. cert-manager files
    leaf_as_ca = CertBundle(bundle.cert_pem, bundle.key_pem, bundle.cert_pem, bundle.key_pem)
    assert "CA certificate: basicConstraints CA:TRUE missing" in assess(leaf_as_ca, NAMES, NOW).ca_problems
    garbage = CertBundle(b"junk", None, b"junk", b"junk")
    verdict = assess(garbage, NAMES, NOW)
    assert verdict.ca_problems and verdict.leaf_problems and not verdict.usable


def test_two_cas_in_the_bundle_during_ca_rotation(bundle: CertBundle) -> None:
    new_ca_cert, new_ca_key = new_ca(NOW)
    # Step 1: trust both, keep signing with the old key: the old leaf stays fine.
    both = bundle.ca_cert_pem + new_ca_cert
    step1 = CertBundle(both, bundle.ca_key_pem, bundle.cert_pem, bundle.key_pem)
    assert assess(step1, NAMES, NOW).ok
    assert base64.b64decode(ca_bundle(both)) == both
    # Step 2: switch the signing key: the leaf must be reissued, under the new CA.
    step2 = CertBundle(both, new_ca_key, bundle.cert_pem, bundle.key_pem)
    assert assess(step2, NAMES, NOW).leaf_problems == (
        "serving certificate was not issued by the current CA",
    )
    renewed = renew_leaf(step2, NAMES, NOW)
    assert assess(renewed, NAMES, NOW).ok
    _cert(renewed.cert_pem).verify_directly_issued_by(_cert(new_ca_cert))


def test_renew_keeps_the_ca_and_changes_the_leaf(bundle: CertBundle) -> None:
    renewed = renew_leaf(bundle, NAMES, NOW + timedelta(days=61))
    assert renewed.ca_cert_pem == bundle.ca_cert_pem and renewed.ca_key_pem == bundle.ca_key_pem
    assert renewed.key_pem != bundle.key_pem
    assert fingerprint(renewed.cert_pem) != fingerprint(bundle.cert_pem)
    assert assess(renewed, NAMES, NOW + timedelta(days=61)).ok


# --- files ------------------------------------------------------------------------------


def test_write_atomic_leaves_no_temp_files_and_skips_identical_content(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert write_atomic(target, b"one", 0o600)
    assert not write_atomic(target, b"one", 0o600)
    assert write_atomic(target, b"two", 0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_write_atomic_never_exposes_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    inode_before = target.stat().st_ino
    write_atomic(target, b"new" * 1000)
    # A rename, not an in-place write: a reader holding the old file keeps reading "old".
    assert target.stat().st_ino != inode_before


def test_ensure_local_creates_keeps_and_renews_under_the_same_ca(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path / "certs")
    created = ensure_local_certs(paths, NAMES, NOW)
    assert created.action == "created"
    for p in (paths.ca_cert, paths.ca_key, paths.cert, paths.key, paths.ca_bundle):
        assert p.exists(), p
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
    assert paths.ca_bundle.read_text().strip() == ca_bundle(paths.ca_cert.read_bytes())

    before = {p: p.read_bytes() for p in (paths.ca_cert, paths.cert, paths.key)}
    kept = ensure_local_certs(paths, NAMES, NOW + timedelta(days=1))
    assert kept.action == "kept"
    assert {p: p.read_bytes() for p in before} == before

    renewed = ensure_local_certs(paths, NAMES, NOW + timedelta(days=70))
    assert renewed.action == "renewed" and renewed.reasons[0].startswith("renewal due")
    assert paths.ca_cert.read_bytes() == before[paths.ca_cert]
    assert paths.cert.read_bytes() != before[paths.cert]


def test_ensure_local_renews_when_names_change_and_recreates_a_broken_ca(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    ensure_local_certs(paths, NAMES, NOW)
    ca = paths.ca_cert.read_bytes()
    wider = subject_names(service="knscale-webhook", namespace="knscale-system", ip_addresses=["10.1.2.3"])
    result = ensure_local_certs(paths, wider, NOW)
    assert result.action == "renewed" and paths.ca_cert.read_bytes() == ca
    paths.ca_key.write_bytes(b"broken")
    result = ensure_local_certs(paths, wider, NOW)
    assert result.action == "created" and paths.ca_cert.read_bytes() != ca
    assert ensure_local_certs(paths, wider, NOW, force=True).action == "created"


def test_read_bundle_needs_the_pair_and_the_ca(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    assert read_bundle(paths) is None
    write_bundle(paths, new_bundle(NAMES, NOW))
    paths.ca_key.unlink()
    loaded = read_bundle(paths)
    assert loaded is not None and loaded.ca_key_pem is None


def test_tempfile_dir_is_not_left_behind_by_bundle_writes() -> None:
    with tempfile.TemporaryDirectory() as d:
        write_bundle(CertPaths(Path(d)), new_bundle(NAMES, NOW))
        names = sorted(p.name for p in Path(d).iterdir())
        assert names == ["ca.crt", "ca.key", "caBundle", "tls.crt", "tls.key"]
