"""The one declarative table of every annotation key knscale understands.

Each row says what a key is called (and its legacy aliases, in the priority Knative's
`kmap.KeyPriority` gives them: the kebab-case name first, then the camelCase alias), which
component owns its meaning, the type and range of its value, its default and where that
default comes from, and which autoscaler class reads it. The validation in
`translator/autoscaling/checks.py` and the renderers read keys through this table, and the
did-you-mean suggestions for misspelt keys are derived from it (docs/rules.md lists the keys).

Sources: knative/serving `pkg/apis/autoscaling/register.go` and `annotation_validation.go`;
knative-extensions/autoscaler-keda `pkg/reconciler/autoscaling/hpa/resources/keda.go` and
`keda_hpa.go`; the model-injection keys are owned by `translator/annotations/model_keys.py` and joined here.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from translator.annotations import model_keys
from translator.config.autoscaler import HPA_CLASS, KNSCALE_CLASS, KPA_CLASS
from translator.core import values

AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
SERVING_PREFIX = "serving.knative.dev/"
KNSCALE_PREFIX = model_keys.PREFIX

T = TypeVar("T")


class ValueType(StrEnum):
    STRING = "string"
    INT32 = "int32"
    FLOAT = "float"
    DURATION = "duration"
    BOOL = "bool"
    ENUM = "enum"
    URL = "url"
    TEMPLATE = "promql-template"
    JSON = "json"
    RULE_IDS = "rule-ids"


class Owner(StrEnum):
    """Whose semantics a key has (and so whose rules judge it)."""

    KNATIVE = "knative"  # knative/serving autoscaling keys
    KNATIVE_SERVING = "knative-serving"  # serving.knative.dev keys that matter here
    AUTOSCALER_KEDA = "autoscaler-keda"  # the extension's keys, same prefix as Knative's
    MODEL = "model-injection"  # translator/annotations/model_keys.py
    KNSCALE = "knscale"  # knscale's own keys


class Precision(StrEnum):
    """Durations Knative requires in whole seconds, and how it tests that."""

    ANY = "any"
    TRUNCATE = "whole-seconds"  # window: d.Truncate(1s) == d
    ROUND = "whole-seconds-rounded"  # scale-down-delay, progress-deadline: d.Round(1s) == d


KPA = "kpa"
HPA = "hpa"
BOTH = frozenset({KPA, HPA})
ONLY_KPA = frozenset({KPA})
ONLY_HPA = frozenset({HPA})
NO_CLASS: frozenset[str] = frozenset()  # not tied to an autoscaler class

# knscale's class reads every KPA key with Knative's meaning: it is of the KPA family.
CLASS_NAMES = {KPA_CLASS: KPA, HPA_CLASS: HPA, KNSCALE_CLASS: KPA}


@dataclass(frozen=True, slots=True)
class Annotation:
    """One key. `minimum`/`maximum` are inclusive; durations are in seconds."""

    name: str
    type: ValueType
    owner: Owner
    classes: frozenset[str]
    summary: str
    aliases: tuple[str, ...] = ()
    default: str | None = None  # human-readable: a value, or what it falls back to
    config_key: str | None = None  # config-autoscaler key that supplies the default
    minimum: float | None = None
    maximum: float | None = None
    also_allowed: tuple[float, ...] = ()  # outside the range but valid (target-burst-capacity: -1)
    choices: tuple[str, ...] = ()
    precision: Precision = Precision.ANY
    json_shape: str | None = None  # for JSON values: which structure it must parse into
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every spelling, in Knative's priority order (the first present wins)."""
        return (self.name, *self.aliases)

    @property
    def short(self) -> str:
        return self.name.removeprefix(AUTOSCALING_PREFIX)

    def lookup(self, annotations: Mapping[str, Any]) -> tuple[str, Any] | None:
        """(key as written, value) of the first spelling present, or None — `kmap.KeyPriority.Get`."""
        for key in self.keys:
            if key in annotations:
                return key, annotations[key]
        return None


def _k(name: str) -> str:
    return AUTOSCALING_PREFIX + name


def _alias(camel: str) -> tuple[str, ...]:
    return (AUTOSCALING_PREFIX + camel,)


D = ValueType.DURATION

