"""Scenario 10: knscale's autoscaler class (autoscaling.knscale.dev) through the real Knative Serving.

Knative's controller and webhook run (knative_cp.py); Knative's autoscaler does not — knscale's
reconciler is the autoscaler for this class. `kn service create` with the class → Knative's webhook
admits it (not a `*.knative.dev` class) → Knative's controller makes the Revision, its Deployment and
a PodAutoscaler of knscale's class → knscale creates the ServerlessService (Proxy first, as Knative's
KPA does), and once it reports a private service, scales the Deployment and writes the PA status →
the Revision, and with the Ingress marked Ready the Service, become Ready.

Metrics are scripted on loopback: every pod of the revision is scraped at one fake queue-proxy
(`--pod-address-override hello-00001-deployment-*=…`), and the activator probe goes to a loopback
server answering `activator` (`--activator-probe-address`). What Knative's SKS reconciler (in the
autoscaler binary, not run) would report is written by the test: Ready with its services, and,
once knscale asks for Proxy mode, the activator endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, wait_until
from knative_cp import KnativeServing, digest_image
from knscale_procs import Reconciler, StatServer, _Server, new_namespace, reconciler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

KNSCALE_CLASS = "autoscaling.knscale.dev"
IMAGE = digest_image("registry.knscale.invalid/hello", "hello-s10")
NAME = "hello"
REVISION = f"{NAME}-00001"
WAIT_S = 90.0


def _conds(obj: dict[str, Any] | None) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj or {}).get("status", {}).get("conditions") or []}


def _sks_status(cp: ControlPlane, ns: str, *, activator_since: str | None = None) -> None:
    """What Knative's SKS reconciler would report: the services exist; in Proxy mode the
    activator endpoints back the public service."""
    sks = cp.get("serverlessservice", REVISION, ns)
    since = "2026-01-01T00:00:00Z"
    activator = (
        {"type": "ActivatorEndpointsPopulated", "status": "True", "lastTransitionTime": activator_since}
        if activator_since
        else {"type": "ActivatorEndpointsPopulated", "status": "False", "reason": "ServeMode",
              "lastTransitionTime": since}
    )  # fmt: skip
    status = {
        "serviceName": REVISION,
        "privateServiceName": f"{REVISION}-private",
        "observedGeneration": sks["metadata"]["generation"],
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": since},
            {"type": "EndpointsPopulated", "status": "True", "lastTransitionTime": since},
            activator,
        ],
    }
    cp.kubectl(
        "patch", "serverlessservice", REVISION, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


@pytest.fixture
def grace_config(workloads: ControlPlane) -> Iterator[Path]:
    path = workloads.root / "s10-knscale-config.yaml"
    path.write_text("autoscaler:\n  scale_to_zero_grace_period: 2s\n")
    yield path
    path.unlink(missing_ok=True)


def test_knscale_class_service_becomes_ready_scales_up_and_to_zero_through_proxy(
    workloads: ControlPlane, knative: KnativeServing, grace_config: Path
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s10")
    queue = StatServer("queue-proxy")
    activator = _Server(
        lambda path: (200, "text/plain", b"activator") if path == "/healthz" else (404, "", b"")
    )
    try:
        with reconciler(
            cp, "s10", "--namespace", ns, "--no-leader-election", f"--config={grace_config}",
            f"--pod-address-override={REVISION}-deployment-*={queue.address}",
            f"--activator-probe-address={activator.address}",
        ) as rec:  # fmt: skip
            _run(cp, knative, ns, rec, queue, activator)
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        queue.close()
        activator.close()


def _run(
    cp: ControlPlane, knative: KnativeServing, ns: str, rec: Reconciler, queue: StatServer, activator: _Server
) -> None:
    def diag() -> str:
        return f"{knative.tails()}\n--- reconciler ---\n{rec.tail(40)}"

    annotations = {
        "autoscaling.knative.dev/class": KNSCALE_CLASS,
        "knscale.dev/scaling-policy": "kpa",
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
        "autoscaling.knative.dev/window": "6s",
        "autoscaling.knative.dev/panic-window-percentage": "40",
        "autoscaling.knative.dev/target-burst-capacity": "0",  # the activator only at zero
        "autoscaling.knative.dev/max-scale": "4",
    }
    args = ["service", "create", NAME, "-n", ns, "--image", IMAGE, "--no-wait"]
    for key, value in annotations.items():
        args += ["--annotation-revision", f"{key}={value}"]
    done = cp.kn(*args)
    assert f"Service '{NAME}' created" in done.stdout, done.stdout + done.stderr

    pa = wait_until(
        lambda: cp.find("podautoscaler", REVISION, ns), timeout=WAIT_S, what="the PA", on_timeout=diag
    )
    assert pa["metadata"]["annotations"]["autoscaling.knative.dev/class"] == KNSCALE_CLASS
    # knscale: the SKS, owned by the PA, first in Proxy mode with the minimum of activators.
    sks = wait_until(
        lambda: cp.find("serverlessservice", REVISION, ns), timeout=WAIT_S, what="the SKS", on_timeout=diag
    )
    assert sks["metadata"]["ownerReferences"][0]["uid"] == pa["metadata"]["uid"]
    assert (sks["spec"]["mode"], sks["spec"]["numActivators"]) == ("Proxy", 2)
    _sks_status(cp, ns)

    wait_until(
        lambda: _conds(cp.find("podautoscaler", REVISION, ns)).get("Ready") == "True",
        timeout=WAIT_S, what="the PA Ready (knscale)", on_timeout=diag,
    )  # fmt: skip
    wait_until(
        lambda: _conds(cp.find("revision", REVISION, ns)).get("Ready") == "True",
        timeout=WAIT_S, what="the Revision Ready (Knative's controller)", on_timeout=diag,
    )  # fmt: skip
    knative.mark_ingress_ready(ns, NAME)
    wait_until(
        lambda: _conds(cp.find("ksvc", NAME, ns)).get("Ready") == "True",
        timeout=WAIT_S, what="the Knative Service Ready", on_timeout=diag,
    )  # fmt: skip
    status = cp.get("podautoscaler", REVISION, ns)["status"]
    assert (status["serviceName"], status["metricsServiceName"]) == (REVISION, f"{REVISION}-private")

    def replicas() -> int | None:
        value = (cp.find("deployment", f"{REVISION}-deployment", ns) or {}).get("spec", {}).get("replicas")
        return value if isinstance(value, int) else None

    # Scale up: 25 in flight per pod at a target of 10 → 3 pods, then more while each stays loaded,
    # up to max-scale 4; the SKS leaves Proxy (TBC 0: EBC 0 ≥ 0 with pods wanted).
    queue.concurrency = 25.0
    wait_until(lambda: replicas() == 4, timeout=WAIT_S, what="scale up to max-scale 4", on_timeout=diag)
    wait_until(
        lambda: cp.get("serverlessservice", REVISION, ns)["spec"]["mode"] == "Serve",
        timeout=WAIT_S, what="the SKS in Serve mode", on_timeout=diag,
    )  # fmt: skip
    assert cp.get("podautoscaler", REVISION, ns)["status"]["desiredScale"] == 4

    # Idle: down, the PA goes Inactive and asks for Proxy; only once the activator is in the path
    # (endpoints populated, probe answered) for the 2 s grace period does the last pod go.
    queue.concurrency = 0.0
    wait_until(
        lambda: cp.get("serverlessservice", REVISION, ns)["spec"]["mode"] == "Proxy",
        timeout=WAIT_S, what="the SKS back in Proxy mode", on_timeout=diag,
    )  # fmt: skip
    assert _conds(cp.get("podautoscaler", REVISION, ns))["Active"] == "False"
    assert replicas() != 0  # the activator is not in the path yet
    _sks_status(cp, ns, activator_since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    wait_until(lambda: replicas() == 0, timeout=WAIT_S, what="scale to zero", on_timeout=diag)
    assert activator.requests >= 1  # the probe went through the activator stand-in
    pa_status = cp.get("podautoscaler", REVISION, ns)["status"]
    assert pa_status["desiredScale"] == 0
    assert _conds(cp.get("revision", REVISION, ns)).get("Ready") == "True"  # idle, not broken
    assert rec.alive(), rec.tail()
