"""`--no-keda`: a plain autoscaling/v2 HPA, validated against Kubernetes' own OpenAPI schema."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.config.autoscaler import AutoscalerConfig
from translator.keda.hpa import render_hpa
from translator.keda.types import HpaRevision, OwnerRef, Rendered, ScaleTargetRef

P = "autoscaling.knative.dev/"
K8S = "1.33"


def rev(ann: dict[str, str]) -> HpaRevision:
    return HpaRevision(
        name="hello-00001",
        annotations={P + "class": "hpa.autoscaling.knative.dev", **{P + k: v for k, v in ann.items()}},
        target=ScaleTargetRef("apps/v1", "Deployment", "hello-00001-deployment"),
        namespace="ns",
        labels={"serving.knative.dev/revision": "hello-00001"},
        owner=OwnerRef("autoscaling.internal.knative.dev/v1alpha1", "PodAutoscaler", "hello-00001", "u-1"),
    )


def render(ann: dict[str, str], cfg: AutoscalerConfig | None = None) -> Rendered:
    return render_hpa(rev(ann), cfg or AutoscalerConfig())


def valid(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S, strict=True)


def test_cpu_default_target_and_bounds() -> None:
    result = render({"metric": "cpu"})
    assert result.manifest is not None
    valid(result.manifest)
    assert result.manifest["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello-00001-deployment"},
        "minReplicas": 1,
        "maxReplicas": 2147483647,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }
        ],
    }
    assert result.manifest["metadata"]["ownerReferences"][0]["kind"] == "PodAutoscaler"


@pytest.mark.parametrize(
    ("ann", "target"),
    [
        ({"metric": "cpu", "target": "62.5"}, {"type": "Utilization", "averageUtilization": 63}),
        (
            {"metric": "cpu", "target": "0.5", "metric-type": "AverageValue"},
            {"type": "AverageValue", "averageValue": "500m"},
        ),
        ({"metric": "memory", "target": "256"}, {"type": "AverageValue", "averageValue": "256Mi"}),
        (
            {"metric": "memory", "target": "75", "metric-type": "Utilization"},
            {"type": "Utilization", "averageUtilization": 75},
        ),
    ],
)
def test_metric_targets(ann: dict[str, str], target: dict[str, Any]) -> None:
    result = render(ann)
    assert result.manifest is not None
    valid(result.manifest)
    assert result.manifest["spec"]["metrics"][0]["resource"]["target"] == target


def test_window_and_rules_become_behavior() -> None:
    down = {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
    result = render(
        {
            "metric": "cpu",
            "window": "45s",
            "hpa-scale-down-rules": json.dumps(down),
            "min-scale": "2",
            "max-scale": "6",
        }
    )
    assert result.manifest is not None
    valid(result.manifest)
    spec = result.manifest["spec"]
    assert spec["behavior"] == {"scaleUp": {"stabilizationWindowSeconds": 45}, "scaleDown": down}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)


def test_min_never_exceeds_max() -> None:
    result = render({"metric": "cpu", "max-scale": "2"}, AutoscalerConfig(min_scale=5))
    assert result.manifest is not None
    valid(result.manifest)
    assert (result.manifest["spec"]["minReplicas"], result.manifest["spec"]["maxReplicas"]) == (2, 2)


@pytest.mark.parametrize(
    ("ann", "rule"),
    [
        ({"metric": "http_requests", "target": "5", "prometheus-query": "q"}, "KNS222"),
        ({"metric": "memory"}, "KNS210"),
        ({"metric": "cpu", "metric-type": "Value"}, "KNS205"),
        ({"metric": "cpu", "hpa-scale-up-rules": '{"selectPolicy": "Sometimes"}'}, "KNS221"),
    ],
)
def test_refusals(ann: dict[str, str], rule: str) -> None:
    result = render(ann)
    assert result.manifest is None
    assert [i.rule_id for i in result.issues] == [rule]


def test_the_validator_is_not_vacuous() -> None:
    result = render({"metric": "cpu"})
    assert result.manifest is not None
    broken = json.loads(json.dumps(result.manifest))
    broken["spec"]["maxReplicas"] = "ten"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(broken)


@given(
    metric=st.sampled_from(["cpu", "memory"]),
    target=st.floats(min_value=0.01, max_value=5000, allow_nan=False).map(
        lambda f: repr(round(f, 2) or 0.01)
    ),
    metric_type=st.sampled_from([None, "Utilization", "AverageValue"]),
    bounds=st.tuples(st.integers(0, 20), st.integers(0, 20)),
    window=st.one_of(st.none(), st.integers(6, 3600)),
)
def test_every_rendered_hpa_is_valid(
    metric: str, target: str, metric_type: str | None, bounds: tuple[int, int], window: int | None
) -> None:
    ann = {"metric": metric, "target": target, "min-scale": str(bounds[0]), "max-scale": str(bounds[1])}
    if metric_type:
        ann["metric-type"] = metric_type
    if window:
        ann["window"] = f"{window}s"
    result = render(ann)
    assert result.manifest is not None, [i.message for i in result.issues]
    valid(result.manifest)
