"""docs/rules.md and translator/core/rules.py stay in step: every rule id in code has a section
`### KNSxxx — title` with a **Bad** and a **Good** YAML example, and every documented id exists.

For the autoscaling rules (KNS1xx, KNS2xx) the examples are also executed: the Bad example
must raise its rule and the Good one must not (and must have no errors at all).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from helpers.paths import DOCS

from translator.config.autoscaler import AutoscalerConfig
from translator.config.knscale import KnscaleConfig
from translator.core.rules import RULES
from translator.keda.hpa import render_hpa
from translator.keda.types import HpaRevision, ScaleTargetRef
from translator.validate import validate_object

DOC = DOCS / "rules.md"
HEADING = re.compile(r"^### (KNS\d{3}) — (.+)$", re.MULTILINE)
BLOCK = re.compile(r"\*\*(Bad|Good)\*\*\s*\n```yaml\n(.*?)```", re.DOTALL)


def _sections() -> dict[str, tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    matches = list(HEADING.finditer(text))
    out: dict[str, tuple[str, str]] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].split("\n## ", 1)[0]
        assert m.group(1) not in out, f"{m.group(1)} documented twice"
        out[m.group(1)] = (m.group(2).strip(), body)
    return out


SECTIONS = _sections()


def test_every_rule_is_documented_and_every_documented_rule_exists() -> None:
    assert sorted(RULES) == sorted(SECTIONS)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_heading_matches_title_and_has_bad_and_good_yaml(rule_id: str) -> None:
    title, body = SECTIONS[rule_id]
    assert title == RULES[rule_id].title
    examples = dict(BLOCK.findall(body))
    assert set(examples) == {"Bad", "Good"}, f"{rule_id} needs a **Bad** and a **Good** yaml block"
    for kind, text in examples.items():
        if kind == "Bad" and rule_id.startswith("KNS9"):
            continue  # input errors: the bad example is allowed not to parse
        assert yaml.safe_load(text) is not None


# ---- the autoscaling examples really do what they say ----------------------------------------

CONFIG = {
    "KNS107": KnscaleConfig(autoscaler=AutoscalerConfig(max_scale_limit=100, max_scale=10)),
    "KNS120": KnscaleConfig(autoscaler=AutoscalerConfig(max_scale=5)),
}


def _object(doc: dict[str, Any]) -> dict[str, Any]:
    if "apiVersion" in doc:
        doc.setdefault("metadata", {}).setdefault("name", "example")
        return doc
    if "spec" in doc:
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "hello"},
            "spec": doc["spec"],
        }
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello"},
        "spec": {"template": {"metadata": doc["metadata"], "spec": {"containers": [{"image": "x"}]}}},
    }


def _rule_ids(rule_id: str, doc: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(all rule ids raised, error rule ids) for one example."""
    obj = _object(doc)
    if rule_id == "KNS222":  # only `knscale translate --no-keda` renders a plain HPA
        ann = obj["spec"]["template"]["metadata"]["annotations"]
        rendered = render_hpa(
            HpaRevision("r", ann, ScaleTargetRef("apps/v1", "Deployment", "r-deployment")), AutoscalerConfig()
        )
        found = {i.rule_id for i in rendered.issues}
        return found, found
    findings = validate_object(obj, CONFIG.get(rule_id, KnscaleConfig()), suppress=False)
    return {f.rule_id for f in findings}, {f.rule_id for f in findings if f.is_error}


AUTOSCALING_RULES = sorted(r for r in RULES if r.startswith(("KNS1", "KNS2")))


@pytest.mark.parametrize("rule_id", AUTOSCALING_RULES)
def test_bad_example_raises_the_rule_and_good_example_does_not(rule_id: str) -> None:
    examples = dict(BLOCK.findall(SECTIONS[rule_id][1]))
    bad, _ = _rule_ids(rule_id, yaml.safe_load(examples["Bad"]))
    assert rule_id in bad
    good, good_errors = _rule_ids(rule_id, yaml.safe_load(examples["Good"]))
    assert rule_id not in good
    assert not good_errors, f"the Good example of {rule_id} has errors {good_errors}"


def test_rule_ids_are_an_enum_whose_members_are_their_text() -> None:
    # The enum is what mypy checks; text ids (lint-ignore, docs/rules.md) must still find a rule.
    from translator.core.rule_ids import RuleId

    assert set(RULES) == set(RuleId)
    for rule_id in RuleId:
        assert rule_id.name == rule_id.value == str(rule_id) == f"{rule_id}"
        assert RULES[rule_id] is RULES[rule_id.value]  # type: ignore[index]
        assert RULES[rule_id].id is rule_id
