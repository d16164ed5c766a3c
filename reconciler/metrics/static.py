"""Fixed or file-backed totals: a collector for tests, the simulator and dry runs.

``StaticCollector`` answers from an in-memory mapping that the caller may change between
ticks. ``FileCollector`` re-reads a JSON file on every call, so another process can drive it:

    {"default/my-app": {"concurrency": 12.5, "rps": 40},
     "default/other": null}                # null or absent: metrics missing

Each value may give ``concurrency``, ``proxied_concurrency``, ``rps``, ``proxied_rps`` (revision
totals, ≥ 0, finite); anything else makes that revision's collection missing, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from reconciler.kpa.windows import StatTotals
from reconciler.metrics.base import Collection, CollectTarget, RevisionKey, check_value, missing

MAX_FILE_BYTES = 4 << 20
_FIELDS = ("concurrency", "proxied_concurrency", "rps", "proxied_rps")


def totals_from_json(value: Any) -> StatTotals:
    if not isinstance(value, dict):
        raise ValueError("expected an object with concurrency/rps totals")
    unknown = set(value) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; allowed: {', '.join(_FIELDS)}")
    numbers: dict[str, float] = {}
    for field in _FIELDS:
        raw = value.get(field, 0.0)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{field} must be a number, got {raw!r}")
        problem = check_value(field, float(raw))
        if problem:
            raise ValueError(problem)
        numbers[field] = float(raw)
    return StatTotals(**numbers)


class StaticCollector:
    name = "static"

    def __init__(self, values: Mapping[RevisionKey, StatTotals | None] | None = None) -> None:
        self.values: MutableMapping[RevisionKey, StatTotals | None] = dict(values or {})

    async def collect(self, target: CollectTarget, now: float) -> Collection:
        stat = self.values.get(target.key)
        if stat is None:
            return missing(target.key, self.name, "no static value for this revision")
        return Collection(key=target.key, status="ok", stat=stat, source=self.name)

    async def aclose(self) -> None:
        return None


class FileCollector:
    name = "file"

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)

    def _read(self) -> dict[str, Any]:
        with self._path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError('top level must be an object {"namespace/name": {...}}')
        return data

    async def collect(self, target: CollectTarget, now: float) -> Collection:
        try:
            data = self._read()
        except (OSError, ValueError) as exc:
            return missing(target.key, self.name, f"cannot read {self._path}: {exc}")
        entry = data.get(str(target.key))
        if entry is None:
            return missing(target.key, self.name, f"{self._path} has no value for {target.key}")
        try:
            stat = totals_from_json(entry)
        except ValueError as exc:
            return missing(target.key, self.name, f"{self._path} [{target.key}]: {exc}")
        return Collection(key=target.key, status="ok", stat=stat, source=self.name)

    async def aclose(self) -> None:
        return None
