"""The one adapter between the reconciler and the Kubernetes API.

Every call into the official `kubernetes` client lives in this module. The rest of the
reconciler speaks `KubeApi`: plain dicts in and out, our own error classes, and a resource
described by group/version/plural. Tests drive the controller through an in-memory fake
(`kubeapi/testing/fake.py`) that implements the same protocol; the e2e suite drives it against a
real kube-apiserver.

Why raw REST rather than the generated typed APIs: the reconciler mostly handles custom
resources (PodAutoscaler, ServerlessService, ScaledObject), the generated models drop
unknown fields, and the client's generator is being replaced (v37 regenerated everything on
pydantic). Requests are built and authenticated by the client's `ApiClient`
(`param_serialize` + `call_api`), so kubeconfig and in-cluster auth, token refresh and TLS
settings stay the client's job; decoding, error mapping and watch streaming are ours.
The client is synchronous (urllib3); the controller runs it from its own threads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

PatchType = Literal["json", "merge", "strategic"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Largest response body we are willing to decode in one piece (a list of 10k transformed
# Deployments is well under this); a bigger answer is a bug or an attack, not data.
MAX_BODY_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Resource:
    """A REST collection: `/apis/<group>/<version>/namespaces/<ns>/<plural>`."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{_segment(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{_segment(name)}"
            if subresource:
                base += f"/{_segment(subresource)}"
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _segment(value: str) -> str:
    # Names come from the API server, but a name is still input: refuse anything that would
    # change the URL's shape rather than escaping it into something the server may reinterpret.
    if not value or "/" in value or value in {".", ".."} or any(c in value for c in "?#%\\"):
        raise ValueError(f"invalid path segment {value!r}")
    return value


DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
PODS = Resource("", "v1", "pods", "Pod")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
SCALEDOBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
PODAUTOSCALERS = Resource("autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers", "PodAutoscaler")
SERVERLESSSERVICES = Resource(
    "networking.internal.knative.dev", "v1alpha1", "serverlessservices", "ServerlessService"
)

WORKLOADS: dict[str, Resource] = {"Deployment": DEPLOYMENTS, "StatefulSet": STATEFULSETS}


# ---- errors -------------------------------------------------------------------------------


class ApiError(Exception):
    """A failed API call: HTTP status (0 = no answer), the Status reason and message."""

    def __init__(self, status: int, reason: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def retriable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 for a stale resourceVersion (optimistic concurrency): re-read and retry."""


class AlreadyExists(Conflict):
    """409 on create: the object is there already."""


class Gone(ApiError):
    """410: the resourceVersion a watch asked for is too old; relist."""


class Forbidden(ApiError):
    pass


class Invalid(ApiError):
    pass


def error_from_status(status: int, body: Mapping[str, Any] | None, fallback: str = "") -> ApiError:
    """Map an HTTP status plus a `metav1.Status` body to our error classes."""
    reason = str((body or {}).get("reason") or "") or _REASONS.get(status, "Unknown")
    message = str((body or {}).get("message") or fallback or reason)[:1000]
    retry_after: float | None = None
    details = (body or {}).get("details")
    if isinstance(details, Mapping) and isinstance(details.get("retryAfterSeconds"), int | float):
        retry_after = float(details["retryAfterSeconds"])
    cls: type[ApiError]
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 410 or reason in {"Expired", "Gone"}:
        cls = Gone
    elif status == 403:
        cls = Forbidden
    elif status == 422:
        cls = Invalid
    else:
        cls = ApiError
    return cls(status, reason, message, retry_after=retry_after)


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# ---- the protocol the rest of the reconciler uses --------------------------------------------


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]


class KubeApi(Protocol):
    """What the reconciler needs from a Kubernetes API server. Implementations raise `ApiError`."""

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

    def close(self) -> None: ...


# ---- the real implementation ---------------------------------------------------------------


class KubernetesApi:
    """`KubeApi` over the official client's `ApiClient` (kubeconfig or in-cluster)."""

    def __init__(
        self, api_client: Any, *, request_timeout: float = 30.0, field_manager: str = "knscale"
    ) -> None:
        self._client = api_client
        self._timeout = request_timeout
        self._field_manager = field_manager

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubernetesApi:
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
            ) from None
        return cls(kclient.ApiClient(configuration))

    @classmethod
    def in_cluster(cls) -> KubernetesApi:
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = _configuration(kclient)
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ApiError(0, "ConfigError", f"not running in a cluster: {exc}") from None
        return cls(kclient.ApiClient(configuration))

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
            raise ApiError(0, "ConnectionError", f"{method} {path}: {exc}") from None
        return resp.response

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        raw = self._send(method, path, query, body, content_type)
        try:
            data = raw.read(MAX_BODY_BYTES + 1)
        finally:
            raw.release_conn()
        if len(data) > MAX_BODY_BYTES:
            raise ApiError(
                raw.status, "ResponseTooLarge", f"{method} {path}: body over {MAX_BODY_BYTES} bytes"
            )
        decoded = _decode(data)
        if not 200 <= raw.status <= 299:
            raise error_from_status(raw.status, decoded, data[:300].decode("utf-8", "replace"))
        if decoded is None:
            raise ApiError(raw.status, "BadResponse", f"{method} {path}: response is not a JSON object")
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
            data = raw.read(1 << 20)
            raw.release_conn()
            raise error_from_status(raw.status, _decode(data), data[:300].decode("utf-8", "replace"))
        return self._events(raw, res)

    def _events(self, raw: Any, res: Resource) -> Iterator[WatchEvent]:
        import urllib3

        try:
            for line in raw:
                if not line.strip():
                    continue
                if len(line) > MAX_BODY_BYTES:
                    raise ApiError(0, "ResponseTooLarge", f"watch {res}: event over {MAX_BODY_BYTES} bytes")
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
