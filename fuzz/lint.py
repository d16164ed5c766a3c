"""`python -m fuzz lint`: hostile inputs for `knscale lint`, each in a forked child with limits.

Inputs (seeded): random bytes, YAML bombs and anchors, 10,000-document streams, deep nesting
(block and flow), Python and other tags, non-UTF-8 text, huge scalars, impossible dates,
non-string and duplicate keys, and real manifests (the admission campaign's objects) with hostile
values. Each input runs `knscale lint FILE` in-process in a child forked after the imports, under
an address-space limit (`--memory-mb`) and an alarm (`--seconds`), in every output format in turn.

Passes when no child raised (a traceback), timed out or hit the memory limit, and every exit
code was 0, 1 or 2. Exit 0 when all passed, 1 otherwise; failures are kept in `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import yaml

from fuzz.reviews import _object

FORMATS = ("text", "json", "sarif", "github")
TRACEBACK_EXIT = 99


def _bomb(rng: random.Random) -> bytes:
    depth, width = rng.choice(((9, 9), (12, 6), (30, 2)))
    lines = ['a0: &a0 ["x", "x"]']
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    knscale.dev/model-uri: "
        f"*a{depth - 1}"
    )
    return "\n".join(lines).encode()


def _deep(rng: random.Random) -> bytes:
    n = rng.choice((500, 2000, 10000))
    if rng.random() < 0.5:
        return b"metadata:\n  annotations:\n    k: " + b"[" * n + b"]" * n + b"\n"
    return "".join(" " * i + "a:\n" for i in range(min(n, 3000))).encode()


def _stream(rng: random.Random) -> bytes:
    doc = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  annotations:\n"
    doc += "    knscale.dev/inject-model: 'true'\n"
    return "---\n".join(doc.format(i=i) for i in range(rng.choice((1000, 10000)))).encode()


def _tags(rng: random.Random) -> bytes:
    return rng.choice(
        (
            b"!!python/object/apply:os.system ['true']\n",
            b"a: !!python/name:os.system\n",
            b"kind: !custom Pod\nmetadata: !!binary aGVsbG8=\n",
            b"metadata: !!set {a, b}\n",
            b"a: !!timestamp 2020-13-45\n",
        )
    )


def _dates_and_keys(rng: random.Random) -> bytes:
    return rng.choice(
        (
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: 2020-13-45\n",
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
            b"    1: 2\n    ? [a, b]\n    : c\n",
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {null: x, true: y, 1.5: z}\n",
            b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    image: 2021-02-30\n",
            b"kind: Pod\nkind: Deployment\nmetadata: {name: a, name: b}\n",
        )
    )


def _huge(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return b"metadata:\n  annotations:\n    knscale.dev/model-uri: '" + b"a" * 20_000_000 + b"'\n"
    n = rng.choice((20_000, 200_000))
    containers = "".join(f"  - name: c{i}\n    image: x\n" for i in range(n))
    return f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n{containers}".encode()


def _bytes(rng: random.Random) -> bytes:
    data = rng.randbytes(rng.choice((10, 1000, 100_000)))
    return rng.choice((data, b"\xff\xfe" + data, b"kind: Pod\nmetadata: {name: \xc3\x28}\n" + data))


def _manifest(rng: random.Random) -> bytes:
    obj, _ = _object(rng)
    text = yaml.safe_dump(obj, allow_unicode=rng.random() < 0.5)
    if rng.random() < 0.3:
        at = rng.randrange(len(text) + 1)
        text = (
            text[:at]
            + rng.choice(("\t", ": ", "- ", "&x ", "*x", "{", "'", "\x00", "%", "!!str "))
            + text[at:]
        )
    return text.encode("utf-8", "surrogatepass")


GENERATORS: dict[str, Callable[[random.Random], bytes]] = {
    "bomb": _bomb,
    "deep": _deep,
    "stream": _stream,
    "tags": _tags,
    "dates-keys": _dates_and_keys,
    "huge": _huge,
    "bytes": _bytes,
    "manifest": _manifest,
}
WEIGHTS = {
    "bomb": 1,
    "deep": 1,
    "stream": 0.2,
    "tags": 1,
    "dates-keys": 1,
    "huge": 0.1,
    "bytes": 2,
    "manifest": 12,
}


def inputs(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    for _ in range(count):
        kind = rng.choices(names, weights)[0]
        yield kind, GENERATORS[kind](rng)


def run_one(path: Path, fmt: str, seconds: int, memory_mb: int) -> tuple[int, float, float, str]:
    """(exit code or -signal, seconds, max RSS MiB, stderr tail) of `knscale lint` on one file."""
    from knscale.cli import main as knscale_main  # imported once, before the forks

    err_path = path.with_suffix(".err")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: limits, then lint in-process
        code = TRACEBACK_EXIT
        try:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.alarm(seconds)
            with (
                err_path.open("w") as err,
                Path(os.devnull).open("w") as out,
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                try:
                    code = knscale_main(["lint", "--format", fmt, str(path)])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
                except BaseException:
                    traceback.print_exc()
                    code = TRACEBACK_EXIT
        finally:
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    tail = err_path.read_text(errors="replace")[-2000:] if err_path.exists() else ""
    return code, elapsed, usage.ru_maxrss / 1024, tail


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz lint", description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10, help="per input and format")
    parser.add_argument("--memory-mb", type=int, default=500, help="address-space limit per child")
    parser.add_argument("--out", type=Path, default=Path("fuzz/results/lint"))
    args = parser.parse_args(argv)
    import knscale.cli  # noqa: F401  (loaded before forking, so each child starts warm)

    tally: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    failures: list[dict[str, object]] = []
    slowest, biggest = 0.0, 0.0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="knscale-fuzz-lint-") as tmp:
        for i, (kind, data) in enumerate(inputs(args.seed, args.inputs)):
            path = Path(tmp) / f"input-{i}.yaml"
            path.write_bytes(data)
            fmt = FORMATS[i % len(FORMATS)]
            code, seconds, rss, err = run_one(path, fmt, args.seconds, args.memory_mb)
            tally[kind] += 1
            codes[code] += 1
            slowest, biggest = max(slowest, seconds), max(biggest, rss)
            problem = None
            if code not in (0, 1, 2):
                problem = "traceback" if code == TRACEBACK_EXIT else f"exit {code}"
                if code == -signal.SIGALRM:
                    problem = f"over {args.seconds} s"
                elif "MemoryError" in err:
                    problem = f"over {args.memory_mb} MB"
            elif "Traceback" in err:
                problem = "traceback printed"
            if problem is not None:
                failures.append(
                    {"input": i, "kind": kind, "format": fmt, "problem": problem, "stderr": err[-1500:]}
                )
                if len(failures) <= 50:
                    args.out.mkdir(parents=True, exist_ok=True)
                    (args.out / f"failure-{len(failures):04d}.yaml").write_bytes(data[:2_000_000])
            path.unlink()
    summary = {
        "inputs": args.inputs,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        "by_kind": dict(tally),
        "exit_codes": {str(k): v for k, v in sorted(codes.items())},
        "slowest_s": round(slowest, 2),
        "max_rss_mb": round(biggest, 1),
        "failures": len(failures),
        "failure_classes": dict(Counter(str(f["problem"]) for f in failures)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({**summary, "failed": failures[:50]}, indent=1))
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
