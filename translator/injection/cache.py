"""The shared model cache (`knscale.dev/model-cache: CLAIM`, or `injection.model_cache_claim`).

The first pod that needs a model downloads it once into a ReadWriteMany PersistentVolumeClaim,
under `cache_key(URI)`; later pods find the entry complete and only mount it. The downloader
runs `cache_script` (its source, embedded in the init container's `command`) instead of the
image's entrypoint: lock, check the marker, download into a partial directory, rename, write the
marker last. App containers mount the claim read-only with `subPath: KEY`.

Pure: the script's text is read once, as the module's own package data; nothing here runs it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from translator.annotations.model_keys import MODEL_CACHE
from translator.core.names import is_dns1123_subdomain
from translator.core.rule_ids import RuleId
from translator.injection.cache_script import DEFAULT_WAIT_SECONDS
from translator.injection.cache_script import cache_key as cache_key
from translator.injection.common import MODEL_VOLUME, kubelet_literal
from translator.injection.reader import Reader

# Where the init container sees the whole claim (the app containers see only their entry).
CACHE_ROOT = "/knscale-cache"
# The downloader image's Python (KServe's storage initializer puts its venv first on PATH).
PYTHON = "python3"
SCRIPT: str = resources.files("translator.injection").joinpath("cache_script.py").read_text(encoding="utf-8")


_NOT_DOWNLOADED = {"pvc": "mounted directly", "oci": "an image the node pulls"}


def read_cache(r: Reader, scheme: str | None) -> str | None:
    """The claim to cache this pod's model in, or None (no cache, or a finding was added).

    The annotation wins over `injection.model_cache_claim`; an empty value opts out of the
    cluster default. A pvc:// model is already on a volume and an oci:// one is an image the
    node pulls (and caches) itself: the key has no effect there."""
    value = r.get(MODEL_CACHE)
    if value is None:
        return None if MODEL_CACHE in r.ann or scheme in _NOT_DOWNLOADED else r.config.model_cache_claim
    if value == "":
        return None
    if not is_dns1123_subdomain(value):
        r.add(
            RuleId.KNS046,
            MODEL_CACHE,
            value,
            f"{value!r} is not a valid PersistentVolumeClaim name (lower-case RFC 1123 subdomain)",
            f"name a ReadWriteMany claim in the pod's namespace, e.g. {MODEL_CACHE}: model-cache "
            '(or "" for no cache)',
        )
        return None
    if scheme in _NOT_DOWNLOADED:
        r.add(
            RuleId.KNS019 if scheme == "pvc" else RuleId.KNS043,
            MODEL_CACHE,
            value,
            f"{MODEL_CACHE} has no effect: a {scheme}:// model is {_NOT_DOWNLOADED[scheme]}, "
            "nothing is downloaded",
            f"remove {MODEL_CACHE}",
        )
        return None
    return value


def cache_volume(claim: str) -> dict[str, Any]:
    # Writable at the volume: the init container fills it; every app mount is readOnly.
    return {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim}}


def for_cache(container: dict[str, Any], uri: str) -> dict[str, Any]:
    """The download init container made into the cache step: knscale's script as its command,
    `[uri, root, key, wait]` as args (every `$` doubled: the kubelet expands `$(NAME)` in both),
    and the claim's root mounted where the model would have gone."""
    container["command"] = [PYTHON, "-c", kubelet_literal(SCRIPT)]
    container["args"] = [kubelet_literal(uri), CACHE_ROOT, cache_key(uri), str(DEFAULT_WAIT_SECONDS)]
    for mount in container["volumeMounts"]:
        if mount["name"] == MODEL_VOLUME:
            mount["mountPath"] = CACHE_ROOT
    for env in container["env"]:
        if env["name"] == "MODEL_DIR":
            env["value"] = CACHE_ROOT + "/" + cache_key(uri)
    return container
