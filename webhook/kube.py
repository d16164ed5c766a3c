"""The webhook's one adapter to the Kubernetes API: its Secret and its two configurations.

Everything that calls the official `kubernetes` client is here; `certmanager` and
`knscale register` speak `KubeApi` (plain dicts, our own errors), and unit tests hand them an
in-memory fake. Requests go through the client's `ApiClient` (`param_serialize` +
`call_api`) so kubeconfig/in-cluster auth and TLS stay the client's job, while bodies stay
plain JSON dicts (the generated models drop fields they do not know, and their generator is
being replaced).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MAX_BODY_BYTES = 4 * 1024 * 1024  # a Secret is at most 1 MiB; anything bigger is not ours


@dataclass(frozen=True, slots=True)
class Kind:
    """A REST collection the webhook touches."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            base += f"/namespaces/{_segment(namespace)}"
        base += f"/{self.plural}"
        return base if name is None else f"{base}/{_segment(name)}"


def _segment(value: str) -> str:
    if not value or "/" in value or value in {".", ".."} or any(c in value for c in "?#%\\"):
        raise ValueError(f"invalid name {value!r}")
    return value


SECRETS = Kind("v1", "Secret", "secrets", namespaced=True)
MUTATING_WEBHOOKS = Kind(
    "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False
)
VALIDATING_WEBHOOKS = Kind(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    False,
)
KINDS: dict[str, Kind] = {k.kind: k for k in (SECRETS, MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS)}


class ApiError(Exception):
    """A failed call: HTTP status (0 = no answer), reason and message from the Status body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: stale resourceVersion on update, or AlreadyExists on create. Re-read and retry."""


def error_from_status(status: int, body: Mapping[str, Any] | None, fallback: str = "") -> ApiError:
    reason = str((body or {}).get("reason") or "") or {
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
    }.get(status, "Error")
    message = str((body or {}).get("message") or fallback or reason)[:1000]
    cls = NotFound if status == 404 else Conflict if status == 409 else ApiError
    return cls(status, reason, message)


class KubeApi(Protocol):
    """get → None when absent; create/replace raise Conflict on races; delete → False when absent."""

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def create(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]: ...

    def replace(
        self, kind: Kind, name: str, body: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]: ...

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool: ...


class KubernetesApi:
    """`KubeApi` over the official client (kubeconfig or in-cluster service account)."""

    def __init__(self, api_client: Any, *, request_timeout: float = 15.0) -> None:
        self._client = api_client
        self._timeout = request_timeout

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubernetesApi:
        from kubernetes import config as kconfig

        try:
            client = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, persist_config=False
            )
        except Exception as exc:  # the loader raises several unrelated exception types
            raise ApiError(
                0, "ConfigError", f"cannot load kubeconfig {path or '~/.kube/config'}: {exc}"
            ) from None
        return cls(client)

    @classmethod
    def in_cluster(cls) -> KubernetesApi:
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = kclient.Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ApiError(0, "ConfigError", f"not running in a cluster: {exc}") from None
        return cls(kclient.ApiClient(configuration))

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any] | None]:
        import urllib3

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        query = [("fieldManager", "knscale")] if method in {"POST", "PUT"} else []
        try:
            m, url, hdrs, data, post = self._client.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            raw = self._client.call_api(m, url, hdrs, data, post, _request_timeout=self._timeout).response
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "ConnectionError", f"{method} {path}: {exc}") from None
        try:
            payload = raw.read(MAX_BODY_BYTES + 1)
        finally:
            raw.release_conn()
        try:
            decoded = json.loads(payload) if payload else None
        except ValueError:
            decoded = None
        obj = decoded if isinstance(decoded, dict) else None
        if not 200 <= raw.status <= 299:
            raise error_from_status(raw.status, obj, payload[:300].decode("utf-8", "replace"))
        return raw.status, obj

    def _object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        _, obj = self._call(method, path, body)
        if obj is None:
            raise ApiError(0, "BadResponse", f"{method} {path}: response is not a JSON object")
        return obj

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self._object("GET", kind.path(namespace, name))
        except NotFound:
            return None

    def create(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return self._object("POST", kind.path(namespace), dict(body))

    def replace(
        self, kind: Kind, name: str, body: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        return self._object("PUT", kind.path(namespace, name), dict(body))

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        try:
            self._call("DELETE", kind.path(namespace, name))
        except NotFound:
            return False
        return True


def apply(
    api: KubeApi,
    obj: Mapping[str, Any],
    keep: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> str:
    """Create `obj`, or replace the live one keeping its resourceVersion. Returns what happened.

    `keep(new, live)` may carry fields over from the live object (such as a caBundle the
    running server filled in) before the replace.
    """
    kind = KINDS[str(obj["kind"])]
    name = str(obj["metadata"]["name"])
    namespace = obj["metadata"].get("namespace")
    for _ in range(5):
        live = api.get(kind, name, namespace)
        if live is None:
            try:
                api.create(kind, obj, namespace)
            except Conflict:
                continue
            return "created"
        merged = keep(obj, live) if keep else obj
        body = {
            **merged,
            "metadata": {**merged["metadata"], "resourceVersion": live["metadata"].get("resourceVersion")},
        }
        try:
            api.replace(kind, name, body, namespace)
        except Conflict:
            continue
        return "replaced"
    raise ApiError(409, "Conflict", f"{kind.kind} {name}: still changing after 5 attempts")
