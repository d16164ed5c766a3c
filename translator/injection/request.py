"""The parse of one annotations map's model keys into a `ModelRequest`, or into findings.

`read_model_request` turns the keys a user wrote (canonical `knscale.dev/*` or the seed's bare
keys, listed in `translator.annotations.model_keys`) into a `ModelRequest`, or into findings
that name the key exactly as written. It is the one reader of these keys: the webhook's
`/mutate` (through `injection.plan.plan_injection`), `/validate` and `knscale lint` (through
`injection.checks.model_findings`) all call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.annotations.model_keys import (
    ALL_KEYS,
    BARE_IMAGE,
    BARE_INJECT,
    CREDENTIALS_SECRET,
    INIT_IMAGE,
    INJECT,
    LEGACY_KEYS,
    MOUNT_PATH,
    SIZE_LIMIT,
)
from translator.config.knscale import InjectionConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.images import image_matches
from translator.core.names import (
    is_dns1123_subdomain,
    is_image_reference,
    mount_path_problem,
    normalize_path,
)
from translator.core.rule_ids import RuleId
from translator.core.values import is_quantity, parse_quantity
from translator.injection.cache import read_cache
from translator.injection.oci import IMAGE_VOLUME, OciRequest, read_oci_request
from translator.injection.reader import Reader
from translator.injection.source import ModelSource, has_traversal, read_source


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """A valid, policy-checked request to inject a model."""

    source: ModelSource
    image: str
    mount_path: str
    mount_key: str | None
    credentials_secret: str | None
    size_limit: str | None
    oci: OciRequest | None = None  # an oci:// source: how the model image is delivered (injection.oci)

    @property
    def mounted_directly(self) -> bool:
        """No initContainer: a pvc:// claim, or an OCI image volume, is mounted as it is."""
        return self.source.scheme == "pvc" or (self.oci is not None and self.oci.mode == IMAGE_VOLUME)

    cache_claim: str | None = None  # the shared model cache (injection.cache)


def read_model_request(
    annotations: Mapping[str, Any],
    *,
    ref: ObjectRef,
    path: str,
    config: InjectionConfig,
) -> tuple[ModelRequest | None, list[Finding]]:
    """Parse and police the model keys of one annotations map.

    Returns (request, findings): request is None when injection is not requested or any finding
    is an error. Warnings (legacy keys, keys without effect) come back either way.
    """
    if ALL_KEYS.isdisjoint(annotations):
        return None, []
    r = Reader(annotations, ref, path, config)
    for bare, canonical in LEGACY_KEYS.items():
        if bare in annotations:
            r.add(
                RuleId.KNS004,
                bare,
                annotations[bare],
                f"{bare} is a legacy key, use {canonical}",
                f"write {canonical} instead of {bare}",
            )

    flag, flag_key = r.pick(INJECT, BARE_INJECT)
    inject = False
    if flag is not None and flag_key is not None:
        lowered = flag.strip().lower()
        if lowered not in ("true", "false"):
            r.add(RuleId.KNS001, flag_key, flag, f"{flag!r} is not true or false", f'set {flag_key}: "true"')
            return None, r.findings
        inject = lowered == "true"
    if not inject:
        if flag is None and not r.failed:
            others = sorted(k for k in ALL_KEYS - {INJECT, BARE_INJECT} if k in annotations)
            if others:
                r.add(
                    RuleId.KNS003,
                    others[0],
                    annotations[others[0]],
                    f"{', '.join(others)} set but no inject flag, so nothing is injected",
                    f'add {INJECT}: "true" or remove the model keys',
                )
        return None, r.findings

    source = read_source(r)
    image = _read_image(r)
    mount_path, mount_key = _read_mount_path(r)
    secret = r.get(CREDENTIALS_SECRET)
    if secret is not None and not is_dns1123_subdomain(secret):
        r.add(
            RuleId.KNS016,
            CREDENTIALS_SECRET,
            secret,
            f"{secret!r} is not a valid Secret name (lower-case RFC 1123 subdomain)",
            "name a Secret in the pod's namespace, e.g. model-store-credentials",
        )
    size_limit = r.get(SIZE_LIMIT)
    if size_limit is None:
        size_limit = config.model_size_limit
    elif not is_quantity(size_limit) or parse_quantity(size_limit) <= 0:
        r.add(
            RuleId.KNS017,
            SIZE_LIMIT,
            size_limit,
            f"{size_limit!r} is not a positive Kubernetes quantity",
            "use a size such as 10Gi or 500Mi",
        )
    if source is not None and source.scheme == "pvc":
        for key in (INIT_IMAGE, BARE_IMAGE, CREDENTIALS_SECRET, SIZE_LIMIT):
            if key in annotations:
                r.add(
                    RuleId.KNS019,
                    key,
                    annotations[key],
                    f"{key} has no effect: a pvc:// model is mounted directly, nothing is downloaded",
                    f"remove {key}",
                )
    oci = read_oci_request(r, source.scheme if source else None, source.uri if source else None)
    cache_claim = read_cache(r, None if source is None else source.scheme)
    if r.failed or source is None or image is None or mount_path is None:
        return None, r.findings
    request = ModelRequest(
        source=source,
        image=image,
        mount_path=mount_path,
        mount_key=mount_key,
        credentials_secret=secret if oci is None else None,
        size_limit=size_limit,
        oci=oci,
        cache_claim=cache_claim,
    )
    return request, r.findings


def _read_image(r: Reader) -> str | None:
    image, key = r.pick(INIT_IMAGE, BARE_IMAGE)
    if image is None or key is None:
        return None if r.failed and (INIT_IMAGE in r.ann or BARE_IMAGE in r.ann) else r.config.default_image
    if not is_image_reference(image):
        r.add(
            RuleId.KNS014,
            key,
            image,
            f"{image!r} is not an image reference",
            f"write {key}: registry.example.com/downloader:v1.0",
        )
        return None
    allow = r.config.image_allowlist
    if (
        allow is not None
        and image != r.config.default_image
        and not any(image_matches(image, p) for p in allow)
    ):
        r.add(
            RuleId.KNS015,
            key,
            image,
            f"{image} is not on the downloader image allowlist",
            f"remove {key} to use the default downloader, or ask the cluster admin to extend "
            "injection.image_allowlist",
        )
        return None
    return image


def _read_mount_path(r: Reader) -> tuple[str | None, str | None]:
    value = r.get(MOUNT_PATH)
    if value is None:
        return (None, None) if MOUNT_PATH in r.ann else (r.config.mount_path, None)
    if has_traversal(value):
        r.add(
            RuleId.KNS010,
            MOUNT_PATH,
            value,
            "the mount path contains a '..' segment",
            f"write {MOUNT_PATH}: /mnt/models",
        )
        return None, None
    problem = mount_path_problem(value)
    if problem is None:
        normal = normalize_path(value)
        if normal in (normalize_path("/tmp"), normalize_path(r.config.home_dir)):
            problem = f"is the downloader's own scratch directory {normal}"
    if problem is not None:
        r.add(
            RuleId.KNS012,
            MOUNT_PATH,
            value,
            f"{value!r} {problem}",
            f"use an absolute directory of its own, e.g. {MOUNT_PATH}: /mnt/models",
        )
        return None, None
    return normalize_path(value), MOUNT_PATH
