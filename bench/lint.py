"""Benchmark: `knscale lint` throughput and memory, against merely parsing the same YAML.

Targets (issue 4): ≥ 2,000 manifests/s on one core, lint costing at most 2× a plain parse
with PyYAML's C loader, and memory flat on a 100 MB stdin stream (peak RSS reported).

Corpus: 20,000 generated manifests in one multi-document YAML stream, mixed kinds (Knative
Services/Configurations/Revisions/PodAutoscalers, Deployments, StatefulSets, Pods, and kinds
lint ignores such as ConfigMaps and Services), realistic pod specs, 10% of them with findings
(misspelt keys, min > max, unquoted numbers, out-of-range values, broken KEDA JSON…).

Three measurements, CPU time of this process (single-threaded), best of `--repeat` runs:
  parse  yaml.load_all(stream, Loader=CSafeLoader) over every document;
  lint   the `knscale lint` pipeline in-process: read with positions, lint every document,
         format each finding as a text line (what the CLI prints);
  rss    `knscale lint -` and a parse-only child, each fed a ~100 MB stream on stdin; peak RSS
         of each child (the stream is 5× larger than the in-memory corpus, so a flat profile
         shows as an RSS independent of input size).

Run: ``python -m bench lint`` (or ``python -m bench.lint``). Prints a table; exit 1 if a target
is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from knscale import yamlio
from knscale.commands._manifests import text_line
from translator.config.knscale import KnscaleConfig
from translator.lint import lint_document

TARGET_RATE = 2000.0
TARGET_RATIO = 2.0
P = "autoscaling.knative.dev/"

# One broken thing per faulty manifest, each raising a different rule.
FAULTS: list[dict[str, Any]] = [
    {P + "minscale": "1"},
    {P + "min-scale": "5", P + "max-scale": "2"},
    {P + "window": "1s"},
    {P + "target": "0"},
    {P + "max-scale": 10},
    {P + "metric": "cpu"},
    {P + "scale-down-delay": "42.5s"},
    {P + "class": "hpa.autoscaling.knative.dev", P + "metric": "queue", P + "target": "3"},
    {P + "class": "hpa.autoscaling.knative.dev", P + "extra-prometheus-triggers": "[{oops"},
    {P + "initial-scale": "0"},
]


def _container(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": "app",
        "image": f"ghcr.io/acme/service-{i % 97}:v{rng.randint(1, 40)}.{rng.randint(0, 9)}",
        "ports": [{"containerPort": 8080, "name": "http1"}],
        "env": [{"name": f"FEATURE_{k}", "value": str(rng.randint(0, 1))} for k in range(rng.randint(2, 6))],
        "resources": {
            "requests": {
                "cpu": f"{rng.choice([100, 250, 500])}m",
                "memory": f"{rng.choice([128, 256, 512])}Mi",
            },
            "limits": {"memory": "1Gi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
    }


def _autoscaling(rng: random.Random) -> dict[str, str]:
    ann = {P + "min-scale": str(rng.randint(0, 2)), P + "max-scale": str(rng.randint(3, 20))}
    if rng.random() < 0.5:
        ann[P + "target"] = str(rng.choice([10, 50, 100]))
    if rng.random() < 0.3:
        ann[P + "window"] = f"{rng.choice([30, 60, 120])}s"
    return ann


def manifest(rng: random.Random, i: int, faulty: bool) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": f"svc-{i}",
        "app.kubernetes.io/part-of": "bench",
        "team": f"t{i % 13}",
    }
    meta = {"name": f"svc-{i}", "namespace": f"ns-{i % 50}", "labels": labels}
    ann = _autoscaling(rng)
    if faulty:
        ann.update(FAULTS[(i // 10) % len(FAULTS)])
    pod = {"containers": [_container(rng, i)], "serviceAccountName": "default"}
    kinds, weights = (
        ["ksvc", "config", "rev", "pa", "deploy", "sts", "pod", "cm", "svc"],
        [30, 5, 5, 5, 20, 5, 10, 10, 10],
    )
    if faulty:  # a fault on a kind lint ignores would not be a finding
        kinds, weights = kinds[:7], weights[:7]
    kind = rng.choices(kinds, weights=weights)[0]
    if kind in ("ksvc", "config"):
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service" if kind == "ksvc" else "Configuration",
            "metadata": meta,
            "spec": {"template": {"metadata": {"annotations": ann, "labels": labels}, "spec": pod}},
        }
    if kind == "rev":
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {**meta, "annotations": ann},
            "spec": pod,
        }
    if kind == "pa":
        return {
            "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
            "kind": "PodAutoscaler",
            "metadata": {**meta, "annotations": {P + "class": "kpa.autoscaling.knative.dev", **ann}},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": f"svc-{i}-deployment",
                }
            },
        }
    if kind in ("deploy", "sts"):
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment" if kind == "deploy" else "StatefulSet",
            "metadata": {**meta, "annotations": {P + "class": "kpa.autoscaling.knative.dev", **ann}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }
    if kind == "pod":
        pod_ann = {"prometheus.io/scrape": "true"}
        if faulty:
            pod_ann.update({P + "window": "30s"})  # no effect on a Pod
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "annotations": pod_ann}, "spec": pod}
    if kind == "cm":
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"config.yaml": "a: 1\nb: 2\n"},
        }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def corpus(n: int, seed: int = 7) -> tuple[bytes, int]:
    """(YAML stream, number of faulty manifests): exactly every 10th manifest is faulty."""
    rng = random.Random(seed)
    docs = [manifest(rng, i, faulty=(i % 10 == 0)) for i in range(n)]
    text = yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False)
    return text.encode(), sum(1 for i in range(n) if i % 10 == 0)


def parse_only(data: bytes) -> int:
    return sum(1 for _ in yaml.load_all(io.BytesIO(data), Loader=yaml.CSafeLoader))


def lint_stream(data: bytes, config: KnscaleConfig) -> tuple[int, int, int]:
    """(documents, documents with findings, finding lines) through the CLI's own pipeline."""
    out = io.StringIO()
    docs = flagged = lines = 0
    for doc in yamlio.read_stream("<stdin>", io.BytesIO(data)):
        assert not isinstance(doc, yamlio.ReadError), doc
        docs += 1
        found = lint_document(
            doc.data,
            config,
            source=doc.source,
            position=partial(yamlio.locate, doc.node),
            duplicates=partial(yamlio.duplicate_keys, doc.node),
        )
        if found:
            flagged += 1
        for item in found:
            out.write(text_line(item) + "\n")
            lines += 1
    return docs, flagged, lines


