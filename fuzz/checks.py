"""What every reply of the webhook must be, whatever the review (issue 16's campaign).

No 5xx; a malformed envelope may get a 4xx, anything else a 200 carrying a valid AdmissionReview
of the request's apiVersion with the request's uid. A patch must decode, apply to the request's
object and leave a plausible pod — unique container and volume names, every mount naming a
volume — adding no problem the object did not already have. The patched object, resubmitted,
must get no further patch (idempotence); the runner does that resubmission.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from typing import Any

import jsonpatch

from fuzz.reviews import Review, _pod_spec_of


def pod_problems(obj: Any) -> set[str]:
    """What makes a pod (or a workload's pod template) implausible, as a set of descriptions."""
    spec = _pod_spec_of(obj)
    if not isinstance(spec, dict):
        return {"no pod spec"}
    problems: set[str] = set()
    containers: list[Any] = []
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        if isinstance(items, list):
            containers += [c for c in items if isinstance(c, dict)]
    names = Counter(c.get("name") for c in containers)
    problems |= {f"container name {n!r} repeated" for n, k in names.items() if k > 1}
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else None
    volume_names = (
        Counter(v.get("name") for v in volumes if isinstance(v, dict))
        if isinstance(volumes, list)
        else Counter()
    )
    problems |= {f"volume name {n!r} repeated" for n, k in volume_names.items() if k > 1}
    for c in containers:
        mounts = c.get("volumeMounts")
        if not isinstance(mounts, list):
            continue
        for m in mounts:
            if isinstance(m, dict) and m.get("name") not in volume_names:
                problems.add(f"mount of missing volume {m.get('name')!r} in {c.get('name')!r}")
    return problems


def check_reply(review: Review, status: int, body: bytes) -> tuple[list[str], dict[str, Any] | None]:
    """The problems of one reply, and the patched object when the reply carried a patch."""
    if status >= 500:
        return [f"HTTP {status}"], None
    if status == 400 and b"depth limit exceeded" in body:
        return [], None  # a bound (orjson's 1,024 levels), answered with a clear 400
    if status != 200:
        intact = review.uid is not None and "envelope" not in review.mutations
        return ([f"HTTP {status} for a well-formed envelope"] if intact and status != 413 else []), None
    try:
        reply = json.loads(body)
    except ValueError:
        return ["reply is not JSON"], None
    if not isinstance(reply, dict) or reply.get("kind") != "AdmissionReview":
        return ["reply is not an AdmissionReview"], None
    problems = []
    if reply.get("apiVersion") != review.api_version:
        problems.append(f"apiVersion {reply.get('apiVersion')!r} for {review.api_version!r}")
    response = reply.get("response")
    if not isinstance(response, dict):
        return [*problems, "no response"], None
    if response.get("uid") != review.uid:
        problems.append("uid not echoed")
    allowed = response.get("allowed")
    if not isinstance(allowed, bool):
        problems.append("allowed is not a boolean")
    if allowed is False:
        st = response.get("status")
        if not isinstance(st, dict) or not isinstance(st.get("message"), str) or not st["message"]:
            problems.append("denial without a message")
        if isinstance(st, dict) and "internal error" in str(st.get("message", "")).lower():
            problems.append("internal-error denial")
    patch_text = response.get("patch")
    if patch_text is None:
        return problems, None
    if response.get("patchType") != "JSONPatch":
        problems.append("patch without patchType JSONPatch")
    try:
        ops = json.loads(base64.b64decode(patch_text, validate=True))
        obj = json.loads(review.body)["request"]["object"]
        patched = jsonpatch.apply_patch(obj, ops)
    except (binascii.Error, ValueError, TypeError, KeyError, jsonpatch.JsonPatchException) as exc:
        return [*problems, f"patch does not apply: {type(exc).__name__}: {str(exc)[:200]}"], None
    added = pod_problems(patched) - pod_problems(obj)
    problems += sorted(f"patch adds: {p}" for p in added)
    return problems, patched


def resubmission(review: Review, patched: dict[str, Any]) -> Review:
    """The same review for the patched object, under a new uid."""
    body = json.loads(review.body)
    body["request"]["object"] = patched
    uid = (review.uid or "x")[:-4] + "9999"
    body["request"]["uid"] = uid
    return Review(
        json.dumps(body).encode(), uid, review.kind, review.api_version, (*review.mutations, "again")
    )


def check_idempotent(status: int, body: bytes) -> list[str]:
    if status != 200:
        return [f"resubmission got HTTP {status}"]
    response = json.loads(body).get("response") or {}
    if response.get("allowed") is not True:
        return [f"resubmission denied: {str((response.get('status') or {}).get('message'))[:300]}"]
    if response.get("patch"):
        ops = json.loads(base64.b64decode(response["patch"]))
        if ops:
            return [f"resubmission patched again: {json.dumps(ops)[:300]}"]
    return []
