"""One log line per scale decision of the KPA loop, with the fields `--log-format json` writes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from helpers.controller import build_controller

from knscale.logs import JsonFormatter, TextFormatter
from kubeapi.resources import DEPLOYMENTS, PODS
from kubeapi.testing import CLASS_KEY, KPA, FakeKube, pod, workload
from reconciler.kpa.windows import StatTotals
from reconciler.metrics import RevisionKey, StaticCollector
from reconciler.runtime.clock import FakeClock
from reconciler.scaling.sources import MetricSources


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [dict(r.knscale) for r in caplog.records if r.name == "knscale.scaling"]


def test_a_scale_up_is_one_info_line_with_target_desired_previous_policy_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA}, replicas=1))
    fake.seed(PODS, pod("web-0", "web", ip="10.0.0.1"))
    static = StaticCollector({RevisionKey("default", "web"): StatTotals(concurrency=700)})
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static))
    try:
        caplog.set_level(logging.INFO, logger="knscale.scaling")
        ctrl.step_informers()
        records = []
        for _ in range(8):
            clock.advance(1)
            ctrl.scrape_once()
            ctrl.step_informers()
            records += ctrl.tick()
    finally:
        ctrl.close_collectors()
    scaled = [r for r in records if r.action == "scaled"]
    assert scaled, [r.line() for r in records]
    lines = _lines(caplog)
    info = [r for r in caplog.records if r.name == "knscale.scaling" and r.levelno == logging.INFO]
    assert len(info) == len(lines)  # other decisions are debug: not captured here
    first = next(line for line in lines if line["action"] == "scaled")
    assert first["target"] == "Deployment default/web"
    assert (first["namespace"], first["name"], first["kind"]) == ("default", "web", "Deployment")
    assert first["previous"] == 1 and first["desired"] == scaled[0].desired > 1
    assert first["policy"] == "kpa" and first["reason"] == scaled[0].reason and first["mode"]
    # The text format prints the line the reconciler always printed (e2e scenario 5 greps it).
    record = next(r for r in info if r.knscale["action"] == "scaled")  # type: ignore[attr-defined]
    text = TextFormatter().format(record)
    assert text.endswith(f"knscale.scaling: decision {scaled[0].line()}")
    assert json.loads(JsonFormatter().format(record))["desired"] == scaled[0].desired


def test_steady_decisions_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    fake, clock = FakeKube(), FakeClock()
    fake.seed(DEPLOYMENTS, workload("web", annotations={CLASS_KEY: KPA}, replicas=2))
    for i in range(2):
        fake.seed(PODS, pod(f"web-{i}", "web", ip=f"10.0.0.{i + 1}"))
    static = StaticCollector({RevisionKey("default", "web"): StatTotals(concurrency=140)})
    ctrl = build_controller(fake, clock, sources=MetricSources(queue_proxy=static))
    try:
        caplog.set_level(logging.DEBUG, logger="knscale.scaling")
        ctrl.step_informers()
        for _ in range(4):
            clock.advance(1)
            ctrl.scrape_once()
            ctrl.tick()
    finally:
        ctrl.close_collectors()
    records = [r for r in caplog.records if r.name == "knscale.scaling"]
    assert records and all(r.levelno == logging.DEBUG for r in records)
    assert {r.knscale["action"] for r in records} <= {"unchanged", "held"}  # type: ignore[attr-defined]
    assert records[0].getMessage().startswith("decision Deployment default/web: ")
