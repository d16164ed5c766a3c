"""`knscale rules [ID…]` — list the rules, or explain some: the rule table plus docs/rules.md.

Without an id: one line per rule (id, severity, title), as `kube-linter checks list` does; the
project's `.knscale.yaml` (or `--config`) shows in the severity column and marks disabled rules.
With ids: each rule's section of docs/rules.md — what it checks, a bad and a good example — and
its web address. Unknown ids are exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from knscale.commands._lintconfig import LintConfig, load_lint_config, settings_file
from knscale.commands._output import add_output_argument
from knscale.commands._ruledocs import help_text, help_uri
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rules",
        help="list the lint and admission rules, or explain one (knscale rules KNS106)",
        description="List every rule id with its severity and title, or print the documentation of "
        "the ids given.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="rule ids to explain (KNS106, kns106)")
    add_output_argument(p, ("text", "json", "yaml"), default="text")
    p.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="settings file with a lint: section (default: .knscale.yaml in this or a parent directory)",
    )
    p.set_defaults(func=run)


def _record(rule_id: str, lint_config: LintConfig, *, explain: bool) -> dict[str, Any]:
    rule = RULES[RuleId(rule_id)]
    record: dict[str, Any] = {
        "id": rule_id,
        "severity": str(lint_config.level(rule_id)),
        "defaultSeverity": str(rule.severity),
        "enabled": rule_id not in lint_config.disabled,
        "title": rule.title,
        "helpUri": help_uri(rule_id),
    }
    if explain:
        record["help"] = help_text(rule_id, markdown=True)
    return record


def run(args: argparse.Namespace) -> int:
    wanted = [i.strip().upper() for i in args.ids]
    unknown = [i for i in wanted if i not in RULES]
    if unknown:
        print(
            f"knscale rules: error: unknown rule id {', '.join(unknown)} (knscale rules lists them)",
            file=sys.stderr,
        )
        return 2
    lint_config = load_lint_config(settings_file(args.config, Path.cwd()))
    ids = wanted or sorted(RULES)
    records = [_record(i, lint_config, explain=bool(wanted)) for i in ids]
    if args.output == "json":
        print(json.dumps(records, indent=2, ensure_ascii=False))
    elif args.output == "yaml":
        sys.stdout.write(yaml.safe_dump(records, sort_keys=False, allow_unicode=True))
    elif wanted:
        for n, record in enumerate(records):
            if n:
                print()
            changed = "" if record["severity"] == record["defaultSeverity"] else " (set by the project)"
            off = "" if record["enabled"] else " — disabled by the project"
            print(f"{record['id']} — {record['title']}\n{record['severity']}{changed}{off}\n")
            print(help_text(record["id"]))
            print(f"\n{record['helpUri']}")
    else:
        for record in records:
            off = "" if record["enabled"] else "  (disabled)"
            print(f"{record['id']}  {record['severity']:<7}  {record['title']}{off}")
    return 0
