"""Certificate files on disk: atomic writes, loading, and the local create-or-renew step.

File names match a `kubernetes.io/tls` Secret mounted as a volume (`tls.crt`, `tls.key`,
`ca.crt`), so the same directory layout works for `knscale certs`, the self-managed Secret
and a cert-manager Secret. `ca.key` is only present where knscale signs its own leaves.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from certs.pki import (
    LEAF_RENEW_BEFORE,
    LEAF_VALIDITY,
    Assessment,
    CertBundle,
    SubjectNames,
    assess,
    ca_bundle,
    new_bundle,
    renew_leaf,
)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_BUNDLE = "caBundle"

PUBLIC_MODE = 0o644
SECRET_MODE = 0o600


@dataclass(frozen=True, slots=True)
class CertPaths:
    """Where one bundle lives."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.directory / CA_KEY

    @property
    def cert(self) -> Path:
        return self.directory / TLS_CERT

    @property
    def key(self) -> Path:
        return self.directory / TLS_KEY

    @property
    def ca_bundle(self) -> Path:
        return self.directory / CA_BUNDLE


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> bool:
    """Replace `path` with `data` so readers see the old or the new file, never a partial one.

    Returns False (and writes nothing) when the file already holds exactly `data`, so pollers
    that hash the files see no spurious change.
    """
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    return True


def write_bundle(paths: CertPaths, bundle: CertBundle) -> bool:
    """Write every file of the bundle; returns True when anything changed.

    Order matters to a server polling the directory: the key is written before the
    certificate, and a reader that sees a new key with the old certificate finds a mismatch
    and waits for the next poll instead of serving a broken pair.
    """
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = False
    changed |= write_atomic(paths.ca_cert, bundle.ca_cert_pem)
    if bundle.ca_key_pem is not None:
        changed |= write_atomic(paths.ca_key, bundle.ca_key_pem, SECRET_MODE)
    changed |= write_atomic(paths.ca_bundle, ca_bundle(bundle.ca_cert_pem).encode("ascii") + b"\n")
    changed |= write_atomic(paths.key, bundle.key_pem, SECRET_MODE)
    changed |= write_atomic(paths.cert, bundle.cert_pem)
    return changed


def read_bundle(paths: CertPaths) -> CertBundle | None:
    """The bundle in `paths`, or None when a required file is absent (the CA key is optional)."""
    try:
        ca_cert = paths.ca_cert.read_bytes()
        cert = paths.cert.read_bytes()
        key = paths.key.read_bytes()
    except FileNotFoundError:
        return None
    try:
        ca_key: bytes | None = paths.ca_key.read_bytes()
    except FileNotFoundError:
        ca_key = None
    return CertBundle(ca_cert, ca_key, cert, key)


Action = Literal["created", "renewed", "kept"]


@dataclass(frozen=True, slots=True)
class EnsureResult:
    action: Action
    bundle: CertBundle
    reasons: tuple[str, ...]
    assessment: Assessment


def ensure_local_certs(
    paths: CertPaths,
    names: SubjectNames,
    now: datetime,
    *,
    force: bool = False,
    leaf_validity: timedelta = LEAF_VALIDITY,
    renew_before: timedelta = LEAF_RENEW_BEFORE,
) -> EnsureResult:
    """Keep a valid bundle, renew its leaf under the same CA, or create everything anew.

    A new CA is made only when there is none, it is unusable, or `force` is set; otherwise the
    CA (and so the caBundle a user may already have registered) stays.
    """
    existing = None if force else read_bundle(paths)
    if existing is not None:
        verdict = assess(existing, names, now, renew_before=renew_before)
        if verdict.ok:
            write_bundle(paths, existing)  # restores a deleted caBundle file; no-op otherwise
            return EnsureResult("kept", existing, (), verdict)
        if not verdict.ca_problems:
            renewed = renew_leaf(existing, names, now, leaf_validity=leaf_validity)
            write_bundle(paths, renewed)
            return EnsureResult("renewed", renewed, verdict.leaf_problems, assess(renewed, names, now))
        reasons = verdict.ca_problems
    else:
        reasons = ("forced",) if force else ("no certificates in the directory",)
    bundle = new_bundle(names, now, leaf_validity=leaf_validity)
    write_bundle(paths, bundle)
    return EnsureResult("created", bundle, reasons, assess(bundle, names, now))
