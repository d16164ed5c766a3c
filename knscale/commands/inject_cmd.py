"""`knscale inject -f FILE|-` — print objects as knscale's `/mutate` webhook would admit them.

Like `istioctl kube-inject`: the manifest goes in, the same manifest with the model downloader
injected comes out, ready for `kubectl apply -f -`. Each object is wrapped in an AdmissionReview
in memory and judged by `webhook.admission.mutate` — the very function behind `/mutate` — and
the returned RFC 6902 patch is applied with jsonpatch, so what is printed is exactly what the
API server would store.

- A Pod is reviewed as a pod CREATE.
- A Deployment, StatefulSet, Knative Service or Configuration is reviewed as a CREATE of the
  object itself, through the webhook's template mode (`injection.mutate_templates`, `knscale
  register --mutate-templates`), whatever the configuration says: that is the path that writes
  the injection into `spec.template` (Knative's restrictions included), and the pods later made
  from the template carry the status marker, so the pod webhook leaves them as they are.
- Every other document is printed unchanged (a whole `kustomize build` stream can be piped in).

Exit codes (lint's): 0 admitted, 1 at least one object denied (rule id and message on stderr,
the others still printed), 2 unreadable input or bad configuration.
"""

from __future__ import annotations

import argparse
import base64
import copy
import difflib
import json
import re
import sys
from collections.abc import Mapping
from typing import Any

import jsonpatch
import orjson
import yaml

from knscale import positions, yamlio
from knscale.commands._manifests import (
    add_config_arguments,
    add_namespace_argument,
    load_cluster_config,
    read_error_finding,
    text_line,
)
from knscale.commands._output import add_output_argument
from translator.config.knscale import KnscaleConfig
from translator.core.objects import api_group, iter_objects, text_of
from translator.injection.template import TEMPLATE_KINDS
from webhook import admission

REVIEW_UID = "knscale-inject"  # any non-empty uid: the review never leaves this process


class Denied(Exception):
    """The webhook refused the object: the status message (one finding per line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(Exception):
    def __init__(self, error: yamlio.ReadError) -> None:
        super().__init__(error.message)
        self.error = error


class Unsendable(Exception):
    """The object cannot travel as JSON (a YAML key that is not a string, binary data): the API
    server would refuse the manifest before any webhook sees it — an input error."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inject",
        help="print manifests as the /mutate webhook would admit them (the model downloader injected)",
        description=(
            "Run each Pod, Deployment, StatefulSet, Knative Service or Configuration through the same "
            "admission function as knscale's /mutate webhook and print the result, like "
            "`istioctl kube-inject`: knscale inject -f app.yaml | kubectl apply -f -"
        ),
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="manifest file, or - for stdin")
    add_output_argument(p, ("yaml", "json"), default="yaml")
    p.add_argument("--diff", action="store_true", help="print a unified diff of each changed object instead")
    add_namespace_argument(p)
    add_config_arguments(p)
    p.set_defaults(func=run)


def review_body(obj: Mapping[str, Any], namespace: str) -> bytes:
    """An AdmissionReview v1 of a CREATE of `obj`, as the API server sends it."""
    api_version = text_of(obj.get("apiVersion"))
    group, _, version = api_version.rpartition("/")
    kind = text_of(obj.get("kind"))
    request = {
        "uid": REVIEW_UID,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "knscale-inject"},
        "object": obj,
        "oldObject": None,
        "dryRun": True,
    }
    try:
        return orjson.dumps({"apiVersion": admission.V1, "kind": "AdmissionReview", "request": request})
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise Unsendable(f"the object is not valid JSON for the API server: {exc}") from None


def admit(obj: Mapping[str, Any], namespace: str, config: KnscaleConfig) -> tuple[dict[str, Any], list[str]]:
    """(the object as admitted, the webhook's warnings); raises Denied."""
    review = admission.parse_review(review_body(obj, namespace))
    decision = admission.mutate(review, config)
    response = orjson.loads(decision.body)["response"]
    warnings = [str(w) for w in response.get("warnings") or []]
    if not response.get("allowed"):
        raise Denied(str((response.get("status") or {}).get("message") or "denied"))
    patch = response.get("patch")
    if not patch:
        return copy.deepcopy(dict(obj)), warnings
    ops = json.loads(base64.b64decode(patch))
    return jsonpatch.apply_patch(copy.deepcopy(dict(obj)), ops), warnings


