"""Soak: admissions at a fixed rate over TLS while the serving certificate rotates (issue 16).

`knscale serve` (one worker on core 0, certificates in a directory it polls, as a mounted Secret
is) gets `--rate` /mutate requests per second from `wrk` on core 1 for `--minutes`, in segments
of `--segment` seconds; in the middle of every segment `knscale certs` renews the leaf in that
directory (a real rotation: new key, new certificate, the server reloads it in place). Every
request is a pod the webhook has not seen (distinct inputs). Recorded per segment: achieved
rate, p50/p99, wrk's socket errors and non-2xx replies (failed handshakes and admissions), and
the server's RSS.

Targets (reported, never asserted): 0 failed admissions and 0 failed handshakes; p99 within the
webhook target; RSS growth < 5% from the end of the first minute (warm-up) to the end. Writes
bench/results/soak.json and, with matplotlib, bench/results/soak.png (p99 and RSS over time).
Exit 0 when every target holds, 1 when one is missed, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.webhook import (
    RESULTS,
    TARGET_P99_MS,
    BenchError,
    Case,
    Server,
    ensure_tools,
    run_wrk,
    write_bodies,
)

OUT_JSON = RESULTS.parent / "soak.json"
OUT_PNG = RESULTS.parent / "soak.png"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def served_leaf(server: Server) -> bytes:
    """The DER certificate a new TLS connection to the server is given now."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def rotate(cert_dir: Path, n: int) -> None:
    """Renew the leaf under the same CA, with a new SAN so `knscale certs` must reissue it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "knscale",
            "certs",
            "--out",
            str(cert_dir),
            "--dns",
            f"rotation-{n}.example.com",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bodies = write_bodies(workdir)
    case = Case("u", "(a') /mutate, a new pod each request", "/mutate", bodies["unique"], unique=True)
    server = Server(workdir)
    server.start()
    segments: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        n = 0
        while time.monotonic() - started < args.minutes * 60:
            n += 1
            rotation = threading.Timer(args.segment / 2, rotate, (server.cert_dir, n))
            rotation.start()
            run = run_wrk(server, case, args.connections, args.segment, rate=args.rate)
            rotation.join()
            on_disk = ssl.PEM_cert_to_DER_cert((server.cert_dir / "tls.crt").read_text())
            deadline = time.monotonic() + 10  # the server polls its files every 2 s
            while served_leaf(server) != on_disk and time.monotonic() < deadline:
                time.sleep(0.2)
            served_new = served_leaf(server) == on_disk
            segments.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "rps": round(run.rps, 1),
                    "p50_ms": round(run.p50_ms, 2),
                    "p99_ms": round(run.p99_ms, 2),
                    "errors": run.errors,
                    "rss_mib": round(rss_mib(server.pid), 1),
                    "rotation": n,
                    "new_leaf_served": served_new,
                }
            )
            print(json.dumps(segments[-1]), flush=True)
    finally:
        server.stop()
    warm = next((s for s in segments if s["t_s"] >= 60), segments[0])
    failures = sum(sum(s["errors"].values()) for s in segments)
    growth = (segments[-1]["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"] if warm["rss_mib"] else 0.0
    worst_p99 = max(s["p99_ms"] for s in segments)
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "rotations": len(segments),
        "rotations_served": sum(s["new_leaf_served"] for s in segments),
        "failed_requests": failures,
        "worst_segment_p99_ms": worst_p99,
        "rss_warm_mib": warm["rss_mib"],
        "rss_end_mib": segments[-1]["rss_mib"],
        "rss_growth_pct": round(100 * growth, 2),
        "targets": {
            "no failed admissions or handshakes": failures == 0,
            "every rotated leaf served": all(s["new_leaf_served"] for s in segments),
            f"p99 < {TARGET_P99_MS:g} ms": worst_p99 < TARGET_P99_MS,
            "RSS growth < 5% after warm-up": growth < 0.05,
        },
        "segments": segments,
    }


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = [s["t_s"] / 60 for s in result["segments"]]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    top.plot(t, [s["p99_ms"] for s in result["segments"]], marker=".", label="p99 per segment")
    top.plot(t, [s["p50_ms"] for s in result["segments"]], marker=".", label="p50 per segment")
    top.axhline(TARGET_P99_MS, color="grey", linestyle="--", label=f"target p99 {TARGET_P99_MS:g} ms")
    top.set_ylabel("latency (ms)")
    top.legend(loc="upper right", fontsize="small")
    bottom.plot(t, [s["rss_mib"] for s in result["segments"]], marker=".", color="tab:green")
    bottom.set_ylabel("server RSS (MiB)")
    bottom.set_xlabel(f"minutes ({result['rate']:g} req/s, leaf rotated every segment)")
    fig.suptitle("knscale serve: soak with certificate rotation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=750.0)
    parser.add_argument("--segment", type=int, default=30, help="seconds per segment (one rotation each)")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    try:
        ensure_tools(install=True)
        with tempfile.TemporaryDirectory(prefix="knscale-soak-") as tmp:
            result = soak(args, Path(tmp))
    except BenchError as exc:
        print(f"bench soak: {exc}", file=sys.stderr)
        return 2
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=1))
    plotted = plot(result, OUT_PNG)
    summary = {k: v for k, v in result.items() if k != "segments"}
    print(json.dumps({**summary, "plot": str(OUT_PNG) if plotted else None}, indent=1))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
