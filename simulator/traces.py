"""Request traces: the in-memory form every workload and loader produces, and the CSV loaders.

A ``Workload`` is a set of apps; one app is one scaled service (its functions share its
replicas, reference autoscaling-benchmark.md §4.4). Every app carries its requests sorted by
start time, each with a service time and the index of the function that served it (for the
per-function cold-start percentiles). Times are seconds from the start of the trace.

Loaders (nothing silently dropped: a malformed row raises ``TraceError`` naming file and line):

* Azure Functions 2021, one row per invocation: ``app,func,end_timestamp,duration``, rows in
  any order; start = end − duration.
* Azure Functions 2019, per-minute counts: ``HashOwner,HashApp,HashFunction,Trigger,1..1440``;
  each minute's calls are spread with exponential (default) or uniform gaps, seeded. The
  2019 trace has no per-call durations, so every call gets ``duration`` seconds.
* Plain ``timestamp,duration`` (timestamp = request start), one app.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Spreading = Literal["exponential", "uniform"]


class TraceError(ValueError):
    """A trace file that cannot be read exactly; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class AppTrace:
    name: str
    start: FloatArray  # sorted ascending
    duration: FloatArray
    func: IntArray  # function index of each request, into ``functions``
    functions: tuple[str, ...]

    @property
    def requests(self) -> int:
        return int(self.start.size)


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    apps: tuple[AppTrace, ...]
    horizon: float  # the end of the trace (a run charges replicas up to horizon + tail)

    @property
    def requests(self) -> int:
        return sum(a.requests for a in self.apps)


def make_app(
    name: str,
    start: FloatArray,
    duration: FloatArray,
    func: IntArray | None = None,
    functions: tuple[str, ...] = ("f0",),
) -> AppTrace:
    """Sort by start (stable, so equal starts keep their input order) and freeze."""
    order = np.argsort(start, kind="stable")
    f = np.zeros(start.size, dtype=np.int64) if func is None else func[order]
    return AppTrace(name, start[order].astype(np.float64), duration[order].astype(np.float64), f, functions)


def _horizon(apps: Iterable[AppTrace]) -> float:
    ends = [float(np.max(a.start + a.duration)) for a in apps if a.requests]
    return max(ends, default=0.0)


def _float(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TraceError(f"{where}: {what} {text!r} is not finite")
    return value


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            yield from enumerate(csv.reader(fh), start=1)
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc.reason})") from None


def sniff_format(path: Path) -> str:
    """'azure2021', 'azure2019' or 'plain', from the header line."""
    for _, row in _rows(path):
        header = [c.strip().lower() for c in row]
        if header[:4] == ["app", "func", "end_timestamp", "duration"]:
            return "azure2021"
        if header[:4] == ["hashowner", "hashapp", "hashfunction", "trigger"]:
            return "azure2019"
        if header[:2] == ["timestamp", "duration"]:
            return "plain"
        raise TraceError(
            f"{path}:1: unknown header {','.join(row)!r} (expected app,func,end_timestamp,"
            "duration | HashOwner,HashApp,HashFunction,Trigger,1..1440 | timestamp,duration)"
        )
    raise TraceError(f"{path}: empty file")


def load_azure2021(path: Path) -> Workload:
    starts: dict[str, list[float]] = defaultdict(list)
    durs: dict[str, list[float]] = defaultdict(list)
    funcs: dict[str, list[str]] = defaultdict(list)
    for line, row in _rows(path):
        if line == 1:
            continue
        where = f"{path}:{line}"
        if len(row) != 4:
            raise TraceError(f"{where}: expected 4 fields app,func,end_timestamp,duration, got {len(row)}")
        app, func = row[0].strip(), row[1].strip()
        if not app or not func:
            raise TraceError(f"{where}: empty app or func")
        end = _float(row[2], "end_timestamp", where)
        dur = _float(row[3], "duration", where)
        if dur < 0:
            raise TraceError(f"{where}: negative duration {dur}")
        starts[app].append(end - dur)
        durs[app].append(dur)
        funcs[app].append(func)
    return _assemble(path.stem, starts, durs, funcs)


