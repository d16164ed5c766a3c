"""Run a matrix of workloads × policies × seeds, with a progress bar on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from simulator.metrics import Run, run_one
from simulator.model import ModelConfig
from simulator.oracle import levels
from simulator.policies import build
from simulator.traces import Workload
from simulator.workloads import generate


@dataclass
class Progress:
    """A one-line bar on stderr, shown only once a run has taken longer than ``after`` seconds."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    after: float = 3.0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _shown: bool = False
    _last: float = 0.0

    def advance(self, n: int, label: str = "") -> None:
        self.done += n
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed < self.after or (now - self._last < 0.5 and self.done < self.total):
            return
        self._last = now
        self._shown = True
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(30 * frac)
        rate = self.done / elapsed if elapsed else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        self.stream.write(
            f"\r[{bar:<30}] {100 * frac:5.1f}%  {rate:,.0f} req/s  eta {eta:4.0f}s  {label:<24}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


WorkloadSource = Callable[[int], Workload]


def synthetic(name: str, overrides: Mapping[str, float] | None = None) -> WorkloadSource:
    return lambda seed: generate(name, seed, overrides)


def run_matrix(
    sources: Sequence[tuple[str, WorkloadSource]],
    policies: Sequence[str],
    seeds: Sequence[int],
    cfg: ModelConfig,
    *,
    policy_params: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Run]:
    """Every policy on every (workload, seed); the workload and its oracle levels are built once per seed."""
    built = [build(p, cfg, policy_params) for p in policies]  # fail fast on a bad name
    jobs: list[tuple[str, int, Workload]] = []
    for name, source in sources:
        for seed in seeds:
            jobs.append((name, seed, source(seed)))
    sim_policies = sum(1 for b in built if not b.oracle)
    bar = Progress(sum(w.requests for _, _, w in jobs) * max(1, sim_policies)) if progress else None
    runs: list[Run] = []
    for name, seed, wl in jobs:
        lvs = [levels(a, cfg.container_concurrency) for a in wl.apps]
        for b in built:
            label = f"{name} {b.name} s{seed}"

            def tick(n: int, label: str = label, sim: bool = not b.oracle) -> None:
                if bar is not None and sim:
                    bar.advance(n, label)

            run = run_one(wl, b, cfg, seed, lvs, on_app=tick)
            run.workload = name
            runs.append(run)
    if bar is not None:
        bar.close()
    return runs
