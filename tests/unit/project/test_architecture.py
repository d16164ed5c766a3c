"""The import-direction contract is part of the test suite, not only of `make lint`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from helpers.paths import REPO

ROOT = REPO


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every contract declared in pyproject.toml ran and held (none silently dropped).
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(declared)} kept, 0 broken" in result.stdout