def load_plain(path: Path) -> Workload:
    starts: list[float] = []
    durs: list[float] = []
    for line, row in _rows(path):
        if line == 1:
            continue
        where = f"{path}:{line}"
        if len(row) != 2:
            raise TraceError(f"{where}: expected 2 fields timestamp,duration, got {len(row)}")
        starts.append(_float(row[0], "timestamp", where))
        dur = _float(row[1], "duration", where)
        if dur < 0:
            raise TraceError(f"{where}: negative duration {dur}")
        durs.append(dur)
    return _assemble(path.stem, {"app": starts}, {"app": durs}, {"app": ["f0"] * len(starts)})


def load_azure2019(
    path: Path, *, spreading: Spreading = "exponential", duration: float = 1.0, seed: int = 0
) -> Workload:
    rng = np.random.default_rng(seed)
    starts: dict[str, list[float]] = defaultdict(list)
    durs: dict[str, list[float]] = defaultdict(list)
    funcs: dict[str, list[str]] = defaultdict(list)
    minutes = 0
    for line, row in _rows(path):
        if line == 1:
            minutes = len(row) - 4
            if minutes < 1:
                raise TraceError(
                    f"{path}:1: no per-minute columns after HashOwner,HashApp,HashFunction,Trigger"
                )
            continue
        where = f"{path}:{line}"
        if len(row) != minutes + 4:
            raise TraceError(f"{where}: expected {minutes + 4} fields, got {len(row)}")
        app, func = row[1].strip(), row[2].strip()
        for m, text in enumerate(row[4:]):
            try:
                count = int(text)
            except ValueError:
                raise TraceError(f"{where}: minute {m + 1} count {text!r} is not an integer") from None
            if count < 0:
                raise TraceError(f"{where}: minute {m + 1} count {count} is negative")
            if count:
                starts[app].extend((60.0 * m + _spread(rng, count, spreading)).tolist())
                durs[app].extend([duration] * count)
                funcs[app].extend([func] * count)
    return _assemble(path.stem, starts, durs, funcs)


def _spread(rng: np.random.Generator, count: int, spreading: Spreading) -> FloatArray:
    """Offsets of ``count`` calls inside one minute."""
    if spreading == "uniform":
        return np.sort(rng.uniform(0.0, 60.0, count))
    # Exponential gaps (invitro's default), rescaled so the calls stay inside the minute.
    gaps = rng.exponential(1.0, count + 1)
    offsets: FloatArray = np.cumsum(gaps)[:-1] / gaps.sum() * 60.0
    return offsets


def _assemble(
    name: str, starts: dict[str, list[float]], durs: dict[str, list[float]], funcs: dict[str, list[str]]
) -> Workload:
    if not any(starts.values()):
        return Workload(name, (), 0.0)
    t0 = min(min(v) for v in starts.values() if v)
    apps = []
    for app in sorted(starts):
        names = tuple(sorted(set(funcs[app])))
        index = {f: i for i, f in enumerate(names)}
        apps.append(
            make_app(
                app,
                np.asarray(starts[app], dtype=np.float64) - t0,
                np.asarray(durs[app], dtype=np.float64),
                np.asarray([index[f] for f in funcs[app]], dtype=np.int64),
                names,
            )
        )
    return Workload(name, tuple(apps), _horizon(apps))


def load_trace(path: Path, *, spreading: Spreading = "exponential", seed: int = 0) -> Workload:
    """Any of the three formats, chosen by the header."""
    fmt = sniff_format(path)
    if fmt == "azure2021":
        return load_azure2021(path)
    if fmt == "azure2019":
        return load_azure2019(path, spreading=spreading, seed=seed)
    return load_plain(path)
