"""The real adapter (`kubeapi.client.KubernetesApi`) over HTTP, against a loopback stand-in for
the API server: paths, verbs, content types, query parameters, error mapping and watch streams."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client as kclient

from kubeapi.client import KubernetesApi
from kubeapi.errors import AlreadyExists, ApiError, Conflict, Gone, NotFound
from kubeapi.resources import DEPLOYMENTS, PODAUTOSCALERS, PODS

Reply = tuple[int, Any]  # (status, JSON body or list of watch-event lines)


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[tuple[str, str], Reply] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                outer.requests.append(
                    {
                        "method": self.command,
                        "path": path,
                        "query": query,
                        "content_type": self.headers.get("Content-Type"),
                        "authorization": self.headers.get("Authorization"),
                        "body": json.loads(body) if body else None,
                    }
                )
                status, payload = outer.routes.get(
                    (self.command, path), (404, {"kind": "Status", "reason": "NotFound", "message": "nope"})
                )
                if isinstance(payload, list):  # a watch stream: one JSON document per line
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    for event in payload:
                        self.wfile.write(json.dumps(event).encode() + b"\n")
                        self.wfile.flush()
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def api_for(url: str) -> KubernetesApi:
    cfg = kclient.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": "token-123"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return KubernetesApi(kclient.ApiClient(cfg), request_timeout=5)


def test_list_fills_kind_and_returns_the_version(server: FakeServer) -> None:
    server.routes[("GET", "/apis/apps/v1/namespaces/default/deployments")] = (
        200,
        {
            "kind": "DeploymentList",
            "metadata": {"resourceVersion": "42"},
            "items": [{"metadata": {"name": "a"}}],
        },
    )
    result = api_for(server.url).list(DEPLOYMENTS, "default", label_selector="app=a")
    assert result.resource_version == "42"
    assert result.items == [{"metadata": {"name": "a"}, "apiVersion": "apps/v1", "kind": "Deployment"}]
    assert server.requests[0]["query"] == "labelSelector=app%3Da"


def test_core_group_paths_and_cluster_wide_lists(server: FakeServer) -> None:
    server.routes[("GET", "/api/v1/pods")] = (200, {"metadata": {"resourceVersion": "7"}, "items": []})
    assert api_for(server.url).list(PODS, None).resource_version == "7"


def test_scale_patch_is_a_json_patch_on_the_subresource(server: FakeServer) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/web/scale"
    server.routes[("PATCH", path)] = (200, {"kind": "Scale", "spec": {"replicas": 3}})
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    out = api_for(server.url).patch(DEPLOYMENTS, "default", "web", ops, subresource="scale")
    assert out["spec"]["replicas"] == 3
    req = server.requests[0]
    assert req["content_type"] == "application/json-patch+json" and req["body"] == ops
    assert "fieldManager=knscale" in req["query"]


def test_status_replace_and_merge_patch(server: FakeServer) -> None:
    path = "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/ns/podautoscalers/pa/status"
    server.routes[("PUT", path)] = (200, {"metadata": {"name": "pa"}})
    server.routes[("PATCH", "/api/v1/namespaces/ns/pods/p")] = (200, {"metadata": {"name": "p"}})
    api = api_for(server.url)
    api.replace(PODAUTOSCALERS, "ns", "pa", {"metadata": {"name": "pa"}, "status": {}}, subresource="status")
    api.patch(PODS, "ns", "p", {"metadata": {"labels": {"x": "y"}}}, patch_type="merge")
    assert server.requests[0]["method"] == "PUT"
    assert server.requests[1]["content_type"] == "application/merge-patch+json"


def test_errors_map_to_our_classes(server: FakeServer) -> None:
    base = "/apis/apps/v1/namespaces/default/deployments"
    server.routes[("POST", base)] = (409, {"kind": "Status", "reason": "AlreadyExists", "message": "exists"})
    server.routes[("PUT", f"{base}/web")] = (
        409,
        {"kind": "Status", "reason": "Conflict", "message": "modified"},
    )
    api = api_for(server.url)
    with pytest.raises(AlreadyExists):
        api.create(DEPLOYMENTS, "default", {"metadata": {"name": "web"}})
    with pytest.raises(Conflict) as conflict:
        api.replace(DEPLOYMENTS, "default", "web", {"metadata": {"name": "web"}})
    assert not isinstance(conflict.value, AlreadyExists)
    with pytest.raises(NotFound):
        api.get(DEPLOYMENTS, "default", "missing")
    with pytest.raises(ValueError):
        api.get(DEPLOYMENTS, "default", "../../secrets")


def test_watch_streams_events_and_maps_410_to_gone(server: FakeServer) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    server.routes[("GET", path)] = (
        200,
        [
            {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "11"}}},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
            {
                "type": "ERROR",
                "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
            },
        ],
    )
    events = api_for(server.url).watch(DEPLOYMENTS, "default", resource_version="10", timeout_seconds=30)
    assert next(events).object["metadata"]["name"] == "a"
    assert next(events).type == "BOOKMARK"
    with pytest.raises(Gone):
        next(events)
    query = server.requests[0]["query"]
    for part in ("watch=true", "resourceVersion=10", "allowWatchBookmarks=true", "timeoutSeconds=30"):
        assert part in query


def test_kubeconfig_is_loaded_and_its_token_sent(server: FakeServer, tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: c, cluster: {{server: '{server.url}'}}}}]\n"
        "contexts: [{name: t, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: s3cret}}]\n"
    )
    server.routes[("GET", "/apis/apps/v1/namespaces/default/deployments/web")] = (
        200,
        {"metadata": {"name": "web"}},
    )
    api = KubernetesApi.from_kubeconfig(str(kubeconfig))
    assert api.get(DEPLOYMENTS, "default", "web")["metadata"]["name"] == "web"
    assert server.requests[0]["authorization"] == "Bearer s3cret"
    with pytest.raises(ApiError) as err:
        KubernetesApi.from_kubeconfig(str(tmp_path / "missing"))
    assert err.value.reason == "ConfigError"


def test_no_server_is_an_api_error_with_status_zero() -> None:
    api = api_for("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(ApiError) as err:
        api.get(DEPLOYMENTS, "default", "web")
    assert err.value.status == 0 and err.value.retriable
