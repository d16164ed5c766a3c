"""Rule documentation for `knscale rules` and SARIF: the sections of docs/rules.md.

docs/rules.md is the one text that explains each rule (tests/unit/test_rules_documented.py keeps
its `### KNSxxx — title` headings in step with the rule table); the wheel carries it as
`knscale/rules.md` so an installed knscale explains rules offline. Each rule's section is found
by its heading; its web address is that heading's anchor in the published docs.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path

from translator.core.rule_ids import RuleId
from translator.core.rules import RULES

# Where the docs are published; a fork sets KNSCALE_DOCS_URL to its own copy of docs/rules.md.
DOCS_URL = "https://github.com/knscale/knscale/blob/main/docs/rules.md"
_HEADING = re.compile(r"^### (KNS\d{3}) — (.+)$", re.MULTILINE)
_REPO_DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


@functools.cache
def _text() -> str:
    try:
        return resources.files("knscale").joinpath("rules.md").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        pass
    try:
        return _REPO_DOC.read_text(encoding="utf-8")
    except OSError:
        return ""


@functools.cache
def sections() -> dict[str, str]:
    """rule id → the markdown of its section, heading excluded (empty when the docs are absent)."""
    text = _text()
    found = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        out[m.group(1)] = text[m.end() : end].split("\n## ", 1)[0].strip()
    return out


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces → hyphens."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def help_uri(rule_id: str) -> str:
    base = os.environ.get("KNSCALE_DOCS_URL") or DOCS_URL
    return f"{base}#{github_anchor(f'{rule_id} — {RULES[RuleId(rule_id)].title}')}"


def help_text(rule_id: str, *, markdown: bool = False) -> str:
    """The section's prose and examples; without the docs, the title and where to read more."""
    body = sections().get(rule_id)
    if not body:
        return f"{RULES[RuleId(rule_id)].title}. See {help_uri(rule_id)}"
    if markdown:
        return body
    return body.replace("**Bad**", "Bad:").replace("**Good**", "Good:")
