"""Scenario 9: three `knscale reconcile` replicas behind a fault-injecting proxy
(tests/e2e/faultproxy.py: 429 with Retry-After, 500, 409 on writes, latency, watch streams cut),
HPA-class Deployments churned (created, deleted, re-annotated) while the leader is SIGKILLed 20
times, a KPA-class StatefulSet scraped like queue-proxy whose metrics turn to garbage and hang;
and `knscale serve` SIGKILLed and restarted under continuous pod creation.

Every assertion reads the API server (directly, never through the proxy): WatchLog records every
stored version of every ScaledObject and StatefulSet, so a recreated, duplicated or orphaned
object, and every scale write, is seen whatever the reconciler logs.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from fault_fleet import Fleet
from fault_watch import ScriptedStatServer, WatchLog
from faultproxy import FaultPlan, FaultProxy
from knscale_procs import new_namespace
from manifests import workload

from kubeapi.client import KubernetesApi
from kubeapi.resources import DEPLOYMENTS, SCALEDOBJECTS, STATEFULSETS
from reconciler.runtime.objects import controller_of, semantic_equal
from reconciler.runtime.ports import TranslatorRenderer
from translator.config.knscale import KnscaleConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

LEASE_S, RENEW_S, RETRY_S = 3.0, 2.0, 0.5
JITTER = 1.2  # reconciler/runtime/leader.py: candidates retry every retry-period × [1, 1 + 1.2)
TAKEOVER_BOUND_S = LEASE_S + 2 * (1 + JITTER) * RETRY_S  # scenario 6's bound for these settings
KILLS = 20
HPA_WORKLOADS = 30
HPA = "hpa.autoscaling.knative.dev"
KPA = "kpa.autoscaling.knative.dev"
KPA_MAX = 3
MISSING = "knscale_reconciler_metrics_missing_total"
SCALED = re.compile(r"decision StatefulSet (\S+?)/kpa: .* current=(\d+) desired=(\d+) mode=\w+ action=scaled")


def _hpa_deployment(name: str, target: int) -> dict[str, Any]:
    annotations = {
        "autoscaling.knative.dev/class": HPA,
        "autoscaling.knative.dev/metric": "cpu",
        "autoscaling.knative.dev/target": str(target),
        "autoscaling.knative.dev/max-scale": "5",
    }
    return workload(name, replicas=0, annotations=annotations)  # no pods: the ScaledObject is the point


def _kpa_statefulset() -> dict[str, Any]:
    annotations = {
        "autoscaling.knative.dev/class": KPA,
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
        "autoscaling.knative.dev/window": "6s",
        "autoscaling.knative.dev/panic-window-percentage": "40",
        "autoscaling.knative.dev/max-scale": str(KPA_MAX),
    }
    return workload("kpa", kind="StatefulSet", replicas=1, annotations=annotations)


def _expected_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    """The ScaledObject spec the translator renders for the Deployment as stored now."""
    rendered = TranslatorRenderer().for_workload(deployment, KnscaleConfig())
    assert rendered.manifest is not None and not rendered.errors, rendered.errors
    spec = dict(rendered.manifest["spec"])
    spec["scaleTargetRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    return spec


def _retarget(api: KubernetesApi, ns: str, name: str, target: int) -> None:
    patch = {"metadata": {"annotations": {"autoscaling.knative.dev/target": str(target)}}}
    api.patch(DEPLOYMENTS, ns, name, patch, patch_type="merge")


def _replica_values(sts_log: WatchLog) -> list[int]:
    values: list[int] = []
    for seen in sts_log.events("kpa"):
        replicas = int((seen.obj.get("spec") or {}).get("replicas") or 0)
        if not values or values[-1] != replicas:
            values.append(replicas)
    return values


def test_reconcilers_behind_fault_proxy_lose_duplicate_and_orphan_nothing(workloads: ControlPlane) -> None:
    cp = workloads
    ns = new_namespace(cp, "s9-faults")
    api = KubernetesApi.from_kubeconfig(str(cp.kubeconfig))
    assert cp.pki is not None
    pair = cp.pki.issue("s9-proxy", "knscale-e2e-fault-proxy", organizations=["system:masters"], client=True)
    servers = [ScriptedStatServer(f"kpa-{i}") for i in range(KPA_MAX + 2)]
    for s in servers:
        s.concurrency = 15.0  # every pod over the target of 10: up to max-scale, and it stays there
    proxy = FaultProxy(
        cp.api_port, ca_file=cp.ca_cert, client_cert=pair.cert, client_key=pair.key, plan=FaultPlan()
    )
    targets: dict[str, int] = {f"hpa-{i:02d}": 50 for i in range(HPA_WORKLOADS)}
    target_changes: Counter[str] = Counter()
    with proxy, WatchLog(api, SCALEDOBJECTS, ns) as so_log, WatchLog(api, STATEFULSETS, ns) as sts_log:
        for name, target in targets.items():
            api.create(DEPLOYMENTS, ns, _hpa_deployment(name, target))
        api.create(STATEFULSETS, ns, _kpa_statefulset())
        args = [
            "--kubeconfig",
            str(proxy.write_kubeconfig(cp.root / "s9-proxy.kubeconfig")),  # after the harness's: wins
            f"--namespace={ns}",
            f"--lease-namespace={ns}",
            f"--lease-duration={LEASE_S:g}s",
            f"--renew-deadline={RENEW_S:g}s",
            f"--retry-period={RETRY_S:g}s",
            "--scrape-timeout=1s",
            *(f"--pod-address-override={s.pod_name}={s.address}" for s in servers),
        ]
        proxy.enabled = True
        with Fleet(cp, api, ns, ["a", "b", "c"], args) as fleet:
            fleet.wait_for_leader()
            wait_until(
                lambda: {s.name for s in so_log.events() if s.type != "DELETED"} >= set(targets),
                timeout=90,
                what=f"{HPA_WORKLOADS} ScaledObjects",
                on_timeout=fleet.logs,
            )
            wait_until(
                lambda: _replica_values(sts_log)[-1] == KPA_MAX,
                timeout=90,
                what=f"the KPA StatefulSet at {KPA_MAX} ({_replica_values(sts_log)})",
                on_timeout=lambda: fleet.logs()[-3000:],
            )
            at_max = len(_replica_values(sts_log))

            # -- 20 leader kills under churn, faults on (off for the last kill: recovery is measured) --
            takeovers: list[float] = []
            created = deleted = 0
            recovery = 0.0
            for round_ in range(KILLS):
                names = sorted(targets)
                for name in (names[(2 * round_) % len(names)], names[(2 * round_ + 1) % len(names)]):
                    targets[name] += 1
                    target_changes[name] += 1
                    _retarget(api, ns, name, targets[name])
                new = f"new-{round_:02d}"
                api.create(DEPLOYMENTS, ns, _hpa_deployment(new, 60))
                targets[new] = 60
                created += 1
                if round_ % 2 == 1:
                    gone = names[round_ % len(names)]
                    api.delete(DEPLOYMENTS, ns, gone)
                    del targets[gone]
                    deleted += 1
                if round_ == KILLS - 1:
                    proxy.enabled = False
                time.sleep(0.5)
                leader = fleet.leader() or fleet.wait_for_leader()[0]
                killed_identity = leader.identity
                leader.kill()
                killed_at = time.monotonic()
                if round_ == KILLS - 1:
                    # A change made right after the last kill must be reflected by the successor.
                    last = sorted(targets)[0]
                    targets[last] += 1
                    target_changes[last] += 1
                    _retarget(api, ns, last, targets[last])
                leader.start()  # back as a standby, under a new identity
                _, took_over = fleet.wait_for_leader(other_than=killed_identity)
                takeovers.append(took_over - killed_at)
                if round_ == KILLS - 1:
                    value = str(targets[last])

                    def reflected(name: str = last, value: str = value) -> bool:
                        objs = [s.obj for s in so_log.events(name) if s.type != "DELETED"]
                        return bool(objs) and objs[-1]["spec"]["triggers"][0]["metadata"]["value"] == value

                    wait_until(reflected, timeout=60, what="the change after the last kill", interval=0.1)
                    recovery = time.monotonic() - killed_at
            proxy.enabled = True

            # -- metrics that are garbage or hang never move the scale (faults on, no kills) --
            held: dict[str, float] = {}
            for mode in ("junk", "impossible", "hang"):
                for s in servers:
                    s.mode = mode
                started = fleet.metric_sum(MISSING, namespace=ns, name="kpa")
                time.sleep(9.0)  # longer than the 6 s stable window: no good data is left in it
                held[mode] = fleet.metric_sum(MISSING, namespace=ns, name="kpa") - started
                for s in servers:
                    s.mode = "ok"
                time.sleep(2.5)  # one good scrape and tick in between, so each phase is its own episode
            assert _replica_values(sts_log)[-1] == KPA_MAX and len(_replica_values(sts_log)) == at_max, (
                _replica_values(sts_log)
            )
            assert all(n >= 2 for n in held.values()), held  # decided "held" on every tick it could
            # Control: the same loop does move the scale when good metrics ask for it (9 in flight → 1).
            for s in servers:
                s.concurrency = 3.0
            wait_until(
                lambda: _replica_values(sts_log)[-1] == 1,
                timeout=60,
                what=f"the KPA StatefulSet down to 1 ({_replica_values(sts_log)})",
                on_timeout=lambda: fleet.logs()[-3000:],
            )
            proxy.enabled = False
            faults = dict(proxy.counts)
            forwarded = dict(proxy.requests)

            # -- converged: exactly the expected ScaledObjects, each once, with the rendered spec --
            def converged() -> bool:
                live = {d["metadata"]["name"]: d for d in api.list(DEPLOYMENTS, ns).items}
                sos = {so["metadata"]["name"]: so for so in api.list(SCALEDOBJECTS, ns).items}
                if set(sos) != set(targets) or set(live) != set(targets):
                    return False
                return all(
                    (controller_of(so) or {}).get("uid") == live[n]["metadata"]["uid"]
                    and semantic_equal(so["spec"], _expected_spec(live[n]))
                    for n, so in sos.items()
                )

            wait_until(converged, timeout=60, what="every ScaledObject as rendered, no orphans", interval=1.0)
            time.sleep(2.0)  # anything still in flight would show up in the watch now
            decisions = [(int(m.group(2)), int(m.group(3))) for m in SCALED.finditer(fleet.logs())]
            logs = fleet.logs()

    # Each ScaledObject was created once per owner incarnation, never recreated; no spec write
    # without an annotation change behind it; one ScaledObject per live Deployment.
    added = Counter(
        (s.name, str((controller_of(s.obj) or {}).get("uid"))) for s in so_log.events() if s.type == "ADDED"
    )
    twice = [k for k, n in added.items() if n > 1]
    assert not twice, (twice, [d for name, _ in twice for d in cp.deletes("scaledobjects", ns, name)])
    generations: dict[str, set[int]] = {}
    for seen in so_log.events():
        if seen.type != "DELETED":
            generations.setdefault(seen.uid, set()).add(int(seen.obj["metadata"]["generation"]))
    spec_writes = {s.name: len(generations[s.uid]) - 1 for s in so_log.events() if s.uid in generations}
    too_many = {n: (w, target_changes[n]) for n, w in spec_writes.items() if w > target_changes[n]}
    assert not too_many, too_many
    # Every scale the API server stored came from a logged `scaled` decision, and vice versa.
    values = _replica_values(sts_log)
    stored_writes = list(itertools.pairwise(values))
    assert sorted(decisions) == sorted(stored_writes), (decisions, stored_writes)
    up, down = values[:at_max], values[at_max - 1 :]
    assert up == sorted(up) and up[-1] == KPA_MAX, values  # up under load, then held through 20 kills
    assert down == sorted(down, reverse=True) and down[-1] == 1, values  # down only for the control
    assert "Traceback" not in logs, logs[logs.index("Traceback") - 2000 :][:6000]

    assert len(takeovers) == KILLS
    assert max(takeovers) <= TAKEOVER_BOUND_S + 4.0, takeovers  # faults on: a failed Lease read costs a retry
    assert recovery <= TAKEOVER_BOUND_S + 3.0, recovery
    for kind in ("429", "500", "409", "latency", "watch_cut"):
        assert faults.get(kind, 0) > 0, faults
    print(
        f"\nfaults injected {faults}; requests forwarded {forwarded}; kills {KILLS}; "
        f"takeover s min {min(takeovers):.2f} median {sorted(takeovers)[KILLS // 2]:.2f} "
        f"max {max(takeovers):.2f}; "
        f"recovery after the last kill {recovery:.2f} s (bound {TAKEOVER_BOUND_S + 3.0:.1f}); "
        f"deployments created {HPA_WORKLOADS + created}, deleted {deleted}, "
        f"ScaledObjects added {sum(added.values())}; "
        f"scale writes {len(stored_writes)} = scaled decisions {len(decisions)} ({values}); "
        f"metrics-missing ticks held {held}"
    )
