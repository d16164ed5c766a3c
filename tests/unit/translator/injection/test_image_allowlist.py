"""The image allowlist matches the registry host and the repository path separately: a `*` never
crosses a `/`, so a trusted host named inside another registry's path is not trusted (pod mode
and template mode read the image through the same check)."""

from __future__ import annotations

from typing import Any

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.core.findings import ObjectRef
from translator.core.images import image_matches, parse_image
from translator.injection.plan import plan_injection
from translator.injection.template import plan_template_injection

TRUSTED = "*.trusted.example/*"
IMAGE = "knscale.dev/model-init-image"


@pytest.mark.parametrize(
    ("reference", "host", "port", "path", "tag"),
    [
        ("nginx", "docker.io", None, "library/nginx", None),
        ("kserve/storage-initializer:v1", "docker.io", None, "kserve/storage-initializer", "v1"),
        ("index.docker.io/nginx", "docker.io", None, "library/nginx", None),
        ("localhost/dl", "localhost", None, "dl", None),
        ("Reg.Example:5000/a/b:1", "reg.example", "5000", "a/b", "1"),
    ],
)
def test_references_are_normalised_as_docker_does(
    reference: str, host: str, port: str | None, path: str, tag: str | None
) -> None:
    ref = parse_image(reference)
    assert (ref.host, ref.port, ref.path, ref.tag) == (host, port, path, tag)


@pytest.mark.parametrize(
    "image",
    [
        "evil.io/x.trusted.example/dl:1",
        "evil.io/a.trusted.example/b/c",
        "evil.io:443/a.trusted.example/dl",
        "a.trusted.example:5000/dl",  # a port the pattern does not name
        "a.trusted.example/dl/nested",  # '*' does not cross '/'
        "trusted.example/dl",  # '*.' needs a label before
    ],
)
def test_a_star_never_crosses_a_segment(image: str) -> None:
    assert not image_matches(image, TRUSTED)


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        ("eu.trusted.example/dl:1", TRUSTED),
        ("EU.Trusted.Example/dl@sha256:" + "a" * 64, TRUSTED),
        ("registry.local:5000/dl", "registry.local:*/dl"),
        ("registry.local:5000/dl", "registry.local:5000/dl"),
        ("kserve/storage-initializer:v0.20.0", "docker.io/kserve/*"),
        ("registry.example.com/dl/s3:v1.2", "registry.example.com/dl/*:v1.*"),
    ],
)
def test_hosts_and_paths_that_match(image: str, pattern: str) -> None:
    assert image_matches(image, pattern)


def test_a_tag_in_the_pattern_must_match() -> None:
    assert not image_matches("registry.example.com/dl:v2", "registry.example.com/dl:v1")
    assert not image_matches("registry.example.com/dl", "registry.example.com/dl:v1")


def _annotations(image: str) -> dict[str, str]:
    return {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://b/p", IMAGE: image}


CONFIG = KnscaleConfig(injection=InjectionConfig(image_allowlist=(TRUSTED,), mutate_templates=True))


def test_pod_mode_refuses_the_trusted_host_inside_a_path() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "annotations": _annotations("evil.io/x.trusted.example/dl:1")},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    plan, findings = plan_injection(pod, "ml", CONFIG)
    assert plan is None and [f.rule_id for f in findings] == ["KNS015"]
    pod["metadata"]["annotations"][IMAGE] = "eu.trusted.example/dl:1"
    plan, findings = plan_injection(pod, "ml", CONFIG)
    assert plan is not None and not findings


def test_template_mode_refuses_the_trusted_host_inside_a_path() -> None:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ml"},
        "spec": {
            "template": {
                "metadata": {"annotations": _annotations("evil.io/x.trusted.example/dl:1")},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            }
        },
    }
    change, errors = plan_template_injection(
        deployment, ObjectRef("Deployment", "d", "ml"), CONFIG, knative=False
    )
    assert change is None and [f.rule_id for f in errors] == ["KNS015"]
