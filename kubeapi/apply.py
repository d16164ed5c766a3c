"""Small verbs over `KubeApi`: read-or-None and create-or-replace with optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubeapi.client import KubeApi
from kubeapi.errors import ApiError, Conflict, NotFound
from kubeapi.resources import BY_KIND, Resource

_ATTEMPTS = 5


def get_or_none(api: KubeApi, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist (other errors propagate)."""
    try:
        return api.get(res, namespace, name)
    except NotFound:
        return None


def apply(
    api: KubeApi,
    obj: Mapping[str, Any],
    keep: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> str:
    """Create `obj`, or replace the live one keeping its resourceVersion. Returns what happened.

    `keep(new, live)` may carry fields over from the live object (such as a caBundle the
    running server filled in) before the replace. A 409 (another writer in between) means
    read again and retry, a few times.
    """
    res = BY_KIND[str(obj["kind"])]
    name = str(obj["metadata"]["name"])
    namespace = obj["metadata"].get("namespace")
    for _ in range(_ATTEMPTS):
        live = get_or_none(api, res, namespace, name)
        if live is None:
            try:
                api.create(res, namespace, obj)
            except Conflict:
                continue
            return "created"
        merged = keep(obj, live) if keep else obj
        body = {
            **merged,
            "metadata": {**merged["metadata"], "resourceVersion": live["metadata"].get("resourceVersion")},
        }
        try:
            api.replace(res, namespace, name, body)
        except Conflict:
            continue
        return "replaced"
    raise ApiError(409, "Conflict", f"{res.kind} {name}: still changing after {_ATTEMPTS} attempts")
