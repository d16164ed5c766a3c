"""The annotation table: every key Knative and autoscaler-keda read, their alias priority, and
the did-you-mean suggestions derived from it."""

from __future__ import annotations

import pytest

from translator.annotations import model_keys
from translator.annotations import table as A

P = "autoscaling.knative.dev/"

# knative/serving pkg/apis/autoscaling/register.go: each KeyPriority, in order.
KNATIVE_KEY_PRIORITIES = {
    "class": (),
    "initial-scale": ("initialScale",),
    "max-scale": ("maxScale",),
    "metric": (),
    "metric-aggregation-algorithm": ("metricAggregationAlgorithm",),
    "activation-scale": (),
    "min-scale": ("minScale",),
    "panic-threshold-percentage": ("panicThresholdPercentage",),
    "panic-window-percentage": ("panicWindowPercentage",),
    "scale-down-delay": ("scaleDownDelay",),
    "scale-to-zero-pod-retention-period": ("scaleToZeroPodRetentionPeriod",),
    "target": (),
    "target-burst-capacity": ("targetBurstCapacity",),
    "target-utilization-percentage": ("targetUtilizationPercentage",),
    "window": (),
}
# knative-extensions/autoscaler-keda resources/keda.go and keda_hpa.go.
KEDA_KEYS = {
    "prometheus-address",
    "prometheus-query",
    "metric-type",
    "trigger-prometheus-auth-name",
    "trigger-prometheus-auth-kind",
    "trigger-prometheus-auth-modes",
    "trigger-prometheus-name",
    "extra-prometheus-triggers",
    "scaling-modifiers",
    "hpa-scale-up-rules",
    "hpa-scale-down-rules",
    "scaled-object-override",
    "scaled-object-auto-create",
}


def test_every_knative_key_with_its_aliases_in_priority_order() -> None:
    table = {a.short: tuple(k.removeprefix(P) for k in a.aliases) for a in A.KNATIVE_KEYS}
    assert table == KNATIVE_KEY_PRIORITIES


def test_every_autoscaler_keda_key() -> None:
    assert {a.short for a in A.KEDA_KEYS} == KEDA_KEYS
    assert all(a.owner is A.Owner.AUTOSCALER_KEDA and a.classes == A.ONLY_HPA for a in A.KEDA_KEYS)


def test_model_injection_keys_join_the_table() -> None:
    names = {a.name for a in A.MODEL_KEYS}
    assert names == {k.name for k in model_keys.MODEL_KEYS}
    assert A.BY_KEY[model_keys.BARE_INJECT].name == model_keys.INJECT


def test_no_spelling_belongs_to_two_keys_and_every_row_is_documented() -> None:
    spellings = [k for a in A.TABLE for k in a.keys]
    assert len(spellings) == len(set(spellings))
    for a in A.TABLE:
        assert a.summary and a.type and a.owner
        if a.minimum is not None and a.maximum is not None:
            assert a.minimum <= a.maximum


def test_lookup_follows_key_priority() -> None:
    ann = {P + "minScale": "3", P + "min-scale": "1"}
    assert A.MIN_SCALE.lookup(ann) == (P + "min-scale", "1")
    assert A.MIN_SCALE.lookup({P + "minScale": "3"}) == (P + "minScale", "3")
    assert A.WINDOW.lookup({P + "Window": "60s"}) is None


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        (P + "minscale", P + "min-scale"),
        (P + "MinScale", P + "min-scale"),
        (P + "min_scale", P + "min-scale"),
        (P + "maxscale", P + "max-scale"),
        (P + "initialscale", P + "initial-scale"),
        (P + "windw", P + "window"),
        (P + "targt", P + "target"),
        (P + "prometheus_query", P + "prometheus-query"),
        ("autoscaling.knative.io/min-scale", P + "min-scale"),
        ("autoscalling.knative.dev/target", P + "target"),
    ],
)
def test_did_you_mean(written: str, meant: str) -> None:
    assert A.did_you_mean(written) == meant


def test_did_you_mean_gives_up_on_unrelated_keys() -> None:
    assert A.did_you_mean(P + "completely-unrelated") is None


def test_prefix_typos() -> None:
    assert A.looks_like_autoscaling_prefix("autoscaling.knative.io")
    assert A.looks_like_autoscaling_prefix("autoscalling.knative.dev")
    for ok in (
        "autoscaling.knative.dev",
        "serving.knative.dev",
        "autoscaling.internal.knative.dev",
        "example.com",
    ):
        assert not A.looks_like_autoscaling_prefix(ok)
