"""Where the model comes from: `knscale.dev/model-uri`, or the seed's `modelBucket`/`modelPath`,
checked against the supported schemes, the location allowlist and path traversal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from translator.annotations.model_keys import (
    BARE_BUCKET,
    BARE_INJECT,
    BARE_PATH,
    CREDENTIALS_SECRET,
    INJECT,
    MAX_URI_LENGTH,
    MODEL_URI,
    SUPPORTED_SCHEMES,
)
from translator.core.names import has_control_or_space, is_dns1123_subdomain
from translator.core.rule_ids import RuleId
from translator.injection.oci import OCI_SCHEME, oci_allowed, reference_problem
from translator.injection.reader import Reader, redacted
from translator.injection.uri import Host, has_dotdot, host_allowed, parse_host, split_uri

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


_LOCATION = {
    "s3": "bucket",
    "gs": "bucket",
    "hf": "organisation",
    "http": "host",
    "https": "host",
    "oci": "registry host",
}


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


def read_source(r: Reader) -> ModelSource | None:
    uri = r.get(MODEL_URI)
    bucket = r.get(BARE_BUCKET)
    obj_path = r.get(BARE_PATH)
    if uri is not None and (bucket is not None or obj_path is not None):
        other = BARE_BUCKET if bucket is not None else BARE_PATH
        r.add(
            RuleId.KNS005,
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
                RuleId.KNS002,
                BARE_PATH,
                obj_path,
                f"{BARE_PATH} is set without {BARE_BUCKET}",
                f"add {BARE_BUCKET}, or give the whole source as {MODEL_URI}: s3://bucket/path",
            )
        elif not r.failed:
            r.add(
                RuleId.KNS002,
                INJECT if INJECT in r.ann else BARE_INJECT,
                "true",
                "injection is requested but no model source is given",
                f"add {MODEL_URI}: s3://bucket/path (or {BARE_BUCKET} and {BARE_PATH})",
            )
        return None
    return _compose_bucket_source(r, bucket, obj_path)


def _compose_bucket_source(r: Reader, bucket: str, obj_path: str | None) -> ModelSource | None:
    """modelBucket (with or without a scheme) + modelPath → a source, naming the right key on error."""
    scheme: str = r.config.default_scheme
    name = bucket
    if "://" in bucket:
        scheme, _, name = bucket.partition("://")
        name = name.rstrip("/")
    if not name or "/" in name or has_control_or_space(name) or any(c in name for c in "?#@"):
        if "@" in name:
            r.add(
                RuleId.KNS011,
                BARE_BUCKET,
                "<redacted>",
                "the bucket carries credentials (user@…)",
                f"put credentials in a Secret and name it in {CREDENTIALS_SECRET}",
            )
        else:
            r.add(
                RuleId.KNS006,
                BARE_BUCKET,
                bucket,  # redacted by Reader.add, as every value of a source key
                f"{redacted(bucket)!r} is not a bucket name (optionally with a scheme such as gs://)",
                f"put only the bucket in {BARE_BUCKET} (e.g. autotables_47 or gs://models) "
                f"and the object path in {BARE_PATH}",
            )
        return None
    path = ""
    if obj_path is not None:
        if has_traversal(obj_path):
            r.add(
                RuleId.KNS010,
                BARE_PATH,
                obj_path,
                "the path contains a '..' segment",
                "use the object path without '..', e.g. /models/47/",
            )
            return None
        if "://" in obj_path or has_control_or_space(obj_path) or "?" in obj_path or "#" in obj_path:
            r.add(
                RuleId.KNS006,
                BARE_PATH,
                obj_path,
                f"{redacted(obj_path)!r} is not an object path",
                f"give a path such as /models/47/, or the whole source as {MODEL_URI}",
            )
            return None
        path = "/" + obj_path.lstrip("/") if obj_path.strip("/") else ""
    composed = f"{scheme}://{name}{path}"
    source = _parse_uri(r, composed, BARE_BUCKET, env_path=obj_path or "", env_bucket=name)
    return source


def has_traversal(value: str) -> bool:
    """A '..' segment of a path, also percent-encoded or between backslashes or encoded slashes."""
    return has_dotdot(value)


def _parse_uri(
    r: Reader, uri: str, key: str, *, env_path: str | None, env_bucket: str | None
) -> ModelSource | None:
    example = f"{key}: s3://bucket/path/to/model/"
    shown = redacted(uri)  # what findings quote: the URI may carry a password or a signature
    split = split_uri(uri)
    if len(uri) > MAX_URI_LENGTH or has_control_or_space(uri) or split is None:
        reason = "too long" if len(uri) > MAX_URI_LENGTH else "not of the form scheme://location/path"
        r.add(RuleId.KNS006, key, shown[:200], f"{shown[:200]!r} is {reason}", f"write it as {example}")
        return None
    if "\\" in uri:
        # URL parsers disagree on it: some end the host there (https://evil.com\.allowed.example
        # would pass an allowlist as one host and be fetched from evil.com).
        r.add(RuleId.KNS006, key, shown, "the URI contains a backslash", f"write it with '/' only: {example}")
        return None
    raw_scheme = uri.partition("://")[0]
    scheme = split.scheme
    if not _SCHEME.match(raw_scheme) or scheme not in SUPPORTED_SCHEMES:
        r.add(
            RuleId.KNS007,
            key,
            shown,
            f"scheme {raw_scheme!r} is not supported",
            f"use one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}",
        )
        return None
    # One split for every check below (uri.split_uri: the downloader's own reading).
    location, path = split.authority, split.path
    rest = uri.partition("://")[2]
    full_path = rest[len(location) :]  # an https path keeps its query (pre-signed URLs)
    if "@" in location:
        r.add(
            RuleId.KNS011,
            key,
            "<redacted>",
            "the URI carries credentials (user:password@…), readable by anyone who can read the pod",
            f"put credentials in a Secret and name it in {CREDENTIALS_SECRET}",
        )
        return None
    # The path without its query and fragment, decoded: `/a/..?x` and `/a/%2e%2e#x` are traversals.
    if has_dotdot(path) or has_dotdot(location):
        r.add(
            RuleId.KNS010,
            key,
            shown,
            "the URI contains a '..' segment",
            f"write the path without '..': {example}",
        )
        return None
    if not location:
        r.add(
            RuleId.KNS006,
            key,
            shown,
            "the URI has no bucket, host, org or claim after scheme://",
            f"write {example}",
        )
        return None
    if scheme not in ("http", "https") and ("?" in uri or "#" in uri):
        # Only an https URL can carry its own authorisation (a pre-signed query); elsewhere a
        # query would be copied into the pod spec as is (hf://org/model?token=…).
        r.add(RuleId.KNS006, key, shown, f"{scheme}:// URIs take no query or fragment", f"write {example}")
        return None
    if scheme == OCI_SCHEME:
        problem = reference_problem(rest)
        if problem is not None:
            r.add(
                RuleId.KNS006,
                key,
                shown,
                f"{shown!r} {problem}",
                f"write {key}: oci://registry/repo@sha256:…",
            )
            return None
    host = parse_host(scheme, location) if scheme != "pvc" else Host(location, None)
    if isinstance(host, str):
        r.add(RuleId.KNS006, key, shown, host, f"write the {_LOCATION[scheme]} plainly: {example}")
        return None
    if scheme == "hf" and len([p for p in path.split("/") if p]) != 1:
        r.add(
            RuleId.KNS006,
            key,
            shown,
            "a Hugging Face source is hf://org/model[:revision]",
            f"write {key}: hf://org/model",
        )
        return None
    if scheme == "pvc" and not is_dns1123_subdomain(location):
        r.add(
            RuleId.KNS006,
            key,
            shown,
            f"{location!r} is not a valid PersistentVolumeClaim name",
            f"write {key}: pvc://claim-name/path/in/volume",
        )
        return None
    if scheme not in r.config.allowed_schemes:
        r.add(
            RuleId.KNS008,
            key,
            shown,
            f"{scheme}:// sources are not allowed here (allowed: {', '.join(r.config.allowed_schemes)})",
            "use an allowed scheme, or ask the cluster admin to add it to injection.allowed_schemes",
        )
        return None
    allow = r.config.source_allowlist
    allowed = oci_allowed if scheme == OCI_SCHEME else None
    if allow is not None and not (
        allowed(host, rest, allow) if allowed else host_allowed(scheme, host, allow)
    ):
        r.add(
            RuleId.KNS009,
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
        path=full_path,
        env_bucket=location if env_bucket is None else env_bucket,
        env_path=full_path if env_path is None else env_path,
    )
