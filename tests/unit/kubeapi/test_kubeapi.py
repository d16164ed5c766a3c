"""kubeapi: one error tree, a response-size bound on every call, and one fake of one protocol."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import urllib3

from kubeapi.apply import get_or_none
from kubeapi.client import KubeApi, KubernetesApi
from kubeapi.errors import (
    MAX_EXCERPT_BYTES,
    MAX_MESSAGE_CHARS,
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    error_from_status,
)
from kubeapi.resources import BY_KIND, DEPLOYMENTS, MUTATING_WEBHOOKS, PODS, SECRETS
from kubeapi.testing import FakeKube, workload
from reconciler.runtime.writes import InstrumentedApi


class _Raw:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self._body = body
        self.headers = headers or {}

    def read(self, limit: int) -> bytes:
        return self._body[:limit]

    def release_conn(self) -> None:
        pass


class _StubClient:
    """The two `ApiClient` methods the adapter uses; replies are (status, body) or an exception."""

    def __init__(self, replies: list[tuple[int, bytes] | Exception]) -> None:
        self.replies = replies
        self.methods: list[str] = []

    def param_serialize(self, **kw: Any) -> tuple[str, str, dict[str, str], Any, Any]:
        self.methods.append(kw["method"])
        return kw["method"], kw["resource_path"], kw["header_params"], kw["body"], None

    def call_api(self, *args: Any, **kw: Any) -> Any:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return type("R", (), {"response": _Raw(*reply)})()


@pytest.mark.parametrize(
    ("status", "reason", "cls"),
    [
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (403, "Forbidden", Forbidden),
        (422, "Invalid", Invalid),
        (500, "InternalError", ApiError),
    ],
)
def test_status_maps_to_one_class_of_the_one_tree(status: int, reason: str, cls: type[ApiError]) -> None:
    err = error_from_status(status, {"kind": "Status", "reason": reason, "message": "m"})
    assert type(err) is cls and isinstance(err, ApiError)
    assert (err.status, err.reason, err.message) == (status, reason, "m")
    assert isinstance(error_from_status(409, {"reason": "AlreadyExists"}), Conflict)  # a create race is a 409


def test_messages_and_body_excerpts_are_truncated_for_the_logs() -> None:
    huge = "x" * (MAX_MESSAGE_CHARS * 5)
    assert len(error_from_status(500, {"message": huge}).message) == MAX_MESSAGE_CHARS
    stub = _StubClient([(502, b"<html>" + b"y" * 10_000)])
    with pytest.raises(ApiError) as caught:
        KubernetesApi(stub).get(PODS, "default", "p")
    assert caught.value.status == 502 and len(caught.value.message) == MAX_EXCERPT_BYTES


@pytest.mark.parametrize("verb", ["get", "create", "replace", "patch", "delete", "list"])
def test_every_call_is_bounded_by_the_response_size(verb: str) -> None:
    stub = _StubClient([(200, b'{"metadata": {}, "pad": "' + b"z" * 200 + b'"}')])
    api = KubernetesApi(stub, max_body_bytes=100)
    calls = {
        "get": lambda: api.get(SECRETS, "ns", "s"),
        "create": lambda: api.create(SECRETS, "ns", {"metadata": {"name": "s"}}),
        "replace": lambda: api.replace(SECRETS, "ns", "s", {"metadata": {"name": "s"}}),
        "patch": lambda: api.patch(DEPLOYMENTS, "ns", "d", [], patch_type="json"),
        "delete": lambda: api.delete(MUTATING_WEBHOOKS, None, "w"),
        "list": lambda: api.list(PODS, "ns"),
    }
    with pytest.raises(ApiError, match="ResponseTooLarge"):
        calls[verb]()


def test_delete_and_get_or_none_answer_absence_without_an_error() -> None:
    stub = _StubClient([(404, b'{"kind":"Status","reason":"NotFound"}')] * 2 + [(200, b"")])
    api = KubernetesApi(stub)
    assert get_or_none(api, SECRETS, "ns", "s") is None
    assert api.delete(SECRETS, "ns", "s") is False
    assert api.delete(SECRETS, "ns", "s") is True  # a DELETE needs no JSON object back
    assert stub.methods == ["GET", "DELETE", "DELETE"]


def test_a_transport_error_is_chained_as_the_cause() -> None:
    cause = urllib3.exceptions.ProtocolError("connection reset")
    with pytest.raises(ApiError, match="ConnectionError") as caught:
        KubernetesApi(_StubClient([cause])).get(PODS, "default", "p")
    assert caught.value.status == 0 and caught.value.__cause__ is cause


def _protocol_members() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(member).parameters)
        for name, member in vars(KubeApi).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize("impl", [KubernetesApi, FakeKube, InstrumentedApi])
def test_the_client_the_fake_and_the_wrapper_speak_the_same_protocol(impl: type) -> None:
    for name, params in _protocol_members().items():
        assert list(inspect.signature(getattr(impl, name)).parameters) == params, f"{impl.__name__}.{name}"


def test_the_fake_records_failed_writes_and_runs_hooks_before_writes() -> None:
    fake = FakeKube()
    fake.seed(DEPLOYMENTS, workload("web"))
    fake.before_write.append(lambda f: f.put(DEPLOYMENTS, workload("web", replicas=3)))
    stale = fake.obj(DEPLOYMENTS, "default", "web")
    assert stale is not None
    with pytest.raises(Conflict):  # the hook wrote in between: our resourceVersion is stale
        fake.replace(DEPLOYMENTS, "default", "web", stale)
    assert [(c.verb, c.error) for c in fake.writes(DEPLOYMENTS)] == [("replace", 409)]
    assert fake.delete(DEPLOYMENTS, "default", "web") is True
    assert fake.delete(DEPLOYMENTS, "default", "web") is False


def test_every_resource_is_known_by_its_kind() -> None:
    assert BY_KIND["Secret"] is SECRETS and BY_KIND["MutatingWebhookConfiguration"] is MUTATING_WEBHOOKS
    assert SECRETS.path("ns", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert MUTATING_WEBHOOKS.path("ignored", "w") == (
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/w"
    )


@pytest.mark.parametrize(
    ("body", "header", "wanted"),
    [
        ({"details": {"retryAfterSeconds": 3}}, "9", 3.0),  # the Status body wins
        ({"reason": "TooManyRequests"}, "2", 2.0),  # a proxy that sets only the header
        ({}, " 7 ", 7.0),
        ({}, "86400", 600.0),  # bounded
        ({}, "Wed, 21 Oct 2015 07:28:00 GMT", None),  # the HTTP-date form: not used by the API server
        ({}, None, None),
    ],
)
def test_retry_after_comes_from_the_body_or_the_header(
    body: dict[str, object], header: str | None, wanted: float | None
) -> None:
    assert error_from_status(429, body, "", header).retry_after == wanted
