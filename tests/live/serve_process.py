"""Start `knscale serve` / `knscale certs` as real subprocesses on loopback (live tests' helper)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def knscale_argv() -> list[str]:
    script = Path(sys.executable).parent / "knscale"
    if script.exists():
        return [str(script)]
    found = shutil.which("knscale")
    return [found] if found else [sys.executable, "-m", "knscale"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_certs(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*knscale_argv(), "certs", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def client_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


@contextlib.contextmanager
def serve(tmp: Path, ca_file: Path | None, *args: str, timeout: float = 30) -> Iterator[Served]:
    """Run `knscale serve --port <free> *args` until /readyz answers 200 over verified TLS."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*knscale_argv(), "serve", "--port", str(port), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"knscale serve exited with {process.returncode}:\n{served.log_text()}")
            ca = ca_file if ca_file is not None and ca_file.exists() else None
            if ca is not None:
                try:
                    with httpx.Client(verify=client_context(ca), timeout=2) as client:
                        if client.get(f"{served.base_url}/readyz").status_code == 200:
                            break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"knscale serve not ready after {timeout}s:\n{served.log_text()}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            served.stop()
