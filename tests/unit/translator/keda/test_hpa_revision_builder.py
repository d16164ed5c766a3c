"""One HpaRevision builder: lint and the reconciler build the same revision from the same object.

Before issue 10 the two built it separately and only the reconciler read `spec.reachability`,
so lint could pass a PodAutoscaler whose rendering the reconciler then changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.runtime.ports import TranslatorRenderer
from translator.config.knscale import KnscaleConfig
from translator.keda.render import render_scaled_object
from translator.keda.revision import revision_of
from translator.keda.types import HpaRevision

P = "autoscaling.knative.dev/"
APP = {"name": "app", "resources": {"requests": {"cpu": "1"}}}


def _pa(reachability: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello-00001-deployment"},
        "protocolType": "http1",
    }
    if reachability is not None:
        spec["reachability"] = reachability
    return {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": "hello-00001",
            "namespace": "ns",
            "uid": "6f0c-uid",
            "labels": {"serving.knative.dev/revision": "hello-00001"},
            "annotations": {
                P + "class": "hpa.autoscaling.knative.dev",
                P + "metric": "cpu",
                P + "min-scale": "3",
            },
        },
        "spec": spec,
    }


def _workload() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "d-uid",
            "annotations": {P + "class": "hpa.autoscaling.knative.dev", P + "metric": "cpu"},
        },
        "spec": {"template": {"spec": {"containers": [APP]}}},
    }


def _reconciler_revision(monkeypatch: pytest.MonkeyPatch, obj: dict[str, Any], kind: str) -> HpaRevision:
    built: list[HpaRevision] = []
    original = TranslatorRenderer._render

    def spy(self: TranslatorRenderer, o: Any, rev: HpaRevision, config: KnscaleConfig) -> Any:
        built.append(rev)
        return original(self, o, rev, config)

    monkeypatch.setattr(TranslatorRenderer, "_render", spy)
    renderer = TranslatorRenderer()
    if kind == "pa":
        renderer.for_pod_autoscaler(obj, KnscaleConfig())
    else:
        renderer.for_workload(obj, KnscaleConfig())
    assert len(built) == 1
    return built[0]


@pytest.mark.parametrize("reachability", [None, "Reachable", "Unreachable", "ReachabilityUnknown"])
def test_lint_and_reconciler_build_the_same_revision_for_a_pod_autoscaler(
    monkeypatch: pytest.MonkeyPatch, reachability: str | None
) -> None:
    pa = _pa(reachability)
    config = KnscaleConfig()
    lint_rev = revision_of(pa, "podautoscaler", config.autoscaler.pod_autoscaler_class)
    assert lint_rev is not None
    reconciler_rev = _reconciler_revision(monkeypatch, pa, "pa")
    assert lint_rev.hpa == reconciler_rev
    assert reconciler_rev.reachable is (reachability != "Unreachable")
    # And so they render the same object: min 0 while unreachable, as in Knative.
    rendered = render_scaled_object(lint_rev.hpa, config.autoscaler, config.keda)
    assert rendered.manifest is not None
    expected_min = 1 if reachability == "Unreachable" else 3  # cpu-only: KEDA needs min ≥ 1
    assert rendered.manifest["spec"]["minReplicaCount"] == expected_min


def test_lint_and_reconciler_build_the_same_revision_for_a_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    dep = _workload()
    lint_rev = revision_of(dep, "workload", KnscaleConfig().autoscaler.pod_autoscaler_class)
    assert lint_rev is not None
    assert lint_rev.hpa == _reconciler_revision(monkeypatch, dep, "workload")
    assert lint_rev.hpa.containers == [APP]
