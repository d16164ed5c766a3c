"""The knscale policy's learned state as a small JSON text, and back. Pure.

What a new leader cannot rebuild from the cluster is what the policy learned about idle gaps
(the pods of an idle revision are gone). The reconciler stores it on the workload
(`knscale.dev/scaling-state`) and a new leader starts from it. Stored: the histogram (non-empty
bins only, as ``[bin, count, sum]``), the sample count, the last six intervals between busy
starts and the last busy start (epoch seconds), the fit the plans come from, and S. Not stored:
the KPA part (a new leader starts it like a restarted Knative autoscaler) and the current idle
gap's plan (re-planned at the next idle start). Worst case ≈ 2.4 kB (40 bins), typically
100–400 bytes. The annotation is user-writable, so ``decode`` accepts only a well-formed text
of bounded size and sane numbers; anything else is ignored (the policy learns afresh).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from reconciler.kpa.predictive import NBINS, Fit, PredictiveState

VERSION = 1
MAX_BYTES = 4096
_MAX_NUMBER = 1e9


def encode(state: PredictiveState) -> str:
    doc: dict[str, Any] = {"v": VERSION, "n": state.samples}
    bins = [[i, c, v] for i, (c, v) in enumerate(zip(state.counts, state.sums, strict=True)) if c > 0]
    if bins:
        doc["h"] = bins
    if state.rises:
        doc["r"] = list(state.rises)
    if state.last_rise is not None:
        doc["lr"] = state.last_rise
    if state.fit is not None:
        f = state.fit
        doc["f"] = [_finite(f.keep), _finite(f.warm_from), _finite(f.warm_to), f.samples]
    if state.cold_start is not None:
        doc["S"] = state.cold_start
    return json.dumps(doc, separators=(",", ":"))


def decode(text: str, base: PredictiveState) -> PredictiveState | None:
    """``base`` (a fresh state) with the learned part of ``text``; None if ``text`` is not valid."""
    if len(text) > MAX_BYTES:
        return None
    try:
        doc = json.loads(text)
        return _decode(doc, base)
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _decode(doc: Any, base: PredictiveState) -> PredictiveState | None:
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        return None
    counts, sums = [0.0] * NBINS, [0.0] * NBINS
    for entry in doc.get("h", []):
        i, c, v = entry
        if not isinstance(i, int) or not 0 <= i < NBINS:
            return None
        counts[i], sums[i] = _number(c), _number(v)
    rises = tuple(_number(x) for x in doc.get("r", []))
    if len(rises) > 6:
        return None
    fit = None
    if "f" in doc:
        keep, warm_from, warm_to, samples = doc["f"]
        fit = Fit(_infinite(keep), _infinite(warm_from), _infinite(warm_to), _count(samples))
    last_rise = doc.get("lr")
    cold_start = doc.get("S")
    return replace(
        base,
        counts=tuple(counts),
        sums=tuple(sums),
        rises=rises,
        samples=_count(doc.get("n", 0)),
        last_rise=None if last_rise is None else _number(last_rise, limit=1e11),
        fit=fit,
        cold_start=None if cold_start is None else _number(cold_start),
    )


def _number(x: Any, limit: float = _MAX_NUMBER) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or not 0 <= x <= limit:
        raise ValueError(f"not a number in range: {x!r}")
    return float(x)


def _count(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 2**31:
        raise ValueError(f"not a count: {x!r}")
    return x


def _finite(x: float) -> float | None:
    return None if math.isinf(x) else x


def _infinite(x: Any) -> float:
    return math.inf if x is None else _number(x)
