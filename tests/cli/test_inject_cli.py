"""`knscale inject`: the manifest as /mutate would admit it, through the webhook's own function."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import jsonpatch
import orjson
import pytest
import yaml

from knscale.cli import main
from knscale.commands.inject_cmd import review_body
from translator.config.knscale import KnscaleConfig
from webhook import admission

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    knscale.dev/inject-model: "true"
    knscale.dev/model-uri: s3://models/resnet/
spec:
  containers:
  - name: app
    image: app:1
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        injectModelInitContainer: "true"
        modelBucket: autotables_47
    spec:
      containers:
      - name: app
        image: app:1
"""
KSVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ks
spec:
  template:
    metadata:
      annotations:
        knscale.dev/inject-model: "true"
        knscale.dev/model-uri: gs://m/x/
    spec:
      containers:
      - image: app:1
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, *docs: str) -> str:
    path = tmp_path / "in.yaml"
    path.write_text("---\n".join(docs))
    return str(path)


def test_a_pod_is_printed_exactly_as_mutate_patches_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, POD))
    assert code == 0, err
    (got,) = yaml.safe_load_all(out)
    # the same review sent to the webhook function directly, its patch applied by hand
    pod = yaml.safe_load(POD)
    decision = admission.mutate(admission.parse_review(review_body(pod, "default")), KnscaleConfig())
    response = orjson.loads(decision.body)["response"]
    want = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    assert got == want
    assert got["spec"]["initContainers"][0]["name"] == "knscale-model-init"
    assert got["metadata"]["annotations"]["knscale.dev/model-injected"] == "true"


def test_templates_are_injected_and_other_kinds_pass_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, DEPLOYMENT, KSVC, CONFIGMAP))
    assert code == 0, err
    deployment, ksvc, configmap = yaml.safe_load_all(out)
    template = deployment["spec"]["template"]
    assert [c["name"] for c in template["spec"]["initContainers"]] == ["knscale-model-init"]
    assert template["spec"]["containers"][0]["volumeMounts"][0]["name"] == "knscale-model"
    spec = ksvc["spec"]["template"]["spec"]
    assert "name" not in spec["containers"][0]  # Knative's unnamed container stays unnamed
    assert "securityContext" not in spec  # Knative refuses a pod securityContext by default
    assert configmap == yaml.safe_load(CONFIGMAP)
    # the webhook's warnings (legacy keys) go to stderr, the manifest alone to stdout
    assert "warning KNS004" in err or err == ""


def test_json_output_and_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inject", "-o", "json", "-n", "kube-system", "-f", write(tmp_path, POD))
    assert code == 1  # KNS018: no injection into a system namespace
    code, out, _ = run(capsys, "inject", "-o", "json", "-f", write(tmp_path, POD, CONFIGMAP))
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "List" and [i["kind"] for i in doc["items"]] == ["Pod", "ConfigMap"]


def test_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inject", "--diff", "-f", write(tmp_path, POD, CONFIGMAP))
    assert code == 0
    assert out.startswith("--- ") and "+++ " in out
    assert "+    knscale.dev/model-injected: 'true'\n" in out
    assert "ConfigMap" not in out  # unchanged objects have no diff


def test_denial_prints_rule_id_and_message_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = POD.replace("s3://models/resnet/", "s3://models/../other/")
    path = write(tmp_path, bad, CONFIGMAP)
    code, out, err = run(capsys, "inject", "-f", path)
    assert code == 1
    # lint-style: file:line:col of the annotation, severity, rule id, the webhook's message
    assert f"{path}:7:5: error KNS010 Pod default/p: metadata.annotations[knscale.dev/model-uri]" in err
    assert yaml.safe_load(out)["kind"] == "ConfigMap"  # the others are still printed


def test_input_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inject", "-f", str(tmp_path / "absent.yaml"))
    assert code == 2 and "no such file or directory" in err and "parses as YAML" not in err
    code, _, err = run(capsys, "inject", "-f", str(tmp_path))
    assert code == 2 and "is a directory, not a file" in err
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    code, _, err = run(capsys, "inject", "-f", str(tmp_path / "broken.yaml"))
    assert code == 2 and "KNS901" in err
    # YAML that is no JSON object (an integer key): the API server would refuse it; no traceback
    (tmp_path / "intkey.yaml").write_text(POD.replace("spec:\n", "spec:\n  1: x\n"))
    code, _, err = run(capsys, "inject", "-f", str(tmp_path / "intkey.yaml"))
    assert code == 2 and "KNS901" in err and "not valid JSON for the API server" in err


def test_stdin_as_a_subprocess() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "knscale", "inject", "-f", "-"],
        input=POD,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["spec"]["initContainers"][0]["name"] == "knscale-model-init"
