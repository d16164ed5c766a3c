"""The cluster facts autoscaling rules depend on: Knative's `config-autoscaler` and autoscaler-keda's
`config-autoscaler-keda` ConfigMaps.

Two ways in, one model each:
- knscale's own settings file (`autoscaler:` and `keda:` sections of KnscaleConfig), snake_case
  keys, durations as Go duration strings (`60s`) or seconds;
- a cluster's ConfigMap (`knscale lint --config-autoscaler FILE`), parsed here with Knative's own
  rules (`parse_config_autoscaler`): Go syntax for every value, unknown keys ignored (with a
  did-you-mean warning), ConfigMap keys layered over the settings file's values.

Defaults are Knative's (`pkg/autoscaler/config/config.go`) and autoscaler-keda's. Validation
mirrors Knative's `validate`, except that every problem is reported at once instead of the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from translator.core.values import (
    SECOND,
    ParseError,
    RangeError,
    parse_bool,
    parse_duration,
    parse_float,
    parse_http_url,
    parse_int,
)

KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"
# knscale's own autoscaler class for Knative revisions (docs/reconciler.md): under knscale's domain,
# because Knative's webhook refuses every other class ending in `.knative.dev`.
KNSCALE_CLASS = "autoscaling.knscale.dev"
TARGET_MIN = 0.01  # Knative's autoscaling.TargetMin
WINDOW_MIN_S = 6.0
WINDOW_MAX_S = 3600.0
DEFAULT_PROMETHEUS_ADDRESS = "http://prometheus-operated.default.svc:9090"
# config-deployment `progress-deadline`: how long a revision may take to become ready.
DEFAULT_PROGRESS_DEADLINE_S = 600.0


def _seconds(value: Any) -> Any:
    """Durations in the settings file: a Go duration (`90s`, `1m30s`) or a number of seconds."""
    if isinstance(value, str):
        try:
            return parse_duration(value.strip()) / SECOND
        except (ParseError, RangeError) as exc:
            raise ValueError(str(exc)) from None
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AutoscalerConfig(_Strict):
    """Knative `config-autoscaler`, with Knative's defaults. Durations are seconds."""

    pod_autoscaler_class: str = KPA_CLASS
    enable_scale_to_zero: bool = True
    allow_zero_initial_scale: bool = False
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    # As in the ConfigMap: a percentage, or (legacy) a fraction when ≤ 1 — see `target_fraction`.
    container_concurrency_target_percentage: float = 70.0
    container_concurrency_target_default: float = 100.0
    requests_per_second_target_default: float = 200.0
    target_burst_capacity: float = 211.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    activator_capacity: float = 100.0
    initial_scale: int = 1
    min_scale: int = 0
    max_scale: int = 0
    max_scale_limit: int = 0
    stable_window: Seconds = 60.0
    scale_down_delay: Seconds = 0.0
    scale_to_zero_grace_period: Seconds = 30.0
    scale_to_zero_pod_retention_period: Seconds = 0.0

    @property
    def target_fraction(self) -> float:
        """container-concurrency-target-percentage as Knative uses it: values > 1 are percentages."""
        pct = self.container_concurrency_target_percentage
        return pct / 100.0 if pct > 1.0 else pct

    @model_validator(mode="after")
    def _knative_rules(self) -> AutoscalerConfig:
        problems = autoscaler_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def autoscaler_problems(c: AutoscalerConfig) -> list[str]:
    """Knative's config-autoscaler validation, every failing check (Knative stops at the first)."""
    out: list[str] = []
    if c.scale_to_zero_grace_period <= 0:
        out.append(f"scale-to-zero-grace-period must be positive, was {c.scale_to_zero_grace_period:g}s")
    if c.scale_down_delay < 0:
        out.append(f"scale-down-delay cannot be negative, was {c.scale_down_delay:g}s")
    elif not float(c.scale_down_delay).is_integer():
        out.append(
            f"scale-down-delay = {c.scale_down_delay:g}s, must be specified with at most second precision"
        )
    if c.scale_to_zero_pod_retention_period < 0:
        out.append(
            "scale-to-zero-pod-retention-period cannot be negative, "
            f"was {c.scale_to_zero_pod_retention_period:g}s"
        )
    if c.target_burst_capacity < 0 and c.target_burst_capacity != -1:
        out.append(
            "target-burst-capacity must be either non-negative or -1 (for unlimited), "
            f"was {c.target_burst_capacity:g}"
        )
    fraction = c.target_fraction
    if not 0 < fraction <= 1:
        out.append(
            f"container-concurrency-target-percentage = {c.container_concurrency_target_percentage:g} "
            "is outside of valid range of (0, 100]"
        )
    elif fraction * c.container_concurrency_target_default < TARGET_MIN:
        out.append(
            "container-concurrency-target-percentage and container-concurrency-target-default yield "
            f"target concurrency of {fraction * c.container_concurrency_target_default:g}, "
            f"can't be less than {TARGET_MIN}"
        )
    if c.requests_per_second_target_default < TARGET_MIN:
        out.append(
            f"requests-per-second-target-default must be at least {TARGET_MIN}, "
            f"was {c.requests_per_second_target_default:g}"
        )
    if c.activator_capacity < 1:
        out.append(f"activator-capacity = {c.activator_capacity:g}, must be at least 1")
    if c.max_scale_up_rate <= 1.0:
        out.append(f"max-scale-up-rate = {c.max_scale_up_rate:g}, must be greater than 1.0")
    if c.max_scale_down_rate <= 1.0:
        out.append(f"max-scale-down-rate = {c.max_scale_down_rate:g}, must be greater than 1.0")
    if not WINDOW_MIN_S <= c.stable_window <= WINDOW_MAX_S:
        out.append(f"stable-window = {c.stable_window:g}s, must be in [6s; 1h] range")
    elif not float(c.stable_window).is_integer():
        out.append(f"stable-window = {c.stable_window:g}s, must be specified with at most second precision")
    if not 1.0 <= c.panic_window_percentage <= 100.0:
        out.append(f"panic-window-percentage = {c.panic_window_percentage:g}, must be in [1, 100] interval")
    if c.initial_scale < 0 or (c.initial_scale == 0 and not c.allow_zero_initial_scale):
        out.append(
            f"initial-scale = {c.initial_scale}, must be at least 0 "
            "(or at least 1 when allow-zero-initial-scale is false)"
        )
    if c.min_scale < 0:
        out.append(f"min-scale = {c.min_scale}, must be at least 0")
    floor = 1 if c.max_scale_limit > 0 else 0
    if c.max_scale < floor or (c.max_scale_limit > 0 and c.max_scale > c.max_scale_limit):
        out.append(
            f"max-scale = {c.max_scale}, must be in [{floor}, max-scale-limit({c.max_scale_limit})] range"
        )
    if c.max_scale_limit < 0:
        out.append(f"max-scale-limit = {c.max_scale_limit}, must be at least 0")
    if c.min_scale > c.max_scale > 0:
        out.append(f"min-scale ({c.min_scale}) must be less than max-scale ({c.max_scale})")
    return out