KNATIVE_KEYS: tuple[Annotation, ...] = (
    Annotation(
        _k("class"),
        ValueType.STRING,
        Owner.KNATIVE,
        BOTH,
        "which autoscaler scales the revision: kpa.autoscaling.knative.dev, hpa.autoscaling.knative.dev "
        "or knscale's autoscaling.knscale.dev",
        default=KPA_CLASS,
        config_key="pod-autoscaler-class",
    ),
    Annotation(
        _k("metric"),
        ValueType.STRING,
        Owner.KNATIVE,
        BOTH,
        "what to scale on: kpa → concurrency | rps; hpa → cpu | memory | a Prometheus metric name",
        default="concurrency (kpa), cpu (hpa)",
        extra={"kpa": ("concurrency", "rps")},
    ),
    Annotation(
        _k("target"),
        ValueType.FLOAT,
        Owner.KNATIVE,
        BOTH,
        "per-pod target: concurrency/rps (kpa), CPU % or memory MiB or metric value (hpa)",
        default="container-concurrency-target-default / requests-per-second-target-default (kpa); 70 for cpu",
        minimum=0.01,
    ),
    Annotation(
        _k("target-utilization-percentage"),
        ValueType.FLOAT,
        Owner.KNATIVE,
        ONLY_KPA,
        "share of the target to aim for before scaling up",
        aliases=_alias("targetUtilizationPercentage"),
        default="70",
        config_key="container-concurrency-target-percentage",
        minimum=1,
        maximum=100,
    ),
    Annotation(
        _k("target-burst-capacity"),
        ValueType.FLOAT,
        Owner.KNATIVE,
        ONLY_KPA,
        "spare capacity to keep before the activator leaves the request path; -1 = always in path",
        aliases=_alias("targetBurstCapacity"),
        default="211",
        config_key="target-burst-capacity",
        minimum=0,
        also_allowed=(-1,),
    ),
    Annotation(
        _k("window"),
        D,
        Owner.KNATIVE,
        BOTH,
        "stable window (kpa); HPA stabilization window for both directions (hpa)",
        default="60s",
        config_key="stable-window",
        minimum=6,
        maximum=3600,
        precision=Precision.TRUNCATE,
    ),
    Annotation(
        _k("panic-window-percentage"),
        ValueType.FLOAT,
        Owner.KNATIVE,
        ONLY_KPA,
        "panic window as a percentage of the stable window",
        aliases=_alias("panicWindowPercentage"),
        default="10",
        config_key="panic-window-percentage",
        minimum=1,
        maximum=100,
    ),
    Annotation(
        _k("panic-threshold-percentage"),
        ValueType.FLOAT,
        Owner.KNATIVE,
        ONLY_KPA,
        "load, as a percentage of current capacity, that enters panic mode",
        aliases=_alias("panicThresholdPercentage"),
        default="200",
        config_key="panic-threshold-percentage",
        minimum=110,
        maximum=1000,
    ),
    Annotation(
        _k("min-scale"),
        ValueType.INT32,
        Owner.KNATIVE,
        BOTH,
        "lower bound on replicas while the revision is routed",
        aliases=_alias("minScale"),
        default="0",
        config_key="min-scale",
        minimum=0,
        maximum=2**31 - 1,
    ),
    Annotation(
        _k("max-scale"),
        ValueType.INT32,
        Owner.KNATIVE,
        BOTH,
        "upper bound on replicas; 0 = unbounded (not allowed when the cluster sets max-scale-limit)",
        aliases=_alias("maxScale"),
        default="0",
        config_key="max-scale",
        minimum=0,
        maximum=2**31 - 1,
    ),
    Annotation(
        _k("initial-scale"),
        ValueType.INT32,
        Owner.KNATIVE,
        BOTH,
        "replicas when the revision is created; 0 only if the cluster allows zero initial scale",
        aliases=_alias("initialScale"),
        default="1",
        config_key="initial-scale",
        minimum=0,
        maximum=2**31 - 1,
    ),
    Annotation(
        _k("activation-scale"),
        ValueType.INT32,
        Owner.KNATIVE,
        ONLY_KPA,
        "minimum non-zero scale: scaling up from zero goes straight to at least this many pods",
        default="off",
        minimum=2,
        maximum=2**31 - 1,
    ),
    Annotation(
        _k("scale-down-delay"),
        D,
        Owner.KNATIVE,
        ONLY_KPA,
        "how long a lower desired scale must hold before scaling down",
        aliases=_alias("scaleDownDelay"),
        default="0s",
        config_key="scale-down-delay",
        minimum=0,
        maximum=3600,
        precision=Precision.ROUND,
    ),
    Annotation(
        _k("scale-to-zero-pod-retention-period"),
        D,
        Owner.KNATIVE,
        ONLY_KPA,
        "minimum time the last pod stays after the decision to scale to zero",
        aliases=_alias("scaleToZeroPodRetentionPeriod"),
        default="0s",
        config_key="scale-to-zero-pod-retention-period",
        minimum=0,
        maximum=3600,
    ),
    Annotation(
        _k("metric-aggregation-algorithm"),
        ValueType.ENUM,
        Owner.KNATIVE,
        ONLY_KPA,
        "how window samples are averaged (alpha)",
        aliases=_alias("metricAggregationAlgorithm"),
        default="linear",
        choices=("linear", "weighted-exponential", "weightedExponential"),
    ),
)

