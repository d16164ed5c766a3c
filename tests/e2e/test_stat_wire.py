"""queue-proxy `Stat` bytes marshalled by Knative Serving's own Go code (stat-marshal, built by
build.sh from knative.dev/serving) are read by knscale's collector exactly, and knscale's encoder
(used by the unit tests' fake queue-proxies) produces the same bytes."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from cluster import Toolchain

from reconciler.metrics.stat_pb import decode_stat, encode_stat

pytestmark = pytest.mark.e2e

CASES: list[dict[str, Any]] = [
    {"pod_name": "web-0"},
    {
        "pod_name": "hello-00001-deployment-5d8f7c9b4-abcde",
        "average_concurrent_requests": 3.25,
        "average_proxied_concurrent_requests": 1.5,
        "request_count": 42.0,
        "proxied_request_count": 7.0,
        "process_uptime": 12345.678,
    },
    {"pod_name": "p", "average_concurrent_requests": 1e-9, "request_count": 1e12, "timestamp": 1_763_900_000},
]
FLAGS = {
    "pod_name": "-pod",
    "average_concurrent_requests": "-concurrency",
    "average_proxied_concurrent_requests": "-proxied-concurrency",
    "request_count": "-requests",
    "proxied_request_count": "-proxied-requests",
    "process_uptime": "-uptime",
    "timestamp": "-timestamp",
}


@pytest.mark.parametrize("fields", CASES, ids=lambda f: f["pod_name"][:12])
def test_go_marshalled_stat_is_read_exactly(toolchain: Toolchain, fields: dict[str, Any]) -> None:
    argv = [str(toolchain.tool("stat-marshal"))]
    for name, value in fields.items():
        argv.append(f"{FLAGS[name]}={value!r}" if isinstance(value, float) else f"{FLAGS[name]}={value}")
    go_bytes = subprocess.run(argv, check=True, capture_output=True, timeout=30).stdout
    stat = decode_stat(go_bytes)
    for name, value in fields.items():
        assert getattr(stat, name) == value, name
    assert encode_stat(**fields) == go_bytes  # byte-for-byte the wire format queue-proxy serves
