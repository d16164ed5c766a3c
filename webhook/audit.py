"""What an admission decision tells the outside: `auditAnnotations` and one log line.

auditAnnotations: the API server writes them into its audit log, each key prefixed with the
webhook's name (`inject-model.knscale.dev/outcome`). It keeps only keys whose prefixed form is a
qualified name (a DNS subdomain, '/', a name of at most 63 characters) and drops the rest with a
warning, so our keys are bare names: a `knscale.dev/` prefix of our own would make two slashes.
Values are bounded and carry nothing a caller wrote but the model source, which is redacted
(userinfo, query and fragment; translator.core.redact) before it is clipped.

The log line (logger `knscale.admission`, level info): one per decision, with the fields of
`AdmissionSummary` plus uid, endpoint and latency. Names and kinds are what the review says,
clipped and reduced to printable ASCII, so a hostile name can neither flood nor forge a line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from translator.core.objects import display_name
from translator.core.redact import redact_source
from translator.core.rule_ids import RuleId

log = logging.getLogger("knscale.admission")

OUTCOME_KEY = "outcome"
RULES_KEY = "rules"
MODEL_KEY = "injected-model"
AUDIT_KEYS = (OUTCOME_KEY, RULES_KEY, MODEL_KEY)
MODEL_MAX_CHARS = 256
NAME_MAX_CHARS = 253  # a DNS subdomain, the longest name Kubernetes accepts
FIELD_MAX_CHARS = 63  # kinds, operations: far longer than any real one
RULES_MAX = 32  # distinct rule ids named in one annotation or line; the rest counted
_KNOWN_RULES = frozenset(r.value for r in RuleId)
_NOT_PRINTABLE_ASCII = re.compile(r"[^ -~]")


def clip(value: Any, limit: int) -> str:
    """`value` as printable ASCII of at most `limit` characters ('' for a non-string)."""
    if not isinstance(value, str):
        return ""
    text = value if value.isascii() and value.isprintable() else _NOT_PRINTABLE_ASCII.sub("?", value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rule_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """Distinct known rule ids in first-seen order: only ids of the rule table ever leave."""
    seen: dict[str, None] = {}
    for rule in ids:
        if rule in _KNOWN_RULES:
            seen.setdefault(str(rule), None)
    return tuple(seen)


def shown_model(uri: str | None) -> str | None:
    """The injected model source, fit for an audit log: redacted, then clipped."""
    return None if uri is None else clip(redact_source(uri), MODEL_MAX_CHARS)


def _rules_text(rules: tuple[str, ...]) -> str:
    if len(rules) <= RULES_MAX:
        return ",".join(rules)
    return ",".join(rules[:RULES_MAX]) + f",+{len(rules) - RULES_MAX} more"


def audit_annotations(outcome: str, rules: tuple[str, ...], model: str | None) -> dict[str, str]:
    """The response's auditAnnotations: outcome, rules and model, whenever there is something to
    say. A plain "allowed" that no rule spoke about gets none: most reviews the webhooks see are
    of objects with nothing to judge, and their audit entries stay as they were."""
    if outcome == "allowed" and not rules and not model:
        return {}
    out = {OUTCOME_KEY: outcome}
    if rules:
        out[RULES_KEY] = _rules_text(rules)
    if model:
        out[MODEL_KEY] = model
    return out


@dataclass(frozen=True, slots=True)
class AdmissionSummary:
    """What the log line says about a review and its decision, but for uid and latency (which
    differ per request: the decision cache keeps a summary per reply and reuses it)."""

    kind: str
    namespace: str
    name: str
    operation: str
    dry_run: bool
    outcome: str
    rules: tuple[str, ...]
    denied_by: tuple[str, ...]
    model: str | None


def summarize(
    request: Mapping[str, Any],
    outcome: str,
    rules: tuple[str, ...],
    denied_by: tuple[str, ...],
    model: str | None,
) -> AdmissionSummary:
    kind = request.get("kind")
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        obj = request.get("oldObject")  # a DELETE carries only the old object
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = request.get("name")
    namespace = request.get("namespace")
    if not namespace and isinstance(meta, Mapping):
        namespace = meta.get("namespace")
    return AdmissionSummary(
        kind=clip(kind.get("kind") if isinstance(kind, Mapping) else None, FIELD_MAX_CHARS),
        namespace=clip(namespace, NAME_MAX_CHARS),
        name=clip(name if isinstance(name, str) and name else display_name(meta), NAME_MAX_CHARS),
        operation=clip(request.get("operation"), FIELD_MAX_CHARS),
        dry_run=request.get("dryRun") is True,
        outcome=outcome,
        rules=rules,
        denied_by=denied_by,
        model=model,
    )


def log_decision(endpoint: str, uid: str, summary: AdmissionSummary, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "endpoint": endpoint,
        "uid": clip(uid, 128),
        "kind": summary.kind,
        "namespace": summary.namespace or None,
        "name": summary.name or None,
        "operation": summary.operation,
        "dryRun": summary.dry_run,
        "outcome": summary.outcome,
        "rules": list(summary.rules),
        "model": summary.model,
        "latency_ms": round(seconds * 1000, 3),
    }
    log.info("admission decision", extra={"knscale": fields})


def log_invalid(endpoint: str, status_code: int, seconds: float) -> None:
    """A body that is not a usable AdmissionReview: no uid or object to name, only the status."""
    if log.isEnabledFor(logging.INFO):
        fields = {
            "endpoint": endpoint,
            "outcome": "invalid",
            "status": status_code,
            "latency_ms": round(seconds * 1000, 3),
        }
        log.info("admission request refused", extra={"knscale": fields})
