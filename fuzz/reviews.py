"""Seeded, structured generator of hostile AdmissionReviews (issue 16's campaign).

Every review starts from a plausible object — a Pod, a Deployment/StatefulSet or a Knative
Service asking for a model — whose annotation values come from a grammar of the tricks the
earlier campaigns found (traversal behind encodings, query or fragment; userinfo behind
whitespace or control characters; `$(VAR)` for the kubelet; hosts with ports, percent escapes
and backslashes; huge and unicode values). Then 0–3 mutations hit random places: wrong types,
missing fields, huge arrays, deep nesting, unicode and control characters, other operations,
dryRun, oldObject, either API version, duplicate keys in the raw JSON.

The same seed gives the same reviews (`random.Random(seed)`, no global state).
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Reviews nest up to ~1,200 levels deep (the API server admits that); json needs the room. The
# campaign's own process sets it (`fuzz.admission.main`), never an importer: a test process with a
# raised limit would hide the RecursionErrors the server meets at the default one.
RECURSION_LIMIT = 20_000


@contextmanager
def room_to_recurse() -> Iterator[None]:
    """The campaign's recursion limit for a block (writing deep reviews in a test), then back."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


DIGEST = "sha256:" + "ab" * 32
INJECT_KEYS = ("knscale.dev/inject-model", "injectModelInitContainer")
SOURCE_KEYS = ("knscale.dev/model-uri", "modelBucket", "modelPath")

_HOSTS = (
    "models.example.com",
    "evil.io",
    "evil.io%2e.models.example.com",
    "models.example.com:443",
    "models.example.com%3a443@evil.io",
    "[::1]",
    "127.0.0.1",
    "xn--bcher-kva.example",
    "evil.io\\.models.example.com",
    "MODELS.EXAMPLE.COM",
    "models.example.com.",
    "a" * 300,
)
_PATHS = (
    "m/v1/",
    "../etc",
    "m/%2e%2e",
    "m/..?x=1",
    "m/..#frag",
    "m/%2E%2E/x",
    "m%2f..%2fx",
    "m\\..\\x",
    "$(HOME)/m",
    "m/$(SECRET_KEY)",
    "m/$$(X)",
    "m/\u202e/x",
    "m/\x00/x",
    "m/" + "p" * 2000,
    "/abs/path/",
)
_USERINFO = ("", "", "", "user:secret@", "user@", " user:secret@", "\tu:p@", ":@")
_SCHEMES = ("s3", "gs", "https", "http", "hf", "pvc", "oci", "ftp", "file", "S3", "", " https")
_PREFIXES = ("", "", "", " ", "\x01", "\u00a0", "\ufeff")
_STRANGE = ("", " ", "\x00", "\x7f", "\u2028", "\U0001f600", "é", "\\", '"', "$(", "%", "\r\n", "a" * 70000)


_VALID_SOURCES = (
    "s3://bucket-a/models/m1/",
    "https://models.example.com/m/v1/model.bin",
    "hf://org1/model",
    "pvc://claim1/models",
    "http://x.example.org/m",
    "s3://bucket-z/",
)


def source(rng: random.Random) -> str:
    """Half the time a source the configured policies allow (so the patch path runs), else a trick."""
    if rng.random() < 0.5:
        return rng.choice(_VALID_SOURCES)
    scheme = rng.choice(_SCHEMES)
    sep = rng.choice(("://", "://", ":/", " ://", ":"))
    userinfo, host, path = rng.choice(_USERINFO), rng.choice(_HOSTS), rng.choice(_PATHS)
    value = f"{rng.choice(_PREFIXES)}{scheme}{sep}{userinfo}{host}/{path}"
    if rng.random() < 0.1:
        value += rng.choice(("?token=abc", "#x", "?a=b#c", "?X-Amz-Signature=s3cr3t"))
    return value


def _annotation_value(rng: random.Random) -> str:
    return rng.choice(
        (
            "true",
            "True",
            "false",
            "yes",
            "",
            "/mnt/models",
            "/mnt/../etc",
            "relative/path",
            "/mnt/$(HOME)",
            "2Gi",
            "-1Gi",
            "1e400",
            "0E1",
            "registry.example.com/dl/x@" + DIGEST,
            "evil.io/registry.example.com/dl/x:latest",
            "my-secret",
            "My_Secret",
            source(rng),
            rng.choice(_STRANGE),
        )
    )


