"""`knscale reconcile` settings: parsed and validated in one place, every problem reported at once.

Built from the command-line flags (argparse dest names) over the environment (`POD_NAME`,
`POD_NAMESPACE` from the downward API) over defaults, as `ServeSettings` is. Durations take Go
syntax (`2s`, `500ms`, `1m30s`) or a plain number of seconds, like the rest of knscale's
configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from knscale.logs import LogFormat
from knscale.settings import SettingsError, flag_problems, settings_error
from reconciler.metrics.base import is_host_port
from reconciler.runtime.buckets import MAX_BUCKETS, all_lease_names
from reconciler.runtime.leader import LeaseConfig, default_identity
from translator.core.names import is_dns1123_label, is_dns1123_subdomain
from translator.core.values import SECOND, ParseError, RangeError, parse_duration, parse_http_url

DEFAULT_LEASE_NAME = "knscale-reconciler"
DEFAULT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _to_seconds(value: Any) -> float:
    """`2s`, `1m30s`, `500ms` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text) / SECOND
    except (ParseError, RangeError) as exc:
        raise ValueError(str(exc)) from None


Seconds = Annotated[float, BeforeValidator(_to_seconds)]


def _existing_file(value: str | None) -> str | None:
    if value and not Path(value).is_file():
        raise ValueError(f"{value} is not a readable file")
    return value or None


ExistingFile = Annotated[str | None, BeforeValidator(_existing_file)]


