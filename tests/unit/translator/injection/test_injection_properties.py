"""Properties over generated pods: the patch applies cleanly, only adds, yields a schema-valid pod,
and admitting the result again plans nothing (with or without the status marker)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate
from helpers.strategies import pods
from hypothesis import given

from translator.annotations.model_keys import INJECTED
from translator.config.knscale import KnscaleConfig
from translator.injection.common import ALWAYS_SKIPPED_CONTAINERS, INIT_CONTAINER_NAME, MODEL_VOLUME
from translator.injection.plan import plan_injection
from webhook.patch import plan_ops

CONFIG = KnscaleConfig()


def assert_only_added(before: Any, after: Any, where: str = "") -> None:
    """Every value of `before` is still in `after` (nulls may be filled, lists may grow at the end)."""
    if isinstance(before, dict):
        assert isinstance(after, dict), where
        for k, v in before.items():
            if v is not None:
                assert_only_added(v, after[k], f"{where}/{k}")
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) >= len(before), where
        for i, v in enumerate(before):
            assert_only_added(v, after[i], f"{where}/{i}")
    else:
        assert before == after, where


@given(pods())
def test_patch_applies_only_adds_is_schema_valid_and_idempotent(pod: dict[str, Any]) -> None:
    original = copy.deepcopy(pod)
    plan, findings = plan_injection(pod, "ml", CONFIG)
    assert not [f for f in findings if f.is_error], [f.text() for f in findings]
    assert plan is not None
    ops = plan_ops(pod, plan)
    assert pod == original, "building the plan and ops must not touch the pod"
    assert {op["op"] for op in ops} == {"add"}

    result = jsonpatch.apply_patch(pod, ops)  # raises if any op does not apply
    assert_only_added(original, result)
    kubernetes_validate.validate(result, "1.30", strict=True)

    spec = result["spec"]
    volume_names = [v["name"] for v in spec["volumes"]]
    assert len(volume_names) == len(set(volume_names))
    assert MODEL_VOLUME in volume_names
    all_names = [c["name"] for c in spec["containers"] + (spec.get("initContainers") or [])]
    assert len(all_names) == len(set(all_names))
    for c in spec["containers"] + (spec.get("initContainers") or []):
        mount_paths = [m["mountPath"].rstrip("/") for m in c.get("volumeMounts") or []]
        assert len(mount_paths) == len(set(mount_paths)), c["name"]
        env_names = [e["name"] for e in c.get("env") or []]
        assert len(env_names) == len(set(env_names)), c["name"]
    for i, c in enumerate(spec["containers"]):
        ours = [m for m in c.get("volumeMounts") or [] if m["name"] == MODEL_VOLUME]
        if c["name"] in ALWAYS_SKIPPED_CONTAINERS:
            assert c == original["spec"]["containers"][i], "sidecars are never touched"
        else:
            assert len(ours) == 1 and ours[0]["readOnly"] is True
    pvc = plan.request.source.scheme == "pvc"
    ours_init = [c for c in spec.get("initContainers") or [] if c["name"] == INIT_CONTAINER_NAME]
    pre = [c for c in original["spec"].get("initContainers") or [] if c["name"] == INIT_CONTAINER_NAME]
    assert len(ours_init) == (len(pre) if pvc else 1), "never a second downloader"
    if not pvc:
        [init] = ours_init
        env = {e["name"]: e.get("value") for e in init["env"]}
        user_env = {e["name"]: e["value"] for e in (pre[0].get("env") or [])} if pre else {}
        for name in ("MODEL_URI", "MODEL_BUCKET", "MODEL_PATH", "MODEL_DIR", "HOME"):
            assert env[name] == user_env.get(name, env[name])
            if name not in user_env:
                assert name in env
        if "MODEL_URI" not in user_env:
            assert env["MODEL_URI"] == plan.request.source.uri
    assert result["metadata"]["annotations"][INJECTED] == "true"

    # Reinvocation: the mutated pod needs nothing, and even without the marker only the marker is re-added.
    assert plan_injection(result, "ml", CONFIG) == (None, [])
    unmarked = copy.deepcopy(result)
    del unmarked["metadata"]["annotations"][INJECTED]
    again, _ = plan_injection(unmarked, "ml", CONFIG)
    assert again is not None
    assert [op["path"] for op in plan_ops(unmarked, again)] == [
        "/metadata/annotations/knscale.dev~1model-injected"
    ]
