"""What `knscale lint` and `knscale translate` share: cluster configuration and manifest reading."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from knscale import positions, yamlio
from knscale.commands._lintconfig import SECTION as LINT_SECTION
from knscale.commands._lintconfig import settings_file
from knscale.settings import SettingsError
from knscale.settings.files import load_config, parse_yaml, read_text
from translator.config.autoscaler import ConfigMapError, parse_config_autoscaler, parse_config_autoscaler_keda
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef, Severity
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.lint import Located, lint_document

CONFIG_AUTOSCALER = "config-autoscaler"
CONFIG_AUTOSCALER_KEDA = "config-autoscaler-keda"


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="knscale settings file (or its ConfigMap): allowlists, default scheme, autoscaler defaults, "
        "and lint's `lint:` section (default: .knscale.yaml in this or a parent directory)",
    )
    p.add_argument(
        "--config-autoscaler",
        metavar="FILE",
        type=Path,
        help="a cluster's config-autoscaler and/or config-autoscaler-keda ConfigMap: judge as that cluster",
    )


def add_input_arguments(p: argparse.ArgumentParser, what: str = "file, directory (recursive), glob") -> None:
    """Inputs as positional paths and, as kubectl users write them, `-f/--filename` (repeatable)."""
    p.add_argument("paths", nargs="*", metavar="PATH", help=f"{what}, or - for stdin")
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="an input, as in kubectl -f (repeatable; same as a positional PATH)",
    )


def input_paths(args: argparse.Namespace, prog: str) -> list[str] | None:
    """Every input named on the command line, or None (after a usage message) when there is none."""
    paths = [*args.filename, *args.paths]
    if not paths:
        print(f"{prog}: error: no input: give a FILE, a directory, a glob, or - for stdin", file=sys.stderr)
        return None
    return paths


def add_namespace_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        default="default",
        metavar="NS",
        help="namespace of objects that name none, as kubectl apply -n NS would put them (default: default)",
    )


def load_cluster_config(args: argparse.Namespace) -> tuple[KnscaleConfig, list[str]]:
    """Settings file + environment, then the cluster's ConfigMaps on top. Raises SettingsError."""
    # `--config`, else the project's `.knscale.yaml` (its `lint:` section is lint's, not settings)
    path_in_effect = settings_file(args.config, Path.cwd())
    config = load_config(path_in_effect, environ=dict(os.environ), other_sections=(LINT_SECTION,))
    warnings: list[str] = []
    path: Path | None = args.config_autoscaler
    if path is None:
        return config, warnings
    autoscaler_data, keda_data = _configmaps(path)
    updates: dict[str, Any] = {}
    try:
        if autoscaler_data is not None:
            autoscaler, more = parse_config_autoscaler(autoscaler_data, config.autoscaler)
            updates["autoscaler"] = autoscaler
            warnings += more
        if keda_data is not None:
            keda, more = parse_config_autoscaler_keda(keda_data, config.keda)
            updates["keda"] = keda
            warnings += more
    except ConfigMapError as exc:
        raise SettingsError("\n".join(f"  {path}: {exc.name}: {p}" for p in exc.problems)) from None
    return config.model_copy(update=updates), [f"{path}: {w}" for w in warnings]


def _configmaps(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    text = read_text(path)
    docs = parse_yaml(
        lambda: [d for d in yaml.load_all(text, Loader=yamlio.Loader) if d is not None],
        f"  {path}: not valid YAML",
    )
    autoscaler: dict[str, Any] | None = None
    keda: dict[str, Any] | None = None
    items: list[Any] = []
    for doc in docs:
        if not (isinstance(doc, dict) and doc.get("kind") == "List"):
            items.append(doc)
            continue
        listed = doc.get("items")
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise SettingsError(f"  {path}: kind List: items must be a list, got {type(listed).__name__}")
        items += listed
    for doc in items:
        if not isinstance(doc, dict):
            raise SettingsError(
                f"  {path}: expected a ConfigMap or a map of its data, got {type(doc).__name__}"
            )
        if doc.get("kind") != "ConfigMap":
            if "kind" in doc or "apiVersion" in doc:
                raise SettingsError(f"  {path}: expected a ConfigMap, got kind {doc.get('kind')!r}")
            autoscaler = doc  # a bare `data` map of config-autoscaler
            continue
        metadata = doc.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SettingsError(f"  {path}: ConfigMap: metadata must be a map, got {type(metadata).__name__}")
        name = metadata.get("name")
        data = doc.get("data") or {}
        if not isinstance(data, dict):
            raise SettingsError(f"  {path}: ConfigMap {name}: data must be a map, got {type(data).__name__}")
        if name == CONFIG_AUTOSCALER:
            autoscaler = data
        elif name == CONFIG_AUTOSCALER_KEDA:
            keda = data
        else:
            raise SettingsError(
                f"  {path}: ConfigMap {name!r} is neither {CONFIG_AUTOSCALER} nor {CONFIG_AUTOSCALER_KEDA}"
            )
    return autoscaler, keda


def read_error_finding(err: yamlio.ReadError) -> Located:
    finding = RULES[RuleId.KNS901].finding(
        ObjectRef(kind="", name=err.source),
        INPUT_PATH,
        None,
        None,
        err.message,
        err.fix
        or (
            "split the document: the API server refuses an object that large too"
            if err.too_large
            else "fix the file so that it parses as YAML or JSON (kubectl would refuse it too)"
        ),
    )
    return Located(finding, err.source, err.line, err.column)


def lint_sources(
    paths: list[str], config: KnscaleConfig
) -> Iterator[tuple[yamlio.Document | None, list[Located]]]:
    """(document, its findings) for every document of every input; read errors come as (None, [KNS901])."""
    for item in yamlio.discover(paths):
        if isinstance(item, yamlio.ReadError):
            yield None, [read_error_finding(item)]
            continue
        for doc in yamlio.read_path(item, sys.stdin.buffer):
            if isinstance(doc, yamlio.ReadError):
                yield None, [read_error_finding(doc)]
                continue
            node = doc.node
            findings = lint_document(
                doc.data,
                config,
                source=doc.source,
                position=partial(positions.locate, node),
                duplicates=partial(positions.duplicate_keys, node),
            )
            yield doc, findings


INPUT_PATH = "<input>"


def describe(f: Finding) -> str:
    """What a finding says, without the rule id: object and annotation, message, fix."""
    head = f.message if f.path == INPUT_PATH else f"{f.obj}: {f.location()}: {f.message}"
    if not f.fix:
        return head
    # "did you mean X?; fix: …" reads badly: after a question the fix starts a new sentence.
    return f"{head} Fix: {f.fix}" if head.endswith("?") else f"{head}; fix: {f.fix}"


_ONE_LINE = str.maketrans({"\r": "\\r", "\n": "\\n"})


def text_line(item: Located) -> str:
    """`file:line:col: severity RULE message` on exactly one line: a CR or LF (in a key written in
    the manifest, a file name, a parser message) is shown as `\\r`/`\\n`, so it cannot start a line
    that a CI problem matcher would read as another finding."""
    f = item.finding
    where = f"{item.source}:{item.line}:{item.column}" if item.line else item.source
    return f"{where}: {f.severity} {f.rule_id} {describe(f)}".translate(_ONE_LINE)


SEVERITY_CHOICES = ("error", "warning", "info", "none")


def at_or_above(severity: Severity, threshold: str) -> bool:
    if threshold == "none":
        return False
    return severity.rank >= Severity(threshold).rank
