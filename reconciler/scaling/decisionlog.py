"""One log line per scale decision of the KPA loop (logger `knscale.scaling`).

Fields: target (kind namespace/name), desired, previous (the scale the decision started from),
ready, policy, mode, action and reason. Actions that change or try to change something
(scaled, failed, would-scale, blocked) are logged at info; the steady ones (unchanged, held)
at debug, since a loop deciding every two seconds for every workload would otherwise fill the
log with "nothing to do". Names come from the cluster's objects (already valid Kubernetes
names); the reason is the decider's own text, clipped.
"""

from __future__ import annotations

import logging

from reconciler.scaling.sources import DecisionRecord

log = logging.getLogger("knscale.scaling")

REASON_MAX_CHARS = 300
_QUIET_ACTIONS = frozenset({"unchanged", "held"})


def log_scale_decision(record: DecisionRecord, policy: str) -> None:
    level = logging.DEBUG if record.action in _QUIET_ACTIONS else logging.INFO
    if not log.isEnabledFor(level):
        return
    reason = record.reason if len(record.reason) <= REASON_MAX_CHARS else record.reason[:297] + "..."
    fields = {
        "target": f"{record.kind} {record.namespace}/{record.name}",
        "kind": record.kind,
        "namespace": record.namespace,
        "name": record.name,
        "desired": record.desired,
        "previous": record.current,
        "ready": record.ready,
        "policy": policy,
        "mode": record.mode,
        "action": record.action,
        "reason": reason,
    }
    log.log(level, "scale decision", extra={"knscale": fields})
