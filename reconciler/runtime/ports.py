"""What the controller needs from its neighbours, as small interfaces.

`Cache` is backed by the informers, `Writer` wraps every write (leader fencing, dry run,
metrics), `ScaledObjectRenderer` is the translator's ScaledObject rendering. Keeping them
narrow lets the sync logic be tested with the fake API and swapped pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubeapi.client import PatchType
from kubeapi.resources import Resource
from translator.config.knscale import KnscaleConfig
from translator.core.findings import Finding
from translator.keda.revision import hpa_revision, pa_target, workload_target
from translator.keda.types import HpaRevision


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
    """`ScaledObjectRenderer` over the translator's `render_scaled_object` (translator/keda/render.py)."""

    def _render(self, obj: Mapping[str, Any], rev: HpaRevision, config: KnscaleConfig) -> Rendered:
        from translator.core.objects import META_ANNOTATIONS, object_ref
        from translator.core.rules import RULES
        from translator.keda.render import render_scaled_object

        result = render_scaled_object(rev, config.autoscaler, config.keda)
        ref = object_ref(obj)
        findings = [
            RULES[i.rule_id].finding(ref, META_ANNOTATIONS, i.key, i.value, i.message, i.fix)
            for i in result.issues
        ]
        return Rendered(result.manifest, findings)

    def for_pod_autoscaler(self, pa: Mapping[str, Any], config: KnscaleConfig) -> Rendered:
        # The one builder lint uses too (translator/keda/revision.py), reachability included.
        return self._render(pa, hpa_revision(pa, pa_target(pa)), config)

    def for_workload(self, workload: Mapping[str, Any], config: KnscaleConfig) -> Rendered:
        return self._render(workload, hpa_revision(workload, workload_target(workload)), config)
