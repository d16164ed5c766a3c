"""Which policy scales a revision of knscale's class: ``knscale.dev/scaling-policy`` on the PA.

The names and the objects are ``reconciler.kpa.registry``'s — the ones the KPA loop for plain
workloads and ``knscale simulate`` run — so a policy is one code path everywhere; only the
default differs: a revision of knscale's class gets ``knscale`` (the cold-start-aware policy)
unless it asks for ``kpa`` (the faithful decider). An unknown value (KNS128 at admission and in
lint) falls back to that default here and is reported, rather than leaving a revision unscaled
that Knative's own autoscaler will not scale either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.kpa.registry import KNSCALE, NAMES
from reconciler.runtime.objects import annotations_of
from translator.annotations.table import KNSCALE_SCALING_POLICY

CLASS_DEFAULT_POLICY = KNSCALE


@dataclass(frozen=True, slots=True)
class PolicyName:
    name: str
    problem: str | None = None  # why the written value was not used


def policy_name(pa: Mapping[str, Any]) -> PolicyName:
    written = annotations_of(pa).get(KNSCALE_SCALING_POLICY)
    if written is None:
        return PolicyName(CLASS_DEFAULT_POLICY)
    if isinstance(written, str) and written in NAMES:
        return PolicyName(written)
    return PolicyName(
        CLASS_DEFAULT_POLICY,
        f"{KNSCALE_SCALING_POLICY}: {str(written)[:64]!r} is not one of {', '.join(NAMES)}; "
        f"using {CLASS_DEFAULT_POLICY}",
    )
