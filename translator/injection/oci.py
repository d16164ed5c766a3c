"""`oci://REGISTRY/REPO[:tag][@sha256:…]`: a model shipped as an OCI image (docs/annotations.md,
"Three ways to deliver a model").

Two modes (`injection.oci_mode`; unset, it follows `injection.min_kubernetes_version`: image
volumes are beta and on by default from Kubernetes 1.35, GA in 1.36):

* `image-volume`: the image is a pod volume (`volumes[].image`), mounted read-only into every app
  container with `subPath` = `injection.oci_model_dir` (+ `knscale.dev/model-sub-path`). No
  initContainer, no emptyDir, nothing downloaded: the kubelet pulls the image like a container's.
* `copy`: for clusters or runtimes without image volumes. The initContainer `knscale-model-init`
  runs the model image itself and copies its model directory into the shared emptyDir:
  `cp -R -- <oci_model_dir>[/<sub-path>]/. <mount path>`. The image must hold a `cp` (busybox or
  coreutils: KServe's modelcars are `FROM busybox` with the model under `/models`), and its files
  must be readable by `injection.run_as_user`.

The registry host is the source location: `injection.source_allowlist` applies to it (a pattern
with a path, `oci://registry.example.com/models/*`, also matches the repository, with
`translator.core.images` rules). In copy mode the model image runs as a container, so
`injection.image_allowlist`, when set, applies to it as well (KNS044).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.annotations.model_keys import (
    BARE_BUCKET,
    BARE_IMAGE,
    CREDENTIALS_SECRET,
    INIT_IMAGE,
    MODEL_URI,
    PULL_POLICY,
    SIZE_LIMIT,
    SUB_PATH,
)
from translator.config.knscale import InjectionConfig, OciMode
from translator.core.findings import Finding, ObjectRef
from translator.core.images import image_matches, parse_image
from translator.core.names import is_image_reference
from translator.core.rule_ids import RuleId
from translator.core.rules import RULES
from translator.injection.common import MODEL_VOLUME, kubelet_literal
from translator.injection.reader import Reader
from translator.injection.uri import Host, has_dotdot, host_allowed

OCI_SCHEME = "oci"
IMAGE_VOLUME: OciMode = "image-volume"
COPY: OciMode = "copy"
IMAGE_VOLUMES_ON_BY_DEFAULT = (1, 35)  # kube_features.go: ImageVolume beta, default true
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
COPY_COMMAND = ("cp", "-R", "--")
KNATIVE_IMAGE_VOLUME_FEATURE = "kubernetes.podspec-volumes-image"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z|sha512:[0-9a-f]{128}\Z")
_SUB_PATH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*/?\Z")
_EXAMPLE = "oci://registry.example.com/models/resnet@sha256:<64 hex digits>"


def oci_mode(cfg: InjectionConfig) -> OciMode:
    if cfg.oci_mode is not None:
        return cfg.oci_mode
    major, _, minor = cfg.min_kubernetes_version.partition(".")
    return IMAGE_VOLUME if (int(major), int(minor)) >= IMAGE_VOLUMES_ON_BY_DEFAULT else COPY


@dataclass(frozen=True, slots=True)
class OciRequest:
    reference: str  # the image, as written after oci://
    mode: OciMode
    pull_policy: str
    sub_path: str  # oci_model_dir[/sub-path] without the leading '/': the image volume's subPath

    @property
    def copy_source(self) -> str:
        return "/" + self.sub_path


def reference_problem(reference: str) -> str | None:
    """Why the text after `oci://` cannot name a model image, or None."""
    if not is_image_reference(reference) or "/" not in reference:
        return "is not an image reference (oci://registry/repository[:tag][@sha256:…])"
    first = reference.partition("/")[0]
    if not ("." in first or ":" in first or first == "localhost"):
        # The runtime would read `org/model` as docker.io/org/model: the allowlist would judge
        # another registry than the one pulled from.
        return f"names no registry host ({first!r} would be read as a repository on docker.io)"
    digest = parse_image(reference).digest
    if digest is not None and not _DIGEST.match(digest):
        return f"has a digest that is not sha256:<64 hex> or sha512:<128 hex> ({digest[:80]!r})"
    return None


def oci_allowed(host: Host, reference: str, patterns: tuple[str, ...]) -> bool:
    """A host pattern (optionally `oci://`-qualified) admits any repository on that registry; a
    pattern with a path is matched as an image allowlist pattern (host, then path segments)."""
    for pattern in patterns:
        scheme, sep, body = pattern.partition("://")
        if sep and scheme.lower() != OCI_SCHEME:
            continue
        body = body if sep else pattern
        if "/" in body:
            if image_matches(reference, body):
                return True
        elif host_allowed(OCI_SCHEME, host, (pattern,)):
            return True
    return False


def read_oci_request(r: Reader, scheme: str | None, uri: str | None) -> OciRequest | None:
    """The oci:// keys of an annotations map (None for another source, or on an error)."""
    ann = r.ann
    if scheme != OCI_SCHEME or uri is None:
        if scheme is not None:
            for key in (PULL_POLICY, SUB_PATH):
                if key in ann:
                    r.add(
                        RuleId.KNS043,
                        key,
                        ann[key],
                        f"{key} has no effect: only an oci:// model image has a pull policy and a sub-path",
                        f"remove {key}",
                    )
        return None
    reference = uri.partition("://")[2]
    mode = oci_mode(r.config)
    image = parse_image(reference)
    key = MODEL_URI if MODEL_URI in ann else BARE_BUCKET
    if image.digest is None:
        r.add(
            RuleId.KNS040,
            key,
            uri,
            f"the model image is named by its tag {image.tag or 'latest'!r}; a tag can move to another "
            "image, so pods may get different models",
            f"pin the digest: {key}: {_EXAMPLE}",
        )
    policy = r.get(PULL_POLICY)
    if policy is None:
        # Kubernetes' own default (pkg/apis/core/v1/defaults.go), written out so a template diff
        # never sees the API server's defaulting as a change.
        policy = "Always" if image.digest is None and image.tag in (None, "latest") else "IfNotPresent"
    elif policy not in PULL_POLICIES:
        r.add(
            RuleId.KNS041,
            PULL_POLICY,
            policy,
            f"{policy!r} is not a pull policy",
            f"set {PULL_POLICY}: IfNotPresent",
        )
        return None
    sub = r.get(SUB_PATH)
    if sub is not None:
        if has_dotdot(sub):
            r.add(
                RuleId.KNS010,
                SUB_PATH,
                sub,
                "the sub-path contains a '..' segment",
                f"write {SUB_PATH}: resnet/v2",
            )
            return None
        if not _SUB_PATH.match(sub):
            r.add(
                RuleId.KNS042,
                SUB_PATH,
                sub,
                f"{sub!r} is not a relative directory (letters, digits, . _ - separated by /)",
                f"write {SUB_PATH}: resnet/v2 (below injection.oci_model_dir {r.config.oci_model_dir})",
            )
            return None
    for other in (INIT_IMAGE, BARE_IMAGE, CREDENTIALS_SECRET) + (
        (SIZE_LIMIT,) if mode == IMAGE_VOLUME else ()
    ):
        if other in ann:
            why = (
                "a private registry's credentials are the pod's imagePullSecrets"
                if other == CREDENTIALS_SECRET
                else "nothing is copied into an emptyDir in image-volume mode"
                if other == SIZE_LIMIT
                else "the model image is pulled as it is; no downloader runs"
            )
            r.add(
                RuleId.KNS043,
                other,
                ann[other],
                f"{other} has no effect with an oci:// source: {why}",
                f"remove {other}",
            )
    allow = r.config.image_allowlist
    if mode == COPY and allow is not None and not any(image_matches(reference, p) for p in allow):
        r.add(
            RuleId.KNS044,
            key,
            uri,
            f"in copy mode the model image {reference} runs as knscale-model-init, and it is not on "
            "injection.image_allowlist",
            "use an allowed model image, or ask the cluster admin to extend injection.image_allowlist",
        )
        return None
    parts = [r.config.oci_model_dir.strip("/"), (sub or "").strip("/")]
    return OciRequest(reference, mode, policy, "/".join(p for p in parts if p))


