"""AdmissionReview `admission.k8s.io/v1` and `v1beta1`: parse once, answer in the version received.

Two error channels (as in kopf and Knative): a body that is not an AdmissionReview is an HTTP
error (`ReviewError`, 400/413/415); a decision about a valid review is always HTTP 200 with
`response.allowed`. The handlers (`mutate`, `validate`) are plain functions of the parsed review
and the configuration, with no HTTP in them, so they are tested and benchmarked directly.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef, Severity
from translator.core.objects import META_ANNOTATIONS, TEMPLATE_ANNOTATIONS, display_name, object_ref, text_of
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.injection.plan import InjectionPlan, plan_injection
from translator.injection.template import TEMPLATE_KINDS, plan_template_injection, settle_template
from translator.validate import validate_object
from webhook.audit import audit_annotations, rule_ids, shown_model
from webhook.patch import TEMPLATE_PREFIX, diff_ops, encode_patch, injected_template, plan_ops
from webhook.registration import MIRROR_POD_ANNOTATION

log = logging.getLogger("knscale.webhook")

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"
VERSIONS = (V1, V1BETA1)

# Warnings reach clients as HTTP `Warning: 299` headers. The API documents: keep each ≤ 120
# characters, longer ones may be truncated past 256, and past 4096 characters in total further
# warnings are dropped. We stay inside all three and say when we cut.
WARNING_MAX_CHARS = 120
WARNINGS_MAX_TOTAL = 4096
DENIAL_MAX_CHARS = 16 * 1024

Outcome = Literal["allowed", "patched", "denied", "error"]
# The translator calls the handlers make, as parameters so a caller (a test, through the app's
# handler dependencies) can pass a different one: the handlers' own guards stay in the path.
PlanPod = Callable[[Mapping[str, Any], str | None, KnscaleConfig], tuple[InjectionPlan | None, list[Finding]]]
CheckObject = Callable[[Mapping[str, Any], KnscaleConfig], list[Finding]]


class ReviewError(Exception):
    """The body is not a usable AdmissionReview; answered with an HTTP error, not a review."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True, slots=True)
class Review:
    api_version: str
    uid: str
    request: Mapping[str, Any]

    @property
    def operation(self) -> str:
        return str(self.request.get("operation") or "")

    @property
    def kind(self) -> tuple[str, str]:
        """(group, kind) of the object under review."""
        k = self.request.get("kind")
        if not isinstance(k, Mapping):
            return "", ""
        return text_of(k.get("group")), text_of(k.get("kind"))

    @property
    def sub_resource(self) -> str:
        return str(self.request.get("subResource") or "")


@dataclass(frozen=True, slots=True)
class Decision:
    body: bytes
    outcome: Outcome
    rules: tuple[str, ...] = ()  # every finding's rule id (webhook.audit.rule_ids)
    denied_by: tuple[str, ...] = ()  # the rule ids of the errors that denied it
    model: str | None = None  # the injected model source, redacted and clipped


