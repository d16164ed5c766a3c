"""A source with `user:password@` is never quoted back, whatever precedes it (whitespace, a
control character, a space before `://`, no '//' at all): not in `knscale lint` output in any
format, not in admission denials or warnings, not in the logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers.admission import load

from knscale.cli import main
from translator.core.redact import redact_source, redact_text

SECRET = "hunter2pw"
SOURCES = [
    f"https://user:{SECRET}@h.example/m",
    f" https://user:{SECRET}@h.example/m",
    f"\x01https://user:{SECRET}@h.example/m",
    f"\thttps://user:{SECRET}@h.example/m",
    f"https ://user:{SECRET}@h.example/m",
    f"https:/\x00/user:{SECRET}@h.example/m",
    f"https://user:{SECRET} x@h.example/m",
    f"s3://user:{SECRET}@bucket/m",
    f" user:{SECRET}@bucket",
    f"user:{SECRET}@bucket/m?x=1",
]
MODEL_KEYS = ["knscale.dev/model-uri", "modelBucket", "modelPath", "knscale.dev/model-init-image"]
OTHER_KEYS = [
    "autoscaling.knative.dev/class",
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/metric",
]


@pytest.mark.parametrize("source", SOURCES)
def test_the_redactions_hide_the_password(source: str) -> None:
    assert SECRET not in redact_source(source)
    assert SECRET not in redact_text(source)
    assert SECRET not in redact_text(f"value {source!r} is bad")


def _annotations(source: str, *keys: str) -> dict[str, str]:
    return {"knscale.dev/inject-model": "true", **dict.fromkeys(keys, source)}


def _objects(source: str) -> list[dict[str, Any]]:
    containers = [{"name": "app", "image": "app:1"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "ml", "annotations": _annotations(source, key)},
            "spec": {"containers": containers},
        }
        for i, key in enumerate(MODEL_KEYS)
    ] + [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "s", "namespace": "ml", "annotations": {"knscale.dev/model-uri": source}},
            "spec": {
                "template": {
                    "metadata": {"annotations": dict.fromkeys(OTHER_KEYS, source)},
                    "spec": {"containers": containers},
                }
            },
        }
    ]


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_lint_output_never_quotes_the_password(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    docs = [obj for source in SOURCES for obj in _objects(source)]
    target = tmp_path / "objects.yaml"
    target.write_text("\n---\n".join(json.dumps(d) for d in docs))  # JSON is YAML, escapes included
    caplog.set_level(logging.DEBUG)
    code = main(["lint", "-f", fmt, str(target)])
    out, err = capsys.readouterr()
    assert code == 1 and "KNS0" in out + err
    assert SECRET not in out + err + caplog.text


def _review(obj: dict[str, Any], uid: str) -> dict[str, Any]:
    review = load("pod-create-v1.json")
    review["request"]["uid"] = uid
    review["request"]["object"] = obj
    group, _, version = obj["apiVersion"].rpartition("/")
    review["request"]["kind"] = {"group": group, "version": version, "kind": obj["kind"]}
    return review


@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_admission_replies_and_logs_never_quote_the_password(
    client: TestClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    denied = 0
    for i, obj in enumerate(obj for source in SOURCES for obj in _objects(source)):
        r = client.post(
            path, content=json.dumps(_review(obj, f"u{i}")), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 200 and SECRET not in r.text, r.text
        assert all(SECRET not in v for v in r.headers.values())
        denied += r.json()["response"]["allowed"] is False
    assert denied > len(SOURCES)
    assert SECRET not in caplog.text
