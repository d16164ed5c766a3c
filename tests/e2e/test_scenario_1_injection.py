"""Scenario 1: model injection through the real admission chain.

`kubectl apply` / `kn service create` go to a real kube-apiserver that calls `knscale serve`
(registered by `knscale register --apply`); every assertion reads what the API server stored.
The checks themselves live in injection_checks.py: test_helm_install.py runs the same ones through
the helm-installed chart.
"""

from __future__ import annotations

import injection_checks as checks
import pytest
from cluster import ControlPlane
from knscale_procs import Webhook, new_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_seed_pod_is_injected_with_warnings(control_plane: ControlPlane, webhook: Webhook) -> None:
    checks.check_seed_pod(control_plane, new_namespace(control_plane, "s1-pod"))


def test_canonical_keys_inject_without_legacy_warnings(control_plane: ControlPlane, webhook: Webhook) -> None:
    checks.check_canonical_keys(control_plane, new_namespace(control_plane, "s1-canon"))


def test_bad_inject_flag_is_refused_with_its_rule_id(control_plane: ControlPlane, webhook: Webhook) -> None:
    checks.check_bad_flag_refused(control_plane, new_namespace(control_plane, "s1-bad"))


@pytest.mark.parametrize("case", sorted(checks.NOT_OPTED_IN))
def test_pod_without_opt_in_is_stored_unchanged(
    control_plane: ControlPlane, webhook: Webhook, case: str
) -> None:
    checks.check_not_opted_in(control_plane, new_namespace(control_plane, "s1-plain"), case)


def test_deployment_pods_are_injected(workloads: ControlPlane, webhook: Webhook) -> None:
    """kube-controller-manager creates the pods (Deployment → ReplicaSet → Pod): the webhook sees
    them as the controller's CREATEs, not kubectl's, and injects every one. Those reviews are the
    same bytes but for their uid (generateName is resolved after admission), so all pods after the
    first are answered from the decision cache (webhook/decision_cache.py)."""
    hits = {"endpoint": "mutate", "result": "hit"}
    checks.check_deployment_pods(
        workloads,
        new_namespace(workloads, "s1-deploy"),
        lambda: webhook.metric("knscale_webhook_decision_cache_total", **hits),
    )


def test_kn_service_create_from_the_seed_and_its_revision_pod(
    workloads: ControlPlane, webhook: Webhook
) -> None:
    """The seed's exact `kn service create` is accepted (with the warnings); the pod Knative would
    render for its revision — user-container + queue-proxy, the template's annotations — is injected,
    with the model mounted into user-container only."""
    checks.check_kn_service_and_revision_pod(workloads, new_namespace(workloads, "s1-kn"))
