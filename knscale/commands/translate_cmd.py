"""`knscale translate PATH…|-` — print what each object becomes: a ScaledObject or HPA, or KPA settings.

Like kubectl, `-o yaml` (default) prints a YAML stream, one document as soon as it is rendered
(inputs are files, directories, globs or stdin, read as `lint` reads them), and `-o json` a `v1`
`List`. An object without a namespace is rendered for the namespace kubectl would create it in
(`default`, or `-n NS`), so the output is exactly what the reconciler writes. Objects with error
findings are not rendered (the findings go to stderr and the exit code is 1); warnings go to
stderr too. Exit 2 for unreadable input, a path that matches no file, or a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import yaml

from knscale import positions, yamlio
from knscale.commands._manifests import (
    add_config_arguments,
    add_input_arguments,
    add_namespace_argument,
    input_paths,
    load_cluster_config,
    read_error_finding,
    text_line,
)
from knscale.commands._output import add_output_argument
from translator.annotations import table as A
from translator.autoscaling.kpa import resolve_kpa_settings
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding
from translator.core.objects import META_ANNOTATIONS, TEMPLATE_ANNOTATIONS, iter_objects, object_ref, role_of
from translator.core.rules import RULES
from translator.keda.hpa import render_hpa
from translator.keda.render import render_scaled_object, should_auto_create
from translator.keda.revision import revision_of
from translator.lint import Located, duplicate_findings, looks_like_object
from translator.validate import validate_object

KPA_SETTINGS_API_VERSION = "knscale.dev/v1alpha1"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "translate",
        help="print the ScaledObject / HPA / KPA settings each manifest's annotations become",
        description=(
            "Render each Knative Service, Configuration, Revision, PodAutoscaler or Deployment/StatefulSet "
            "with an autoscaler class into what knscale's reconciler would create: a KEDA ScaledObject "
            "(hpa class; a plain HPA with --no-keda) or the effective KPA settings (kpa class)."
        ),
    )
    add_input_arguments(p)
    add_output_argument(p, ("yaml", "json"), default="yaml")
    add_namespace_argument(p)
    p.add_argument(
        "--revision",
        metavar="NAME",
        help="revision name to render for (default: spec.template.metadata.name, else <service>-00001)",
    )
    p.add_argument(
        "--no-keda",
        action="store_true",
        help="render a plain autoscaling/v2 HorizontalPodAutoscaler instead of a KEDA ScaledObject",
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def _located(finding: Finding, source: str, position: Any, prefix: str) -> Located:
    line, col = position(prefix + finding.path, finding.key)
    return Located(finding, source, line, col)


def translate_object(
    obj: Any, config: KnscaleConfig, *, revision: str | None, no_keda: bool
) -> tuple[list[dict[str, Any]], list[Finding], list[str]]:
    """(rendered documents, findings, notes) for one object; no documents when it has errors."""
    role = role_of(obj)
    if role is None:
        return [], [], []
    findings = validate_object(obj, config)
    if any(f.is_error for f in findings):
        return [], findings, []
    rev = revision_of(obj, role, config.autoscaler.pod_autoscaler_class, revision_name=revision)
    ref = object_ref(obj)
    if rev is None:
        return [], findings, []
    if rev.class_value is None:
        return [], findings, [f"{ref}: no {A.CLASS.name} annotation, not autoscaled by knscale"]
    family = A.class_family(rev.class_value)
    if family is None:
        return [], findings, [f"{ref}: custom autoscaler class {rev.class_value!r}, nothing to render"]
    if family == A.KPA:
        settings = resolve_kpa_settings(
            rev.annotations, config.autoscaler, container_concurrency=rev.container_concurrency
        )
        meta: dict[str, Any] = {"name": rev.name}
        if rev.namespace:
            meta["namespace"] = rev.namespace
        doc = {
            "apiVersion": KPA_SETTINGS_API_VERSION,
            "kind": "KpaSettings",
            "metadata": meta,
            "spec": settings.to_spec(),
        }
        return [doc], findings, []
    if no_keda:
        rendered = render_hpa(rev.hpa, config.autoscaler)
    elif should_auto_create(rev.annotations, config.keda):
        rendered = render_scaled_object(rev.hpa, config.autoscaler, config.keda)
    else:
        return [], findings, [f"{ref}: ScaledObject auto-creation is off (bring your own), nothing to render"]
    seen = {(f.rule_id, f.key, f.message) for f in findings}
    for issue in rendered.issues:
        if (issue.rule_id, issue.key, issue.message) not in seen:
            path = TEMPLATE_ANNOTATIONS if role == "knative-template" else META_ANNOTATIONS
            findings.append(
                RULES[issue.rule_id].finding(ref, path, issue.key, issue.value, issue.message, issue.fix)
            )
    return ([rendered.manifest] if rendered.manifest is not None else []), findings, []


def with_namespace(obj: Any, namespace: str) -> Any:
    """`obj` as the API server stores it after `kubectl apply -n NS`: metadata.namespace set."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("namespace"):
        return obj
    return {**obj, "metadata": {**meta, "namespace": namespace}}


def run(args: argparse.Namespace) -> int:
    paths = input_paths(args, "knscale translate")
    if paths is None:
        return 2
    config, config_warnings = load_cluster_config(args)
    for warning in config_warnings:
        print(f"knscale translate: warning: {warning}", file=sys.stderr)
    docs: list[dict[str, Any]] = []
    failed = False
    read_failed = False
    for doc in _documents(paths):
        if isinstance(doc, yamlio.ReadError):
            print(text_line(read_error_finding(doc)), file=sys.stderr)
            read_failed = True
            continue
        position = partial(positions.locate, doc.node)
        duplicates = partial(positions.duplicate_keys, doc.node)
        for prefix, written in iter_objects(doc.data):
            if not looks_like_object(written):
                continue
            obj = with_namespace(written, args.namespace)
            rendered, findings, notes = translate_object(
                obj, config, revision=args.revision, no_keda=args.no_keda
            )
            # An annotation key written twice is an error `lint` reports (KNS901): kubectl refuses
            # the file, so the object is not rendered either.
            located = duplicate_findings(obj, doc.source, prefix, duplicates)
            if located:
                rendered = []
            located += [_located(finding, doc.source, position, prefix) for finding in findings]
            located.sort(key=lambda item: (item.line, item.column))
            for item in located:
                print(text_line(item), file=sys.stderr)
            for note in notes:
                print(f"knscale translate: {note}", file=sys.stderr)
            failed = failed or any(item.finding.is_error for item in located)
            if args.output == "json":
                docs += rendered
            elif rendered:  # streamed: a long `helm template | knscale translate -` shows progress
                sys.stdout.write(
                    yaml.safe_dump_all(rendered, sort_keys=False, explicit_start=True, allow_unicode=True)
                )
                sys.stdout.flush()
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2))
    if read_failed:
        return 2
    return 1 if failed else 0


def _documents(paths: list[str]) -> Iterator[yamlio.Document | yamlio.ReadError]:
    for item in yamlio.discover(paths):
        if isinstance(item, yamlio.ReadError):
            yield item
        else:
            yield from yamlio.read_path(item, sys.stdin.buffer)
