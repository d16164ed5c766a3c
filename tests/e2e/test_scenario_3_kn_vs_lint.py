"""Scenario 3: `kn service create/update` with HPA-class annotations is accepted or refused
exactly as `knscale lint` judges the same object.

For `create`, the object is the one kn itself would send: `kn service create … --target FILE`
writes it to a file instead of the cluster (kn's GitOps mode), and that file is linted. For
`update`, kn's GitOps mode cannot update (v0.42.0 dereferences a nil client), so the expected
object is the stored Service with the annotation edit applied. The verdict (accepted or not),
the error rule ids, and the warning rule ids must be the same on both sides; the expected error
ids are also written in the table, so a lint and a webhook that agreed on accepting everything
could not pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from cluster import ControlPlane
from knscale_procs import Webhook, new_namespace, run_knscale

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HPA = "hpa.autoscaling.knative.dev"
IMAGE = "registry.example.com/app:1"
RULE = re.compile(r"\bKNS\d{3}\b")
QUERY = 'sum(rate(http_requests_total{namespace="ns"}[1m]))'

# (case id, annotations after the class, error rule ids lint must report)
CREATE_CASES: list[tuple[str, dict[str, str], set[str]]] = [
    ("cpu", {"metric": "cpu"}, set()),
    ("cpu-target", {"metric": "cpu", "target": "80"}, set()),
    ("memory-target", {"metric": "memory", "target": "75"}, set()),
    ("cpu-scale-bounds", {"metric": "cpu", "min-scale": "1", "max-scale": "4"}, set()),
    ("prometheus-custom", {"metric": "http_requests_total", "target": "5", "prometheus-query": QUERY}, set()),
    ("concurrency-no-target", {"metric": "concurrency"}, {"KNS210"}),
    ("concurrency-no-query", {"metric": "concurrency", "target": "10"}, {"KNS201"}),
    ("rps-no-query", {"metric": "rps", "target": "100"}, {"KNS201"}),
    ("custom-no-target", {"metric": "http_requests_total"}, {"KNS210"}),
    ("cpu-value-type", {"metric": "cpu", "metric-type": "Value", "target": "80"}, {"KNS205"}),
    ("bogus-metric-type", {"metric": "cpu", "metric-type": "Bogus", "target": "80"}, {"KNS204"}),
    (
        "ftp-prometheus",
        {
            "metric": "http_requests_total",
            "target": "5",
            "prometheus-query": "up",
            "prometheus-address": "ftp://x",
        },
        {"KNS203"},
    ),
]

# kn validates Knative's own keys before sending anything; lint must refuse the same input.
CLIENT_SIDE_CASES: list[tuple[str, dict[str, str], set[str]]] = [
    ("negative-target", {"metric": "cpu", "target": "-1"}, {"KNS102"}),
    ("min-scale-abc", {"metric": "cpu", "min-scale": "abc"}, {"KNS101"}),
    ("sub-second-delay", {"metric": "cpu", "scale-down-delay": "1500ms"}, {"KNS103"}),
    ("max-below-min", {"metric": "cpu", "min-scale": "3", "max-scale": "2"}, {"KNS106"}),
]


def _annotation_args(annotations: dict[str, str]) -> list[str]:
    args = ["--annotation", f"autoscaling.knative.dev/class={HPA}"]
    for key, value in annotations.items():
        args += ["--annotation", f"autoscaling.knative.dev/{key}={value}"]
    return args


def _lint(cp: ControlPlane, path: Path) -> tuple[set[str], set[str]]:
    """(error ids, warning ids) of `knscale lint -f json FILE`."""
    done = run_knscale(cp, "lint", "-f", "json", "--fail-on", "none", str(path))
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert all(f["ruleId"] != "KNS901" for f in findings), findings  # the file itself was readable
    return (
        {f["ruleId"] for f in findings if f["severity"] == "error"},
        {f["ruleId"] for f in findings if f["severity"] == "warning"},
    )


def _server_warnings(stderr: str) -> set[str]:
    return {m for line in stderr.splitlines() if line.startswith("Warning:") for m in RULE.findall(line)}


def _denial_ids(stderr: str) -> set[str]:
    assert 'admission webhook "validate-annotations.knscale.dev" denied the request' in stderr, stderr
    denial = stderr.split("denied the request:", 1)[1]
    return set(RULE.findall(denial))


@pytest.fixture(scope="module")
def ns(control_plane: ControlPlane, webhook: Webhook) -> str:
    return new_namespace(control_plane, "s3")


@pytest.mark.parametrize(
    ("case", "annotations", "expected_errors"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES]
)
def test_kn_service_create_matches_lint(
    control_plane: ControlPlane,
    ns: str,
    tmp_path: Path,
    case: str,
    annotations: dict[str, str],
    expected_errors: set[str],
) -> None:
    cp = control_plane
    name = f"c-{case}"
    args = ["service", "create", name, "-n", ns, "--image", IMAGE, *_annotation_args(annotations)]
    manifest = tmp_path / f"{name}.yaml"
    offline = cp.kn(*args, "--target", str(manifest))
    assert manifest.exists(), offline.stdout
    lint_errors, lint_warnings = _lint(cp, manifest)
    assert lint_errors == expected_errors

    done = cp.kn(*args, "--no-wait", check=False)
    if lint_errors:
        assert done.returncode != 0, f"kn accepted what lint refuses ({lint_errors}):\n{done.stdout}"
        assert _denial_ids(done.stderr) == lint_errors
        assert not cp.exists("ksvc", name, ns)
    else:
        assert done.returncode == 0, done.stderr
        stored = cp.get("ksvc", name, ns)
        sent = yaml.safe_load(manifest.read_text())
        want = {
            k: v
            for k, v in sent["spec"]["template"]["metadata"]["annotations"].items()
            if "client.knative" not in k
        }
        got = stored["spec"]["template"]["metadata"]["annotations"]
        assert {k: got.get(k) for k in want} == want  # the object linted is the object stored
    assert _server_warnings(done.stderr) == lint_warnings, done.stderr


@pytest.mark.parametrize(
    ("case", "annotations", "expected_errors"), CLIENT_SIDE_CASES, ids=[c[0] for c in CLIENT_SIDE_CASES]
)
def test_kn_client_side_refusals_are_lint_errors_too(
    control_plane: ControlPlane,
    ns: str,
    tmp_path: Path,
    case: str,
    annotations: dict[str, str],
    expected_errors: set[str],
) -> None:
    cp = control_plane
    name = f"k-{case}"
    done = cp.kn(
        "service",
        "create",
        name,
        "-n",
        ns,
        "--image",
        IMAGE,
        *_annotation_args(annotations),
        "--no-wait",
        check=False,
    )
    assert done.returncode != 0 and "autoscaling.knative.dev/" in done.stderr, done.stderr
    assert not cp.exists("ksvc", name, ns)
    # The same object as kn would have built it, written out by hand.
    manifest = tmp_path / f"{name}.yaml"
    template = {f"autoscaling.knative.dev/{k}": v for k, v in annotations.items()}
    obj = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/class": HPA, **template}},
                "spec": {"containers": [{"image": IMAGE}]},
            }
        },
    }
    manifest.write_text(yaml.safe_dump(obj))
    lint_errors, _ = _lint(cp, manifest)
    assert lint_errors == expected_errors
    # And the API server refuses it with the same ids when a client does not check first.
    applied = cp.kubectl("apply", "-f", str(manifest), check=False)
    assert applied.returncode != 0
    assert _denial_ids(applied.stderr) == lint_errors


# (case id, kn update flags, error ids lint must report for the updated object)
UPDATE_CASES: list[tuple[str, list[str], set[str]]] = [
    ("retarget", ["--annotation", "autoscaling.knative.dev/target=60"], set()),
    # kn checks the updated keys alone, as if the class were the default kpa: repeat the class.
    (
        "to-memory",
        [
            "--annotation",
            f"autoscaling.knative.dev/class={HPA}",
            "--annotation",
            "autoscaling.knative.dev/metric=memory",
        ],
        set(),
    ),
    ("to-concurrency", ["--annotation", "autoscaling.knative.dev/metric=concurrency"], {"KNS201"}),
    (
        "drop-target-on-rps",
        [
            "--annotation",
            "autoscaling.knative.dev/metric=rps",
            "--annotation",
            "autoscaling.knative.dev/target-",
        ],
        {"KNS210"},
    ),
    ("bad-type", ["--annotation", "autoscaling.knative.dev/metric-type=Average"], {"KNS204"}),
]


def _edit(annotations: dict[str, str], flags: list[str]) -> dict[str, str]:
    out = dict(annotations)
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        assert flag == "--annotation"
        if value.endswith("-") and "=" not in value:
            out.pop(value[:-1], None)
        else:
            key, _, v = value.partition("=")
            out[key] = v
    return out


@pytest.mark.parametrize(("case", "flags", "expected_errors"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_kn_service_update_matches_lint(
    control_plane: ControlPlane,
    ns: str,
    tmp_path: Path,
    case: str,
    flags: list[str],
    expected_errors: set[str],
) -> None:
    cp = control_plane
    name = f"u-{case}"
    cp.kn(
        "service",
        "create",
        name,
        "-n",
        ns,
        "--image",
        IMAGE,
        *_annotation_args({"metric": "cpu", "target": "80"}),
        "--no-wait",
    )
    stored = cp.get("ksvc", name, ns)
    expected = {
        "apiVersion": stored["apiVersion"],
        "kind": stored["kind"],
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": stored["metadata"].get("annotations") or {},
        },
        "spec": json.loads(json.dumps(stored["spec"])),
    }
    tmeta = expected["spec"]["template"]["metadata"]
    tmeta["annotations"] = _edit(tmeta["annotations"], flags)
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump(expected))
    lint_errors, lint_warnings = _lint(cp, manifest)
    assert lint_errors == expected_errors

    done = cp.kn("service", "update", name, "-n", ns, *flags, "--no-wait", check=False)
    after = cp.get("ksvc", name, ns)
    if lint_errors:
        assert done.returncode != 0, f"kn update accepted what lint refuses ({lint_errors}):\n{done.stdout}"
        assert _denial_ids(done.stderr) == lint_errors
        assert after["metadata"]["generation"] == stored["metadata"]["generation"]
        assert (
            after["spec"]["template"]["metadata"]["annotations"]
            == stored["spec"]["template"]["metadata"]["annotations"]
        )
    else:
        assert done.returncode == 0, done.stderr
        got = after["spec"]["template"]["metadata"]["annotations"]
        want = {k: v for k, v in tmeta["annotations"].items() if "client.knative" not in k}
        assert {k: got.get(k) for k in want} == want
        assert set(got) - set(want) <= {"client.knative.dev/updateTimestamp", "client.knative.dev/user-image"}
    assert _server_warnings(done.stderr) == lint_warnings, done.stderr
