"""Reading manifests for `knscale lint` / `translate`: YAML or JSON, streamed, with positions.

Each document is parsed once with PyYAML's C parser (`CSafeLoader`): the composed node tree is
kept next to the plain data, so the translator gets plain dicts while the CLI can still point a
finding at the line and column of the offending key (looked up only when there is a finding).
Documents are yielded one at a time, so a 100 MB `helm template` stream on stdin is linted in
constant memory. A parse error is reported with its file, line and column — never a traceback.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from knscale.yamlloader import MAX_DOCUMENT_NODES, DocumentTooLarge, _DocLoader
from knscale.yamlloader import Loader as Loader  # re-exported: the config readers use it too

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
    # What to do about it, when it is not "fix the YAML" (a missing file, a directory, a glob
    # that matched nothing): the CLI prints it as the finding's fix.
    fix: str | None = field(default=None, compare=False)
    too_large: bool = False  # past MAX_DOCUMENT_NODES: not retried as JSON either


MISSING_FIX = "check the path (a relative path is taken from the working directory)"
NO_MATCH_FIX = "check the pattern, or quote it so that knscale expands it rather than the shell"


def discover(paths: list[str]) -> Iterator[str | ReadError]:
    """Files to read: named files as given, directories recursively (YAML/JSON only, no dot-dirs,
    not the `templates/` of a Helm chart).

    Each directory that cannot be listed is reported as a ReadError (`Path.rglob` would skip it
    silently). Directory symlinks are not followed; broken symlinks are skipped. A glob (`*`, `?`,
    `[…]`, `**`) that the shell left alone is expanded here. Whatever matches no file — a missing
    path, a pattern without a match, a directory without a manifest — is a ReadError too: a CI
    job whose path went stale must fail, not pass having read nothing.
    """
    for raw in paths:
        if raw == STDIN:
            yield STDIN
            continue
        path = Path(raw)
        if not path.exists() and glob.has_magic(raw):
            matches = sorted(glob.glob(raw, recursive=True))  # noqa: PTH207 - Path.glob takes no absolute pattern
            if not matches:
                yield ReadError(raw, 0, 0, "no file matches this pattern", NO_MATCH_FIX)
            for match in matches:
                yield from _walk(match) if Path(match).is_dir() else iter([match])
        elif path.is_dir():
            found = False
            for item in _walk(raw):
                found = True
                yield item
            if not found:
                yield ReadError(
                    raw,
                    0,
                    0,
                    "no YAML or JSON file in this directory",
                    "give the directory that holds the manifests",
                )
        elif path.exists():
            yield str(path)
        else:
            yield ReadError(raw, 0, 0, "no such file or directory", MISSING_FIX)


def _walk(top: str) -> Iterator[str | ReadError]:
    found: list[tuple[Path, str | ReadError]] = []

    def unreadable(exc: OSError) -> None:
        where = os.fsdecode(exc.filename) if exc.filename is not None else top
        message = f"cannot read directory: {exc.strerror or exc}"
        found.append((Path(where), ReadError(where, 0, 0, message)))

    for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable):
        # A Helm chart's templates/ are Go templates, not YAML: lint `helm template` output.
        chart = "Chart.yaml" in filenames
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (chart and d == "templates")]
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            full = Path(dirpath, name)
            if full.is_file():  # False for a broken symlink
                found.append((full, str(full)))
    found.sort(key=lambda pair: pair[0])
    yield from (item for _, item in found)


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


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    """One line for a character the reader refuses (libyaml: no marks, a multi-line str())."""
    reason = str(exc.reason)
    char = exc.character
    code = ord(char) if isinstance(char, str) and len(char) == 1 else char
    known = isinstance(code, int) and code >= 0
    if "UTF-16" in reason:
        return f"not UTF-16 text: {reason}"
    if "UTF-8" in reason or "byte" in reason or "octet" in reason:
        if known and ("leading" in reason or "start byte" in reason) and code <= 0xFF:
            return f"not UTF-8 text: invalid byte 0x{code:02x}"
        return f"not UTF-8 text: {reason}"
    return f"not valid YAML: {reason}" + (f" (U+{code:04X})" if known else "")


_BOM = b"\xef\xbb\xbf"
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character


class _Tracked:
    """A stream as the parser reads it, able to turn the parser's byte offset into (line, column).

    Only the last few chunks are kept (an offset the reader reports lies in what it read last),
    so streaming stdin stays constant-memory.
    """

    _KEEP = 2

    def __init__(self, stream: IO[str] | IO[bytes]) -> None:
        self._stream = stream
        self._window: deque[bytes] = deque()
        self._start = 0  # byte offset of window[0]
        self._line = 0  # 0-based line at _start
        self._column = 0  # characters between the last line break and _start
        self._utf16 = False  # offsets count UTF-16 units then: not tracked

    @property
    def offset(self) -> int:
        """Bytes read so far (the parser reads ahead of what it has composed by a chunk or two)."""
        return self._start + sum(len(chunk) for chunk in self._window)

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<file>"))

    def read(self, size: int = -1) -> str | bytes:
        chunk = self._stream.read(size)
        raw = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
        if self._start == 0 and not self._window and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            self._utf16 = True
        self._window.append(raw)
        if len(self._window) > self._KEEP:
            self._advance(self._window.popleft())
        return chunk

    def _advance(self, data: bytes) -> None:
        if self._start == 0 and data.startswith(_BOM):
            self._start += len(_BOM)
            data = data[len(_BOM) :]
        self._start += len(data)
        newlines = data.count(b"\n")
        if newlines:
            self._line += newlines
            self._column = 0
            data = data[data.rindex(b"\n") + 1 :]
        self._column += len(data.translate(None, _CONTINUATION))

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a byte offset; (0, 0) when it is no longer known."""
        if self._utf16 or offset < self._start:
            return 0, 0
        saved = self._start, self._line, self._column
        self._advance(b"".join(self._window)[: offset - self._start])
        line, column = self._line + 1, self._column + 1
        self._start, self._line, self._column = saved
        return line, column


