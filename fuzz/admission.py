"""`python -m fuzz admission`: the hostile-review campaign against a real `knscale serve` over TLS.

Two servers in turn — pod mode and template mode — each with every opt-in policy configured
(image and source allowlists, plain http allowed, a skipped sidecar, a model size limit). Each
gets half of `--reviews` seeded reviews (fuzz.reviews), sent by `--concurrency` keep-alive
connections verified against the server's CA, as the API server sends them; every reply is
checked (fuzz.checks), every patched object resubmitted once. Failures are written to
`--out` as JSON (review, status, reply, problems) to become regression tests.

Exit 0 when every reply passed, 1 when any failed, 2 when the campaign could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.webhook import BenchError, Server
from fuzz.checks import check_idempotent, check_reply, resubmission
from fuzz.reviews import RECURSION_LIMIT, Review, review

POLICIES: dict[str, Any] = {
    "image_allowlist": ["registry.example.com/dl/*", "ghcr.io/example/*"],
    "source_allowlist": ["models.example.com", "s3://bucket-*", "hf://org*", "pvc://claim*", "*.example.org"],
    "allowed_schemes": ["s3", "gs", "https", "http", "hf", "pvc"],
    "skip_containers": ["sidecar"],
    "model_size_limit": "10Gi",
}


@dataclass
class Tally:
    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    resent: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "resubmitted": self.resent,
            "failures": self.failures,
            "reviews_per_s": round(self.sent / self.seconds, 1) if self.seconds else None,
            "by_status": dict(sorted(self.by_status.items())),
            "by_outcome": dict(self.by_outcome),
            "problems": dict(self.problems.most_common(30)),
        }


def _outcome(status: int, body: bytes) -> str:
    if status != 200:
        return f"http-{status}"
    try:
        response = json.loads(body).get("response") or {}
    except ValueError:
        return "unparsable"
    if response.get("allowed") is False:
        return "denied"
    return "patched" if response.get("patch") else "allowed"


class Campaign:
    def __init__(self, server: Server, out: Path, tally: Tally, keep: int = 50) -> None:
        self.server = server
        self.out = out
        self.tally = tally
        self.keep = keep

    def _record(self, r: Review, status: int, body: bytes, problems: list[str]) -> None:
        self.tally.failures += 1
        for p in problems:
            self.tally.problems[p.split(":")[0][:80]] += 1
        if self.tally.failures <= self.keep:
            self.out.mkdir(parents=True, exist_ok=True)
            case = {
                "mutations": r.mutations,
                "status": status,
                "problems": problems,
                "reply": body[:4000].decode(errors="replace"),
                "review": r.body.decode(errors="replace"),
            }
            (self.out / f"failure-{self.tally.failures:04d}.json").write_text(json.dumps(case, indent=1))

    async def _send(self, client: httpx.AsyncClient, r: Review) -> tuple[int, bytes]:
        try:
            reply = await client.post("/mutate", content=r.body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:  # a reset or timeout is a failure, never ignored
            return 599, f"transport error: {type(exc).__name__}: {exc}".encode()
        return reply.status_code, reply.content

    async def _one(self, client: httpx.AsyncClient, r: Review) -> None:
        status, body = await self._send(client, r)
        self.tally.sent += 1
        self.tally.by_status[status] += 1
        self.tally.by_outcome[_outcome(status, body)] += 1
        problems, patched = check_reply(r, status, body)
        if not problems and patched is not None:
            again = resubmission(r, patched)
            status2, body2 = await self._send(client, again)
            self.tally.resent += 1
            problems = check_idempotent(status2, body2)
            if problems:
                self._record(again, status2, body2, problems)
                return
        if problems:
            self._record(r, status, body, problems)

    async def run(self, reviews: Iterator[Review], concurrency: int) -> None:
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        base = f"https://127.0.0.1:{self.server.port}"
        async with httpx.AsyncClient(base_url=base, verify=context, limits=limits, timeout=30) as client:

            async def worker() -> None:
                for r in reviews:  # one shared iterator: each review is sent once
                    await self._one(client, r)

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            self.tally.seconds += time.monotonic() - started


def _reviews(seed: int, count: int) -> Iterator[Review]:
    rng = random.Random(seed)
    for _ in range(count):
        yield review(rng)


def run_mode(mode: str, count: int, seed: int, concurrency: int, out: Path, workdir: Path) -> Tally:
    config = {"injection": {**POLICIES, "mutate_templates": mode == "template"}}
    config_file = workdir / f"config-{mode}.json"
    config_file.write_text(json.dumps(config))  # JSON is YAML: knscale reads it as a settings file
    server = Server(workdir / mode, extra_args=("--config", str(config_file)))
    server.start()
    tally = Tally()
    try:
        asyncio.run(Campaign(server, out / mode, tally).run(_reviews(seed, count), concurrency))
    finally:
        server.stop()
    if server.proc is not None and server.proc.returncode not in (0, None):
        tally.problems[f"server exited with {server.proc.returncode}"] += 1
        tally.failures += 1
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    parser = argparse.ArgumentParser(prog="python -m fuzz admission", description=__doc__.split("\n")[0])
    parser.add_argument("--reviews", type=int, default=1_000_000, help="reviews in all (half per mode)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("fuzz/results/admission"))
    parser.add_argument("--modes", default="pod,template")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    results: dict[str, Any] = {"seed": args.seed, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="knscale-fuzz-") as tmp:
        for i, mode in enumerate(modes):
            try:
                tally = run_mode(
                    mode, args.reviews // len(modes), args.seed + i, args.concurrency, args.out, Path(tmp)
                )
            except BenchError as exc:
                print(f"fuzz admission: {exc}", file=sys.stderr)
                return 2
            results["modes"][mode] = tally.as_dict()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 1 if any(m["failures"] for m in results["modes"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
