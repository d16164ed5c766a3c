"""Project lint configuration: the `lint:` section of `.knscale.yaml`.

One file per repository, found like `.golangci.yml` or `ruff.toml`: `.knscale.yaml` (or
`.knscale.yml`) in the working directory or the nearest parent that has one. `--config FILE`
names the file instead (and then no search is made). The same file may hold knscale's settings
sections (`injection:`, `autoscaler:`, `keda:`), so one file judges the manifests as the cluster
does and says which rules the project wants:

```yaml
lint:
  disable: [KNS113]            # rule ids, or `all`
  enable: [KNS111]             # switched back on after `disable` (e.g. disable: [all])
  severity: {KNS111: error}    # error | warning | info
```

The per-object `knscale.dev/lint-ignore` annotation still applies on top. Policy errors (KNS0xx)
and input errors (KNS9xx) can be neither disabled nor lowered, as with the annotation: whatever
lint passes, the webhook admits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knscale.settings import SettingsError
from knscale.settings.files import read_config_file
from translator.core.findings import Severity
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.lint import Located

PROJECT_FILES = (".knscale.yaml", ".knscale.yml")
SECTION = "lint"
_KEYS = frozenset({"disable", "enable", "severity"})


@dataclass(frozen=True, slots=True)
class LintConfig:
    disabled: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    source: Path | None = None

    def apply(self, items: list[Located]) -> list[Located]:
        """Drop disabled rules, set overridden severities."""
        out = []
        for item in items:
            f = item.finding
            if f.rule_id in self.disabled and _adjustable(f.rule_id, Severity.INFO):
                continue
            wanted = self.severity.get(f.rule_id)
            if wanted is not None and wanted is not f.severity:
                item = dataclasses.replace(item, finding=dataclasses.replace(f, severity=wanted))
            out.append(item)
        return out

    def level(self, rule_id: str) -> Severity:
        """The severity this project gives a rule (for the SARIF and `knscale rules` tables)."""
        return self.severity.get(rule_id, RULES[RuleId(rule_id)].severity)


def find_project_file(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        for name in PROJECT_FILES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def _adjustable(rule_id: str, to: Severity) -> bool:
    """Whether a project may take `rule_id` down to `to`: not for policy and input errors."""
    rule = RULES[RuleId(rule_id)]
    if rule_id.startswith("KNS9"):
        return False
    return not (rule_id.startswith("KNS0") and rule.severity is Severity.ERROR and to is not Severity.ERROR)


def _ids(value: Any, where: str, problems: list[str]) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be a list of rule ids, e.g. [KNS113]")
        return set()
    out: set[str] = set()
    for raw in value:
        rule_id = raw.strip().upper()
        if rule_id == "ALL":
            out |= set(RULES)
        elif rule_id in RULES:
            out.add(rule_id)
        else:
            problems.append(f"{where}: {raw!r} is not a rule id (knscale rules lists them)")
    return out


def parse_lint_section(data: Any, source: Path | None) -> LintConfig:
    """The `lint:` section; every problem reported at once as a SettingsError."""
    where = f"{source}: lint" if source is not None else "lint"
    if data is None:
        return LintConfig(source=source)
    if not isinstance(data, Mapping):
        raise SettingsError(f"  {where}: must be a map with disable, enable and severity")
    problems = [
        f"{where}: unknown key {k!r} (known: disable, enable, severity)" for k in data if k not in _KEYS
    ]
    disabled = _ids(data.get("disable"), f"{where}.disable", problems)
    disabled -= _ids(data.get("enable"), f"{where}.enable", problems)
    # `all` means every rule that may be switched off; a locked id named explicitly is a mistake
    named = {str(v).strip().upper() for v in data.get("disable") or [] if isinstance(v, str)}
    locked = sorted(r for r in disabled & named if not _adjustable(r, Severity.INFO))
    if locked:
        problems.append(
            f"{where}.disable: {', '.join(locked)} cannot be disabled: policy errors (KNS0xx) and input "
            "errors (KNS9xx) are what the webhook enforces"
        )
    disabled = {r for r in disabled if _adjustable(r, Severity.INFO)}
    severity: dict[str, Severity] = {}
    raw_severity = data.get("severity") or {}
    if not isinstance(raw_severity, Mapping):
        problems.append(f"{where}.severity: must be a map of rule id to error, warning or info")
        raw_severity = {}
    for raw_id, raw_level in raw_severity.items():
        rule_id = str(raw_id).strip().upper()
        if rule_id not in RULES:
            problems.append(f"{where}.severity: {raw_id!r} is not a rule id")
            continue
        try:
            level = Severity(str(raw_level).strip().lower())
        except ValueError:
            problems.append(f"{where}.severity.{rule_id}: {raw_level!r} is not error, warning or info")
            continue
        if not _adjustable(rule_id, level):
            problems.append(
                f"{where}.severity.{rule_id}: a policy or input error cannot be lowered to {level}"
            )
            continue
        severity[rule_id] = level
    if problems:
        raise SettingsError("\n".join(f"  {p}" for p in problems))
    return LintConfig(frozenset(disabled), severity, source)


def settings_file(explicit: Path | None, cwd: Path) -> Path | None:
    """The settings/lint file in effect: `--config`, else the project's `.knscale.yaml`."""
    return explicit if explicit is not None else find_project_file(cwd)


def load_lint_config(path: Path | None) -> LintConfig:
    if path is None:
        return LintConfig()
    return parse_lint_section(read_config_file(path).get(SECTION), path)
