"""charts/knscale proven with real helm (`make chart-test`: tools/helm/build.sh builds helm.sh/helm/v4
from the Go module proxy, cached by its pinned version, then runs this file).

The chart must render the kustomize install: for default values, `helm template -n knscale-system`
equals `kubectl kustomize config/default` object for object, and the chart's switches equal the
matching overlays (config/base without the reconciler, config/cert-manager, the template-mode
component). Normalisations, and only these (docs/install.md lists them too):

1. Helm's conventional labels (app.kubernetes.io/managed-by, app.kubernetes.io/instance,
   app.kubernetes.io/version, helm.sh/chart) are dropped from metadata.labels before comparing;
   selectors and pod-template labels carry none of them, so they are compared as they are.
2. The Namespace object: Helm installs into a namespace it does not own (`--create-namespace`),
   so the chart renders it only with namespace.create=true; compared with that value set.
3. Objects are compared as parsed YAML keyed by (kind, name): document order, key order, comments
   and YAML quoting do not count.
4. Template mode only: the webhooks of the MutatingWebhookConfiguration are compared sorted by name
   (kustomize's strategic merge puts the added webhook first; the two match different resources),
   and config.yaml is compared as parsed YAML (a kustomize literal block vs Helm's toYaml).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from knscale import __version__
from webhook.registration import ServiceTarget, render_all

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "knscale"
NAMESPACE = "knscale-system"
K8S_VERSION = "1.33.0"
HELM_LABELS = (
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "helm.sh/chart",
)
CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor"}
Objects = dict[tuple[str, str], dict[str, Any]]


@cache
def helm() -> str:
    path = subprocess.run(
        ["bash", str(ROOT / "tools/helm/build.sh"), "--print"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert os.access(path, os.X_OK), f"{path} is missing: run `make chart-test` (it builds helm first)"
    return path


def template(*sets: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    args = [helm(), "template", "knscale", str(CHART), "--namespace", namespace]
    for item in sets:
        args += ["--set", item]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def kustomize(
    *, resources: tuple[str, ...], components: tuple[str, ...] = (), tmp: Path
) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is required (kubectl kustomize)"
    overlay = tmp / "overlay"
    overlay.mkdir()

    def rel(path: str) -> str:
        return os.path.relpath(ROOT / "config" / path, overlay)

    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [rel(r) for r in resources],
                "components": [rel(c) for c in components],
            }
        )
    )
    done = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def normalise(objs: list[dict[str, Any]], *, template_mode: bool = False) -> Objects:
    out: Objects = {}
    for obj in objs:
        labels = obj["metadata"].get("labels")
        if labels is not None:
            for label in HELM_LABELS:
                labels.pop(label, None)
        if template_mode and obj["kind"] == "MutatingWebhookConfiguration":
            obj["webhooks"] = sorted(obj["webhooks"], key=lambda w: w["name"])
        if template_mode and obj["kind"] == "ConfigMap":
            obj["data"]["config.yaml"] = yaml.safe_load(obj["data"]["config.yaml"])
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in out, key
        out[key] = obj
    return out


def assert_same(chart: Objects, kust: Objects) -> None:
    assert sorted(chart) == sorted(kust)
    for key in kust:
        assert chart[key] == kust[key], key


def test_helm_lint_strict() -> None:
    for sets in (
        [],
        ["certificates.mode=cert-manager,serviceMonitor.enabled=true,networkPolicy.enabled=true"],
    ):
        args = [helm(), "lint", "--strict", str(CHART), "--namespace", NAMESPACE]
        for item in sets:
            args += ["--set", item]
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout


def test_default_values_render_the_kustomize_default_install(tmp_path: Path) -> None:
    kust = normalise(kustomize(resources=("default",), tmp=tmp_path))
    chart = normalise(template())
    namespace = kust.pop(("Namespace", NAMESPACE))  # normalisation 2
    assert_same(chart, kust)
    assert normalise(template("namespace.create=true"))[("Namespace", NAMESPACE)] == namespace


def test_reconciler_off_renders_config_base(tmp_path: Path) -> None:
    assert_same(
        normalise(template("reconciler.enabled=false", "namespace.create=true")),
        normalise(kustomize(resources=("base",), tmp=tmp_path)),
    )


def test_cert_manager_mode_renders_the_cert_manager_overlay(tmp_path: Path) -> None:
    kust = normalise(kustomize(resources=("cert-manager",), components=("reconciler",), tmp=tmp_path))
    assert ("Certificate", "knscale-webhook") in kust and ("Role", "knscale-webhook-certs") not in kust
    assert_same(normalise(template("certificates.mode=cert-manager", "namespace.create=true")), kust)


def test_template_mode_renders_the_template_mode_component(tmp_path: Path) -> None:
    kust = normalise(
        kustomize(resources=("default",), components=("template-mode",), tmp=tmp_path), template_mode=True
    )
    chart = normalise(template("templateMode.enabled=true", "namespace.create=true"), template_mode=True)
    assert_same(chart, kust)
    assert chart[("ConfigMap", "knscale-config")]["data"]["config.yaml"] == {
        "injection": {"mutate_templates": True}
    }


def test_webhooks_follow_webhook_registration_in_any_namespace() -> None:
    namespace = "zz-platform"  # sorts after kube-*: the excluded list must still be sorted
    for template_mode in (False, True):
        objs = template(f"templateMode.enabled={str(template_mode).lower()}", namespace=namespace)
        expected = render_all(
            ServiceTarget(namespace=namespace), own_namespace=namespace, mutate_templates=template_mode
        )
        for want in expected:
            (got,) = [o for o in objs if o["kind"] == want["kind"]]
            assert sorted(got["webhooks"], key=lambda w: w["name"]) == sorted(
                want["webhooks"], key=lambda w: w["name"]
            )
    subjects = [s for o in objs if o["kind"].endswith("Binding") for s in o["subjects"]]
    assert subjects and all(s["namespace"] == namespace for s in subjects)
    assert all(o["metadata"].get("namespace", namespace) == namespace for o in objs)


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["certificates.mode=cert-manager"],
        ["reconciler.enabled=false,templateMode.enabled=true"],
        ["serviceMonitor.enabled=true,networkPolicy.enabled=true,namespace.create=true"],
        ["serviceMonitor.enabled=true,networkPolicy.enabled=true,certificates.mode=cert-manager"],
        [
            "metrics.plainPort=9091,serviceMonitor.enabled=true,networkPolicy.enabled=true,dashboard.enabled=true"
        ],
    ],
)
def test_every_rendered_object_is_schema_valid(sets: list[str]) -> None:
    objs = template(*sets)
    assert objs
    for obj in objs:
        if obj["kind"] in CRD_KINDS:
            assert obj["apiVersion"] in {"cert-manager.io/v1", "monitoring.coreos.com/v1"}
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_values_reach_the_objects() -> None:
    objs = normalise(
        template(
            "webhook.replicas=3",
            "reconciler.replicas=1",
            "image.digest=sha256:" + "a" * 64,
            "webhook.priorityClassName=system-cluster-critical",
            "webhook.resources.requests.cpu=250m",
            "reconciler.priorityClassName=knscale-critical",
        )
    )
    webhook = objs[("Deployment", "knscale-webhook")]["spec"]
    reconciler = objs[("Deployment", "knscale-reconciler")]["spec"]
    assert (webhook["replicas"], reconciler["replicas"]) == (3, 1)
    for spec in (webhook, reconciler):
        assert (
            spec["template"]["spec"]["containers"][0]["image"] == "ghcr.io/knscale/knscale@sha256:" + "a" * 64
        )
    assert webhook["template"]["spec"]["priorityClassName"] == "system-cluster-critical"
    assert reconciler["template"]["spec"]["priorityClassName"] == "knscale-critical"
    assert webhook["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "250m"
    assert objs[("MutatingWebhookConfiguration", "knscale-webhook")]["webhooks"][0]["failurePolicy"] == "Fail"


def test_service_monitor_and_network_policy_select_what_serves() -> None:
    objs = normalise(
        template(
            "serviceMonitor.enabled=true", "networkPolicy.enabled=true", "serviceMonitor.labels.release=prom"
        )
    )
    for component, service, port in (
        ("webhook", "knscale-webhook", "https"),
        ("reconciler", "knscale-reconciler-metrics", "metrics"),
    ):
        monitor = objs[("ServiceMonitor", f"knscale-{component}")]
        svc = objs[("Service", service)]
        assert monitor["metadata"]["labels"]["release"] == "prom"
        assert all(
            svc["metadata"]["labels"][k] == v for k, v in monitor["spec"]["selector"]["matchLabels"].items()
        )
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port] and port in {
            p["name"] for p in svc["spec"]["ports"]
        }
        pod_labels = objs[("Deployment", f"knscale-{component}")]["spec"]["template"]["metadata"]["labels"]
        policy = objs[("NetworkPolicy", f"knscale-{component}")]["spec"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
        (rule,) = policy["ingress"]
        container = objs[("Deployment", f"knscale-{component}")]["spec"]["template"]["spec"]["containers"][0]
        assert [p["port"] for p in rule["ports"]] == [p["containerPort"] for p in container["ports"]]
    tls = objs[("ServiceMonitor", "knscale-webhook")]["spec"]["endpoints"][0]["tlsConfig"]
    assert tls["ca"]["secret"] == {"name": "knscale-webhook-certs", "key": "ca.crt"}
    assert tls["serverName"] == f"knscale-webhook.{NAMESPACE}.svc"


def test_plain_metrics_port_is_wired_through_service_monitor_and_network_policy() -> None:
    objs = normalise(
        template("metrics.plainPort=9091", "serviceMonitor.enabled=true", "networkPolicy.enabled=true")
    )
    container = objs[("Deployment", "knscale-webhook")]["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-port=9091" in container["args"]
    assert {"name": "metrics", "containerPort": 9091, "protocol": "TCP"} in container["ports"]
    service_ports = {p["name"]: p for p in objs[("Service", "knscale-webhook")]["spec"]["ports"]}
    assert service_ports["metrics"] == {
        "name": "metrics",
        "port": 9091,
        "targetPort": "metrics",
        "protocol": "TCP",
    }
    [endpoint] = objs[("ServiceMonitor", "knscale-webhook")]["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == ("metrics", "http", "/metrics")
    assert "tlsConfig" not in endpoint
    rules = objs[("NetworkPolicy", "knscale-webhook")]["spec"]["ingress"]
    assert [[p["port"] for p in rule["ports"]] for rule in rules] == [[8443], [9091]]


def test_log_format_and_dashboard_values() -> None:
    objs = normalise(template("logFormat=json", "dashboard.enabled=true"))
    for component in ("webhook", "reconciler"):
        args = objs[("Deployment", f"knscale-{component}")]["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert "--log-format=json" in args
    dashboard = objs[("ConfigMap", "knscale-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards/knscale.json").read_text())
    assert json.loads(dashboard["data"]["knscale.json"]) == shipped
    defaults = normalise(template())
    assert ("ConfigMap", "knscale-dashboard") not in defaults
    for component in ("webhook", "reconciler"):
        args = defaults[("Deployment", f"knscale-{component}")]["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert not [a for a in args if a.startswith(("--log-format", "--metrics-port=9091"))]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("logFormat=xml", 'logFormat must be text or json, not "xml"'),
        ("metrics.plainPort=8443", "metrics.plainPort must not be 8443"),
    ],
)
def test_invalid_observability_values_are_refused(value: str, message: str) -> None:
    done = subprocess.run(
        [helm(), "template", "knscale", str(CHART), "--set", value],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and message in done.stderr


def test_invalid_certificate_mode_is_refused() -> None:
    done = subprocess.run(
        [helm(), "template", "knscale", str(CHART), "--set", "certificates.mode=manual"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "certificates.mode must be self-managed or cert-manager" in done.stderr


def test_chart_versions_and_image_follow_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == __version__
    base = yaml.safe_load((ROOT / "config/base/kustomization.yaml").read_text())
    assert values["image"]["repository"] == base["images"][0]["newName"]
    assert values["image"]["tag"] == ""  # appVersion: one pin


@pytest.mark.parametrize("buckets", [1, 3])
def test_bucket_leases_reach_the_args_and_the_lease_role(buckets: int) -> None:
    from knscale.cli import build_parser
    from knscale.settings.reconcile import build_reconcile_settings
    from reconciler.runtime.buckets import all_lease_names

    objs = normalise(template(f"reconciler.buckets={buckets}"))
    container = objs[("Deployment", "knscale-reconciler")]["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    settings = build_reconcile_settings({**vars(args), "config": None}, environ={"POD_NAMESPACE": NAMESPACE})
    assert settings.lease is not None and settings.lease.buckets == buckets
    role = objs[("Role", "knscale-reconciler-lease")]
    # get/update exactly on every Lease the reconciler may write, nothing else
    assert role["rules"][0]["resourceNames"] == all_lease_names("knscale-reconciler", buckets)
    assert role["rules"][0]["verbs"] == ["get", "update"]


def test_out_of_range_buckets_are_refused() -> None:
    done = subprocess.run(
        [helm(), "template", "knscale", str(CHART), "--set", "reconciler.buckets=33"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "reconciler.buckets must be between 1 and 32" in done.stderr
