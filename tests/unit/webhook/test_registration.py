"""webhook/registration.py: the two configurations, exactly as design.md's registration decision.

The CEL matchConditions are evaluated with a real CEL implementation (cel-python) against the
objects the API server would pass as `object`, so a typo or a missing has() guard fails here.
"""

from __future__ import annotations

import base64
import re
import sys
from typing import Any

import celpy
import kubernetes_validate
import pytest

from webhook.registration import (
    CONFIGURATION_NAME,
    RegistrationError,
    ServiceTarget,
    UrlTarget,
    inject_key_condition,
    judged_annotations_condition,
    keep_live_ca_bundle,
    not_mirror_pod_condition,
    render_all,
    render_mutating,
    render_validating,
    with_ca_bundle,
)

CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n").decode()
K8S_VERSION = "1.33.0"


def _hooks(obj: dict[str, Any]) -> dict[str, Any]:
    assert len(obj["webhooks"]) == 1
    hook: dict[str, Any] = obj["webhooks"][0]
    return hook


@pytest.fixture(scope="module")
def mutating() -> dict[str, Any]:
    return _hooks(render_mutating(ServiceTarget(), ca_bundle=CA))


@pytest.fixture(scope="module")
def validating() -> dict[str, Any]:
    return _hooks(render_validating(ServiceTarget(), ca_bundle=CA))


def test_common_fields(mutating: dict[str, Any], validating: dict[str, Any]) -> None:
    for hook in (mutating, validating):
        assert hook["sideEffects"] == "None"
        assert 1 <= hook["timeoutSeconds"] <= 5
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert hook["clientConfig"]["caBundle"] == CA
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+){2,}", hook["name"])  # fully qualified


def test_failure_and_reinvocation_policies(mutating: dict[str, Any], validating: dict[str, Any]) -> None:
    assert mutating["failurePolicy"] == "Fail"
    assert validating["failurePolicy"] == "Ignore"
    assert mutating["reinvocationPolicy"] == "IfNeeded"
    assert "reinvocationPolicy" not in validating  # not a field of validating webhooks


