"""Benchmark: the admission webhook over TLS, driven by `wrk` from a separate process.

What it measures (issue 3, "Benchmark"), on ONE uvicorn worker (`knscale serve`, pinned to
core 0) with `wrk -t1` pinned to core 1:

  (a) POST /mutate  the realistic Knative pod that needs injection
                    (tests/fixtures/admission/pod-create-v1.json: the seed's `kn service create`)
  (a′) POST /mutate  (a) with a different generateName on every request: a pod the webhook
                    has not seen, so the decision cache (webhook/decision_cache.py) never hits;
                    (a) is the common case in a cluster -- every pod of a ReplicaSet is the same
                    review but for its uid -- and (a′) the worst case
  (b) POST /mutate  the same pod with its injection annotations removed: needs nothing
  (c) POST /noop    the same body; fixed "allowed" reply: the cost of TLS + HTTP + the framework

1. Correctness first: each case answers 200, (a) and (a′) with a JSONPatch, (b) and (c) without.
2. Closed-loop throughput and p50/p99: the three cases interleaved in rounds (a, b, c, c, b,
   a, ...), so machine noise lands on all three alike; ratio (a)/(c). 64 connections keep
   requests queued at the server while wrk is off its core, so latency here is mostly queueing
   (≈ connections / throughput); the service latency figure is the fixed-rate one.
3. Fixed rate: 1,000 req/s of (a) for 20 s, paced by the Lua script's `delay()` against an
   absolute schedule (Debian has no wrk2); p50/p99, the achieved rate, and sends that missed
   their slot. Then (c) at the same rate for 10 s as a control: what the tail is when the
   server does almost nothing, i.e. how much of (a)'s tail is the machine, not the webhook.
4. Afterwards the server's own /metrics must count every (a) reply as "patched" and every (b)
   reply as "allowed": the load really exercised the injection path.

Is the client the bottleneck? Each run records, from /proc, the CPU of the server and of wrk,
and how busy each core was with other processes (the machine is shared). A closed-loop run is
"server-bound" when core 0 never idled (under 10% idle): the server always had a request
waiting, so wrk was not what limited it. Server CPU per request is reported as well: unlike
req/s it does not depend on how much of core 0 other processes took.

Targets are reported, never asserted: exit 0 whatever the figures; 1 if a correctness check
failed; 2 if the bench could not run (e.g. wrk missing: bench/install_deps.sh installs it).

Run: ``python -m bench webhook`` (or ``python -m bench.webhook``). Prints a markdown table
and writes bench/results/webhook.json. About 110 s with the defaults.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "admission" / "pod-create-v1.json"
LUA_SCRIPT = ROOT / "bench" / "wrk" / "admission.lua"
INSTALL_DEPS = ROOT / "bench" / "install_deps.sh"
RESULTS = ROOT / "bench" / "results" / "webhook.json"

SERVER_CORE = 0
CLIENT_CORE = 1

TARGET_RATIO = 0.7  # (a) throughput / (c) throughput
TARGET_RPS = 3000.0  # (a) throughput on one worker
TARGET_P99_MS = 10.0  # p99 of (a) at the fixed rate
FIXED_RATE = 1000.0  # req/s
SERVER_BOUND_IDLE = 0.10  # a closed-loop run left core 0 less idle than this: server-bound

# The annotations that ask for injection: the seed's bare keys and the canonical prefix.
BARE_INJECT_KEYS = frozenset({"modelBucket", "modelPath", "initContainerImage", "injectModelInitContainer"})
CANONICAL_PREFIX = "knscale.dev/"

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The bench cannot run (tool missing, server does not start)."""


class CheckFailed(Exception):
    """A correctness check failed: the figures would not mean what they claim."""


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    path: str
    body_file: Path
    unique: bool = False  # wrk numbers each request's pod (KNSCALE_BENCH_UNIQUE)


# ---------------------------------------------------------------- set-up


def ensure_tools(install: bool) -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing and install:
        print(f"installing {', '.join(missing)} with {INSTALL_DEPS.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run(["sh", str(INSTALL_DEPS)], check=False, timeout=600)
        missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: run `sh {INSTALL_DEPS}` (Debian: apt-get install wrk)"
        )
    if len(os.sched_getaffinity(0)) < 2 or max(os.sched_getaffinity(0)) < CLIENT_CORE:
        raise BenchError(f"need cores {SERVER_CORE} and {CLIENT_CORE} to pin server and client apart")


