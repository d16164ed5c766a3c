"""RBAC is exactly what docs/security.md documents, checked on the real API server (issue 16).

The install (config/base plus the reconciler component, as `kubectl kustomize` renders it) has its
namespaces, ServiceAccounts, Roles and bindings applied; then `kubectl auth can-i --list`, run as
each of knscale's service accounts, must list the documented rows and nothing more — in
knscale-system and in an ordinary namespace. A verb, resource or name added to config/ without
the table in docs/security.md (or the other way round) fails here.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml
from cluster import REPO_ROOT, ControlPlane

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMESPACE = "knscale-system"
RBAC_KINDS = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# What every authenticated identity may do (system:basic-user, system:discovery): not knscale's.
EVERYONE = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
Row = tuple[str, frozenset[str], frozenset[str]]  # resource, resource names, verbs
_LIST_ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def documented() -> dict[str, list[tuple[str, Row]]]:
    """The rbac-table of docs/security.md: per service account, (scope, row)."""
    text = (REPO_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    table = text.split("<!-- rbac-table", 1)[1].split("<!-- /rbac-table -->", 1)[0]
    out: dict[str, list[tuple[str, Row]]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("service account", "---"):
            continue
        sa, scope, resource, names, verbs, _why = cells
        row = (
            resource,
            frozenset(n for n in names.split(", ") if n),
            frozenset(v for v in verbs.split(", ") if v),
        )
        out.setdefault(sa, []).append((scope, row))
    return out


def granted(control_plane: ControlPlane, sa: str, namespace: str) -> set[Row]:
    listing = control_plane.kubectl(
        "auth", "can-i", "--list", f"--as=system:serviceaccount:{NAMESPACE}:{sa}", "-n", namespace
    ).stdout
    rows: set[Row] = set()
    for line in listing.splitlines()[1:]:
        m = _LIST_ROW.match(line)
        assert m is not None, f"unexpected `auth can-i --list` line: {line!r}"
        resource, urls, names, verbs = m.groups()
        if not resource or resource in EVERYONE:
            assert resource or urls, line  # non-resource URLs: discovery, granted to everyone
            continue
        rows.add((resource, frozenset(names.split()), frozenset(verbs.split())))
    return rows


@pytest.fixture(scope="module")
def installed_rbac(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> None:
    overlay = tmp_path_factory.mktemp("rbac-overlay")
    config = REPO_ROOT / "config"

    def rel(name: str) -> str:  # kustomize takes relative paths only
        return os.path.relpath(config / name, overlay)

    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {rel('base')}\ncomponents:\n  - {rel('reconciler')}\n"
    )
    rendered = control_plane.kubectl("kustomize", "--load-restrictor=LoadRestrictionsNone", str(overlay))
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d and d.get("kind") in RBAC_KINDS]
    assert {d["kind"] for d in docs} == RBAC_KINDS
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


@pytest.mark.usefixtures("installed_rbac")
@pytest.mark.parametrize("sa", ["knscale-webhook", "knscale-reconciler"])
@pytest.mark.parametrize("namespace", [NAMESPACE, "default"])
def test_each_service_account_has_exactly_the_documented_rights(
    control_plane: ControlPlane, sa: str, namespace: str
) -> None:
    expected = {row for scope, row in documented()[sa] if scope in ("cluster", namespace)}
    actual = granted(control_plane, sa, namespace)
    assert actual - expected == set(), f"{sa} in {namespace}: granted but not documented"
    assert expected - actual == set(), f"{sa} in {namespace}: documented but not granted"


@pytest.mark.usefixtures("installed_rbac")
@pytest.mark.parametrize(
    ("sa", "verb", "resource"),
    [
        ("knscale-reconciler", "delete", "scaledobjects.keda.sh"),
        ("knscale-reconciler", "update", "deployments.apps"),
        ("knscale-reconciler", "get", "secrets"),
        ("knscale-webhook", "get", "secrets/other"),
        ("knscale-webhook", "delete", "secrets/knscale-webhook-certs"),
        ("knscale-webhook", "create", "pods"),
    ],
)
def test_what_must_never_be_allowed(control_plane: ControlPlane, sa: str, verb: str, resource: str) -> None:
    answer = control_plane.kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        f"--as=system:serviceaccount:{NAMESPACE}:{sa}",
        "-n",
        NAMESPACE,
        check=False,
    )
    assert answer.stdout.strip() == "no", (sa, verb, resource, answer.stdout, answer.stderr)
