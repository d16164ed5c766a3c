"""Create a CA and a serving certificate, and judge existing ones. Pure: `now` is an argument.

Shape follows what the Kubernetes API server needs from a webhook (and what Knative's own
webhook does): an ECDSA P-256 CA, a leaf with a random 128-bit serial, ServerAuth only, and
the Service DNS names as SANs. The CA lives long (10 years) so the caBundle registered in the
webhook configurations stays put; the leaf is short-lived (90 days) and renewed under the same
CA well before it expires.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=90)
# Renew the leaf when less than this is left: one third of its life, so a server that is down
# for weeks still comes back with a valid certificate.
LEAF_RENEW_BEFORE = timedelta(days=30)
# Clocks of the API server and of this process may disagree; backdate notBefore a little.
CLOCK_SKEW = timedelta(minutes=5)

LOCAL_DNS_NAMES: tuple[str, ...] = ("localhost",)
LOCAL_IP_ADDRESSES: tuple[str, ...] = ("127.0.0.1",)


class CertError(Exception):
    """A certificate or key cannot be parsed or does not fit; the message says which and why."""


@dataclass(frozen=True, slots=True)
class CertBundle:
    """PEM bytes of a CA and of the serving certificate it signed.

    `ca_cert_pem` may hold several CA certificates (during a CA rotation the old and the new
    CA are both trusted); the caBundle is all of them. `ca_key_pem` signs new leaves and must
    match one of them; it is None when only the public half is known (e.g. cert-manager).
    """

    ca_cert_pem: bytes
    ca_key_pem: bytes | None
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class SubjectNames:
    """What the serving certificate must cover."""

    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...] = ()

    @property
    def common_name(self) -> str:
        return self.dns_names[0] if self.dns_names else self.ip_addresses[0]


@dataclass(frozen=True, slots=True)
class Assessment:
    """Verdict on an existing bundle: what must be replaced and why."""

    ca_problems: tuple[str, ...] = ()
    leaf_problems: tuple[str, ...] = ()
    leaf_not_after: datetime | None = None
    leaf_renew_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        """The leaf can be served right now (maybe renewal is due, but it is valid)."""
        return not self.ca_problems and not any(p for p in self.leaf_problems if not p.startswith("renew"))

    @property
    def ok(self) -> bool:
        return not self.ca_problems and not self.leaf_problems


def service_dns_names(service: str, namespace: str, cluster_domain: str = "cluster.local") -> tuple[str, ...]:
    """The names the API server may use to reach a Service: `svc`, `svc.ns`, `svc.ns.svc`, FQDN."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    )


def subject_names(
    *,
    service: str | None = None,
    namespace: str | None = None,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    local: bool = True,
) -> SubjectNames:
    """Service names first (the CN is the first DNS name), then extras, then loopback."""
    dns: list[str] = []
    if service:
        dns += service_dns_names(service, namespace or "default")
    dns += dns_names
    ips = list(ip_addresses)
    if local:
        dns += LOCAL_DNS_NAMES
        ips += LOCAL_IP_ADDRESSES
    for ip in ips:
        ipaddress.ip_address(ip)  # raises ValueError naming the bad address
    return SubjectNames(tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips)))


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _random_serial() -> int:
    # Positive and at most 127 random bits, so the DER integer fits 16 octets (RFC 5280: <= 20).
    return secrets.randbelow(2**127 - 1) + 1


def new_ca(
    now: datetime, *, common_name: str = "knscale-webhook-ca", validity: timedelta = CA_VALIDITY
) -> tuple[bytes, bytes]:
    """A self-signed CA that may only sign end-entity certificates. Returns (cert PEM, key PEM)."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "knscale"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def issue_serving_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    names: SubjectNames,
    now: datetime,
    *,
    validity: timedelta = LEAF_VALIDITY,
) -> tuple[bytes, bytes]:
    """A leaf for TLS servers only, signed by the CA whose key is given. Returns (cert PEM, key PEM)."""
    if not names.dns_names and not names.ip_addresses:
        raise CertError("a serving certificate needs at least one DNS name or IP address")
    ca_key = _load_private_key(ca_key_pem, "CA key")
    ca_cert = signing_ca(ca_cert_pem, ca_key_pem)
    key = _new_key()
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in names.ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "knscale"),
                    x509.NameAttribute(NameOID.COMMON_NAME, names.common_name[:64]),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def new_bundle(names: SubjectNames, now: datetime, *, leaf_validity: timedelta = LEAF_VALIDITY) -> CertBundle:
    """A fresh CA and a leaf for `names`."""
    ca_cert, ca_key = new_ca(now)
    cert, key = issue_serving_cert(ca_cert, ca_key, names, now, validity=leaf_validity)
    return CertBundle(ca_cert, ca_key, cert, key)


def renew_leaf(
    bundle: CertBundle, names: SubjectNames, now: datetime, *, leaf_validity: timedelta = LEAF_VALIDITY
) -> CertBundle:
    """Same CA (so the caBundle does not change), new leaf key and certificate."""
    if bundle.ca_key_pem is None:
        raise CertError("cannot renew the serving certificate: the CA key is not available")
    cert, key = issue_serving_cert(bundle.ca_cert_pem, bundle.ca_key_pem, names, now, validity=leaf_validity)
    return CertBundle(bundle.ca_cert_pem, bundle.ca_key_pem, cert, key)


def ca_bundle(ca_cert_pem: bytes) -> str:
    """The webhook configuration's `clientConfig.caBundle`: base64 of the PEM CA certificate(s)."""
    certs = load_certs(ca_cert_pem, "CA certificate")
    return base64.b64encode(b"".join(_cert_pem(c) for c in certs)).decode("ascii")


