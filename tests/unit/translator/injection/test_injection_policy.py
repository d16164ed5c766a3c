"""Every model-injection rule: the finding names the object, the annotation, the rule id and a fix."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.findings import Severity
from translator.core.rules import RULES
from translator.injection.plan import plan_injection

CONFIG = KnscaleConfig()
ON = {"knscale.dev/inject-model": "true"}
URI = "knscale.dev/model-uri"


def pod(annotations: dict[str, Any], containers: Any = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": containers or [{"name": "app", "image": "example.com/app:1"}],
        **spec,
    }
    return {"metadata": {"name": "web", "annotations": annotations}, "spec": body}


# (id, annotations, expected rule, expected key, config, pod spec overrides, namespace)
DENIALS: list[tuple[str, dict[str, Any], str, str | None, KnscaleConfig, dict[str, Any], str]] = [
    (
        "flag-yes",
        {"knscale.dev/inject-model": "yes", URI: "s3://b/p"},
        "KNS001",
        "knscale.dev/inject-model",
        CONFIG,
        {},
        "ml",
    ),
    (
        "bare-flag-1",
        {"injectModelInitContainer": "1", "modelBucket": "b"},
        "KNS001",
        "injectModelInitContainer",
        CONFIG,
        {},
        "ml",
    ),
    ("no-source", dict(ON), "KNS002", "knscale.dev/inject-model", CONFIG, {}, "ml"),
    ("path-without-bucket", {**ON, "modelPath": "/m/"}, "KNS002", "modelPath", CONFIG, {}, "ml"),
    (
        "flag-conflict",
        {**ON, "injectModelInitContainer": "false", URI: "s3://b/p"},
        "KNS005",
        "injectModelInitContainer",
        CONFIG,
        {},
        "ml",
    ),
    (
        "uri-and-bucket",
        {**ON, URI: "s3://b/p", "modelBucket": "c"},
        "KNS005",
        "modelBucket",
        CONFIG,
        {},
        "ml",
    ),
    (
        "image-conflict",
        {**ON, URI: "s3://b/p", "knscale.dev/model-init-image": "a/b:1", "initContainerImage": "a/c:1"},
        "KNS005",
        "initContainerImage",
        CONFIG,
        {},
        "ml",
    ),
    ("no-scheme", {**ON, URI: "bucket/path"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("empty-bucket", {**ON, URI: "s3:///path"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("space", {**ON, URI: "s3://b/my model"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("s3-query", {**ON, URI: "s3://b/p?x=1"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("hf-no-model", {**ON, URI: "hf://org"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("pvc-bad-claim", {**ON, URI: "pvc://Bad_Claim/x"}, "KNS006", URI, CONFIG, {}, "ml"),
    ("bucket-with-path", {**ON, "modelBucket": "b/extra"}, "KNS006", "modelBucket", CONFIG, {}, "ml"),
    (
        "path-is-uri",
        {**ON, "modelBucket": "b", "modelPath": "s3://x/y"},
        "KNS006",
        "modelPath",
        CONFIG,
        {},
        "ml",
    ),
    ("ftp", {**ON, URI: "ftp://host/model"}, "KNS007", URI, CONFIG, {}, "ml"),
    ("bucket-scheme-ftp", {**ON, "modelBucket": "ftp://b"}, "KNS007", "modelBucket", CONFIG, {}, "ml"),
    ("http-off-by-default", {**ON, URI: "http://models.local/m.bin"}, "KNS008", URI, CONFIG, {}, "ml"),
    (
        "scheme-not-allowed",
        {**ON, URI: "hf://org/model"},
        "KNS008",
        URI,
        KnscaleConfig(injection=InjectionConfig(allowed_schemes=("s3",))),
        {},
        "ml",
    ),
    (
        "bucket-not-allowed",
        {**ON, "modelBucket": "other_bucket"},
        "KNS009",
        "modelBucket",
        KnscaleConfig(injection=InjectionConfig(source_allowlist=("autotables_*",))),
        {},
        "ml",
    ),
    (
        "dotdot-path",
        {**ON, "modelBucket": "b", "modelPath": "/a/../../etc"},
        "KNS010",
        "modelPath",
        CONFIG,
        {},
        "ml",
    ),
    ("dotdot-uri", {**ON, URI: "s3://b/a/../x"}, "KNS010", URI, CONFIG, {}, "ml"),
    ("dotdot-encoded", {**ON, URI: "https://h/a/%2E%2e/x"}, "KNS010", URI, CONFIG, {}, "ml"),
    ("dotdot-pvc", {**ON, URI: "pvc://claim/../other"}, "KNS010", URI, CONFIG, {}, "ml"),
    (
        "dotdot-mount",
        {**ON, URI: "s3://b/p", "knscale.dev/model-mount-path": "/mnt/../etc"},
        "KNS010",
        "knscale.dev/model-mount-path",
        CONFIG,
        {},
        "ml",
    ),
    ("userinfo", {**ON, URI: "https://user:secret@host/m.bin"}, "KNS011", URI, CONFIG, {}, "ml"),
    (
        "bucket-userinfo",
        {**ON, "modelBucket": "s3://key:secret@b"},
        "KNS011",
        "modelBucket",
        CONFIG,
        {},
        "ml",
    ),
    (
        "relative-mount",
        {**ON, URI: "s3://b/p", "knscale.dev/model-mount-path": "models"},
        "KNS012",
        "knscale.dev/model-mount-path",
        CONFIG,
        {},
        "ml",
    ),
    (
        "root-mount",
        {**ON, URI: "s3://b/p", "knscale.dev/model-mount-path": "//"},
        "KNS012",
        "knscale.dev/model-mount-path",
        CONFIG,
        {},
        "ml",
    ),
    (
        "dev-mount",
        {**ON, URI: "s3://b/p", "knscale.dev/model-mount-path": "/dev/shm"},
        "KNS012",
        "knscale.dev/model-mount-path",
        CONFIG,
        {},
        "ml",
    ),
    (
        "tmp-mount",
        {**ON, URI: "s3://b/p", "knscale.dev/model-mount-path": "/tmp/"},
        "KNS012",
        "knscale.dev/model-mount-path",
        CONFIG,
        {},
        "ml",
    ),
    (
        "mount-taken",
        {**ON, URI: "s3://b/p"},
        "KNS013",
        None,
        CONFIG,
        {"containers": [{"name": "app", "volumeMounts": [{"name": "cache", "mountPath": "/mnt/models/"}]}]},
        "ml",
    ),
    (
        "predeclared-downloader-writes-elsewhere",
        {**ON, URI: "s3://b/p"},
        "KNS013",
        None,
        CONFIG,
        {
            "initContainers": [
                {
                    "name": "knscale-model-init",
                    "volumeMounts": [{"name": "cache", "mountPath": "/mnt/models"}],
                }
            ]
        },
        "ml",
    ),
    (
        "bad-image",
        {**ON, URI: "s3://b/p", "initContainerImage": "not an image"},
        "KNS014",
        "initContainerImage",
        CONFIG,
        {},
        "ml",
    ),
    (
        "image-not-allowed",
        {**ON, URI: "s3://b/p", "knscale.dev/model-init-image": "docker.io/evil/miner:1"},
        "KNS015",
        "knscale.dev/model-init-image",
        KnscaleConfig(injection=InjectionConfig(image_allowlist=("registry.example.com/*",))),
        {},
        "ml",
    ),
    (
        "bad-secret",
        {**ON, URI: "s3://b/p", "knscale.dev/model-credentials-secret": "My_Secret"},
        "KNS016",
        "knscale.dev/model-credentials-secret",
        CONFIG,
        {},
        "ml",
    ),
    (
        "bad-size",
        {**ON, URI: "s3://b/p", "knscale.dev/model-size-limit": "10 gigs"},
        "KNS017",
        "knscale.dev/model-size-limit",
        CONFIG,
        {},
        "ml",
    ),
    (
        "zero-size",
        {**ON, URI: "s3://b/p", "knscale.dev/model-size-limit": "0Gi"},
        "KNS017",
        "knscale.dev/model-size-limit",
        CONFIG,
        {},
        "ml",
    ),
    # A trailing newline must not slip past an end-of-string anchor (`$` matches before "\n").
    (
        "secret-trailing-newline",
        {**ON, URI: "s3://b/p", "knscale.dev/model-credentials-secret": "creds\n"},
        "KNS016",
        "knscale.dev/model-credentials-secret",
        CONFIG,
        {},
        "ml",
    ),
    (
        "size-trailing-newline",
        {**ON, URI: "s3://b/p", "knscale.dev/model-size-limit": "1Gi\n"},
        "KNS017",
        "knscale.dev/model-size-limit",
        CONFIG,
        {},
        "ml",
    ),
    (
        "image-trailing-newline",
        {**ON, URI: "s3://b/p", "knscale.dev/model-init-image": "busybox\n"},
        "KNS014",
        "knscale.dev/model-init-image",
        CONFIG,
        {},
        "ml",
    ),
    ("kube-system", {**ON, URI: "s3://b/p"}, "KNS018", None, CONFIG, {}, "kube-system"),
    ("kube-node-lease", {**ON, URI: "s3://b/p"}, "KNS018", None, CONFIG, {}, "kube-node-lease"),
    (
        "only-sidecars",
        {**ON, URI: "s3://b/p"},
        "KNS020",
        None,
        CONFIG,
        {"containers": [{"name": "queue-proxy"}]},
        "ml",
    ),
    (
        "containers-not-list",
        {**ON, URI: "s3://b/p"},
        "KNS022",
        None,
        CONFIG,
        {"containers": {"name": "x"}},
        "ml",
    ),
    ("volumes-not-list", {**ON, URI: "s3://b/p"}, "KNS022", None, CONFIG, {"volumes": "x"}, "ml"),
    (
        "container-named-like-ours",
        {**ON, URI: "s3://b/p"},
        "KNS022",
        None,
        CONFIG,
        {"containers": [{"name": "app"}, {"name": "knscale-model-init"}]},
        "ml",
    ),
    ("non-string-value", {**ON, URI: 42}, "KNS903", URI, CONFIG, {}, "ml"),
    (
        "too-many-containers",
        {**ON, URI: "s3://b/p"},
        "KNS024",
        None,
        CONFIG,
        {"containers": [{"name": f"c{i}"} for i in range(1001)]},
        "ml",
    ),
    (
        "nested-too-deep",
        {**ON, URI: "s3://b/p"},
        "KNS904",
        None,
        CONFIG,
        {"containers": [{"name": "app", "x": functools.reduce(lambda d, _: {"a": d}, range(150), {})}]},
        "ml",
    ),
]


@pytest.mark.parametrize(
    ("annotations", "rule_id", "key", "config", "spec", "namespace"),
    [d[1:] for d in DENIALS],
    ids=[d[0] for d in DENIALS],
)
def test_denial_names_object_annotation_rule_and_fix(
    annotations: dict[str, Any],
    rule_id: str,
    key: str | None,
    config: KnscaleConfig,
    spec: dict[str, Any],
    namespace: str,
) -> None:
    plan, findings = plan_injection(pod(annotations, **spec), namespace, config)
    assert plan is None
    errors = [f for f in findings if f.is_error]
    assert [f.rule_id for f in errors] == [rule_id], [f.text() for f in findings]
    finding = errors[0]
    assert finding.key == key
    text = finding.text()
    assert text.startswith(f"{rule_id} Pod {namespace}/web: metadata.annotations")
    if key is not None:
        assert f"[{key}]" in text
    assert "fix: " in text and finding.fix
    assert RULES[rule_id].severity is Severity.ERROR


def test_every_error_rule_of_the_injection_range_has_a_denial_case() -> None:
    covered = {d[2] for d in DENIALS}
    injection_errors = {
        r.id
        for r in RULES.values()
        if r.id.startswith("KNS0") and r.severity is Severity.ERROR and r.id < "KNS030"
    }
    # KNS023 concerns templates knscale manages (template mode): test_template_mode.py denies it.
    assert injection_errors - {"KNS023"} <= covered, sorted(injection_errors - covered)


def test_credentials_never_echoed_back_from_a_uri() -> None:
    _, findings = plan_injection(pod({**ON, URI: "https://user:hunter2@host/m.bin"}), "ml", CONFIG)
    assert all("hunter2" not in f.text() and "hunter2" not in str(f.value) for f in findings)


def test_default_image_is_allowed_even_with_an_allowlist() -> None:
    config = KnscaleConfig(injection=InjectionConfig(image_allowlist=("registry.example.com/*",)))
    plan, findings = plan_injection(pod({**ON, URI: "s3://b/p"}), "ml", config)
    assert plan is not None and findings == []


def test_allowlists_accept_matching_values() -> None:
    config = KnscaleConfig(
        injection=InjectionConfig(
            image_allowlist=("ccr.ccs.tencentyun.com/deepwisdom/*",),
            source_allowlist=("s3://autotables_*", "models.example.com"),
            allowed_schemes=("s3", "https"),
        )
    )
    seed = {
        "injectModelInitContainer": "true",
        "modelBucket": "autotables_47",
        "initContainerImage": "ccr.ccs.tencentyun.com/deepwisdom/metalab-downloader:v1.0",
    }
    assert plan_injection(pod(seed), "ml", config)[0] is not None
    https = {**ON, URI: "https://models.example.com/m.tar.gz?sig=abc"}
    assert plan_injection(pod(https), "ml", config)[0] is not None
    gs_bucket = {**ON, "modelBucket": "gs://autotables_1"}  # the scheme-qualified pattern is s3 only
    assert [f.rule_id for f in plan_injection(pod(gs_bucket), "ml", config)[1] if f.is_error] == ["KNS008"]


def test_several_problems_are_reported_together() -> None:
    ann = {
        **ON,
        URI: "s3://b/p",
        "knscale.dev/model-mount-path": "rel",
        "knscale.dev/model-credentials-secret": "BAD",
        "knscale.dev/model-size-limit": "huge",
    }
    _, findings = plan_injection(pod(ann), "ml", CONFIG)
    assert sorted(f.rule_id for f in findings if f.is_error) == ["KNS012", "KNS016", "KNS017"]


WARNINGS = [
    ("keys-without-flag", {URI: "s3://b/p"}, "KNS003", URI),
    (
        "legacy",
        {"injectModelInitContainer": "true", "modelBucket": "b"},
        "KNS004",
        "injectModelInitContainer",
    ),
    (
        "pvc-ignores-image",
        {**ON, URI: "pvc://claim/m", "knscale.dev/model-init-image": "a/b:1"},
        "KNS019",
        "knscale.dev/model-init-image",
    ),
]


@pytest.mark.parametrize(
    ("annotations", "rule_id", "key"), [w[1:] for w in WARNINGS], ids=[w[0] for w in WARNINGS]
)
def test_warnings_name_the_key(annotations: dict[str, Any], rule_id: str, key: str) -> None:
    _, findings = plan_injection(pod(annotations), "ml", CONFIG)
    finding = next(f for f in findings if f.rule_id == rule_id)
    assert finding.severity is Severity.WARNING
    assert finding.key == key
    assert not any(f.is_error for f in findings)


def test_legacy_warning_names_the_canonical_key_within_the_warning_limit() -> None:
    from webhook.admission import warning_text

    ann = {
        "injectModelInitContainer": "true",
        "modelBucket": "b",
        "modelPath": "/p",
        "initContainerImage": "a/b:1",
    }
    _, findings = plan_injection(pod(ann), "ml", CONFIG)
    texts = [warning_text(f) for f in findings]
    assert texts == [
        "KNS004: injectModelInitContainer is a legacy key, use knscale.dev/inject-model",
        "KNS004: modelBucket is a legacy key, use knscale.dev/model-uri",
        "KNS004: modelPath is a legacy key, use knscale.dev/model-uri",
        "KNS004: initContainerImage is a legacy key, use knscale.dev/model-init-image",
    ]
    assert all(len(t) <= 120 for t in texts)


def _errors(annotations: dict[str, Any], config: KnscaleConfig = CONFIG) -> list[Any]:
    plan, findings = plan_injection(pod({**ON, **annotations}), "ml", config)
    errors = [f for f in findings if f.is_error]
    assert plan is None and errors, findings
    return errors


def test_a_backslash_cannot_smuggle_another_host_past_the_source_allowlist() -> None:
    """Some URL parsers end the host at a backslash: evil.com would be fetched, with the
    credentials Secret, while fnmatch saw one host under the allowed domain."""
    config = KnscaleConfig(injection=InjectionConfig(source_allowlist=("*.models.example.com",)))
    errors = _errors({URI: "https://evil.com\\.models.example.com/m.bin"}, config)
    assert [f.rule_id for f in errors] == ["KNS006"] and "backslash" in errors[0].message
    assert _errors({"modelBucket": "https://evil.com\\.models.example.com", "modelPath": "/m"}, config)
    plan, _ = plan_injection(pod({**ON, URI: "https://a.models.example.com/m.bin"}), "ml", config)
    assert plan is not None


@pytest.mark.parametrize(
    "annotations",
    [
        {URI: "https://user:hunter2@host/m.bin x"},  # a space: KNS006 quoting the URI
        {URI: "s3://user:hunter2@bucket/m\n"},
        {URI: "https://user:hunter2@host/" + "m" * 5000},  # too long
        {URI: "https://host/m.bin?X-Amz-Signature=hunter2 x"},
        {URI: "s3://bucket/m?sig=hunter2"},
        {URI: "ftp://user:hunter2@host/m"},  # unsupported scheme
        {"modelBucket": "user:hunter2@bucket", "modelPath": "/m"},
        {"modelBucket": "gs://bucket?sig=hunter2", "modelPath": "/m"},
        {"modelBucket": "bucket", "modelPath": "/m?sig=hunter2 x"},
        {"modelBucket": "user:hunter2@bucket", URI: "s3://b/m"},  # both given: KNS005
    ],
)
def test_credentials_in_a_refused_source_are_never_quoted(annotations: dict[str, str]) -> None:
    for f in _errors(annotations):
        assert "hunter2" not in f.text() and "hunter2" not in str(f.value), f.text()


@pytest.mark.parametrize("limit", ["0", "0E1", "0e3", "0.0Gi", "00Mi"])
def test_a_zero_size_limit_is_refused(limit: str) -> None:
    assert [f.rule_id for f in _errors({URI: "s3://b/m", "knscale.dev/model-size-limit": limit})] == [
        "KNS017"
    ]


@pytest.mark.parametrize(
    ("annotations", "rule"),
    [
        ({URI: "s3://b/a/%2e%2e%2fetc"}, "KNS010"),
        ({URI: "s3://b/a/..%2Fetc"}, "KNS010"),
        ({URI: "s3://b/a/%2E%2E%5Cetc"}, "KNS010"),
        ({URI: "hf://../model"}, "KNS010"),
        ({URI: "https://host/a/..\\etc"}, "KNS006"),  # any backslash in a URI
        ({"modelBucket": "b", "modelPath": "/a/..\\etc"}, "KNS010"),
        ({"modelBucket": "b", "modelPath": "/a/%2e%2e%2fetc"}, "KNS010"),
    ],
)
def test_encoded_traversal_is_refused(annotations: dict[str, str], rule: str) -> None:
    assert [f.rule_id for f in _errors(annotations)] == [rule]


@pytest.mark.parametrize("uri", ["hf://org/model?token=hf_secret", "pvc://claim/dir#x", "gs://b/m?x=1"])
def test_only_https_sources_take_a_query_or_fragment(uri: str) -> None:
    errors = _errors({URI: uri})
    assert [f.rule_id for f in errors] == ["KNS006"] and "hf_secret" not in errors[0].text()
    plan, _ = plan_injection(pod({**ON, URI: "https://host/m.bin?X-Amz-Signature=abc"}), "ml", CONFIG)
    assert plan is not None  # a pre-signed URL is its own authorisation


def test_a_predeclared_downloader_on_knscales_volume_or_on_a_pvc_source_is_fine() -> None:
    own = {
        "name": "knscale-model-init",
        "volumeMounts": [{"name": "knscale-model", "mountPath": "/mnt/models"}],
    }
    plan, findings = plan_injection(pod({**ON, URI: "s3://b/p"}, initContainers=[own]), "ml", CONFIG)
    assert plan is not None and not [f for f in findings if f.is_error]
    other = {"name": "knscale-model-init", "volumeMounts": [{"name": "cache", "mountPath": "/mnt/models"}]}
    _, findings = plan_injection(pod({**ON, URI: "s3://b/p"}, initContainers=[other]), "ml", CONFIG)
    [error] = [f for f in findings if f.is_error]
    assert "initContainers[0]" in error.message and "or name that volume knscale-model" in (error.fix or "")
    # A pvc:// source downloads nothing: knscale leaves initContainers alone.
    plan, findings = plan_injection(pod({**ON, URI: "pvc://claim/m"}, initContainers=[other]), "ml", CONFIG)
    assert plan is not None and not [f for f in findings if f.is_error]
