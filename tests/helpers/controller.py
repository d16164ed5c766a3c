"""Test wiring that needs the reconciler, so it cannot live in `kubeapi.testing` (kubeapi imports
none of knscale's other packages). The fake API itself is `kubeapi.testing.FakeKube`."""

from __future__ import annotations

from typing import Any

from kubeapi.testing import FakeKube


def build_controller(
    fake: FakeKube,
    clock: Any,
    *,
    sources: Any = None,
    dry_run: bool = False,
    lease: Any = None,
    out: Any = None,
    config: Any = None,
    identity: str = "test-replica",
    interval: float = 2.0,
) -> Any:
    """A Controller over the fake API with a fake clock; tests drive it step by step."""
    from reconciler.controller import Controller, ControllerOptions
    from reconciler.scaling.sources import MetricSources
    from translator.config.knscale import KnscaleConfig

    cfg = config or KnscaleConfig()
    options = ControllerOptions(dry_run=dry_run, lease=lease, identity=identity, interval=interval)
    return Controller(
        fake,
        options,
        config=lambda: cfg,
        sources=sources or MetricSources(),
        clock=clock,
        out=out or (lambda _line: None),
        elector_rand=lambda: 0.0,
    )
