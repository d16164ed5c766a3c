"""How much of a pod spec knscale walks to inject into it, and how deep: fixed bounds with their
own rules, checked before anything else walks the spec (docs/security.md, "Bounds").

Far beyond any real pod (Kubernetes sets no count limit, but the API server stores an object of
at most 1.5 MiB, and a real pod spec is about a dozen levels deep); what they stop is a hostile
or generated object making the webhook or `knscale lint` spend seconds and memory per item, or
recurse past Python's stack (copying and diffing a template recurse: a template nested ~1,000
levels deep ended in RecursionError and the internal-error denial).
"""

from __future__ import annotations

from typing import Any

from translator.core.findings import Finding, ObjectRef
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.injection.common import MODEL_VOLUME, as_list, is_map

MAX_NESTING = 100  # levels of maps and lists below the pod spec (or the template in template mode)
MAX_CONTAINERS = 1000  # each of containers and initContainers
MAX_VOLUMES = 1000
MAX_CONTAINER_ITEMS = 5000  # each of a container's env, envFrom and volumeMounts


def deeper_than(value: Any, limit: int) -> bool:
    """Whether maps and lists nest more than `limit` levels in `value` (iterative: no recursion).

    A node shared by many parents (a YAML alias in lint input) is walked again only when reached
    deeper than before, so an alias bomb costs its number of distinct nodes, not its expansion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: dict[int, int] = {}
    while stack:
        node, depth = stack.pop()
        if seen.get(id(node), -1) >= depth:
            continue
        seen[id(node)] = depth
        if is_map(node):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if is_map(child) or isinstance(child, list))
    return False


def nesting_findings(value: Any, ref: ObjectRef, path: str, where: str) -> list[Finding]:
    if not deeper_than(value, MAX_NESTING):
        return []
    return [
        RULES[RuleId.KNS904].finding(
            ref,
            path,
            None,
            None,
            f"{where} is nested more than {MAX_NESTING} levels deep; knscale does not process it",
            "send the object as Kubernetes defines it (a pod spec is about a dozen levels deep)",
        )
    ]


def _users(items: list[Any]) -> int:
    """The items the user wrote: knscale's own (its init container, its volumes, its mounts, all
    named knscale-model*) do not count, so admitting an injected object again gives the same
    verdict as the first time (a 1,000-volume pod plus knscale's volumes stays within bounds)."""
    return sum(1 for i in items if not (is_map(i) and _named_ours(i.get("name"))))


def _named_ours(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(MODEL_VOLUME)


def bound_findings(spec: Any, ref: ObjectRef, path: str, spec_path: str) -> list[Finding]:
    """KNS024 for lists longer than knscale processes, else KNS904 for a spec nested too deep."""
    if not is_map(spec):
        return []
    problems: list[str] = []
    for list_field, limit in (
        ("containers", MAX_CONTAINERS),
        ("initContainers", MAX_CONTAINERS),
        ("volumes", MAX_VOLUMES),
    ):
        items = spec.get(list_field)
        if isinstance(items, list) and len(items) > limit and _users(items) > limit:
            problems.append(
                f"{spec_path}.{list_field} has {len(items)} items, more than the {limit} knscale processes"
            )
    if not problems:
        for list_field in ("containers", "initContainers"):
            for i, c in enumerate(as_list(spec.get(list_field))):
                if not is_map(c):
                    continue
                for name in ("env", "envFrom", "volumeMounts"):
                    items = c.get(name)
                    if (
                        isinstance(items, list)
                        and len(items) > MAX_CONTAINER_ITEMS
                        and _users(items) > MAX_CONTAINER_ITEMS
                    ):
                        problems.append(
                            f"{spec_path}.{list_field}[{i}].{name} has {len(items)} items, more than the "
                            f"{MAX_CONTAINER_ITEMS} knscale processes"
                        )
    if problems:
        return [
            RULES[RuleId.KNS024].finding(
                ref, path, None, None, p, "split the workload, or inject the model without knscale"
            )
            for p in problems
        ]
    return nesting_findings(spec, ref, path, spec_path)
