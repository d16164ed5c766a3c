"""What the controller needs from its neighbours, as small interfaces.

`Cache` is backed by the informers, `Writer` wraps every write (leader fencing, dry run,
metrics), `ScaledObjectRenderer` is the translator's ScaledObject rendering. Keeping them
narrow lets the sync logic be tested with the fake API and swapped pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.kube import PatchType, Resource
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding


class Cache(Protocol):
    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None: ...

    def items(self, res: Resource) -> list[dict[str, Any]]: ...

    def remember(self, res: Resource, obj: dict[str, Any]) -> None:
        """Put a write's result into the cache so the next sync does not act on stale data."""
        ...


class Fenced(Exception):
    """A write was refused because this replica is not (or no longer) the leader."""


class Writer(Protocol):
    """Every write of the controller. Returns the stored object, or None in dry-run mode."""

    def create(
        self, res: Resource, namespace: str, body: Mapping[str, Any], *, why: str
    ) -> dict[str, Any] | None: ...

    def replace(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
        why: str,
    ) -> dict[str, Any] | None: ...

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "json",
        subresource: str | None = None,
        why: str,
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Rendered:
    """A rendered ScaledObject (None when rendering failed) and the findings about the source."""

    manifest: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]


class ScaledObjectRenderer(Protocol):
    def for_pod_autoscaler(self, pa: Mapping[str, Any], config: KnscaleConfig) -> Rendered: ...

    def for_workload(self, workload: Mapping[str, Any], config: KnscaleConfig) -> Rendered: ...


class TranslatorRenderer:
    """`ScaledObjectRenderer` over the translator's `render_scaled_object` (translator/keda.py)."""

    def _render(self, obj: Mapping[str, Any], target: Mapping[str, Any], config: KnscaleConfig) -> Rendered:
        from translator.core.objects import object_ref
        from translator.core.rules import RULES
        from translator.keda import render as keda

        md = obj.get("metadata") or {}
        annotations = md.get("annotations") or {}
        spec = obj.get("spec") or {}
        containers = None
        if obj.get("kind") in {"Deployment", "StatefulSet"}:
            containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
        rev = keda.HpaRevision(
            name=str(md.get("name") or ""),
            annotations=annotations,
            target=keda.ScaleTargetRef(
                str(target.get("apiVersion") or "apps/v1"),
                str(target.get("kind") or "Deployment"),
                str(target.get("name") or ""),
            ),
            namespace=md.get("namespace"),
            labels=md.get("labels") or {},
            owner=keda.OwnerRef(
                str(obj.get("apiVersion")), str(obj.get("kind")), str(md.get("name")), str(md.get("uid"))
            ),
            reachable=spec.get("reachability") != "Unreachable",
            containers=containers,
        )
        result = keda.render_scaled_object(rev, config.autoscaler, config.keda)
        ref = object_ref(obj)
        findings = [
            RULES[i.rule_id].finding(ref, "metadata.annotations", i.key, i.value, i.message, i.fix)
            for i in result.issues
        ]
        return Rendered(result.manifest, findings)

    def for_pod_autoscaler(self, pa: Mapping[str, Any], config: KnscaleConfig) -> Rendered:
        return self._render(pa, (pa.get("spec") or {}).get("scaleTargetRef") or {}, config)

    def for_workload(self, workload: Mapping[str, Any], config: KnscaleConfig) -> Rendered:
        md = workload.get("metadata") or {}
        target = {
            "apiVersion": workload.get("apiVersion"),
            "kind": workload.get("kind"),
            "name": md.get("name"),
        }
        return self._render(workload, target, config)