class _Prefixed:
    """`head` (already read from `stream`), then the rest of `stream`."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size < 0:
            out, self._head = self._head + self._stream.read(), b""
        else:
            out, self._head = self._head[:size], self._head[size:]
        return out


def read_stream(source: str, stream: IO[str] | IO[bytes]) -> Iterator[Document | ReadError]:
    """Documents of one YAML/JSON stream, each with its node tree, until the first parse error."""
    tracked = _Tracked(stream)
    loader = _DocLoader(tracked)
    index = 0
    try:
        while True:
            loader.nodes = 0
            if not loader.check_node():
                break
            node = loader.get_node()
            data = loader.construct_document(node)
            yield Document(source, index, data, node)
            index += 1
    except DocumentTooLarge:
        line, col = tracked.position(tracked.offset)
        yield ReadError(
            source,
            line,
            col,
            f"document {index + 1} has more than {MAX_DOCUMENT_NODES:,} values, lists and maps; "
            "knscale reads no larger documents (the API server stores objects of at most 1.5 MiB)",
            too_large=True,
        )
    except yaml.reader.ReaderError as exc:
        line, col = tracked.position(exc.position)
        yield ReadError(source, line, col, _reader_message(exc))
    except yaml.YAMLError as exc:
        line, col = _mark(exc)
        yield ReadError(source, line, col, _message(exc))
    except RecursionError:
        yield ReadError(source, 0, 0, "document is nested too deeply")
    except UnicodeDecodeError as exc:
        yield ReadError(source, 0, 0, f"not UTF-8 text: {exc.reason}")
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        OverflowError,
    ) as exc:  # never a traceback
        yield ReadError(source, 0, 0, f"not a readable value: {str(exc)[:200]}")
    finally:
        loader.dispose()


_WHITESPACE = b" \t\r\n"


def read_path(source: str, stdin: IO[bytes] | None = None) -> Iterator[Document | ReadError]:
    """One file (or stdin for `-`). JSON that PyYAML cannot read is retried as strict JSON.

    That is a `.json` file, or stdin whose first character is `{` or `[` (such stdin is read
    whole: one JSON document is held in memory anyway; any other stdin is streamed).
    """
    if source == STDIN:
        assert stdin is not None
        yield from _read_stdin(stdin)
        return
    if Path(source).is_dir():
        yield ReadError(source, 0, 0, "is a directory, not a file", "give a manifest file, or - for stdin")
        return
    try:
        handle = Path(source).open("rb")  # noqa: SIM115 - closed in finally; streamed document by document
    except FileNotFoundError:
        yield ReadError(source, 0, 0, "no such file or directory", MISSING_FIX)
        return
    except OSError as exc:
        yield ReadError(source, 0, 0, f"cannot read: {exc.strerror or exc}", "check the file's permissions")
        return
    try:
        for yielded, item in enumerate(read_stream(source, handle)):
            if (
                isinstance(item, ReadError)
                and not yielded
                and not item.too_large
                and source.lower().endswith(".json")
            ):
                yield from _read_json(source, Path(source).read_bytes(), item, json_errors=True)
                return
            yield item
    except OSError as exc:
        yield ReadError(source, 0, 0, f"cannot read: {exc.strerror or exc}")
    finally:
        handle.close()


def _read_stdin(stdin: IO[bytes]) -> Iterator[Document | ReadError]:
    source = "<stdin>"
    head = b""
    while True:  # up to the first character that is not white space
        chunk = stdin.read(1 << 16)
        head += chunk
        first = head.removeprefix(_BOM).lstrip(_WHITESPACE)[:1]
        if first or not chunk:
            break
    if first not in (b"{", b"["):
        yield from read_stream(source, _Prefixed(head, stdin))  # type: ignore[arg-type]
        return
    raw = head + stdin.read()
    for yielded, item in enumerate(read_stream(source, io.BytesIO(raw))):
        if isinstance(item, ReadError) and not yielded and not item.too_large:
            yield from _read_json(source, raw, item, json_errors=False)
            return
        yield item


def _read_json(
    source: str, raw: bytes, yaml_error: ReadError, *, json_errors: bool
) -> Iterator[Document | ReadError]:
    """`raw` as strict JSON; if it is not JSON either, the JSON error (or else the YAML one)."""
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text)
    except UnicodeDecodeError:
        yield yaml_error
        return
    except json.JSONDecodeError as exc:
        yield (
            ReadError(source, exc.lineno, exc.colno, f"not valid JSON: {exc.msg}")
            if json_errors
            else yaml_error
        )
        return
    except RecursionError:
        yield ReadError(source, 0, 0, "document is nested too deeply")
        return
    except ValueError as exc:  # an integer of more digits than int() converts
        yield ReadError(source, 0, 0, f"not valid JSON: {str(exc)[:200]}")
        return
    yield Document(source, 0, data, _json_node(text))


# A surrogate escape (`\ud83d`), or an escaped backslash (so that `\\ud83d` is left alone).
_SURROGATE_ESCAPE = re.compile(r"(\\\\)|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_UNKNOWN = yaml.Mark("", -1, -1, -1, "", 0)  # locate() gives (0, 0): position unknown


def _json_node(text: str) -> yaml.Node:
    r"""Node tree of a JSON text PyYAML refused, for positions and duplicate keys.

    PyYAML refuses surrogate escapes (`"\ud83d\ude00"`, as `json.dumps` writes an emoji) and tabs
    (white space in JSON): each escape becomes `\uFFFD` and each tab a space, so that every mark
    stays where it was. If PyYAML still refuses it (a key longer than 1024 characters), the tree
    is built from the JSON itself with unknown positions, so duplicate keys are still found.
    """
    yaml_text = _SURROGATE_ESCAPE.sub(lambda m: m.group(1) or r"\uFFFD", text).replace("\t", " ")
    try:
        node = yaml.compose(yaml_text, Loader=_DocLoader)
    except DocumentTooLarge:  # positions unknown; the data itself is bounded by the rules
        return yaml.ScalarNode("tag:yaml.org,2002:null", "", _UNKNOWN, _UNKNOWN)
    except (yaml.YAMLError, RecursionError):
        node = None
    if node is not None:
        return node
    return _json_tree(text)


def _json_tree(text: str) -> yaml.Node:
    def convert(value: object) -> yaml.Node:
        if isinstance(value, yaml.Node):
            return value
        if isinstance(value, list):
            return yaml.SequenceNode("tag:yaml.org,2002:seq", [convert(v) for v in value], _UNKNOWN, _UNKNOWN)
        scalar = value if isinstance(value, str) else json.dumps(value)
        return yaml.ScalarNode("tag:yaml.org,2002:str", scalar, _UNKNOWN, _UNKNOWN)

    def mapping(pairs: list[tuple[str, object]]) -> yaml.Node:
        items = [(convert(k), convert(v)) for k, v in pairs]
        return yaml.MappingNode("tag:yaml.org,2002:map", items, _UNKNOWN, _UNKNOWN)

    try:
        return convert(json.loads(text, object_pairs_hook=mapping))
    except RecursionError:
        return yaml.ScalarNode("tag:yaml.org,2002:null", "", _UNKNOWN, _UNKNOWN)
