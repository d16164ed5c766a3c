"""`knscale lint PATH… | -` — judge manifests as the cluster (and knscale's webhook) would.

Exit codes: 0 no finding at or above `--fail-on` (default error), 1 there is one, 2 usage error,
input that cannot be read or parsed (reported with file and line), or a path that matches no file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from knscale import __version__
from knscale.commands import _junit
from knscale.commands._lintconfig import LintConfig, load_lint_config, settings_file
from knscale.commands._manifests import (
    SEVERITY_CHOICES,
    add_config_arguments,
    add_input_arguments,
    at_or_above,
    describe,
    input_paths,
    lint_sources,
    load_cluster_config,
    text_line,
)
from knscale.commands._output import add_output_argument, take_legacy_format_from_files
from knscale.commands._ruledocs import help_text, help_uri
from translator.core.findings import Severity
from translator.core.rules import RULES
from translator.lint import Located

FORMATS = ("text", "json", "yaml", "sarif", "github", "junit")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lint",
        help="check Knative/KEDA autoscaling and model-injection annotations in manifests",
        description=(
            "Check manifests (files, directories, multi-document YAML/JSON, kind: List, or - for stdin "
            "such as `helm template . | knscale lint -`) for the annotation problems Knative, KEDA and "
            "knscale's webhook would refuse or silently ignore."
        ),
    )
    add_input_arguments(p)
    add_output_argument(p, FORMATS, default="text", legacy_format=True)
    p.add_argument(
        "--fail-on",
        choices=SEVERITY_CHOICES,
        default="error",
        help="exit 1 when a finding is at least this severe (default: error; none: never)",
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def summary(counts: dict[Severity, int], files: int, objects: int) -> str:
    """`1 error, 2 warnings, 0 info in 3 files, 4 documents`: the words of the severities printed."""

    def n(count: int, word: str, plural: str) -> str:
        return f"{count} {word if count == 1 else plural}"

    errors = n(counts[Severity.ERROR], "error", "errors")
    warnings = n(counts[Severity.WARNING], "warning", "warnings")
    return (
        f"{errors}, {warnings}, "
        f"{counts[Severity.INFO]} info in {n(files, 'file', 'files')}, {n(objects, 'document', 'documents')}"
    )


def run(args: argparse.Namespace) -> int:
    take_legacy_format_from_files(args, "knscale lint", FORMATS)
    paths = input_paths(args, "knscale lint")
    if paths is None:
        return 2
    config, config_warnings = load_cluster_config(args)
    lint_config = load_lint_config(settings_file(args.config, Path.cwd()))
    for warning in config_warnings:
        print(f"knscale lint: warning: {warning}", file=sys.stderr)
    # text and github stream one line per finding and keep only counts, so memory stays flat
    # on an arbitrarily long `helm template | knscale lint -`; the others are one document.
    located: list[Located] = []
    counts = dict.fromkeys(Severity, 0)
    failing = False
    read_failed = False
    files: set[str] = set()
    objects = 0
    streaming = args.output in ("text", "github")
    for doc, raw_findings in lint_sources(paths, config):
        if doc is None:
            read_failed = True
        else:
            files.add(doc.source)
            objects += 1
        for item in lint_config.apply(raw_findings):
            counts[item.finding.severity] += 1
            failing = failing or at_or_above(item.finding.severity, args.fail_on)
            if streaming:
                print(_github(item) if args.output == "github" else text_line(item))
            else:
                located.append(item)
    if args.output == "json":
        print(json.dumps(_json(located, len(files), objects), indent=2, default=str))
    elif args.output == "yaml":
        plain = json.loads(json.dumps(_json(located, len(files), objects), default=str))
        sys.stdout.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    elif args.output == "sarif":
        print(json.dumps(_sarif(located, lint_config), indent=2, default=str))
    elif args.output == "junit":
        sys.stdout.write(_junit.report(located, sorted(files)))
    if args.output == "text":
        print(f"knscale lint: {summary(counts, len(files), objects)}", file=sys.stderr)
    sys.stdout.flush()
    if read_failed:
        return 2
    return 1 if failing else 0


def _record(item: Located) -> dict[str, Any]:
    record = {"file": item.source, "line": item.line, "column": item.column}
    record.update(item.finding.to_dict())
    record.update(item.finding.extra)
    return record


def _json(located: list[Located], files: int, objects: int) -> dict[str, Any]:
    return {
        "findings": [_record(i) for i in located],
        "summary": {
            "errors": sum(1 for i in located if i.finding.severity is Severity.ERROR),
            "warnings": sum(1 for i in located if i.finding.severity is Severity.WARNING),
            "info": sum(1 for i in located if i.finding.severity is Severity.INFO),
            "files": files,
            "documents": objects,
        },
    }


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def uri(source: str) -> str:
    return _uri(source)


def _uri(source: str) -> str:
    """The input's path relative to the working directory, unencoded (SARIF quotes it itself)."""
    if source.startswith("<"):
        return "stdin"
    path = Path(source)
    with contextlib.suppress(ValueError):
        path = path.resolve().relative_to(Path.cwd().resolve())
    return path.as_posix()


def sarif_rule_name(title: str) -> str:
    """SARIF's `name` is an identifier-like PascalCase word ("ModelSourceIsMalformed"), not the id."""
    words = "".join(c if c.isalnum() else " " for c in title).split()
    return "".join(w[:1].upper() + w[1:] for w in words)


def _sarif(located: list[Located], lint_config: LintConfig) -> dict[str, Any]:
    ids = sorted(RULES)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    rules = [
        {
            "id": rule_id,
            "name": sarif_rule_name(RULES[rule_id].title),
            "shortDescription": {"text": RULES[rule_id].title},
            "fullDescription": {"text": help_text(rule_id).split("\n\n", 1)[0]},
            "helpUri": help_uri(rule_id),
            "help": {"text": help_text(rule_id), "markdown": help_text(rule_id, markdown=True)},
            "defaultConfiguration": {
                "level": _SARIF_LEVEL[lint_config.level(rule_id)],
                "enabled": rule_id not in lint_config.disabled,
            },
        }
        for rule_id in ids
    ]
    results = []
    for item in located:
        f = item.finding
        # a URI reference (SARIF 2.1.0 §3.10): a space, `#` or `%` in a file name is percent-encoded
        physical: dict[str, Any] = {"artifactLocation": {"uri": quote(_uri(item.source), safe="/")}}
        if item.line:
            physical["region"] = {"startLine": item.line, "startColumn": max(item.column, 1)}
        text = describe(f)
        results.append(
            {
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id],
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "knscale", "version": __version__, "rules": rules}},
                "results": results,
            }
        ],
    }


_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(item: Located) -> str:
    """A workflow command: GitHub shows it as an annotation on the file and line."""
    f = item.finding
    props = [f"file={_escape_property(_uri(item.source))}"]
    if item.line:
        props += [f"line={item.line}", f"col={max(item.column, 1)}"]
    props.append(f"title={_escape_property(f'{f.rule_id} {RULES[f.rule_id].title}')}")
    message = describe(f)
    return f"::{_GITHUB_COMMAND[f.severity]} {','.join(props)}::{_escape_data(message)}"
