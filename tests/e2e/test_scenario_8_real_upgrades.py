"""Scenario 8, upgrades and adoption, through the real Knative Serving and the real KEDA.

1. Adoption: a Knative Service of the hpa class whose ScaledObject was written by autoscaler-keda's
   rules (as users have them today: named after the PodAutoscaler, controlled by it, with
   blockOwnerDeletion — autoscaler-keda sets it — and the spec autoscaler-keda renders), and KEDA's
   HPA made from it. Then `knscale reconcile` starts, in autoscaler-keda's place. It adopts the
   ScaledObject as it is: same uid and generation (no write: the spec already matches), KEDA's
   HPA is the same object, the Deployment is not rolled (same generation, one ReplicaSet) — and the
   PodAutoscaler and the Revision become Ready.
2. kpa → hpa → kpa: `kn service update` switches the class twice (three Revisions). Every
   ScaledObject that exists is controlled by a living hpa-class PodAutoscaler, and every HPA by a
   living ScaledObject; deleting the hpa Revision collects its PA, ScaledObject and KEDA's HPA, and
   nothing of KEDA's is left in the namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, ControlPlaneError, wait_until
from keda_cp import Keda
from keda_cp import keda_stack as running_keda
from knative_cp import KnativeServing, digest_image
from knscale_procs import Exporter, Prometheus, new_namespace, reconciler, run_knscale

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

HPA_CLASS = "hpa.autoscaling.knative.dev"
KPA_CLASS = "kpa.autoscaling.knative.dev"
CLASS = "autoscaling.knative.dev/class"
IMAGE = digest_image("registry.knscale.invalid/upgrade", "upgrade")
WAIT_S = 90.0


@pytest.fixture(scope="module")
def keda_stack(
    workloads: ControlPlane, knative: KnativeServing
) -> Iterator[tuple[Keda, Prometheus, Exporter]]:
    try:
        with running_keda(workloads) as stack:
            yield stack
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)


def _items(cp: ControlPlane, resource: str, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(cp.kubectl("get", resource, "-n", ns, "-o", "json").stdout)[
        "items"
    ]
    return items


def _conds(obj: dict[str, Any] | None) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj or {}).get("status", {}).get("conditions") or []}


def _hpa_annotations(prom: Prometheus, ns: str, name: str) -> dict[str, str]:
    return {
        "autoscaling.knative.dev/class": HPA_CLASS,
        "autoscaling.knative.dev/metric": "rps",
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "3",
        "autoscaling.knative.dev/prometheus-address": prom.url,
        "autoscaling.knative.dev/prometheus-query": (
            f'sum(knscale_e2e_inflight_requests{{namespace="{ns}",name="{name}"}})'
        ),
    }


def _revision_args(annotations: dict[str, str]) -> list[str]:
    out = []
    for key, value in annotations.items():
        out += ["--annotation-revision", f"{key}={value}"]
    return out


def _mark_sks_ready(cp: ControlPlane, ns: str, name: str) -> None:
    sks = cp.get("serverlessservice", name, ns)
    since = "2026-01-01T00:00:00Z"
    status = {
        "serviceName": name,
        "privateServiceName": f"{name}-private",
        "observedGeneration": sks["metadata"]["generation"],
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": since}
            for t in ("Ready", "EndpointsPopulated")
        ],
    }
    cp.kubectl(
        "patch", "serverlessservice", name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_autoscaler_keda_scaledobject_is_adopted_without_a_rollout(
    workloads: ControlPlane, knative: KnativeServing, keda_stack: tuple[Keda, Prometheus, Exporter]
) -> None:
    cp = workloads
    keda, prom, exporter = keda_stack
    ns = new_namespace(cp, "s8-adopt")
    name, revision = "legacy", "legacy-00001"
    exporter.set(ns, name, 1)
    done = cp.kn(
        "service", "create", name, "-n", ns, "--image", IMAGE, "--no-wait",
        *_revision_args(_hpa_annotations(prom, ns, name)),
    )  # fmt: skip
    assert f"Service '{name}' created" in done.stdout, done.stdout + done.stderr
    pa = wait_until(
        lambda: cp.find("podautoscaler", revision, ns),
        timeout=WAIT_S,
        what="Knative's PA",
        on_timeout=knative.tails,
    )

    # autoscaler-keda's ScaledObject, as it writes it: the spec it renders for this PA (knscale's
    # translator is a port of it; scenario 4 checks the two agree), named after the PA, controlled
    # by it, blockOwnerDeletion set.
    rendered = run_knscale(cp, "translate", "-o", "json", "-", input=json.dumps(pa))
    assert rendered.returncode == 0, rendered.stderr
    out = json.loads(rendered.stdout)
    so = next(d for d in (out["items"] if out["kind"] == "List" else [out]) if d["kind"] == "ScaledObject")
    so["metadata"] = {
        "name": revision,
        "namespace": ns,
        "annotations": so["metadata"].get("annotations", {}),
        "ownerReferences": [
            {
                "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
                "kind": "PodAutoscaler",
                "name": revision,
                "uid": pa["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    cp.kubectl("create", "-f", "-", input=json.dumps(so))
    hpa = wait_until(
        lambda: cp.find("hpa", revision, ns), timeout=WAIT_S, what="KEDA's HPA", on_timeout=keda.tails
    )
    deployment = cp.get("deployment", f"{revision}-deployment", ns)
    before = {
        "so": cp.get("scaledobject", revision, ns),
        "hpa_uid": hpa["metadata"]["uid"],
        "generation": deployment["metadata"]["generation"],
        "replicasets": [r["metadata"]["name"] for r in _items(cp, "replicasets", ns)],
    }
    assert len(before["replicasets"]) == 1

    # knscale takes autoscaler-keda's place.
    with reconciler(cp, "s8-adopt-reconciler", "--namespace", ns, "--no-leader-election") as rec:
        sks = wait_until(
            lambda: cp.find("serverlessservice", revision, ns),
            timeout=WAIT_S,
            what="knscale's SKS",
            on_timeout=rec.tail,
        )
        assert sks["metadata"]["ownerReferences"][0]["uid"] == pa["metadata"]["uid"]
        _mark_sks_ready(cp, ns, revision)
        wait_until(
            lambda: _conds(cp.find("revision", revision, ns)).get("Ready") == "True",
            timeout=WAIT_S,
            what="the Revision Ready",
            on_timeout=lambda: f"{rec.tail()}\n{knative.tails()}",
        )
        # Same object, spec never written (generation counts spec changes; KEDA writes its status).
        after = cp.get("scaledobject", revision, ns)
        for key in ("uid", "generation"):
            assert after["metadata"][key] == before["so"]["metadata"][key], key
        assert after["spec"] == before["so"]["spec"]
        assert cp.get("hpa", revision, ns)["metadata"]["uid"] == before["hpa_uid"]
        generation = cp.get("deployment", f"{revision}-deployment", ns)["metadata"]["generation"]
        assert generation == before["generation"]
        assert [r["metadata"]["name"] for r in _items(cp, "replicasets", ns)] == before["replicasets"]
        assert "created ScaledObject" not in rec.text()
        assert rec.alive(), rec.tail()


def test_kpa_hpa_kpa_switch_leaves_no_orphan(
    workloads: ControlPlane, knative: KnativeServing, keda_stack: tuple[Keda, Prometheus, Exporter]
) -> None:
    cp = workloads
    keda, prom, exporter = keda_stack
    ns = new_namespace(cp, "s8-switch")
    name = "switch"
    exporter.set(ns, name, 1)
    with reconciler(cp, "s8-switch-reconciler", "--namespace", ns, "--no-leader-election") as rec:

        def diag() -> str:
            return f"{rec.tail()}\n{knative.tails()}\n{keda.tails()}"

        cp.kn("service", "create", name, "-n", ns, "--image", IMAGE, "--no-wait")
        hpa_annotations = _hpa_annotations(prom, ns, name)
        cp.kn("service", "update", name, "-n", ns, "--no-wait", *_revision_args(hpa_annotations))
        wait_until(
            lambda: cp.find("hpa", f"{name}-00002", ns),
            timeout=WAIT_S,
            what="KEDA's HPA for the hpa-class Revision",
            on_timeout=diag,
        )
        # Back to kpa (kn keeps the other revision annotations: rps/target/prometheus-* are valid, and
        # read by no one, for the kpa class; kn v0.42's --annotation-revision cannot remove keys).
        cp.kn("service", "update", name, "-n", ns, "--no-wait", *_revision_args({CLASS: KPA_CLASS}))
        wait_until(
            lambda: cp.find("podautoscaler", f"{name}-00003", ns),
            timeout=WAIT_S,
            what="the third Revision's PA",
            on_timeout=diag,
        )
        pas = {p["metadata"]["name"]: p for p in _items(cp, "podautoscalers", ns)}
        classes = {n: p["metadata"]["annotations"].get(CLASS) for n, p in pas.items()}
        assert classes == {f"{name}-00001": KPA_CLASS, f"{name}-00002": HPA_CLASS, f"{name}-00003": KPA_CLASS}

        def no_orphans() -> None:
            pa_uids = {p["metadata"]["uid"]: p for p in _items(cp, "podautoscalers", ns)}
            sos = _items(cp, "scaledobjects", ns)
            for so in sos:
                owner = next(o for o in so["metadata"]["ownerReferences"] if o.get("controller"))
                assert owner["kind"] == "PodAutoscaler" and owner["uid"] in pa_uids, so["metadata"]
                pa = pa_uids[owner["uid"]]
                assert pa["metadata"]["annotations"]["autoscaling.knative.dev/class"] == HPA_CLASS
            so_uids = {s["metadata"]["uid"] for s in sos}
            for hpa in _items(cp, "hpa", ns):
                owner = next(o for o in hpa["metadata"]["ownerReferences"] if o.get("controller"))
                assert owner["kind"] == "ScaledObject" and owner["uid"] in so_uids, hpa["metadata"]

        no_orphans()
        assert [s["metadata"]["name"] for s in _items(cp, "scaledobjects", ns)] == [f"{name}-00002"]

        # The hpa Revision goes: its PA, ScaledObject and KEDA's HPA go with it.
        cp.kubectl("delete", "revision", f"{name}-00002", "-n", ns, "--wait=true", timeout=120)
        wait_until(
            lambda: not _items(cp, "scaledobjects", ns) and not _items(cp, "hpa", ns),
            timeout=WAIT_S,
            what="the ScaledObject and KEDA's HPA of the deleted Revision to be collected",
            on_timeout=diag,
        )
        no_orphans()
        assert cp.find("podautoscaler", f"{name}-00002", ns) is None
        assert cp.find("serverlessservice", f"{name}-00002", ns) is None
        assert rec.alive(), rec.tail()
