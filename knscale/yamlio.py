"""Reading manifests for `knscale lint` / `translate`: YAML or JSON, streamed, with positions.

Each document is parsed once with PyYAML's C parser (`CSafeLoader`): the composed node tree is
kept next to the plain data, so the translator gets plain dicts while the CLI can still point a
finding at the line and column of the offending key (looked up only when there is a finding).
Documents are yielded one at a time, so a 100 MB `helm template` stream on stdin is linted in
constant memory. A parse error is reported with its file, line and column — never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

try:  # the C parser; the pure-Python one gives the same results, only slower
    Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    Loader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    index: int  # 0-based position in the stream
    data: Any
    node: yaml.Node | None


@dataclass(frozen=True, slots=True)
class ReadError:
    """Input that cannot be read or parsed; line/column are 1-based (0 = unknown)."""

    source: str
    line: int
    column: int
    message: str


def discover(paths: list[str]) -> Iterator[str | ReadError]:
    """Files to read: named files as given, directories recursively (YAML/JSON only, no dot-dirs)."""
    for raw in paths:
        if raw == STDIN:
            yield STDIN
            continue
        path = Path(raw)
        if path.is_dir():
            try:
                found = sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix.lower() in MANIFEST_SUFFIXES
                    and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            except OSError as exc:
                yield ReadError(raw, 0, 0, f"cannot read directory: {exc.strerror or exc}")
                continue
            yield from (str(p) for p in found)
        elif path.exists():
            yield str(path)
        else:
            yield ReadError(raw, 0, 0, "no such file or directory")


def _mark(exc: BaseException) -> tuple[int, int]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return 0, 0
    return mark.line + 1, mark.column + 1


def _message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"not valid YAML: {context + ', ' if context else ''}{problem}"
    return f"not valid YAML: {exc}"


def read_stream(source: str, stream: IO[str] | IO[bytes]) -> Iterator[Document | ReadError]:
    """Documents of one YAML/JSON stream, each with its node tree, until the first parse error."""
    loader = Loader(stream)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            yield Document(source, index, data, node)
            index += 1
    except yaml.YAMLError as exc:
        line, col = _mark(exc)
        yield ReadError(source, line, col, _message(exc))
    except RecursionError:
        yield ReadError(source, 0, 0, "document is nested too deeply")
    except UnicodeDecodeError as exc:
        yield ReadError(source, 0, 0, f"not UTF-8 text: {exc.reason}")
    finally:
        loader.dispose()


def read_path(source: str, stdin: IO[bytes] | None = None) -> Iterator[Document | ReadError]:
    """One file (or stdin for `-`). A `.json` file PyYAML cannot read is retried as strict JSON."""
    if source == STDIN:
        assert stdin is not None
        yield from read_stream("<stdin>", stdin)
        return
    try:
        handle = Path(source).open("rb")  # noqa: SIM115 - closed in finally; streamed document by document
    except OSError as exc:
        yield ReadError(source, 0, 0, f"cannot read: {exc.strerror or exc}")
        return
    try:
        for yielded, item in enumerate(read_stream(source, handle)):
            if isinstance(item, ReadError) and not yielded and source.lower().endswith(".json"):
                yield from _read_json(source)
                return
            yield item
    except OSError as exc:
        yield ReadError(source, 0, 0, f"cannot read: {exc.strerror or exc}")
    finally:
        handle.close()


def _read_json(source: str) -> Iterator[Document | ReadError]:
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        yield ReadError(source, 0, 0, f"cannot read: {exc}")
        return
    except json.JSONDecodeError as exc:
        yield ReadError(source, exc.lineno, exc.colno, f"not valid JSON: {exc.msg}")
        return
    yield Document(source, 0, data, None)


# ---- positions --------------------------------------------------------------------------------

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
        return 1, 1
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
    for key_node, _ in current.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            out.append((key_node.value, key_node.start_mark.line + 1, key_node.start_mark.column + 1))
        seen.add(key_node.value)
    return out
