"""Scenario 5b: `knscale.dev/scaling-policy: knscale` on a Deployment, on the real API server.

The knscale policy scales it through `scale`; the reconciler measures the pods' cold start from
their timestamps (creation → Ready, and the `knscale-model-init` download) and shows it in its
decision log and on `/metrics`; the policy's learned state lands on the Deployment as
`knscale.dev/scaling-state`. Pods are made Ready by kwok (creation → Ready in about a second,
an init container that starts and ends at once: what a cached or OCI model looks like); the test
rewrites the first pod's status as a model download would have left it: 20 s of download, Ready
25 s after creation. Load comes from a `--metrics-file` the test writes.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import apply_json, new_namespace, reconciler
from manifests import APP_IMAGE, workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KPA = "kpa.autoscaling.knative.dev"
STATE = "knscale.dev/scaling-state"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_downloaded(cp: ControlPlane, ns: str, name: str) -> None:
    """Rewrite a Ready pod's status: 20 s of model download, Ready 25 s after creation."""
    pod = cp.get("pod", name, ns)
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    status = pod["status"]
    for c in status["conditions"]:
        if c["type"] in ("Ready", "ContainersReady"):
            c["lastTransitionTime"] = _stamp(created + timedelta(seconds=25))
    for c in status.get("initContainerStatuses") or []:
        if c["name"] == "knscale-model-init":
            c["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": _stamp(created + timedelta(seconds=2)),
                    "finishedAt": _stamp(created + timedelta(seconds=22)),
                }
            }
    cp.kubectl("replace", "--subresource=status", "-f", "-", input=json.dumps(pod))


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:  # loopback only
        return str(r.read().decode())


def test_knscale_policy_scales_a_deployment_and_measures_its_cold_start(workloads: ControlPlane) -> None:
    cp = workloads
    ns = new_namespace(cp, "s5b-policy")
    name = "model"
    load = cp.root / "s5b-load.json"
    load.write_text(json.dumps({f"{ns}/{name}": {"concurrency": 5.0}}))
    annotations = {
        "autoscaling.knative.dev/class": KPA,
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
        "autoscaling.knative.dev/window": "6s",
        "autoscaling.knative.dev/panic-window-percentage": "40",
        "knscale.dev/scaling-policy": "knscale",
    }
    obj: dict[str, Any] = workload(name, replicas=1, annotations=annotations)
    obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "knscale-model-init", "image": APP_IMAGE}]
    apply_json(cp, ns, obj)
    cp.kubectl("rollout", "status", "-n", ns, f"deployment/{name}", "--timeout=60s", timeout=90)
    first = cp.kubectl("get", "pods", "-n", ns, "-l", f"app={name}", "-o", "name").stdout.split()[0]
    _as_downloaded(cp, ns, first.removeprefix("pod/"))
    port = _free_port()
    try:
        with reconciler(
            cp,
            "s5b",
            "--namespace",
            ns,
            "--no-leader-election",
            f"--metrics-file={load}",
            f"--metrics-port={port}",
        ) as rec:
            # 25 in flight on one pod, target 10 → 3 pods, decided by the knscale policy with S = the
            # one pod's measured start (25 s, of which 20 s download).
            load.write_text(json.dumps({f"{ns}/{name}": {"concurrency": 25.0}}))
            wait_until(
                lambda: cp.get("deployment", name, ns)["spec"]["replicas"] == 3,
                timeout=60,
                what="3 replicas",
                on_timeout=rec.tail,
            )
            scaled = wait_until(
                lambda: next((line for line in rec.text().splitlines() if "action=scaled" in line), None),
                timeout=10,
                what="the scaling decision in the log",
                on_timeout=rec.tail,
            )
            assert f"Deployment {ns}/{name}: policy=knscale " in scaled, scaled
            assert "cold_start=25 download=20 " in scaled, scaled
            wait_until(
                lambda: "knscale_reconciler_pod_start_seconds_count 3.0" in _metrics(port),
                timeout=30,
                what="three pod starts measured",
                on_timeout=rec.tail,
            )
            text = _metrics(port)
            assert 'knscale_reconciler_policy_decisions_total{policy="knscale",reason=' in text
            assert (
                f'knscale_reconciler_cold_start_seconds{{kind="Deployment",name="{name}",namespace="{ns}"}}'
                in text
            )
            # kwok's pods start at once with an instant init container: a cached model's start.
            assert 'knscale_reconciler_pod_model_download_seconds_bucket{le="1.0"} 2.0' in text, text

            # An idle gap, then load again: the policy learns the gap and stores it on the Deployment.
            load.write_text(json.dumps({f"{ns}/{name}": {"concurrency": 0.0}}))
            wait_until(
                lambda: cp.get("deployment", name, ns)["spec"]["replicas"] == 1,
                timeout=60,
                what="back to 1 replica",
                on_timeout=rec.tail,
            )
            load.write_text(json.dumps({f"{ns}/{name}": {"concurrency": 5.0}}))

            def stored_gap() -> str | None:
                text = (cp.get("deployment", name, ns)["metadata"].get("annotations") or {}).get(STATE)
                return text if text and '"n":1' in text else None

            # The first write (S alone) came at the first tick; the next waits out the 60 s throttle.
            stored = wait_until(
                stored_gap,
                timeout=90,
                what=f"{STATE} on the Deployment",
                on_timeout=rec.tail,
            )
            doc = json.loads(stored)
            assert doc["v"] == 1 and doc["n"] == 1 and len(stored) < 400, stored
            assert rec.alive(), rec.tail()
    finally:
        load.unlink(missing_ok=True)
