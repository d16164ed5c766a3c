"""The single currency of validation: a Finding, produced by every rule wherever it fires.

`knscale lint` prints findings, the webhook turns errors into a denial and warnings into
`response.warnings`, `knscale translate` refuses to render objects with errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from translator.core.rule_ids import RuleId


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Which object a finding is about, as a user would name it (`Service default/helloworld-go`)."""

    kind: str
    name: str
    namespace: str | None = None
    api_version: str | None = None

    def __str__(self) -> str:
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {name or '<unnamed>'}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one annotation (or object).

    `path` is the dotted path of the annotations map (`spec.template.metadata.annotations`),
    `key` the annotation key exactly as the user wrote it (`minScale` stays `minScale`).
    """

    rule_id: RuleId
    severity: Severity
    obj: ObjectRef
    path: str
    key: str | None
    value: Any
    message: str
    fix: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        """`spec.template.metadata.annotations[autoscaling.knative.dev/min-scale]`."""
        return f"{self.path}[{self.key}]" if self.key else self.path

    def text(self) -> str:
        """One line for humans: rule id, object, where, what, and the fix."""
        head = f"{self.rule_id} {self.obj}: {self.location()}: {self.message}"
        if not self.fix:
            return head
        # after a question ("did you mean X?") the fix starts a new sentence, not "?; fix:"
        return f"{head} Fix: {self.fix}" if head.endswith("?") else f"{head}; fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "severity": str(self.severity),
            "object": {
                "kind": self.obj.kind,
                "name": self.obj.name,
                "namespace": self.obj.namespace,
                "apiVersion": self.obj.api_version,
            },
            "path": self.path,
            "key": self.key,
            "value": self.value,
            "message": self.message,
            "fix": self.fix,
        }


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def warnings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.WARNING]