class ReconcileSettings(BaseModel):
    """Everything `knscale reconcile` needs besides the cluster configuration (`KnscaleConfig`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: ExistingFile = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str | None = Field(None, description="Namespace to watch; None: all namespaces.")
    interval: Seconds = Field(2.0, ge=0.1, le=3600, description="Seconds between decisions (KPA tick).")
    scrape_interval: Seconds = Field(1.0, ge=0.1, le=60)
    resync_period: Seconds = Field(300.0, ge=1, le=86400)
    dry_run: bool = False
    lease: LeaseConfig | None = Field(None, description="None: no leader election (dry run, or turned off).")
    metrics_address: str = "0.0.0.0"
    metrics_port: int = Field(9090, ge=0, le=65535, description="0 turns /metrics off.")
    prometheus_url: str | None = None
    prometheus_query: str | None = None
    prometheus_timeout: Seconds = Field(3.0, ge=0.1, le=60)
    scrape_timeout: Seconds = Field(3.0, ge=0.1, le=60)
    pod_address_overrides: Mapping[str, str] = Field(default_factory=dict)
    activator_probe_address: str | None = None
    activator_metrics: tuple[str, ...] | None = None  # None: auto (the activator pods); (): off
    metrics_file: ExistingFile = None
    config_file: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: LogFormat = Field("text", description="text, or json: one object per line.")

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace(cls, value: Any) -> str | None:
        text = str(value or "all")
        if text == "all":
            return None
        if not is_dns1123_label(text):
            raise ValueError(f"{text!r} is not a namespace name (or 'all')")
        return text

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        if value:
            try:
                parse_http_url(value)
            except ParseError as exc:
                raise ValueError(str(exc)) from None
        return value or None


class _LeaseFlags(BaseModel):
    """The leader-election flags, validated on their own so their errors join the others."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    lease_name: str = DEFAULT_LEASE_NAME
    lease_duration: Seconds = Field(15.0, ge=1, le=3600)
    renew_deadline: Seconds = Field(10.0, ge=0.5, le=3600)
    retry_period: Seconds = Field(2.0, ge=0.1, le=600)
    buckets: int = Field(1, ge=1, le=MAX_BUCKETS, description="Shards: one Lease per bucket.")

    @field_validator("lease_name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        text = str(value or DEFAULT_LEASE_NAME)
        if not is_dns1123_subdomain(text):
            raise ValueError(f"{text!r} is not a valid object name")
        return text


def _lease_namespace(explicit: str | None, environ: Mapping[str, str]) -> str:
    if explicit:
        return explicit
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    try:
        return DEFAULT_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "knscale-system"
    except OSError:
        return "knscale-system"


def _pod_address_overrides(items: Any, problems: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items or []:
        pod, sep, addr = str(item).partition("=")
        name = pod[:-1] + "x" if pod.endswith("*") else pod  # a prefix may end in "-"
        if not sep or not is_dns1123_subdomain(name):
            problems.append(f"--pod-address-override: {item!r} must be POD=HOST:PORT (or PREFIX*=HOST:PORT)")
        elif not is_host_port(addr):
            problems.append(f"--pod-address-override: {item!r}: {addr!r} is not HOST:PORT")
        else:
            overrides[pod] = addr
    return overrides


def _lease(raw: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]) -> LeaseConfig | None:
    flags = {k: raw[k] for k in _LeaseFlags.model_fields if raw.get(k) is not None}
    try:
        lease_flags = _LeaseFlags.model_validate(flags)
    except ValidationError as exc:
        problems += flag_problems(exc)
        return None
    namespace = _lease_namespace(raw.get("lease_namespace"), environ)
    if not is_dns1123_label(namespace):
        problems.append(f"--lease-namespace: {namespace!r} is not a namespace name")
    for name in all_lease_names(lease_flags.lease_name, lease_flags.buckets)[-1:]:
        if not is_dns1123_subdomain(name):
            problems.append(f"--lease-name: the bucket Lease name {name!r} is not a valid object name")
    if raw.get("no_leader_election") and lease_flags.buckets > 1:
        problems.append("--buckets > 1 needs leader election (drop --no-leader-election)")
    if raw.get("no_leader_election") or raw.get("dry_run"):
        return None  # a dry run never takes the Lease
    identity = str(raw.get("lease_identity") or environ.get("POD_NAME") or "") or default_identity()
    lease = LeaseConfig(
        lease_flags.lease_name,
        namespace,
        identity,
        lease_flags.lease_duration,
        lease_flags.renew_deadline,
        lease_flags.retry_period,
        lease_flags.buckets,
    )
    problems += lease.problems()
    return lease


def build_reconcile_settings(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> ReconcileSettings:
    """Flag values (argparse dest names; None = not given) over the environment over defaults.

    Raises `SettingsError` listing every problem: field errors, the Lease's consistency rules and
    the cross-flag rules together.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values = {k: v for k, v in raw.items() if v is not None and k in ReconcileSettings.model_fields}
    if values.get("kubeconfig") and raw.get("in_cluster"):
        problems.append("--kubeconfig and --in-cluster exclude each other; pick one")
    if raw.get("prometheus_query") and not raw.get("prometheus_url"):
        problems.append("--prometheus-query needs --prometheus-url")
    values["pod_address_overrides"] = _pod_address_overrides(raw.get("pod_address_override"), problems)
    probe = raw.get("activator_probe_address")
    if probe is not None and not is_host_port(str(probe)):
        problems.append(f"--activator-probe-address: {probe!r} is not HOST:PORT")
    elif probe is not None:
        values["activator_probe_address"] = str(probe)
    values["activator_metrics"] = _activator_metrics(raw.get("activator_metrics"), problems)
    values["lease"] = _lease(raw, env, problems)
    values["config_file"] = str(raw["config"]) if raw.get("config") else None
    if "log_format" not in values and env.get("KNSCALE_LOG_FORMAT"):
        values["log_format"] = env["KNSCALE_LOG_FORMAT"]
    settings = None
    try:
        settings = ReconcileSettings.model_validate(values)
    except ValidationError as exc:
        problems = flag_problems(exc) + problems
    if problems or settings is None:
        raise settings_error(problems)
    return settings


__all__ = ["ReconcileSettings", "SettingsError", "build_reconcile_settings"]


def _activator_metrics(raw: object, problems: list[str]) -> tuple[str, ...] | None:
    text = str(raw if raw is not None else "auto").strip()
    if text == "auto":
        return None
    if text == "off":
        return ()
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in addresses if not is_host_port(a)]
    if bad or not addresses:
        problems.append(f"--activator-metrics: {text!r} is not auto, off or a HOST:PORT list")
        return None
    return addresses
