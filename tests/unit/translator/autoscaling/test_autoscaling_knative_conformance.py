"""Knative's own annotation-validation cases (knative/serving annotation_validation_test.go),
restated as a table: the same inputs must be refused (or accepted) by knscale, with a rule id.

Each row: annotations (short keys get the autoscaling.knative.dev/ prefix), config-autoscaler
overrides, and the expected error (rule id, key as written) set — empty when Knative accepts.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.autoscaling import HPA, KPA, P, config, errors, lint, revision

CASES: list[tuple[str, dict[str, str], dict[str, Any], set[tuple[str, str]]]] = [
    ("empty annotations", {}, {}, set()),
    ("invalid class", {"class": "unsupported.knative.dev"}, {}, {("KNS104", "class")}),
    ("non-knative.dev domain class", {"class": "some.other.domain"}, {}, set()),
    ("minScale is 0", {"min-scale": "0"}, {}, set()),
    ("maxScale is 0", {"max-scale": "0"}, {}, set()),
    ("minScale is -1", {"min-scale": "-1"}, {}, {("KNS102", "min-scale")}),
    ("maxScale is huge", {"max-scale": "2147483648"}, {}, {("KNS102", "max-scale")}),
    ("maxScale is -1", {"max-scale": "-1"}, {}, {("KNS102", "max-scale")}),
    ("minScale is foo", {"min-scale": "foo"}, {}, {("KNS101", "min-scale")}),
    ("maxScale is bar", {"max-scale": "bar"}, {}, {("KNS101", "max-scale")}),
    (
        "max/minScale is bar",
        {"max-scale": "bar", "min-scale": "bar"},
        {},
        {("KNS101", "max-scale"), ("KNS101", "min-scale")},
    ),
    ("minScale is 5", {"min-scale": "5"}, {}, set()),
    ("maxScale is 2", {"max-scale": "2"}, {}, set()),
    ("minScale 2, maxScale 5", {"min-scale": "2", "max-scale": "5"}, {}, set()),
    ("minScale 5, maxScale 2", {"min-scale": "5", "max-scale": "2"}, {}, {("KNS106", "max-scale")}),
    ("minScale 0, maxScale 0", {"min-scale": "0", "max-scale": "0"}, {}, set()),
    (
        "maxScale above limit",
        {"max-scale": "11"},
        {"max_scale_limit": 10, "max_scale": 5},
        {("KNS107", "max-scale")},
    ),
    (
        "maxScale 0 with limit",
        {"max-scale": "0"},
        {"max_scale_limit": 10, "max_scale": 5},
        {("KNS107", "max-scale")},
    ),
    ("maxScale unset with limit", {}, {"max_scale_limit": 10, "max_scale": 5}, set()),
    ("maxScale below limit", {"max-scale": "9"}, {"max_scale_limit": 10, "max_scale": 5}, set()),
    ("min, activation, max fine", {"min-scale": "1", "activation-scale": "2", "max-scale": "3"}, {}, set()),
    (
        "min above activation",
        {"min-scale": "3", "activation-scale": "2"},
        {},
        {("KNS108", "activation-scale")},
    ),
    (
        "max below activation",
        {"max-scale": "1", "activation-scale": "2"},
        {},
        {("KNS108", "activation-scale")},
    ),
    ("activation 1", {"activation-scale": "1"}, {}, {("KNS108", "activation-scale")}),
    ("activation not a number", {"activation-scale": "two"}, {}, {("KNS101", "activation-scale")}),
    ("valid algorithm on KPA", {"metric-aggregation-algorithm": "linear", "class": KPA}, {}, set()),
    ("empty algorithm", {"metric-aggregation-algorithm": "", "class": KPA}, {}, set()),
    (
        "random algorithm on KPA",
        {"metric-aggregation-algorithm": "random-selection", "class": KPA},
        {},
        {("KNS110", "metric-aggregation-algorithm")},
    ),
    (
        "random algorithm on other class",
        {"metric-aggregation-algorithm": "random", "class": "of-keys"},
        {},
        set(),
    ),
    ("panic window pct -1", {"panic-window-percentage": "-1"}, {}, {("KNS102", "panic-window-percentage")}),
    ("panic window pct 202", {"panic-window-percentage": "202"}, {}, {("KNS102", "panic-window-percentage")}),
    (
        "panic window pct fifty",
        {"panic-window-percentage": "fifty"},
        {},
        {("KNS101", "panic-window-percentage")},
    ),
    ("panic threshold 210", {"panic-threshold-percentage": "210"}, {}, set()),
    (
        "panic threshold 109",
        {"panic-threshold-percentage": "109"},
        {},
        {("KNS102", "panic-threshold-percentage")},
    ),
    (
        "panic threshold 10009",
        {"panic-threshold-percentage": "10009"},
        {},
        {("KNS102", "panic-threshold-percentage")},
    ),
    (
        "panic threshold fifty",
        {"panic-threshold-percentage": "fifty"},
        {},
        {("KNS101", "panic-threshold-percentage")},
    ),
    ("target negative", {"target": "-11"}, {}, {("KNS102", "target")}),
    ("target 0", {"target": "0"}, {}, {("KNS102", "target")}),
    ("target invalid", {"target": "100}"}, {}, {("KNS101", "target")}),
    ("target okay", {"target": "11"}, {}, set()),
    ("TBC negative", {"target-burst-capacity": "-11"}, {}, {("KNS102", "target-burst-capacity")}),
    ("TBC 0", {"target-burst-capacity": "0"}, {}, set()),
    ("TBC large", {"target-burst-capacity": "19870709"}, {}, set()),
    ("TBC -1", {"target-burst-capacity": "-1"}, {}, set()),
    ("TBC invalid", {"target-burst-capacity": "qarashen"}, {}, {("KNS101", "target-burst-capacity")}),
    (
        "TU too small",
        {"target-utilization-percentage": "0"},
        {},
        {("KNS102", "target-utilization-percentage")},
    ),
    (
        "TU too big",
        {"target-utilization-percentage": "101"},
        {},
        {("KNS102", "target-utilization-percentage")},
    ),
    (
        "TU invalid",
        {"target-utilization-percentage": "dghyak"},
        {},
        {("KNS101", "target-utilization-percentage")},
    ),
    ("window invalid", {"window": "jerry-was-a-racecar-driver"}, {}, {("KNS101", "window")}),
    ("window too short", {"window": "1s"}, {}, {("KNS102", "window")}),
    ("window too long", {"window": "365h"}, {}, {("KNS102", "window")}),
    ("window too precise", {"window": "1m9s82ms"}, {}, {("KNS103", "window")}),
    ("window fine for KPA", {"window": "7s", "class": KPA}, {}, set()),
    ("window fine for other class", {"window": "7s", "class": "test"}, {}, set()),
    ("retention 0", {"scale-to-zero-pod-retention-period": "0"}, {}, set()),
    ("retention 21m31s", {"scale-to-zero-pod-retention-period": "21m31s"}, {}, set()),
    (
        "retention 311m",
        {"scale-to-zero-pod-retention-period": "311m"},
        {},
        {("KNS102", "scale-to-zero-pod-retention-period")},
    ),
    (
        "retention -42s",
        {"scale-to-zero-pod-retention-period": "-42s"},
        {},
        {("KNS102", "scale-to-zero-pod-retention-period")},
    ),
    (
        "retention words",
        {"scale-to-zero-pod-retention-period": "twenty"},
        {},
        {("KNS101", "scale-to-zero-pod-retention-period")},
    ),
    ("retention sub-second is fine", {"scale-to-zero-pod-retention-period": "1.5s"}, {}, set()),
    ("scale down delay 0", {"scale-down-delay": "0"}, {}, set()),
    ("scale down delay 21m31s", {"scale-down-delay": "21m31s"}, {}, set()),
    ("scale down delay 311m", {"scale-down-delay": "311m"}, {}, {("KNS102", "scale-down-delay")}),
    ("scale down delay too precise", {"scale-down-delay": "42.5s"}, {}, {("KNS103", "scale-down-delay")}),
    ("scale down delay -42s", {"scale-down-delay": "-42s"}, {}, {("KNS102", "scale-down-delay")}),
    ("scale down delay words", {"scale-down-delay": "twenty"}, {}, {("KNS101", "scale-down-delay")}),
    (
        "all together now fail",
        {
            "panic-threshold-percentage": "fifty",
            "panic-window-percentage": "-11",
            "min-scale": "-4",
            "max-scale": "never",
        },
        {},
        {
            ("KNS101", "panic-threshold-percentage"),
            ("KNS102", "panic-window-percentage"),
            ("KNS102", "min-scale"),
            ("KNS101", "max-scale"),
        },
    ),
    (
        "all together now succeed",
        {
            "panic-threshold-percentage": "125",
            "panic-window-percentage": "75",
            "min-scale": "5",
            "max-scale": "8",
            "window": "1984s",
        },
        {},
        set(),
    ),
    ("cpu metric on default class (KPA)", {"metric": "cpu"}, {}, {("KNS105", "metric")}),
    ("empty metric on HPA", {"metric": "", "class": HPA}, {}, {("KNS105", "metric")}),
    ("rps on KPA", {"metric": "rps"}, {}, set()),
    ("concurrency on KPA", {"metric": "concurrency"}, {}, set()),
    ("cpu on HPA", {"class": HPA, "metric": "cpu"}, {}, set()),
    ("rps on another class", {"class": "other", "metric": "rps"}, {}, set()),
    ("cpu with cluster default HPA", {"metric": "cpu"}, {"pod_autoscaler_class": HPA}, set()),
    ("initial scale 0, cluster refuses", {"initial-scale": "0"}, {}, {("KNS109", "initial-scale")}),
    ("initial scale 0, cluster allows", {"initial-scale": "0"}, {"allow_zero_initial_scale": True}, set()),
    ("initial scale 2", {"initial-scale": "2"}, {}, set()),
    ("initial scale -1", {"initial-scale": "-1"}, {}, {("KNS102", "initial-scale")}),
    ("initial scale invalid", {"initial-scale": "invalid"}, {}, {("KNS101", "initial-scale")}),
]


def _full(annotations: dict[str, str]) -> dict[str, str]:
    return {P + k: v for k, v in annotations.items()}


@pytest.mark.parametrize(("name", "annotations", "cfg", "expected"), CASES, ids=[c[0] for c in CASES])
def test_knative_annotation_validation(
    name: str, annotations: dict[str, str], cfg: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    findings = lint(revision(_full(annotations)), config(**cfg))
    assert errors(findings) == {(rule, P + key) for rule, key in expected}


def test_every_error_names_the_annotations_map_and_a_fix() -> None:
    findings = lint(revision(_full({"min-scale": "-4", "window": "1s", "target": "x"})))
    assert findings
    for f in findings:
        assert f.path == "metadata.annotations"
        assert f.obj.kind == "Revision" and f.obj.name == "hello-00001" and f.obj.namespace == "ns"
        assert f.fix
        assert f.message


def test_legacy_alias_is_reported_as_written() -> None:
    findings = lint(revision({P + "minScale": "-1"}))
    assert errors(findings) == {("KNS102", P + "minScale")}


def test_kebab_key_beats_camel_alias() -> None:
    # Knative reads min-scale first, so only its value is judged; minScale is shadowed.
    findings = lint(revision({P + "min-scale": "1", P + "minScale": "-5", P + "max-scale": "3"}))
    assert errors(findings) == set()
    assert ("KNS112", P + "minScale") in {(f.rule_id, f.key) for f in findings}


def test_knative_messages_are_recognisable() -> None:
    by_rule = {
        f.rule_id: f.message
        for f in lint(revision(_full({"target": "0", "min-scale": "5", "max-scale": "2"})))
    }
    assert by_rule["KNS102"] == "target 0 should be at least 0.01"
    assert by_rule["KNS106"] == "max-scale=2 is less than min-scale=5"
