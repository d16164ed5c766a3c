"""In a cluster, knscale manages its own certificate, as Knative's webhook does.

One reconcile round (run before serving, then every few minutes by every replica):
1. Read the Secret (`knscale-webhook-certs` in knscale's namespace). Absent → create a CA and a
   serving certificate and create the Secret; if another replica won that race (409), use its.
2. Judge the bundle. The leaf is renewed under the same CA when renewal is due, it is invalid,
   or it does not cover the Service names; the CA is replaced only when it is unusable or about
   to expire. Writes carry the resourceVersion read, so two replicas never both win.
3. Write the serving pair into the local certificate directory (an in-memory emptyDir); the
   server's file poller picks it up without a restart.
4. Make every webhook in the two configurations carry the CA as `clientConfig.caBundle`.

Because the CA outlives many leaves, step 4 changes nothing on an ordinary renewal. A CA near
its expiry is rotated in three recorded steps (webhook/carotation.py, docs/certificates.md), so
no replica ever serves a leaf the caBundle does not trust.

RBAC: get/update on that one Secret (plus create, which Kubernetes cannot restrict by name)
and get/update/patch on the two named webhook configurations; nothing else.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from certs.files import CA_CERT, CA_KEY, TLS_CERT, TLS_KEY, CertPaths, write_bundle
from certs.pki import (
    LEAF_RENEW_BEFORE,
    LEAF_VALIDITY,
    CertBundle,
    SubjectNames,
    assess,
    bundle_contains,
    ca_bundle,
    new_bundle,
    renew_leaf,
)
from kubeapi.apply import get_or_none
from kubeapi.client import KubeApi
from kubeapi.errors import Conflict
from kubeapi.resources import MUTATING_WEBHOOKS, SECRETS, VALIDATING_WEBHOOKS, Resource
from webhook import carotation
from webhook.registration import CONFIGURATION_NAME, SECRET_NAME, with_ca_bundle

log = logging.getLogger("knscale.certmanager")

DEFAULT_SECRET_NAME = SECRET_NAME
SECRET_TYPE = "kubernetes.io/tls"
# Its data keys are certs.files' file names (CA_CERT, TLS_CERT, …): mounted, it is a certificate directory.
_ATTEMPTS = 5

SecretAction = Literal["kept", "created", "renewed", "regenerated", "rotating"]


@dataclass(frozen=True, slots=True)
class CertManagerSettings:
    namespace: str
    service_name: str
    cert_dir: Path
    secret_name: str = DEFAULT_SECRET_NAME
    configurations: tuple[tuple[Resource, str], ...] = (
        (MUTATING_WEBHOOKS, CONFIGURATION_NAME),
        (VALIDATING_WEBHOOKS, CONFIGURATION_NAME),
    )
    leaf_validity: timedelta = LEAF_VALIDITY
    renew_before: timedelta = LEAF_RENEW_BEFORE
    # How long each CA-rotation step waits (webhook.carotation): at least two of the replicas'
    # check intervals, so every replica has re-read the Secret between two steps.
    rotation_grace: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    secret: SecretAction
    reasons: tuple[str, ...]
    files_changed: bool
    ca_bundle: str
    # "<Kind>/<name>" → "updated" | "in sync" | "missing"
    configurations: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        return all(state in {"updated", "in sync"} for state in self.configurations.values())


class SecretError(Exception):
    """The Secret holds something that is not a certificate bundle."""


def bundle_from_secret(secret: Mapping[str, Any]) -> CertBundle:
    data = secret.get("data") or {}

    def field_bytes(key: str, required: bool = True) -> bytes | None:
        raw = data.get(key)
        if not raw:
            if required:
                raise SecretError(f"key {key!r} is missing")
            return None
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"key {key!r} is not base64") from None

    ca_cert = field_bytes(CA_CERT)
    cert = field_bytes(TLS_CERT)
    key = field_bytes(TLS_KEY)
    assert ca_cert is not None and cert is not None and key is not None
    return CertBundle(ca_cert, field_bytes(CA_KEY, required=False), cert, key)


def secret_data(bundle: CertBundle) -> dict[str, str]:
    values = {CA_CERT: bundle.ca_cert_pem, TLS_CERT: bundle.cert_pem, TLS_KEY: bundle.key_pem}
    if bundle.ca_key_pem is not None:
        values[CA_KEY] = bundle.ca_key_pem
    return {k: base64.b64encode(v).decode("ascii") for k, v in sorted(values.items())}


_NO_ROTATION: dict[str, str | None] = {carotation.PHASE: None, carotation.SINCE: None}


def _rotation_data(live: Mapping[str, Any], action: str) -> dict[str, str]:
    """A renewed leaf during a rotation keeps the waiting next CA key; a regeneration drops it."""
    data = live.get("data") or {}
    keep = action == "renewed" and carotation.NEXT_CA_KEY in data
    return {carotation.NEXT_CA_KEY: data[carotation.NEXT_CA_KEY]} if keep else {}


def _with_step(live: Mapping[str, Any], step: carotation.RotationStep) -> dict[str, Any]:
    """The Secret with the step's bundle, extra data and annotations (None removes one)."""
    md = dict(live.get("metadata") or {})
    annotations = dict(md.get("annotations") or {})
    for key, value in step.annotations.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    md["annotations"] = annotations
    data = secret_data(step.bundle)
    data.update({k: base64.b64encode(v).decode("ascii") for k, v in step.extra_data.items()})
    return {**live, "metadata": md, "data": data}