KEDA_KEYS: tuple[Annotation, ...] = (
    Annotation(
        _k("prometheus-address"),
        ValueType.URL,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "Prometheus server for the default trigger",
        default="config-autoscaler-keda autoscaler.keda.prometheus-address",
    ),
    Annotation(
        _k("prometheus-query"),
        ValueType.TEMPLATE,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "PromQL for a custom metric; {{.revisionName}} is replaced by the revision name",
    ),
    Annotation(
        _k("metric-type"),
        ValueType.ENUM,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "HPA target type: cpu → Utilization|AverageValue, memory → AverageValue|Utilization, "
        "Prometheus → AverageValue|Value",
        default="Utilization (cpu), AverageValue (memory, Prometheus)",
        choices=("AverageValue", "Utilization", "Value"),
    ),
    Annotation(
        _k("trigger-prometheus-name"),
        ValueType.STRING,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "name of the default Prometheus trigger (for scaling-modifiers formulas)",
        default="default-trigger-custom",
    ),
    Annotation(
        _k("trigger-prometheus-auth-name"),
        ValueType.STRING,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "TriggerAuthentication used by the default Prometheus trigger",
    ),
    Annotation(
        _k("trigger-prometheus-auth-kind"),
        ValueType.ENUM,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "kind of that authentication object",
        default="TriggerAuthentication",
        choices=("TriggerAuthentication", "ClusterTriggerAuthentication"),
    ),
    Annotation(
        _k("trigger-prometheus-auth-modes"),
        ValueType.STRING,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "authModes of the Prometheus trigger (bearer, basic, tls, custom…)",
    ),
    Annotation(
        _k("extra-prometheus-triggers"),
        ValueType.JSON,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "JSON array of KEDA triggers appended to the default one",
        json_shape="array of ScaleTriggers",
    ),
    Annotation(
        _k("scaling-modifiers"),
        ValueType.JSON,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "JSON ScalingModifiers {formula, target, activationTarget, metricType}",
        json_shape="ScalingModifiers object",
    ),
    Annotation(
        _k("hpa-scale-up-rules"),
        ValueType.JSON,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "JSON HPAScalingRules replacing the scale-up behaviour",
        json_shape="HPAScalingRules object",
    ),
    Annotation(
        _k("hpa-scale-down-rules"),
        ValueType.JSON,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "JSON HPAScalingRules replacing the scale-down behaviour",
        json_shape="HPAScalingRules object",
    ),
    Annotation(
        _k("scaled-object-override"),
        ValueType.JSON,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "JSON ScaledObject used as is (identity, target, HPA name and max replicas are still forced)",
        json_shape="ScaledObject object",
    ),
    Annotation(
        _k("scaled-object-auto-create"),
        ValueType.BOOL,
        Owner.AUTOSCALER_KEDA,
        ONLY_HPA,
        "false = bring your own ScaledObject",
        default="config-autoscaler-keda autoscaler.keda.scaledobject-autocreate (true)",
    ),
)

