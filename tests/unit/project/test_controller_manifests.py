"""config/reconciler: the Component renders on top of config/base, every object is schema-valid,
the Deployment runs two replicas with arguments the CLI accepts, and RBAC is exactly what the
reconciler uses (no delete, no wildcards)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helpers.paths import REPO

from knscale.cli import build_parser
from knscale.settings.reconcile import build_reconcile_settings
from reconciler.runtime.buckets import all_lease_names

ROOT = REPO


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render config/ (kubectl kustomize)")
    overlay = tmp_path_factory.mktemp("overlay")
    rel = lambda p: os.path.relpath(ROOT / "config" / p, overlay)  # noqa: E731
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {rel('base')}\ncomponents:\n  - {rel('reconciler')}\n"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_reconciler_objects_are_schema_valid(rendered: list[dict[str, Any]]) -> None:
    mine = [
        o
        for o in rendered
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "reconciler"
    ]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in mine) == [
        ("ClusterRole", "knscale-reconciler"),
        ("ClusterRoleBinding", "knscale-reconciler"),
        ("Deployment", "knscale-reconciler"),
        ("PodDisruptionBudget", "knscale-reconciler"),
        ("Role", "knscale-reconciler-lease"),
        ("RoleBinding", "knscale-reconciler-lease"),
        ("ServiceAccount", "knscale-reconciler"),
    ]
    for obj in mine:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


def test_two_replicas_same_image_and_cli_accepted_args(rendered: list[dict[str, Any]]) -> None:
    dep = one(rendered, "Deployment", "knscale-reconciler")
    webhook = one(rendered, "Deployment", "knscale-webhook")
    assert dep["spec"]["replicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == webhook["spec"]["template"]["spec"]["containers"][0]["image"] != "knscale"
    args = build_parser().parse_args(container["args"])
    assert args.command == "reconcile" and args.in_cluster
    settings = build_reconcile_settings(
        {**vars(args), "config": None}, environ={"POD_NAMESPACE": "knscale-system", "POD_NAME": "p"}
    )
    assert settings.lease is not None and settings.lease.namespace == "knscale-system"
    assert settings.lease.identity == "p"
    assert {e["name"] for e in container["env"]} >= {"POD_NAME", "POD_NAMESPACE"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_rbac_is_exactly_what_the_reconciler_uses(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "ClusterRole", "knscale-reconciler")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    read = {"get", "list", "watch"}
    expected = (
        {("apps", r, v) for r in ("deployments", "statefulsets") for v in (*read, "patch")}
        | {
            ("apps", f"{r}/scale", v)
            for r in ("deployments", "statefulsets")
            for v in ("get", "update", "patch")
        }
        | {("", "pods", v) for v in read}
        | {("keda.sh", "scaledobjects", v) for v in (*read, "create", "update")}
        | {("autoscaling", "horizontalpodautoscalers", v) for v in read}
        | {("autoscaling.internal.knative.dev", "podautoscalers", v) for v in read}
        | {("autoscaling.internal.knative.dev", "podautoscalers/status", "update")}
        | {("networking.internal.knative.dev", "serverlessservices", v) for v in (*read, "create", "update")}
        | {("", "events", v) for v in ("create", "patch")}
    )
    assert granted == expected
    lease = one(rendered, "Role", "knscale-reconciler-lease")
    assert lease["metadata"]["namespace"] == "knscale-system"
    # get/update exactly on the Leases the Deployment's --lease-name and --buckets make it use
    container = one(rendered, "Deployment", "knscale-reconciler")["spec"]["template"]["spec"]["containers"][0]
    settings = build_reconcile_settings(
        {**vars(build_parser().parse_args(container["args"])), "config": None},
        environ={"POD_NAMESPACE": "knscale-system", "POD_NAME": "p"},
    )
    assert settings.lease is not None
    names = all_lease_names(settings.lease.name, settings.lease.buckets)
    assert lease["rules"][0]["resourceNames"] == names == ["knscale-reconciler"]
    assert all(r["resources"] == ["leases"] for r in lease["rules"])
