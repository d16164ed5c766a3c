"""The YAML loader `knscale.yamlio` reads manifests with: PyYAML's C parser, bounded and made
never to raise on a scalar it cannot convert (so `knscale lint` reports, never a traceback)."""

from __future__ import annotations

from typing import Any

import yaml

try:  # the C parser; the pure-Python one gives the same results, only slower
    Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    Loader = yaml.SafeLoader


_OWN_KEYS = "_knscale_own_keys"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# One document's node tree is held whole (for positions): bound it. The API server stores an
# object of at most 1.5 MiB, which is far fewer nodes in any real manifest; past the bound the
# file is reported (KNS901), not parsed for minutes into gigabytes (a pod of 200k containers).
MAX_DOCUMENT_NODES = 200_000


class DocumentTooLarge(Exception):
    pass


class _DocLoader(Loader):  # type: ignore[valid-type,misc]
    """`Loader` that remembers the keys written in a mapping before `<<` merges others into it,
    counts the nodes of the document it composes, and never raises on a scalar it cannot
    convert (an impossible date, an integer of more digits than Python converts)."""

    nodes = 0

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # Called once per composed node (not for an alias: its node is shared, never re-composed).
        self.nodes += 1
        if self.nodes > MAX_DOCUMENT_NODES:
            raise DocumentTooLarge
        tag: str = super().resolve(kind, value, implicit)
        return tag

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if not hasattr(node, _OWN_KEYS) and any(k.tag == _MERGE_TAG for k, _ in node.value):
            setattr(node, _OWN_KEYS, [k for k, _ in node.value])
        super().flatten_mapping(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar its tag cannot hold (`!!bool maybe`, `!!float abc`) raises whatever the
        # constructor happens to raise: make it a YAML error at the scalar's position.
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
            value = node.value if isinstance(node.value, str) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"{value[:40]!r} is not a valid {node.tag.rsplit(':', 1)[-1]}", node.start_mark
            ) from None

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # `2020-13-45` looks like a date to YAML 1.1 but is none: keep it as the text it is (the
        # API server's YAML reader keeps every timestamp as a string).
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError, AttributeError):  # AttributeError: `!!timestamp abc`
            return self.construct_scalar(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            text = str(node.value)
            long = text.lstrip("+-").replace("_", "").isdigit()  # more digits than int() converts
            problem = (
                f"the integer {text[:20]}… has too many digits"
                if long
                else f"{text[:40]!r} is not an integer"
            )
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


_DocLoader.add_constructor("tag:yaml.org,2002:timestamp", _DocLoader.construct_yaml_timestamp)
_DocLoader.add_constructor("tag:yaml.org,2002:int", _DocLoader.construct_yaml_int)
