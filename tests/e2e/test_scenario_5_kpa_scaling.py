"""Scenario 5: `knscale reconcile` scales KPA-class workloads through the `scale` subresource,
following Knative's decider, on metrics the test scripts over time.

Pods are real API objects made Running/Ready by kube-scheduler + kwok, but their IPs are fake,
so the metrics come from loopback servers the test runs:

- a Deployment whose requests are counted at the ingress: a real Prometheus (Debian's package)
  scrapes a text endpoint the test sets, and the Deployment's `knscale.dev/prometheus-query`
  reads it. Such a workload may scale to zero (docs/reconciler.md).
- a StatefulSet scraped like Knative scrapes queue-proxy: per-pod protobuf `Stat` servers
  (encoded with the vendored stat.proto) that `--pod-address-override` points the reconciler at
  — StatefulSet pod names (web-0, web-1, ...) are known before the pods exist. Such a workload
  keeps at least one replica.

Every replica count asserted is the one the API server stored (`kubectl get --watch`); the
reconciler's log only tells which decider mode a scaling write came from.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Exporter, Prometheus, Reconciler, StatServer, apply_json, new_namespace, reconciler
from manifests import workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

KPA = "kpa.autoscaling.knative.dev"
WINDOW_S = 6.0
GRACE_S = 2.0
SCALED = re.compile(r"decision (\w+) (\S+?)/(\S+): .* current=(\d+) desired=(\d+) mode=(\w+) action=scaled")


@dataclass
class ReplicaWatch:
    """`kubectl get KIND NAME --watch`: every stored value of spec.replicas, with its time."""

    proc: subprocess.Popen[str]
    changes: list[tuple[float, int]] = field(default_factory=list)

    @classmethod
    def start(cls, cp: ControlPlane, kind: str, name: str, ns: str) -> ReplicaWatch:
        proc = subprocess.Popen(
            [
                str(cp.toolchain.tool("kubectl")),
                "get",
                kind,
                name,
                "-n",
                ns,
                "--watch",
                "-o",
                "jsonpath={.spec.replicas}{'\\n'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=cp.env(),
            start_new_session=True,
        )
        watch = cls(proc)
        threading.Thread(target=watch._read, name=f"watch-{name}", daemon=True).start()
        return watch

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.isdigit() and (not self.changes or self.changes[-1][1] != int(line)):
                self.changes.append((time.monotonic(), int(line)))

    @property
    def current(self) -> int | None:
        return self.changes[-1][1] if self.changes else None

    def values(self) -> list[int]:
        return [v for _, v in self.changes]

    def since(self, t: float) -> list[tuple[float, int]]:
        return [(at, v) for at, v in self.changes if at >= t]

    def wait_for(self, value: int, timeout: float, rec: Reconciler) -> float:
        wait_until(
            lambda: self.current == value,
            timeout=timeout,
            what=f"replicas == {value} (seen {self.values()})",
            on_timeout=lambda: rec.tail(30),
        )
        return self.changes[-1][0]

    def __enter__(self) -> ReplicaWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _scaled_lines(rec: Reconciler, name: str) -> list[tuple[int, int, str]]:
    """(current, desired, mode) of each scaling write the reconciler logged for ``name``."""
    return [
        (int(m.group(4)), int(m.group(5)), m.group(6))
        for m in SCALED.finditer(rec.text())
        if m.group(3) == name
    ]


def _logged(rec: Reconciler, name: str, current: int, desired: int) -> str:
    """The decider mode of the logged write current → desired (logged just after the write)."""
    return wait_until(
        lambda: next((m for c, d, m in _scaled_lines(rec, name) if (c, d) == (current, desired)), None),
        timeout=10,
        what=f"the reconciler to log its {current} → {desired} write",
        on_timeout=lambda: rec.tail(20),
    )


def _kpa_annotations(**extra: str) -> dict[str, str]:
    return {
        "autoscaling.knative.dev/class": KPA,
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",  # desired = ceil(total / 10)
        "autoscaling.knative.dev/window": f"{WINDOW_S:g}s",  # panic window: 10 % of it, at least 1 s
        **extra,
    }


def _workload(kind: str, name: str, replicas: int, annotations: dict[str, str]) -> dict[str, Any]:
    return workload(name, kind=kind, replicas=replicas, annotations=annotations)


@pytest.fixture
def grace_config(workloads: ControlPlane) -> Iterator[Path]:
    """knscale settings: a 2 s scale-to-zero grace period (Knative's default is 30 s)."""
    path = workloads.root / "s5-knscale-config.yaml"
    path.write_text(f"autoscaler:\n  scale_to_zero_grace_period: {GRACE_S:g}s\n")
    yield path
    path.unlink(missing_ok=True)


def test_deployment_with_prometheus_scales_up_panics_down_and_to_zero(
    workloads: ControlPlane, grace_config: Path
) -> None:
    cp = workloads
    ns = new_namespace(cp, "s5-prom")
    exporter = Exporter()
    prometheus = Prometheus(cp, [exporter.address])
    name = "web"
    total = exporter.query().replace("${namespace}", ns).replace("${name}", name)
    try:
        exporter.set(ns, name, 15.0)  # 2 pods: desired 2, nothing to do
        prometheus.wait_for_value(total, 15.0)
        # The workload's own query names it literally (only --prometheus-query's default is a template).
        annotations = _kpa_annotations(
            **{
                "knscale.dev/prometheus-query": total,
                # A panic window of two 1 s buckets (round(6 s × 40 %)). At the default 10 % it is
                # one bucket, and a one-bucket window reads 0 whenever the 2 s tick lands in a
                # second the 1 s scrape has not written yet (Knative's WindowAverage does the
                # same), so whether a burst panics would depend on the phase of the two loops.
                "autoscaling.knative.dev/panic-window-percentage": "40",
                # 160 %: step 1's ceil(25 / 10) = 3 pods on 2 (150 %) stays stable, while the
                # first tick that sees step 2's burst, even averaged with the second before it,
                # is over it: ceil((25 + 80) / 2 / 10) = 6 pods on 3 (200 %).
                "autoscaling.knative.dev/panic-threshold-percentage": "160",
            }
        )
        apply_json(cp, ns, _workload("Deployment", name, 2, annotations))
        cp.kubectl("rollout", "status", "-n", ns, f"deployment/{name}", "--timeout=60s", timeout=90)
        with (
            ReplicaWatch.start(cp, "deployment", name, ns) as watch,
            reconciler(
                cp,
                "s5-prom",
                "--namespace",
                ns,
                "--no-leader-election",
                f"--prometheus-url={prometheus.url}",
                f"--config={grace_config}",
            ) as rec,
        ):
            # A (re)started decider with 2 ready pods starts in panic and holds for a stable
            # window (Knative's behaviour after an autoscaler restart): let that pass first.
            wait_until(
                lambda: f"{prometheus.url}/api/v1/query" in rec.text(),
                timeout=30,
                what="the reconciler's first Prometheus query",
                on_timeout=rec.tail,
            )
            time.sleep(WINDOW_S + 2.5)
            assert watch.values() == [2], watch.values()

            # 1. Scale up in stable mode: 25 in flight on 2 pods → 3 pods (3 / 2 = 150 % < 160 %: no panic).
            exporter.set(ns, name, 25.0)
            watch.wait_for(3, 30, rec)
            assert _logged(rec, name, 2, 3) == "stable", rec.tail(30)

            # 2. Panic: 80 in flight on 3 pods is over the 160 % panic threshold → 8 (the first
            # tick may want 6 from a half-old panic window; the next one wants 8).
            exporter.set(ns, name, 80.0)
            t_panic = watch.wait_for(8, 30, rec)
            ups = [v for _, v in watch.since(0)]
            assert ups == sorted(ups), ups  # only up while the load rises
            assert _logged(rec, name, ups[-2], 8) == "panic", rec.tail(30)

            # 3. Down after the window: 20 in flight wants 2, but panic mode never scales down
            # until a stable window has passed without a panic-level load; then at most halving.
            t_drop = time.monotonic()
            exporter.set(ns, name, 20.0)
            watch.wait_for(2, 60, rec)
            downs = watch.since(t_panic + 0.001)
            steps = [8] + [v for _, v in downs]
            # max-scale-down-rate 2: each step at most halves. The first step is not fixed: when
            # panic ends the stable window may still hold part of the burst (CI saw 8 → 5 as well
            # as 8 → 4), as it would in Knative.
            assert steps[-1] == 2, steps
            assert all(b < a and 2 * b >= a for a, b in itertools.pairwise(steps)), steps
            assert downs[0][0] - t_drop >= WINDOW_S - 3.0, (downs[0][0] - t_drop, rec.tail())

            # 4. Scale to zero (allowed: the ingress counts requests while no pod runs): idle for a
            # stable window, then the grace period, then the last pod goes.
            t_idle = time.monotonic()
            exporter.set(ns, name, 0.0)
            t_zero = watch.wait_for(0, 60, rec)
            assert [v for _, v in watch.since(t_idle)] == [1, 0], watch.values()
            assert t_zero - t_idle >= WINDOW_S, (t_zero - t_idle, rec.tail())
            wait_until(
                lambda: (
                    not cp.kubectl("get", "pods", "-n", ns, "-l", f"app={name}", "-o", "name").stdout.strip()
                ),
                timeout=60,
                what="the last pod to go",
            )
            assert rec.alive(), rec.tail()
    finally:
        prometheus.stop()
        exporter.close()


def test_statefulset_scraped_like_queue_proxy_scales_to_max_and_keeps_one(workloads: ControlPlane) -> None:
    cp = workloads
    ns = new_namespace(cp, "s5-qp")
    name = "web"
    max_scale = 4
    servers = [StatServer(f"{name}-{i}") for i in range(max_scale + 2)]  # two more than it may ever make
    overrides = [f"--pod-address-override={s.pod_name}={s.address}" for s in servers]
    try:
        for s in servers:
            s.concurrency = 3.0  # per pod: well under the target of 10
        apply_json(
            cp,
            ns,
            _workload(
                "StatefulSet",
                name,
                1,
                _kpa_annotations(**{"autoscaling.knative.dev/max-scale": str(max_scale)}),
            ),
        )
        wait_until(
            lambda: cp.get("statefulset", name, ns).get("status", {}).get("readyReplicas") == 1,
            timeout=60,
            what="web-0 Ready",
        )
        with (
            ReplicaWatch.start(cp, "statefulset", name, ns) as watch,
            reconciler(cp, "s5-qp", "--namespace", ns, "--no-leader-election", *overrides) as rec,
        ):
            wait_until(lambda: servers[0].requests >= 2, timeout=30, what="the first Stat scrape")
            # Every pod is overloaded (15 in flight each, target 10): adding pods never relieves
            # it, so the decider keeps adding until max-scale, and never beyond.
            for s in servers:
                s.concurrency = 15.0
            watch.wait_for(max_scale, 60, rec)
            ups = watch.values()
            assert ups == sorted(ups) and ups[0] == 1, ups
            wait_until(lambda: servers[max_scale - 1].requests > 0, timeout=30, what=f"a scrape of {name}-3")
            time.sleep(3)
            assert watch.current == max_scale and max(watch.values()) == max_scale, watch.values()
            assert all(s.requests == 0 for s in servers[max_scale:])  # pods that never existed

            # Idle: down to one pod — and no further, since nothing in front of a queue-proxy-
            # scraped workload would see a request while it has no pod.
            t_idle = time.monotonic()
            for s in servers:
                s.concurrency = 0.0
            t_one = watch.wait_for(1, 60, rec)
            assert t_one - t_idle >= WINDOW_S - 3.0
            time.sleep(WINDOW_S + GRACE_S + 4)
            assert watch.current == 1 and min(watch.values()) == 1, watch.values()
            assert rec.alive(), rec.tail()
    finally:
        for s in servers:
            s.close()
