"""Severity follows Knative (what it admits knscale warns about) and the silent-trap warnings
KNS124–126, through `knscale lint` as users run it and through the translator directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from knscale.cli import main
from translator.config.autoscaler import AutoscalerConfig
from translator.config.knscale import KnscaleConfig
from translator.validate import validate_object

P = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
QUERY = {"knscale.dev/prometheus-query": "sum(rate(requests[1m]))"}


def service(ann: dict[str, str]) -> dict[str, Any]:
    container = {"image": "x", "resources": {"requests": {"cpu": "100m"}}}  # (no KNS219)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"template": {"metadata": {"annotations": ann}, "spec": {"containers": [container]}}},
    }


def deployment(ann: dict[str, str], containers: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": ann},
        "spec": {"template": {"spec": {"containers": [{"name": n, "image": "x"} for n in containers]}}},
    }


def found(obj: dict[str, Any], config: KnscaleConfig | None = None) -> dict[str, str]:
    return {f.rule_id: str(f.severity) for f in validate_object(obj, config or KnscaleConfig())}


# ---- the audit --------------------------------------------------------------------------------


def test_unknown_algorithm_is_an_error_only_with_the_class_annotation() -> None:
    algo = {P + "metric-aggregation-algorithm": "exponential"}
    assert found(service({P + "class": KPA, **algo})) == {"KNS110": "error"}
    assert found(service(algo)) == {"KNS122": "warning"}  # class from the cluster default


@pytest.mark.parametrize(
    ("ann", "rule"),
    [({P + "class": "kpa"}, "KNS121"), ({P + "initial-scale": "4294967296"}, "KNS123")],
)
def test_what_knative_admits_is_a_warning(ann: dict[str, str], rule: str) -> None:
    assert found(service(ann)) == {rule: "warning"}


def test_what_knative_refuses_stays_an_error() -> None:
    assert found(service({P + "class": "keda.autoscaling.knative.dev"})) == {"KNS104": "error"}
    assert found(service({P + "initial-scale": "-1"}))["KNS102"] == "error"
    assert found(service({P + "target": "NaN"}))["KNS101"] == "error"  # cannot be rendered


def test_keys_nobody_reads_are_not_refused() -> None:
    assert found(deployment({P + "window": "1s", P + "min-scale": "x"})) == {"KNS117": "warning"}


# ---- silent traps --------------------------------------------------------------------------------


def test_kns124_kpa_workload_without_a_metrics_source() -> None:
    assert found(deployment({P + "class": KPA})) == {"KNS124": "warning"}
    assert found(deployment({P + "class": KPA}, ("app", "queue-proxy"))) == {}
    assert found(deployment({P + "class": KPA, **QUERY})) == {}
    assert "KNS124" not in found(service({P + "class": KPA}))  # Knative's KPA scales revisions


def test_kns125_min_scale_zero_that_never_takes_effect() -> None:
    zero = {P + "min-scale": "0"}
    assert found(deployment({P + "class": KPA, **zero}, ("app", "queue-proxy"))) == {"KNS125": "warning"}
    assert found(deployment({P + "class": KPA, **zero, **QUERY})) == {}
    no_zero = KnscaleConfig(autoscaler=AutoscalerConfig(enable_scale_to_zero=False))
    assert found(service(zero), no_zero) == {"KNS125": "warning"}
    assert found(service(zero)) == {}
    cpu = {P + "class": HPA, P + "metric": "cpu", P + "max-scale": "5", **zero}
    assert found(service(cpu))["KNS125"] == "warning"
    prometheus = {**cpu, P + "metric": "requests", P + "target": "5", P + "prometheus-query": "sum(x)"}
    assert "KNS125" not in found(service(prometheus))


def test_kns126_unset_max_scale_of_an_hpa_revision() -> None:
    cpu = {P + "class": HPA, P + "metric": "cpu"}
    assert found(service(cpu)) == {"KNS126": "warning"}
    assert found(service({**cpu, P + "max-scale": "10"})) == {}
    assert found(service(cpu), KnscaleConfig(autoscaler=AutoscalerConfig(max_scale=20))) == {}
    assert "KNS126" not in found(service({}))  # kpa: max 0 means unlimited, nothing rendered
    byo = {**cpu, P + "scaled-object-auto-create": "false"}  # the user's own ScaledObject decides
    assert "KNS126" not in found(service(byo))


def test_kns126_matches_what_translate_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump(service({P + "class": HPA, P + "metric": "cpu"})))
    assert main(["translate", "-o", "json", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["items"][0]["spec"]["maxReplicaCount"] == 2147483647
    assert "warning KNS126" in err
    assert main(["lint", "-o", "json", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert [f["ruleId"] for f in json.loads(out)["findings"]] == ["KNS126"]
