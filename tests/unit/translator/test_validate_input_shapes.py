"""What `validate_object` (lint, translate and /validate) makes of annotations and names that are
not strings, and of suppression ids: found by a review that drove `knscale lint` with hostile YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from translator.config.knscale import KnscaleConfig
from translator.validate import validate_object

CONFIG = KnscaleConfig()


def pod(annotations: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": annotations, **metadata},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }


@pytest.mark.timeout(60)  # not a speed target: without the fix this never ends
def test_an_alias_bomb_under_an_annotation_is_summarised_not_expanded() -> None:
    """Nine levels of nine shared references: 9**9 leaves if anything walks or prints it."""
    bomb: Any = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9
    findings = validate_object(pod({"knscale.dev/model-uri": bomb}), CONFIG)
    [shape] = [f for f in findings if f.rule_id == "KNS903"]
    assert shape.value == "<list of 9 items>"
    assert len(shape.text()) < 400 and len(json.dumps([f.to_dict() for f in findings])) < 4000


def test_a_deeply_nested_annotation_value_is_a_finding_not_a_recursion_error() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    findings = validate_object(pod({"a": deep}), CONFIG)
    assert [(f.rule_id, f.value) for f in findings] == [("KNS903", "<map of 1 keys>")]


@pytest.mark.parametrize(
    ("key", "shown", "type_name"), [(42, "42", "int"), (None, "~", "null"), (True, "true", "bool")]
)
def test_a_key_that_is_not_a_string_is_named_as_the_problem(key: Any, shown: str, type_name: str) -> None:
    [finding] = validate_object(pod({key: "x"}), CONFIG)
    assert finding.rule_id == "KNS903" and finding.key == shown
    assert f"annotation keys must be strings, got {type_name}" in finding.message
    assert finding.fix == f'quote the key: "{shown}": …'


def test_lint_ignore_ids_are_whole_tokens() -> None:
    annotations = {"autoscaling.knative.dev/minscale": "1", "knscale.dev/lint-ignore": "KNS1111, xKNS111"}
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": "s",
            "annotations": {"knscale.dev/lint-ignore": annotations.pop("knscale.dev/lint-ignore")},
        },
        "spec": {
            "template": {"metadata": {"annotations": annotations}, "spec": {"containers": [{"image": "a:1"}]}}
        },
    }
    assert "KNS111" in [f.rule_id for f in validate_object(service, CONFIG)]
    service["metadata"]["annotations"]["knscale.dev/lint-ignore"] = "KNS111"
    assert "KNS111" not in [f.rule_id for f in validate_object(service, CONFIG)]


def test_names_that_are_not_strings_are_kns902_and_never_rendered(tmp_path: Path) -> None:
    findings = validate_object(pod({}, name=["a", "b"], namespace=12), CONFIG)
    assert [(f.rule_id, f.path) for f in findings] == [
        ("KNS902", "metadata.name"),
        ("KNS902", "metadata.namespace"),
    ]
    assert all("['a'" not in f.text() for f in findings)
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: [a, b]\nspec:\n  template:\n"
        "    metadata:\n      annotations:\n"
        "        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev\n"
        "    spec:\n      containers:\n      - image: a:1\n        resources: {requests: {cpu: 100m}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "knscale", "translate", str(manifest)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "KNS902" in done.stderr and "ScaledObject" not in done.stdout, done
