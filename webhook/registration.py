"""The MutatingWebhookConfiguration and ValidatingWebhookConfiguration, as data. Pure.

Shape (design.md, "Registration"):
- `/mutate` is called for pod CREATE only (initContainers and volumes are immutable later),
  and, through CEL matchConditions, only for pods that carry an inject key. That keeps
  `failurePolicy: Fail` safe: an outage of knscale blocks only pods that asked for a model.
- `/validate` is called on CREATE/UPDATE of the kinds the translator judges, only when they
  carry model or autoscaling annotations, with `failurePolicy: Ignore` (Knative's own webhook
  stays authoritative).
- Both skip system namespaces, knscale's own namespace (no self-deadlock) and namespaces
  labelled `knscale.dev/injection=disabled`; both are side-effect free and answer within 5 s.

The same function renders `config/base/webhooks.yaml` (a Service clientConfig, caBundle left
out for the running server to fill in) and what `knscale register` prints or applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from translator.annotations import model_keys
from translator.annotations.table import AUTOSCALING_PREFIX

DEFAULT_NAMESPACE = "knscale-system"
DEFAULT_SERVICE = "knscale-webhook"
CONFIGURATION_NAME = "knscale-webhook"  # the same name for both kinds; RBAC names it once
SECRET_NAME = "knscale-webhook-certs"  # the self-managed CA + serving certificate
MUTATING_WEBHOOK_NAME = "inject-model.knscale.dev"
TEMPLATES_WEBHOOK_NAME = "inject-model-templates.knscale.dev"  # template mode (opt-in)
VALIDATING_WEBHOOK_NAME = "validate-annotations.knscale.dev"
MUTATE_PATH = "/mutate"
VALIDATE_PATH = "/validate"
TIMEOUT_SECONDS = 5

OPT_OUT_LABEL = "knscale.dev/injection"
OPT_OUT_VALUE = "disabled"
SYSTEM_NAMESPACES: tuple[str, ...] = ("kube-node-lease", "kube-public", "kube-system")

# Keys that ask for model injection (design.md, "Model keys").
INJECT_KEYS: tuple[str, ...] = (model_keys.BARE_INJECT, model_keys.INJECT)
# Unprefixed model keys users already write; every canonical key lives under knscale.dev/.
BARE_MODEL_KEYS: tuple[str, ...] = tuple(sorted(model_keys.LEGACY_KEYS))
# Prefixes of keys /validate judges: knscale's own and Knative's autoscaling keys (which
# include autoscaler-keda's extension keys).
JUDGED_PREFIXES: tuple[str, ...] = (AUTOSCALING_PREFIX, model_keys.PREFIX)
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

WebhookKind = Literal["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
ADMISSION_API_VERSION = "admissionregistration.k8s.io/v1"


class RegistrationError(ValueError):
    """An unusable registration target; the message says which field and how to fix it."""


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """In-cluster: the API server reaches the webhook through a Service."""

    name: str = DEFAULT_SERVICE
    namespace: str = DEFAULT_NAMESPACE
    port: int = 443

    def client_config(self, path: str) -> dict[str, Any]:
        return {"service": {"name": self.name, "namespace": self.namespace, "path": path, "port": self.port}}


@dataclass(frozen=True, slots=True)
class UrlTarget:
    """Local runs and e2e: the API server calls a URL such as https://127.0.0.1:8443."""

    base_url: str

    def __post_init__(self) -> None:
        check_webhook_url(self.base_url)

    def client_config(self, path: str) -> dict[str, Any]:
        return {"url": self.base_url.rstrip("/") + path}


Target = ServiceTarget | UrlTarget


def check_webhook_url(url: str) -> None:
    """The API server's rules for `clientConfig.url`: https, a host, no user info/query/fragment."""
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https":
        problems.append("the scheme must be https")
    if not parts.hostname:
        problems.append("a host is required")
    if parts.username is not None or parts.password is not None:
        problems.append("user info is not allowed")
    if parts.query or url.rstrip().endswith("?"):
        problems.append("a query is not allowed")
    if parts.fragment or "#" in url:
        problems.append("a fragment is not allowed")
    try:
        _ = parts.port
    except ValueError:
        problems.append("the port is not a number in 1-65535")
    if problems:
        raise RegistrationError(
            f"webhook URL {url!r}: {'; '.join(problems)} (example: https://127.0.0.1:8443)"
        )


