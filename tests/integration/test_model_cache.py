"""The shared model cache, run as the pod runs it: the init container `plan_injection` builds for
`knscale.dev/model-cache`, executed with exactly its `command`, `args` and `env` (nothing
inherited) by the downloader image's own code (`kserve-storage==0.20.0`, as in
test_downloader_contract.py), against a local HTTP server on 127.0.0.1 that counts its GETs.
The claim's root, mounted at /knscale-cache in the pod, is a temporary directory here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.cache import CACHE_ROOT, PYTHON
from translator.injection.cache_script import cache_key
from translator.injection.common import MODEL_VOLUME
from translator.injection.plan import plan_injection

CHUNK = 16 * 1024


@dataclass
class Served:
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    delay: float = 0.0  # seconds per chunk: slow enough for two pods to overlap, or to be killed
    gets: list[str] = field(default_factory=list)


@pytest.fixture
def served() -> Iterator[Served]:
    state = Served("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.gets.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body), CHUNK):
                    self.wfile.write(body[i : i + CHUNK])
                    time.sleep(state.delay)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the "pod" was killed mid-download

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _container(uri: str, tmp_path: Path) -> dict[str, Any]:
    config = KnscaleConfig(
        injection=InjectionConfig(allowed_schemes=("http",), home_dir=str(tmp_path / "home"))
    )
    pod = {
        "metadata": {
            "name": "m",
            "annotations": {
                "knscale.dev/inject-model": "true",
                "knscale.dev/model-uri": uri,
                "knscale.dev/model-cache": "model-cache",
            },
        },
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }
    plan, findings = plan_injection(pod, "ml", config)
    assert plan is not None and plan.init_container is not None, [f.text() for f in findings]
    assert plan.volumes[0] == {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": "model-cache"}}
    (mount,) = plan.container_edits[0].append["volumeMounts"]
    assert mount["readOnly"] is True and mount["subPath"] == cache_key(uri)
    (tmp_path / "home").mkdir(exist_ok=True)
    return dict(plan.init_container)


def _argv(container: dict[str, Any], root: Path) -> list[str]:
    """The container's command and args as the kubelet hands them over (`$$` → `$`), with the
    claim's mount point replaced by this test's directory."""
    command = [c.replace("$$", "$") for c in container["command"]]
    args = [a.replace("$$", "$") for a in container["args"]]
    assert command[0] == PYTHON and args[1] == CACHE_ROOT
    args[1] = str(root)
    return [sys.executable, *command[1:], *args]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _start(container: dict[str, Any], root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _argv(container, root), env=_env(container), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run(container: dict[str, Any], root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(container, root), env=_env(container), capture_output=True, text=True, timeout=120, check=False
    )


def _model(served: Served, size: int) -> tuple[str, bytes]:
    payload = os.urandom(size)
    served.files["/models/47/model.bin"] = payload
    return f"{served.base}/models/47/model.bin", payload


def test_two_concurrent_pods_download_once_and_both_see_the_model(served: Served, tmp_path: Path) -> None:
    uri, payload = _model(served, 256 * 1024)
    served.delay = 0.02  # ~0.3 s of download: the second pod starts while the first holds the lock
    container = _container(uri, tmp_path)
    root = tmp_path / "claim"
    root.mkdir()
    first, second = _start(container, root), _start(container, root)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert served.gets == ["/models/47/model.bin"]  # one download for two pods
    key = cache_key(uri)
    assert (root / key / "model.bin").read_bytes() == payload
    assert (root / f"{key}.complete").is_file()
    assert sorted(p.name for p in root.iterdir()) == [key, f"{key}.complete", f"{key}.lock"]
    logs = "".join(err for _, err in outs)
    assert logs.count(f"miss {key}") == 1 and logs.count(f"hit {key}") == 1, logs


def test_a_later_pod_hits_without_any_request(served: Served, tmp_path: Path) -> None:
    uri, payload = _model(served, 64 * 1024)
    container = _container(uri, tmp_path)
    root = tmp_path / "claim"
    root.mkdir()
    assert _run(container, root).returncode == 0
    again = _run(container, root)
    assert again.returncode == 0, again.stderr
    assert "hit" in again.stderr and served.gets == ["/models/47/model.bin"]
    assert (root / cache_key(uri) / "model.bin").read_bytes() == payload


def test_a_killed_download_leaves_no_marker_and_the_next_start_completes_it(
    served: Served, tmp_path: Path
) -> None:
    uri, payload = _model(served, 1024 * 1024)
    served.delay = 0.05  # ~3 s in all; killed after its first bytes land
    container = _container(uri, tmp_path)
    root = tmp_path / "claim"
    root.mkdir()
    key = cache_key(uri)
    pod = _start(container, root)
    deadline = time.monotonic() + 60
    while not any(p.is_file() and p.stat().st_size > 0 for p in root.glob(f"{key}.partial-*/*")):
        assert pod.poll() is None and time.monotonic() < deadline, pod.communicate()
        time.sleep(0.02)
    pod.send_signal(signal.SIGKILL)
    pod.communicate(timeout=30)
    assert not (root / f"{key}.complete").exists() and not (root / key).exists()
    assert list(root.glob(f"{key}.partial-*")), "the killed pod's partial copy is what the next one finds"

    served.delay = 0.0
    retry = _run(container, root)
    assert retry.returncode == 0, retry.stderr
    assert "left by an incomplete download" in retry.stderr
    assert (root / key / "model.bin").read_bytes() == payload
    assert not list(root.glob(f"{key}.partial-*")) and (root / f"{key}.complete").is_file()
    assert len(served.gets) == 2


def test_leftovers_without_a_marker_are_never_served(served: Served, tmp_path: Path) -> None:
    uri, payload = _model(served, 32 * 1024)
    container = _container(uri, tmp_path)
    root = tmp_path / "claim"
    key = cache_key(uri)
    (root / f"{key}.partial-dead-pod-7").mkdir(parents=True)
    (root / f"{key}.partial-dead-pod-7" / "model.bin").write_bytes(b"half")
    (root / key).mkdir()  # renamed, then the pod died before the marker
    (root / key / "model.bin").write_bytes(b"unverified")
    result = _run(container, root)
    assert result.returncode == 0, result.stderr
    assert (root / key / "model.bin").read_bytes() == payload
    assert sorted(p.name for p in root.iterdir()) == [key, f"{key}.complete", f"{key}.lock"]
    # a marker without its entry (an eviction cut short) is no hit either
    shutil.rmtree(root / key)
    again = _run(container, root)
    assert again.returncode == 0 and "miss" in again.stderr, again.stderr
    assert (root / key / "model.bin").read_bytes() == payload and len(served.gets) == 2


def test_a_failed_download_leaves_nothing_behind(served: Served, tmp_path: Path) -> None:
    container = _container(f"{served.base}/models/47/absent.bin", tmp_path)
    root = tmp_path / "claim"
    root.mkdir()
    result = _run(container, root)
    assert result.returncode == 1
    assert "download of http://127.0.0.1" in result.stderr and "failed" in result.stderr
    assert [p.name for p in root.iterdir()] == [f"{cache_key(container['args'][0])}.lock"]


def test_a_full_cache_volume_is_a_clear_error_and_no_marker(served: Served, tmp_path: Path) -> None:
    """A real ENOSPC: the claim is a 1 MiB tmpfs (in a private mount namespace) and the model 2 MiB."""
    uri, _ = _model(served, 2 * 1024 * 1024)
    container = _container(uri, tmp_path)
    root = tmp_path / "claim"
    root.mkdir()
    shell = 'mount -t tmpfs -o size=1m knscale-test "$0" || exit 90; "$@"; rc=$?; ls -a "$0"; exit $rc'
    result = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", shell, str(root), *_argv(container, root)],
        env=_env(container),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 28, (result.stdout, result.stderr)
    assert "is full while storing" in result.stderr and "no marker written" in result.stderr
    key = cache_key(uri)
    assert sorted(result.stdout.split()) == [".", "..", f"{key}.lock"]  # no marker, no partial copy
