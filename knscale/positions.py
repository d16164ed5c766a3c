"""Where a finding points: the line and column of a dotted path (and key) in a composed YAML node
tree, and the duplicate keys under a path. Looked up only when there is a finding to place."""

from __future__ import annotations

import re

import yaml

from knscale.yamlloader import _OWN_KEYS

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """`items[2].spec.template.metadata.annotations` → ['items', 2, 'spec', …]."""
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(path)]


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) of a mapping entry or sequence item; (None, None) when absent."""
    if isinstance(part, int):
        if isinstance(node, yaml.SequenceNode) and 0 <= part < len(node.value):
            item: yaml.Node = node.value[part]
            return item, item
        return None, None
    if isinstance(node, yaml.MappingNode):
        found: tuple[yaml.Node | None, yaml.Node | None] = (None, None)
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                found = (key_node, value_node)  # the last one wins, as when constructing
        return found
    return None, None


def locate(node: yaml.Node | None, path: str, key: str | None = None) -> tuple[int, int]:
    """1-based (line, column) of `path[key]`, or of the deepest part of it that exists."""
    if node is None:
        return 0, 0
    best = node.start_mark
    current: yaml.Node | None = node
    for part in split_path(path):
        assert current is not None
        key_node, value_node = _child(current, part)
        if value_node is None or key_node is None:
            return best.line + 1, best.column + 1
        best = key_node.start_mark
        current = value_node
    if key is not None and current is not None:
        key_node, _ = _child(current, key)
        if key_node is not None:
            best = key_node.start_mark
    return best.line + 1, best.column + 1


def duplicate_keys(node: yaml.Node | None, path: str) -> list[tuple[str, int, int]]:
    """Keys written twice in the mapping at `path` (YAML keeps the last; kubectl refuses the file)."""
    if node is None:
        return []
    current: yaml.Node | None = node
    for part in split_path(path):
        assert current is not None
        _, current = _child(current, part)
        if current is None:
            return []
    if not isinstance(current, yaml.MappingNode):
        return []
    seen: set[str] = set()
    out = []
    # Only the keys written in this mapping: a `<<` merge adds the merged keys to `value`.
    own = getattr(current, _OWN_KEYS, None)
    for key_node in own if own is not None else [k for k, _ in current.value]:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            mark = key_node.start_mark
            out.append((key_node.value, mark.line + 1, mark.column + 1))
        seen.add(key_node.value)
    return out
