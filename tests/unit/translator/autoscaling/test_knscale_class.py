"""knscale's autoscaler class (autoscaling.knscale.dev) in the translator: KPA keys judged as for kpa,
hpa-only and autoscaler-keda keys flagged, no "unknown class" finding, a warning on plain workloads."""

from __future__ import annotations

from typing import Any

from helpers.autoscaling import KPA, P, config, errors, ids, lint, service

from translator.annotations import table as A
from translator.config.autoscaler import KNSCALE_CLASS

CLASS = {P + "class": KNSCALE_CLASS}


def _deployment(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1"}]},
            },
        },
    }


def test_the_class_lives_under_knscales_domain_and_is_of_the_kpa_family() -> None:
    assert KNSCALE_CLASS == "autoscaling.knscale.dev"
    assert not KNSCALE_CLASS.endswith(".knative.dev")  # Knative's webhook would refuse it
    assert A.class_family(KNSCALE_CLASS) == A.KPA
    assert A.default_metric(KNSCALE_CLASS) == "concurrency"


def test_a_valid_knscale_class_service_has_no_findings() -> None:
    findings = lint(service({**CLASS, P + "target": "10", P + "min-scale": "1", P + "max-scale": "5"}))
    assert ids(findings) == set()


def test_kpa_checks_apply_as_for_kpa() -> None:
    # metric: concurrency or rps only (Knative checks it for kpa only; knscale for its class too)
    assert errors(lint(service({**CLASS, P + "metric": "cpu"}))) == {("KNS105", P + "metric")}
    assert errors(lint(service({**CLASS, P + "metric": "rps"}))) == set()
    # Knative's PA defaulting writes metric "" for a class it does not know: the default, concurrency
    assert errors(lint(service({**CLASS, P + "metric": ""}))) == set()
    # aggregation algorithm with the class annotation: an error, as for an explicit kpa class
    bad_algo = {**CLASS, P + "metric-aggregation-algorithm": "median"}
    assert errors(lint(service(bad_algo))) == {("KNS110", P + "metric-aggregation-algorithm")}


def test_same_findings_as_kpa_for_the_same_kpa_keys() -> None:
    keys = {
        P + "window": "3s",
        P + "panic-threshold-percentage": "50",
        P + "activation-scale": "1",
        P + "target-burst-capacity": "-2",
    }
    as_kpa = {(f.rule_id, f.key) for f in lint(service({P + "class": KPA, **keys}))}
    as_knscale = {(f.rule_id, f.key) for f in lint(service({**CLASS, **keys}))}
    assert as_knscale == as_kpa and as_kpa


def test_hpa_and_keda_keys_are_flagged_as_without_effect() -> None:
    findings = lint(service({**CLASS, P + "prometheus-query": "up"}))
    assert ("KNS217", P + "prometheus-query") in ids(findings)
    assert "autoscaling.knscale.dev" in next(f for f in findings if f.rule_id == "KNS217").message


def test_cluster_default_class_knscale_judges_the_metric() -> None:
    cfg = config(pod_autoscaler_class=KNSCALE_CLASS)
    assert errors(lint(service({P + "metric": "memory"}), cfg)) == {("KNS105", P + "metric")}


def test_plain_workload_with_the_knscale_class_is_warned_and_nothing_else() -> None:
    findings = lint(_deployment({**CLASS, P + "min-scale": "0"}))
    assert ids(findings) == {("KNS127", P + "class")}
    assert errors(findings) == set()


def test_scaling_policy_is_read_on_knscale_class_revisions_and_kpa_workloads_only() -> None:
    policy = {"knscale.dev/scaling-policy": "kpa"}
    kns129 = ("KNS129", "knscale.dev/scaling-policy")
    # read: a Knative Service of knscale's class (the PA loop) and a kpa-class Deployment
    assert kns129 not in ids(lint(service({**CLASS, **policy})))
    assert kns129 not in ids(lint(_deployment({P + "class": KPA, **policy})))
    # not read: a Knative Service of Knative's classes, a Deployment without a KPA loop behind it
    assert kns129 in ids(lint(service({P + "class": KPA, **policy})))
    assert kns129 in ids(lint(service(policy)))
    assert kns129 in ids(lint(_deployment({P + "class": "hpa.autoscaling.knative.dev", **policy})))
    assert kns129 in ids(lint(_deployment({**CLASS, **policy})))  # KNS127 says why
    # an unknown name is an error wherever it is written
    assert errors(lint(service({**CLASS, "knscale.dev/scaling-policy": "predictive"}))) == {
        ("KNS128", "knscale.dev/scaling-policy")
    }
