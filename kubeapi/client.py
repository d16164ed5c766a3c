"""The client: the `KubeApi` protocol and its implementation over the official `kubernetes` client.

Every call into the official client lives in this module. The rest of knscale speaks
`KubeApi`: plain dicts in and out, the errors of `kubeapi.errors`, and a collection described
by `kubeapi.resources.Resource`. Tests drive the callers through the in-memory fake
(`kubeapi.testing.FakeKube`) that implements the same protocol; the e2e suite drives them
against a real kube-apiserver.

Why raw REST rather than the generated typed APIs: the reconciler mostly handles custom
resources (PodAutoscaler, ServerlessService, ScaledObject), the generated models drop
unknown fields, and the client's generator is being replaced (v37 regenerated everything on
pydantic). Requests are built and authenticated by the client's `ApiClient`
(`param_serialize` + `call_api`, which only the regenerated client has: hence the
`kubernetes>=37,<38` pin and tests/unit/test_dependency_pins.py), so kubeconfig and in-cluster
auth, token refresh and TLS settings stay the client's job; decoding, error mapping, the
response-size bound and watch streaming are ours. The client is synchronous (urllib3);
callers run it from their own threads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kubeapi.errors import ApiError, NotFound, body_excerpt, error_from_status
from kubeapi.resources import Resource

log = logging.getLogger(__name__)

PatchType = Literal["json", "merge", "strategic"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Largest response body we are willing to decode in one piece (a list of 10k transformed
# Deployments is well under this); a bigger answer is a bug or an attack, not data. Callers
# that read only small objects pass a tighter bound (the webhook: `SMALL_OBJECTS_MAX_BYTES`).
MAX_BODY_BYTES = 256 * 1024 * 1024
# A Secret is at most 1 MiB and a webhook configuration is small: anything bigger is not ours.
SMALL_OBJECTS_MAX_BYTES = 4 * 1024 * 1024


# ---- the protocol every caller uses --------------------------------------------


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]


class KubeApi(Protocol):
    """What knscale needs from a Kubernetes API server. Implementations raise `ApiError`.

    `get` raises `NotFound` when the object is absent (`kubeapi.apply.get_or_none` turns that
    into None); `delete` answers False instead.
    """

    def list(
        self, res: Resource, namespace: str | None, *, label_selector: str | None = None
    ) -> ListResult: ...

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
    ) -> Iterator[WatchEvent]:
        """Events after `resource_version` until the server ends the watch. Raises `Gone` on 410."""
        ...

    def get(
        self, res: Resource, namespace: str | None, name: str, *, subresource: str | None = None
    ) -> dict[str, Any]: ...

    def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]: ...

    def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "json",
        subresource: str | None = None,
    ) -> dict[str, Any]: ...

    def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        """True when deleted, False when there was nothing to delete."""
        ...

    def close(self) -> None: ...


# ---- the real implementation ---------------------------------------------------------------


class KubernetesApi:
    """`KubeApi` over the official client's `ApiClient` (kubeconfig or in-cluster)."""

    def __init__(
        self,
        api_client: Any,
        *,
        request_timeout: float = 30.0,
        field_manager: str = "knscale",
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._client = api_client
        self._timeout = request_timeout
        self._field_manager = field_manager
        self._max_body = max_body_bytes

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | None = None,
        context: str | None = None,
        *,
        request_timeout: float = 30.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> KubernetesApi:
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = _configuration(kclient)
        try:
            kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path or os.environ.get("KUBECONFIG") or None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # the loader raises several unrelated exception types
            raise ApiError(
                0, "ConfigError", f"cannot load kubeconfig {path or '~/.kube/config'}: {exc}"
            ) from exc
        return cls(
            kclient.ApiClient(configuration), request_timeout=request_timeout, max_body_bytes=max_body_bytes
        )

    @classmethod
    def in_cluster(
        cls, *, request_timeout: float = 30.0, max_body_bytes: int = MAX_BODY_BYTES
    ) -> KubernetesApi:
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = _configuration(kclient)
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ApiError(0, "ConfigError", f"not running in a cluster: {exc}") from exc
        return cls(
            kclient.ApiClient(configuration), request_timeout=request_timeout, max_body_bytes=max_body_bytes
        )

    def close(self) -> None:
        self._client.close()

    # -- plumbing --

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        *,
        timeout: Any = None,
    ) -> Any:
        """Send one request; return the raw urllib3 response (body not yet read)."""
        import urllib3

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            m, url, hdrs, data, post = self._client.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self._client.call_api(m, url, hdrs, data, post, _request_timeout=timeout or self._timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "ConnectionError", f"{method} {path}: {exc}") from exc
        return resp.response

    def _request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, dict[str, Any] | None]:
        """One call: the status and the decoded JSON object (None if the body is not one).

        Every non-streaming call comes through here, so every one is bounded by `max_body_bytes`
        and mapped to the error tree the same way.
        """
        raw = self._send(method, path, query, body, content_type)
        try:
            data = raw.read(self._max_body + 1)
        finally:
            raw.release_conn()
        if len(data) > self._max_body:
            raise ApiError(
                raw.status, "ResponseTooLarge", f"{method} {path}: body over {self._max_body} bytes"
            )
        decoded = _decode(data)
        if not 200 <= raw.status <= 299:
            raise error_from_status(raw.status, decoded, body_excerpt(data), raw.headers.get("Retry-After"))
        return raw.status, decoded

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        status, decoded = self._request(method, path, query, body, content_type)
        if decoded is None:
            raise ApiError(status, "BadResponse", f"{method} {path}: response is not a JSON object")
        return decoded

    def _write_query(self) -> list[tuple[str, Any]]:
        return [("fieldManager", self._field_manager)]

    # -- KubeApi --

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None) -> ListResult:
        query: list[tuple[str, Any]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        body = self._call("GET", res.path(namespace), query)
        items = body.get("items") or []
        # List items carry no apiVersion/kind; add them so items look like watched objects.
        for item in items:
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return ListResult(items, rv)

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
    ) -> Iterator[WatchEvent]:
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(int(timeout_seconds))),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        # The read timeout outlives the server-side timeout so a quiet watch is not an error.
        raw = self._send("GET", res.path(namespace), query, timeout=(10.0, timeout_seconds + 15.0))
        if not 200 <= raw.status <= 299:
            data = raw.read(min(1 << 20, self._max_body))
            raw.release_conn()
            raise error_from_status(
                raw.status, _decode(data), body_excerpt(data), raw.headers.get("Retry-After")
            )
        return self._events(raw, res)

    def _events(self, raw: Any, res: Resource) -> Iterator[WatchEvent]:
        import urllib3

        try:
            for line in raw:
                if not line.strip():
                    continue
                if len(line) > self._max_body:
                    raise ApiError(0, "ResponseTooLarge", f"watch {res}: event over {self._max_body} bytes")
                event = _decode(line)
                if event is None:
                    raise ApiError(0, "BadResponse", f"watch {res}: undecodable event")
                etype = str(event.get("type", ""))
                obj = event.get("object") or {}
                if etype == "ERROR":
                    raise error_from_status(int(obj.get("code") or 500), obj)
                yield WatchEvent(etype, obj)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # A dropped connection ends this watch; the informer re-watches from its last RV.
            log.debug("watch %s ended: %s", res, exc)
        finally:
            # Closed, not released: a half-read stream must not go back into the pool.
            raw.close()
            raw.release_conn()

    def get(
        self, res: Resource, namespace: str | None, name: str, *, subresource: str | None = None
    ) -> dict[str, Any]:
        return self._call("GET", res.path(namespace, name, subresource))

    def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", res.path(namespace), self._write_query(), dict(body))

    def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self._call("PUT", res.path(namespace, name, subresource), self._write_query(), dict(body))

    def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "json",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if patch_type == "json" and not isinstance(patch, list):
            raise ValueError("a JSON patch is a list of operations")
        return self._call(
            "PATCH",
            res.path(namespace, name, subresource),
            self._write_query(),
            patch,
            _PATCH_CONTENT_TYPES[patch_type],
        )

    def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        try:
            # A DELETE answers with the object or a Status; neither is needed, so any body is fine.
            self._request("DELETE", res.path(namespace, name))
        except NotFound:
            return False
        return True


def _configuration(kclient: Any) -> Any:
    configuration = kclient.Configuration()
    # One long-lived watch per informer thread plus the loop, the elector and events: the
    # default pool (5 × CPUs) would keep discarding connections on a 2-core node.
    configuration.connection_pool_maxsize = 32
    return configuration


def _decode(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
