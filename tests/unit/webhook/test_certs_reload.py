"""webhook/server.py's ReloadingCertificate: one live SSLContext, new pairs picked up by polling.

Handshakes run in memory (ssl.MemoryBIO), against the real OpenSSL, so these tests see what a
client would: which certificate the server presents and which TLS versions it accepts.
"""

from __future__ import annotations

import hashlib
import ssl
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from helpers.tls import handshake, new_bios, pump

from certs.files import CertPaths, write_atomic, write_bundle
from certs.pki import CertBundle, new_bundle, renew_leaf, subject_names
from webhook.server import CertificateLoadError, ReloadingCertificate, new_server_context

NAMES = subject_names(service="knscale-webhook", namespace="knscale-system")


def _now() -> datetime:
    return datetime.now(UTC)


def _client(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _served_cert(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> bytes:
    """DER of the certificate the server presents to a new connection."""
    client = handshake(client_ctx, server_ctx, "knscale-webhook.knscale-system.svc")
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.fixture
def certdir(tmp_path: Path) -> tuple[CertPaths, CertBundle]:
    paths = CertPaths(tmp_path)
    bundle = new_bundle(NAMES, _now())
    write_bundle(paths, bundle)
    return paths, bundle


def test_load_serves_the_files(certdir: tuple[CertPaths, CertBundle]) -> None:
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    assert not cert.loaded
    cert.load()
    assert cert.loaded and cert.fingerprint == hashlib.sha256(_der(bundle.cert_pem)).hexdigest()
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(bundle.cert_pem)


def test_missing_or_broken_files_fail_the_first_load_clearly(tmp_path: Path) -> None:
    with pytest.raises(CertificateLoadError, match=r"cannot read .*tls\.crt"):
        ReloadingCertificate(tmp_path / "tls.crt", tmp_path / "tls.key").load()
    (tmp_path / "tls.crt").write_text("junk")
    (tmp_path / "tls.key").write_text("junk")
    with pytest.raises(CertificateLoadError, match="not a usable certificate/key pair"):
        ReloadingCertificate(tmp_path / "tls.crt", tmp_path / "tls.key").load()


def test_rotation_reaches_new_handshakes_only(certdir: tuple[CertPaths, CertBundle]) -> None:
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    client = _client(paths.ca_cert)
    assert not cert.reload_if_changed()  # nothing changed yet

    # A connection accepted before the rotation (its server-side SSL object already exists).
    bios = new_bios()
    early_server = cert.context.wrap_bio(bios[2], bios[3], server_side=True)

    renewed = renew_leaf(bundle, NAMES, _now())
    write_bundle(paths, renewed)
    assert cert.reload_if_changed()
    assert cert.reloads == 1

    assert _served_cert(client, cert.context) == _der(renewed.cert_pem)
    early_client = client.wrap_bio(bios[0], bios[1], server_hostname="localhost")
    pump(early_client, early_server, bios)
    assert early_client.getpeercert(binary_form=True) == _der(bundle.cert_pem)


def test_half_written_pair_is_skipped_and_the_old_pair_keeps_serving(
    certdir: tuple[CertPaths, CertBundle],
) -> None:
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    renewed = renew_leaf(bundle, NAMES, _now())
    write_atomic(paths.key, renewed.key_pem, 0o600)  # the key is new, the certificate not yet
    assert not cert.reload_if_changed()
    assert cert.last_error is not None and "still serving the previous certificate" in cert.last_error
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(bundle.cert_pem)

    write_atomic(paths.cert, renewed.cert_pem)  # the writer finishes
    assert cert.reload_if_changed()
    assert cert.last_error is None
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(renewed.cert_pem)


def test_vanished_files_keep_the_old_pair(certdir: tuple[CertPaths, CertBundle]) -> None:
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    paths.cert.unlink()
    assert not cert.reload_if_changed()
    assert cert.last_error is not None and "cannot read" in cert.last_error
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(bundle.cert_pem)


def _legacy_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Lower the client's own OpenSSL policy so it really offers the old version; then a refusal
    # can only come from the server.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/1.1 are deprecated: that is the point
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused_by_the_server(
    certdir: tuple[CertPaths, CertBundle], version: ssl.TLSVersion
) -> None:
    paths, _ = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    with pytest.raises(ssl.SSLError) as exc:
        _served_cert(_legacy_client(version), cert.context)
    # The server's "unsupported protocol", not the client declining to offer the version.
    assert exc.value.reason in {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION"}, exc.value


def test_tls12_and_tls13_are_accepted_and_13_can_be_required(certdir: tuple[CertPaths, CertBundle]) -> None:
    paths, _ = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert _served_cert(_legacy_client(version), cert.context)
    strict = ReloadingCertificate(paths.cert, paths.key, min_version="1.3")
    strict.load()
    with pytest.raises(ssl.SSLError):
        _served_cert(_legacy_client(ssl.TLSVersion.TLSv1_2), strict.context)


def test_server_context_settings() -> None:
    ctx = new_server_context("1.2")
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)


def test_certificate_written_before_its_key_never_breaks_the_live_context(
    certdir: tuple[CertPaths, CertBundle],
) -> None:
    # The dangerous order: OpenSSL drops the context's key when handed a certificate that does
    # not match it, so loading (new cert, old key) straight into the live context would leave
    # it with no usable key and fail every new handshake until the key arrives.
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    renewed = renew_leaf(bundle, NAMES, _now())
    write_atomic(paths.cert, renewed.cert_pem)
    assert not cert.reload_if_changed()
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(bundle.cert_pem)
    write_atomic(paths.key, renewed.key_pem, 0o600)
    assert cert.reload_if_changed()
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(renewed.cert_pem)


def test_an_encrypted_key_is_refused_without_a_prompt_and_the_old_pair_keeps_serving(
    certdir: tuple[CertPaths, CertBundle],
) -> None:
    """OpenSSL would ask for a pass phrase on the terminal (blocking the event loop) and, without
    one, raises a bare OSError that used to escape reload_if_changed and end the poller."""
    paths, bundle = certdir
    cert = ReloadingCertificate(paths.cert, paths.key)
    cert.load()
    renewed = renew_leaf(bundle, NAMES, _now())
    key = serialization.load_pem_private_key(renewed.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    write_atomic(paths.cert, renewed.cert_pem)
    write_atomic(paths.key, encrypted, 0o600)
    assert cert.reload_if_changed() is False
    assert cert.last_error is not None and "must not be encrypted" in cert.last_error
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(bundle.cert_pem)
    write_atomic(paths.key, renewed.key_pem, 0o600)  # the good key arrives: picked up
    assert cert.reload_if_changed() is True
    assert _served_cert(_client(paths.ca_cert), cert.context) == _der(renewed.cert_pem)
    write_atomic(paths.key, encrypted, 0o600)
    with pytest.raises(CertificateLoadError, match="must not be encrypted"):  # at start-up: a clear error
        ReloadingCertificate(paths.cert, paths.key).load()