def _annotations(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {rng.choice(INJECT_KEYS): rng.choice(("true", "true", "TRUE", "false", "1", ""))}
    out[rng.choice(SOURCE_KEYS[:2])] = source(rng)
    extra = (
        "knscale.dev/model-mount-path",
        "knscale.dev/model-init-image",
        "initContainerImage",
        "knscale.dev/model-credentials-secret",
        "knscale.dev/model-size-limit",
        "modelPath",
        "knscale.dev/lint-ignore",
        "autoscaling.knative.dev/target",
        "autoscaling.knative.dev/min-scale",
        "autoscaling.knative.dev/class",
    )
    for key in rng.sample(extra, rng.randint(0, 4)):
        out[key] = _annotation_value(rng)
    return out


def _container(rng: random.Random, name: str) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": f"ghcr.io/example/{name}@{DIGEST}"}
    if rng.random() < 0.3:
        c["volumeMounts"] = [{"name": "data", "mountPath": rng.choice(("/data", "/mnt/models", "/tmp"))}]
    if rng.random() < 0.2:
        c["env"] = [{"name": "TARGET", "value": "World"}, {"name": "HOME", "value": "$(X)"}]
    return c


def pod_spec(rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(rng, "user-container")]}
    if rng.random() < 0.5:
        spec["containers"].append(_container(rng, "queue-proxy"))
    if rng.random() < 0.3:
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    if rng.random() < 0.1:
        spec["initContainers"] = [_container(rng, rng.choice(("setup", "knscale-model-init")))]
    if rng.random() < 0.1:
        spec["securityContext"] = {"fsGroup": rng.choice((0, 2000, -1, "x"))}
    return spec


def _object(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    """The object and its `kind`/`resource` for the review."""
    anns = _annotations(rng)
    kind = rng.choices(("Pod", "Deployment", "StatefulSet", "Service"), weights=(6, 2, 1, 1))[0]
    md: dict[str, Any] = {"generateName": "hello-00001-deployment-", "namespace": "default"}
    if kind == "Pod":
        md["annotations"] = anns
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pod_spec(rng)}, {
            "group": "",
            "version": "v1",
            "kind": "Pod",
            "resource": "pods",
        }
    template = {"metadata": {"annotations": anns, "labels": {"app": "hello"}}, "spec": pod_spec(rng)}
    md = {"name": "hello", "namespace": "default"}
    if kind == "Service":
        obj = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": md}
        obj["spec"] = {"template": template}
        return obj, {
            "group": "serving.knative.dev",
            "version": "v1",
            "kind": "Service",
            "resource": "services",
        }
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": md}
    obj["spec"] = {"selector": {"matchLabels": {"app": "hello"}}, "template": template}
    resource = "deployments" if kind == "Deployment" else "statefulsets"
    return obj, {"group": "apps", "version": "v1", "kind": kind, "resource": resource}


