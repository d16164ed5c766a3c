"""Every ScaledObject the translator renders is valid under the real KEDA ScaledObject CRD.

The CRD is vendored (tests/schemas/keda, see PROVENANCE.md). Its structural openAPIV3Schema is
turned into JSON Schema — Kubernetes extensions dropped, int32 formats given their bounds, and
(like `kubectl --validate=strict`) unknown fields refused — and the CRD's one CEL rule
(min ≤ max, or ≤ 100 without max) is checked by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema
import pytest
import yaml
from helpers.paths import SCHEMAS
from hypothesis import given
from hypothesis import strategies as st

from translator.config.autoscaler import AutoscalerConfig, KedaConfig
from translator.keda.render import render_scaled_object
from translator.keda.types import HpaRevision, OwnerRef, ScaleTargetRef

CRD = SCHEMAS / "keda" / "keda.sh_scaledobjects.yaml"
P = "autoscaling.knative.dev/"


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _to_json_schema(v)
        for k, v in node.items()
        if not k.startswith("x-kubernetes-") and k != "description"
    }
    if node.get("format") == "int32":
        out.setdefault("minimum", -(2**31))
        out.setdefault("maximum", 2**31 - 1)
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = _to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def cel_min_le_max(so: dict[str, Any]) -> bool:
    spec = so["spec"]
    if "minReplicaCount" not in spec:
        return True
    return bool(spec["minReplicaCount"] <= spec.get("maxReplicaCount", 100))


def assert_valid(validator: jsonschema.Draft7Validator, so: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(so), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert cel_min_le_max(so)
    assert yaml.safe_load(yaml.safe_dump(so)) == so  # plain data, round-trips


def _rev(ann: dict[str, str], name: str = "hello-00001") -> HpaRevision:
    full = {P + "class": "hpa.autoscaling.knative.dev", **{P + k: v for k, v in ann.items()}}
    return HpaRevision(
        name=name,
        annotations=full,
        target=ScaleTargetRef("apps/v1", "Deployment", f"{name}-deployment"),
        namespace="ns",
        owner=OwnerRef("autoscaling.internal.knative.dev/v1alpha1", "PodAutoscaler", name, "uid-1"),
    )


EXTRA = json.dumps(
    [
        {
            "type": "prometheus",
            "name": "t2",
            "metadata": {"serverAddress": "http://p:9090", "query": "q", "threshold": "2.5"},
        }
    ]
)
KNOWN_GOOD = [
    {"metric": "cpu", "target": "75", "max-scale": "10"},
    {"metric": "memory", "target": "200", "min-scale": "2"},
    {"metric": "memory", "target": "80", "metric-type": "Utilization"},
    {"metric": "cpu", "target": "0.25", "metric-type": "AverageValue"},
    {"metric": "rps", "prometheus-query": "sum(rate(x[1m]))", "target": "0.5", "window": "90s"},
    {
        "metric": "m",
        "prometheus-query": "q",
        "target": "3",
        "metric-type": "Value",
        "extra-prometheus-triggers": EXTRA,
    },
    {
        "metric": "m",
        "prometheus-query": "q",
        "target": "3",
        "trigger-prometheus-name": "t1",
        "extra-prometheus-triggers": EXTRA,
        "scaling-modifiers": json.dumps({"formula": "t1 + t2", "target": "4", "metricType": "AverageValue"}),
        "hpa-scale-up-rules": json.dumps(
            {
                "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
                "tolerance": "0.05",
            }
        ),
        "hpa-scale-down-rules": json.dumps({"stabilizationWindowSeconds": 300}),
    },
    {
        "scaled-object-override": json.dumps(
            {
                "spec": {
                    "pollingInterval": 15,
                    "cooldownPeriod": 120,
                    "idleReplicaCount": 0,
                    "minReplicaCount": 1,
                    "fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "currentReplicas"},
                    "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *"}}],
                }
            }
        ),
        "max-scale": "20",
    },
]


@pytest.mark.parametrize("ann", KNOWN_GOOD, ids=range(len(KNOWN_GOOD)))
def test_known_good_render_validates(validator: jsonschema.Draft7Validator, ann: dict[str, str]) -> None:
    result = render_scaled_object(_rev(ann), AutoscalerConfig(), KedaConfig())
    assert result.manifest is not None, [i.message for i in result.issues]
    assert_valid(validator, result.manifest)


def test_the_validator_is_not_vacuous(validator: jsonschema.Draft7Validator) -> None:
    result = render_scaled_object(_rev({"metric": "cpu"}), AutoscalerConfig(), KedaConfig())
    assert result.manifest is not None
    broken = json.loads(json.dumps(result.manifest))
    broken["spec"]["maxReplicaCount"] = 0
    broken["spec"]["triggers"][0]["metricType"] = 5
    broken["spec"]["bogus"] = True
    assert len(list(validator.iter_errors(broken))) == 3
    broken = json.loads(json.dumps(result.manifest))
    broken["spec"]["minReplicaCount"] = 200
    del broken["spec"]["maxReplicaCount"]
    assert not cel_min_le_max(broken)


_metric = st.sampled_from(["cpu", "memory", "rps", "queue_depth", "concurrency"])
_target = st.floats(min_value=0.01, max_value=1e6, allow_nan=False).map(lambda f: repr(round(f, 3) or 0.01))
_scale = st.integers(min_value=0, max_value=50).map(str)
_valid_options = {
    "min-scale": _scale,
    "max-scale": _scale,
    "metric-type": st.sampled_from(["AverageValue", "Utilization"]),
    "window": st.integers(min_value=6, max_value=3600).map(lambda s: f"{s}s"),
    "trigger-prometheus-name": st.sampled_from(["t1", "t3"]),
    "extra-prometheus-triggers": st.sampled_from([EXTRA, "[]", "null"]),
}
_optional = {
    "target": _target,
    "min-scale": _scale,
    "max-scale": _scale,
    "metric-type": st.sampled_from(["AverageValue", "Utilization", "Value", "bogus"]),
    "window": st.integers(min_value=6, max_value=3600).map(lambda s: f"{s}s"),
    "prometheus-query": st.sampled_from(["sum(rate(x[1m]))", 'x{pod=~"{{.revisionName}}-.*"}', "{{.nope}}"]),
    "prometheus-address": st.sampled_from(["http://prom:9090", "https://thanos:9092/x", "nope"]),
    "trigger-prometheus-name": st.sampled_from(["t1", "t2", "default-trigger-cpu"]),
    "extra-prometheus-triggers": st.sampled_from([EXTRA, "[]", "null", "{}", "[{}]"]),
    "hpa-scale-down-rules": st.sampled_from(
        ['{"stabilizationWindowSeconds": 60}', '{"selectPolicy": "Disabled"}']
    ),
}


def test_every_rendered_scaled_object_is_valid(validator: jsonschema.Draft7Validator) -> None:
    """Rendered or refused, never invalid. The branches taken are counted so the property cannot
    pass vacuously (every example refused would check nothing about the CRD)."""
    branches: Counter[str] = Counter()

    @given(
        metric=_metric,
        extras=st.one_of(
            st.fixed_dictionaries({}, optional=_optional),
            st.fixed_dictionaries(
                {
                    "target": _target,
                    "prometheus-query": st.sampled_from(["sum(rate(x[1m]))", "x{{.revisionName}}"]),
                },
                optional=_valid_options,
            ),
        ),
        min_default=st.integers(min_value=0, max_value=5),
    )
    def check(metric: str, extras: dict[str, str], min_default: int) -> None:
        ann = {"metric": metric, **extras}
        result = render_scaled_object(_rev(ann), AutoscalerConfig(min_scale=min_default), KedaConfig())
        if result.manifest is None:
            assert any(str(i.rule_id).startswith("KNS2") for i in result.issues)
            branches["refused"] += 1
            return
        assert_valid(validator, result.manifest)
        spec = result.manifest["spec"]
        if all(t["type"] in ("cpu", "memory") for t in spec["triggers"]):
            assert spec["minReplicaCount"] >= 1
            branches["rendered-resource"] += 1
        else:
            branches["rendered-prometheus"] += 1

    check()
    assert branches["rendered-prometheus"] > 0, branches
    assert branches["rendered-resource"] > 0, branches
    assert branches["refused"] > 0, branches
