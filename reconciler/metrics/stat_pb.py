"""Knative's queue-proxy ``Stat`` message, built at runtime from the vendored ``proto/stat.proto``.

No generated ``_pb2`` module and no ``protoc``: a small parser reads the proto3 subset the file
uses (package, messages, scalar / message / ``repeated`` fields, comments) into a
``FileDescriptorProto`` and the ``protobuf`` runtime makes the classes. Anything outside that
subset is an import-time error, so a changed upstream schema cannot be half-understood.
Provenance: ``proto/PROVENANCE.md``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _FDP.TYPE_DOUBLE,
    "float": _FDP.TYPE_FLOAT,
    "int64": _FDP.TYPE_INT64,
    "uint64": _FDP.TYPE_UINT64,
    "int32": _FDP.TYPE_INT32,
    "uint32": _FDP.TYPE_UINT32,
    "bool": _FDP.TYPE_BOOL,
    "string": _FDP.TYPE_STRING,
    "bytes": _FDP.TYPE_BYTES,
}
_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"[^"\n]*"|[A-Za-z_][A-Za-z0-9_.]*|\d+|[{}=;]', re.DOTALL)


class ProtoSchemaError(ValueError):
    """The vendored schema uses something this parser does not support."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ProtoSchemaError(f"unexpected character {text[pos]!r} at offset {pos}")
        tok = m.group(0)
        pos = m.end()
        if tok.isspace() or tok.startswith(("//", "/*")):
            continue
        out.append(tok)
    return out


def parse_proto(text: str, file_name: str) -> descriptor_pb2.FileDescriptorProto:
    """Parse a proto3 file of messages with scalar/message/repeated fields."""
    toks = _tokens(text)
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name)
    i = 0

    def expect(value: str) -> None:
        nonlocal i
        if i >= len(toks) or toks[i] != value:
            got = toks[i] if i < len(toks) else "end of file"
            raise ProtoSchemaError(f"expected {value!r}, got {got!r}")
        i += 1

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise ProtoSchemaError("unexpected end of file")
        i += 1
        return toks[i - 1]

    while i < len(toks):
        word = take()
        if word == "syntax":
            expect("=")
            syntax = take().strip('"')
            if syntax != "proto3":
                raise ProtoSchemaError(f"only proto3 is supported, got {syntax!r}")
            fdp.syntax = syntax
            expect(";")
        elif word == "package":
            fdp.package = take()
            expect(";")
        elif word == "message":
            msg = fdp.message_type.add(name=take())
            expect("{")
            while toks[i] != "}":
                label = _FDP.LABEL_OPTIONAL
                ftype = take()
                if ftype == "repeated":
                    label = _FDP.LABEL_REPEATED
                    ftype = take()
                name = take()
                expect("=")
                number = int(take())
                expect(";")
                field = msg.field.add(name=name, number=number, label=label, json_name=_camel(name))
                if ftype in _SCALARS:
                    field.type = _SCALARS[ftype]
                elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ftype):
                    field.type = _FDP.TYPE_MESSAGE
                    field.type_name = f".{fdp.package}.{ftype}" if fdp.package else f".{ftype}"
                else:
                    raise ProtoSchemaError(f"unsupported field type {ftype!r} in message {msg.name}")
            expect("}")
        else:
            raise ProtoSchemaError(f"unsupported top-level construct {word!r}")
    return fdp


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _load() -> tuple[type[Message], type[Message], type[Message]]:
    text = resources.files("reconciler.metrics.proto").joinpath("stat.proto").read_text(encoding="utf-8")
    pool = descriptor_pool.DescriptorPool()  # private pool: never clashes with other "metrics.*" types
    pool.Add(parse_proto(text, "knative/serving/pkg/autoscaler/metrics/stat.proto"))
    classes = tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"metrics.{name}"))
        for name in ("Stat", "WireStatMessage", "WireStatMessages")
    )
    return classes[0], classes[1], classes[2]


Stat, WireStatMessage, WireStatMessages = _load()
"""Message classes: ``Stat`` (queue-proxy ``:9090/metrics`` body), and the activator's wire wrappers."""

STAT_FIELDS = (
    "pod_name",
    "average_concurrent_requests",
    "average_proxied_concurrent_requests",
    "request_count",
    "proxied_request_count",
    "process_uptime",
    "timestamp",
)


def decode_stat(payload: bytes) -> Any:
    """Parse a serialized ``Stat``; raises ``ValueError`` on malformed bytes."""
    msg = Stat()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:
        raise ValueError(f"not a protobuf Stat: {exc}") from exc
    return msg


def encode_stat(**fields: Any) -> bytes:
    """Serialize a ``Stat`` from keyword fields (tests and fixtures)."""
    unknown = set(fields) - set(STAT_FIELDS)
    if unknown:
        raise TypeError(f"unknown Stat fields: {sorted(unknown)}")
    data: bytes = Stat(**fields).SerializeToString()
    return data
