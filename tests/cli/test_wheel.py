"""`python -m build` makes a wheel a CI job can `pip install` and run `knscale lint` from."""

from __future__ import annotations

import hashlib
import re
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


def _locked(lock: Path) -> dict[str, str]:
    """name -> version of a pip-compile lock file (names normalised as in PEP 503)."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", lock.read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_wheel_runs_in_a_fresh_venv_with_runtime_dependencies_only(wheel: Path, tmp_path: Path) -> None:
    """What the image does: the wheel plus requirements/runtime.lock, every hash checked, offline
    from the wheelhouse (`make wheelhouse`), into a venv that has nothing else: no dev tools, no
    checkout on the path. Then `knscale --help`, `knscale lint` and `knscale serve`'s import chain."""
    wheelhouse = ROOT / "build" / "wheelhouse"
    assert (wheelhouse / ".complete").is_file(), "no build/wheelhouse: run `make wheelhouse`"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements = tmp_path / "install.txt"
    requirements.write_text(
        (ROOT / "requirements" / "runtime.lock").read_text()
        + f"knscale @ {wheel.as_uri()} --hash=sha256:{digest}\n"
    )
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-index",
            "--no-compile",
            "--find-links",
            str(wheelhouse),
            "--only-binary=:all:",
            "--require-hashes",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert installed.returncode == 0, installed.stderr
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    names = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'])",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {re.sub(r"[-_.]+", "-", n).lower() for n in names} == set(
        _locked(ROOT / "requirements/runtime.lock")
    ) | {"knscale"}
    helped = subprocess.run(
        [str(venv / "bin" / "knscale"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout and "lint" in helped.stdout
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        '    knscale.dev/inject-model: "yes"\nspec: {containers: [{name: app, image: x}]}\n'
    )
    linted = subprocess.run(
        [str(venv / "bin" / "knscale"), "lint", str(manifest)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 1, (linted.stdout, linted.stderr)
    assert "KNS0" in linted.stdout  # a model-injection rule refused "yes"
    imported = subprocess.run(
        [str(python), "-c", "import webhook.server, reconciler.controller, uvicorn, kubernetes; print('ok')"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.stdout.strip() == "ok", imported.stderr


def test_locks_agree_with_each_other_and_with_pyproject() -> None:
    """runtime.lock pins every runtime dependency; dev.lock pins the same versions plus the dev
    extra; the venv the tests run in is exactly dev.lock (make venv installs it with hashes)."""
    import importlib.metadata
    import tomllib

    runtime = _locked(ROOT / "requirements/runtime.lock")
    dev = _locked(ROOT / "requirements/dev.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def name(requirement: str) -> str:
        return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]).lower()

    assert {name(r) for r in project["dependencies"]} <= set(runtime)
    assert {name(r) for r in project["optional-dependencies"]["dev"]} <= set(dev)
    assert {k: dev[k] for k in runtime} == runtime
    text = (ROOT / "requirements/runtime.lock").read_text() + (ROOT / "requirements/dev.lock").read_text()
    assert "--hash=sha256:" in text and "find-links" not in text.replace("--no-emit-find-links", "")
    drift = {
        pkg: (version, importlib.metadata.version(pkg))
        for pkg, version in dev.items()
        if importlib.metadata.version(pkg) != version
    }
    assert not drift, f"the venv is not the lock (run `make venv`): {drift}"
