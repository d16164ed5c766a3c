"""`Cache` over the informers: what the controller reads instead of the API server."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubeapi.resources import Resource
from reconciler.runtime.informer import Informer


class InformerCache:
    """`Cache` over one informer per resource."""

    def __init__(self, informers: Mapping[Resource, Informer]) -> None:
        self._informers = dict(informers)

    def informer(self, res: Resource) -> Informer:
        return self._informers[res]

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        inf = self._informers.get(res)
        return inf.get(namespace, name) if inf else None

    def items(self, res: Resource) -> list[dict[str, Any]]:
        inf = self._informers.get(res)
        return inf.items() if inf else []

    def remember(self, res: Resource, obj: dict[str, Any]) -> None:
        inf = self._informers.get(res)
        if inf is None:
            return
        key = (
            (obj.get("metadata") or {}).get("namespace") or "",
            (obj.get("metadata") or {}).get("name") or "",
        )
        cached = inf.get(*key)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if cached is not None and (cached.get("metadata") or {}).get("resourceVersion") == rv:
            return
        # Through `apply`, so handlers see it like a watch event; the real event that follows
        # carries the same version and changes nothing.
        inf.apply("MODIFIED" if cached is not None else "ADDED", copy.deepcopy(obj))

    def synced(self) -> bool:
        return all(inf.has_synced() for inf in self._informers.values())