# --- CEL ------------------------------------------------------------------------------------
# matchConditions see `object` as an untyped (dyn) value. Annotation keys contain '/' and '.',
# so they are only reachable with map syntax (`annotations['a.b/c']`) or `in`; every optional
# step is guarded with has(), because selecting an absent field is an evaluation error, and an
# error under failurePolicy Fail rejects the request.


def _cel_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid CEL string literal


def _cel_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_cel_str(v) for v in values) + "]"


def _has_chain(root: str, fields: Sequence[str]) -> str:
    """`has(o.a) && has(o.a.b) && ...` for every step below `root`."""
    guards = []
    path = root
    for name in fields:
        path = f"{path}.{name}"
        guards.append(f"has({path})")
    return " && ".join(guards)


def _guarded(fields: Sequence[str], test: Callable[[str], str]) -> str:
    """`has(...)` for every step of `object.<fields>`, then `test` of that expression."""
    expr = "object." + ".".join(fields)
    return f"({_has_chain('object', fields)} && {test(expr)})"


def inject_key_condition() -> str:
    """True for a pod whose own annotations carry an inject key."""
    keys = " || ".join(f"{_cel_str(k)} in object.metadata.annotations" for k in INJECT_KEYS)
    return f"has(object.metadata.annotations) && ({keys})"


def template_inject_condition() -> str:
    """True for an object whose pod template asks for injection or was injected before (so that
    removing the opt-in reaches the webhook, which then removes the injection)."""
    keys = (*INJECT_KEYS, model_keys.INJECTED)
    return _guarded(
        ["spec", "template", "metadata", "annotations"],
        lambda annotations: "(" + " || ".join(f"{_cel_str(k)} in {annotations}" for k in keys) + ")",
    )


def not_mirror_pod_condition() -> str:
    """Mirror (static) pods come from the kubelet and must not be mutated."""
    key = _cel_str(MIRROR_POD_ANNOTATION)
    return f"!has(object.metadata.annotations) || !({key} in object.metadata.annotations)"


def _carries_judged_key(annotations: str) -> str:
    prefixes = " || ".join(f"k.startsWith({_cel_str(p)})" for p in JUDGED_PREFIXES)
    return f"{annotations}.exists(k, {prefixes} || k in {_cel_list(BARE_MODEL_KEYS)})"


def judged_annotations_condition() -> str:
    """True when the object, or its pod template, carries a key /validate judges."""
    own = _guarded(["metadata", "annotations"], _carries_judged_key)
    template = _guarded(["spec", "template", "metadata", "annotations"], _carries_judged_key)
    return f"{own} || {template}"


# --- rules ----------------------------------------------------------------------------------


def _rule(group: str, version: str, resources: Sequence[str], operations: Sequence[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": sorted(operations),
        "resources": sorted(resources),
        "scope": "Namespaced",
    }


def _sorted_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Deterministic order, so re-registering never shows a spurious diff.
    return sorted(rules, key=lambda r: (r["apiGroups"], r["apiVersions"], r["resources"]))


def mutating_rules() -> list[dict[str, Any]]:
    return _sorted_rules([_rule("", "v1", ["pods"], ["CREATE"])])


def template_rules() -> list[dict[str, Any]]:
    """Template mode: the kinds of translator.injection.plan.TEMPLATE_KINDS."""
    ops = ["CREATE", "UPDATE"]
    return _sorted_rules(
        [
            _rule("apps", "v1", ["deployments", "statefulsets"], ops),
            _rule("serving.knative.dev", "*", ["configurations", "services"], ops),
        ]
    )


def validating_rules() -> list[dict[str, Any]]:
    ops = ["CREATE", "UPDATE"]
    return _sorted_rules(
        [
            _rule("", "v1", ["pods"], ops),
            _rule("apps", "v1", ["deployments", "statefulsets"], ops),
            _rule("autoscaling.internal.knative.dev", "*", ["podautoscalers"], ops),
            _rule("serving.knative.dev", "*", ["configurations", "revisions", "services"], ops),
        ]
    )


def namespace_selector(own_namespace: str) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": sorted({*SYSTEM_NAMESPACES, own_namespace}),
            },
            {"key": OPT_OUT_LABEL, "operator": "NotIn", "values": [OPT_OUT_VALUE]},
        ]
    }


def _with_ca(client_config: dict[str, Any], ca_bundle: str | None) -> dict[str, Any]:
    return {**client_config, "caBundle": ca_bundle} if ca_bundle else client_config


def _metadata(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"app.kubernetes.io/name": "knscale", "app.kubernetes.io/component": "webhook"},
    }


