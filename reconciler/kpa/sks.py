"""Where the activator stands for a Knative revision: the ServerlessService's mode and how many
activators back it (reference knative-kpa.md §5.1, §5.6). Pure.

Knative's KPA reconciler puts the activator in the data path (SKS ``Proxy``) whenever the revision
is at or heading to zero, or its excess burst capacity is negative (a burst could overrun the
pods it has), and takes it out (``Serve``) only when it wants pods and the EBC is non-negative.
"""

from __future__ import annotations

import math
from typing import Literal

from reconciler.kpa.scaler import SCALE_UNKNOWN, Activity
from translator.autoscaling.kpa import KpaSettings

SksMode = Literal["Proxy", "Serve"]
MIN_ACTIVATORS = 2  # Knative's minActivators


def sks_mode(want: int, activity: Activity, excess_burst_capacity: float) -> SksMode:
    """Knative's choice: Serve only for want > 0 with EBC ≥ 0; Proxy otherwise (also while the
    want is unknown, -1, for an Inactive PA: the activator keeps buffering)."""
    if want == SCALE_UNKNOWN and activity == "inactive":
        return "Proxy"
    if want > 0 and excess_burst_capacity >= 0:
        return "Serve"
    return "Proxy"


def activator_count(settings: KpaSettings, ready_pods: int) -> int:
    """``computeNumActivators``: enough activators to carry the revision's capacity plus its burst
    capacity, at least two; target-burst-capacity 0 needs no more than the minimum."""
    tbc = settings.target_burst_capacity
    if tbc == 0:
        return MIN_ACTIVATORS
    capacity = ready_pods * settings.total_value + max(tbc, 0.0)
    return max(MIN_ACTIVATORS, math.ceil(capacity / settings.activator_capacity))