# --- parsing and judging -------------------------------------------------------------------


def load_certs(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertError(f"{what}: not a PEM certificate ({exc})") from None
    if not certs:
        raise CertError(f"{what}: no certificate found")
    return certs


def _load_private_key(pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertError(f"{what}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{what}: expected an ECDSA key, got {type(key).__name__}")
    return key


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signing_ca(ca_cert_pem: bytes, ca_key_pem: bytes) -> x509.Certificate:
    """The CA certificate (of possibly several) that matches the CA key."""
    key = _load_private_key(ca_key_pem, "CA key")
    wanted = _public_bytes(key.public_key())
    for cert in load_certs(ca_cert_pem, "CA certificate"):
        if _public_bytes(cert.public_key()) == wanted:
            return cert
    raise CertError("CA key does not match any certificate in the CA file")


def signing_ca_pem(ca_cert_pem: bytes, ca_key_pem: bytes) -> bytes:
    """PEM of the one CA certificate (of possibly several) that `ca_key_pem` signs for."""
    return _cert_pem(signing_ca(ca_cert_pem, ca_key_pem))


def bundle_contains(ca_bundle_b64: str | None, ca_pem: bytes) -> bool:
    """Whether a caBundle (base64 of PEM, as in `clientConfig.caBundle`) holds the CA `ca_pem`."""
    if not ca_bundle_b64:
        return False
    try:
        held = load_certs(base64.b64decode(ca_bundle_b64, validate=True), "caBundle")
    except (CertError, ValueError):
        return False
    wanted = load_certs(ca_pem, "CA certificate")[0]
    return wanted in held


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def certificate_sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def _issued_by_any(leaf: x509.Certificate, cas: Sequence[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def assess(
    bundle: CertBundle,
    names: SubjectNames,
    now: datetime,
    *,
    renew_before: timedelta = LEAF_RENEW_BEFORE,
    ca_renew_before: timedelta = timedelta(days=30),
    require_ca_key: bool = True,
) -> Assessment:
    """Judge a bundle against `names` at `now`.

    CA problems mean a new CA is needed (the caBundle changes). Leaf problems mean a new leaf
    under the same CA is enough; a problem starting with "renew" is only the renewal window.
    """
    ca_problems: list[str] = []
    leaf_problems: list[str] = []
    notes: list[str] = []
    cas: list[x509.Certificate] = []
    try:
        cas = load_certs(bundle.ca_cert_pem, "CA certificate")
    except CertError as exc:
        ca_problems.append(str(exc))
    signer: x509.Certificate | None = None
    if cas:
        if not all(_is_ca(c) for c in cas):
            ca_problems.append("CA certificate: basicConstraints CA:TRUE missing")
        if bundle.ca_key_pem is not None:
            try:
                signer = signing_ca(bundle.ca_cert_pem, bundle.ca_key_pem)
            except CertError as exc:
                ca_problems.append(str(exc))
        elif require_ca_key:
            ca_problems.append("CA key is missing, so the serving certificate could not be renewed")
        if signer is not None and signer.not_valid_after_utc - now < ca_renew_before:
            ca_problems.append(f"CA certificate expires at {signer.not_valid_after_utc.isoformat()}")
        if len(cas) > 1:
            notes.append(f"caBundle holds {len(cas)} CA certificates (CA rotation in progress)")

    leaf: x509.Certificate | None = None
    try:
        leaf = load_certs(bundle.cert_pem, "serving certificate")[0]
    except CertError as exc:
        leaf_problems.append(str(exc))
    try:
        key = _load_private_key(bundle.key_pem, "serving key")
    except CertError as exc:
        leaf_problems.append(str(exc))
        key = None
    if leaf is None:
        return Assessment(tuple(ca_problems), tuple(leaf_problems), notes=tuple(notes))

    if key is not None and _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        leaf_problems.append("serving key does not match the serving certificate")
    # A leaf must chain to the CA that signs renewals (after a CA key change, reissue it), and
    # to something in the caBundle (or the API server will refuse it).
    if signer is not None and not _issued_by_any(leaf, [signer]):
        leaf_problems.append("serving certificate was not issued by the current CA")
    elif signer is None and cas and not _issued_by_any(leaf, cas):
        leaf_problems.append("serving certificate was not issued by the CA")
    if leaf.not_valid_before_utc > now:
        leaf_problems.append(
            f"serving certificate is not valid before {leaf.not_valid_before_utc.isoformat()}"
        )
    not_after = leaf.not_valid_after_utc
    if not_after <= now:
        leaf_problems.append(f"serving certificate expired at {not_after.isoformat()}")
    dns, ips = certificate_sans(leaf)
    missing = [n for n in names.dns_names if n.lower() not in dns]
    missing += [ip for ip in names.ip_addresses if str(ipaddress.ip_address(ip)) not in ips]
    if missing:
        leaf_problems.append(f"serving certificate does not cover {', '.join(missing)}")
    renew_at = not_after - renew_before
    if not leaf_problems and now >= renew_at:
        leaf_problems.append(f"renewal due: serving certificate expires at {not_after.isoformat()}")
    return Assessment(tuple(ca_problems), tuple(leaf_problems), not_after, renew_at, tuple(notes))


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint of the first certificate, hex, for logs and tests."""
    return load_certs(cert_pem, "certificate")[0].fingerprint(hashes.SHA256()).hex()