def inject_object(
    obj: Mapping[str, Any], namespace: str, config: KnscaleConfig
) -> tuple[dict[str, Any], list[str]]:
    """One object as the webhook would leave it (unchanged for kinds it does not mutate)."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return copy.deepcopy(dict(obj)), []
    key = (api_group(api_version), kind)
    if key == ("", "Pod"):
        return admit(obj, namespace, config)
    if key not in TEMPLATE_KINDS:
        return copy.deepcopy(dict(obj)), []
    # The webhook's template path, whether or not this cluster registered it: the output is meant
    # to be applied, and the pods made from an injected template carry the status marker, so the
    # pod webhook then leaves them alone.
    templates_on = config.model_copy(
        update={"injection": config.injection.model_copy(update={"mutate_templates": True})}
    )
    return admit(obj, namespace, templates_on)


# A denial line is a finding's text: `KNS010 Pod default/p: metadata.annotations[key]: message…`
_FINDING_TEXT = re.compile(r"^KNS\d{3} [^:]*: ([A-Za-z0-9_.\[\]]*?)(?:\[([^\]]*)\])?: ")


def _where(doc: yamlio.Document, prefix: str, line: str) -> str:
    """`file:line:col` of the annotation a denial names, as lint prints it (`file` if unknown)."""
    m = _FINDING_TEXT.match(line)
    row, col = positions.locate(doc.node, prefix + m.group(1), m.group(2)) if m else (0, 0)
    return f"{doc.source}:{row}:{col}" if row else doc.source


def _replace(data: Any, parts: list[str | int], value: Any) -> Any:
    """`data` with the object at `parts` (a `kind: List` item, from iter_objects) replaced."""
    if not parts:
        return value
    node = data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return data


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def run(args: argparse.Namespace) -> int:
    config, config_warnings = load_cluster_config(args)
    for warning in config_warnings:
        print(f"knscale inject: warning: {warning}", file=sys.stderr)
    denied = read_failed = False
    items: list[Any] = []
    for doc in yamlio.read_path(args.filename, sys.stdin.buffer):
        if isinstance(doc, yamlio.ReadError):
            print(text_line(read_error_finding(doc)), file=sys.stderr)
            read_failed = True
            continue
        if doc.data is None:
            continue
        try:
            result, ok = _inject_document(doc, args, config)
        except BadInput as exc:
            print(text_line(read_error_finding(exc.error)), file=sys.stderr)
            read_failed = True
            continue
        denied = denied or not ok
        if result is None:
            continue
        if args.diff:
            before, after = _dump(doc.data), _dump(result)
            if before != after:
                where = f"{doc.source}#{doc.index}"
                sys.stdout.writelines(
                    difflib.unified_diff(
                        before.splitlines(keepends=True),
                        after.splitlines(keepends=True),
                        where,
                        f"{where} (injected)",
                    )
                )
        elif args.output == "json":
            items.append(result)
        else:
            sys.stdout.write("---\n" + _dump(result))
    if args.output == "json" and not args.diff:
        body = items[0] if len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
        print(json.dumps(body, indent=2, ensure_ascii=False))
    if read_failed:
        return 2
    return 1 if denied else 0


def _inject_document(
    doc: yamlio.Document, args: argparse.Namespace, config: KnscaleConfig
) -> tuple[Any, bool]:
    """(the document as admitted, or None when one of its objects is denied; whether all passed)."""
    data = copy.deepcopy(doc.data)
    ok = True
    for prefix, obj in iter_objects(data):
        if not isinstance(obj, dict):
            continue
        meta = obj.get("metadata")
        written_ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        namespace = written_ns if isinstance(written_ns, str) and written_ns else args.namespace
        try:
            result, warnings = inject_object(obj, namespace, config)
        except Denied as exc:
            ok = False
            for line in exc.message.splitlines():
                print(f"{_where(doc, prefix, line)}: error {line}", file=sys.stderr)
            continue
        except Unsendable as exc:
            row, col = positions.locate(doc.node, prefix.rstrip("."))
            raise BadInput(
                yamlio.ReadError(doc.source, row, col, str(exc), "quote the key or value")
            ) from None
        for warning in warnings:
            print(f"{doc.source}: warning {warning}", file=sys.stderr)
        data = _replace(data, positions.split_path(prefix), result)
    return (data if ok else None), ok
