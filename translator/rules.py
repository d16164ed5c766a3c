"""The one table of rule ids. Every denial and every lint finding comes from a rule here.

Ranges (design.md): KNS0xx model injection and webhook policy, KNS1xx Knative autoscaling
keys, KNS2xx autoscaler-keda / KEDA translation, KNS9xx input errors. Ids are stable: never
reuse or renumber one. Each id is documented in docs/rules.md with a good and a bad example;
tests/unit/test_rules_documented.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from translator.findings import Finding, ObjectRef, Severity

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str

    def finding(
        self,
        obj: ObjectRef,
        path: str,
        key: str | None,
        value: Any,
        message: str,
        fix: str | None = None,
    ) -> Finding:
        return Finding(self.id, self.severity, obj, path, key, value, message, fix)


def _table(*rules: Rule) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for r in rules:
        if r.id in table:
            raise ValueError(f"duplicate rule id {r.id}")
        table[r.id] = r
    return table


RULES: dict[str, Rule] = _table(
    # ---- KNS0xx: model injection and webhook policy -------------------------------------
    # ---- KNS1xx: Knative autoscaling annotations ----------------------------------------
    # ---- KNS2xx: autoscaler-keda / KEDA translation -------------------------------------
    # ---- KNS9xx: input errors ------------------------------------------------------------
    Rule("KNS901", E, "input is not readable or not valid YAML/JSON"),
    Rule("KNS902", E, "a document is not a Kubernetes object (mapping with apiVersion and kind)"),
    Rule("KNS903", E, "annotations must be a map of strings to strings"),
)


def get(rule_id: str) -> Rule:
    return RULES[rule_id]
