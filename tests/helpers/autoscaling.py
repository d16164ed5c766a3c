"""Builders shared by the autoscaling/KEDA/HPA unit tests."""

from __future__ import annotations

from typing import Any

from translator.config.autoscaler import AutoscalerConfig, KedaConfig
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding
from translator.validate import validate_object

P = "autoscaling.knative.dev/"
HPA = "hpa.autoscaling.knative.dev"
KPA = "kpa.autoscaling.knative.dev"


def config(**autoscaler: Any) -> KnscaleConfig:
    keda = autoscaler.pop("keda", None)
    return KnscaleConfig(autoscaler=AutoscalerConfig(**autoscaler), keda=keda or KedaConfig())


def revision(annotations: dict[str, Any], name: str = "hello-00001", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "ns", "annotations": annotations},
        "spec": {"containers": [{"image": "ghcr.io/acme/app:1"}], **spec},
    }


def service(template_annotations: dict[str, Any], name: str = "hello", **extra: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"annotations": template_annotations},
        "spec": {
            "containers": [{"image": "ghcr.io/acme/app:1", **extra.pop("container", {})}],
            **extra.pop("spec", {}),
        },
    }
    if "revision_name" in extra:
        template["metadata"]["name"] = extra.pop("revision_name")
    meta: dict[str, Any] = {"name": name, "namespace": "ns", **extra.pop("metadata", {})}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"template": template},
    }


def lint(obj: dict[str, Any], cfg: KnscaleConfig | None = None) -> list[Finding]:
    return validate_object(obj, cfg or KnscaleConfig())


def ids(findings: list[Finding], *, severity: str | None = None) -> set[tuple[str, str | None]]:
    return {(f.rule_id, f.key) for f in findings if severity is None or str(f.severity) == severity}


def errors(findings: list[Finding]) -> set[tuple[str, str | None]]:
    return ids(findings, severity="error")
