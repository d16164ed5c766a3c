"""The hostile-input campaigns (fuzz/, `make fuzz` runs them in full), short and seeded, in every CI
run: a real `knscale serve` over TLS in pod and template mode, and `knscale lint` in forked children
under limits. Any failure they find is kept under the output directory for a regression test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO

pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]


def _campaign(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", *args, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
    )
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    return summary


def test_admission_campaign_short(tmp_path: Path) -> None:
    summary = _campaign(tmp_path, "admission", "--reviews", "1200", "--seed", "16")
    modes = summary["modes"]
    assert isinstance(modes, dict) and set(modes) == {"pod", "template"}
    for mode in modes.values():
        assert mode["failures"] == 0 and mode["sent"] == 600
        assert mode["by_outcome"].get("patched", 0) > 0, mode  # the injection path really ran


def test_lint_campaign_short(tmp_path: Path) -> None:
    summary = _campaign(tmp_path, "lint", "--inputs", "60", "--seed", "16")
    assert summary["failures"] == 0 and summary["inputs"] == 60