PROGRESS_DEADLINE = SERVING_PREFIX + "progress-deadline"
LINT_IGNORE = KNSCALE_PREFIX + "lint-ignore"
# The Prometheus query the reconciler's KPA loop reads for a plain Deployment/StatefulSet whose
# requests are counted at the ingress (what makes scale to zero possible without an activator).
KNSCALE_PROMETHEUS_QUERY = KNSCALE_PREFIX + "prometheus-query"
# Which scaling policy knscale's KPA loop runs for a kpa-class workload (reconciler/kpa/registry.py
# maps each name to the object the simulator runs under the same name).
KNSCALE_SCALING_POLICY = KNSCALE_PREFIX + "scaling-policy"
SCALING_POLICIES = ("kpa", "knscale")
DEFAULT_SCALING_POLICY = "kpa"
# Written by the reconciler, not by users: the learned state of the knscale policy (bounded JSON),
# so a restarted or new leader continues where the old one was (docs/reconciler.md).
KNSCALE_SCALING_STATE = KNSCALE_PREFIX + "scaling-state"

OTHER_KEYS: tuple[Annotation, ...] = (
    Annotation(
        PROGRESS_DEADLINE,
        D,
        Owner.KNATIVE_SERVING,
        NO_CLASS,
        "how long the revision may take to become ready (a model download counts against it)",
        default="config-deployment progress-deadline (600s)",
        minimum=0,
        precision=Precision.ROUND,
    ),
    Annotation(
        LINT_IGNORE,
        ValueType.RULE_IDS,
        Owner.KNSCALE,
        NO_CLASS,
        "rule ids knscale lint and /validate skip for this object (policy errors KNS0xx excepted)",
    ),
    Annotation(
        KNSCALE_PROMETHEUS_QUERY,
        ValueType.STRING,
        Owner.KNSCALE,
        NO_CLASS,
        "PromQL giving a kpa-class workload's revision-wide concurrency or RPS, read by knscale reconcile",
    ),
    Annotation(
        KNSCALE_SCALING_POLICY,
        ValueType.ENUM,
        Owner.KNSCALE,
        ONLY_KPA,
        "policy knscale reconcile scales a kpa-class workload with: kpa (Knative's KPA) or knscale "
        "(KPA under load, a learned keep-alive/pre-warm plan for idle gaps)",
        default=DEFAULT_SCALING_POLICY,
        choices=SCALING_POLICIES,
    ),
)

MODEL_KEYS: tuple[Annotation, ...] = tuple(
    Annotation(
        k.name,
        ValueType.STRING,
        Owner.MODEL,
        NO_CLASS,
        k.summary,
        aliases=k.legacy,
        default=k.default,
    )
    for k in model_keys.MODEL_KEYS
)

TABLE: tuple[Annotation, ...] = KNATIVE_KEYS + KEDA_KEYS + OTHER_KEYS + MODEL_KEYS

# Every spelling of every key → its row.
BY_KEY: dict[str, Annotation] = {key: a for a in TABLE for key in a.keys}
BY_NAME: dict[str, Annotation] = {a.name: a for a in TABLE}
AUTOSCALING_KEYS: tuple[Annotation, ...] = KNATIVE_KEYS + KEDA_KEYS
AUTOSCALING_SPELLINGS: frozenset[str] = frozenset(k for a in AUTOSCALING_KEYS for k in a.keys)


def get(name: str) -> Annotation:
    return BY_NAME[_k(name) if "/" not in name else name]


def _squash(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "").replace(".", "")


_SQUASHED: dict[str, str] = {}
for _a in AUTOSCALING_KEYS:
    for _key in _a.keys:
        _SQUASHED.setdefault(_squash(_key.removeprefix(AUTOSCALING_PREFIX)), _a.name)
_SHORT_NAMES = [a.short for a in AUTOSCALING_KEYS]


def did_you_mean(key: str) -> str | None:
    """The known autoscaling key a misspelt one most likely means, or None.

    `autoscaling.knative.dev/minscale` → `autoscaling.knative.dev/min-scale`; also catches a
    misspelt prefix (`autoscaling.knative.io/min-scale`) and case slips (`MinScale`).
    """
    _, sep, suffix = key.rpartition("/")
    if not sep:
        suffix = key
    exact = _SQUASHED.get(_squash(suffix))
    if exact is not None and exact != key:
        return exact
    close = difflib.get_close_matches(suffix.lower(), _SHORT_NAMES, n=1, cutoff=0.8)
    return _k(close[0]) if close else None


def looks_like_autoscaling_prefix(prefix: str) -> bool:
    """A key prefix that is probably a typo of `autoscaling.knative.dev` (but not it)."""
    if prefix == "autoscaling.knative.dev" or ("autoscal" not in prefix and "knative" not in prefix):
        return False
    if prefix in ("autoscaling.internal.knative.dev", "serving.knative.dev", "networking.knative.dev"):
        return False
    ratio = difflib.SequenceMatcher(None, prefix.lower(), "autoscaling.knative.dev").ratio()
    return ratio >= 0.85


