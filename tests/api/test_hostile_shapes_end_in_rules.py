"""Values of the wrong type where names are expected, templates nested ~1,000 deep and specs with
more items than knscale processes end in a rule (KNS022, KNS024, KNS904), never in the
internal-error denial KNS030 (or KNS031 on /validate) with a traceback in the log."""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import sys
from typing import Any

import jsonpatch
import pytest
from fastapi.testclient import TestClient

from translator.config.knscale import KnscaleConfig
from webhook.admission import Review, mutate, validate
from webhook.app import create_app

CONFIG = KnscaleConfig.model_validate({"injection": {"mutate_templates": True}})
ANN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m"}
DEEP = functools.reduce(lambda inner, _: {"a": [inner]}, range(600), {})


def _spec() -> dict[str, Any]:
    return {
        "containers": [{"name": "app", "image": "a:1", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}],
        "initContainers": [
            {"name": "knscale-model-init", "image": "i:1", "env": [{"name": "A", "value": "1"}]}
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }


def _set(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


HOSTILE_SPECS = {
    f"{'.'.join(map(str, path))}={type(value).__name__}": _set(_spec(), path, value)
    for path in [
        ("containers", 0, "name"),
        ("initContainers", 0, "env", 0, "name"),
        ("initContainers", 0, "env", 0),
        ("initContainers", 0, "envFrom"),
        ("containers", 0, "volumeMounts", 0, "mountPath"),
        ("containers", 0, "volumeMounts", 0, "name"),
        ("volumes", 0, "name"),
    ]
    for value in ({"a": 1}, ["x"], 7)
} | {
    "deep-container": _set(_spec(), ("containers", 0, "x"), DEEP),
    "deep-init": _set(_spec(), ("initContainers", 0, "x"), DEEP),
    "deep-volume": _set(_spec(), ("volumes", 0, "emptyDir"), DEEP),
    "many-containers": _set(_spec(), ("containers",), [{"name": f"c{i}"} for i in range(1001)]),
    "many-env": _set(_spec(), ("initContainers", 0, "env"), [{"name": f"E{i}"} for i in range(5001)]),
}


def _reviews(spec: dict[str, Any]) -> list[Review]:
    out = []
    for marked in (False, True):
        ann = {**ANN, **({"knscale.dev/model-injected": "true"} if marked else {})}
        template = {"metadata": {"annotations": ann}, "spec": spec}
        objects = [
            ("", "v1", "Pod", {"metadata": {"name": "p", "annotations": ann}, "spec": spec}),
            ("apps", "apps/v1", "Deployment", {"metadata": {"name": "d"}, "spec": {"template": template}}),
            (
                "serving.knative.dev",
                "serving.knative.dev/v1",
                "Service",
                {"metadata": {"name": "s"}, "spec": {"template": template}},
            ),
        ]
        for group, api_version, kind, obj in objects:
            request = {
                "uid": "u",
                "kind": {"group": group, "version": "v1", "kind": kind},
                "operation": "CREATE",
                "namespace": "ml",
                "object": {"apiVersion": api_version, "kind": kind, **obj},
            }
            out.append(Review("admission.k8s.io/v1", "u", request))
    return out


@pytest.mark.parametrize("spec", HOSTILE_SPECS.values(), ids=HOSTILE_SPECS.keys())
def test_a_hostile_spec_ends_in_a_rule(spec: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    for review in _reviews(spec):
        for handler in (mutate, validate):
            decision = handler(review, CONFIG)
            assert decision.outcome != "error", (handler.__name__, review.kind, decision.body[:300])
            assert b"KNS030" not in decision.body and b"KNS031" not in decision.body
    assert "Traceback" not in caplog.text and not caplog.records


def test_the_bounds_name_their_rule() -> None:
    for name, rule in (
        ("deep-init", b"KNS904"),
        ("many-containers", b"KNS024"),
        ("initContainers.0.env.0.name=dict", b"KNS022"),
    ):
        decision = mutate(_reviews(HOSTILE_SPECS[name])[0], CONFIG)
        assert decision.outcome == "denied" and rule in decision.body, decision.body[:300]


def test_the_bounds_table_states_the_bounds_in_code() -> None:
    from helpers.paths import DOCS

    from knscale.yamlloader import MAX_DOCUMENT_NODES
    from translator.injection import bounds

    table = (DOCS / "webhook.md").read_text().split("## Bounds", 1)[1].split("\n## ", 1)[0]
    for figure in (bounds.MAX_CONTAINERS, bounds.MAX_VOLUMES, bounds.MAX_CONTAINER_ITEMS, MAX_DOCUMENT_NODES):
        assert f"{figure:,}" in table
    assert f"| {bounds.MAX_NESTING} levels |" in table


def test_a_name_nested_a_thousand_deep_is_never_formatted(client: TestClient) -> None:
    """Found by `make fuzz`: a pod whose generateName is a structure ~990 levels deep made the
    object reference and the log line format it (RecursionError → the internal-error reply).
    Names are read only when they are strings (translator.core.objects.display_name)."""
    deep: Any = "leaf"
    for i in range(990):
        deep = {"a": deep} if i % 2 else [deep]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": deep,
            "annotations": {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m/"},
        },
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-deep",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "object": pod,
        },
    }
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)  # only to write the body: the server reads it with orjson
    try:
        body = json.dumps(review)
    finally:
        sys.setrecursionlimit(limit)
    for path in ("/mutate", "/validate"):
        reply = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["response"]["uid"] == "u-deep"


