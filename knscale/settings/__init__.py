"""Settings of every knscale process, parsed and validated in one place, every error at once.

One style for all of them: frozen pydantic models, built from command-line flags over the
environment over defaults, with every problem — field errors and cross-field rules together —
reported in one `SettingsError`, one line per problem, naming the flag or key.

- `files`: the cluster configuration `KnscaleConfig` (the `--config` file / `knscale-config`
  ConfigMap, `KNSCALE_SECTION__FIELD` environment overrides), shared by serve, reconcile,
  lint and translate; `watch` re-reads it when the mounted ConfigMap changes.
- `serve`: `ServeSettings` of `knscale serve`.
- `reconcile`: `ReconcileSettings` of `knscale reconcile`.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError


class SettingsError(Exception):
    """Configuration is invalid; the message lists every problem, one per line."""


def flag_problems(exc: ValidationError) -> list[str]:
    """pydantic's errors as `--flag-name: message (got value)` lines (field `a_b` is flag `--a-b`)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"--{loc.replace('_', '-')}: {message} (got {err.get('input')!r})")
    return out


def settings_error(problems: Iterable[str]) -> SettingsError:
    return SettingsError("\n".join(f"  {p.strip()}" for p in problems))