# ---- mutations: each takes (rng, review) and changes it in place -------------------------


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, (*path, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        root = root[p]
    root[path[-1]] = value


def _pick(rng: random.Random, review: dict[str, Any]) -> tuple[Any, ...] | None:
    candidates = [p for p, _ in _nodes(review["request"]["object"]) if p]
    return ("request", "object", *rng.choice(candidates)) if candidates else None


def _wrong_type(rng: random.Random, review: dict[str, Any]) -> None:
    path = _pick(rng, review)
    if path is not None:
        _set(review, path, rng.choice((None, 0, -1, 2**63, 1.5, True, "x", [], {}, ["a"], {"a": 1})))


def _missing(rng: random.Random, review: dict[str, Any]) -> None:
    path = _pick(rng, review)
    if path is None:
        return
    parent: Any = review
    for p in path[:-1]:
        parent = parent[p]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and parent:
        parent.pop(path[-1])


def _huge_array(rng: random.Random, review: dict[str, Any]) -> None:
    spec = _pod_spec_of(review["request"]["object"])
    if not isinstance(spec, dict):
        return
    n = rng.choice((100, 1000, 5000))
    field = rng.choice(("containers", "volumes", "initContainers"))
    if field == "volumes":
        spec[field] = [{"name": f"v{i}", "emptyDir": {}} for i in range(n)]
    else:
        spec[field] = [
            {"name": f"c{i}", "image": "x", "env": [{"name": "A", "value": "b"}]} for i in range(n)
        ]


def _deep(rng: random.Random, review: dict[str, Any]) -> None:
    path = _pick(rng, review)
    if path is None:
        return
    value: Any = "leaf"
    for _ in range(rng.choice((50, 500, 1000, 1100))):
        value = {"a": value} if rng.random() < 0.5 else [value]
    _set(review, path, value)


def _strange_text(rng: random.Random, review: dict[str, Any]) -> None:
    path = _pick(rng, review)
    if path is not None:
        _set(review, path, rng.choice(_STRANGE) + rng.choice(("", "x", source(rng))))


def _strange_key(rng: random.Random, review: dict[str, Any]) -> None:
    md = review["request"]["object"].get("metadata")
    if isinstance(md, dict):
        anns = md.setdefault("annotations", {})
        if isinstance(anns, dict):
            anns[rng.choice(_STRANGE) + "knscale.dev/model-uri"] = source(rng)


def _operation(rng: random.Random, review: dict[str, Any]) -> None:
    request = review["request"]
    request["operation"] = rng.choice(("UPDATE", "DELETE", "CONNECT", "create", "", 7))
    if rng.random() < 0.5:
        request["oldObject"] = json.loads(json.dumps(request["object"]))


def _dry_run(rng: random.Random, review: dict[str, Any]) -> None:
    review["request"]["dryRun"] = rng.choice((True, False, "true", None))


def _envelope(rng: random.Random, review: dict[str, Any]) -> None:
    request = review["request"]
    key = rng.choice(("kind", "resource", "namespace", "userInfo", "options", "subResource"))
    request[key] = rng.choice((None, 1, "x", [], {"group": 5}))


MUTATIONS = (
    _wrong_type,
    _missing,
    _huge_array,
    _deep,
    _strange_text,
    _strange_key,
    _operation,
    _dry_run,
    _envelope,
)


def _pod_spec_of(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if isinstance(spec, dict) and obj.get("kind") != "Pod":
        template = spec.get("template")
        return template.get("spec") if isinstance(template, dict) else None
    return spec


@dataclass(frozen=True, slots=True)
class Review:
    """One review to send: its raw body, its uid (None when the envelope has none) and kind."""

    body: bytes
    uid: str | None
    kind: str
    api_version: str
    mutations: tuple[str, ...]


def _duplicate_key(rng: random.Random, text: str) -> str:
    marker = '"annotations": {'
    at = text.find(marker)
    if at < 0:
        return text
    dup = json.dumps(rng.choice(SOURCE_KEYS)) + ": " + json.dumps(source(rng)) + ", "
    dup += json.dumps(rng.choice(INJECT_KEYS)) + ': "true", '
    end = at + len(marker)
    pair = dup + dup
    if text[end:].lstrip().startswith("}"):
        pair = pair[: -len(", ")]  # an empty map: no comma after the last pair (JSON has no trailing commas)
    return text[:end] + pair + text[end:]


def review(rng: random.Random) -> Review:
    obj, kind = _object(rng)
    uid = str(uuid.UUID(int=rng.getrandbits(128)))
    api_version = rng.choice(("admission.k8s.io/v1", "admission.k8s.io/v1", "admission.k8s.io/v1beta1"))
    body: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {k: kind[k] for k in ("group", "version", "kind")},
            "resource": {"group": kind["group"], "version": kind["version"], "resource": kind["resource"]},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj,
            "dryRun": False,
        },
    }
    applied = tuple(rng.sample(MUTATIONS, rng.choice((0, 0, 1, 1, 2, 3))))
    for mutate in applied:
        mutate(rng, body)
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.05:
        text = _duplicate_key(rng, text)
    names = tuple(m.__name__.lstrip("_") for m in applied)
    return Review(text.encode("utf-8", "surrogatepass"), uid, kind["kind"], api_version, names)
