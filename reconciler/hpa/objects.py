"""Pure helpers of the HPA-class sync: ownership, semantic equality, the SKS, PA conditions.

Nothing here does I/O or reads a clock; callers pass `now` as an RFC 3339 string. The PA
condition rules are those of Knative's "living" condition set (knative.dev/pkg
`apis/condition_set.go`), restated: `Ready` is the happy condition and depends on `Active`,
`ScaleTargetInitialized` and `SKSReady`; a False dependent makes Ready False, otherwise an
Unknown one makes it Unknown, otherwise it is True; a condition keeps its
`lastTransitionTime` unless its status, reason or message changes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from reconciler.runtime.objects import annotations_of, controller_ref, meta, normalize
from translator.annotations import table as ann
from translator.config.autoscaler import AutoscalerConfig, KedaConfig
from translator.core.values import ParseError, parse_bool

READY = "Ready"
ACTIVE = "Active"
SCALE_TARGET_INITIALIZED = "ScaleTargetInitialized"
SKS_READY = "SKSReady"
PA_DEPENDENTS = (ACTIVE, SCALE_TARGET_INITIALIZED, SKS_READY)


def auto_create(obj: Mapping[str, Any], keda: KedaConfig) -> tuple[bool, str | None]:
    """Whether to manage a ScaledObject: ConfigMap default, then the annotation (autoscaler-keda).

    An unparsable annotation keeps the default and is reported (second value), as
    autoscaler-keda logs it and carries on.
    """
    value = annotations_of(obj).get(ann.AUTO_CREATE.name)
    if value is None:
        return keda.scaledobject_autocreate, None
    try:
        return parse_bool(str(value)), None
    except ParseError:
        return (
            keda.scaledobject_autocreate,
            f"{ann.AUTO_CREATE.name}: {value!r} is not a boolean; using the default "
            f"{str(keda.scaledobject_autocreate).lower()}",
        )


# ---- ServerlessService ------------------------------------------------------------------


def desired_sks(pa: Mapping[str, Any]) -> dict[str, Any]:
    """The SKS for an HPA-class PA: same name, Serve mode (no activator), all activators (0)."""
    m = meta(pa)
    spec = pa.get("spec") or {}
    labels = dict(m.get("labels") or {})
    annotations = {k: v for k, v in (m.get("annotations") or {}).items() if k != ann.METRIC.name}
    sks_spec: dict[str, Any] = {
        "mode": "Serve",
        "objectRef": copy.deepcopy(spec.get("scaleTargetRef") or {}),
        "protocolType": spec.get("protocolType") or "http1",
    }
    body: dict[str, Any] = {
        "apiVersion": "networking.internal.knative.dev/v1alpha1",
        "kind": "ServerlessService",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "ownerReferences": [controller_ref(pa)],
        },
        "spec": sks_spec,
    }
    if labels:
        body["metadata"]["labels"] = labels
    if annotations:
        body["metadata"]["annotations"] = annotations
    return body


def condition(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == ctype:
            return c
    return None


def is_ready(obj: Mapping[str, Any]) -> bool:
    c = condition(obj, READY)
    return c is not None and c.get("status") == "True"


# ---- PodAutoscaler status ---------------------------------------------------------------


class PaConditions:
    """A PA's conditions as Knative's living condition set manages them."""

    def __init__(self, conditions: list[Mapping[str, Any]] | None, now: str) -> None:
        self._now = now
        self._by_type: dict[str, dict[str, Any]] = {}
        for c in conditions or []:
            if isinstance(c, Mapping) and isinstance(c.get("type"), str):
                self._by_type[str(c["type"])] = dict(c)

    def get(self, ctype: str) -> Mapping[str, Any] | None:
        return self._by_type.get(ctype)

    def status(self, ctype: str) -> str | None:
        c = self._by_type.get(ctype)
        return str(c.get("status")) if c else None

    def is_true(self, ctype: str) -> bool:
        return self.status(ctype) == "True"

    def to_list(self) -> list[dict[str, Any]]:
        return [self._by_type[t] for t in sorted(self._by_type)]

    def _set(self, ctype: str, status: str, reason: str = "", message: str = "") -> None:
        new: dict[str, Any] = {"type": ctype, "status": status}
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        old = self._by_type.get(ctype)
        if old is not None and all(old.get(k, "") == new.get(k, "") for k in ("status", "reason", "message")):
            return
        new["lastTransitionTime"] = self._now
        self._by_type[ctype] = new

    def initialize(self) -> None:
        if READY not in self._by_type:
            self._set(READY, "Unknown")
        fill = "True" if self.is_true(READY) else "Unknown"
        for t in PA_DEPENDENTS:
            if t not in self._by_type:
                self._set(t, fill)

    def _unhappy(self) -> Mapping[str, Any] | None:
        present = [self._by_type[t] for t in PA_DEPENDENTS if t in self._by_type]
        # The most recently changed problem explains Ready best.
        present.sort(key=lambda c: str(c.get("lastTransitionTime") or ""), reverse=True)
        for wanted in ("False", "Unknown"):
            for c in present:
                if c.get("status") == wanted:
                    return c
        if len(present) < len(PA_DEPENDENTS):
            return {"status": "Unknown"}
        return None

    def mark_true(self, ctype: str) -> None:
        self._set(ctype, "True")
        bad = self._unhappy()
        if bad is not None:
            self._set(
                READY, str(bad.get("status")), str(bad.get("reason") or ""), str(bad.get("message") or "")
            )
        else:
            self._set(READY, "True")

    def mark_unknown(self, ctype: str, reason: str, message: str) -> None:
        self._set(ctype, "Unknown", reason, message)
        if any(self.status(t) == "False" for t in PA_DEPENDENTS):
            if self.status(READY) != "False":
                self._set(READY, "False", reason, message)
            return
        if ctype in PA_DEPENDENTS:
            self._set(READY, "Unknown", reason, message)

    def mark_false(self, ctype: str, reason: str, message: str) -> None:
        self._set(ctype, "False", reason, message)
        if ctype in PA_DEPENDENTS:
            self._set(READY, "False", reason, message)

    # Knative's named transitions, so the sync reads like autoscaler-keda's reconcile.
    def mark_active(self) -> None:
        self.mark_true(ACTIVE)

    def mark_inactive(self, reason: str, message: str) -> None:
        self.mark_false(ACTIVE, reason, message)

    def mark_resource_not_owned(self, kind: str, name: str) -> None:
        self.mark_inactive("NotOwned", f'There is an existing {kind} "{name}" that we do not own.')

    def mark_resource_failed_creation(self, kind: str, name: str) -> None:
        self.mark_inactive("FailedCreate", f'Failed to create {kind} "{name}".')

    def mark_sks_ready(self) -> None:
        self.mark_true(SKS_READY)

    def mark_sks_not_ready(self, message: str) -> None:
        self.mark_unknown(SKS_READY, "NotReady", message)

    def mark_scale_target_initialized(self) -> None:
        self.mark_true(SCALE_TARGET_INITIALIZED)


def pa_scale_bounds(pa: Mapping[str, Any], cfg: AutoscalerConfig) -> tuple[int, int]:
    """(min scale, initial scale) of a PA, as Knative's `ScaleBounds` and `GetInitialScale`.

    min: annotation, else the ConfigMap's min-scale — and 0 for an Unreachable PA.
    initial: the annotation when present and (non-zero or zero is allowed), else the ConfigMap's.
    """
    annotations = annotations_of(pa)
    reachable = (pa.get("spec") or {}).get("reachability") != "Unreachable"
    lo = 0
    if reachable:
        value = ann.read_int32(annotations, ann.MIN_SCALE)
        lo = max(0, value) if value is not None else cfg.min_scale
    initial = cfg.initial_scale
    value = ann.read_int32(annotations, ann.INITIAL_SCALE)
    if value is not None and value >= 0 and (value != 0 or cfg.allow_zero_initial_scale):
        initial = value
    return lo, initial


def status_view(status: Mapping[str, Any] | None) -> Any:
    """A status without condition timestamps, for "did anything change" comparisons."""
    s = dict(status or {})
    s["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in sorted(s.get("conditions") or [], key=lambda c: str(c.get("type")))
    ]
    return normalize(s)
