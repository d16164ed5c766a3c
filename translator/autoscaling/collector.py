"""Findings of one annotations map, collected: every check adds to it and none stops the others."""

from __future__ import annotations

from typing import Any

from translator.core.findings import Finding, ObjectRef
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES


class Collector:
    def __init__(self, ref: ObjectRef, path: str) -> None:
        self.ref = ref
        self.path = path
        self.findings: list[Finding] = []

    def add(self, rule_id: RuleId, key: str | None, value: Any, message: str, fix: str | None = None) -> None:
        self.findings.append(RULES[rule_id].finding(self.ref, self.path, key, value, message, fix))

    @property
    def has_errors(self) -> bool:
        return any(f.is_error for f in self.findings)