def parse_review(body: bytes) -> Review:
    """Decode and check the envelope; every failure is a `ReviewError` with a message for the caller."""
    if not body:
        raise ReviewError(400, "empty request body; expected an AdmissionReview")
    try:
        # orjson: strict RFC 8259 over UTF-8 bytes, nesting capped at 1024 levels (no RecursionError).
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReviewError(400, f"request body is not valid JSON: {_json_problem(body, exc)}") from None
    if not isinstance(doc, dict):
        raise ReviewError(400, "request body is not a JSON object; expected an AdmissionReview")
    api_version = doc.get("apiVersion")
    if api_version not in VERSIONS:
        raise ReviewError(
            400, f"unsupported apiVersion {str(api_version)[:100]!r}; expected {V1} or {V1BETA1}"
        )
    if doc.get("kind") != "AdmissionReview":
        raise ReviewError(400, f"kind is {str(doc.get('kind'))[:100]!r}, expected AdmissionReview")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise ReviewError(400, "AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(400, "AdmissionReview request has no uid")
    return Review(api_version, uid, request)


def _json_problem(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """The parser's reason with its position; bytes that are not UTF-8 are named as such."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 (invalid byte at position {bad.start})"
    return str(exc)[:200]


_NOT_PRINTABLE_ASCII = re.compile(r"[^ -~]")


def _ascii(text: str) -> str:
    # Warnings travel in HTTP headers: keep them printable ASCII.
    if text.isascii() and text.isprintable():  # the usual case: nothing to replace
        return text
    return _NOT_PRINTABLE_ASCII.sub("?", text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warning_text(finding: Finding) -> str:
    """`KNS004: modelBucket is a legacy key, use knscale.dev/model-uri` — short, names key and rule."""
    key = finding.key or ""
    named = bool(key) and key in finding.message
    # Only what can reach the clipped text is passed on (and so kept by the memo below): a message
    # quoting a 256 KiB annotation value must not make a 256 KiB cache entry.
    return _warning_text(finding.rule_id, key[:WARNING_MAX_CHARS], named, finding.message[:WARNING_MAX_CHARS])


# The same few texts recur on every admission of a workload's pods (e.g. the seed's four
# legacy-key warnings): remember them. At most 1,024 entries of at most ~3 × WARNING_MAX_CHARS
# characters each (rule id, clipped key, clipped message, clipped result): well under 1 MiB.
@functools.lru_cache(maxsize=1024)
def _warning_text(rule_id: str, key: str, key_in_message: bool, message: str) -> str:
    head = rule_id if key_in_message else f"{rule_id} {key}".rstrip()
    return _clip(_ascii(f"{head}: {message}"), WARNING_MAX_CHARS)


def bounded_warnings(texts: Iterable[str]) -> list[str]:
    out: list[str] = []
    total = 0
    pending = list(texts)
    for i, text in enumerate(pending):
        text = _clip(_ascii(text), WARNING_MAX_CHARS)
        # Leave room for the closing "N more" note whenever more warnings follow.
        reserve = 40 if i + 1 < len(pending) else 0
        if total + len(text) + reserve > WARNINGS_MAX_TOTAL:
            out.append(f"{len(pending) - i} more warnings omitted")
            break
        out.append(text)
        total += len(text)
    return out


def denial_message(findings: Iterable[Finding]) -> str:
    return _clip("\n".join(f.text() for f in findings if f.is_error), DENIAL_MAX_CHARS)


def build_response(
    review: Review,
    *,
    allowed: bool,
    patch: str | None = None,
    warnings: Iterable[str] = (),
    message: str | None = None,
    code: int = 403,
    audit: Mapping[str, str] | None = None,
) -> bytes:
    """The reply envelope: same apiVersion and kind as received, uid echoed, JSONPatch only with a
    patch, auditAnnotations (webhook.audit) when given."""
    response: dict[str, Any] = {"uid": review.uid, "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = patch
    bounded = bounded_warnings(warnings)
    if bounded:
        response["warnings"] = bounded
    if not allowed:
        response["status"] = {"code": code, "reason": "Forbidden", "message": message or "denied"}
    if audit:
        response["auditAnnotations"] = audit
    doc = {"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response}
    return orjson.dumps(doc)


def _decide(
    review: Review,
    outcome: Outcome,
    findings: Iterable[Finding] = (),
    *,
    allowed: bool | None = None,
    patch: str | None = None,
    model: str | None = None,
    code: int = 403,
    message: str | None = None,
    also: tuple[RuleId, str] | None = None,
) -> Decision:
    """The reply for `outcome` (allowed unless denied or error, or as `allowed` says): warnings
    from the findings' warnings, a denial message from their errors, auditAnnotations naming every
    rule. `also`: one more (rule id, warning text) that is not a finding (KNS031)."""
    findings = list(findings)
    rules = rule_ids([*(f.rule_id for f in findings), *([also[0]] if also else [])])
    if allowed is None:
        allowed = outcome in ("allowed", "patched")
    denied_by = () if allowed else rule_ids(f.rule_id for f in findings if f.is_error)
    warnings = [warning_text(f) for f in findings if f.severity is Severity.WARNING]
    if also is not None:
        warnings.append(also[1])
    body = build_response(
        review,
        allowed=allowed,
        patch=patch,
        warnings=warnings,
        message=None if allowed else (message or denial_message(findings)),
        code=code,
        audit=audit_annotations(outcome, rules, model),
    )
    return Decision(body, outcome, rules, denied_by, model)


def _allow(review: Review, findings: Iterable[Finding] = ()) -> Decision:
    return _decide(review, "allowed", findings)


def _object(review: Review) -> Mapping[str, Any]:
    obj = review.request.get("object")
    if not isinstance(obj, Mapping):
        raise ReviewError(400, f"{review.operation} request has no object")
    return obj


def _namespace(review: Review, obj: Mapping[str, Any]) -> str | None:
    ns = review.request.get("namespace")
    if isinstance(ns, str) and ns:
        return ns
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    return ns if isinstance(ns, str) and ns else None


def mutate(review: Review, config: KnscaleConfig, *, plan_pod: PlanPod = plan_injection) -> Decision:
    """Pod CREATE → inject the model downloader; in template mode (`injection.mutate_templates`)
    also CREATE/UPDATE of a workload's or Knative Service's pod template. Everything else passes
    untouched.

    An unexpected exception becomes an explicit denial (KNS030), never an HTTP 500 and never a
    half-made patch: the mutating webhook is registered with failurePolicy Fail, so a pod that
    needed a model never starts without it.
    """
    if review.sub_resource:
        return _allow(review)
    if review.kind != ("", "Pod"):
        knative = TEMPLATE_KINDS.get(review.kind)
        if (
            knative is not None
            and config.injection.mutate_templates
            and review.operation in ("CREATE", "UPDATE")
        ):
            return _mutate_template(review, config, knative=knative)
        return _allow(review)
    if review.operation != "CREATE":
        return _allow(review)
    pod = _object(review)
    meta = pod.get("metadata")
    if isinstance(meta, Mapping):
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and MIRROR_POD_ANNOTATION in annotations:
            return _allow(review)  # static pods are the kubelet's; the apiserver only mirrors them
    try:
        plan, findings = plan_pod(pod, _namespace(review, pod), config)
        if any(f.severity is Severity.ERROR for f in findings):
            return _decide(review, "denied", findings)
        if plan is None:
            return _allow(review, findings)
        ops = plan_ops(pod, plan)
        model = shown_model(plan.request.source.uri)
        return _decide(review, "patched", findings, patch=encode_patch(ops), model=model)
    except Exception:
        log.exception("internal error while mutating %s (uid %s)", _describe(pod), review.uid)
        ref = object_ref({**pod, "kind": "Pod", "apiVersion": "v1"})
        return _injection_failed(review, ref, META_ANNOTATIONS, "this pod", "the pod spec")


def _mutate_template(review: Review, config: KnscaleConfig, *, knative: bool) -> Decision:
    """Template mode: bring `spec.template` of a workload or Knative Service to its injected form.

    No patch when the template already is in that form (an unchanged `kubectl apply` or a
    reinvocation), so a Deployment is not rolled out and a Service makes no new Revision.
    """
    obj = _object(review)
    try:
        ns = _namespace(review, obj)
        ref = object_ref(obj)
        if ns is not None and ref.namespace is None:
            ref = dataclasses.replace(ref, namespace=ns)
        if not ref.kind:
            ref = dataclasses.replace(ref, kind=review.kind[1])
        change, errors = plan_template_injection(obj, ref, config, knative=knative)
        if errors:
            return _decide(review, "denied", errors)
        if change is None:
            return _allow(review)
        template = obj["spec"]["template"]
        ops = diff_ops(template, settle_template(template, injected_template(change)), TEMPLATE_PREFIX)
        if not ops:
            return _allow(review)
        model = shown_model(change.plan.request.source.uri) if change.plan is not None else None
        return _decide(review, "patched", patch=encode_patch(ops), model=model)
    except Exception:
        log.exception("internal error while mutating the template of %s (uid %s)", _describe(obj), review.uid)
        return _injection_failed(
            review, object_ref(obj), TEMPLATE_ANNOTATIONS, "this pod template", "the object"
        )


def _injection_failed(review: Review, ref: ObjectRef, path: str, subject: str, report: str) -> Decision:
    """KNS030: a bug on knscale's side becomes an explicit denial, never a 500 or a half-made patch."""
    finding = RULES[RuleId.KNS030].finding(
        ref,
        path,
        None,
        None,
        f"knscale failed to build the model injection for {subject} (see the webhook's log)",
        f"retry; if it persists, report {report} to the knscale maintainers",
    )
    return _decide(review, "error", [finding], allowed=False, message=finding.text(), code=500)


def validate(review: Review, config: KnscaleConfig, *, check: CheckObject = validate_object) -> Decision:
    """Object CREATE/UPDATE → the translator's findings: errors deny, warnings are returned.

    An unexpected exception lets the object through with a KNS031 warning: this webhook is
    registered fail-open (failurePolicy Ignore, Knative's own webhook stays authoritative) and
    an internal error must not start rejecting every object.
    """
    if review.operation not in ("CREATE", "UPDATE") or review.sub_resource:
        return _allow(review)
    obj = _object(review)
    try:
        ns = _namespace(review, obj)
        meta = obj.get("metadata")
        if ns is not None and isinstance(meta, Mapping) and not meta.get("namespace"):
            obj = {**obj, "metadata": {**meta, "namespace": ns}}
        findings = check(obj, config)
        if any(f.is_error for f in findings):
            return _decide(review, "denied", findings)
        return _allow(review, findings)
    except Exception:
        log.exception("internal error while validating %s (uid %s)", _describe(obj), review.uid)
        not_checked = "KNS031: knscale could not check this object (internal error); it was not validated"
        return _decide(review, "error", allowed=True, also=(RuleId.KNS031, not_checked))


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return "<object without metadata>"
    namespace = meta.get("namespace")
    shown = namespace if isinstance(namespace, str) and namespace else "-"
    return f"{shown}/{display_name(meta) or '<unnamed>'}"
