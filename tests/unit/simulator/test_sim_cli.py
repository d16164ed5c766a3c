"""`knscale simulate` end to end (in-process): table formats, plots, flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knscale.cli import main

SMALL = ["--workload", "W1", "--param", "duration=120", "--param", "rate=5", "--seeds", "2", "--no-progress"]


def test_json_has_the_reference_columns_with_ci(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--policy", "kpa,knscale,oracle", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["columns"][:3] == ["workload", "policy", "requests"]
    assert data["columns"][-2:] == ["scale_events", "max_replicas"]
    rows = {r["policy"]: r for r in data["rows"]}
    assert set(rows) == {"kpa", "knscale", "oracle"}
    assert rows["oracle"]["x_oracle"]["mean"] == 1.0
    assert rows["kpa"]["seeds"] == 2 and rows["kpa"]["requests"]["ci95"] >= 0


def test_markdown_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--policy", "kpa", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| workload | policy | requests | cold_starts | cs_affected_per_1k | queued |")
    assert main(["simulate", *SMALL, "--policy", "keepalive-90s", "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("workload,policy,seeds,requests,requests_ci95,cold_starts")


def test_plots_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--policy", "kpa,knscale,oracle", "--plots", str(tmp_path)]) == 0
    for name in ("W1-timeline.png", "W1-pareto.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "W9"], "unknown workload 'W9'"),
        (["--workload", "W1", "--param", "bogus=1"], "--param 'bogus' is not a parameter"),
        (["--workload", "W1", "--param", "rate"], "expected NAME=NUMBER"),
        (["--workload", "W1", "--param", "duration=10", "--policy", "nope"], "unknown policy 'nope'"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--no-progress", "--seeds", "1", *args]) == 2
    assert message in capsys.readouterr().err


def test_trace_replay_of_the_real_excerpt(excerpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--trace", str(excerpt), "--policy", "kpa,knscale,oracle", "--seeds", "1"]
    assert main([*args, "--format", "json", "--no-progress"]) == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert {r["requests"]["mean"] for r in rows.values()} == {199.0}
    assert rows["oracle"]["cold_starts"]["mean"] == 0
    assert rows["kpa"]["cs_affected_per_1k"]["mean"] > 0  # sparse apps: KPA is cold on them
