"""Writing the knscale policy's learned state onto its workload (`knscale.dev/scaling-state`).

One JSON merge patch of that single annotation on the Deployment/StatefulSet, when the learned
state changed and at most every `policies.PERSIST_EVERY` seconds per workload. A refused write is
retried at the next due time; it never blocks a scaling decision. In dry-run mode it is printed
like every other write and not sent.
"""

from __future__ import annotations

import logging

from kubeapi.errors import ApiError
from kubeapi.resources import WORKLOADS
from reconciler.runtime.ports import Cache, Writer
from reconciler.scaling.policies import STATE_ANNOTATION, PolicySlot

log = logging.getLogger(__name__)


def store_state(
    slot: PolicySlot,
    key: tuple[str, str, str],
    writer: Writer,
    cache: Cache,
    now: float,
) -> None:
    patch = slot.store_patch(now)
    if patch is None:
        return
    kind, ns, name = key
    res = WORKLOADS[kind]
    size = len(patch["metadata"]["annotations"][STATE_ANNOTATION])
    try:
        stored = writer.patch(
            res,
            ns,
            name,
            patch,
            patch_type="merge",
            why=f"store the scaling policy's learned state ({size} bytes)",
        )
    except ApiError as exc:
        log.info("%s %s/%s: storing the policy state failed (%s); retrying later", kind, ns, name, exc.reason)
        slot.store_failed(now)
        return
    slot.stored_ok(patch, now)
    if stored is not None:
        cache.remember(res, stored)  # the whole object as the API server now has it
