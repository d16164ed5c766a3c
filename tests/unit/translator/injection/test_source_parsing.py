"""A model source is split once, the way the downloader splits it (translator.injection.uri), and
every check works on the parts: the allowlist on the decoded host, traversal on the decoded
path without its query and fragment. The raw string never decides."""

from __future__ import annotations

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.plan import plan_injection
from translator.injection.uri import split_uri

ON = {"knscale.dev/inject-model": "true"}
URI = "knscale.dev/model-uri"


def rule_ids(uri: str, *allow: str) -> list[str]:
    cfg = KnscaleConfig(
        injection=InjectionConfig(
            source_allowlist=allow or None, allowed_schemes=("s3", "gs", "https", "http", "hf", "pvc")
        )
    )
    pod = {
        "metadata": {"name": "p", "annotations": {**ON, URI: uri}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    _, findings = plan_injection(pod, "ml", cfg)
    return [f.rule_id for f in findings]


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.com%2f.example.org/m",
        "https://evil.com%2F.example.org/m",
        "https://evil.com%00.example.org/m",
        "https://evil.com%3a1.example.org/m",
        "https://evil.com:1.example.org/m",
        "https://evil.com:.example.org/m",
        "https://evil.com;.example.org/m",
        "https://evil.com!.example.org/m",
        "https://evil.com\u3002example.org/m",
        "https://ex\u0430mple.example.org/m",
        "https://[::1/m.example.org",
        "s3://evil%2fa.example.org/m",
        "s3://evil:1.example.org/m",
        "gs://evil%2e.example.org/m",
        "https://0x7f.1/m",
        "https://127.1/m",
        "https://010.0.0.1/m",
        "https://a.example.0x10/m",
    ],
)
def test_hosts_that_are_not_plain_names_are_refused(uri: str) -> None:
    assert rule_ids(uri, "*.example.org") == ["KNS006"]


@pytest.mark.parametrize(
    ("uri", "allow", "expected"),
    [
        ("https://a.example.org/m", ("*.example.org",), []),
        ("https://A.Example.ORG/m", ("*.example.org",), []),
        ("https://a.example.org:8443/m", ("*.example.org",), ["KNS009"]),
        ("https://a.example.org:8443/m", ("*.example.org:*",), []),
        ("https://a.example.org:8443/m", ("*.example.org:8443",), []),
        ("https://a.example.org:99999/m", ("*.example.org:*",), ["KNS006"]),
        ("https://10.0.0.1/m", ("10.0.0.*",), []),
        ("https://[fd00::1]:8080/m", ("[fd00::1]:8080",), []),
        ("https://evil.com/a.example.org/m", ("*.example.org",), ["KNS009"]),
        ("https://evil.com?.example.org", ("*.example.org",), ["KNS009"]),
        ("https://evil.com#.example.org", ("*.example.org",), ["KNS009"]),
        ("s3://autotables_47/m/", ("s3://autotables_*",), []),
        ("hf://org-a/model", ("hf://org*",), []),
    ],
)
def test_the_allowlist_matches_the_parsed_host(uri: str, allow: tuple[str, ...], expected: list[str]) -> None:
    assert rule_ids(uri, *allow) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "https://u:p@h.example:8443/a/b?c=d#e",
        "https://h.example?x/y",
        "https://h.example#x/y?z",
        "s3://bucket/key/a",
        "gs://bucket",
        "hf://org/model:rev",
        "https://a@b@h.example/x",
    ],
)
def test_the_split_is_the_downloaders(uri: str) -> None:
    """kserve-storage reads s3:// with urlparse and http(s) with requests (urllib3, same RFC 3986
    split): ours must agree part for part."""
    from urllib.parse import urlsplit

    theirs = urlsplit(uri)
    ours = split_uri(uri)
    assert ours is not None
    assert (ours.scheme, ours.authority, ours.path) == (theirs.scheme, theirs.netloc, theirs.path)
    assert (ours.query or "", ours.fragment or "") == (theirs.query, theirs.fragment)
