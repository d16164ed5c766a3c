"""ScaledObject rendering: autoscaler-keda's naming and semantics (its keda_test.go cases,
restated) and the places where knscale deliberately differs (its defects)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from translator.config.autoscaler import AutoscalerConfig, KedaConfig
from translator.core.values import ParseError
from translator.keda.gotemplate import render_query
from translator.keda.render import render_scaled_object
from translator.keda.types import HpaRevision, OwnerRef, Rendered, ScaleTargetRef

P = "autoscaling.knative.dev/"
NS = "test-namespace"
REV = "test-revision"
PROM = "http://prometheus-operated.default.svc:9090"
HPA = "hpa.autoscaling.knative.dev"
OWNER = OwnerRef("autoscaling.internal.knative.dev/v1alpha1", "PodAutoscaler", REV, "5d1f-uid")


def rev(annotations: dict[str, str], **kw: Any) -> HpaRevision:
    ann = {P + "class": HPA, **{(k if "/" in k else P + k): v for k, v in annotations.items()}}
    return HpaRevision(
        name=kw.pop("name", REV),
        annotations=ann,
        target=ScaleTargetRef("apps/v1", "Deployment", f"{kw.pop('name_for_target', REV)}-deployment"),
        namespace=NS,
        labels=kw.pop("labels", {"serving.knative.dev/revision": REV}),
        owner=kw.pop("owner", OWNER),
        **kw,
    )


def render(annotations: dict[str, str], autoscaler: AutoscalerConfig | None = None, **kw: Any) -> Rendered:
    return render_scaled_object(rev(annotations, **kw), autoscaler or AutoscalerConfig(), KedaConfig())


def spec(
    annotations: dict[str, str], autoscaler: AutoscalerConfig | None = None, **kw: Any
) -> dict[str, Any]:
    result = render(annotations, autoscaler, **kw)
    assert result.manifest is not None, [i.message for i in result.issues]
    out: dict[str, Any] = result.manifest["spec"]
    return out


def error_ids(result: Rendered) -> set[str]:
    from translator.core.rules import RULES

    return {i.rule_id for i in result.issues if str(RULES[i.rule_id].severity) == "error"}


# ---- autoscaler-keda's expectations --------------------------------------------------------


def test_cpu_metric_with_default_config() -> None:
    result = render({"max-scale": "10", "metric": "cpu", "target": "75"})
    assert result.manifest is not None
    m = result.manifest
    assert m["apiVersion"] == "keda.sh/v1alpha1" and m["kind"] == "ScaledObject"
    assert m["metadata"]["name"] == REV and m["metadata"]["namespace"] == NS
    assert m["metadata"]["annotations"][P + "target"] == "75"  # all PA annotations are carried
    assert m["metadata"]["labels"] == {"serving.knative.dev/revision": REV}
    assert m["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
            "kind": "PodAutoscaler",
            "name": REV,
            "uid": "5d1f-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert m["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{REV}-deployment"},
        "minReplicaCount": 1,
        "maxReplicaCount": 10,
        "advanced": {"horizontalPodAutoscalerConfig": {"name": REV}},
        "triggers": [
            {
                "type": "cpu",
                "name": "default-trigger-cpu",
                "metricType": "Utilization",
                "metadata": {"value": "75"},
            }
        ],
    }


@pytest.mark.parametrize(
    ("metric", "metric_type", "rule"),
    [("cpu", "Value", "KNS205"), ("cpu", "foo", "KNS204"), ("memory", "Value", "KNS205")],
)
def test_refused_metric_types(metric: str, metric_type: str, rule: str) -> None:
    result = render({"max-scale": "10", "metric": metric, "target": "75", "metric-type": metric_type})
    assert result.manifest is None
    assert error_ids(result) == {rule}


def test_cpu_with_min_scale() -> None:
    s = spec({"min-scale": "2", "max-scale": "10", "metric": "cpu", "target": "75"})
    assert (s["minReplicaCount"], s["maxReplicaCount"]) == (2, 10)


def test_memory_metric_in_mebibytes() -> None:
    s = spec({"min-scale": "1", "max-scale": "10", "metric": "memory", "target": "200"})
    assert s["triggers"] == [
        {
            "type": "memory",
            "name": "default-trigger-memory",
            "metricType": "AverageValue",
            "metadata": {"value": "200Mi"},
        }
    ]


def test_custom_metric_prometheus_trigger() -> None:
    s = spec(
        {
            "min-scale": "1",
            "max-scale": "10",
            "metric": "http_requests_total",
            "prometheus-query": "sum(rate(http_requests_total{}[1m]))",
            "target": "5",
        }
    )
    assert s["triggers"] == [
        {
            "type": "prometheus",
            "name": "default-trigger-custom",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": PROM,
                "query": "sum(rate(http_requests_total{}[1m]))",
                "threshold": "5",
                "namespace": NS,
            },
        }
    ]
    assert s["minReplicaCount"] == 1


EXTRA = json.dumps(
    [
        {
            "name": "trigger2",
            "type": "prometheus",
            "metadata": {
                "serverAddress": PROM,
                "namespace": NS,
                "query": "sum(rate(x[1m]))",
                "threshold": "5",
            },
        }
    ]
)


def test_extra_triggers_are_appended_after_the_cpu_trigger() -> None:
    s = spec(
        {
            "min-scale": "1",
            "max-scale": "10",
            "metric": "cpu",
            "target": "50",
            "extra-prometheus-triggers": EXTRA,
        }
    )
    assert [t["name"] for t in s["triggers"]] == ["default-trigger-cpu", "trigger2"]
    assert s["triggers"][1]["metadata"]["threshold"] == "5"


def test_scaling_modifiers_with_named_triggers() -> None:
    modifiers = {
        "formula": "(trigger1 + trigger2)/2",
        "target": "5",
        "activationTarget": "1",
        "metricType": "AverageValue",
    }
    s = spec(
        {
            "min-scale": "1",
            "max-scale": "10",
            "metric": "metric",
            "prometheus-query": "sum(rate(x[1m]))",
            "target": "5",
            "trigger-prometheus-name": "trigger1",
            "extra-prometheus-triggers": EXTRA,
            "scaling-modifiers": json.dumps(modifiers),
        }
    )
    assert s["advanced"]["scalingModifiers"] == modifiers
    assert [t["name"] for t in s["triggers"]] == ["trigger1", "trigger2"]


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({"prometheus-address": "http//9090"}, "KNS203"),
        ({"prometheus-query": None}, "KNS201"),
        (
            {
                "trigger-prometheus-auth-kind": "TriggerAuth",
                "trigger-prometheus-auth-name": "a",
                "trigger-prometheus-auth-modes": "bearer",
            },
            "KNS207",
        ),
        ({"trigger-prometheus-auth-kind": "TriggerAuthentication"}, "KNS208"),
        ({"trigger-prometheus-auth-name": "keda-trigger-auth-prometheus"}, "KNS208"),
        ({"trigger-prometheus-auth-modes": "bearer"}, "KNS208"),
        ({"scaled-object-override": "{bad}"}, "KNS209"),
    ],
)
def test_custom_metric_refusals(extra: dict[str, str | None], rule: str) -> None:
    ann: dict[str, str] = {
        "min-scale": "1",
        "max-scale": "10",
        "metric": "http_requests_total",
        "prometheus-query": "sum(rate(http_requests_total{}[1m]))",
        "target": "5",
    }
    for k, v in extra.items():
        if v is None:
            ann.pop(k)
        else:
            ann[k] = v
    result = render(ann)
    assert result.manifest is None
    assert rule in error_ids(result)


def test_prometheus_authentication() -> None:
    s = spec(
        {
            "metric": "http_requests_total",
            "prometheus-query": "q",
            "target": "5",
            "prometheus-address": "https://thanos-querier.openshift-monitoring.svc.cluster.local:9092",
            "trigger-prometheus-auth-name": "keda-trigger-auth-prometheus",
            "trigger-prometheus-auth-kind": "TriggerAuthentication",
            "trigger-prometheus-auth-modes": "bearer",
        }
    )
    trigger = s["triggers"][0]
    assert trigger["authenticationRef"] == {
        "name": "keda-trigger-auth-prometheus",
        "kind": "TriggerAuthentication",
    }
    assert trigger["metadata"]["authModes"] == "bearer"
    assert trigger["metadata"]["serverAddress"].startswith("https://thanos-querier")


def test_revision_name_substitution_in_query() -> None:
    s = spec(
        {"metric": "m", "prometheus-query": 'sum(rate(x{pod=~"{{ .revisionName }}.*"}[1m]))', "target": "5"}
    )
    assert s["triggers"][0]["metadata"]["query"] == f'sum(rate(x{{pod=~"{REV}.*"}}[1m]))'


def test_query_template_actions() -> None:
    assert render_query("a{{.revisionName}}b", "r") == "arb"
    assert render_query("a {{- .revisionName -}} b", "r") == "arb"
    assert render_query("x{{/* note */}}y", "r") == "xy"
    for bad in ("{{.other}}", '{{ printf "x" }}', "sum(x{{.revisionName}"):
        with pytest.raises(ParseError):
            render_query(bad, "r")


def test_bad_template_is_an_error_naming_the_query_key() -> None:
    result = render({"metric": "m", "prometheus-query": "{{.revision}}", "target": "5"})
    assert [(i.rule_id, i.key) for i in result.issues] == [("KNS202", P + "prometheus-query")]


def test_default_cpu_target_is_70() -> None:
    assert spec({"metric": "cpu"})["triggers"][0]["metadata"] == {"value": "70"}
    assert spec({})["triggers"][0]["type"] == "cpu"  # hpa class defaults to cpu


def test_max_defaults_to_maxint32_and_min_to_one_for_cpu() -> None:
    s = spec({"metric": "cpu"})
    assert (s["minReplicaCount"], s["maxReplicaCount"]) == (1, 2147483647)


def test_custom_metric_leaves_min_unset_to_allow_scale_to_zero() -> None:
    s = spec({"metric": "m", "prometheus-query": "q", "target": "5"})
    assert "minReplicaCount" not in s


def test_window_sets_both_stabilization_windows_and_rules_replace_a_direction() -> None:
    up = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    s = spec({"metric": "cpu", "window": "2m", "hpa-scale-up-rules": json.dumps(up)})
    assert s["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 120},
        "scaleUp": up,
    }


def test_min_scale_from_cluster_config_and_unreachable() -> None:
    assert (
        spec({"metric": "m", "prometheus-query": "q", "target": "5"}, AutoscalerConfig(min_scale=3))[
            "minReplicaCount"
        ]
        == 3
    )
    unreachable = render(
        {"metric": "m", "prometheus-query": "q", "target": "5", "min-scale": "4"}, reachable=False
    )
    assert unreachable.manifest is not None and "minReplicaCount" not in unreachable.manifest["spec"]


# ---- knscale's deliberate differences ------------------------------------------------------


def test_fractional_prometheus_threshold_is_kept() -> None:
    s = spec({"metric": "queue_depth", "prometheus-query": "q", "target": "0.5"})
    assert s["triggers"][0]["metadata"]["threshold"] == "0.5"  # autoscaler-keda writes "0"


def test_utilization_with_prometheus_is_an_error() -> None:
    result = render({"metric": "m", "prometheus-query": "q", "target": "5", "metric-type": "Utilization"})
    assert result.manifest is None and error_ids(result) == {"KNS206"}


def test_memory_utilization_is_a_percentage_keda_can_parse() -> None:
    s = spec({"metric": "memory", "target": "80", "metric-type": "Utilization"})
    assert s["triggers"][0]["metadata"] == {"value": "80"}  # autoscaler-keda writes "80Mi"


def test_fractional_memory_and_cpu_values_are_not_truncated() -> None:
    assert spec({"metric": "memory", "target": "100.5"})["triggers"][0]["metadata"]["value"] == "102912Ki"
    assert spec({"metric": "cpu", "target": "0.5", "metric-type": "AverageValue"})["triggers"][0][
        "metadata"
    ] == {"value": "500m"}


def test_cpu_only_extra_triggers_never_allow_scale_to_zero() -> None:
    extra = json.dumps([{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}])
    s = spec({"metric": "m", "extra-prometheus-triggers": extra})
    assert s["minReplicaCount"] == 1


def test_zero_threshold_in_extra_trigger_is_an_error() -> None:
    extra = json.dumps(
        [{"type": "prometheus", "metadata": {"serverAddress": PROM, "query": "q", "threshold": "0"}}]
    )
    result = render({"metric": "cpu", "extra-prometheus-triggers": extra})
    assert error_ids(result) == {"KNS211"}
    assert result.issues[0].key == P + "extra-prometheus-triggers"


def test_utilization_on_extra_external_trigger_is_an_error() -> None:
    extra = json.dumps(
        [
            {
                "type": "prometheus",
                "metricType": "Utilization",
                "metadata": {"serverAddress": PROM, "query": "q", "threshold": "1"},
            }
        ]
    )
    assert error_ids(render({"metric": "cpu", "extra-prometheus-triggers": extra})) == {"KNS206"}


def test_extra_trigger_shape_errors_name_the_json_path() -> None:
    extra = json.dumps([{"type": "prometheus", "metdata": {"query": "q"}}])
    result = render({"metric": "cpu", "extra-prometheus-triggers": extra})
    messages = [i.message for i in result.issues]
    assert error_ids(result) == {"KNS209"}
    assert any("[0].metdata: unknown field (did you mean 'metadata'?)" in m for m in messages)
    assert any("[0].metadata: is required" in m for m in messages)


def test_non_string_metadata_value_is_refused_like_go_would() -> None:
    extra = json.dumps(
        [{"type": "prometheus", "metadata": {"serverAddress": PROM, "query": "q", "threshold": 5}}]
    )
    result = render({"metric": "cpu", "extra-prometheus-triggers": extra})
    assert error_ids(result) == {"KNS209"}


def test_duplicate_trigger_names() -> None:
    extra = json.dumps(
        [
            {
                "type": "prometheus",
                "name": "default-trigger-custom",
                "metadata": {"serverAddress": PROM, "query": "q", "threshold": "1"},
            }
        ]
    )
    result = render(
        {"metric": "m", "prometheus-query": "q", "target": "1", "extra-prometheus-triggers": extra}
    )
    assert error_ids(result) == {"KNS214"}


def test_min_above_max_from_cluster_defaults_is_refused_like_keda_would() -> None:
    result = render({"metric": "cpu", "max-scale": "3"}, AutoscalerConfig(min_scale=5))
    assert error_ids(result) == {"KNS212"}


def test_no_trigger_at_all() -> None:
    result = render({"metric": "m"})
    assert [(i.rule_id, i.key) for i in result.issues] == [("KNS210", P + "metric")]
    assert error_ids(render({"metric": "memory"})) == {"KNS210"}


def test_every_problem_of_a_prometheus_trigger_is_reported_at_once() -> None:
    # A refused metric type does not hide the missing query or a bad address.
    result = render(
        {"metric": "m", "target": "5", "metric-type": "Utilization", "prometheus-address": "ftp://x"}
    )
    assert error_ids(result) == {"KNS201", "KNS203", "KNS206"}
    assert result.manifest is None


@pytest.mark.parametrize(
    ("modifiers", "fragment"),
    [
        ({"target": "5"}, "formula is required"),
        ({"formula": "a + b"}, "target is required"),
        ({"formula": "trigger1", "target": "0"}, "must be greater than zero"),
        ({"formula": "trigger1", "target": "x"}, "is not a number"),
        ({"formula": "trigger1 * 2", "target": "5", "activationTarget": "z"}, "activationTarget"),
        ({"formula": "missing + trigger1", "target": "5"}, "'missing', which names no trigger"),
    ],
)
def test_scaling_modifiers_keda_would_refuse(modifiers: dict[str, str], fragment: str) -> None:
    result = render(
        {
            "metric": "m",
            "prometheus-query": "q",
            "target": "5",
            "trigger-prometheus-name": "trigger1",
            "scaling-modifiers": json.dumps(modifiers),
        }
    )
    assert error_ids(result) == {"KNS213"}
    assert any(fragment in i.message for i in result.issues)


def test_formula_functions_and_literals_are_not_mistaken_for_triggers() -> None:
    s = spec(
        {
            "metric": "m",
            "prometheus-query": "q",
            "target": "5",
            "trigger-prometheus-name": "t1",
            "scaling-modifiers": json.dumps({"formula": 'max(t1, 2) > 1 ? t1 : float("3")', "target": "5"}),
        }
    )
    assert s["advanced"]["scalingModifiers"]["formula"].startswith("max(")


def test_hpa_rules_out_of_range() -> None:
    rules = json.dumps(
        {"stabilizationWindowSeconds": 7200, "policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}
    )
    result = render({"metric": "cpu", "hpa-scale-down-rules": rules})
    assert error_ids(result) == {"KNS221"}
    assert len(result.issues) == 2


def test_names_longer_than_63_characters() -> None:
    long_name = "r" * 64
    result = render({"metric": "cpu"}, name=long_name, name_for_target=long_name)
    assert "KNS215" in error_ids(result)


# ---- override -----------------------------------------------------------------------------


def test_override_keeps_its_spec_but_forces_identity_target_hpa_name_and_max() -> None:
    override = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "whatever", "namespace": "elsewhere"},
        "spec": {
            "scaleTargetRef": {"name": "other", "envSourceContainerName": "app"},
            "minReplicaCount": 2,
            "maxReplicaCount": 50,
            "cooldownPeriod": 60,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": "mine"}},
            "triggers": [
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": "UTC",
                        "start": "0 8 * * *",
                        "end": "0 18 * * *",
                        "desiredReplicas": "3",
                    },
                }
            ],
        },
    }
    result = render(
        {"max-scale": "7", "metric": "cpu", "window": "30s", "scaled-object-override": json.dumps(override)}
    )
    assert result.manifest is not None
    m = result.manifest
    assert m["metadata"]["name"] == REV and m["metadata"]["namespace"] == NS
    assert m["spec"]["scaleTargetRef"] == {
        "name": f"{REV}-deployment",
        "envSourceContainerName": "app",
        "apiVersion": "apps/v1",
        "kind": "Deployment",
    }
    assert m["spec"]["maxReplicaCount"] == 7
    assert m["spec"]["minReplicaCount"] == 2
    assert m["spec"]["cooldownPeriod"] == 60
    assert m["spec"]["advanced"]["horizontalPodAutoscalerConfig"] == {"name": REV}
    assert [i.rule_id for i in result.issues] == ["KNS216"]  # metric and window are ignored


def test_override_with_advanced_but_no_hpa_config_does_not_crash() -> None:
    override = {
        "spec": {
            "advanced": {"restoreToOriginalReplicaCount": True},
            "minReplicaCount": 1,
            "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}],
        }
    }
    s = spec({"scaled-object-override": json.dumps(override)})
    assert s["advanced"]["horizontalPodAutoscalerConfig"] == {"name": REV}


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"spec": {"triggers": []}}, "KNS212"),
        (
            {
                "spec": {
                    "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]
                }
            },
            "KNS212",
        ),
        ({"spec": {"minReplicaCount": -1, "triggers": [{"type": "cron", "metadata": {}}]}}, "KNS209"),
        ({"spec": {"pollingInterval": "30s", "triggers": [{"type": "cron", "metadata": {}}]}}, "KNS209"),
        (
            {
                "spec": {
                    "idleReplicaCount": 2,
                    "minReplicaCount": 1,
                    "triggers": [{"type": "cron", "metadata": {}}],
                }
            },
            "KNS212",
        ),
        (
            {
                "spec": {
                    "fallback": {"failureThreshold": 3, "replicas": 2},
                    "minReplicaCount": 1,
                    "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "5"}}],
                }
            },
            "KNS212",
        ),
        ({"kind": "Deployment", "spec": {"triggers": [{"type": "cron", "metadata": {}}]}}, "KNS209"),
        ({"metadata": {"name": "x"}}, "KNS212"),
        ([1, 2], "KNS209"),
    ],
)
def test_override_keda_admission_would_reject(override: Any, rule: str) -> None:
    result = render({"scaled-object-override": json.dumps(override)})
    assert result.manifest is None
    assert rule in error_ids(result)
    assert all(i.key in (P + "scaled-object-override", None) for i in result.issues if i.rule_id != "KNS216")


def test_bring_your_own_is_not_rendered_by_lint_rules() -> None:
    from translator.keda.render import should_auto_create

    assert should_auto_create({P + "scaled-object-auto-create": "false"}, KedaConfig()) is False
    assert should_auto_create({P + "scaled-object-auto-create": "maybe"}, KedaConfig()) is True
    assert should_auto_create({}, KedaConfig(scaledobject_autocreate=False)) is False
    result = render({"metric": "cpu", "scaled-object-auto-create": "maybe"})
    assert [i.rule_id for i in result.issues] == ["KNS218"] and result.manifest is not None


def test_prometheus_keys_without_effect_warn() -> None:
    result = render({"metric": "cpu", "prometheus-query": "q"})
    assert [i.rule_id for i in result.issues] == ["KNS220"] and result.manifest is not None


def test_missing_resource_requests_warn() -> None:
    containers = [
        {"name": "app", "resources": {"requests": {"memory": "1Gi"}}},
        {"name": "ok", "resources": {"limits": {"cpu": "1"}}},
    ]
    result = render({"metric": "cpu"}, containers=containers)
    assert [(i.rule_id, i.message.split(" has")[0]) for i in result.issues] == [("KNS219", "container app")]


def test_deeply_nested_json_is_a_finding_not_a_crash() -> None:
    deep = (
        '{"spec": {"triggers": [{"type": "cron", "metadata": {}}]}, "metadata": '
        + "[" * 950
        + "]" * 950
        + "}"
    )
    result = render({"scaled-object-override": deep})
    assert result.manifest is None and error_ids(result) == {"KNS209"}
