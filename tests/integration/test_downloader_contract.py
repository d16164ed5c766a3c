"""The default downloader's contract, proven with its own code.

knscale's default image is `kserve/storage-initializer:v0.20.0`. Its entrypoint
(`initializer-entrypoint src_uri dest_dir [src_uri dest_dir …]`) hands the argument pairs to
`kserve_storage.Storage.download_files` — the PyPI package `kserve-storage==0.20.0` that the
image installs. This test builds the initContainer with `plan_injection`, then runs that package
in a subprocess with exactly the container's `args` and `env` (nothing inherited from the test
process) against a local HTTP server on 127.0.0.1, and checks the model lands in the dest dir.

Only the generic http(s) path runs here: it needs `requests` and `certifi`, which knscale's own
dependencies already bring; the package imports its cloud SDKs (boto3, google-cloud-storage,
azure, huggingface_hub) lazily, per scheme, so `pip install --no-deps kserve-storage==0.20.0`
is enough for this test.
"""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.common import INIT_CONTAINER_NAME
from translator.injection.plan import plan_injection

# The image's entrypoint, restated as the contract it implements: (src, dest) argument pairs
# go to Storage.download_files; a failure exits non-zero.
DRIVER = """
import sys
from kserve_storage import Storage
args = sys.argv[1:]
if len(args) < 2 or len(args) % 2:
    sys.exit("usage: src_uri dest_dir [src_uri dest_dir ...]")
Storage.download_files(args[0::2], args[1::2])
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    (root / "models" / "47").mkdir(parents=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _init_container(uri: str, tmp_path: Path) -> dict[str, Any]:
    mount = tmp_path / "mnt" / "models"
    config = KnscaleConfig(
        injection=InjectionConfig(
            # Plain http is off by default; the contract is the same for https.
            allowed_schemes=("http",),
            mount_path=str(mount),
            home_dir=str(tmp_path / "home"),
        )
    )
    pod = {
        "metadata": {
            "name": "m",
            "annotations": {"knscale.dev/inject-model": "true", "knscale.dev/model-uri": uri},
        },
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }
    plan, findings = plan_injection(pod, "ml", config)
    assert plan is not None and plan.init_container is not None, [f.text() for f in findings]
    container = dict(plan.init_container)
    assert container["name"] == INIT_CONTAINER_NAME
    assert container["image"] == "kserve/storage-initializer:v0.20.0"
    # The emptyDirs the kubelet would provide.
    mount.mkdir(parents=True)
    (tmp_path / "home").mkdir()
    return container


def _run(container: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {e["name"]: e["value"] for e in container["env"]}
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_single_model_file_lands_in_the_mount(model_server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = model_server
    payload = bytes(range(256)) * 64
    (root / "models" / "47" / "model.joblib").write_bytes(payload)
    container = _init_container(f"{base}/models/47/model.joblib", tmp_path)
    result = _run(container)
    assert result.returncode == 0, result.stderr
    dest = Path(container["args"][1])
    assert (dest / "model.joblib").read_bytes() == payload
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_DIR"] == str(dest) and env["MODEL_URI"] == container["args"][0]


def test_tarball_is_unpacked_into_the_mount(model_server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = model_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (
            ("model/config.json", b'{"layers": 3}'),
            ("model/weights.bin", b"\x00\x01" * 1000),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "models" / "47" / "model.tar.gz").write_bytes(buf.getvalue())
    container = _init_container(f"{base}/models/47/model.tar.gz", tmp_path)
    result = _run(container)
    assert result.returncode == 0, result.stderr
    dest = Path(container["args"][1])
    assert (dest / "model" / "config.json").read_bytes() == b'{"layers": 3}'
    assert (dest / "model" / "weights.bin").stat().st_size == 2000


def test_missing_model_fails_the_init_container(model_server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = model_server
    container = _init_container(f"{base}/models/47/absent.bin", tmp_path)
    result = _run(container)
    assert result.returncode != 0
    assert "not found" in result.stderr
