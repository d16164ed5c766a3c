"""Lint one parsed document: the translator's view of `knscale lint`.

The CLI parses YAML and hands over plain data plus two lookups into its position map (where a
path/key sits in the file, and which annotation keys were written twice); everything else —
`kind: List` expansion, which documents are Kubernetes objects, the rules — happens here, pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding, ObjectRef
from translator.core.objects import annotation_sites, iter_objects, object_ref, text_of
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.validate import validate_object

Position = Callable[[str, str | None], tuple[int, int]]
Duplicates = Callable[[str], list[tuple[str, int, int]]]


@dataclass(frozen=True, slots=True)
class Located:
    """A finding and where it is: file, 1-based line and column (0 when unknown)."""

    finding: Finding
    source: str
    line: int
    column: int


def looks_like_object(doc: Any) -> bool:
    return (
        isinstance(doc, Mapping)
        and isinstance(doc.get("apiVersion"), str)
        and isinstance(doc.get("kind"), str)
    )


def _broken_object(doc: Any) -> bool:
    """A mapping that means to be a Kubernetes object (has apiVersion or kind) but is not one.

    Other YAML (CI workflows, Helm values, kustomization files) is not ours to judge and is
    skipped, so `knscale lint .` and the pre-commit hook can run over a whole repository.
    """
    if not isinstance(doc, Mapping) or looks_like_object(doc):
        return False
    # apiVersion alone is not enough: a Helm Chart.yaml has `apiVersion: v2` and nothing else of one.
    return "kind" in doc or ("apiVersion" in doc and "metadata" in doc)


def lint_document(
    data: Any,
    config: KnscaleConfig,
    *,
    source: str,
    position: Position,
    duplicates: Duplicates | None = None,
) -> list[Located]:
    out: list[Located] = []
    for prefix, obj in iter_objects(data):
        if obj is None:
            continue
        if _broken_object(obj):
            line, col = position(prefix.rstrip("."), None)
            finding = RULES[RuleId.KNS902].finding(
                ObjectRef(kind=text_of(obj.get("kind")), name=_name(obj)),
                prefix.rstrip(".") or "<document>",
                None,
                None,
                "a Kubernetes object needs both apiVersion and kind as strings",
                "add the missing field, e.g. apiVersion: serving.knative.dev/v1 and kind: Service",
            )
            out.append(Located(finding, source, line, col))
            continue
        if not looks_like_object(obj):
            continue
        assert isinstance(obj, Mapping)
        located = duplicate_findings(obj, source, prefix, duplicates) if duplicates is not None else []
        for finding in validate_object(obj, config):
            line, col = position(prefix + finding.path, finding.key)
            located.append(Located(finding, source, line, col))
        located.sort(key=lambda item: (item.line, item.column))
        out += located
    return out


def duplicate_findings(
    obj: Mapping[str, Any], source: str, prefix: str, duplicates: Duplicates
) -> list[Located]:
    """KNS901 for each annotation key written twice in `obj` (lint, and translate before it renders).

    `duplicates` maps a path in the document to its keys written twice (`positions.duplicate_keys`
    on the document's node); `prefix` is the object's place in the document (`items[3].`).
    """
    ref = object_ref(obj)
    return [
        Located(
            RULES[RuleId.KNS901].finding(
                ref,
                site.path,
                key,
                None,
                f"annotation {key} is written twice; YAML keeps the last, kubectl refuses the file",
                "keep one of them",
            ),
            source,
            line,
            col,
        )
        for site in annotation_sites(obj)
        for key, line, col in duplicates(prefix + site.path)
    ]


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""
