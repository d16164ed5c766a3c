"""Benchmark: the cold-start cost of the model path, per way of delivering a model (issue 15).

One generated model file (`--size-mb`, 300 MB of random bytes: nothing compresses) is served
over HTTP from 127.0.0.1 by a thread of this process. Each case runs the init container's work
as a subprocess, wall-clock time from start to exit, median and min of `--repeat` runs ((a) and
(b) take turns going first):

  (a) download  KServe's storage initializer code (kserve-storage, the image's entrypoint
                contract: Storage.download_files) into an empty directory, what every pod of a
                plain `knscale.dev/model-uri` does;
  (b) miss      the cache init container knscale injects for `knscale.dev/model-cache` (its
                exact command and args), on an empty cache: lock, download into a partial
                directory, fsync, rename, marker;
  (c) hit       the same container again: it finds the marker and exits;
  (d) oci       an `oci://` image volume: no init container, so 0 s on the model path here.
                The cost moves to the kubelet's image pull and mount, which no kubelet on this
                machine can measure; it is not measured, and the table says so.

Python's own start-up (`python3 -c pass`) is shown as the floor of (a)-(c). Disk and network are
this machine's (a local disk, loopback): a cluster's network and a network file system (the
cache's RWX claim) are slower, so the absolute numbers are a lower bound; the ratios are the point.

Run: ``python -m bench coldstart [--size-mb 300] [--repeat 3]``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.cache import CACHE_ROOT
from translator.injection.plan import plan_injection

# The storage-initializer image's entrypoint contract (tests/integration/test_downloader_contract.py).
DRIVER = (
    "import sys\nfrom kserve_storage import Storage\nStorage.download_files(sys.argv[1::2], sys.argv[2::2])\n"
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(root: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _generate(path: Path, size_mb: int) -> None:
    block = 1024 * 1024
    with path.open("wb") as f, Path("/dev/urandom").open("rb") as rnd:
        for _ in range(size_mb):
            f.write(rnd.read(block))


def _cache_container(uri: str, home: Path) -> dict[str, Any]:
    config = KnscaleConfig(injection=InjectionConfig(allowed_schemes=("http",), home_dir=str(home)))
    pod = {
        "metadata": {
            "name": "bench",
            "annotations": {
                "knscale.dev/inject-model": "true",
                "knscale.dev/model-uri": uri,
                "knscale.dev/model-cache": "model-cache",
            },
        },
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }
    plan, findings = plan_injection(pod, "bench", config)
    if plan is None or plan.init_container is None:
        raise SystemExit(f"no cache plan: {[f.text() for f in findings]}")
    return dict(plan.init_container)


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{argv[:2]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def _row(name: str, what: str, times: list[float], size_mb: int) -> str:
    med = statistics.median(times)
    rate = f"{size_mb / med:,.0f} MB/s" if what != "floor" and med > 0.5 else "—"
    return f"| {name} | {med:.2f} s | {min(times):.2f} s | {rate} |"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench coldstart", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=300, help="model size (default 300 MB)")
    parser.add_argument("--repeat", type=int, default=4, help="runs per case (default 4)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="knscale-coldstart-") as tmp:
        work = Path(tmp)
        served = work / "served" / "models"
        served.mkdir(parents=True)
        _generate(served / "model.bin", args.size_mb)
        (work / "home").mkdir()
        with _serve(work / "served") as base:
            uri = f"{base}/models/model.bin"
            container = _cache_container(uri, work / "home")
            env = {e["name"]: e["value"] for e in container["env"]}
            cache_args = [a.replace("$$", "$") for a in container["args"]]
            script = container["command"][2].replace("$$", "$")
            floor, download, miss, hit = [], [], [], []
            dest, claim = work / "emptydir", work / "claim"
            run = [sys.executable, "-c", script, *[str(claim) if a == CACHE_ROOT else a for a in cache_args]]
            for i in range(args.repeat):
                floor.append(_timed([sys.executable, "-c", "pass"], env))
                claim.mkdir()
                # (a) and (b) take turns going first: the machine is shared, its load drifts.
                if i % 2 == 0:
                    download.append(_timed([sys.executable, "-c", DRIVER, uri, str(dest)], env))
                    miss.append(_timed(run, env))
                else:
                    miss.append(_timed(run, env))
                    download.append(_timed([sys.executable, "-c", DRIVER, uri, str(dest)], env))
                hit.append(_timed(run, env))
                shutil.rmtree(dest)
                shutil.rmtree(claim)
    print(f"model: one {args.size_mb} MB file over HTTP on 127.0.0.1; {args.repeat} runs per case")
    print("| case | median | min | throughput |")
    print("|---|---|---|---|")
    print(_row("(a) download (kserve-storage into an emptyDir)", "a", download, args.size_mb))
    print(_row("(b) cache miss (knscale cache script, empty claim)", "b", miss, args.size_mb))
    print(_row("(c) cache hit (marker found, exits)", "c", hit, args.size_mb))
    print("| (d) OCI image volume: no init container | 0 s | 0 s | image pull + mount: not measured here |")
    print(_row("floor: `python3 -c pass`", "floor", floor, args.size_mb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
