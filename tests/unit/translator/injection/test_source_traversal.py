"""Traversal is looked for in the decoded path after the query and fragment are split off:
a `..` (or `%2e%2e`) as the last segment before `?` or `#` is still a segment of the path."""

from __future__ import annotations

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.plan import plan_injection
from translator.injection.uri import has_dotdot, split_uri


def rule_ids(uri: str) -> list[str]:
    cfg = KnscaleConfig(injection=InjectionConfig(allowed_schemes=("s3", "gs", "https", "http", "hf", "pvc")))
    pod = {
        "metadata": {
            "name": "p",
            "annotations": {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": uri},
        },
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    _, findings = plan_injection(pod, "ml", cfg)
    return [f.rule_id for f in findings]


@pytest.mark.parametrize(
    "uri",
    [
        "https://h.example/a/..?x=1",
        "https://h.example/a/..#frag",
        "https://h.example/a/%2e%2e?x=1",
        "https://h.example/a/.%2E#f",
        "https://h.example/..?",
        "http://h.example/a/%2e%2e%2fb?x",
    ],
)
def test_traversal_before_a_query_or_fragment_is_found(uri: str) -> None:
    assert rule_ids(uri) == ["KNS010"]


def test_a_query_and_a_fragment_are_not_the_path() -> None:
    split = split_uri("https://u@h.example:1/a/b?c=/..#/..")
    assert split is not None
    assert (split.authority, split.path, split.query, split.fragment) == (
        "u@h.example:1",
        "/a/b",
        "c=/..",
        "/..",
    )
    assert rule_ids("https://h.example/a/b?c=/../d") == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/..", True),
        ("/a/%2e%2E", True),
        ("/a/.%2e/b", True),
        ("/a%2f..%2fb", True),
        ("/a\\..", True),
        ("/a/...", False),
        ("/a/..b", False),
        ("/a/%252e%252e", False),
    ],
)
def test_dotdot_on_the_decoded_path(path: str, expected: bool) -> None:
    assert has_dotdot(path) is expected
