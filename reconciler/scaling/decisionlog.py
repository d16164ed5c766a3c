"""One log line per scale decision of the KPA loop (logger `knscale.scaling`).

The message is `DecisionRecord.line()`; with `--log-format json` the line also has the fields
target (kind namespace/name), desired, previous (the scale the decision started from), ready,
policy, mode, action and reason. A write (scaled) or a failed one is logged at info, every other
decision (unchanged, held, blocked, would-scale) at debug, as before: a loop deciding every two
seconds for every workload would otherwise fill the log with "nothing to do". Names come from
the cluster's objects (already valid Kubernetes names); the reason is the decider's own text,
clipped.
"""

from __future__ import annotations

import logging

from reconciler.scaling.sources import DecisionRecord

log = logging.getLogger("knscale.scaling")

REASON_MAX_CHARS = 300
_LOUD_ACTIONS = frozenset({"scaled", "failed"})


def log_scale_decision(record: DecisionRecord, policy: str) -> None:
    level = logging.INFO if record.action in _LOUD_ACTIONS else logging.DEBUG
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
    # The message is the line the reconciler always logged (`decision Deployment ns/name: …
    # action=scaled reason=…`, which e2e scenario 5 and operators grep for); in JSON its fields
    # are keys of their own as well.
    log.log(level, "decision %s", record.line(), extra={"knscale": fields, "knscale_in_msg": True})
