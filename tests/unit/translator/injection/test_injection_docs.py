"""docs/annotations.md and docs/rules.md stay in step with the code of the model-injection API."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers.paths import DOCS

from translator.annotations.model_keys import LEGACY_KEYS, MODEL_KEYS
from translator.config.knscale import InjectionConfig
from translator.core.rules import RULES

ANNOTATIONS = (DOCS / "annotations.md").read_text()
RULES_MD = (DOCS / "rules.md").read_text()


@pytest.mark.parametrize("key", sorted({k.name for k in MODEL_KEYS} | set(LEGACY_KEYS)))
def test_every_key_is_documented_with_a_section_or_row(key: str) -> None:
    assert f"`{key}`" in ANNOTATIONS


@pytest.mark.parametrize("field", sorted(InjectionConfig.model_fields))
def test_every_injection_setting_is_in_the_configuration_table(field: str) -> None:
    assert re.search(rf"^\| [^\n]*`{field}`", ANNOTATIONS, re.MULTILINE), field


def test_documented_defaults_match_the_code() -> None:
    cfg = InjectionConfig()
    assert f"`{cfg.default_image}`" in ANNOTATIONS
    assert f"`{cfg.mount_path}`" in ANNOTATIONS
    assert f"`{cfg.max_request_bytes}` (3 MiB)" in ANNOTATIONS


def _section(rule_id: str) -> str:
    match = re.search(rf"^### {rule_id} — (.+?)$(.*?)(?=^### |^## |\Z)", RULES_MD, re.MULTILINE | re.DOTALL)
    assert match, f"docs/rules.md has no '### {rule_id} — …' heading"
    assert match.group(1) == RULES[rule_id].title
    return match.group(2)


@pytest.mark.parametrize("rule_id", sorted(r for r in RULES if r.startswith(("KNS0", "KNS9"))))
def test_rule_has_a_heading_and_bad_and_good_yaml(rule_id: str) -> None:
    body = _section(rule_id)
    blocks = re.findall(r"\*\*(Bad|Good)\*\*\n```yaml\n(.*?)```", body, re.DOTALL)
    assert [kind for kind, _ in blocks] == ["Bad", "Good"], rule_id
    good = blocks[1][1]
    assert yaml.safe_load(good) is not None
    if rule_id != "KNS901":  # its Bad example is, by design, not YAML
        yaml.safe_load(blocks[0][1])
