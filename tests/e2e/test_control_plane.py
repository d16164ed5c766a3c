"""The e2e harness itself: the control plane is real, complete and cleans up after itself.

Every assertion reads what the API server stored (or what a real client printed), so a harness that
silently lost a component, a CRD or its teardown would fail here before any knscale scenario runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from cluster import (
    E2E_DIR,
    ControlPlane,
    ControlPlaneError,
    Toolchain,
    port_is_listening,
    read_versions,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

VERSIONS = read_versions()


def _ns(cp: ControlPlane, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cp.create_namespace(name)
    return name


def test_apiserver_and_kubectl_are_the_pinned_version(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == VERSIONS["K8S_VERSION"]
    # The built kubectl, not /usr/bin/kubectl (v1.32 is outside the +/-1 minor skew window of 1.36).
    assert version["clientVersion"]["gitVersion"] == VERSIONS["K8S_VERSION"]
    readyz = control_plane.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "readyz check passed" in readyz
    assert "[+]etcd ok" in readyz


def test_every_extracted_crd_is_established(control_plane: ControlPlane) -> None:
    names = control_plane.crd_names()
    for expected in (
        "services.serving.knative.dev",
        "configurations.serving.knative.dev",
        "revisions.serving.knative.dev",
        "routes.serving.knative.dev",
        "podautoscalers.autoscaling.internal.knative.dev",
        "metrics.autoscaling.internal.knative.dev",
        "serverlessservices.networking.internal.knative.dev",
        "scaledobjects.keda.sh",
    ):
        assert expected in names
    for name in names:
        crd = control_plane.get("crd", name)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)
    provenance = (control_plane.toolchain.root / "PROVENANCE").read_text()
    assert f"knative.dev/serving@{VERSIONS['KNATIVE_SERVING_VERSION']}" in provenance
    assert f"github.com/kedacore/keda/v2@{VERSIONS['KEDA_VERSION']}" in provenance
    assert (
        (control_plane.toolchain.crds / "keda" / "LICENSE").read_text().lstrip().startswith("Apache License")
    )


def test_kubectl_apply_ksvc_and_scaledobject(control_plane: ControlPlane) -> None:
    ns = _ns(control_plane, "crds")
    ksvc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": "hello",
            "namespace": ns,
            "annotations": {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"},
        },
        "spec": {"template": {"spec": {"containers": [{"image": "registry.test/hello:1"}]}}},
    }
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "hello", "namespace": ns},
        "spec": {
            "scaleTargetRef": {"name": "hello-00001-deployment"},
            "minReplicaCount": 0,
            "maxReplicaCount": 5,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://127.0.0.1:9090",
                        "query": "sum(rate(http_requests_total[1m]))",
                        "threshold": "5",
                    },
                }
            ],
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(ksvc))
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(scaled))

    stored = control_plane.get("services.serving.knative.dev", "hello", ns)
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/hello:1"
    assert stored["metadata"]["annotations"]["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"
    stored_so = control_plane.get("scaledobjects.keda.sh", "hello", ns)
    assert stored_so["spec"]["maxReplicaCount"] == 5
    assert stored_so["spec"]["triggers"][0]["metadata"]["threshold"] == "5"

    # The CRD schemas are the real ones: KEDA's requires triggers, and types are enforced.
    bad = json.loads(json.dumps(scaled))
    bad["metadata"]["name"] = "bad"
    bad["spec"]["maxReplicaCount"] = "five"
    del bad["spec"]["triggers"]
    refused = control_plane.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert "spec.triggers: Required value" in refused.stderr
    assert "spec.maxReplicaCount" in refused.stderr
    assert not control_plane.exists("scaledobjects.keda.sh", "bad", ns)


def test_kn_creates_a_knative_service(control_plane: ControlPlane) -> None:
    version = control_plane.kn("version").stdout
    assert f"Version:      {VERSIONS['KN_VERSION']}" in version
    ns = _ns(control_plane, "kn")
    done = control_plane.kn(
        "service",
        "create",
        "x",
        "--image",
        "registry.test/y:1",
        "--annotation",
        "autoscaling.knative.dev/class=hpa.autoscaling.knative.dev",
        "--no-wait",
        "-n",
        ns,
    )
    assert "Service 'x' created" in done.stdout, done.stdout
    stored = control_plane.get("services.serving.knative.dev", "x", ns)
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.test/y:1"
    assert stored["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/class"] == (
        "hpa.autoscaling.knative.dev"
    )
    # No Knative controller runs, so the service never gets a Ready condition; kn must not pretend.
    assert not stored.get("status", {}).get("conditions")


def test_deployment_pods_become_ready_on_kwok_nodes(workloads: ControlPlane) -> None:
    ns = _ns(workloads, "deploy")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.test/web:1"}]},
            },
        },
    }
    workloads.kubectl("apply", "-f", "-", input=json.dumps(deployment))

    def ready() -> bool:
        status = workloads.get("deployment", "web", ns).get("status", {})
        return bool(status.get("readyReplicas") == 2)

    wait_until(ready, timeout=90, what="deployment web to have 2 ready replicas")
    pods = workloads.get("pods", namespace=ns)["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] in workloads.nodes  # placed by kube-scheduler
        conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conds["Ready"] == "True"
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet"  # created by the replicaset controller


def test_deleting_an_owner_garbage_collects_dependents(workloads: ControlPlane) -> None:
    ns = _ns(workloads, "gc")
    workloads.kubectl("create", "configmap", "owner", "-n", ns)
    owner_uid = workloads.get("configmap", "owner", ns)["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": ns,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
        },
    }
    workloads.kubectl("apply", "-f", "-", input=json.dumps(dependent))
    assert workloads.exists("configmap", "dependent", ns)
    workloads.kubectl("delete", "configmap", "owner", "-n", ns, "--wait=true")
    wait_until(
        lambda: not workloads.exists("configmap", "dependent", ns),
        timeout=60,
        what="the garbage collector to delete the dependent ConfigMap",
    )


def test_teardown_after_failing_test_leaks_nothing(toolchain: Toolchain, tmp_path: Path) -> None:
    """Run a deliberately failing test in a child pytest with the real fixtures; after it exits, none
    of its processes, ports or its temp directory may remain."""
    project = tmp_path / "inner"
    project.mkdir()
    shutil.copy(E2E_DIR / "conftest.py", project / "conftest.py")
    report = tmp_path / "report.json"
    (project / "test_fails.py").write_text(
        textwrap.dedent(
            f"""
            import json
            from pathlib import Path

            def test_fails_while_everything_runs(workloads):
                info = {{"pids": workloads.pids, "ports": workloads.ports, "root": str(workloads.root),
                        "api_port": workloads.api_port}}
                Path({str(report)!r}).write_text(json.dumps(info))
                raise AssertionError("deliberate failure: the fixtures must still clean up")
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(E2E_DIR), KNSCALE_E2E_DIR=str(toolchain.root))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "deliberate failure" in done.stdout
    info = json.loads(report.read_text())
    assert len(info["pids"]) == 5  # etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
    for pid in info["pids"]:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived the test session"
    assert info["api_port"] in info["ports"]
    for port in info["ports"]:
        assert not port_is_listening(port), f"port {port} still listening"
    assert not Path(info["root"]).exists(), "temp directory left behind"
    # Nothing anywhere still refers to that directory (a grandchild that escaped its process group would).
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert info["root"].encode() not in cmdline, f"pid {proc.name} still uses {info['root']}"


def test_missing_build_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNSCALE_E2E_DIR", str(tmp_path))
    with pytest.raises(ControlPlaneError, match=r"not built in .*bash tests/e2e/build.sh"):
        Toolchain.locate()


def test_a_port_taken_after_probing_is_retried(toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another engineer's process may bind the port we probed before etcd does: start over on new ports."""
    import cluster

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = cluster.free_port
        handed_out = iter([taken])
        monkeypatch.setattr(cluster, "free_port", lambda: next(handed_out, None) or real_free_port())
        with cluster.running_control_plane(toolchain, install_crds=False) as cp:
            etcd = cp.component("etcd")
            assert taken not in etcd.ports
            assert "address already in use" in etcd.log.read_text()
            assert json.loads(cp.kubectl("version", "-o", "json").stdout)["serverVersion"]
