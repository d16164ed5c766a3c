"""`python -m build` makes a wheel a CI job can `pip install` and run `knscale lint` from."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("knscale-*.whl")
    return built


def test_wheel_carries_every_package_its_data_and_the_console_script(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("knscale", "webhook", "translator", "certs", "reconciler"):
        assert f"{package}/__init__.py" in names and f"{package}/py.typed" in names
    assert "reconciler/metrics/proto/stat.proto" in names  # loaded at import by the collectors
    assert "knscale/rules.md" in names  # docs/rules.md, for `knscale rules ID` and SARIF help
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "knscale = knscale.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_lints_from_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    manifest = tmp_path / "ksvc.yaml"
    manifest.write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\n"
        "spec:\n  template:\n    metadata:\n      annotations:\n"
        '        autoscaling.knative.dev/minscale: "1"\n'
        "    spec: {containers: [{image: x}]}\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    probe = subprocess.run(
        [sys.executable, "-c", "import knscale, reconciler.metrics; print(knscale.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(target))  # the wheel's copy, not the checkout
    result = subprocess.run(
        [sys.executable, "-m", "knscale", "lint", "--fail-on", "warning", str(manifest)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "KNS111" in result.stdout and "min-scale" in result.stdout
    explained = subprocess.run(
        [sys.executable, "-m", "knscale", "rules", "KNS106"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Bad:" in explained.stdout and "Good:" in explained.stdout  # the docs travel in the wheel
