"""Replacing the webhook's CA without a moment in which a replica serves an untrusted leaf.

The API server trusts exactly the CAs in the webhook configurations' caBundle, and every
replica serves the leaf it last read from the Secret (each re-reads it once per check interval).
Replacing CA and leaf at once would leave the other replicas serving a leaf of the old CA for up
to one interval while the caBundle already holds only the new one. So a CA near its expiry is
replaced in three steps, each recorded on the Secret (annotation `knscale.dev/ca-rotation` and
the time it was entered), so any replica can take the next one:

1. **trusting** — a new CA is made; `ca.crt` holds old and new, the old key still signs, the new
   key waits in `next-ca.key`. Every replica syncs the caBundle to both.
2. **switched** — once both webhook configurations trust the new CA and `grace` has passed, the
   new key signs and the leaf is reissued under it; `ca.crt` still holds both, so a replica not
   yet on the new leaf stays trusted.
3. **done** — `grace` after the switch (every replica has re-read the Secret and loaded its leaf
   when `grace` is two check intervals plus the certificate poll interval, `grace_for`), `ca.crt`
   holds only the new CA and the caBundle follows.

A CA that cannot sign at all (no key, not a CA, broken) is still replaced at once: nothing it
signs can be served anyway. Pure: the caller passes `now` and what the configurations trust.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from certs.pki import CertBundle, CertError, SubjectNames, new_ca, renew_leaf, signing_ca_pem

PHASE = "knscale.dev/ca-rotation"
SINCE = "knscale.dev/ca-rotation-since"
NEXT_CA_KEY = "next-ca.key"
EXPIRY_PREFIX = "CA certificate expires at"

Phase = Literal["trusting", "switched"]


@dataclass(frozen=True, slots=True)
class RotationState:
    phase: Phase
    since: datetime
    next_key_pem: bytes | None


@dataclass(frozen=True, slots=True)
class RotationStep:
    """What to write: the new bundle, the extra Secret data and annotations (None removes)."""

    bundle: CertBundle
    extra_data: dict[str, bytes]
    annotations: dict[str, str | None]
    reason: str


def grace_for(check_interval: float, poll_interval: float) -> timedelta:
    """How long each step waits so that every replica serves what the previous step wrote.

    A replica re-reads the Secret at most one check interval (plus that round's own run time, assumed
    shorter than an interval) after a step was written, and its file poller loads the new leaf at
    most one poll interval later: two check intervals alone are not enough when the poll interval is
    not much shorter than the check interval (e.g. `--cert-check-interval 1` with the default poll of 2 s).
    """
    return timedelta(seconds=2 * check_interval + poll_interval)


def only_expiry(ca_problems: tuple[str, ...]) -> bool:
    """The CA still signs; it is only close to its expiry (so it can be rotated in steps)."""
    return bool(ca_problems) and all(p.startswith(EXPIRY_PREFIX) for p in ca_problems)


def state_of(secret: Mapping[str, Any]) -> RotationState | None:
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    phase, since = annotations.get(PHASE), annotations.get(SINCE)
    if phase not in ("trusting", "switched") or not isinstance(since, str):
        return None
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        return None
    raw = (secret.get("data") or {}).get(NEXT_CA_KEY)
    try:
        key = base64.b64decode(raw, validate=True) if raw else None
    except ValueError:
        key = None
    return RotationState(phase, when, key)


def start(bundle: CertBundle, now: datetime) -> RotationStep:
    """Step 1: trust a new CA beside the old one; the old key still signs."""
    new_cert, new_key = new_ca(now)
    old_pem = signing_ca_pem(bundle.ca_cert_pem, bundle.ca_key_pem or b"")
    both = CertBundle(old_pem + new_cert, bundle.ca_key_pem, bundle.cert_pem, bundle.key_pem)
    return RotationStep(
        both,
        {NEXT_CA_KEY: new_key},
        {PHASE: "trusting", SINCE: now.isoformat()},
        "CA close to expiry: step 1 of 3, old and new CA both trusted",
    )


def advance(
    bundle: CertBundle,
    state: RotationState,
    names: SubjectNames,
    now: datetime,
    *,
    grace: timedelta,
    trusted_everywhere: bool,
    leaf_validity: timedelta,
) -> RotationStep | None:
    """The next step of a rotation in progress, or None while it must wait."""
    if now < state.since + grace:
        return None
    if state.phase == "trusting":
        if not trusted_everywhere or state.next_key_pem is None:
            return None
        signing = CertBundle(bundle.ca_cert_pem, state.next_key_pem, bundle.cert_pem, bundle.key_pem)
        switched = renew_leaf(signing, names, now, leaf_validity=leaf_validity)
        return RotationStep(
            switched,
            {},
            {PHASE: "switched", SINCE: now.isoformat()},
            "step 2 of 3: the new CA signs; old and new CA both trusted",
        )
    new_pem = signing_ca_pem(bundle.ca_cert_pem, bundle.ca_key_pem or b"")
    done = CertBundle(new_pem, bundle.ca_key_pem, bundle.cert_pem, bundle.key_pem)
    return RotationStep(done, {}, {PHASE: None, SINCE: None}, "step 3 of 3: only the new CA is trusted")


def new_ca_pem(bundle: CertBundle, state: RotationState) -> bytes | None:
    """The certificate of the CA being rotated to (the one `next-ca.key`, or the signing key, matches)."""
    key = state.next_key_pem if state.phase == "trusting" else bundle.ca_key_pem
    if key is None:
        return None
    try:
        return signing_ca_pem(bundle.ca_cert_pem, key)
    except CertError:
        return None
