"""The image `make image` built (build/image/oci), run for real: `make image-test`.

Runtime: podman from Debian, as root, with storage in a temporary directory (vfs driver). Two
settings are forced by the machines this runs on, not by the image: the `runc` runtime (crun
refuses their hybrid cgroup v1/v2 layout) and lowered nofile/nproc limits (the container the
tests run in lacks CAP_SYS_RESOURCE, so podman's default limits cannot be raised to). The image
runs the way the Deployments run it: its own user (65532, from the image config), read-only
root filesystem, a tmpfs /tmp, every capability dropped, no new privileges, and no network but
its own loopback, where the probe (tests/image/probe.py, run by the image's python3.11) talks to
`knscale serve` over TLS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "image"
LAYOUT = OUT / "oci"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
RUN_FLAGS = [
    "--rm",
    "--network=none",
    "--read-only",
    "--tmpfs=/tmp:rw,size=64m,mode=1777",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--ulimit=nofile=4096:4096",
    "--ulimit=nproc=4096:4096",
]


def _json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _blob(digest: str) -> Path:
    algorithm, hexdigest = digest.split(":")
    assert algorithm == "sha256"
    return LAYOUT / "blobs" / "sha256" / hexdigest


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    exe = shutil.which("podman")
    assert exe is not None, "podman is required (apt-get install podman runc)"
    assert shutil.which("runc") is not None, "runc is required (apt-get install runc)"
    store = tmp_path_factory.mktemp("podman")
    base = [
        exe,
        f"--root={store / 'root'}",
        f"--runroot={store / 'run'}",
        "--storage-driver=vfs",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
        "--runtime=runc",
    ]
    pulled = subprocess.run(
        [*base, "pull", "-q", f"oci:{LAYOUT}:{VERSION}"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    image_id = pulled.stdout.strip().splitlines()[-1]
    yield [*base, "run", *RUN_FLAGS, "--entrypoint=/usr/bin/python3.11", image_id]
    subprocess.run([*base, "rmi", "-f", image_id], capture_output=True, timeout=120, check=False)


def test_layout_is_consistent_and_its_digest_recorded() -> None:
    index = _json(LAYOUT / "index.json")
    assert _json(LAYOUT / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == VERSION
    assert (OUT / "DIGEST").read_text().strip() == descriptor["digest"]
    for blob in (LAYOUT / "blobs" / "sha256").iterdir():  # content-addressed: every name is its hash
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    manifest = _json(_blob(descriptor["digest"]))
    config = _json(_blob(manifest["config"]["digest"]))
    assert len(manifest["layers"]) == len(config["rootfs"]["diff_ids"]) == 2
    assert all(
        layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" for layer in manifest["layers"]
    )
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/knscale"]
    assert config["config"]["Cmd"] == ["serve", "--in-cluster"]


def test_the_pinned_debian_packages_are_the_ones_in_the_image() -> None:
    installed = set((OUT / "packages.lock").read_text().split())
    pinned = [
        line.split("#")[0].strip()
        for line in (ROOT / "image" / "debian-packages.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert pinned and set(pinned) <= installed
    # No package manager in the image: nothing can be installed into it at run time.
    assert not {p for p in installed if p.startswith(("apt=", "python3-pip="))}


def test_knscale_serve_answers_healthz_and_mutate_over_tls_inside_the_image(podman: list[str]) -> None:
    done = subprocess.run(
        [*podman, "-c", (Path(__file__).parent / "probe.py").read_text()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    log = report["server_log_tail"]
    assert (report["uid"], report["gid"]) == (65532, 65532)
    assert report["root_writable"] is False and report["root_write_error"] == "Read-only file system"
    assert report["healthz"] is not None, log
    assert report["healthz"][0] == 200, log
    assert report["tls_version"] in {"TLSv1.2", "TLSv1.3"}
    assert "127.0.0.1" in report["peer_names"]
    assert report["mutate_status"] == 200
    response = report["review"]["response"]
    assert response["uid"] == "image-test-1" and response["allowed"] is True, response
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    init = [op for op in patch if op["path"].startswith("/spec/initContainers")]
    assert init, patch
    assert "s3://bucket/model" in json.dumps(init)
    assert report["server_exit"] == 0, log  # SIGTERM: a clean, graceful stop


def test_the_default_entrypoint_is_knscale(podman: list[str]) -> None:
    run = [
        arg if arg != "--entrypoint=/usr/bin/python3.11" else "--entrypoint=/usr/local/bin/knscale"
        for arg in podman
    ]
    done = subprocess.run([*run, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"knscale {VERSION}"
