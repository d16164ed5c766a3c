"""Scenario 9: the shared model cache through the real admission chain — the API server stores the
pod injected with the cache claim, knscale's cache script and read-only entry mounts, and refuses a
bad claim name with KNS046."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cluster import ControlPlane
from knscale_procs import Webhook, new_namespace

from translator.injection.cache import CACHE_ROOT, SCRIPT
from translator.injection.cache_script import cache_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

URI = "s3://models/resnet/v2/"


def _pod(claim: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "cached",
            "annotations": {
                "knscale.dev/inject-model": "true",
                "knscale.dev/model-uri": URI,
                "knscale.dev/model-cache": claim,
            },
        },
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }


def test_cached_pod_is_stored_with_the_claim_and_read_only_entry_mounts(
    control_plane: ControlPlane, webhook: Webhook
) -> None:
    ns = new_namespace(control_plane, "s9-cache")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "model-cache"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}}},
    }
    control_plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(claim))
    control_plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(_pod("model-cache")))
    stored = control_plane.get("pod", "cached", ns)
    spec = stored["spec"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "knscale-model"]
    assert volume["persistentVolumeClaim"] == {"claimName": "model-cache"}
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "knscale-model"]
    assert mount == {
        "name": "knscale-model",
        "mountPath": "/mnt/models",
        "readOnly": True,
        "subPath": cache_key(URI),
    }
    [init] = spec["initContainers"]
    assert init["command"] == ["python3", "-c", SCRIPT]
    assert init["args"][:3] == [URI, CACHE_ROOT, cache_key(URI)]
    assert {"name": "knscale-model", "mountPath": CACHE_ROOT} in init["volumeMounts"]
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert stored["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"


def test_a_bad_claim_name_is_denied_with_kns040(control_plane: ControlPlane, webhook: Webhook) -> None:
    ns = new_namespace(control_plane, "s9-bad")
    done = control_plane.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps(_pod("Model_Cache")), check=False
    )
    assert done.returncode != 0
    assert "denied the request" in done.stderr and "KNS046" in done.stderr, done.stderr
