"""config/: kustomize renders, every object is schema-valid, and the install is what we claim.

Needs `kubectl` (it carries kustomize); it is preinstalled on the project's machines. The
schemas are kubernetes-validate's copy of the Kubernetes OpenAPI, strict mode (unknown fields
are errors). cert-manager's kinds are CRDs the package does not know; they are checked by shape.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helpers.paths import REPO

from knscale import __version__
from translator.config.knscale import KnscaleConfig
from webhook.registration import DEFAULT_NAMESPACE, ServiceTarget, render_all

ROOT = REPO
K8S_VERSION = "1.33.0"
IMAGE = f"ghcr.io/knscale/knscale:{__version__}"
CRD_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render config/ (kubectl kustomize); install kubectl >= 1.27")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "config" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def _one(objs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def _gen_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_manifests", ROOT / "tools" / "gen_manifests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_manifests"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("overlay", ["default", "cert-manager"])
def test_every_rendered_object_is_schema_valid(overlay: str) -> None:
    objs = render(overlay)
    assert objs
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_default_install_has_every_piece() -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in render("default"))
    assert kinds == [
        ("ClusterRole", "knscale-reconciler"),
        ("ClusterRole", "knscale-webhook-cabundle"),
        ("ClusterRoleBinding", "knscale-reconciler"),
        ("ClusterRoleBinding", "knscale-webhook-cabundle"),
        ("ConfigMap", "knscale-config"),
        ("Deployment", "knscale-reconciler"),
        ("Deployment", "knscale-webhook"),
        ("MutatingWebhookConfiguration", "knscale-webhook"),
        ("Namespace", "knscale-system"),
        ("PodDisruptionBudget", "knscale-reconciler"),
        ("PodDisruptionBudget", "knscale-webhook"),
        ("Role", "knscale-reconciler-lease"),
        ("Role", "knscale-webhook-certs"),
        ("RoleBinding", "knscale-reconciler-lease"),
        ("RoleBinding", "knscale-webhook-certs"),
        ("Service", "knscale-webhook"),
        ("ServiceAccount", "knscale-reconciler"),
        ("ServiceAccount", "knscale-webhook"),
        ("ValidatingWebhookConfiguration", "knscale-webhook"),
    ]
    for obj in render("default"):
        if obj["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"} and not obj["kind"].endswith(
            "WebhookConfiguration"
        ):
            assert obj["metadata"]["namespace"] == DEFAULT_NAMESPACE, obj["kind"]


def test_deployment_is_ha_restricted_and_probed_over_https() -> None:
    dep = _one(render("default"), "Deployment", "knscale-webhook")
    spec = dep["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "knscale-webhook"
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and isinstance(psc["runAsUser"], int) and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    csc = container["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]} and csc["runAsNonRoot"] is True
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", "https")
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["args"][:2] == ["serve", "--in-cluster"]
    # The writable places of a read-only root: the certificate dir and /tmp, both emptyDirs.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/var/run/knscale/certs"]]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "--cert-dir=/var/run/knscale/certs" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KNSCALE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    pdb = _one(render("default"), "PodDisruptionBudget", "knscale-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_service_routes_443_to_the_container_port() -> None:
    objs = render("default")
    svc = _one(objs, "Service")
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 443 and port["targetPort"] == "https"
    container = _one(objs, "Deployment", "knscale-webhook")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "https", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    labels = _one(objs, "Deployment", "knscale-webhook")["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())


def test_rbac_is_limited_to_the_secret_and_the_two_configurations() -> None:
    objs = render("default")
    role = _one(objs, "Role", "knscale-webhook-certs")
    named, unnamed = role["rules"]
    assert named == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["knscale-webhook-certs"],
        "verbs": ["get", "update"],
    }
    # create cannot be limited by name (documented in rbac.yaml); nothing else is unnamed.
    assert unnamed == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    (rule,) = _one(objs, "ClusterRole", "knscale-webhook-cabundle")["rules"]
    assert rule["resourceNames"] == ["knscale-webhook"]
    assert sorted(rule["verbs"]) == ["get", "patch", "update"]
    assert sorted(rule["resources"]) == ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
    for binding in (
        _one(objs, "RoleBinding", "knscale-webhook-certs"),
        _one(objs, "ClusterRoleBinding", "knscale-webhook-cabundle"),
    ):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "knscale-webhook", "namespace": DEFAULT_NAMESPACE}
        ]
    names = {o["metadata"]["name"] for o in render_all(ServiceTarget())}
    assert names == set(rule["resourceNames"])


def test_webhooks_in_config_are_what_register_renders() -> None:
    objs = render("default")
    for expected in render_all(ServiceTarget(), own_namespace=DEFAULT_NAMESPACE):
        live = _one(objs, expected["kind"])
        assert live["webhooks"] == expected["webhooks"]
        assert all("caBundle" not in w["clientConfig"] for w in live["webhooks"])


def test_image_is_pinned_once() -> None:
    base = yaml.safe_load((ROOT / "config/base/kustomization.yaml").read_text())
    assert base["images"] == [
        {"name": "knscale", "newName": "ghcr.io/knscale/knscale", "newTag": __version__}
    ]
    hits = [p for p in (ROOT / "config").rglob("*.yaml") if "ghcr.io/knscale/knscale" in p.read_text()]
    assert hits == [ROOT / "config/base/kustomization.yaml"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM debian:bookworm-slim" in dockerfile and 'ENTRYPOINT ["/usr/local/bin/knscale"]' in dockerfile
    assert f"ghcr.io/knscale/knscale:{__version__}" in dockerfile
    assert 'CMD ["serve", "--in-cluster"]' in dockerfile
    assert "USER 65532:65532" in dockerfile


def test_configmap_example_equals_the_code_defaults() -> None:
    cm = _one(render("default"), "ConfigMap", "knscale-config")
    example = yaml.safe_load(cm["data"]["_example"])
    assert example == KnscaleConfig().model_dump(mode="json", by_alias=True)
    assert KnscaleConfig.model_validate(example) == KnscaleConfig()
    assert yaml.safe_load(cm["data"]["config.yaml"]) is None  # empty: every default
    assert not [line for line in cm["data"]["_example"].splitlines() if line != line.rstrip()]


def test_generated_manifests_are_fresh() -> None:
    tool = _gen_tool()
    for path, render_text in tool.OUTPUTS.items():
        assert path.read_text(encoding="utf-8") == render_text(), (
            f"{path.relative_to(ROOT)} is stale: run `.venv/bin/python tools/gen_manifests.py`"
        )


def test_example_documents_every_setting() -> None:
    text = _gen_tool().example_text()
    for section, model in KnscaleConfig.model_fields.items():
        sub = model.annotation
        assert isinstance(sub, type)
        for name, info in getattr(sub, "model_fields", {}).items():
            key = info.alias or name
            if info.description:
                first_words = " ".join(info.description.split()[:4])
                assert first_words in " ".join(text.replace("#", " ").split()), (section, key)


def test_cert_manager_overlay() -> None:
    objs = render("cert-manager")
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}  # no API access needed
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = _one(objs, kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{DEFAULT_NAMESPACE}/knscale-webhook"
    cert = _one(objs, "Certificate", "knscale-webhook")
    assert cert["spec"]["secretName"] == "knscale-webhook-tls"
    assert set(cert["spec"]["dnsNames"]) == {
        "knscale-webhook",
        "knscale-webhook.knscale-system",
        "knscale-webhook.knscale-system.svc",
        "knscale-webhook.knscale-system.svc.cluster.local",
    }
    assert cert["spec"]["issuerRef"] == {"name": "knscale-ca", "kind": "Issuer"}
    ca_issuer = _one(objs, "Issuer", "knscale-ca")
    assert (
        ca_issuer["spec"]["ca"]["secretName"] == _one(objs, "Certificate", "knscale-ca")["spec"]["secretName"]
    )
    assert _one(objs, "Certificate", "knscale-ca")["spec"]["isCA"] is True
    pod = _one(objs, "Deployment", "knscale-webhook")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    args = pod["containers"][0]["args"]
    assert "--no-manage-certs" in args and "--in-cluster" not in args
    certs_volume = next(v for v in pod["volumes"] if v["name"] == "certs")
    assert certs_volume == {
        "name": "certs",
        "secret": {"secretName": "knscale-webhook-tls", "defaultMode": 0o440},
    }


def test_serve_accepts_the_deployment_args(tmp_path: Path) -> None:
    """The flags in the manifests are real flags of `knscale serve` (parsed, not run)."""
    from knscale.cli import build_parser

    parser = build_parser()
    for overlay in ("default", "cert-manager"):
        args = _one(render(overlay), "Deployment", "knscale-webhook")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        parsed = parser.parse_args(args)
        assert parsed.command == "serve" and parsed.port == 8443


def test_template_mode_component(tmp_path: Path) -> None:
    """An overlay of config/default plus the config/template-mode component: the template webhook
    joins the pods webhook (merged by name, nothing else changed), and the server's settings turn
    template mode on."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    overlay = tmp_path / "config" / "my-overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ../default\ncomponents:\n  - ../template-mode\n"
    )
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    objs = tuple(d for d in yaml.safe_load_all(done.stdout) if d)
    mutating = _one(objs, "MutatingWebhookConfiguration")
    expected = render_all(ServiceTarget(), own_namespace=DEFAULT_NAMESPACE, mutate_templates=True)[0]
    # Kustomize's merge puts the added webhook first; the two match different resources, so the
    # order in which the API server calls them does not matter.
    by_name = lambda hooks: sorted(hooks, key=lambda w: w["name"])  # noqa: E731
    assert by_name(mutating["webhooks"]) == by_name(expected["webhooks"])
    assert _one(objs, "ValidatingWebhookConfiguration") == _one(
        render("default"), "ValidatingWebhookConfiguration"
    )
    settings = yaml.safe_load(_one(objs, "ConfigMap", "knscale-config")["data"]["config.yaml"])
    assert KnscaleConfig.model_validate(settings).injection.mutate_templates is True
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) not in CRD_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
