"""Settings of `knscale serve`: where to listen and where certificates come from.

Validated in one place, every problem reported at once (field errors and cross-field rules
together). Sources: command-line flags, then the environment (`KNSCALE_NAMESPACE`, set by the
Deployment from the downward API), then these defaults. The admission *behaviour* settings
live in `KnscaleConfig` (the `--config` file); this model is only about serving.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from knscale.logs import LogFormat
from knscale.settings import flag_problems, settings_error
from translator.core.names import is_dns1123_label
from webhook.registration import DEFAULT_NAMESPACE, DEFAULT_SERVICE, SECRET_NAME

CertMode = Literal["local", "files", "secret"]
DEFAULT_CERT_DIR = Path(".knscale/certs")
EMBEDDED_HOST = "127.0.0.1"
EMBEDDED_PORT = 8443

_DNS_NAME = re.compile(
    r"^(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*\Z"
)


def _check_label(value: str, what: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError(f"{what} must be a DNS-1123 label (lower case letters, digits, '-', at most 63)")
    return value


class ServeSettings(BaseModel):
    """Everything `knscale serve` needs besides the admission configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(EMBEDDED_HOST, description="Address to bind; 0.0.0.0 in a cluster.")
    port: int = Field(EMBEDDED_PORT, ge=1, le=65535)
    cert_dir: Path = Field(DEFAULT_CERT_DIR, description="ca.crt, tls.crt, tls.key live here.")
    cert_file: Path | None = Field(None, description="Serve this certificate (with key_file); never written.")
    key_file: Path | None = None
    in_cluster: bool = Field(False, description="Manage the certificate Secret and caBundles in the cluster.")
    manage_certs: bool = Field(True, description="False: only read cert_dir (cert-manager mounts it).")
    embedded: bool = Field(False, description="Local demo mode: 127.0.0.1:8443, self-made certs.")
    namespace: str = DEFAULT_NAMESPACE
    service_name: str = DEFAULT_SERVICE
    secret_name: str = SECRET_NAME
    config_file: Path | None = None
    tls_min_version: Literal["1.2", "1.3"] = "1.2"
    cert_poll_interval: float = Field(2.0, gt=0, le=300, description="Seconds between cert file polls.")
    cert_check_interval: float = Field(
        300.0, ge=1, le=86400, description="Seconds between renewal checks and caBundle syncs."
    )
    graceful_timeout: float = Field(20.0, ge=1, le=300, description="Seconds in-flight requests get on stop.")
    dns_names: tuple[str, ...] = Field((), description="Extra DNS SANs for self-made certificates.")
    ip_addresses: tuple[str, ...] = Field((), description="Extra IP SANs for self-made certificates.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: LogFormat = Field("text", description="text, or json: one object per line.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Plain-HTTP port serving only /metrics and /healthz; 0: off."
    )

    @field_validator("namespace", "service_name")
    @classmethod
    def _label(cls, value: str) -> str:
        return _check_label(value, "the value")

    @field_validator("secret_name")
    @classmethod
    def _subdomain(cls, value: str) -> str:
        if not _DNS_NAME.match(value):
            raise ValueError("must be a DNS-1123 subdomain")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _DNS_NAME.match(value.lower()):
                raise ValueError("must be an IP address or a host name") from None
        return value

    @field_validator("ip_addresses")
    @classmethod
    def _ips(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        bad = []
        for value in values:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                bad.append(value)
        if bad:
            raise ValueError(f"not IP addresses: {', '.join(bad)}")
        return values

    @field_validator("dns_names")
    @classmethod
    def _dns(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in values if not _DNS_NAME.match(v)]
        if bad:
            raise ValueError(f"not DNS names (lower case, no wildcards): {', '.join(bad)}")
        return values

    @property
    def cert_mode(self) -> CertMode:
        """files: read-only files (given, or mounted by cert-manager); secret: self-managed in
        the cluster; local: self-made under cert_dir (the default `make run` uses)."""
        if self.cert_file is not None or not self.manage_certs:
            return "files"
        return "secret" if self.in_cluster else "local"

    @property
    def serving_cert(self) -> Path:
        return self.cert_file if self.cert_file is not None else self.cert_dir / "tls.crt"

    @property
    def serving_key(self) -> Path:
        return self.key_file if self.key_file is not None else self.cert_dir / "tls.key"


def _cross_field_problems(values: Mapping[str, Any]) -> list[str]:
    problems = []
    metrics_port = values.get("metrics_port")
    if metrics_port and metrics_port == values.get("port", EMBEDDED_PORT):
        problems.append(f"  --metrics-port {metrics_port} is the TLS port; pick another (or 0: off)")
    if (values.get("cert_file") is None) != (values.get("key_file") is None):
        problems.append("  --cert-file and --key-file: give both or neither")
    if values.get("embedded"):
        if values.get("in_cluster"):
            problems.append("  --embedded and --in-cluster: choose one (--embedded is the local demo mode)")
        host = values.get("host")
        if host is not None and host not in {"127.0.0.1", "localhost", "::1"}:
            problems.append(f"  --embedded binds loopback only; drop --host {host}")
    return problems


def build_serve_settings(
    values: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> ServeSettings:
    """Flags (None = not given) over environment over defaults; raises SettingsError with all problems."""
    merged = {k: v for k, v in values.items() if v is not None}
    env = environ or {}
    if "namespace" not in merged and env.get("KNSCALE_NAMESPACE"):
        merged["namespace"] = env["KNSCALE_NAMESPACE"]
    if "log_format" not in merged and env.get("KNSCALE_LOG_FORMAT"):
        merged["log_format"] = env["KNSCALE_LOG_FORMAT"]
    problems = _cross_field_problems(merged)
    try:
        settings = ServeSettings.model_validate(merged)
    except ValidationError as exc:
        raise settings_error([*problems, *flag_problems(exc)]) from None
    if problems:
        raise settings_error(problems)
    return settings
