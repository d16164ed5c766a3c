"""The vendored Knative `stat.proto` and the runtime-built message classes."""

from __future__ import annotations

import hashlib
import re
import struct
from importlib import resources
from typing import Any

import pytest

from reconciler.metrics.stat_pb import (
    STAT_FIELDS,
    ProtoSchemaError,
    Stat,
    WireStatMessage,
    WireStatMessages,
    decode_stat,
    encode_stat,
    parse_proto,
)

PROTO_DIR = resources.files("reconciler.metrics.proto")


def test_vendored_file_matches_recorded_provenance() -> None:
    text = PROTO_DIR.joinpath("PROVENANCE.md").read_text(encoding="utf-8")
    recorded = re.search(r"SHA-256 \| `([0-9a-f]{64})`", text)
    assert recorded is not None
    assert hashlib.sha256(PROTO_DIR.joinpath("stat.proto").read_bytes()).hexdigest() == recorded.group(1)
    assert "98e5ef90aa7033797aa0a61ef97f3ff7e49a3944" in text and "Apache" in text
    assert "pkg/autoscaler/metrics/stat.proto" in text


def test_stat_fields_follow_the_schema() -> None:
    fields = {f.name: (f.number, f.type) for f in Stat.DESCRIPTOR.fields}
    d = Stat.DESCRIPTOR.fields[0]
    assert fields == {
        "pod_name": (1, d.TYPE_STRING),
        "average_concurrent_requests": (2, d.TYPE_DOUBLE),
        "average_proxied_concurrent_requests": (3, d.TYPE_DOUBLE),
        "request_count": (4, d.TYPE_DOUBLE),
        "proxied_request_count": (5, d.TYPE_DOUBLE),
        "process_uptime": (6, d.TYPE_DOUBLE),
        "timestamp": (7, d.TYPE_INT64),
    }
    assert tuple(fields) == STAT_FIELDS
    assert Stat.DESCRIPTOR.full_name == "metrics.Stat"


def test_wire_bytes_are_the_hand_computed_protobuf_encoding() -> None:
    payload = encode_stat(pod_name="p", average_concurrent_requests=1.5, request_count=2.0, timestamp=7)
    expected = (
        b"\x0a\x01p"  # field 1, length-delimited
        + b"\x11"
        + struct.pack("<d", 1.5)  # field 2, 64-bit
        + b"\x21"
        + struct.pack("<d", 2.0)  # field 4, 64-bit
        + b"\x38\x07"  # field 7, varint
    )
    assert payload == expected
    msg = decode_stat(expected)
    assert (msg.pod_name, msg.average_concurrent_requests, msg.request_count, msg.timestamp) == (
        "p",
        1.5,
        2.0,
        7,
    )


def test_wire_stat_messages_nest() -> None:
    inner = Stat(pod_name="activator-1", average_concurrent_requests=3)
    batch = WireStatMessages(messages=[WireStatMessage(namespace="ns", name="rev-1", stat=inner)])
    back: Any = WireStatMessages.FromString(batch.SerializeToString())
    assert back.messages[0].name == "rev-1" and back.messages[0].stat.average_concurrent_requests == 3


def test_decode_rejects_corrupt_bytes_and_encode_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="not a protobuf Stat"):
        decode_stat(b"\xff\xff")
    with pytest.raises(TypeError, match="unknown Stat fields"):
        encode_stat(concurrency=1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('syntax = "proto2"; message A { string a = 1; }', "only proto3"),
        ('syntax = "proto3"; enum E { A = 0; }', "unsupported top-level construct 'enum'"),
        ('syntax = "proto3"; import "x.proto";', "unsupported top-level construct 'import'"),
        ('syntax = "proto3"; message A { map<string, string> m = 1; }', "unexpected character"),
        ('syntax = "proto3"; message A { string a = 1 }', "expected ';'"),
    ],
)
def test_parser_refuses_what_it_does_not_understand(text: str, message: str) -> None:
    with pytest.raises(ProtoSchemaError, match=message):
        parse_proto(text, "x.proto")