def render_mutating(
    target: Target,
    *,
    own_namespace: str = DEFAULT_NAMESPACE,
    ca_bundle: str | None = None,
    mutate_templates: bool = False,
) -> dict[str, Any]:
    """The pods webhook; with `mutate_templates` also the template-mode one (docs/annotations.md)."""
    webhook = {
        "name": MUTATING_WEBHOOK_NAME,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": _with_ca(target.client_config(MUTATE_PATH), ca_bundle),
        "failurePolicy": "Fail",
        "matchConditions": [
            {"name": "has-inject-key", "expression": inject_key_condition()},
            {"name": "not-mirror-pod", "expression": not_mirror_pod_condition()},
        ],
        "matchPolicy": "Equivalent",
        "namespaceSelector": namespace_selector(own_namespace),
        "objectSelector": {},
        "reinvocationPolicy": "IfNeeded",
        "rules": mutating_rules(),
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
    }
    webhooks = [webhook]
    if mutate_templates:
        webhooks.append(
            {
                **webhook,
                "name": TEMPLATES_WEBHOOK_NAME,
                # Fail, like the pods webhook: a Deployment updated to a new model while the webhook
                # is unreachable would otherwise keep the old initContainer, and its pods carry the
                # marker, so nothing would download the new model. Objects without the inject keys
                # or the marker never reach it (matchConditions).
                "failurePolicy": "Fail",
                "matchConditions": [
                    {"name": "template-has-inject-key-or-marker", "expression": template_inject_condition()}
                ],
                "rules": template_rules(),
            }
        )
    return {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "MutatingWebhookConfiguration",
        "metadata": _metadata(CONFIGURATION_NAME),
        "webhooks": webhooks,
    }


def render_validating(
    target: Target, *, own_namespace: str = DEFAULT_NAMESPACE, ca_bundle: str | None = None
) -> dict[str, Any]:
    webhook = {
        "name": VALIDATING_WEBHOOK_NAME,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": _with_ca(target.client_config(VALIDATE_PATH), ca_bundle),
        "failurePolicy": "Ignore",
        "matchConditions": [{"name": "has-judged-annotations", "expression": judged_annotations_condition()}],
        "matchPolicy": "Equivalent",
        "namespaceSelector": namespace_selector(own_namespace),
        "objectSelector": {},
        "rules": validating_rules(),
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
    }
    return {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "ValidatingWebhookConfiguration",
        "metadata": _metadata(CONFIGURATION_NAME),
        "webhooks": [webhook],
    }


def render_all(
    target: Target,
    *,
    own_namespace: str = DEFAULT_NAMESPACE,
    ca_bundle: str | None = None,
    mutate_templates: bool = False,
) -> list[dict[str, Any]]:
    """Both configurations, mutating first."""
    return [
        render_mutating(
            target, own_namespace=own_namespace, ca_bundle=ca_bundle, mutate_templates=mutate_templates
        ),
        render_validating(target, own_namespace=own_namespace, ca_bundle=ca_bundle),
    ]


def configuration_names() -> list[tuple[WebhookKind, str]]:
    return [
        ("MutatingWebhookConfiguration", CONFIGURATION_NAME),
        ("ValidatingWebhookConfiguration", CONFIGURATION_NAME),
    ]


def with_ca_bundle(configuration: dict[str, Any], ca_bundle: str) -> tuple[dict[str, Any], bool]:
    """A copy whose every webhook carries `ca_bundle`, and whether anything changed."""
    changed = False
    webhooks = []
    for webhook in configuration.get("webhooks") or []:
        client = dict(webhook.get("clientConfig") or {})
        if client.get("caBundle") != ca_bundle:
            client["caBundle"] = ca_bundle
            changed = True
        webhooks.append({**webhook, "clientConfig": client})
    return {**configuration, "webhooks": webhooks}, changed


def keep_live_ca_bundle(new: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """For a re-registration without a CA: keep the caBundle the running server put in place."""
    live_ca = {
        w.get("name"): (w.get("clientConfig") or {}).get("caBundle") for w in live.get("webhooks") or []
    }
    webhooks = []
    for webhook in new.get("webhooks") or []:
        client = dict(webhook.get("clientConfig") or {})
        if not client.get("caBundle") and live_ca.get(webhook.get("name")):
            client["caBundle"] = live_ca[webhook.get("name")]
        webhooks.append({**webhook, "clientConfig": client})
    return {**new, "webhooks": webhooks}
