"""Shared helpers of the simulator tests: small synthetic apps and the real trace excerpt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.model import AppResult, AppSim, ModelConfig
from simulator.policies import build
from simulator.tick import simulate as run_app
from simulator.traces import AppTrace, make_app

REPO = Path(__file__).resolve().parents[3]


def shared_dir() -> Path | None:
    # CI checks shared/ out beside the clone; a worktree under wt/ has it one level further up.
    for base in (REPO / ".." / "shared", REPO / ".." / ".." / "shared"):
        if base.is_dir():
            return base
    return None


@pytest.fixture
def excerpt() -> Path:
    base = shared_dir()
    if base is None:
        pytest.skip("shared/ is not beside the clone")
    return base / "traces" / "azure2021_excerpt_invitro_200.csv"


def app_of(start: list[float] | np.ndarray, service: float | np.ndarray = 0.001) -> AppTrace:
    s = np.asarray(start, dtype=float)
    d = np.full(s.size, service) if np.isscalar(service) else np.asarray(service, dtype=float)
    return make_app("a", s, d)


def simulate(
    app: AppTrace, policy: str, cfg: ModelConfig | None = None, horizon: float | None = None
) -> AppResult:
    cfg = cfg or ModelConfig()
    built = build(policy, cfg)
    ctl = built.tick if built.tick is not None else built.event.fresh()  # type: ignore[union-attr]
    end = horizon if horizon is not None else float(np.max(app.start + app.duration))
    return run_app(AppSim(app, end, cfg, ctl))