def test_mutate_is_pod_create_only(mutating: dict[str, Any]) -> None:
    assert mutating["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert mutating["clientConfig"]["service"]["path"] == "/mutate"


def test_validate_rules_cover_the_checked_kinds_sorted(validating: dict[str, Any]) -> None:
    rules = validating["rules"]
    covered = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert covered == {
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("autoscaling.internal.knative.dev", "podautoscalers"),
        ("serving.knative.dev", "configurations"),
        ("serving.knative.dev", "revisions"),
        ("serving.knative.dev", "services"),
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in rules)
    keys = [(r["apiGroups"], r["apiVersions"], r["resources"]) for r in rules]
    assert keys == sorted(keys)
    assert all(r["resources"] == sorted(r["resources"]) for r in rules)
    assert validating["clientConfig"]["service"]["path"] == "/validate"


def test_rendering_is_deterministic() -> None:
    assert render_all(ServiceTarget(), ca_bundle=CA) == render_all(ServiceTarget(), ca_bundle=CA)


def test_namespace_selector_excludes_system_own_and_opted_out(mutating: dict[str, Any]) -> None:
    own = render_mutating(ServiceTarget(namespace="ops"), own_namespace="ops")
    exprs = _hooks(own)["namespaceSelector"]["matchExpressions"]
    assert exprs == [
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-node-lease", "kube-public", "kube-system", "ops"],
        },
        {"key": "knscale.dev/injection", "operator": "NotIn", "values": ["disabled"]},
    ]
    assert mutating["namespaceSelector"]["matchExpressions"][0]["values"][0] == "knscale-system"


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Label-selector semantics for NotIn: a missing label matches."""
    for expr in selector["matchExpressions"]:
        assert expr["operator"] == "NotIn"
        if labels.get(expr["key"]) in expr["values"]:
            return False
    return True


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"kubernetes.io/metadata.name": "default"}, True),  # the seed's example: no label needed
        ({"kubernetes.io/metadata.name": "team-a", "knscale.dev/injection": "enabled"}, True),
        ({"kubernetes.io/metadata.name": "team-a", "knscale.dev/injection": "disabled"}, False),
        ({"kubernetes.io/metadata.name": "kube-system"}, False),
        ({"kubernetes.io/metadata.name": "kube-public"}, False),
        ({"kubernetes.io/metadata.name": "kube-node-lease"}, False),
        ({"kubernetes.io/metadata.name": "knscale-system"}, False),
    ],
)
def test_namespace_selection(mutating: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert _selected(mutating["namespaceSelector"], labels) is expected


def test_client_config_service_or_url() -> None:
    svc = _hooks(render_mutating(ServiceTarget("hook", "ns", 8443)))["clientConfig"]
    assert svc == {"service": {"name": "hook", "namespace": "ns", "path": "/mutate", "port": 8443}}
    url = _hooks(render_validating(UrlTarget("https://127.0.0.1:9443/"), ca_bundle=CA))["clientConfig"]
    assert url == {"url": "https://127.0.0.1:9443/validate", "caBundle": CA}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8443", "scheme must be https"),
        ("https://user:pw@127.0.0.1:8443", "user info"),
        ("https://127.0.0.1:8443?x=1", "query"),
        ("https://127.0.0.1:8443#frag", "fragment"),
        ("https://:8443", "host is required"),
        ("https://127.0.0.1:99999", "port"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(RegistrationError, match=problem):
        UrlTarget(url)


def test_ca_bundle_left_out_when_unknown() -> None:
    for obj in render_all(ServiceTarget()):
        assert "caBundle" not in _hooks(obj)["clientConfig"]


def test_with_ca_bundle_reports_change_only_when_needed() -> None:
    obj = render_mutating(ServiceTarget())
    updated, changed = with_ca_bundle(obj, CA)
    assert changed and _hooks(updated)["clientConfig"]["caBundle"] == CA
    again, changed_again = with_ca_bundle(updated, CA)
    assert not changed_again and again == updated
    assert "caBundle" not in _hooks(obj)["clientConfig"]  # input untouched


def test_keep_live_ca_bundle_on_reregistration() -> None:
    live = render_mutating(ServiceTarget(), ca_bundle=CA)
    merged = keep_live_ca_bundle(render_mutating(ServiceTarget()), live)
    assert _hooks(merged)["clientConfig"]["caBundle"] == CA
    other = base64.b64encode(b"other").decode()
    explicit = keep_live_ca_bundle(render_mutating(ServiceTarget(), ca_bundle=other), live)
    assert _hooks(explicit)["clientConfig"]["caBundle"] == other


@pytest.mark.parametrize("target", [ServiceTarget(), UrlTarget("https://127.0.0.1:8443")])
def test_schema_valid(target: ServiceTarget | UrlTarget) -> None:
    for obj in render_all(target, ca_bundle=CA):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["name"] == CONFIGURATION_NAME


# --- CEL ----------------------------------------------------------------------------------

_LIMIT = sys.getrecursionlimit()
_ENV = celpy.Environment()  # raises the interpreter's recursion limit to 2500 as a side effect
sys.setrecursionlimit(_LIMIT)  # ...which would hide RecursionErrors from every later test


def _eval(expression: str, obj: dict[str, Any]) -> bool:
    program = _ENV.program(_ENV.compile(expression))
    result = program.evaluate({"object": celpy.json_to_cel(obj)})
    assert isinstance(result, celpy.celtypes.BoolType), f"{expression!r} gave {result!r}, not a bool"
    return bool(result)


def _matches(hook: dict[str, Any], obj: dict[str, Any]) -> bool:
    return all(_eval(c["expression"], obj) for c in hook["matchConditions"])


def _pod(annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "app"}]}}


@pytest.mark.parametrize(
    ("annotations", "called"),
    [
        ({"injectModelInitContainer": "true"}, True),
        ({"knscale.dev/inject-model": "true"}, True),
        ({"knscale.dev/inject-model": "false"}, True),  # the handler decides on the value
        ({"injectModelInitContainer": "yes please"}, True),  # ... and denies this one
        ({"modelBucket": "b", "modelPath": "/p"}, False),  # no inject key: not injected
        ({"knscale.dev/model-uri": "s3://b/p"}, False),
        ({"unrelated": "x"}, False),
        ({}, False),
        (None, False),  # no annotations map at all must not be an evaluation error
        ({"injectModelInitContainer": "true", "kubernetes.io/config.mirror": "abc"}, False),
    ],
)
def test_mutate_match_conditions(
    mutating: dict[str, Any], annotations: dict[str, str] | None, called: bool
) -> None:
    assert _matches(mutating, _pod(annotations)) is called


def _ksvc(template: dict[str, str] | None, own: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "helloworld-go", "namespace": "default"}
    if own is not None:
        meta["annotations"] = own
    tmeta: dict[str, Any] = {}
    if template is not None:
        tmeta["annotations"] = template
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"template": {"metadata": tmeta, "spec": {"containers": [{"image": "x"}]}}},
    }


@pytest.mark.parametrize(
    ("obj", "called"),
    [
        (_ksvc({"autoscaling.knative.dev/target": "10"}), True),
        (_ksvc({"modelBucket": "autotables_47"}), True),
        (_ksvc(None, {"initContainerImage": "x"}), True),
        (_ksvc(None, {"knscale.dev/model-uri": "s3://b"}), True),
        (_ksvc({"other.io/x": "1"}, {"serving.knative.dev/creator": "me"}), False),
        (_ksvc(None), False),
        (
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "x"},
                "spec": {},
            },
            False,
        ),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": {"name": "r"}}, False),
        (
            {
                "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
                "kind": "PodAutoscaler",
                "metadata": {
                    "name": "pa",
                    "annotations": {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"},
                },
            },
            True,
        ),
        (_pod({"knscale.dev/model-injected": "true"}), True),
        (_pod({"app": "x"}), False),
        (_pod(None), False),
    ],
)
def test_validate_match_conditions(validating: dict[str, Any], obj: dict[str, Any], called: bool) -> None:
    assert _matches(validating, obj) is called


def test_the_seed_example_reaches_both_webhooks(mutating: dict[str, Any], validating: dict[str, Any]) -> None:
    # `kn service create ... --annotation injectModelInitContainer=true ...`: the ksvc is
    # validated, and the pod Knative creates from its template is mutated.
    seed = {
        "autoscaling.knative.dev/target": "10",
        "modelBucket": "autotables_47",
        "modelPath": "/autotables/47/trained_model/2616/1629363245/",
        "initContainerImage": "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0",
        "injectModelInitContainer": "true",
    }
    assert _matches(
        validating, _ksvc(seed, {k: v for k, v in seed.items() if not k.startswith("autoscaling")})
    )
    assert _matches(mutating, _pod(seed))


def test_expressions_guard_annotation_access() -> None:
    expressions = [inject_key_condition(), not_mirror_pod_condition(), judged_annotations_condition()]
    for expression in expressions:
        # Keys with '/' or '.' cannot be selected with dot syntax; only exists()/in/[...] are used.
        assert not re.search(r"annotations\.(?!exists\()", expression), expression
        # Every `.annotations` use is preceded by its has() guard.
        for match in re.finditer(r"(object(?:\.\w+)+\.annotations)(?!\))", expression):
            assert f"has({match.group(1)})" in expression[: match.start()], (match.group(1), expression)


def test_an_unguarded_expression_is_caught_by_the_evaluator() -> None:
    # Proves the harness detects what the guards prevent: selecting an absent map is an error.
    with pytest.raises(celpy.CELEvalError):
        _eval('"injectModelInitContainer" in object.metadata.annotations', _pod(None))


# --- template mode ------------------------------------------------------------------------------


def test_template_mode_adds_a_template_webhook_and_nothing_else_changes() -> None:
    plain = render_mutating(ServiceTarget())
    with_templates = render_mutating(ServiceTarget(), mutate_templates=True)
    assert len(plain["webhooks"]) == 1 and len(with_templates["webhooks"]) == 2
    pods, templates = with_templates["webhooks"]
    assert pods == plain["webhooks"][0]
    assert templates["name"] == "inject-model-templates.knscale.dev"
    assert templates["failurePolicy"] == "Fail" and templates["reinvocationPolicy"] == "IfNeeded"
    assert templates["clientConfig"] == pods["clientConfig"]
    assert templates["namespaceSelector"] == pods["namespaceSelector"]
    assert templates["rules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["deployments", "statefulsets"],
            "scope": "Namespaced",
        },
        {
            "apiGroups": ["serving.knative.dev"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["configurations", "services"],
            "scope": "Namespaced",
        },
    ]
    kubernetes_validate.validate(with_templates, K8S_VERSION, strict=True)
    # The in-cluster caBundle sync covers both webhooks.
    synced, changed = with_ca_bundle(with_templates, "Q0E=")
    assert changed and all(w["clientConfig"]["caBundle"] == "Q0E=" for w in synced["webhooks"])


def _template(annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {} if annotations is None else {"annotations": annotations}
    return {"kind": "Deployment", "spec": {"template": {"metadata": meta, "spec": {"containers": []}}}}


@pytest.mark.parametrize(
    ("obj", "called"),
    [
        (_template({"injectModelInitContainer": "true"}), True),
        (_template({"knscale.dev/inject-model": "true"}), True),
        (_template({"knscale.dev/model-injected": "true"}), True),  # the opt-in was removed: undo
        (_template({"other": "x"}), False),
        (_template({}), False),
        (_template(None), False),
        ({"kind": "Deployment", "spec": {}}, False),
        ({"kind": "Deployment"}, False),
    ],
)
def test_template_match_condition(obj: dict[str, Any], called: bool) -> None:
    webhook = render_mutating(ServiceTarget(), mutate_templates=True)["webhooks"][1]
    assert all(_eval(c["expression"], obj) for c in webhook["matchConditions"]) is called