class CertManager:
    """Keeps the Secret, the local files and both caBundles consistent. Call `reconcile(now)`."""

    def __init__(self, api: KubeApi, settings: CertManagerSettings, names: SubjectNames) -> None:
        self.api = api
        self.settings = settings
        self.names = names

    # -- Secret ---------------------------------------------------------------------------

    def _new_secret(self, bundle: CertBundle) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.settings.secret_name,
                "namespace": self.settings.namespace,
                "labels": {"app.kubernetes.io/name": "knscale", "app.kubernetes.io/component": "webhook"},
            },
            "type": SECRET_TYPE,
            "data": secret_data(bundle),
        }

    def _trusted_everywhere(self, ca_pem: bytes | None) -> bool:
        """Every webhook of both configurations carries `ca_pem` in its caBundle."""
        if ca_pem is None:
            return False
        for kind, name in self.settings.configurations:
            live = get_or_none(self.api, kind, None, name)
            webhooks = (live or {}).get("webhooks") or []
            if not webhooks or not all(
                bundle_contains((w.get("clientConfig") or {}).get("caBundle"), ca_pem) for w in webhooks
            ):
                return False
        return True

    def _rotation(
        self, live: Mapping[str, Any], bundle: CertBundle, now: datetime, ca_problems: tuple[str, ...]
    ) -> carotation.RotationStep | None:
        """The CA-rotation step due now, if a rotation is in progress or must start."""
        state = carotation.state_of(live)
        if state is None:
            return carotation.start(bundle, now) if carotation.only_expiry(ca_problems) else None
        return carotation.advance(
            bundle,
            state,
            self.names,
            now,
            grace=self.settings.rotation_grace,
            trusted_everywhere=self._trusted_everywhere(carotation.new_ca_pem(bundle, state)),
            leaf_validity=self.settings.leaf_validity,
        )

    def _fresh(self, now: datetime) -> CertBundle:
        return new_bundle(self.names, now, leaf_validity=self.settings.leaf_validity)

    def ensure_secret(self, now: datetime) -> tuple[CertBundle, SecretAction, tuple[str, ...]]:
        ns, name = self.settings.namespace, self.settings.secret_name
        for _ in range(_ATTEMPTS):
            live = get_or_none(self.api, SECRETS, ns, name)
            if live is None:
                bundle = self._fresh(now)
                try:
                    self.api.create(SECRETS, ns, self._new_secret(bundle))
                except Conflict:
                    continue  # another replica created it first: read and use theirs
                return bundle, "created", ("the Secret did not exist",)
            try:
                bundle = bundle_from_secret(live)
            except SecretError as exc:
                action: SecretAction = "regenerated"
                reasons: tuple[str, ...] = (f"Secret {ns}/{name}: {exc}",)
                replacement = self._fresh(now)
            else:
                verdict = assess(bundle, self.names, now, renew_before=self.settings.renew_before)
                rotating = carotation.state_of(live) is not None
                step = self._rotation(live, bundle, now, verdict.ca_problems)
                if step is not None:
                    body = _with_step(live, step)
                    try:
                        self.api.replace(SECRETS, ns, name, body)
                    except Conflict:
                        continue
                    return step.bundle, "rotating", (*verdict.ca_problems, step.reason)
                # While a rotation runs, the old CA's nearing expiry is its reason, not a problem;
                # and as the old CA caps its leaves' lifetime, their renewal is always "due": the
                # rotation's switch issues the next leaf.
                ca_problems, leaf_problems = verdict.ca_problems, verdict.leaf_problems
                if rotating and carotation.only_expiry(ca_problems):
                    ca_problems = ()
                    leaf_problems = tuple(p for p in leaf_problems if not p.startswith("renewal due"))
                if not ca_problems and not leaf_problems:
                    return bundle, "kept", ()
                if ca_problems:
                    action, reasons, replacement = "regenerated", ca_problems, self._fresh(now)
                else:
                    action, reasons = "renewed", leaf_problems
                    replacement = renew_leaf(
                        bundle, self.names, now, leaf_validity=self.settings.leaf_validity
                    )
            body = {**live, "data": {**_rotation_data(live, action), **secret_data(replacement)}}
            if action == "regenerated":
                body = _with_step(body, carotation.RotationStep(replacement, {}, _NO_ROTATION, ""))
            try:
                self.api.replace(SECRETS, ns, name, body)
            except Conflict:
                continue  # someone renewed it meanwhile: judge theirs
            return replacement, action, reasons
        raise Conflict(409, "Conflict", f"Secret {ns}/{name}: still changing after {_ATTEMPTS} attempts")

    # -- webhook configurations ---------------------------------------------------------------

    def sync_ca_bundle(self, ca: str) -> dict[str, str]:
        states: dict[str, str] = {}
        for kind, name in self.settings.configurations:
            label = f"{kind.kind}/{name}"
            for _ in range(_ATTEMPTS):
                live = get_or_none(self.api, kind, None, name)
                if live is None:
                    states[label] = "missing"
                    break
                updated, changed = with_ca_bundle(live, ca)
                if not changed:
                    states[label] = "in sync"
                    break
                try:
                    self.api.replace(kind, None, name, updated)
                except Conflict:
                    continue
                states[label] = "updated"
                break
            else:
                raise Conflict(409, "Conflict", f"{label}: still changing after {_ATTEMPTS} attempts")
        return states

    # -- one round --------------------------------------------------------------------------

    def reconcile(self, now: datetime) -> ReconcileReport:
        bundle, action, reasons = self.ensure_secret(now)
        # The CA key stays in the Secret; the serving process only needs the pair and the CA.
        files_changed = write_bundle(
            CertPaths(self.settings.cert_dir),
            CertBundle(bundle.ca_cert_pem, None, bundle.cert_pem, bundle.key_pem),
        )
        ca = ca_bundle(bundle.ca_cert_pem)
        states = self.sync_ca_bundle(ca)
        report = ReconcileReport(action, reasons, files_changed, ca, states)
        self._log(report)
        return report

    def _log(self, report: ReconcileReport) -> None:
        secret = f"{self.settings.namespace}/{self.settings.secret_name}"
        if report.secret != "kept":
            log.info("certificate Secret %s %s: %s", secret, report.secret, "; ".join(report.reasons))
        for label, state in report.configurations.items():
            if state == "missing":
                log.warning("%s not found: install config/ or run `knscale register --apply`", label)
            elif state == "updated":
                log.info("%s: caBundle updated", label)
