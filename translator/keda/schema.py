"""The shapes the JSON annotations of autoscaler-keda must have, and KEDA's own admission rules.

autoscaler-keda unmarshals its JSON annotations into Go structs (`[]ScaleTriggers`,
`ScalingModifiers`, `HPAScalingRules`, a whole `ScaledObject`); a value of the wrong JSON type
fails there, and what survives is then judged by the ScaledObject CRD's structural schema, by
KEDA's validating webhook and, when KEDA creates the HPA, by the HPA API validation. This
module describes those shapes (written from kedacore/keda `apis/keda/v1alpha1` and the
ScaledObject CRD v2.21, and Kubernetes' HPA validation) and checks a decoded value against
them, naming the JSON path of every problem.

knscale is stricter in one way: a field the struct does not know is reported (Go would
silently drop it), because it is almost always a misspelling (`metdata`, `treshold`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from translator.core.values import INT32_MAX, INT32_MIN, ParseError, parse_quantity


@dataclass(frozen=True, slots=True)
class Shape:
    """One JSON node's expected form.

    kind: object | array | string | int32 | bool | strmap (map of strings) | quantity | any.
    """

    kind: str
    props: Mapping[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Shape | None = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()
    min_length: int = 0
    min_items: int = 0
    open: bool = False  # object whose unknown fields are fine (metadata we overwrite anyway)


def _obj(required: tuple[str, ...] = (), open: bool = False, **props: Shape) -> Shape:
    return Shape("object", props=props, required=required, open=open)


STRING = Shape("string")
INT32 = Shape("int32")
BOOL = Shape("bool")
STRMAP = Shape("strmap")


def _int(minimum: int | None = None, maximum: int | None = None) -> Shape:
    return Shape("int32", minimum=minimum, maximum=maximum)


# Kubernetes HPA validation (pkg/apis/autoscaling/validation): these ranges are checked when
# KEDA creates the HPA, so a bad value surfaces late, as a ScaledObject that never gets ready.
MAX_STABILIZATION_WINDOW_S = 3600
MAX_PERIOD_S = 1800
HPA_POLICY = _obj(
    required=("type", "value", "periodSeconds"),
    type=Shape("string", enum=("Pods", "Percent")),
    value=_int(minimum=1),
    periodSeconds=_int(minimum=1, maximum=MAX_PERIOD_S),
)
HPA_SCALING_RULES = _obj(
    stabilizationWindowSeconds=_int(minimum=0, maximum=MAX_STABILIZATION_WINDOW_S),
    selectPolicy=Shape("string", enum=("Max", "Min", "Disabled")),
    policies=Shape("array", items=HPA_POLICY),
    tolerance=Shape("quantity"),
)
SCALING_MODIFIERS = _obj(
    formula=STRING,
    target=STRING,
    activationTarget=STRING,
    metricType=Shape("string", enum=("AverageValue", "Value")),
)
AUTH_REF = _obj(
    required=("name",),
    name=STRING,
    kind=Shape("string", enum=("TriggerAuthentication", "ClusterTriggerAuthentication")),
)
TRIGGER = _obj(
    required=("type", "metadata"),
    type=Shape("string", min_length=1),
    name=STRING,
    useCachedMetrics=BOOL,
    metadata=STRMAP,
    authenticationRef=AUTH_REF,
    metricType=STRING,
)
TRIGGERS = Shape("array", items=TRIGGER)
SCALED_OBJECT_SPEC = _obj(
    required=("scaleTargetRef", "triggers"),
    scaleTargetRef=_obj(
        required=("name",),
        name=Shape("string", min_length=1),
        apiVersion=STRING,
        kind=STRING,
        envSourceContainerName=STRING,
    ),
    pollingInterval=_int(minimum=1),
    cooldownPeriod=_int(minimum=0),
    initialCooldownPeriod=_int(minimum=0),
    idleReplicaCount=_int(minimum=0),
    minReplicaCount=_int(minimum=0),
    maxReplicaCount=_int(minimum=1),
    fallback=_obj(
        required=("failureThreshold", "replicas"),
        failureThreshold=_int(minimum=0),
        replicas=_int(minimum=0),
        behavior=Shape(
            "string",
            enum=(
                "static",
                "currentReplicas",
                "currentReplicasIfHigher",
                "currentReplicasIfLower",
                "scalingModifiers",
            ),
        ),
    ),
    advanced=_obj(
        horizontalPodAutoscalerConfig=_obj(
            name=STRING,
            behavior=_obj(scaleUp=HPA_SCALING_RULES, scaleDown=HPA_SCALING_RULES),
        ),
        restoreToOriginalReplicaCount=BOOL,
        scalingModifiers=SCALING_MODIFIERS,
    ),
    triggers=Shape("array", items=TRIGGER, min_items=1),
)
# The override annotation: autoscaler-keda fills in scaleTargetRef itself, and what the whole
# object still lacks (no triggers at all) is judged afterwards, as KEDA would judge it.
_OVERRIDE_SPEC = replace(
    SCALED_OBJECT_SPEC,
    required=(),
    props={
        **SCALED_OBJECT_SPEC.props,
        "triggers": TRIGGERS,
        "scaleTargetRef": replace(SCALED_OBJECT_SPEC.props["scaleTargetRef"], required=()),
    },
)
SCALED_OBJECT = _obj(
    apiVersion=Shape("string", enum=("keda.sh/v1alpha1",)),
    kind=Shape("string", enum=("ScaledObject",)),
    metadata=Shape("object", open=True),
    spec=_OVERRIDE_SPEC,
    status=Shape("object", open=True),
)

_JSON_TYPE = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def check(value: Any, shape: Shape, path: str = "") -> list[str]:
    """Every way `value` (decoded JSON) departs from `shape`; messages start with the JSON path."""
    where = path or "the value"
    kind = shape.kind
    if value is None:
        return []  # JSON null: Go leaves the zero value; required-ness is checked by the parent
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {_describe(value)}"]
        out: list[str] = []
        for name in shape.required:
            if value.get(name) is None:
                out.append(f"{_join(path, name)}: is required")
        for name, sub in value.items():
            if name in shape.props:
                out += check(sub, shape.props[name], _join(path, name))
            elif not shape.open:
                hint = _closest(name, list(shape.props))
                out.append(f"{_join(path, name)}: unknown field{hint}")
        return out
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {_describe(value)}"]
        out = []
        if len(value) < shape.min_items:
            out.append(f"{where}: needs at least {shape.min_items} item(s)")
        assert shape.items is not None
        for i, item in enumerate(value):
            out += check(item, shape.items, f"{path}[{i}]")
        return out
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {_describe(value)}"]
        if len(value) < shape.min_length:
            return [f"{where}: must not be empty"]
        if shape.enum and value not in shape.enum:
            return [f"{where}: {value!r} is not one of {', '.join(shape.enum)}"]
        return []
    if kind == "int32":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected an integer, got {_describe(value)} {value!r}"]
        if not INT32_MIN <= value <= INT32_MAX:
            return [f"{where}: {value} does not fit a 32-bit integer"]
        if shape.minimum is not None and value < shape.minimum:
            return [f"{where}: {value} is less than the minimum {shape.minimum}"]
        if shape.maximum is not None and value > shape.maximum:
            return [f"{where}: {value} is more than the maximum {shape.maximum}"]
        return []
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected true or false, got {_describe(value)}"]
    if kind == "strmap":
        if not isinstance(value, dict):
            return [f"{where}: expected an object of strings, got {_describe(value)}"]
        return [
            f"{_join(path, k)}: expected a string, got {_describe(v)} (quote it)"
            for k, v in value.items()
            if v is not None and not isinstance(v, str)
        ]
    if kind == "quantity":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return [f'{where}: expected a quantity such as 0.1 or "100m", got {_describe(value)}']
        try:
            number = parse_quantity(value if isinstance(value, str) else repr(value))
        except ParseError as exc:
            return [f"{where}: {exc}"]
        return [f"{where}: must not be negative"] if number < 0 else []
    return []  # "any"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _closest(name: str, known: list[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    return f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(known)})"


def drop_nulls(value: Any) -> Any:
    """Remove JSON nulls the way Go's omitempty would before the object reaches the API server."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# ---- scaling-modifiers formulas ---------------------------------------------------------------
# KEDA compiles the formula with `expr`, with the named non-cpu/memory triggers as the only
# variables. Without running expr we can still catch the common slip — a variable that names
# no trigger — while leaving function calls, member access, literals and keywords alone.
_EXPR_WORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "in",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "let",
        "nil",
        "true",
        "false",
        "if",
        "else",
    ]
)
_STRING_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_IDENT = re.compile(r"(?<![\w.#$])([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def formula_variables(formula: str) -> list[str]:
    """Identifiers the formula uses as variables (not functions, fields, keywords or literals)."""
    text = _STRING_LITERAL.sub(" ", formula)
    lets = set(re.findall(r"\blet\s+([A-Za-z_][A-Za-z0-9_]*)", text))
    found: list[str] = []
    for m in _IDENT.finditer(text):
        name = m.group(1)
        if name in _EXPR_WORDS or name in lets or name in found:
            continue
        found.append(name)
    return found
