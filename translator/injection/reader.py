"""One annotations map being read: the findings it collects name each key as the user wrote it,
and never quote a secret (a source's userinfo, a pre-signed URL's query)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.annotations.model_keys import BARE_BUCKET, BARE_PATH, MODEL_URI
from translator.config.knscale import InjectionConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.redact import redact_source
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES

_SOURCE_KEYS = frozenset({MODEL_URI, BARE_BUCKET, BARE_PATH})
# The one redaction of a source (translator.core.redact), under the name the injection code uses.
redacted = redact_source


class Reader:
    """Collects findings for one annotations map; each check names the key as the user wrote it."""

    def __init__(self, ann: Mapping[str, Any], ref: ObjectRef, path: str, config: InjectionConfig) -> None:
        self.ann = ann
        self.ref = ref
        self.path = path
        self.config = config
        self.findings: list[Finding] = []
        self.failed = False

    def add(self, rule_id: RuleId, key: str | None, value: Any, message: str, fix: str | None) -> None:
        if key in _SOURCE_KEYS and isinstance(value, str):
            value = redacted(value)  # findings reach kubectl, logs and lint output
        finding = RULES[rule_id].finding(self.ref, self.path, key, value, message, fix)
        self.failed = self.failed or finding.is_error
        self.findings.append(finding)

    def get(self, key: str) -> str | None:
        value = self.ann.get(key)
        if value is None or isinstance(value, str):
            return value
        self.add(
            RuleId.KNS903,
            key,
            value,
            f"annotation values must be strings, got {type(value).__name__}",
            'quote it: "…"',
        )
        return None

    def pick(self, canonical: str, bare: str) -> tuple[str | None, str | None]:
        """The value of a concept written as a canonical and/or a bare key; conflicting values fail."""
        c, b = self.get(canonical), self.get(bare)
        if c is not None and b is not None and c != b:
            self.add(
                RuleId.KNS005,
                bare,
                b,
                f"{bare}={b!r} conflicts with {canonical}={c!r}",
                f"remove {bare} and keep {canonical}",
            )
            return None, None
        if c is not None:
            return c, canonical
        if b is not None:
            return b, bare
        return None, None
