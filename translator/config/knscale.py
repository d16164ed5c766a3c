"""knscale's own configuration schema (the settings file / ConfigMap `knscale-config`).

Pure pydantic models: parsed and validated in one place (knscale/settings/files.py reads the file
and reports every error at once). The documented example in config/base/configmap.yaml must
equal `KnscaleConfig().model_dump(mode="json", by_alias=True)`; a test checks it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from translator.config.autoscaler import AutoscalerConfig, KedaConfig
from translator.core.names import (
    has_dotdot_segment,
    is_dns1123_subdomain,
    is_image_reference,
    mount_path_problem,
)
from translator.core.values import is_quantity, parse_quantity

# knscale sets these on the downloader itself; configuration may not override them.
RESERVED_ENV = frozenset({"MODEL_URI", "MODEL_BUCKET", "MODEL_PATH", "MODEL_DIR", "HOME"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


ModelScheme = Literal["s3", "gs", "https", "http", "hf", "pvc", "oci"]
OciMode = Literal["image-volume", "copy"]
_MINOR_VERSION = re.compile(r"^1\.(0|[1-9][0-9]{0,2})\Z")
PullPolicy = Literal["Always", "IfNotPresent", "Never"]

# A real, public downloader that takes `[source-uri, dest-dir]` arguments: KServe's storage
# initializer (entrypoint `initializer-entrypoint src dest …`, user 1000). The version matches
# the PyPI `kserve-storage` release the contract test runs (tests/integration).
DEFAULT_DOWNLOADER_IMAGE = "kserve/storage-initializer:v0.20.0"

MIB = 1024 * 1024


class InjectionConfig(_Strict):
    """How the model-download initContainer is built and which requests are allowed."""

    default_image: str = Field(
        default=DEFAULT_DOWNLOADER_IMAGE,
        description="Downloader image used when a pod names none; it must accept [source-uri, dest-dir] "
        "arguments. Always allowed, even when image_allowlist is set.",
    )
    image_pull_policy: PullPolicy = Field(
        default="IfNotPresent", description="imagePullPolicy of the initContainer."
    )
    image_allowlist: tuple[str, ...] | None = Field(
        default=None,
        description="Opt-in policy: if set, a user-chosen downloader image must match one of these "
        "glob patterns, e.g. 'registry.example.com/downloaders/*'. The registry host (case-insensitive; a "
        "port only if the pattern names it, ':*' for any) and the repository path are matched "
        "separately, and '*' never matches '/' (see docs/annotations.md). "
        "None allows any image (whoever creates the pod can already run any image).",
    )
    default_scheme: Literal["s3", "gs", "https", "http", "hf"] = Field(
        default="s3",
        description="Scheme for a bare bucket name in modelBucket (autotables_47 → s3://autotables_47).",
    )
    allowed_schemes: tuple[ModelScheme, ...] = Field(
        default=("s3", "gs", "https", "hf", "pvc", "oci"),
        description="Model source schemes a pod may use. Plain http is supported but off by default: "
        "it downloads models without transport security.",
    )
    source_allowlist: tuple[str, ...] | None = Field(
        default=None,
        description="Opt-in policy: if set, the source location (bucket, host, Hugging Face org or PVC "
        "claim) must match one of these glob patterns, optionally scheme-qualified "
        "('s3://autotables_*', 'models.example.com'); for oci:// the registry host, or "
        "'oci://registry.example.com/models/*' to match the repository path too.",
    )
    oci_mode: OciMode | None = Field(
        default=None,
        description="How an oci:// model is delivered: image-volume (mounted read-only, nothing copied) "
        "or copy (an initContainer running the model image copies oci_model_dir into an emptyDir). "
        "None: image-volume if min_kubernetes_version >= 1.35 (image volumes on by default), else copy.",
    )
    min_kubernetes_version: str = Field(
        default="1.34",
        description="Oldest Kubernetes minor version (1.N) the cluster's nodes and API servers run; "
        "decides the default oci_mode. 1.34 is the oldest release still supported upstream.",
    )
    oci_model_dir: str = Field(
        default="/models",
        description="Directory of an oci:// model image that holds the model (KServe modelcar layout): "
        "the subPath of the image volume, or what copy mode copies.",
    )
    mount_path: str = Field(
        default="/mnt/models",
        description="Where app containers see the model when knscale.dev/model-mount-path is unset.",
    )
    skip_containers: tuple[str, ...] = Field(
        default=(),
        description="App containers that never get the model mount, in addition to queue-proxy and "
        "istio-proxy (sidecars that never read models).",
    )
    run_as_user: int = Field(
        default=1000, ge=1, description="Numeric runAsUser of the initContainer (never root)."
    )
    run_as_group: int = Field(default=1000, ge=1, description="Numeric runAsGroup of the initContainer.")
    fs_group: int = Field(
        default=1000,
        ge=1,
        description="Pod fsGroup set when the pod has none, so the downloaded files are group-readable.",
    )
    cpu_request: str = Field(default="100m", description="initContainer CPU request.")
    cpu_limit: str = Field(default="1", description="initContainer CPU limit.")
    memory_request: str = Field(default="100Mi", description="initContainer memory request.")
    memory_limit: str = Field(default="1Gi", description="initContainer memory limit.")
    model_size_limit: str | None = Field(
        default=None,
        description="Default sizeLimit of the model emptyDir (knscale.dev/model-size-limit overrides); "
        "None leaves it unbounded like KServe.",
    )
    model_cache_claim: str | None = Field(
        default=None,
        description="ReadWriteMany PersistentVolumeClaim (in each pod's namespace) that caches downloaded "
        "models when a pod sets no knscale.dev/model-cache; None: no cache unless a pod names one.",
    )
    scratch_size_limit: str = Field(
        default="1Gi",
        description="sizeLimit of each writable scratch emptyDir (/tmp and HOME) of the initContainer.",
    )
    home_dir: str = Field(
        default="/home/knscale",
        description="HOME of the initContainer: a writable emptyDir, as its root filesystem is read-only.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra non-secret env for the downloader (e.g. S3_ENDPOINT). MODEL_* and HOME are "
        "knscale's; env a user sets on a pre-declared knscale-model-init container wins over these.",
    )
    system_namespaces: tuple[str, ...] = Field(
        default=("kube-system", "kube-public", "kube-node-lease"),
        description="Namespaces where injection is refused (a denial, not a silent skip).",
    )
    mutate_templates: bool = Field(
        default=False,
        description="Opt-in template mode: also inject into the pod templates of Deployments, "
        "StatefulSets and Knative Services/Configurations on CREATE/UPDATE (register with `knscale "
        "register --mutate-templates`). Off by default: the injected fields show up as drift in GitOps "
        "tools, and a Knative Service then needs kubernetes.podspec-init-containers enabled.",
    )
    max_request_bytes: int = Field(
        default=3 * MIB,
        ge=64 * 1024,
        le=64 * MIB,
        description="Largest AdmissionReview body the webhook reads (3 MiB, the apiserver's own request "
        "limit); larger bodies get HTTP 413.",
    )

    @field_validator("cpu_request", "cpu_limit", "memory_request", "memory_limit", "scratch_size_limit")
    @classmethod
    def _quantity(cls, value: str) -> str:
        # A resource amount: Kubernetes' quantity grammar, and not negative (the API server
        # refuses negative requests and limits).
        if not is_quantity(value) or parse_quantity(value) < 0:
            raise ValueError(f"{value!r} is not a Kubernetes quantity such as 100m, 1, 100Mi or 1Gi")
        return value

    @field_validator("model_size_limit")
    @classmethod
    def _optional_quantity(cls, value: str | None) -> str | None:
        return None if value is None else cls._quantity(value)

    @field_validator("model_cache_claim")
    @classmethod
    def _claim(cls, value: str | None) -> str | None:
        if value is not None and not is_dns1123_subdomain(value):
            raise ValueError(f"{value!r} is not a PersistentVolumeClaim name (lower-case RFC 1123 subdomain)")
        return value

    @field_validator("default_image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not is_image_reference(value):
            raise ValueError(f"{value!r} is not an image reference such as registry.example.com/repo:tag")
        return value

    @field_validator("min_kubernetes_version")
    @classmethod
    def _minor_version(cls, value: str) -> str:
        if not _MINOR_VERSION.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes minor version such as 1.35")
        return value

    @field_validator("mount_path", "home_dir", "oci_model_dir")
    @classmethod
    def _path(cls, value: str) -> str:
        problem = mount_path_problem(value)
        if problem is None and has_dotdot_segment(value):
            problem = "contains a '..' segment"
        if problem is not None:
            raise ValueError(f"{value!r} {problem}")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not _ENV_NAME.match(name) or name in RESERVED_ENV]
        if bad:
            raise ValueError(f"env names {bad} are invalid or reserved ({', '.join(sorted(RESERVED_ENV))})")
        return value


class KnscaleConfig(_Strict):
    """Everything the rules and renderers need to judge objects as a given cluster would."""

    injection: InjectionConfig = Field(default_factory=InjectionConfig)
    # Cluster facts for the autoscaling rules (Knative's config-autoscaler, autoscaler-keda's
    # config-autoscaler-keda); defaults are theirs. See translator/config/autoscaler.py.
    autoscaler: AutoscalerConfig = Field(default_factory=AutoscalerConfig)
    keda: KedaConfig = Field(default_factory=KedaConfig)
