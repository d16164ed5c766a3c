"""Process settings: parsed and validated in one place, every error reported at once.

Sources, lowest to highest priority: code defaults, the settings file (`--config FILE`, the
mounted `knscale-config` ConfigMap in a cluster), environment variables `KNSCALE_*`
(nested with `__`, e.g. `KNSCALE_INJECTION__DEFAULT_SCHEME=gs`), command-line flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from knscale.settings import SettingsError
from translator.config.knscale import KnscaleConfig


def _format_validation_error(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"  {source}: {loc}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`KNSCALE_INJECTION__DEFAULT_SCHEME=gs` → {"injection": {"default_scheme": "gs"}}.

    Values are parsed as YAML scalars/lists so `KNSCALE_INJECTION__IMAGE_ALLOWLIST=[a, b]` works.
    Only keys with a `__` section separator are configuration; other KNSCALE_* variables
    (such as KNSCALE_NAMESPACE) belong to the commands that read them.
    """
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("KNSCALE_") or "__" not in name:
            continue
        path = [p.lower() for p in name[len("KNSCALE_") :].split("__")]
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a settings file: plain YAML, or a ConfigMap whose `data["config.yaml"]` holds it."""
    text = read_text(path)
    doc = parse_yaml(lambda: yaml.safe_load(text) or {}, f"  {path}: not valid YAML")
    if not isinstance(doc, dict):
        raise SettingsError(f"  {path}: expected a mapping at the top level, got {type(doc).__name__}")
    if doc.get("kind") == "ConfigMap":
        data = doc.get("data") or {}
        if not isinstance(data, dict):
            raise SettingsError(f"  {path}: ConfigMap data must be a map, got {type(data).__name__}")
        inner = data.get("config.yaml")
        if inner is None:
            inner = ""
        if not isinstance(inner, str):
            raise SettingsError(
                f"  {path}: data['config.yaml'] must be a string holding YAML, got {type(inner).__name__}"
            )
        doc = parse_yaml(
            lambda: yaml.safe_load(inner) or {}, f"  {path}: data['config.yaml'] is not valid YAML"
        )
        if not isinstance(doc, dict):
            raise SettingsError(f"  {path}: data['config.yaml'] must be a mapping")
    return doc


T = TypeVar("T")


def read_text(path: Path) -> str:
    """A configuration file's text; unreadable or not UTF-8 → SettingsError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"  {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"  {path}: not UTF-8 text: {exc}") from None


def parse_yaml(parse: Callable[[], T], problem: str) -> T:
    """`parse()` (a YAML load), every parse failure as a SettingsError starting with `problem`."""
    try:
        return parse()
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. an impossible date such as 2020-13-45
        raise SettingsError(f"{problem}: {exc}") from None
    except RecursionError:
        raise SettingsError(f"{problem}: nested too deeply") from None


def load_config(
    path: Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    other_sections: tuple[str, ...] = (),
) -> KnscaleConfig:
    """Merge file, environment and flag overrides; validate once; report every error together.

    `other_sections` are top-level keys of the file that belong to another reader (the `lint:`
    section of `.knscale.yaml`, read by `knscale lint`) and are not settings.
    """
    merged: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        merged = {k: v for k, v in read_config_file(path).items() if k not in other_sections}
        source = str(path)
    if environ:
        merged = _deep_merge(merged, _env_overrides(environ))
    if overrides:
        merged = _deep_merge(merged, overrides)
    try:
        return KnscaleConfig.model_validate(merged)
    except ValidationError as exc:
        message = _format_validation_error(source, exc)
        more = _cross_field_problems(merged, exc)
        raise SettingsError("\n".join([message, *(f"  {source}: {p}" for p in more)])) from None


def _cross_field_problems(merged: dict[str, Any], exc: ValidationError) -> list[str]:
    """The checks across fields of a section that pydantic skipped because a field of the same
    section failed (a model validator runs only on valid fields), on the fields that are valid.

    Without this a user fixes a typo, runs again, and only then learns that min-scale exceeds
    max-scale. A problem that names a failing field is left out: it would judge a default.
    """
    failing: dict[str, set[str]] = {}
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], str):
            failing.setdefault(loc[0], set()).add(loc[1])
    out: list[str] = []
    for section, fields in sorted(failing.items()):
        info = KnscaleConfig.model_fields.get(section)
        data = merged.get(section)
        model = info.annotation if info is not None else None
        if not isinstance(data, dict) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        valid = {k: v for k, v in data.items() if k not in fields}
        try:
            model.model_validate(valid)
        except ValidationError as partial:
            named = {f.replace("_", "-") for f in fields} | fields
            for err in partial.errors():
                if err["loc"]:
                    continue  # a field error: already reported by the full validation
                for problem in str(err["msg"]).removeprefix("Value error, ").split("; "):
                    if not any(name in problem for name in named):
                        out.append(f"{section}: {problem}")
    return out
