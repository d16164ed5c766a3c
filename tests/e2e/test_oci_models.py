"""Issue 15: `oci://` model images through the real admission chain (docs/annotations.md, "Three
ways to deliver a model"). Asserted on what the API server stored; no image is ever pulled (no
node runs these pods, and no registry is reachable).

1. The session's kube-apiserver (v1.36: image volumes GA) with a `knscale serve` whose settings
   say `min_kubernetes_version: "1.36"` (so `oci_mode` defaults to image-volume): the stored pod
   has the image volume, mounted read-only with the model dir as subPath, and no initContainer;
   a tag gets the KNS040 warning; a pod re-created from the stored one gets no second volume.
2. A second kube-apiserver started with `--emulated-version=1.35 --feature-gates=ImageVolume=false`
   (1.36 locks the gate on; emulating 1.35 makes it settable): in image-volume mode the API
   server silently drops the image volume and its mounts (`dropImageVolumes`), which is why copy
   mode exists; with `oci_mode: copy` the stored pod has the copying initContainer and emptyDir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, Toolchain, running_control_plane
from knscale_procs import Webhook, new_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DIGEST = "sha256:" + "3f" * 32
IMAGE = f"registry.example.com/models/resnet@{DIGEST}"
OPT_IN = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": f"oci://{IMAGE}"}
GATE_OFF = ("--emulated-version=1.35", "--feature-gates=ImageVolume=false")


def _pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    containers = [{"name": "app", "image": "registry.example.com/server:1"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": containers},
    }


def _create(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """kubectl create; the stored object and kubectl's stderr (admission warnings)."""
    done = cp.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj))
    return cp.get("pod", obj["metadata"]["name"], ns), done.stderr


def _model_volumes(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in pod["spec"].get("volumes") or [] if v["name"].startswith("knscale-model")]


def _model_mounts(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in container.get("volumeMounts") or [] if m["name"] == "knscale-model"]


def _webhook(cp: ControlPlane, name: str, settings: str) -> Webhook:
    config = cp.root / f"{name}.yaml"
    config.write_text(settings)
    hook = Webhook(cp, name, serve_args=[f"--config={config}"])
    try:
        hook.start()
        hook.register()
    except ControlPlaneError as exc:
        hook.stop()
        pytest.fail(f"{name} did not start: {exc}\n{hook.tail()}", pytrace=False)
    return hook


@pytest.fixture(scope="module")
def image_volume_webhook(control_plane: ControlPlane, webhook: Webhook) -> Iterator[Webhook]:
    hook = _webhook(control_plane, "webhook-oci", 'injection:\n  min_kubernetes_version: "1.36"\n')
    try:
        yield hook
    finally:
        webhook.register()  # back to the session's webhook
        hook.stop()


@pytest.fixture(scope="module")
def gate_off(toolchain: Toolchain) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(toolchain, install_crds=False, apiserver_flags=GATE_OFF) as cp:
            yield cp
    except ControlPlaneError as exc:
        pytest.fail(f"kube-apiserver with ImageVolume=false did not start: {exc}", pytrace=False)


def test_oci_digest_is_stored_as_a_read_only_image_volume(
    control_plane: ControlPlane, image_volume_webhook: Webhook
) -> None:
    ns = new_namespace(control_plane, "oci-vol")
    annotations = {**OPT_IN, "knscale.dev/model-sub-path": "resnet/v2"}
    stored, stderr = _create(control_plane, ns, _pod("digest", annotations))
    assert "KNS040" not in stderr, stderr
    assert _model_volumes(stored) == [
        {"name": "knscale-model", "image": {"reference": IMAGE, "pullPolicy": "IfNotPresent"}}
    ]
    assert not stored["spec"].get("initContainers"), image_volume_webhook.tail()
    assert _model_mounts(stored["spec"]["containers"][0]) == [
        {"name": "knscale-model", "mountPath": "/mnt/models", "readOnly": True, "subPath": "models/resnet/v2"}
    ]
    assert stored["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
    assert not (stored["spec"].get("securityContext") or {}).get("fsGroup")

    # Re-admission: the stored (injected) pod created again under another name gets nothing more.
    again = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "digest-again", "annotations": stored["metadata"]["annotations"]},
        "spec": {
            "containers": [
                {"name": c["name"], "image": c["image"], "volumeMounts": _model_mounts(c)}
                for c in stored["spec"]["containers"]
            ],
            "volumes": _model_volumes(stored),
        },
    }
    second, _ = _create(control_plane, ns, again)
    assert _model_volumes(second) == _model_volumes(stored)
    assert len(_model_mounts(second["spec"]["containers"][0])) == 1


def test_oci_tag_warns_that_tags_are_mutable(
    control_plane: ControlPlane, image_volume_webhook: Webhook
) -> None:
    ns = new_namespace(control_plane, "oci-tag")
    tagged = {**OPT_IN, "knscale.dev/model-uri": "oci://registry.example.com/models/resnet:v2"}
    stored, stderr = _create(control_plane, ns, _pod("tagged", tagged))
    assert "Warning: KNS040" in stderr, (stderr, image_volume_webhook.tail())
    assert _model_volumes(stored)[0]["image"] == {
        "reference": "registry.example.com/models/resnet:v2",
        "pullPolicy": "IfNotPresent",
    }


def test_gate_off_drops_image_volumes_and_copy_mode_is_stored(gate_off: ControlPlane) -> None:
    cp = gate_off
    hook = _webhook(cp, "webhook-oci-volume", "injection:\n  oci_mode: image-volume\n")
    try:
        ns = new_namespace(cp, "oci-off")
        dropped, _ = _create(cp, ns, _pod("dropped", dict(OPT_IN)))
    finally:
        hook.stop()
    # Injected (the marker is there), then dropped by the API server: the pod has no model.
    assert dropped["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"
    assert _model_volumes(dropped) == []
    assert _model_mounts(dropped["spec"]["containers"][0]) == []

    hook = _webhook(cp, "webhook-oci-copy", "injection:\n  oci_mode: copy\n")
    try:
        ns = new_namespace(cp, "oci-copy")
        stored, stderr = _create(
            cp,
            ns,
            _pod(
                "copied",
                {
                    **OPT_IN,
                    "knscale.dev/model-sub-path": "resnet",
                    "knscale.dev/model-mount-path": "/mnt/m$(B)",
                },
            ),
        )
    finally:
        hook.stop()
    assert "KNS040" not in stderr, stderr
    assert [v["name"] for v in _model_volumes(stored)] == [
        "knscale-model",
        "knscale-model-tmp",
        "knscale-model-home",
    ]
    assert _model_volumes(stored)[0]["emptyDir"] == {}
    (init,) = stored["spec"]["initContainers"]
    assert init["name"] == "knscale-model-init"
    assert init["image"] == IMAGE
    # The kubelet expands $(B) in a command: the user's text goes in with `$` doubled.
    assert init["command"] == ["cp", "-R", "--", "/models/resnet/.", "/mnt/m$$(B)"]
    assert "args" not in init
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "knscale-model", "mountPath": "/mnt/m$(B)"} in init["volumeMounts"]
    assert _model_mounts(stored["spec"]["containers"][0]) == [
        {"name": "knscale-model", "mountPath": "/mnt/m$(B)", "readOnly": True}
    ]
    assert stored["spec"]["securityContext"]["fsGroup"] == 1000
