"""knscale's own autoscaling rules (where Knative is silent), the kinds and places judged, and
suppression with knscale.dev/lint-ignore."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.autoscaling import HPA, KPA, P, config, errors, ids, lint, revision, service

from translator.core.findings import Severity


def by_rule(findings: list[Any]) -> dict[str, Any]:
    return {f.rule_id: f for f in findings}


def test_misspelt_key_is_a_warning_with_did_you_mean_not_an_error() -> None:
    findings = lint(service({P + "minscale": "1"}))
    assert errors(findings) == set()
    f = by_rule(findings)["KNS111"]
    assert f.severity is Severity.WARNING
    assert f.key == P + "minscale"
    assert "did you mean autoscaling.knative.dev/min-scale?" in f.message
    assert f.fix == f"rename it to {P}min-scale"
    assert f.extra["didYouMean"] == P + "min-scale"
    assert f.path == "spec.template.metadata.annotations"


def test_unknown_key_without_suggestion() -> None:
    f = by_rule(lint(service({P + "zzz-unrelated-thing": "1"})))["KNS111"]
    assert "did you mean" not in f.message


def test_legacy_alias_info_and_shadowed_alias_warning() -> None:
    findings = lint(service({P + "maxScale": "4"}))
    assert ids(findings) == {("KNS113", P + "maxScale")}
    assert by_rule(findings)["KNS113"].severity is Severity.INFO
    shadowed = lint(service({P + "max-scale": "4", P + "maxScale": "9"}))
    assert ids(shadowed) == {("KNS112", P + "maxScale")}


def test_autoscaling_keys_on_the_service_own_metadata_are_refused() -> None:
    svc = service({}, metadata={"annotations": {P + "min-scale": "1", "knscale.dev/other": "x"}})
    findings = lint(svc)
    assert errors(findings) == {("KNS114", P + "min-scale")}
    assert by_rule(findings)["KNS114"].path == "metadata.annotations"


def test_class_uses_the_cluster_default_when_absent() -> None:
    assert errors(lint(service({P + "metric": "cpu"}))) == {("KNS105", P + "metric")}
    assert errors(lint(service({P + "metric": "cpu"}), config(pod_autoscaler_class=HPA))) == set()


def test_short_class_names_are_surely_wrong() -> None:
    # Knative admits a bare class (a custom one nothing implements): a warning since the audit
    findings = lint(service({P + "class": "hpa"}))
    f = by_rule(findings)["KNS121"]
    assert "hpa.autoscaling.knative.dev" in f.message and errors(findings) == set()
    assert errors(lint(service({P + "class": "my.example.com/autoscaler"}))) == set()


def test_max_scale_limit_and_zero_initial_scale_come_from_the_cluster() -> None:
    assert errors(lint(service({P + "max-scale": "500"}), config(max_scale_limit=100, max_scale=10))) == {
        ("KNS107", P + "max-scale")
    }
    assert errors(lint(service({P + "initial-scale": "0"}), config(allow_zero_initial_scale=True))) == set()


def test_keys_without_effect_for_the_class() -> None:
    findings = lint(service({P + "class": HPA, P + "metric": "cpu", P + "target-burst-capacity": "0"}))
    assert ("KNS115", P + "target-burst-capacity") in ids(findings)
    kpa = lint(service({P + "prometheus-query": "q"}))
    assert ids(kpa) == {("KNS217", P + "prometheus-query")}


def test_custom_class_keys_are_left_alone() -> None:
    assert ids(lint(service({P + "class": "custom.example.com", P + "prometheus-query": "q"}))) == set()


def test_target_above_container_concurrency() -> None:
    findings = lint(service({P + "target": "50"}, spec={"containerConcurrency": 10}))
    assert ids(findings) == {("KNS119", P + "target")}
    assert ids(lint(service({P + "target": "5"}, spec={"containerConcurrency": 10}))) == set()


def test_effective_bounds_mixing_annotation_and_cluster_default() -> None:
    findings = lint(service({P + "min-scale": "8"}), config(max_scale=5))
    assert ids(findings) == {("KNS120", P + "min-scale")}


def test_model_download_without_progress_deadline() -> None:
    ann = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://bucket/model"}
    assert ("KNS118", "knscale.dev/inject-model") in ids(lint(service(ann)))
    ok = {**ann, "serving.knative.dev/progress-deadline": "1800s"}
    assert "KNS118" not in {f.rule_id for f in lint(service(ok))}
    legacy = {"injectModelInitContainer": "True", "modelBucket": "b", "modelPath": "m"}
    assert ("KNS118", "injectModelInitContainer") in ids(lint(service(legacy)))


@pytest.mark.parametrize(("value", "rule"), [("10m30.5s", "KNS103"), ("soon", "KNS101"), ("-5s", "KNS102")])
def test_progress_deadline_value(value: str, rule: str) -> None:
    assert errors(lint(service({"serving.knative.dev/progress-deadline": value}))) == {
        (rule, "serving.knative.dev/progress-deadline")
    }


def test_non_string_values_are_findings() -> None:
    findings = lint(service({P + "min-scale": 3, P + "window": None, "app.example.com/x": True}))
    assert errors(findings) == {
        ("KNS903", P + "min-scale"),
        ("KNS903", P + "window"),
        ("KNS903", "app.example.com/x"),
    }
    fixes = {f.key: f.fix for f in findings}
    assert fixes[P + "min-scale"] == f'quote it: {P}min-scale: "3"'
    assert fixes["app.example.com/x"] == 'quote it: app.example.com/x: "true"'


def test_annotations_that_are_not_a_map() -> None:
    svc = service({})
    svc["spec"]["template"]["metadata"]["annotations"] = ["a", "b"]
    assert errors(lint(svc)) == {("KNS903", None)}


def test_nan_and_inf_are_not_numbers_even_though_knative_lets_them_through() -> None:
    assert errors(lint(service({P + "target": "NaN"}))) == {("KNS101", P + "target")}
    assert errors(lint(service({P + "target": "Inf"}))) == {("KNS101", P + "target")}


def test_initial_scale_beyond_int32() -> None:
    # Knative admits it and uses the cluster's initial-scale: a warning since the severity audit
    findings = lint(service({P + "initial-scale": "3000000000"}))
    assert errors(findings) == set() and ("KNS123", P + "initial-scale") in ids(findings)


def test_hpa_class_revision_gets_translation_errors_once_knative_rules_pass() -> None:
    svc = service({P + "class": HPA, P + "metric": "queue_depth", P + "target": "0.5"})
    assert errors(lint(svc)) == {("KNS201", P + "metric")}
    broken = service({P + "class": HPA, P + "metric": "queue_depth", P + "target": "0"})
    assert errors(lint(broken)) == {("KNS102", P + "target")}  # not also KNS201/KNS210


def test_missing_cpu_request_warning_uses_the_template_containers() -> None:
    svc = service({P + "class": HPA, P + "metric": "cpu"}, container={"name": "user-container"})
    assert ("KNS219", P + "metric") in ids(lint(svc))
    ok = service(
        {P + "class": HPA, P + "metric": "cpu"},
        container={"name": "c", "resources": {"requests": {"cpu": "100m"}}},
    )
    assert "KNS219" not in {f.rule_id for f in lint(ok)}


def test_bring_your_own_scaled_object_note() -> None:
    svc = service({P + "class": HPA, P + "scaled-object-auto-create": "false"})
    f = by_rule(lint(svc))["KNS223"]
    assert f.severity is Severity.INFO and "hello-00001-deployment" in f.message


def _deployment(
    annotations: dict[str, Any], template_annotations: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "annotations": annotations, **meta},
        "spec": {
            "template": {
                "metadata": {"annotations": template_annotations or {}},
                "spec": {
                    "containers": [{"name": "app", "image": "x", "resources": {"requests": {"cpu": "1"}}}]
                },
            }
        },
    }


def test_workload_keys_need_a_class() -> None:
    findings = lint(_deployment({P + "min-scale": "1"}))
    assert ids(findings) == {("KNS117", P + "min-scale")}
    # (no queue-proxy container and no Prometheus query: nothing to scale on, KNS124)
    assert ids(lint(_deployment({P + "class": KPA, P + "min-scale": "1"}))) == {("KNS124", P + "class")}
    # a bad value nobody reads is not refused (severity follows Knative)
    assert ids(lint(_deployment({P + "min-scale": "-1"}))) == {("KNS117", P + "min-scale")}


def test_workload_with_hpa_class_is_translated_against_itself() -> None:
    findings = lint(_deployment({P + "class": HPA, P + "metric": "m", P + "target": "2"}))
    assert errors(findings) == {("KNS201", P + "metric")}


def test_autoscaling_keys_in_a_pod_template_or_on_a_pod_have_no_effect() -> None:
    findings = lint(_deployment({P + "class": KPA}, {P + "min-scale": "2"}))
    assert ids(findings) == {("KNS116", P + "min-scale"), ("KNS124", P + "class")}
    assert by_rule(findings)["KNS116"].path == "spec.template.metadata.annotations"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {P + "window": "30s"}}}
    assert ids(lint(pod)) == {("KNS116", P + "window")}


def test_objects_knative_made_are_not_judged_for_autoscaling() -> None:
    owned = _deployment(
        {P + "min-scale": "1"},
        {P + "min-scale": "1"},
        ownerReferences=[
            {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "name": "r", "uid": "u"}
        ],
    )
    assert lint(owned) == []
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"serving.knative.dev/revision": "r"},
            "annotations": {P + "window": "30s"},
        },
    }
    assert lint(pod) == []


def test_other_kinds_are_ignored() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"annotations": {P + "min-scale": 3}}}
    assert lint(cm) == []


def test_lint_ignore_suppresses_knative_and_keda_rules() -> None:
    svc = service(
        {P + "minscale": "1", P + "window": "1s"},
        metadata={"annotations": {"knscale.dev/lint-ignore": "KNS111, kns102"}},
    )
    assert lint(svc) == []


def test_lint_ignore_cannot_switch_off_policy_errors() -> None:
    svc = service(
        {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://bucket/../etc"},
        metadata={"annotations": {"knscale.dev/lint-ignore": "KNS010 KNS118"}},
    )
    findings = lint(svc)
    rules = {f.rule_id for f in findings}
    assert "KNS118" not in rules  # a warning: suppressed
    assert any(f.rule_id.startswith("KNS0") and f.is_error for f in findings)  # the policy error stays


def test_revision_and_podautoscaler_sites() -> None:
    assert errors(lint(revision({P + "window": "1s"}))) == {("KNS102", P + "window")}
    pa = {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": "r",
            "annotations": {P + "class": HPA, P + "metric": "cpu", P + "min-scale": "x"},
        },
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "r-deployment"}},
    }
    assert errors(lint(pa)) == {("KNS101", P + "min-scale")}