# ---- Reading values as Knative's PodAutoscaler does ------------------------------------------
# `pa_lifecycle.go` reads each key through its KeyPriority and treats an unparsable value as
# absent (the webhook is trusted to have refused it). Renderers use these readers, so a value
# lint reports as an error never leaks into a rendered object in some half-parsed form.


def _text(annotations: Mapping[str, Any], annotation: Annotation) -> str | None:
    found = annotation.lookup(annotations)
    if found is None or not isinstance(found[1], str):
        return None
    return found[1]


def _parsed(annotations: Mapping[str, Any], annotation: Annotation, parse: Callable[[str], T]) -> T | None:
    text = _text(annotations, annotation)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def read_int32(annotations: Mapping[str, Any], annotation: Annotation) -> int | None:
    return _parsed(annotations, annotation, lambda text: values.parse_int(text, 32))


def read_float(annotations: Mapping[str, Any], annotation: Annotation) -> float | None:
    number = _parsed(annotations, annotation, values.parse_float)
    return None if number is None or math.isnan(number) or math.isinf(number) else number


def read_seconds(annotations: Mapping[str, Any], annotation: Annotation) -> float | None:
    return _parsed(annotations, annotation, lambda text: values.parse_duration(text) / values.SECOND)


def read_string(annotations: Mapping[str, Any], annotation: Annotation) -> str | None:
    return _text(annotations, annotation)


def autoscaler_class(annotations: Mapping[str, Any], default_class: str) -> str:
    """The class annotation (exact key, no alias) or the cluster default — as a defaulted PA has it."""
    value = annotations.get(CLASS.name)
    return value if isinstance(value, str) else default_class


def class_family(class_value: str) -> str | None:
    """'kpa', 'hpa', or None for a custom autoscaler class."""
    return CLASS_NAMES.get(class_value)


def default_metric(class_value: str) -> str:
    """Knative's per-class default metric (`pa_defaults.go`); knscale's class, like kpa, concurrency."""
    return {KPA_CLASS: "concurrency", HPA_CLASS: "cpu", KNSCALE_CLASS: "concurrency"}.get(class_value, "")


def metric_of(annotations: Mapping[str, Any], class_value: str) -> str:
    value = annotations.get(METRIC.name)
    return value if isinstance(value, str) else default_metric(class_value)


CLASS = get("class")
METRIC = get("metric")
TARGET = get("target")
TARGET_UTILIZATION = get("target-utilization-percentage")
TARGET_BURST_CAPACITY = get("target-burst-capacity")
WINDOW = get("window")
PANIC_WINDOW_PERCENTAGE = get("panic-window-percentage")
PANIC_THRESHOLD_PERCENTAGE = get("panic-threshold-percentage")
MIN_SCALE = get("min-scale")
MAX_SCALE = get("max-scale")
INITIAL_SCALE = get("initial-scale")
ACTIVATION_SCALE = get("activation-scale")
SCALE_DOWN_DELAY = get("scale-down-delay")
RETENTION = get("scale-to-zero-pod-retention-period")
AGGREGATION = get("metric-aggregation-algorithm")
PROMETHEUS_ADDRESS = get("prometheus-address")
PROMETHEUS_QUERY = get("prometheus-query")
METRIC_TYPE = get("metric-type")
TRIGGER_NAME = get("trigger-prometheus-name")
AUTH_NAME = get("trigger-prometheus-auth-name")
AUTH_KIND = get("trigger-prometheus-auth-kind")
AUTH_MODES = get("trigger-prometheus-auth-modes")
EXTRA_TRIGGERS = get("extra-prometheus-triggers")
SCALING_MODIFIERS = get("scaling-modifiers")
SCALE_UP_RULES = get("hpa-scale-up-rules")
SCALE_DOWN_RULES = get("hpa-scale-down-rules")
OVERRIDE = get("scaled-object-override")
AUTO_CREATE = get("scaled-object-auto-create")
PROGRESS = BY_NAME[PROGRESS_DEADLINE]
SCALING_POLICY = BY_NAME[KNSCALE_SCALING_POLICY]
