"""Effective KPA settings: Knative's resolution (MakeDecider, ResolveMetricTarget, MakeMetric,
GetInitialScale, ScaleBounds) from annotations over config-autoscaler over defaults."""

from __future__ import annotations

import pytest

from translator.autoscaling.kpa import KpaSettings, panic_window_seconds, resolve_kpa_settings
from translator.config.autoscaler import AutoscalerConfig

P = "autoscaling.knative.dev/"


def resolve(ann: dict[str, str], cfg: AutoscalerConfig | None = None, cc: int = 0) -> KpaSettings:
    return resolve_kpa_settings(
        {P + k: v for k, v in ann.items()}, cfg or AutoscalerConfig(), container_concurrency=cc
    )


def test_defaults_equal_knatives_defaults() -> None:
    assert resolve({}) == KpaSettings()


def test_concurrency_target_from_container_concurrency() -> None:
    s = resolve({}, cc=10)
    assert (s.total_value, s.target_value) == (10.0, 7.0)


def test_annotation_target_is_capped_by_container_concurrency() -> None:
    s = resolve({"target": "50"}, cc=10)
    assert s.total_value == 10.0
    assert resolve({"target": "5"}, cc=10).total_value == 5.0


def test_rps_uses_fixed_utilization_not_the_configmap_percentage() -> None:
    s = resolve({"metric": "rps"}, AutoscalerConfig(container_concurrency_target_percentage=50))
    assert (s.metric, s.total_value, s.target_value, s.target_utilization) == ("rps", 200.0, 140.0, 0.7)
    assert (
        resolve({"metric": "rps", "target": "100"}, cc=3).total_value == 100.0
    )  # cap is for concurrency only


def test_utilization_annotation_and_legacy_fraction_in_configmap() -> None:
    assert resolve({"target-utilization-percentage": "50"}).target_value == 50.0
    assert resolve({}, AutoscalerConfig(container_concurrency_target_percentage=0.5)).target_value == 50.0
    assert resolve({}, AutoscalerConfig(container_concurrency_target_percentage=1)).target_value == 100.0


def test_target_value_floor() -> None:
    assert resolve({"target": "0.01", "target-utilization-percentage": "1"}).target_value == 0.01


@pytest.mark.parametrize(
    ("stable", "pct", "panic"),
    [(60, 10, 6), (65, 10, 7), (6, 1, 1), (3600, 100, 3600), (15, 10, 2), (25, 10, 3)],
)
def test_panic_window_rounds_like_go(stable: float, pct: float, panic: float) -> None:
    assert panic_window_seconds(stable, pct) == panic


def test_windows_thresholds_and_delays_from_annotations() -> None:
    s = resolve(
        {
            "window": "2m",
            "panic-window-percentage": "20",
            "panic-threshold-percentage": "150",
            "scale-down-delay": "30s",
            "scale-to-zero-pod-retention-period": "1m30s",
            "target-burst-capacity": "-1",
        }
    )
    assert (s.stable_window, s.panic_window, s.panic_window_percentage) == (120.0, 24.0, 20.0)
    assert s.panic_threshold == 1.5
    assert (s.scale_down_delay, s.scale_to_zero_pod_retention_period, s.target_burst_capacity) == (
        30.0,
        90.0,
        -1.0,
    )


def test_values_from_config_when_annotations_absent() -> None:
    cfg = AutoscalerConfig(
        stable_window="90s",
        panic_window_percentage=5,
        panic_threshold_percentage=300,
        scale_down_delay="15s",
        target_burst_capacity=0,
        max_scale_up_rate=10,
        max_scale_down_rate=4,
        min_scale=1,
        max_scale=20,
        enable_scale_to_zero=False,
        scale_to_zero_grace_period="45s",
        activator_capacity=50,
    )
    s = resolve({}, cfg)
    assert (s.stable_window, s.panic_window, s.panic_threshold) == (90.0, 5.0, 3.0)
    assert (s.scale_down_delay, s.target_burst_capacity, s.max_scale_up_rate, s.max_scale_down_rate) == (
        15.0,
        0.0,
        10.0,
        4.0,
    )
    assert (s.min_scale, s.max_scale, s.enable_scale_to_zero, s.scale_to_zero_grace_period) == (
        1,
        20,
        False,
        45.0,
    )
    assert s.activator_capacity == 50.0


@pytest.mark.parametrize(
    ("ann", "allow_zero", "initial"),
    [
        ({}, False, 1),
        ({"initial-scale": "3"}, False, 3),
        ({"initial-scale": "0"}, False, 1),
        ({"initial-scale": "0"}, True, 0),
    ],
)
def test_initial_scale_gated_by_allow_zero(ann: dict[str, str], allow_zero: bool, initial: int) -> None:
    assert resolve(ann, AutoscalerConfig(allow_zero_initial_scale=allow_zero)).initial_scale == initial


def test_kebab_key_beats_alias_and_broken_values_count_as_absent() -> None:
    s = resolve({"min-scale": "2", "minScale": "9", "max-scale": "lots", "maxScale": "7"})
    assert s.min_scale == 2
    assert s.max_scale == 0  # max-scale is present (so it wins) but broken: absent, like Knative's PA reader
    assert resolve({"maxScale": "7"}).max_scale == 7


@pytest.mark.parametrize(
    ("value", "aggregation"),
    [
        ("weightedExponential", "weighted-exponential"),
        ("weighted-exponential", "weighted-exponential"),
        ("median", "linear"),
    ],
)
def test_aggregation_normalised(value: str, aggregation: str) -> None:
    assert resolve({"metric-aggregation-algorithm": value}).aggregation == aggregation


def test_activation_scale_and_progress_deadline() -> None:
    s = resolve_kpa_settings(
        {P + "activation-scale": "3", "serving.knative.dev/progress-deadline": "20m"}, AutoscalerConfig()
    )
    assert (s.activation_scale, s.progress_deadline) == (3, 1200.0)
    assert resolve({}).progress_deadline == 600.0


def test_non_string_values_are_ignored() -> None:
    assert resolve_kpa_settings({P + "min-scale": 3}, AutoscalerConfig()).min_scale == 0


def test_to_spec_is_camel_case() -> None:
    spec = KpaSettings().to_spec()
    assert spec["targetBurstCapacity"] == 211.0 and spec["scaleToZeroPodRetentionPeriod"] == 0.0