def best_cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


_PARSE_CHILD = (
    "import sys, yaml\nprint(sum(1 for _ in yaml.load_all(sys.stdin.buffer, Loader=yaml.CSafeLoader)))\n"
)


# ru_maxrss survives exec, so a child forked straight from this (large) process would report
# our own RSS from before its exec. A small runner process forks the measured command instead
# and reports that child's peak RSS.
_RUNNER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
)


def child_peak_rss_mb(cmd: list[str], stdin_path: Path) -> tuple[float, int]:
    """Peak RSS (MB) of `cmd` reading `stdin_path` on stdin, and its exit code."""
    with stdin_path.open("rb") as stdin:
        out = subprocess.run(
            [sys.executable, "-c", _RUNNER, *cmd], stdin=stdin, capture_output=True, text=True, check=True
        ).stdout
    kib, code = out.split()
    return int(kib) / 1024.0, int(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench lint", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--manifests", type=int, default=20_000, help="corpus size (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept (default 3)")
    parser.add_argument(
        "--stream-mb", type=float, default=100.0, help="stdin stream size for RSS (default 100)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    data, faulty = corpus(args.manifests)
    config = KnscaleConfig()
    parse_s, parsed = best_cpu(lambda: parse_only(data), args.repeat)
    lint_s, (docs, flagged, lines) = best_cpu(lambda: lint_stream(data, config), args.repeat)
    assert parsed == docs == args.manifests, (parsed, docs)
    if flagged != faulty:
        print(
            f"bench lint: expected {faulty} manifests with findings, lint flagged {flagged}", file=sys.stderr
        )
        return 1

    with tempfile.TemporaryDirectory(prefix="knscale-bench-lint-") as tmp:
        big = Path(tmp) / "stream.yaml"
        copies = max(1, round(args.stream_mb * 1024 * 1024 / len(data)))
        with big.open("wb") as fh:
            for i in range(copies):
                fh.write(b"---\n" if i else b"")
                fh.write(data)
        stream_mb = big.stat().st_size / 1024 / 1024
        small = Path(tmp) / "small.yaml"
        small.write_bytes(data[: len(data) // 20].rsplit(b"\n---", 1)[0] + b"\n")
        lint_cmd = [sys.executable, "-m", "knscale", "lint", "--fail-on", "none", "-"]
        parse_cmd = [sys.executable, "-c", _PARSE_CHILD]
        lint_rss, lint_rc = child_peak_rss_mb(lint_cmd, big)
        lint_rss_small, _ = child_peak_rss_mb(lint_cmd, small)
        parse_rss, _ = child_peak_rss_mb(parse_cmd, big)
    if lint_rc != 0:
        print(f"bench lint: `knscale lint -` exited {lint_rc} on the stream", file=sys.stderr)
        return 1

    rate = args.manifests / lint_s
    ratio = lint_s / parse_s
    figures = {
        "manifests": args.manifests,
        "corpus_mb": round(len(data) / 1024 / 1024, 2),
        "with_findings": flagged,
        "finding_lines": lines,
        "parse_cpu_s": round(parse_s, 3),
        "lint_cpu_s": round(lint_s, 3),
        "parse_manifests_per_s": round(args.manifests / parse_s),
        "lint_manifests_per_s": round(rate),
        "lint_to_parse_ratio": round(ratio, 2),
        "stream_mb": round(stream_mb, 1),
        "lint_peak_rss_mb": round(lint_rss, 1),
        "lint_peak_rss_mb_on_5pct_stream": round(lint_rss_small, 1),
        "parse_peak_rss_mb": round(parse_rss, 1),
    }
    rows = [
        (
            "corpus",
            f"{args.manifests} manifests, {figures['corpus_mb']} MB, {flagged} with findings ({lines} lines)",
        ),
        ("parse only (CSafeLoader)", f"{parse_s:.2f} s CPU  {args.manifests / parse_s:,.0f} manifests/s"),
        ("knscale lint", f"{lint_s:.2f} s CPU  {rate:,.0f} manifests/s   (target ≥ {TARGET_RATE:,.0f})"),
        ("lint / parse", f"{ratio:.2f}×   (target ≤ {TARGET_RATIO:.1f}×)"),
        (f"peak RSS, {stream_mb:.0f} MB on stdin", f"lint {lint_rss:.0f} MB   parse-only {parse_rss:.0f} MB"),
        (f"peak RSS, {stream_mb / copies / 20:.1f} MB on stdin", f"lint {lint_rss_small:.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print("knscale lint benchmark (one core)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    flat = lint_rss <= lint_rss_small * 1.5 + 20
    ok = rate >= TARGET_RATE and ratio <= TARGET_RATIO and flat
    if not ok:
        print("bench lint: target missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
