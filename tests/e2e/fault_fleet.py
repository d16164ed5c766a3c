"""Scenario 9's reconciler replicas: N `knscale reconcile` processes with leader election, each
reaching the API server only through the fault proxy, each with its own /metrics port.

A replica killed with SIGKILL is restarted under a new Lease identity (as a Deployment's pod
comes back with a new name); its log file is appended to, so decisions of every incarnation
stay readable.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from pathlib import Path

from cluster import ControlPlane, free_port
from knscale_procs import Reconciler

from kubeapi.client import KubernetesApi
from kubeapi.errors import ApiError
from kubeapi.resources import LEASES

LEASE_NAME = "knscale-reconciler"


class Replica:
    def __init__(self, cp: ControlPlane, slot: str, args: Sequence[str]) -> None:
        self.cp = cp
        self.slot = slot
        self.args = tuple(args)
        self.generation = 0
        self.metrics_port = free_port()
        self.proc: Reconciler | None = None

    @property
    def identity(self) -> str:
        return f"s9-{self.slot}-{self.generation}"

    @property
    def log(self) -> Path:
        return self.cp.logs / f"knscale-s9-rec-{self.slot}.log"

    def start(self) -> None:
        self.generation += 1
        self.proc = Reconciler(
            self.cp,
            f"s9-rec-{self.slot}",
            [
                *self.args,
                f"--lease-identity={self.identity}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={self.metrics_port}",  # after the harness's --metrics-port=0: wins
            ],
        ).start()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def metric(self, metric: str, **labels: str) -> float | None:
        """One sample of this replica's /metrics (None when it does not answer, 0 when absent)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=3)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        except OSError:
            return None
        finally:
            conn.close()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{metric}{{{wanted}}} " if labels else f"{metric} "
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


class Fleet:
    def __init__(
        self, cp: ControlPlane, api: KubernetesApi, namespace: str, slots: Sequence[str], args: Sequence[str]
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.replicas = [Replica(cp, slot, args) for slot in slots]

    def __enter__(self) -> Fleet:
        for r in self.replicas:
            r.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for r in self.replicas:
            r.stop()

    def holder(self) -> str:
        try:
            lease = self.api.get(LEASES, self.namespace, LEASE_NAME)
        except ApiError:
            return ""
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def leader(self) -> Replica | None:
        holder = self.holder()
        return next((r for r in self.replicas if r.identity == holder and r.alive()), None)

    def wait_for_leader(self, *, other_than: str = "", timeout: float = 60.0) -> tuple[Replica, float]:
        """The replica holding the Lease once it is a live one other than ``other_than``, and when."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader.identity != other_than:
                return leader, time.monotonic()
            time.sleep(0.1)
        tails = "\n".join(f"--- {r.slot} ---\n{r.proc.tail(20) if r.proc else ''}" for r in self.replicas)
        raise AssertionError(f"no new leader within {timeout:.0f} s (holder {self.holder()!r})\n{tails}")

    def logs(self) -> str:
        return "\n".join(r.text() for r in self.replicas)

    def metric_sum(self, metric: str, **labels: str) -> float:
        """A counter summed over the live replicas (standbys count nothing: only the leader acts)."""
        return sum(v for r in self.replicas if r.alive() and (v := r.metric(metric, **labels)) is not None)
