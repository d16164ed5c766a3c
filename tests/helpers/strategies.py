"""Hypothesis strategies for pods asking for a model: shared by the injection, template-mode and
decision-cache property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from translator.injection.common import ALWAYS_SKIPPED_CONTAINERS, INIT_CONTAINER_NAME, MODEL_VOLUME

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


# oci:// model images: a registry host (with or without a port), a repository, a tag and/or digest.
oci_sources = st.builds(
    lambda host, port, repo, tag, digest: {
        "knscale.dev/model-uri": f"oci://{host}.example.com{port}/{repo}{tag}{digest}"
    },
    names,
    st.sampled_from(["", ":5000"]),
    st.lists(names, min_size=1, max_size=3).map("/".join),
    st.sampled_from(["", ":v1", ":latest"]),
    st.sampled_from(["", "@sha256:" + "ab" * 32]),
)


@st.composite
def annotations(draw: st.DrawFn, source: st.SearchStrategy[dict[str, str]] = sources) -> dict[str, str]:
    ann = draw(st.dictionaries(odd_keys, names, max_size=3))
    ann.update(draw(source))
    ann[draw(st.sampled_from(["knscale.dev/inject-model", "injectModelInitContainer"]))] = draw(
        st.sampled_from(["true", "True", "TRUE"])
    )
    if draw(st.booleans()):
        ann["knscale.dev/model-mount-path"] = draw(st.sampled_from(["/mnt/models", "/models/", "/opt/m/v1"]))
    if source is not oci_sources and draw(st.booleans()):
        ann["knscale.dev/model-credentials-secret"] = draw(names)
    if source is oci_sources:
        if draw(st.booleans()):
            ann["knscale.dev/model-sub-path"] = draw(paths).removeprefix("/data/")
        if draw(st.booleans()):
            ann["knscale.dev/model-pull-policy"] = draw(st.sampled_from(["Always", "IfNotPresent", "Never"]))
        return ann
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
def pods(draw: st.DrawFn, source: st.SearchStrategy[dict[str, str]] = sources) -> dict[str, Any]:
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
    meta: dict[str, Any] = {"generateName": "web-", "annotations": draw(annotations(source))}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