@pytest.mark.parametrize("kind", ["Pod", "Deployment"])
def test_an_object_at_the_item_bound_is_injected_and_admitted_again_unchanged(kind: str) -> None:
    """Found by `make fuzz` in template mode: a template with exactly 1,000 volumes was injected
    (knscale adds its own volumes), and the injected object, admitted again, was then refused
    with KNS024. knscale's own items do not count against the bound."""
    cfg = KnscaleConfig.model_validate({"injection": {"mutate_templates": True}})
    client = TestClient(create_app(cfg))
    volumes = [{"name": f"v{i}", "emptyDir": {}} for i in range(1000)]
    annotations = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/m/"}
    spec = {"containers": [{"name": "app", "image": "x"}], "volumes": volumes}
    if kind == "Pod":
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "annotations": annotations},
            "spec": spec,
        }
        group, resource = "", "pods"
    else:
        obj = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}, "annotations": annotations}, "spec": spec},
            },
        }
        group, resource = "apps", "deployments"

    def admit(o: dict[str, Any], uid: str) -> dict[str, Any]:
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "namespace": "default",
                "operation": "CREATE",
                "object": o,
            },
        }
        reply = client.post(
            "/mutate", content=json.dumps(review), headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 200, reply.text
        response: dict[str, Any] = reply.json()["response"]
        return response

    first = admit(obj, "first")
    assert first["allowed"] is True and first.get("patch"), first
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(first["patch"])))
    again = admit(patched, "again")
    assert again["allowed"] is True, again.get("status")
    assert not json.loads(base64.b64decode(again["patch"])) if again.get("patch") else True


def _deep_text(levels: int) -> str:
    """A map nested `levels` deep, as JSON text (written without recursion)."""
    return '{"a":' * levels + '"x"' + "}" * levels


_KNATIVE_SERVICE = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "hello", "namespace": "default"},
    "spec": {"template": {"metadata": {"annotations": ANN}, "spec": {"containers": [{"image": "a:1"}]}}},
}
_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "annotations": ANN},
    "spec": _spec(),
}
# Where the fuzz campaign (seed 3001, template mode) put a ~1,000-deep map: `kind` and
# `apiVersion` were formatted with str(), whose repr recursed past the default limit.
DEEP_AT = {
    "pod.kind": (_POD, ("kind",)),
    "pod.apiVersion": (_POD, ("apiVersion",)),
    "pod.container-name": (_POD, ("spec", "containers", 0, "name")),
    "pod.mount-name": (_POD, ("spec", "containers", 0, "volumeMounts", 0, "name")),
    "ksvc.kind": (_KNATIVE_SERVICE, ("kind",)),
    "ksvc.apiVersion": (_KNATIVE_SERVICE, ("apiVersion",)),
    "ksvc.revision-name": (_KNATIVE_SERVICE, ("spec", "template", "metadata", "name")),
    "ksvc.container-name": (_KNATIVE_SERVICE, ("spec", "template", "spec", "containers", 0, "name")),
}


@pytest.mark.parametrize("where", sorted(DEEP_AT))
@pytest.mark.parametrize("endpoint", ["/mutate", "/validate"])
def test_a_deep_map_where_a_string_belongs_ends_in_a_reply_not_an_internal_error(
    where: str, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The server runs at the interpreter's default limit; a library that raised it in this process
    # (celpy does, on import of the registration tests) would hide the RecursionError.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        _deep_map_reply(where, endpoint, caplog)
    finally:
        sys.setrecursionlimit(limit)


def _deep_map_reply(where: str, endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    obj, path = DEEP_AT[where]
    placed = _set(obj, path, "__DEEP__")
    group, kind = ("serving.knative.dev", "Service") if obj is _KNATIVE_SERVICE else ("", "Pod")
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-deep-name",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
            "namespace": "default",
            "operation": "CREATE",
            "object": placed,
        },
    }
    body = json.dumps(review).replace('"__DEEP__"', _deep_text(990))
    client = TestClient(create_app(CONFIG, decision_cache=False))
    with caplog.at_level(logging.ERROR):
        reply = client.post(endpoint, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    assert response["uid"] == "u-deep-name"
    message = (response.get("status") or {}).get("message", "") + " ".join(response.get("warnings") or [])
    assert "KNS030" not in message and "KNS031" not in message, message
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
