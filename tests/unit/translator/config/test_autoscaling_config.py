"""config-autoscaler / config-autoscaler-keda: Knative's defaults, parsing and validation
(cases from knative/serving pkg/autoscaler/config/config_test.go, restated)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from knscale.settings import SettingsError
from knscale.settings.files import load_config
from translator.config.autoscaler import (
    AutoscalerConfig,
    ConfigMapError,
    KedaConfig,
    parse_config_autoscaler,
    parse_config_autoscaler_keda,
)
from translator.config.knscale import KnscaleConfig

# The documented `_example` block of Knative's config-autoscaler, value for value.
KNATIVE_EXAMPLE = {
    "container-concurrency-target-percentage": "70",
    "container-concurrency-target-default": "100",
    "requests-per-second-target-default": "200",
    "target-burst-capacity": "211",
    "stable-window": "60s",
    "panic-window-percentage": "10.0",
    "panic-threshold-percentage": "200.0",
    "max-scale-up-rate": "1000.0",
    "max-scale-down-rate": "2.0",
    "enable-scale-to-zero": "true",
    "scale-to-zero-grace-period": "30s",
    "scale-to-zero-pod-retention-period": "0s",
    "pod-autoscaler-class": "kpa.autoscaling.knative.dev",
    "activator-capacity": "100.0",
    "initial-scale": "1",
    "allow-zero-initial-scale": "false",
    "min-scale": "0",
    "max-scale": "0",
    "scale-down-delay": "0s",
    "max-scale-limit": "0",
}


def test_defaults_are_knatives_and_the_documented_example_parses_to_them() -> None:
    parsed, warnings = parse_config_autoscaler(KNATIVE_EXAMPLE)
    assert parsed == AutoscalerConfig() and warnings == []
    assert AutoscalerConfig().target_fraction == 0.7
    assert parse_config_autoscaler({})[0] == AutoscalerConfig()


def test_overridden_values() -> None:
    cfg, _ = parse_config_autoscaler(
        {
            "enable-scale-to-zero": "true",
            "max-scale-down-rate": "3.0",
            "max-scale-up-rate": "1.01",
            "container-concurrency-target-percentage": "0.71",
            "container-concurrency-target-default": "10.5",
            "requests-per-second-target-default": "10.11",
            "target-burst-capacity": "12345",
            "scale-down-delay": "15m",
            "stable-window": "5m",
            "panic-window-percentage": "10",
            "panic-threshold-percentage": "200",
            "pod-autoscaler-class": " some.class ",
            "activator-capacity": "905",
            "scale-to-zero-pod-retention-period": "2m3s",
        }
    )
    assert cfg.target_fraction == 0.71 and cfg.container_concurrency_target_default == 10.5
    assert (cfg.scale_down_delay, cfg.stable_window, cfg.scale_to_zero_pod_retention_period) == (
        900.0,
        300.0,
        123.0,
    )
    assert cfg.pod_autoscaler_class == "some.class"  # strings are trimmed, as Knative does


@pytest.mark.parametrize(
    "data",
    [
        {"container-concurrency-target-percentage": "55"},
        {"target-burst-capacity": "-1"},
        {"enable-scale-to-zero": "TRUE"},
        {"enable-scale-to-zero": "false", "min-scale": "1", "max-scale": "2"},
        {"scale-to-zero-grace-period": "33s"},
        {"allow-zero-initial-scale": "true", "initial-scale": "0"},
        {"max-scale": "10"},
        {"min-scale": "4"},
        {"max-scale": "10", "max-scale-limit": "11"},
        {
            "max-scale-up-rate": "1.001",
            "container-concurrency-target-percentage": "0.5",
            "activator-capacity": "1",
        },
    ],
)
def test_valid(data: dict[str, str]) -> None:
    parse_config_autoscaler(data)


@pytest.mark.parametrize(
    "data",
    [
        {"max-scale-up-rate": "not a float"},
        {"scale-down-delay": "-1m23s"},
        {"scale-to-zero-pod-retention-period": "-4m11s"},
        {"stable-window": "not a duration"},
        {"target-burst-capacity": "-11"},
        {"container-concurrency-target-percentage": "-42"},
        {"container-concurrency-target-percentage": "142.4"},
        {"requests-per-second-target-default": "-5.25"},
        {"max-scale-up-rate": "1"},
        {"max-scale-down-rate": "-55"},
        {"max-scale-down-rate": "1"},
        {"stable-window": "1h1s"},
        {"stable-window": "1s"},
        {"stable-window": "61984ms"},
        {"scale-down-delay": "61984ms"},
        {"activator-capacity": "0.95"},
        {"panic-window-percentage": "0.1"},
        {"panic-window-percentage": "110"},
        {"container-concurrency-target-percentage": "1", "container-concurrency-target-default": "0.001"},
        {"scale-to-zero-grace-period": "0s"},
        {"allow-zero-initial-scale": "false", "initial-scale": "0"},
        {"initial-scale": "-1"},
        {"initial-scale": "invalid"},
        {"allow-zero-initial-scale": "invalid"},
        {"max-scale": "-1"},
        {"max-scale": "10", "max-scale-limit": "9"},
        {"max-scale-limit": "-9"},
        {"max-scale": "0", "max-scale-limit": "11"},
        {"min-scale": "4", "max-scale": "3"},
        {"min-scale": 4},
    ],
)
def test_invalid(data: dict[str, object]) -> None:
    with pytest.raises(ConfigMapError):
        parse_config_autoscaler(data)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigMapError) as exc:
        parse_config_autoscaler(
            {"max-scale-up-rate": "1", "max-scale-down-rate": "1", "activator-capacity": "0"}
        )
    assert len(exc.value.problems) == 3


def test_unknown_keys_warn_with_did_you_mean_and_examples_are_ignored() -> None:
    _, warnings = parse_config_autoscaler({"max-scale-limt": "5", "_example": "…", "tick-interval": "2s"})
    assert len(warnings) == 2
    assert "did you mean 'max-scale-limit'" in warnings[0]


def test_configmap_keys_layer_over_the_settings_file() -> None:
    base = AutoscalerConfig(max_scale_limit=50, max_scale=10)
    cfg, _ = parse_config_autoscaler({"allow-zero-initial-scale": "true"}, base)
    assert (cfg.max_scale_limit, cfg.max_scale, cfg.allow_zero_initial_scale) == (50, 10, True)


def test_settings_file_accepts_durations_and_rejects_invalid_knative_config(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "autoscaler:\n  stable_window: 2m\n  max_scale_limit: 100\n  max_scale: 10\n"
        "keda:\n  scaledobject_autocreate: false\n"
    )
    cfg = load_config(good)
    assert (
        cfg.autoscaler.stable_window,
        cfg.autoscaler.max_scale_limit,
        cfg.keda.scaledobject_autocreate,
    ) == (120.0, 100, False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("autoscaler:\n  max_scale_limit: 5\n  stable_window: 3s\n")
    with pytest.raises(SettingsError) as exc:
        load_config(bad)
    text = str(exc.value)
    assert "stable-window = 3s" in text and "max-scale = 0" in text


def test_knscale_config_defaults_include_cluster_facts() -> None:
    cfg = KnscaleConfig()
    assert cfg.autoscaler == AutoscalerConfig() and cfg.keda == KedaConfig()
    assert cfg.keda.prometheus_address == "http://prometheus-operated.default.svc:9090"


def test_keda_config() -> None:
    cfg, warnings = parse_config_autoscaler_keda(
        {
            "autoscaler.keda.prometheus-address": "http://thanos:9090",
            "autoscaler.keda.scaledobject-autocreate": "false",
        }
    )
    assert (
        cfg == KedaConfig(prometheus_address="http://thanos:9090", scaledobject_autocreate=False)
        and not warnings
    )
    for bad in (
        {"autoscaler.keda.prometheus-address": "prometheus:9090"},
        {"autoscaler.keda.scaledobject-autocreate": "yes"},
    ):
        with pytest.raises(ConfigMapError):
            parse_config_autoscaler_keda(bad)
    with pytest.raises(ValidationError):
        KedaConfig(prometheus_address="nope")
