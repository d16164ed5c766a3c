"""The model-injection annotation API: every key, and the parse of one annotations map.

`read_model_request` turns the keys a user wrote (canonical `knscale.dev/*` or the seed's bare
keys) into a `ModelRequest`, or into findings that name the key exactly as written. It is the
one reader of these keys: the webhook's `/mutate` (through `injection.plan_injection`),
`/validate` and `knscale lint` (through `injection.model_findings`) all call it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.config.knscale import InjectionConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.names import (
    has_control_or_space,
    has_dotdot_segment,
    is_dns1123_subdomain,
    is_image_reference,
    is_quantity,
    mount_path_problem,
    normalize_path,
)
from translator.core.rules import RULES
from translator.core.values import parse_quantity

PREFIX = "knscale.dev/"
INJECT = "knscale.dev/inject-model"
MODEL_URI = "knscale.dev/model-uri"
INIT_IMAGE = "knscale.dev/model-init-image"
MOUNT_PATH = "knscale.dev/model-mount-path"
CREDENTIALS_SECRET = "knscale.dev/model-credentials-secret"
SIZE_LIMIT = "knscale.dev/model-size-limit"
INJECTED = "knscale.dev/model-injected"  # status marker, written by knscale in the same patch

BARE_INJECT = "injectModelInitContainer"
BARE_BUCKET = "modelBucket"
BARE_PATH = "modelPath"
BARE_IMAGE = "initContainerImage"

# Bare key → the canonical key a warning points to.
LEGACY_KEYS: dict[str, str] = {
    BARE_INJECT: INJECT,
    BARE_BUCKET: MODEL_URI,
    BARE_PATH: MODEL_URI,
    BARE_IMAGE: INIT_IMAGE,
}

SUPPORTED_SCHEMES: tuple[str, ...] = ("s3", "gs", "https", "http", "hf", "pvc")
MAX_URI_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class ModelKey:
    """One row of the annotation table (docs/annotations.md documents every row)."""

    name: str
    legacy: tuple[str, ...]
    default: str | None
    summary: str


MODEL_KEYS: tuple[ModelKey, ...] = (
    ModelKey(INJECT, (BARE_INJECT,), None, '"true" or "false" (any case): inject the model downloader'),
    ModelKey(
        MODEL_URI, (BARE_BUCKET, BARE_PATH), None, "s3://, gs://, https://, hf://org/model, pvc://claim/path"
    ),
    ModelKey(INIT_IMAGE, (BARE_IMAGE,), "injection.default_image", "downloader image; args [uri, dest-dir]"),
    ModelKey(MOUNT_PATH, (), "injection.mount_path (/mnt/models)", "where app containers see the model"),
    ModelKey(CREDENTIALS_SECRET, (), None, "Secret whose keys become the downloader's env (envFrom)"),
    ModelKey(SIZE_LIMIT, (), "injection.model_size_limit (unbounded)", "sizeLimit of the model emptyDir"),
    ModelKey(INJECTED, (), None, "status marker set by knscale; present means: do not inject again"),
)

# Every key this module reads: a pod without any of them costs one set intersection.
ALL_KEYS: frozenset[str] = frozenset(
    [INJECT, MODEL_URI, INIT_IMAGE, MOUNT_PATH, CREDENTIALS_SECRET, SIZE_LIMIT, *LEGACY_KEYS]
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_SOURCE_KEYS = frozenset({MODEL_URI, BARE_BUCKET, BARE_PATH})
_PERCENT_DOT = re.compile(r"%2e", re.IGNORECASE)
# Separators a downloader or URL parser may honour besides '/': encoded slash and backslash.
_OTHER_SEPARATOR = re.compile(r"%2f|%5c|\\", re.IGNORECASE)
# What could be a secret in a source: userinfo before '@' (at the start or after scheme://).
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?)[^/?#]*@")


def _redacted(text: str) -> str:
    """`text` fit to quote in a finding: userinfo and any query or fragment (a pre-signed URL's
    signature, a token) replaced."""
    text = _USERINFO.sub(r"\1<redacted>@", text)
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut] + "?<redacted>"


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where the model comes from. `uri` is what the downloader gets as its first argument."""

    uri: str
    scheme: str
    location: str  # bucket, host[:port], Hugging Face org, or PVC claim name
    path: str  # '' or starting with '/': the object path / repo / sub-path
    env_bucket: str  # MODEL_BUCKET
    env_path: str  # MODEL_PATH: modelPath as written, else the URI's path

    @property
    def pvc_sub_path(self) -> str:
        return self.path.strip("/")


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """A valid, policy-checked request to inject a model."""

    source: ModelSource
    source_key: str
    image: str
    mount_path: str
    mount_key: str | None
    credentials_secret: str | None
    size_limit: str | None