UNIQUE_MARK = "00000000000"  # wrk replaces it with the request's sequence number, same width


def write_bodies(directory: Path) -> dict[str, Path]:
    """(a) the fixture as is; (a′) the fixture with a numbered generateName; (b) the same review
    without the annotations that ask for injection."""
    review = json.loads(FIXTURE.read_text())
    unique = json.loads(FIXTURE.read_text())
    unique_meta = unique["request"]["object"]["metadata"]
    unique_meta["generateName"] = f"{unique_meta['generateName']}{UNIQUE_MARK}-"
    plain = json.loads(FIXTURE.read_text())
    annotations = plain["request"]["object"]["metadata"]["annotations"]
    for key in list(annotations):
        if key in BARE_INJECT_KEYS or key.startswith(CANONICAL_PREFIX):
            del annotations[key]
    bodies = {"inject": review, "unique": unique, "plain": plain}
    paths = {}
    for name, doc in bodies.items():
        path = directory / f"{name}.json"
        path.write_bytes(json.dumps(doc, separators=(",", ":")).encode())
        paths[name] = path
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@dataclass(frozen=True)
class CoreTimes:
    """Seconds one core spent, by everything on it (from /proc/stat, 10 ms ticks)."""

    process: float  # user + nice + system
    interrupt: float  # irq + softirq: partly our own loopback TCP traffic
    idle: float  # idle + iowait

    @classmethod
    def read(cls, core: int) -> CoreTimes:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{core} "):
                user, nice, system, idle, iowait, irq, softirq = (int(v) for v in line.split()[1:8])
                return cls(
                    (user + nice + system) / _CLK_TCK, (irq + softirq) / _CLK_TCK, (idle + iowait) / _CLK_TCK
                )
        raise BenchError(f"core {core} not found in /proc/stat")

    def __sub__(self, other: CoreTimes) -> CoreTimes:
        return CoreTimes(
            self.process - other.process, self.interrupt - other.interrupt, self.idle - other.idle
        )


class Server:
    """`knscale serve` (one uvicorn worker) as a subprocess pinned to SERVER_CORE."""

    def __init__(self, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.cert_dir = workdir / "certs"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 60.0) -> None:
        command = [
            "taskset",
            "-c",
            str(SERVER_CORE),
            sys.executable,
            "-m",
            "knscale",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--cert-dir",
            str(self.cert_dir),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "2",
            *self.extra_args,
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"knscale serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ca_file.exists():
                with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException):
                    status, _ = self.request("GET", "/readyz")
                    if status == 200:
                        return
            time.sleep(0.2)
        raise BenchError(f"knscale serve not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One HTTPS request verified against the server's CA (as the API server does)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def loaded_modules(self) -> dict[str, bool]:
        """Which fast paths uvicorn's "auto" choices actually loaded into the server process."""
        maps = Path(f"/proc/{self.pid}/maps").read_text()
        return {name: name in maps for name in ("uvloop", "httptools")}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------- correctness


def verify(server: Server, cases: Sequence[Case]) -> dict[str, Any]:
    """Each case answers 200 with an allowed review; only (a) carries a JSONPatch."""
    details: dict[str, Any] = {}
    for case in cases:
        status, raw = server.request("POST", case.path, case.body_file.read_bytes())
        if status != 200:
            raise CheckFailed(f"{case.label}: HTTP {status}: {raw[:300]!r}")
        response = json.loads(raw)["response"]
        if response.get("allowed") is not True:
            raise CheckFailed(f"{case.label}: not allowed: {response}")
        has_patch = "patch" in response
        if has_patch != (case.key in ("a", "u")):
            raise CheckFailed(f"{case.label}: patch {'present' if has_patch else 'absent'}: {response}")
        info: dict[str, Any] = {"status": status, "response_bytes": len(raw)}
        if has_patch:
            if response.get("patchType") != "JSONPatch":
                raise CheckFailed(f"{case.label}: patchType {response.get('patchType')!r}")
            ops = json.loads(base64.b64decode(response["patch"]))
            if not any(op.get("path") == "/spec/initContainers" for op in ops) and not any(
                str(op.get("path", "")).startswith("/spec/initContainers/") for op in ops
            ):
                raise CheckFailed(f"{case.label}: the patch adds no initContainer: {ops}")
            info["patch_ops"] = len(ops)
        info["warnings"] = len(response.get("warnings", []))
        details[case.key] = info
    return details


_SAMPLE = re.compile(r'^knscale_webhook_requests_total\{endpoint="(\w+)",outcome="(\w+)"\} ([0-9.e+]+)$')


def request_counts(server: Server) -> dict[tuple[str, str], float]:
    status, raw = server.request("GET", "/metrics")
    if status != 200:
        raise CheckFailed(f"/metrics: HTTP {status}")
    counts = {}
    for line in raw.decode().splitlines():
        match = _SAMPLE.match(line)
        if match:
            counts[(match[1], match[2])] = float(match[3])
    return counts


def check_counts(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], sent: dict[str, int]
) -> dict[str, float]:
    """The server's own counters agree with what wrk saw: (a) patched, (b) allowed, nothing else."""
    delta = {f"{e}/{o}": after.get((e, o), 0.0) - before.get((e, o), 0.0) for (e, o) in after}
    delta = {k: v for k, v in delta.items() if v}
    # wrk stops with a few requests in flight: the server may have answered slightly more.
    expect = {"mutate/patched": sent["a"] + sent["u"], "mutate/allowed": sent["b"], "noop/allowed": sent["c"]}
    for key, count in expect.items():
        if delta.get(key, 0.0) < count:
            raise CheckFailed(f"server counted {delta.get(key, 0.0):.0f} {key} replies, wrk saw {count}")
    unexpected = {k: v for k, v in delta.items() if k not in expect}
    if unexpected:
        raise CheckFailed(f"unexpected outcomes during the load: {unexpected}")
    return delta


