"""The model-injection annotation API: every key, the seed's bare aliases, and the table
docs/annotations.md documents. Declarative only: the reader is `translator.injection.request`."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "knscale.dev/"
INJECT = "knscale.dev/inject-model"
MODEL_URI = "knscale.dev/model-uri"
INIT_IMAGE = "knscale.dev/model-init-image"
MOUNT_PATH = "knscale.dev/model-mount-path"
CREDENTIALS_SECRET = "knscale.dev/model-credentials-secret"
SIZE_LIMIT = "knscale.dev/model-size-limit"
PULL_POLICY = "knscale.dev/model-pull-policy"  # oci:// only: pullPolicy of the model image
SUB_PATH = "knscale.dev/model-sub-path"  # oci:// only: a directory inside the image's model dir
MODEL_CACHE = "knscale.dev/model-cache"  # translator/injection/cache.py
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

SUPPORTED_SCHEMES: tuple[str, ...] = ("s3", "gs", "https", "http", "hf", "pvc", "oci")
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
        MODEL_URI,
        (BARE_BUCKET, BARE_PATH),
        None,
        "s3://, gs://, https://, hf://org/model, pvc://claim/path, oci://registry/repo@sha256:…",
    ),
    ModelKey(INIT_IMAGE, (BARE_IMAGE,), "injection.default_image", "downloader image; args [uri, dest-dir]"),
    ModelKey(MOUNT_PATH, (), "injection.mount_path (/mnt/models)", "where app containers see the model"),
    ModelKey(CREDENTIALS_SECRET, (), None, "Secret whose keys become the downloader's env (envFrom)"),
    ModelKey(SIZE_LIMIT, (), "injection.model_size_limit (unbounded)", "sizeLimit of the model emptyDir"),
    ModelKey(PULL_POLICY, (), "injection.image_pull_policy", "oci:// only: Always, IfNotPresent or Never"),
    ModelKey(SUB_PATH, (), None, "oci:// only: a relative directory below injection.oci_model_dir"),
    ModelKey(
        MODEL_CACHE, (), "injection.model_cache_claim (none)", 'RWX PVC to cache the model in; "" for none'
    ),
    ModelKey(INJECTED, (), None, "status marker set by knscale; present means: do not inject again"),
)

# Every key this module reads: a pod without any of them costs one set intersection.
ALL_KEYS: frozenset[str] = frozenset(
    [
        INJECT,
        MODEL_URI,
        INIT_IMAGE,
        MOUNT_PATH,
        CREDENTIALS_SECRET,
        SIZE_LIMIT,
        PULL_POLICY,
        SUB_PATH,
        MODEL_CACHE,
        *LEGACY_KEYS,
    ]
)
