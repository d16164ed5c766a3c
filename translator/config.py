"""knscale's own configuration schema (the settings file / ConfigMap `knscale-config`).

Pure pydantic models: parsed and validated in one place (knscale/settings.py reads the file
and reports every error at once). The documented example in config/base/configmap.yaml must
equal `KnscaleConfig().model_dump(mode="json", by_alias=True)`; a test checks it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InjectionConfig(_Strict):
    """How the model-download initContainer is built and which requests are allowed."""

    # Filled in by the model-injection work (issue 3); see docs/annotations.md.


class KnscaleConfig(_Strict):
    """Everything the rules and renderers need to judge objects as a given cluster would."""

    injection: InjectionConfig = Field(default_factory=InjectionConfig)