class KedaConfig(_Strict):
    """autoscaler-keda's `config-autoscaler-keda`: default Prometheus and ScaledObject auto-creation."""

    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS
    scaledobject_autocreate: bool = True

    @model_validator(mode="after")
    def _address_is_a_url(self) -> KedaConfig:
        try:
            parse_http_url(self.prometheus_address)
        except ParseError as exc:
            raise ValueError(f"prometheus_address: {exc}") from None
        return self


# ---- ConfigMap parsing -----------------------------------------------------------------------

_INT32, _FLOAT, _BOOL, _DURATION, _STRING = "int32", "float", "bool", "duration", "string"
CONFIG_AUTOSCALER_KEYS: dict[str, str] = {
    "pod-autoscaler-class": _STRING,
    "enable-scale-to-zero": _BOOL,
    "allow-zero-initial-scale": _BOOL,
    "max-scale-up-rate": _FLOAT,
    "max-scale-down-rate": _FLOAT,
    "container-concurrency-target-percentage": _FLOAT,
    "container-concurrency-target-default": _FLOAT,
    "requests-per-second-target-default": _FLOAT,
    "target-burst-capacity": _FLOAT,
    "panic-window-percentage": _FLOAT,
    "activator-capacity": _FLOAT,
    "panic-threshold-percentage": _FLOAT,
    "initial-scale": _INT32,
    "min-scale": _INT32,
    "max-scale": _INT32,
    "max-scale-limit": _INT32,
    "stable-window": _DURATION,
    "scale-down-delay": _DURATION,
    "scale-to-zero-grace-period": _DURATION,
    "scale-to-zero-pod-retention-period": _DURATION,
}
CONFIG_AUTOSCALER_KEDA_KEYS: dict[str, tuple[str, str]] = {
    "autoscaler.keda.prometheus-address": ("prometheus_address", _STRING),
    "autoscaler.keda.scaledobject-autocreate": ("scaledobject_autocreate", _BOOL),
}


