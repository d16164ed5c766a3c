"""Scenario 6: faults — the webhook process killed, its certificate rotated under load, and
(reconciler) the leader of two replicas killed.

Webhook: `/mutate` is registered with failurePolicy Fail and CEL matchConditions on the inject
keys, `/validate` with failurePolicy Ignore (webhook/registration.py). With the server dead, a
pod that asks for a model must be refused (it must never start without its model), and
everything else must be admitted as if knscale were not installed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Reconciler, Webhook, apply_json, new_namespace
from manifests import workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INJECT = {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": "s3://models/resnet/"}


def _pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
    }


def _create(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> tuple[int, str]:
    done = cp.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)
    return done.returncode, done.stderr


def _init_names(cp: ControlPlane, ns: str, name: str) -> list[str]:
    return [c["name"] for c in cp.get("pod", name, ns)["spec"].get("initContainers") or []]


@pytest.fixture
def restart_webhook_after(webhook: Webhook) -> Any:
    """Whatever a fault test does to the shared webhook, later tests find it serving again."""
    yield webhook
    if webhook.component is None or not webhook.component.alive():
        webhook.start()


def test_webhook_killed_follows_failure_policy_and_recovers(
    control_plane: ControlPlane, restart_webhook_after: Webhook
) -> None:
    cp, hook = control_plane, restart_webhook_after
    ns = new_namespace(cp, "s6-kill")
    code, err = _create(cp, ns, _pod("before", INJECT))
    assert code == 0, err
    assert _init_names(cp, ns, "before") == ["knscale-model-init"]

    hook.kill()

    # failurePolicy Fail on /mutate: a pod that asks for a model is refused, not started without it.
    code, err = _create(cp, ns, _pod("asks-while-down", INJECT))
    assert code != 0
    assert 'failed calling webhook "inject-model.knscale.dev"' in err, err
    assert "connection refused" in err, err
    assert not cp.exists("pod", "asks-while-down", ns)
    # The seed's bare keys are matched by the same CEL condition.
    code, err = _create(
        cp, ns, _pod("seed-while-down", {"injectModelInitContainer": "true", "modelBucket": "b"})
    )
    assert code != 0 and "inject-model.knscale.dev" in err, err

    # matchConditions: a pod without an inject key never reaches /mutate — unaffected.
    code, err = _create(cp, ns, _pod("plain-while-down", {}))
    assert code == 0, err
    # Model keys without the flag (and autoscaling keys) only go to /validate: failurePolicy Ignore.
    code, err = _create(cp, ns, _pod("keys-while-down", {"modelBucket": "b", "modelPath": "/m/"}))
    assert code == 0, err
    kpa = {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/max-scale": "3",
    }
    deployment = workload("web", replicas=0, annotations=kpa)
    code, err = _create(cp, ns, deployment)
    assert code == 0, err
    assert cp.exists("deployment.apps", "web", ns)

    # Restarted on the same port (same URL, same CA): admissions recover without re-registering.
    hook.start()
    code, err = _create(cp, ns, _pod("after", INJECT))
    assert code == 0, err
    assert _init_names(cp, ns, "after") == ["knscale-model-init"]


def _registered_ca_bundles(cp: ControlPlane) -> set[str]:
    bundles = set()
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        for w in cp.get(kind, "knscale-webhook")["webhooks"]:
            bundles.add(w["clientConfig"]["caBundle"])
    return bundles


def test_certificate_rotation_under_load_fails_no_admission(
    control_plane: ControlPlane, restart_webhook_after: Webhook
) -> None:
    """`knscale certs` re-run with a changed name renews the leaf under the same CA; the server
    picks the new files up while pods that ask for a model keep being created — none fails."""
    cp, hook = control_plane, restart_webhook_after
    ns = new_namespace(cp, "s6-rot")
    ca_before = hook.ca_file.read_bytes()
    bundle = base64.b64encode(ca_before).decode()
    assert _registered_ca_bundles(cp) == {bundle}
    served = [hook.served_certificate()]

    created: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            name = f"p{i:03d}"
            code, err = _create(cp, ns, _pod(name, INJECT))
            (created if code == 0 else failures).append(name if code == 0 else f"{name}: {err.strip()}")
            i += 1

    worker = threading.Thread(target=load, name="pod-load", daemon=True)
    worker.start()
    try:
        wait_until(lambda: len(created) >= 3 or bool(failures), timeout=30, what="pods before rotation")
        for rotation in range(3):
            before = len(created)
            line = hook.certs("--dns", f"rotation-{rotation}.knscale.test")
            assert line.startswith("renewed certificates"), line
            changed = wait_until(
                lambda: (der := hook.served_certificate()) != served[-1] and der,
                timeout=20,
                what=f"the server to serve the rotation-{rotation} leaf",
            )
            served.append(changed)
            # Admissions carried on across the switch.
            wait_until(
                lambda b=before: len(created) >= b + 3 or bool(failures),
                timeout=30,
                what="pods after rotation",
            )
    finally:
        stop.set()
        worker.join(timeout=60)

    assert not failures, failures
    assert len(served) == 4 and len(set(served)) == 4
    assert hook.ca_file.read_bytes() == ca_before  # same CA: the registered caBundle stays valid
    assert _registered_ca_bundles(cp) == {bundle}
    pods = json.loads(cp.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(created)
    for pod in pods:
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["knscale-model-init"], pod["metadata"][
            "name"
        ]
    # And after the last rotation a new pod is still admitted and injected.
    code, err = _create(cp, ns, _pod("after-rotation", INJECT))
    assert code == 0, err
    assert _init_names(cp, ns, "after-rotation") == ["knscale-model-init"]
    assert len(created) >= 12, f"only {len(created)} pods were created during the rotations"


# --- two reconcilers, one Lease -------------------------------------------------------------------

LEASE_S, RENEW_S, RETRY_S = 4.0, 3.0, 1.0
JITTER = 1.2  # reconciler/runtime/leader.py: candidates retry every retry-period × [1, 1 + 1.2)


def _pa(name: str, target: str = "70") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": name,
            "annotations": {
                "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/metric": "cpu",
                "autoscaling.knative.dev/target": target,
            },
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
            "protocolType": "http1",
        },
    }


def _scaled_objects(cp: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    items = json.loads(cp.kubectl("get", "scaledobjects", "-n", ns, "-o", "json").stdout)["items"]
    return {so["metadata"]["name"]: so for so in items}


def _holder(cp: ControlPlane, ns: str) -> str | None:
    lease = json.loads(
        cp.kubectl("get", "lease", "knscale-reconciler", "-n", ns, "-o", "json", "--ignore-not-found").stdout
        or "{}"
    )
    holder: str | None = (lease.get("spec") or {}).get("holderIdentity") or None
    return holder


def _created_events(cp: ControlPlane, ns: str, name: str) -> int:
    out = cp.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    return sum(
        int(e.get("count") or 1)
        for e in json.loads(out.stdout)["items"]
        if e["reason"] == "ScaledObjectCreated"
    )


def test_leader_killed_the_standby_takes_over_without_duplicates_or_losses(workloads: ControlPlane) -> None:
    cp = workloads
    ns = new_namespace(cp, "s6-lease")
    common = [
        f"--namespace={ns}",
        f"--lease-namespace={ns}",
        f"--lease-duration={LEASE_S:g}s",
        f"--renew-deadline={RENEW_S:g}s",
        f"--retry-period={RETRY_S:g}s",
    ]
    first = Reconciler(cp, "s6-rec-a", [*common, "--lease-identity=rec-a"])
    second = Reconciler(cp, "s6-rec-b", [*common, "--lease-identity=rec-b"])
    try:
        first.start()
        wait_until(
            lambda: _holder(cp, ns) == "rec-a", timeout=30, what="rec-a to lead", on_timeout=first.tail
        )
        second.start()
        for i in range(3):
            apply_json(cp, ns, _pa(f"rev-{i}"))
        wait_until(
            lambda: set(_scaled_objects(cp, ns)) == {"rev-0", "rev-1", "rev-2"},
            timeout=30,
            what="three ScaledObjects",
            on_timeout=first.tail,
        )
        # Let the standby's informers sync and a few election rounds pass: it must stay passive.
        time.sleep(3 * RETRY_S)
        assert _holder(cp, ns) == "rec-a"
        assert second.alive(), second.tail()
        assert "created ScaledObject" not in second.text()
        before = {
            n: (so["metadata"]["uid"], so["metadata"]["resourceVersion"])
            for n, so in _scaled_objects(cp, ns).items()
        }

        first.kill()  # a crash: the Lease is not released, it must expire
        killed = time.monotonic()
        wait_until(
            lambda: _holder(cp, ns) == "rec-b",
            timeout=LEASE_S + 2 * (1 + JITTER) * RETRY_S + 10,
            what="rec-b to take the Lease",
            on_timeout=second.tail,
        )
        takeover = time.monotonic() - killed
        # The standby takes the Lease once it has not changed for the lease duration as seen on its
        # own clock; it sees the last renewal, and notices the expiry, one jittered retry later each.
        bound = LEASE_S + 2 * (1 + JITTER) * RETRY_S
        assert takeover <= bound + 1.0, f"took {takeover:.1f} s, bound {bound:.1f} s"
        print(f"leader takeover after SIGKILL: {takeover:.2f} s (lease {LEASE_S:g} s, bound {bound:.1f} s)")

        # The new leader's first full pass over an already-reconciled namespace writes nothing...
        time.sleep(3 * RETRY_S)
        after = {
            n: (so["metadata"]["uid"], so["metadata"]["resourceVersion"])
            for n, so in _scaled_objects(cp, ns).items()
        }
        assert after == before, (before, after)
        # ...and it reconciles what changes from now on: a new revision, and an edited one.
        apply_json(cp, ns, _pa("rev-3"))
        cp.kubectl(
            "annotate", "podautoscaler", "rev-0", "-n", ns, "--overwrite", "autoscaling.knative.dev/target=55"
        )

        def settled() -> bool:
            objs = _scaled_objects(cp, ns)
            return set(objs) == {"rev-0", "rev-1", "rev-2", "rev-3"} and [
                t["metadata"]["value"] for t in objs["rev-0"]["spec"]["triggers"]
            ] == ["55"]

        wait_until(settled, timeout=30, what="rec-b to create rev-3 and update rev-0", on_timeout=second.tail)
        final = _scaled_objects(cp, ns)
        assert final["rev-0"]["metadata"]["uid"] == before["rev-0"][0]  # updated in place, not recreated
        for i in range(4):
            assert _created_events(cp, ns, f"rev-{i}") == 1, f"rev-{i}"
        assert "created ScaledObject" in second.text() and "rev-3" in second.text()
        assert second.alive(), second.tail()
    finally:
        second.stop()
        first.stop()