# ---------------------------------------------------------------- load


@dataclass
class WrkRun:
    case: str
    connections: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: dict[str, int]
    client_cpu_pct: float
    server_cpu_pct: float
    server_cpu_us_per_request: float
    server_core_others_pct: float
    server_core_irq_pct: float
    server_core_idle_pct: float
    client_core_others_pct: float
    server_bound: bool
    late_requests: int
    max_late_ms: float


def run_wrk(server: Server, case: Case, connections: int, duration: int, rate: float | None = None) -> WrkRun:
    env = dict(os.environ, KNSCALE_BENCH_BODY=str(case.body_file))
    env.pop("KNSCALE_BENCH_RATE", None)
    env.pop("KNSCALE_BENCH_UNIQUE", None)
    if case.unique:
        env["KNSCALE_BENCH_UNIQUE"] = UNIQUE_MARK
    if rate is not None:
        env["KNSCALE_BENCH_RATE"] = str(rate)
    command = [
        "taskset",
        "-c",
        str(CLIENT_CORE),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        server.url(case.path),
    ]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_seconds(server.pid)
    server_core_before, client_core_before = CoreTimes.read(SERVER_CORE), CoreTimes.read(CLIENT_CORE)
    wall_before = time.monotonic()
    # wrk stops itself after `duration`; the timeout only guards against a hung client.
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + 30, check=False
    )
    wall = time.monotonic() - wall_before
    server_cpu = cpu_seconds(server.pid) - server_before
    server_core = CoreTimes.read(SERVER_CORE) - server_core_before
    client_core = CoreTimes.read(CLIENT_CORE) - client_core_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("KNSCALE-BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("KNSCALE-BENCH "))
    latency = data["latency_us"]
    pct = latency["percentiles"]
    duration_s = data["duration_us"] / 1e6
    return WrkRun(
        case=case.key,
        connections=connections,
        requests=data["requests"],
        duration_s=round(duration_s, 3),
        rps=round(data["requests"] / duration_s, 1),
        p50_ms=pct["50"] / 1000,
        p90_ms=pct["90"] / 1000,
        p99_ms=pct["99"] / 1000,
        p999_ms=pct["99.9"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=data["errors"],
        client_cpu_pct=round(100 * client_cpu / wall, 1),
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        # CPU per request does not depend on how much of core 0 other processes took: the
        # figure to compare across runs on a shared machine (wall-clock includes wrk's
        # start-up and connection set-up, a few ms, so this slightly overstates it).
        server_cpu_us_per_request=round(1e6 * server_cpu / max(1, data["requests"]), 1),
        server_core_others_pct=round(100 * max(0.0, server_core.process - server_cpu) / wall, 1),
        server_core_irq_pct=round(100 * server_core.interrupt / wall, 1),
        server_core_idle_pct=round(100 * server_core.idle / wall, 1),
        client_core_others_pct=round(100 * max(0.0, client_core.process - client_cpu) / wall, 1),
        # Closed loop: if core 0 never idled, the server (not the client) set the pace.
        server_bound=server_core.idle / wall < SERVER_BOUND_IDLE,
        late_requests=data["late_requests"],
        max_late_ms=data["max_late_ms"],
    )


def check_errors(run: WrkRun) -> None:
    if any(run.errors.values()):
        raise CheckFailed(f"wrk saw errors on ({run.case}): {run.errors}")


@dataclass
class CaseSummary:
    case: str
    label: str
    requests: int
    rps: float
    rps_rounds: list[float]
    p50_ms: float
    p99_ms: float
    p99_ms_worst_round: float
    client_cpu_pct_max: float
    server_cpu_pct_median: float
    server_cpu_us_per_request: float
    server_core_others_pct_median: float
    server_core_idle_pct_median: float
    client_core_others_pct_median: float
    server_bound_rounds: int


def summarise(case: Case, runs: Sequence[WrkRun]) -> CaseSummary:
    requests = sum(r.requests for r in runs)
    seconds = sum(r.duration_s for r in runs)
    return CaseSummary(
        case=case.key,
        label=case.label,
        requests=requests,
        rps=round(requests / seconds, 1),
        rps_rounds=[r.rps for r in runs],
        # Percentiles cannot be pooled from wrk's summaries; the median round is the figure,
        # the worst round says how much the noise moved it.
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        p99_ms_worst_round=max(r.p99_ms for r in runs),
        client_cpu_pct_max=max(r.client_cpu_pct for r in runs),
        server_cpu_pct_median=statistics.median(r.server_cpu_pct for r in runs),
        server_cpu_us_per_request=statistics.median(r.server_cpu_us_per_request for r in runs),
        server_core_others_pct_median=statistics.median(r.server_core_others_pct for r in runs),
        server_core_idle_pct_median=statistics.median(r.server_core_idle_pct for r in runs),
        client_core_others_pct_median=statistics.median(r.client_core_others_pct for r in runs),
        server_bound_rounds=sum(r.server_bound for r in runs),
    )


# ---------------------------------------------------------------- report


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def render(result: dict[str, Any]) -> str:
    closed = result["closed_loop"]
    fixed = result["fixed_rate"]
    targets = result["targets"]
    lines = [
        f"### knscale webhook — one uvicorn worker on core {SERVER_CORE}, wrk -t1 on core {CLIENT_CORE}",
        "",
        f"Closed loop: {closed['rounds']} interleaved rounds × {closed['duration_s']:g} s per case, "
        f"{closed['connections']} connections, TLS, keep-alive.",
        "",
        "| case | req/s | req/s per round | p50 ms | p99 ms (worst round) | server CPU µs/req | "
        "core 0: server / others / idle | core 1: wrk (max) / others | server-bound rounds |",
        "|---|---:|---|---:|---:|---:|---|---|---:|",
    ]
    for s in closed["cases"]:
        rounds = ", ".join(f"{v:.0f}" for v in s["rps_rounds"])
        lines.append(
            f"| {s['label']} | {s['rps']:.0f} | {rounds} | {s['p50_ms']:.2f} | "
            f"{s['p99_ms']:.2f} ({s['p99_ms_worst_round']:.2f}) | {s['server_cpu_us_per_request']:.0f} | "
            f"{s['server_cpu_pct_median']:.0f}% / {s['server_core_others_pct_median']:.0f}% / "
            f"{s['server_core_idle_pct_median']:.0f}% | {s['client_cpu_pct_max']:.0f}% / "
            f"{s['client_core_others_pct_median']:.0f}% | {s['server_bound_rounds']}/{closed['rounds']} |"
        )
    ratio_rounds = ", ".join(f"{v:.2f}" for v in closed["ratio_a_c_rounds"])
    lines += [
        "",
        f"Ratio (a)/(c): {closed['ratio_a_c']:.2f} by throughput (per round {ratio_rounds}); "
        f"{closed['ratio_a_c_cpu']:.2f} by server CPU per request (insensitive to other load on core 0). "
        f"(a) would reach ≈ {closed['a_rps_per_core']:,.0f} req/s on a core of its own "
        "(1 s / CPU per request).",
        "",
        f"Ratio (a′)/(c), every pod new to the decision cache: {closed['ratio_miss_c']:.2f} "
        f"(per round {', '.join(f'{v:.2f}' for v in closed['ratio_miss_c_rounds'])}).",
        "",
        f"Fixed rate: {fixed['target_rps']:g} req/s over {fixed['connections']} connections (Lua delay() "
        "on an absolute schedule); (c) at the same rate is the control: its tail is the machine's "
        "(scheduling on the shared cores), not the webhook's.",
        "",
        "| case | seconds | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | late sends | "
        "server CPU µs/req | core 0: server / others | core 1: wrk / others |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in (fixed, result["fixed_rate_control"]):
        lines.append(
            f"| ({run['case']}) | {run['duration_s']:.0f} | {run['rps']:.0f} | {run['p50_ms']:.2f} | "
            f"{run['p90_ms']:.2f} | {run['p99_ms']:.2f} | {run['p999_ms']:.2f} | {run['max_ms']:.2f} | "
            f"{run['late_requests']} (max {run['max_late_ms']:.1f} ms) | "
            f"{run['server_cpu_us_per_request']:.0f} | {run['server_cpu_pct']:.0f}% / "
            f"{run['server_core_others_pct']:.0f}% | {run['client_cpu_pct']:.0f}% / "
            f"{run['client_core_others_pct']:.0f}% |"
        )
    lines += [
        "",
        "| target | measured | |",
        "|---|---:|---|",
    ]
    for t in targets:
        lines.append(f"| {t['name']} | {t['measured']} | {verdict(t['met'])} |")
    env = result["environment"]
    lines += [
        "",
        f"Server: uvloop loaded: {env['server_modules']['uvloop']}, httptools loaded: "
        f"{env['server_modules']['httptools']}; load average at start {env['loadavg_start']}.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


@contextlib.contextmanager
def running_server(workdir: Path, attempts: int = 3) -> Iterator[Server]:
    for attempt in range(1, attempts + 1):
        server = Server(workdir)
        try:
            server.start()
            break
        except BenchError:
            server.stop()
            # free_port() closes its probe socket before the server binds: another process may
            # take the port in between. Only that case is worth another try.
            if attempt == attempts or "address already in use" not in server.log_tail():
                raise
    try:
        yield server
    finally:
        server.stop()


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bodies = write_bodies(workdir)
    cases = [
        Case("a", "(a) /mutate, pod needing injection", "/mutate", bodies["inject"]),
        Case(
            "u", "(a′) /mutate, a new pod each request (cache miss)", "/mutate", bodies["unique"], unique=True
        ),
        Case("b", "(b) /mutate, pod needing nothing", "/mutate", bodies["plain"]),
        Case("c", "(c) /noop, fixed allowed reply", "/noop", bodies["inject"]),
    ]
    loadavg_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with running_server(workdir) as server:
        correctness = verify(server, cases)
        print(f"correctness: {json.dumps(correctness)}", file=sys.stderr)
        modules = server.loaded_modules()
        counts_before = request_counts(server)
        sent = {"a": 0, "u": 0, "b": 0, "c": 0}

        for case in cases:  # warm-up: imports, caches, TLS sessions, CPU frequency
            run = run_wrk(server, case, args.connections, args.warmup)
            check_errors(run)
            sent[case.key] += run.requests

        runs: dict[str, list[WrkRun]] = {case.key: [] for case in cases}
        for round_no in range(args.rounds):
            order = cases if round_no % 2 == 0 else list(reversed(cases))  # no case always goes first
            for case in order:
                run = run_wrk(server, case, args.connections, args.duration)
                check_errors(run)
                sent[case.key] += run.requests
                runs[case.key].append(run)
                print(
                    f"round {round_no + 1}/{args.rounds} ({case.key}): {run.rps:.0f} req/s, "
                    f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                    f"server CPU {run.server_cpu_pct:.0f}%, wrk CPU {run.client_cpu_pct:.0f}%",
                    file=sys.stderr,
                )

        # The fixed-rate tail is measured on the worst case: pods the cache has not seen.
        fixed = run_wrk(server, cases[1], args.rate_connections, args.rate_duration, rate=args.rate)
        check_errors(fixed)
        sent["u"] += fixed.requests
        control_seconds = max(1, args.rate_duration // 2)
        control = run_wrk(server, cases[3], args.rate_connections, control_seconds, rate=args.rate)
        check_errors(control)
        sent["c"] += control.requests
        for run in (fixed, control):
            print(
                f"fixed rate ({run.case}): {run.rps:.0f} req/s, p50 {run.p50_ms:.2f} ms, "
                f"p99 {run.p99_ms:.2f} ms",
                file=sys.stderr,
            )
        counted = check_counts(counts_before, request_counts(server), sent)

    summaries = [summarise(case, runs[case.key]) for case in cases]
    ratio_rounds = [round(a.rps / c.rps, 3) for a, c in zip(runs["a"], runs["c"], strict=True) if c.rps > 0]
    by_key = {s.case: s for s in summaries}
    ratio = by_key["a"].rps / by_key["c"].rps
    ratio_cpu = by_key["c"].server_cpu_us_per_request / by_key["a"].server_cpu_us_per_request
    ratio_miss = by_key["u"].rps / by_key["c"].rps
    ratio_miss_rounds = [
        round(u.rps / c.rps, 3) for u, c in zip(runs["u"], runs["c"], strict=True) if c.rps > 0
    ]
    a_rps_per_core = 1e6 / by_key["a"].server_cpu_us_per_request
    fixed_ok = fixed.rps >= 0.98 * args.rate
    targets = [
        {
            "name": f"(a) ≥ {TARGET_RATIO}× the throughput of (c)",
            "measured": f"{ratio:.2f}×",
            "met": ratio >= TARGET_RATIO,
        },
        {
            "name": f"(a) ≥ {TARGET_RPS:,.0f} req/s on one worker",
            "measured": f"{by_key['a'].rps:,.0f} req/s ((a′): {by_key['u'].rps:,.0f})",
            "met": by_key["a"].rps >= TARGET_RPS,
        },
        {
            "name": f"(a′) p99 < {TARGET_P99_MS:g} ms at {args.rate:,.0f} req/s",
            "measured": f"{fixed.p99_ms:.2f} ms at {fixed.rps:,.0f} req/s achieved "
            f"(control (c): {control.p99_ms:.2f} ms)",
            "met": fixed.p99_ms < TARGET_P99_MS and fixed_ok,
        },
    ]
    return {
        "closed_loop": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "connections": args.connections,
            "cases": [vars(s) for s in summaries],
            "ratio_a_c": round(ratio, 3),
            "ratio_a_c_rounds": ratio_rounds,
            "ratio_a_c_cpu": round(ratio_cpu, 3),
            "ratio_miss_c": round(ratio_miss, 3),
            "ratio_miss_c_rounds": ratio_miss_rounds,
            "a_rps_per_core": round(a_rps_per_core, 1),
            "runs": [vars(r) for key in runs for r in runs[key]],
        },
        "fixed_rate": {
            "target_rps": args.rate,
            "duration_s": args.rate_duration,
            **vars(fixed),
            "achieved_target_rate": fixed_ok,
        },
        "fixed_rate_control": vars(control),
        "targets": targets,
        "correctness": correctness,
        "server_counted": counted,
        "environment": {
            "server_modules": modules,
            "loadavg_start": loadavg_start,
            "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "python": sys.version.split()[0],
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
            .stdout.split("\n")[0]
            .strip(),
            "cpus": os.cpu_count(),
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench webhook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved closed-loop rounds (default 5)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per case per round (default 4)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per case (default 2)")
    parser.add_argument(
        "--connections",
        type=int,
        default=64,
        help="closed-loop connections (default 64: enough queued requests to keep the server busy "
        "while wrk is preempted)",
    )
    parser.add_argument("--rate", type=float, default=FIXED_RATE, help="fixed-rate req/s (default 1000)")
    parser.add_argument("--rate-duration", type=int, default=20, help="fixed-rate seconds (default 20)")
    parser.add_argument(
        "--rate-connections",
        type=int,
        default=50,
        help="fixed-rate connections (default 50: a server stall under 50 ms leaves the schedule intact)",
    )
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install a missing wrk")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    for name in ("rounds", "duration", "warmup", "connections", "rate_duration", "rate_connections"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate <= 0:
        parser.error("--rate must be positive")

    try:
        ensure_tools(install=not args.no_install)
        with tempfile.TemporaryDirectory(prefix="knscale-bench-") as tmp:
            result = bench(args, Path(tmp))
    except BenchError as exc:
        print(f"bench webhook: cannot run: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"bench webhook: correctness check failed: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\nJSON: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