class ConfigMapError(ValueError):
    """The ConfigMap would be rejected by the component that reads it; every problem listed."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.name = name
        self.problems = problems
        super().__init__(f"{name}: " + "; ".join(problems))


def _parse_value(kind: str, text: str) -> Any:
    if kind == _STRING:
        return text.strip()
    if kind == _BOOL:
        return parse_bool(text)
    if kind == _FLOAT:
        return parse_float(text)
    if kind == _INT32:
        return parse_int(text, 32)
    return parse_duration(text) / SECOND


def _unknown_key_warnings(name: str, data: Mapping[str, Any], known: list[str]) -> list[str]:
    out = []
    for key in data:
        if key in known or key.startswith("_"):
            continue
        hint = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        suffix = f"; did you mean {hint[0]!r}?" if hint else ""
        out.append(f"{name}: key {key!r} is not read by the component and is ignored{suffix}")
    return out


def _parse_map(data: Mapping[str, Any], keys: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, kind in keys.items():
        if key not in data:
            continue
        raw = data[key]
        if not isinstance(raw, str):
            problems.append(f"{key}: ConfigMap values must be strings, got {raw!r} (quote it)")
            continue
        try:
            values[key] = _parse_value(kind, raw)
        except (ParseError, RangeError) as exc:
            problems.append(f"failed to parse {key!r}: {exc}")
    return values, problems


def parse_config_autoscaler(
    data: Mapping[str, Any], base: AutoscalerConfig | None = None
) -> tuple[AutoscalerConfig, list[str]]:
    """A `config-autoscaler` ConfigMap's `data` → (config, warnings). Raises ConfigMapError.

    Keys present override `base` (knscale's settings, which default to Knative's defaults).
    """
    name = "config-autoscaler"
    values, problems = _parse_map(data, CONFIG_AUTOSCALER_KEYS)
    if problems:
        raise ConfigMapError(name, problems)
    merged = (base or AutoscalerConfig()).model_dump()
    merged.update({k.replace("-", "_"): v for k, v in values.items()})
    problems = autoscaler_problems(AutoscalerConfig.model_construct(**merged))
    if problems:
        raise ConfigMapError(name, problems)
    warnings = _unknown_key_warnings(name, data, list(CONFIG_AUTOSCALER_KEYS))
    return AutoscalerConfig.model_validate(merged), warnings


def parse_config_autoscaler_keda(
    data: Mapping[str, Any], base: KedaConfig | None = None
) -> tuple[KedaConfig, list[str]]:
    """A `config-autoscaler-keda` ConfigMap's `data` → (config, warnings). Raises ConfigMapError."""
    name = "config-autoscaler-keda"
    kinds = {k: kind for k, (_, kind) in CONFIG_AUTOSCALER_KEDA_KEYS.items()}
    values, problems = _parse_map(data, kinds)
    merged = (base or KedaConfig()).model_dump()
    merged.update({CONFIG_AUTOSCALER_KEDA_KEYS[k][0]: v for k, v in values.items()})
    try:
        parse_http_url(str(merged["prometheus_address"]))
    except ParseError as exc:
        problems.append(f"autoscaler.keda.prometheus-address: {exc}")
    if problems:
        raise ConfigMapError(name, problems)
    warnings = _unknown_key_warnings(name, data, list(CONFIG_AUTOSCALER_KEDA_KEYS))
    return KedaConfig.model_validate(merged), warnings


__all__ = [
    "DEFAULT_PROGRESS_DEADLINE_S",
    "HPA_CLASS",
    "KNSCALE_CLASS",
    "KPA_CLASS",
    "TARGET_MIN",
    "AutoscalerConfig",
    "ConfigMapError",
    "KedaConfig",
    "autoscaler_problems",
    "parse_config_autoscaler",
    "parse_config_autoscaler_keda",
]
