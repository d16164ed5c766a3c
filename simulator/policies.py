"""Policy names → the objects a run drives.

``kpa`` is the reconciler's own ``KpaPolicy`` (``reconciler.kpa.policy.DEFAULT_POLICY``, the very
object ``reconciler.scaling`` runs) with Knative's default settings, resolved by the translator
from no annotations. Names:

* ``kpa`` · ``kpa-r<retention>-w<window>`` (e.g. ``kpa-r5m-w60s``) · ``kpa-sweep`` (§5.3: retention
  0, 1, 5, 10, 20, 60 min at the 60 s window, and windows 30 s and 120 s at retention 0)
* ``hpa`` · ``keda`` · ``keepalive-<T>`` (``keepalive-10m``, ``keepalive-90s``) · ``hybrid``
* ``knscale`` (the cold-start-aware policy; ``knscale-k<κ>`` sets its miss cost, e.g. ``knscale-k120``)
* ``oracle`` (ORACLE-0CS, computed, not simulated)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reconciler.kpa.policy import DEFAULT_POLICY
from reconciler.kpa.predictive import PredictiveParams
from reconciler.kpa.registry import knscale_policy
from simulator.baselines import HpaPolicy, HybridHistogram, KedaPolicy, KeepAlive
from simulator.model import EventPolicyBase, ModelConfig, TickDriver
from translator.autoscaling.kpa import KpaSettings, resolve_kpa_settings
from translator.config.autoscaler import AutoscalerConfig

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
KPA_SWEEP = (
    *(f"kpa-r{r}m-w60s" for r in (0, 1, 5, 10, 20, 60)),
    "kpa-r0m-w30s",
    "kpa-r0m-w120s",
)
DEFAULT_POLICIES = ("kpa", "hpa", "keda", "keepalive-10m", "keepalive-20m", "hybrid", "knscale", "oracle")


class PolicyError(ValueError):
    pass


def seconds(text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise PolicyError(f"bad duration {text!r} (use e.g. 90s, 10m, 1h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def kpa_settings(cc: int, annotations: dict[str, str] | None = None) -> KpaSettings:
    """Knative's defaults (no annotations, default config-autoscaler) for container concurrency cc."""
    return resolve_kpa_settings(annotations or {}, AutoscalerConfig(), container_concurrency=cc)


def expand(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for each in KPA_SWEEP if name == "kpa-sweep" else (name,):
            if each not in out:
                out.append(each)
    return out


@dataclass(frozen=True, slots=True)
class Built:
    name: str
    tick: TickDriver | None  # shared by every app (policies keep per-app memory in their state)
    event: EventPolicyBase | None  # a template: each app gets ``fresh()``
    oracle: bool = False


def build(name: str, cfg: ModelConfig, params: dict[str, Any] | None = None) -> Built:
    cc = cfg.container_concurrency
    if name == "oracle":
        return Built(name, None, None, oracle=True)
    if name == "kpa":
        return Built(name, TickDriver(DEFAULT_POLICY, kpa_settings(cc)), None)
    m = re.match(r"^kpa-r([^-]+)-w(.+)$", name)
    if m:
        ann = {
            "autoscaling.knative.dev/scale-to-zero-pod-retention-period": f"{seconds(m.group(1)):g}s",
            "autoscaling.knative.dev/window": f"{seconds(m.group(2)):g}s",
        }
        return Built(name, TickDriver(DEFAULT_POLICY, kpa_settings(cc, ann)), None)
    if name == "hpa":
        return Built(name, TickDriver(HpaPolicy(), kpa_settings(cc), interval=15.0), None)
    if name == "keda":
        return Built(name, TickDriver(KedaPolicy(), kpa_settings(cc), interval=15.0), None)
    if name.startswith("keepalive-"):
        return Built(name, None, KeepAlive(seconds(name.removeprefix("keepalive-")), name))
    if name == "hybrid":
        return Built(name, None, HybridHistogram(cfg.cold_start))
    if name == "knscale" or name.startswith("knscale-k"):
        values: dict[str, Any] = {"cold_start": cfg.cold_start, **(params or {})}
        if name.startswith("knscale-k"):
            values["miss_cost"] = seconds(name.removeprefix("knscale-k"))
        return Built(
            name, TickDriver(knscale_policy(PredictiveParams(**values), name), kpa_settings(cc)), None
        )
    raise PolicyError(f"unknown policy {name!r}")
