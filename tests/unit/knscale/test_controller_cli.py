"""`knscale reconcile`: configuration errors all at once, and a real SIGTERM drain."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from knscale.cli import main
from knscale.commands import reconcile_cmd
from knscale.settings import SettingsError
from knscale.settings.reconcile import build_reconcile_settings
from kubeapi.client import KubernetesApi
from kubeapi.resources import DEPLOYMENTS, LEASES, PODS
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, workload


def test_every_configuration_problem_is_reported_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "reconcile",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--interval",
            "0s",
            "--lease-duration",
            "5s",
            "--renew-deadline",
            "10s",
            "--namespace",
            "Bad_NS",
            "--prometheus-query",
            "sum(up)",
            "--pod-address-override",
            "nope",
            "--metrics-port",
            "70000",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    for needle in (
        "--kubeconfig: /nonexistent/kubeconfig",
        "--interval",
        "--lease-duration (5s) must be greater than --renew-deadline (10s)",
        "--namespace: 'Bad_NS'",
        "--prometheus-query needs --prometheus-url",
        "--pod-address-override: 'nope'",
        "--metrics-port",
    ):
        assert needle in err, (needle, err)
    assert "Traceback" not in err


def test_settings_parse_durations_and_overrides() -> None:
    s = build_reconcile_settings(
        {
            "interval": "500ms",
            "lease_duration": "1m",
            "renew_deadline": "30",
            "retry_period": "2s",
            "lease_namespace": "knscale-system",
            "lease_identity": "r1",
            "pod_address_override": ["web-0=127.0.0.1:19090"],
            "prometheus_url": "http://127.0.0.1:9090",
            "namespace": "team-a",
        },
        environ={},
    )
    assert s.interval == 0.5 and s.namespace == "team-a"
    assert s.lease is not None and (s.lease.lease_duration, s.lease.renew_deadline) == (60.0, 30.0)
    assert s.pod_address_overrides == {"web-0": "127.0.0.1:19090"}
    assert (
        build_reconcile_settings({"dry_run": True}, environ={}).lease is None
    )  # a dry run never takes the Lease
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({"prometheus_url": "ftp://x", "retry_period": "soon"}, environ={})
    assert len(str(err.value).splitlines()) == 2


def test_buckets_are_validated_with_the_other_settings() -> None:
    base = {"lease_namespace": "knscale-system", "lease_identity": "r1"}
    s = build_reconcile_settings({**base, "buckets": "3"}, environ={})
    assert s.lease is not None and s.lease.buckets == 3
    assert build_reconcile_settings(base, environ={}).lease.buckets == 1  # type: ignore[union-attr]
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({**base, "buckets": "0", "retry_period": "soon"}, environ={})
    assert "buckets" in str(err.value) and "retry_period" in str(err.value).replace("-", "_")
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({**base, "buckets": "33"}, environ={})
    assert "buckets" in str(err.value)
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({**base, "buckets": "2", "no_leader_election": True}, environ={})
    assert "--buckets > 1 needs leader election" in str(err.value)
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({**base, "buckets": "2", "lease_name": "x" * 250}, environ={})
    assert "x-members" in str(err.value)


class _SlowScaleFake(FakeKube):
    """Delivers SIGTERM to this process in the middle of the first scale write."""

    def __init__(self) -> None:
        super().__init__(blocking_watches=True)
        self.signalled_at: int | None = None

    def patch(self, res: Any, namespace: Any, name: Any, patch: Any, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("subresource") == "scale" and self.signalled_at is None:
            self.signalled_at = len(self.calls)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs now; the write must still complete
        return super().patch(res, namespace, name, patch, **kwargs)


def test_sigterm_finishes_the_tick_releases_the_lease_and_exits_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _SlowScaleFake()
    fake.seed(DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA}, replicas=1))
    fake.seed(PODS, pod("web-0", "web"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps({"default/web": {"concurrency": 700}}))
    monkeypatch.setattr(KubernetesApi, "from_kubeconfig", classmethod(lambda cls, path, context: fake))

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    watchdog = threading.Timer(20.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    watchdog.start()
    try:
        code = main(
            [
                "reconcile",
                "--kubeconfig",
                str(kubeconfig),
                "--interval",
                "200ms",
                "--scrape-interval",
                "100ms",
                "--lease-namespace",
                "knscale-system",
                "--lease-identity",
                "replica-a",
                "--lease-duration",
                "3s",
                "--renew-deadline",
                "2s",
                "--retry-period",
                "500ms",
                "--metrics-port",
                "0",
                "--metrics-file",
                str(metrics_file),
                "--log-level",
                "warning",
            ]
        )
    finally:
        watchdog.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        fake.close()
    assert code == 0
    assert fake.signalled_at is not None, "the loop never reached a scale write"
    assert fake.obj(DEPLOYMENTS, "default", "web")["spec"]["replicas"] > 1  # the tick finished its write
    spec = fake.obj(LEASES, "knscale-system", "knscale-reconciler")["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1  # released for a standby
    after = fake.calls[fake.signalled_at :]
    release = max(
        i for i, c in enumerate(after) if c.verb == "replace" and c.resource == "leases.coordination.k8s.io"
    )
    assert not [c for c in after[release + 1 :] if c.verb in {"create", "replace", "patch"}], (
        "wrote after release"
    )
    assert reconcile_cmd.register  # the command is wired into the CLI


def test_activator_metrics_is_auto_off_or_a_host_port_list() -> None:
    assert build_reconcile_settings({}, environ={}).activator_metrics is None  # auto: the activator pods
    assert build_reconcile_settings({"activator_metrics": "auto"}, environ={}).activator_metrics is None
    assert build_reconcile_settings({"activator_metrics": "off"}, environ={}).activator_metrics == ()
    got = build_reconcile_settings({"activator_metrics": "127.0.0.1:9091, [::1]:9092"}, environ={})
    assert got.activator_metrics == ("127.0.0.1:9091", "[::1]:9092")
    with pytest.raises(SettingsError) as err:
        build_reconcile_settings({"activator_metrics": "activator", "retry_period": "soon"}, environ={})
    assert "--activator-metrics: 'activator' is not auto, off or a HOST:PORT list" in str(err.value)
    assert len(str(err.value).splitlines()) == 2  # reported with the other problems