def oci_volume(oci: OciRequest) -> dict[str, Any]:
    return {"name": MODEL_VOLUME, "image": {"reference": oci.reference, "pullPolicy": oci.pull_policy}}


def make_copy_container(container: dict[str, Any], oci: OciRequest, mount_path: str) -> None:
    """Turn the downloader `container` into copy mode's: the model image copying its model dir.

    `command`, as `args`, is `$(NAME)`-expanded by the kubelet: the user's text goes in as a
    kubelet literal (common.kubelet_literal)."""
    container["image"] = oci.reference
    container["imagePullPolicy"] = oci.pull_policy
    del container["args"]
    container["command"] = [
        *COPY_COMMAND,
        kubelet_literal(oci.copy_source.rstrip("/") + "/."),
        kubelet_literal(mount_path),
    ]


def knative_template_findings(
    oci: OciRequest | None, ref: ObjectRef, path: str, annotations: Mapping[str, Any]
) -> list[Finding]:
    """KNS045 on a Knative Service/Configuration whose model is an image volume."""
    if oci is None or oci.mode != IMAGE_VOLUME:
        return []
    key = MODEL_URI if MODEL_URI in annotations else BARE_BUCKET
    return [
        RULES[RuleId.KNS045].finding(
            ref,
            path,
            key,
            annotations.get(key),
            "knscale adds the model's image volume to each revision pod (pod webhook), never to the "
            "template, also in template mode: Knative Serving refuses image volumes in a template "
            f"unless config-features has {KNATIVE_IMAGE_VOLUME_FEATURE}: enabled (off by default)",
            None,
        )
    ]
