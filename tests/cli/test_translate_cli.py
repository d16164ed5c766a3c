"""`knscale translate` as a subprocess: YAML stream / JSON List, --revision, --no-keda, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HPA_SVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: demo
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
        autoscaling.knative.dev/metric: queue_depth
        autoscaling.knative.dev/target: "0.5"
        autoscaling.knative.dev/max-scale: "8"
        autoscaling.knative.dev/prometheus-query: sum(queue_depth{revision="{{.revisionName}}"})
    spec:
      containers:
      - image: ghcr.io/acme/app:1
"""
CPU_SVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: cpu
spec:
  template:
    metadata:
      name: cpu-v2
      annotations:
        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
        autoscaling.knative.dev/metric: cpu
        autoscaling.knative.dev/target: "60"
    spec:
      containers:
      - image: ghcr.io/acme/app:1
        resources: {requests: {cpu: 100m}}
"""
KPA_SVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: kpa
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "20"
        autoscaling.knative.dev/window: "2m"
    spec:
      containerConcurrency: 50
      containers:
      - image: ghcr.io/acme/app:1
"""
BROKEN_SVC = KPA_SVC.replace('"2m"', '"1s"').replace("name: kpa", "name: broken")


def knscale(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knscale", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, *docs: str) -> str:
    f = tmp_path / "in.yaml"
    f.write_text("---\n".join(docs))
    return str(f)


def test_yaml_stream_of_scaled_object_and_kpa_settings(tmp_path: Path) -> None:
    r = knscale("translate", write(tmp_path, HPA_SVC, KPA_SVC))
    assert r.returncode == 0, r.stderr
    so, kpa = list(yaml.safe_load_all(r.stdout))
    assert (so["kind"], so["metadata"]["name"], so["metadata"]["namespace"]) == (
        "ScaledObject",
        "hello-00001",
        "demo",
    )
    trigger = so["spec"]["triggers"][0]
    assert trigger["metadata"]["threshold"] == "0.5"
    assert trigger["metadata"]["query"] == 'sum(queue_depth{revision="hello-00001"})'
    assert so["spec"]["scaleTargetRef"]["name"] == "hello-00001-deployment"
    assert kpa["apiVersion"] == "knscale.dev/v1alpha1" and kpa["kind"] == "KpaSettings"
    assert kpa["metadata"] == {"name": "kpa-00001", "namespace": "default"}  # kubectl's namespace
    assert (kpa["spec"]["totalValue"], kpa["spec"]["targetValue"], kpa["spec"]["stableWindow"]) == (
        20.0,
        14.0,
        120.0,
    )


def test_json_is_a_v1_list_and_template_name_is_the_revision(tmp_path: Path) -> None:
    r = knscale("translate", "-o", "json", write(tmp_path, CPU_SVC))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["apiVersion"] == "v1" and out["kind"] == "List"
    so = out["items"][0]
    assert so["metadata"]["name"] == "cpu-v2"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "cpu-v2"
    assert so["spec"]["minReplicaCount"] == 1


def test_revision_flag_overrides_the_name(tmp_path: Path) -> None:
    r = knscale("translate", "--revision", "hello-00042", write(tmp_path, HPA_SVC))
    so = yaml.safe_load(r.stdout)
    assert so["metadata"]["name"] == "hello-00042"
    assert so["spec"]["triggers"][0]["metadata"]["query"] == 'sum(queue_depth{revision="hello-00042"})'


def test_no_keda_renders_a_plain_hpa_and_refuses_prometheus_metrics(tmp_path: Path) -> None:
    r = knscale("translate", "--no-keda", write(tmp_path, CPU_SVC))
    assert r.returncode == 0, r.stderr
    hpa = yaml.safe_load(r.stdout)
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 60,
    }
    r = knscale("translate", "--no-keda", write(tmp_path, HPA_SVC))
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error KNS222" in r.stderr


def test_objects_with_errors_are_not_rendered_but_the_others_are(tmp_path: Path) -> None:
    r = knscale("translate", "-o", "json", write(tmp_path, BROKEN_SVC, KPA_SVC))
    assert r.returncode == 1
    assert [i["metadata"]["name"] for i in json.loads(r.stdout)["items"]] == ["kpa-00001"]
    assert ":10:9: error KNS102 Service default/broken" in r.stderr


def test_stdin_and_bad_input(tmp_path: Path) -> None:
    r = knscale("translate", "-", stdin=KPA_SVC)
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["kind"] == "KpaSettings"
    r = knscale("translate", "-", stdin="kind: [unclosed\n")
    assert r.returncode == 2 and "KNS901" in r.stderr and "Traceback" not in r.stderr
    r = knscale("translate", str(tmp_path / "absent.yaml"))
    assert r.returncode == 2 and "no such file or directory; fix: check the path" in r.stderr


def test_output_is_deterministic(tmp_path: Path) -> None:
    path = write(tmp_path, HPA_SVC, CPU_SVC, KPA_SVC)
    first = knscale("translate", path)
    assert first.stdout == knscale("translate", path).stdout and first.stdout


def test_cluster_configmaps_change_the_rendering(tmp_path: Path) -> None:
    cm = tmp_path / "cms.yaml"
    cm.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-autoscaler-keda}\n"
        'data: {autoscaler.keda.prometheus-address: "http://thanos.monitoring:9090"}\n'
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-autoscaler}\n"
        'data: {min-scale: "2", container-concurrency-target-percentage: "50"}\n'
    )
    r = knscale("translate", "--config-autoscaler", str(cm), write(tmp_path, HPA_SVC, KPA_SVC))
    assert r.returncode == 0, r.stderr
    so, kpa = list(yaml.safe_load_all(r.stdout))
    assert so["spec"]["triggers"][0]["metadata"]["serverAddress"] == "http://thanos.monitoring:9090"
    assert so["spec"]["minReplicaCount"] == 2
    assert (kpa["spec"]["minScale"], kpa["spec"]["targetValue"]) == (2, 10.0)


def test_unscaled_kinds_print_nothing(tmp_path: Path) -> None:
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n"
    r = knscale(
        "translate", write(tmp_path, deployment, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    )
    assert r.returncode == 0 and r.stdout == ""
    assert "not autoscaled by knscale" in r.stderr
