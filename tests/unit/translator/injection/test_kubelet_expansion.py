"""What knscale checked is what the downloader gets, after the kubelet expanded `$(NAME)` in its
args and env values from the container's environment (a referenced Secret's keys included).

`expand` is Kubernetes' `third_party/forked/golang/expansion` (the kubelet's
`expansion.Expand` with `MappingFuncFor`): `$$` → `$`, `$(VAR)` → its value when VAR is
defined, otherwise left as written; any other `$` stays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from translator.config.knscale import KnscaleConfig
from translator.injection.plan import plan_injection


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":  # escaped operator
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close < 0:  # incomplete reference: written back as is
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(env.get(name, f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "x"),
        ("$$(A)", "$(A)"),
        ("$(B)", "$(B)"),
        ("$(A", "$(A"),
        ("a$", "a$"),
        ("$$$(A)", "$x"),
        ("$b", "$b"),
    ],
)
def test_expand_is_the_kubelets(text: str, expanded: str) -> None:
    assert expand(text, {"A": "x"}) == expanded


# What a hostile Secret (envFrom) or the pod's other env could define.
SECRET_ENV = {"DOTS": "..", "HOST": "evil.example", "X": "/etc"}

CASES = [
    {"knscale.dev/model-uri": "s3://bucket/$(DOTS)/$(X)/m"},
    {"knscale.dev/model-uri": "https://models.example.com/$(DOTS)?sig=$(HOST)"},
    {"knscale.dev/model-uri": "hf://org/model$$(DOTS)"},
    {"modelBucket": "bucket", "modelPath": "/a/$(DOTS)/$(DOTS)/b"},
    {"knscale.dev/model-uri": "s3://b/m", "knscale.dev/model-mount-path": "/mnt/$(DOTS)/$(X)"},
]


@pytest.mark.parametrize("annotations", CASES)
def test_the_kubelet_expands_to_the_checked_values(annotations: dict[str, str]) -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "annotations": {"knscale.dev/inject-model": "true", **annotations}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    plan, findings = plan_injection(pod, "ml", KnscaleConfig())
    assert plan is not None and plan.init_container is not None, [f.text() for f in findings]
    request = plan.request
    init = plan.init_container
    # env values are expanded in order, each from the Secret's and the earlier entries' values
    environment = dict(SECRET_ENV)
    for entry in init["env"]:
        environment[entry["name"]] = expand(entry["value"], environment)
    assert [expand(a, environment) for a in init["args"]] == [request.source.uri, request.mount_path]
    assert environment["MODEL_URI"] == request.source.uri
    assert environment["MODEL_BUCKET"] == request.source.env_bucket
    assert environment["MODEL_PATH"] == request.source.env_path
    assert environment["MODEL_DIR"] == request.mount_path
    assert "command" not in init
