"""Properties over generated pods: the patch applies cleanly, only adds, yields a schema-valid pod,
and admitting the result again plans nothing (with or without the status marker)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate
from hypothesis import given
from hypothesis import strategies as st

from translator.annotations.model_keys import INJECTED
from translator.config.knscale import KnscaleConfig
from translator.injection.common import ALWAYS_SKIPPED_CONTAINERS, INIT_CONTAINER_NAME, MODEL_VOLUME
from translator.injection.plan import plan_injection
from webhook.patch import plan_ops

CONFIG = KnscaleConfig()

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
# Annotation keys with the characters RFC 6901 must escape.
odd_keys = st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,4})?/[a-z~/]{1,8}", fullmatch=True)
paths = st.lists(names, min_size=1, max_size=3).map(lambda parts: "/data/" + "/".join(parts))
absent_null_or = lambda strategy: st.one_of(st.just("<absent>"), st.none(), strategy)  # noqa: E731

sources = st.one_of(
    st.builds(
        lambda scheme, bucket, path: {"knscale.dev/model-uri": f"{scheme}://{bucket}{path}"},
        st.sampled_from(["s3", "gs"]),
        st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True),
        st.one_of(st.just(""), paths, paths.map(lambda p: p + "/")),
    ),
    st.builds(
        lambda bucket, path: {"modelBucket": bucket, **({"modelPath": path} if path else {})},
        st.from_regex(r"(gs://)?[a-z0-9][a-z0-9_]{0,10}", fullmatch=True),
        st.one_of(st.just(""), paths.map(lambda p: p + "/")),
    ),
    st.builds(lambda org, m: {"knscale.dev/model-uri": f"hf://{org}/{m}"}, names, names),
    st.builds(
        lambda host, p: {"knscale.dev/model-uri": f"https://{host}.example.com{p}/model.bin"}, names, paths
    ),
    st.builds(
        lambda claim, p: {"knscale.dev/model-uri": f"pvc://{claim}{p}"}, names, st.one_of(st.just(""), paths)
    ),
)


@st.composite
def annotations(draw: st.DrawFn) -> dict[str, str]:
    ann = draw(st.dictionaries(odd_keys, names, max_size=3))
    ann.update(draw(sources))
    ann[draw(st.sampled_from(["knscale.dev/inject-model", "injectModelInitContainer"]))] = draw(
        st.sampled_from(["true", "True", "TRUE"])
    )
    if draw(st.booleans()):
        ann["knscale.dev/model-mount-path"] = draw(st.sampled_from(["/mnt/models", "/models/", "/opt/m/v1"]))
    if draw(st.booleans()):
        ann["knscale.dev/model-credentials-secret"] = draw(names)
    if draw(st.booleans()) and not ann.get("knscale.dev/model-uri", "").startswith("pvc://"):
        ann["knscale.dev/model-size-limit"] = draw(st.sampled_from(["1Gi", "500Mi", "20G"]))
    return ann


@st.composite
def container(draw: st.DrawFn, name: str, *, ours: bool = False) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name}
    if not ours or draw(st.booleans()):
        c["image"] = f"example.com/{name}:1"
    mounts = draw(absent_null_or(st.lists(paths, max_size=3, unique=True)))
    if mounts != "<absent>":
        c["volumeMounts"] = (
            None if mounts is None else [{"name": f"v{i}", "mountPath": p} for i, p in enumerate(mounts)]
        )
        if c["volumeMounts"] is not None and not ours and draw(st.integers(0, 4)) == 0:
            c["volumeMounts"].append({"name": MODEL_VOLUME, "mountPath": "/elsewhere", "readOnly": True})
    env = draw(
        absent_null_or(st.lists(st.sampled_from(["A", "B", "MODEL_DIR", "HOME", "MODEL_URI"]), unique=True))
    )
    if env != "<absent>":
        c["env"] = None if env is None else [{"name": n, "value": "user"} for n in env]
    if ours and draw(st.booleans()):
        c["command"] = ["/bin/fetch"]
    return c


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    app_names = [*pool[:1], *draw(st.lists(st.sampled_from(sorted(ALWAYS_SKIPPED_CONTAINERS)), unique=True))]
    spec: dict[str, Any] = {"containers": [draw(container(n)) for n in app_names + pool[1:2]]}
    init = draw(absent_null_or(st.just([draw(container(n)) for n in pool[2:]])))
    if init != "<absent>":
        spec["initContainers"] = init
        if init is not None and draw(st.booleans()):
            spec["initContainers"].insert(
                draw(st.integers(0, len(init))), draw(container(INIT_CONTAINER_NAME, ours=True))
            )
    volumes = draw(
        absent_null_or(
            st.lists(st.sampled_from(["cache", "config", MODEL_VOLUME, "knscale-model-tmp"]), unique=True)
        )
    )
    if volumes != "<absent>":
        spec["volumes"] = None if volumes is None else [{"name": n, "emptyDir": {}} for n in volumes]
    security = draw(absent_null_or(st.sampled_from([{}, {"fsGroup": 5}, {"runAsUser": 7}])))
    if security != "<absent>":
        spec["securityContext"] = security
    meta: dict[str, Any] = {"generateName": "web-", "annotations": draw(annotations())}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


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