class _Reader:
    """Collects findings for one annotations map; each check names the key as the user wrote it."""

    def __init__(self, ann: Mapping[str, Any], ref: ObjectRef, path: str, config: InjectionConfig) -> None:
        self.ann = ann
        self.ref = ref
        self.path = path
        self.config = config
        self.findings: list[Finding] = []
        self.failed = False

    def add(self, rule_id: str, key: str | None, value: Any, message: str, fix: str | None) -> None:
        if key in _SOURCE_KEYS and isinstance(value, str):
            value = _redacted(value)  # findings reach kubectl, logs and lint output
        finding = RULES[rule_id].finding(self.ref, self.path, key, value, message, fix)
        self.failed = self.failed or finding.is_error
        self.findings.append(finding)

    def get(self, key: str) -> str | None:
        value = self.ann.get(key)
        if value is None or isinstance(value, str):
            return value
        self.add(
            "KNS903",
            key,
            value,
            f"annotation values must be strings, got {type(value).__name__}",
            'quote it: "…"',
        )
        return None

    def pick(self, canonical: str, bare: str) -> tuple[str | None, str | None]:
        """The value of a concept written as a canonical and/or a bare key; conflicting values fail."""
        c, b = self.get(canonical), self.get(bare)
        if c is not None and b is not None and c != b:
            self.add(
                "KNS005",
                bare,
                b,
                f"{bare}={b!r} conflicts with {canonical}={c!r}",
                f"remove {bare} and keep {canonical}",
            )
            return None, None
        if c is not None:
            return c, canonical
        if b is not None:
            return b, bare
        return None, None


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
    r = _Reader(annotations, ref, path, config)
    for bare, canonical in LEGACY_KEYS.items():
        if bare in annotations:
            r.add(
                "KNS004",
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
            r.add("KNS001", flag_key, flag, f"{flag!r} is not true or false", f'set {flag_key}: "true"')
            return None, r.findings
        inject = lowered == "true"
    if not inject:
        if flag is None and not r.failed:
            others = sorted(k for k in ALL_KEYS - {INJECT, BARE_INJECT} if k in annotations)
            if others:
                r.add(
                    "KNS003",
                    others[0],
                    annotations[others[0]],
                    f"{', '.join(others)} set but no inject flag, so nothing is injected",
                    f'add {INJECT}: "true" or remove the model keys',
                )
        return None, r.findings

    source = _read_source(r)
    image = _read_image(r)
    mount_path, mount_key = _read_mount_path(r)
    secret = r.get(CREDENTIALS_SECRET)
    if secret is not None and not is_dns1123_subdomain(secret):
        r.add(
            "KNS016",
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
            "KNS017",
            SIZE_LIMIT,
            size_limit,
            f"{size_limit!r} is not a positive Kubernetes quantity",
            "use a size such as 10Gi or 500Mi",
        )
    if source is not None and source.scheme == "pvc":
        for key in (INIT_IMAGE, BARE_IMAGE, CREDENTIALS_SECRET, SIZE_LIMIT):
            if key in annotations:
                r.add(
                    "KNS019",
                    key,
                    annotations[key],
                    f"{key} has no effect: a pvc:// model is mounted directly, nothing is downloaded",
                    f"remove {key}",
                )
    if r.failed or source is None or image is None or mount_path is None:
        return None, r.findings
    request = ModelRequest(
        source=source,
        source_key=MODEL_URI if MODEL_URI in annotations else BARE_BUCKET,
        image=image,
        mount_path=mount_path,
        mount_key=mount_key,
        credentials_secret=secret,
        size_limit=size_limit,
    )
    return request, r.findings


def _read_source(r: _Reader) -> ModelSource | None:
    uri = r.get(MODEL_URI)
    bucket = r.get(BARE_BUCKET)
    obj_path = r.get(BARE_PATH)
    if uri is not None and (bucket is not None or obj_path is not None):
        other = BARE_BUCKET if bucket is not None else BARE_PATH
        r.add(
            "KNS005",
            other,
            bucket if bucket is not None else obj_path,
            f"both {MODEL_URI} and {other} name the model source",
            f"keep only {MODEL_URI} (scheme://bucket/path)",
        )
        return None
    if uri is not None:
        return _parse_uri(r, uri, MODEL_URI, env_path=None, env_bucket=None)
    if bucket is None:
        if obj_path is not None:
            r.add(
                "KNS002",
                BARE_PATH,
                obj_path,
                f"{BARE_PATH} is set without {BARE_BUCKET}",
                f"add {BARE_BUCKET}, or give the whole source as {MODEL_URI}: s3://bucket/path",
            )
        elif not r.failed:
            r.add(
                "KNS002",
                INJECT if INJECT in r.ann else BARE_INJECT,
                "true",
                "injection is requested but no model source is given",
                f"add {MODEL_URI}: s3://bucket/path (or {BARE_BUCKET} and {BARE_PATH})",
            )
        return None
    return _compose_bucket_source(r, bucket, obj_path)


def _compose_bucket_source(r: _Reader, bucket: str, obj_path: str | None) -> ModelSource | None:
    """modelBucket (with or without a scheme) + modelPath → a source, naming the right key on error."""
    scheme: str = r.config.default_scheme
    name = bucket
    if "://" in bucket:
        scheme, _, name = bucket.partition("://")
        name = name.rstrip("/")
    if not name or "/" in name or has_control_or_space(name) or any(c in name for c in "?#@"):
        if "@" in name:
            r.add(
                "KNS011",
                BARE_BUCKET,
                "<redacted>",
                "the bucket carries credentials (user@…)",
                f"put credentials in a Secret and name it in {CREDENTIALS_SECRET}",
            )
        else:
            r.add(
                "KNS006",
                BARE_BUCKET,
                bucket,  # redacted by _Reader.add, as every value of a source key
                f"{_redacted(bucket)!r} is not a bucket name (optionally with a scheme such as gs://)",
                f"put only the bucket in {BARE_BUCKET} (e.g. autotables_47 or gs://models) "
                f"and the object path in {BARE_PATH}",
            )
        return None
    path = ""
    if obj_path is not None:
        if _has_traversal(obj_path):
            r.add(
                "KNS010",
                BARE_PATH,
                obj_path,
                "the path contains a '..' segment",
                "use the object path without '..', e.g. /models/47/",
            )
            return None
        if "://" in obj_path or has_control_or_space(obj_path) or "?" in obj_path or "#" in obj_path:
            r.add(
                "KNS006",
                BARE_PATH,
                obj_path,
                f"{_redacted(obj_path)!r} is not an object path",
                f"give a path such as /models/47/, or the whole source as {MODEL_URI}",
            )
            return None
        path = "/" + obj_path.lstrip("/") if obj_path.strip("/") else ""
    composed = f"{scheme}://{name}{path}"
    source = _parse_uri(r, composed, BARE_BUCKET, env_path=obj_path or "", env_bucket=name)
    return source


def _has_traversal(value: str) -> bool:
    """A '..' segment, also percent-encoded or between backslashes or encoded slashes."""
    return has_dotdot_segment(_OTHER_SEPARATOR.sub("/", _PERCENT_DOT.sub(".", value)))


def _parse_uri(
    r: _Reader, uri: str, key: str, *, env_path: str | None, env_bucket: str | None
) -> ModelSource | None:
    example = f"{key}: s3://bucket/path/to/model/"
    shown = _redacted(uri)  # what findings quote: the URI may carry a password or a signature
    if len(uri) > MAX_URI_LENGTH or has_control_or_space(uri) or "://" not in uri:
        reason = "too long" if len(uri) > MAX_URI_LENGTH else "not of the form scheme://location/path"
        r.add("KNS006", key, shown[:200], f"{shown[:200]!r} is {reason}", f"write it as {example}")
        return None
    if "\\" in uri:
        # URL parsers disagree on it: some end the host there (https://evil.com\.allowed.example
        # would pass an allowlist as one host and be fetched from evil.com).
        r.add("KNS006", key, shown, "the URI contains a backslash", f"write it with '/' only: {example}")
        return None
    raw_scheme, _, rest = uri.partition("://")
    scheme = raw_scheme.lower()
    if not _SCHEME.match(raw_scheme) or scheme not in SUPPORTED_SCHEMES:
        r.add(
            "KNS007",
            key,
            shown,
            f"scheme {raw_scheme!r} is not supported",
            f"use one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}",
        )
        return None
    location, slash, tail = rest.partition("/")
    path = slash + tail
    if scheme in ("http", "https"):
        # The host ends at the first '/', '?' or '#'; a query (pre-signed URLs) stays in the URI.
        cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        location, path = rest[:cut], rest[cut:]
    if "@" in location:
        r.add(
            "KNS011",
            key,
            "<redacted>",
            "the URI carries credentials (user:password@…), readable by anyone who can read the pod",
            f"put credentials in a Secret and name it in {CREDENTIALS_SECRET}",
        )
        return None
    if _has_traversal(path) or _has_traversal(location):
        r.add(
            "KNS010", key, shown, "the URI contains a '..' segment", f"write the path without '..': {example}"
        )
        return None
    if not location:
        r.add(
            "KNS006",
            key,
            shown,
            "the URI has no bucket, host, org or claim after scheme://",
            f"write {example}",
        )
        return None
    if scheme not in ("http", "https") and ("?" in uri or "#" in uri):
        # Only an https URL can carry its own authorisation (a pre-signed query); elsewhere a
        # query would be copied into the pod spec as is (hf://org/model?token=…).
        r.add("KNS006", key, shown, f"{scheme}:// URIs take no query or fragment", f"write {example}")
        return None
    if scheme == "hf" and len([p for p in path.split("/") if p]) != 1:
        r.add(
            "KNS006",
            key,
            shown,
            "a Hugging Face source is hf://org/model[:revision]",
            f"write {key}: hf://org/model",
        )
        return None
    if scheme == "pvc" and not is_dns1123_subdomain(location):
        r.add(
            "KNS006",
            key,
            shown,
            f"{location!r} is not a valid PersistentVolumeClaim name",
            f"write {key}: pvc://claim-name/path/in/volume",
        )
        return None
    if scheme not in r.config.allowed_schemes:
        r.add(
            "KNS008",
            key,
            shown,
            f"{scheme}:// sources are not allowed here (allowed: {', '.join(r.config.allowed_schemes)})",
            "use an allowed scheme, or ask the cluster admin to add it to injection.allowed_schemes",
        )
        return None
    allow = r.config.source_allowlist
    if allow is not None and not _location_allowed(scheme, location, allow):
        r.add(
            "KNS009",
            key,
            shown,
            f"{scheme}://{location} is not on the source allowlist",
            "use an allowed bucket/host, or ask the cluster admin to extend injection.source_allowlist",
        )
        return None
    return ModelSource(
        uri=f"{scheme}://{rest}",
        scheme=scheme,
        location=location,
        path=path,
        env_bucket=location if env_bucket is None else env_bucket,
        env_path=path if env_path is None else env_path,
    )


def _location_allowed(scheme: str, location: str, patterns: tuple[str, ...]) -> bool:
    qualified = f"{scheme}://{location}"
    return any(fnmatch.fnmatchcase(qualified if "://" in p else location, p) for p in patterns)


def _read_image(r: _Reader) -> str | None:
    image, key = r.pick(INIT_IMAGE, BARE_IMAGE)
    if image is None or key is None:
        return None if r.failed and (INIT_IMAGE in r.ann or BARE_IMAGE in r.ann) else r.config.default_image
    if not is_image_reference(image):
        r.add(
            "KNS014",
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
        and not any(fnmatch.fnmatchcase(image, p) for p in allow)
    ):
        r.add(
            "KNS015",
            key,
            image,
            f"{image} is not on the downloader image allowlist",
            f"remove {key} to use the default downloader, or ask the cluster admin to extend "
            "injection.image_allowlist",
        )
        return None
    return image


def _read_mount_path(r: _Reader) -> tuple[str | None, str | None]:
    value = r.get(MOUNT_PATH)
    if value is None:
        return (None, None) if MOUNT_PATH in r.ann else (r.config.mount_path, None)
    if _has_traversal(value):
        r.add(
            "KNS010",
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
            "KNS012",
            MOUNT_PATH,
            value,
            f"{value!r} {problem}",
            f"use an absolute directory of its own, e.g. {MOUNT_PATH}: /mnt/models",
        )
        return None, None
    return normalize_path(value), MOUNT_PATH
