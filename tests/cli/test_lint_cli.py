"""`knscale lint` as CI runs it: a subprocess, every output format and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

P = "autoscaling.knative.dev/"

GOOD = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: good
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "10"
    spec:
      containers:
      - image: ghcr.io/acme/app:1
"""

BAD = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: bad
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/minscale: "1"
        autoscaling.knative.dev/min-scale: "5"
        autoscaling.knative.dev/max-scale: "2"
    spec:
      containers:
      - image: ghcr.io/acme/app:1
"""

WARN_ONLY = GOOD.replace("min-scale", "minscale").replace("name: good", "name: warn")


def knscale(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knscale", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in {"good.yaml": GOOD, "bad.yaml": BAD, "warn.yaml": WARN_ONLY}.items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def test_clean_file_exits_0(files: dict[str, Path]) -> None:
    r = knscale("lint", str(files["good.yaml"]))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "0 errors, 0 warnings, 0 info in 1 file, 1 document" in r.stderr


def test_text_format_is_compiler_style_with_the_offending_keys_line(files: dict[str, Path]) -> None:
    r = knscale("lint", str(files["bad.yaml"]))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    path = str(files["bad.yaml"])
    assert (
        f"{path}:10:9: warning KNS111 Service default/bad: spec.template.metadata.annotations[{P}minscale]: "
        in lines[0]
    )
    assert lines[1].startswith(f"{path}:12:9: error KNS106 Service default/bad: ")
    assert "fix: raise autoscaling.knative.dev/max-scale to at least 5" in lines[1]


def test_fail_on(files: dict[str, Path]) -> None:
    assert knscale("lint", str(files["warn.yaml"])).returncode == 0
    assert knscale("lint", "--fail-on", "warning", str(files["warn.yaml"])).returncode == 1
    assert knscale("lint", "--fail-on", "none", str(files["bad.yaml"])).returncode == 0


def test_json_format(files: dict[str, Path]) -> None:
    r = knscale("lint", "-f", "json", str(files["bad.yaml"]), str(files["good.yaml"]))
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["summary"] == {"errors": 1, "warnings": 1, "info": 0, "files": 2, "documents": 2}
    first = report["findings"][0]
    assert first["ruleId"] == "KNS111" and first["line"] == 10 and first["column"] == 9
    assert first["didYouMean"] == P + "min-scale"
    assert first["object"] == {
        "kind": "Service",
        "name": "bad",
        "namespace": "default",
        "apiVersion": "serving.knative.dev/v1",
    }


def test_sarif_format(files: dict[str, Path]) -> None:
    r = knscale("lint", "--format", "sarif", "bad.yaml", cwd=files["bad.yaml"].parent)
    assert r.returncode == 1
    sarif = json.loads(r.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    result = run["results"][1]
    assert result["ruleId"] == "KNS106" and result["level"] == "error"
    assert rule_ids[result["ruleIndex"]] == "KNS106"
    location = result["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "bad.yaml"},
        "region": {"startLine": 12, "startColumn": 9},
    }


def test_github_format(files: dict[str, Path]) -> None:
    r = knscale("lint", "-f", "github", "bad.yaml", cwd=files["bad.yaml"].parent)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith(
        "::warning file=bad.yaml,line=10,col=9,title=KNS111 unknown autoscaling.knative.dev key"
    )
    assert lines[1].startswith(
        "::error file=bad.yaml,line=12,col=9,title=KNS106 max-scale is less than min-scale::"
    )


def test_stdin_multi_document_and_kind_list() -> None:
    items = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "annotations": {P + "class": "kpa.autoscaling.knative.dev", P + "window": "1s"},
                },
            }
        ],
    }
    stream = GOOD + "---\n" + json.dumps(items) + "\n---\n# empty document\n"
    r = knscale("lint", "-f", "json", "-", stdin=stream)
    assert r.returncode == 1
    findings = json.loads(r.stdout)["findings"]
    assert [(f["ruleId"], f["file"], f["line"], f["path"]) for f in findings] == [
        ("KNS102", "<stdin>", 16, "metadata.annotations")
    ]


def test_directories_are_walked_and_other_yaml_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "apps" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "apps" / "deep" / "svc.yml").write_text(BAD)
    (tmp_path / "apps" / "svc.json").write_text(json.dumps(yaml_load(GOOD)))
    (tmp_path / ".git" / "bad.yaml").write_text(BAD)
    (tmp_path / "workflow.yaml").write_text("on: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n")
    (tmp_path / "notes.txt").write_text("not: [yaml")
    r = knscale("lint", "-f", "json", str(tmp_path))
    report = json.loads(r.stdout)
    assert r.returncode == 1
    assert {Path(f["file"]).name for f in report["findings"]} == {"svc.yml"}
    assert report["summary"]["files"] == 3


def yaml_load(text: str) -> object:
    import yaml

    return yaml.safe_load(text)


def test_invalid_yaml_is_exit_2_with_file_and_line_never_a_traceback(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(GOOD + "---\nkind: Service\n  bad: [indent\n")
    r = knscale("lint", str(f))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout.startswith(f"{f}:17:6: error KNS901 not valid YAML: mapping values are not allowed")


def test_missing_file_and_usage_errors_exit_2(tmp_path: Path) -> None:
    r = knscale("lint", str(tmp_path / "absent.yaml"))
    assert r.returncode == 2 and "no such file or directory" in r.stdout
    assert knscale("lint").returncode == 2
    assert knscale("lint", "--format", "xml", "x.yaml").returncode == 2


def test_non_string_annotation_and_duplicate_key(tmp_path: Path) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text(
        GOOD.replace('min-scale: "1"', "min-scale: 1").replace(
            'max-scale: "10"', 'max-scale: "10"\n        autoscaling.knative.dev/max-scale: "3"'
        )
    )
    r = knscale("lint", str(f))
    assert r.returncode == 1
    assert f"{f}:10:9: error KNS903" in r.stdout
    assert f"{f}:12:9: error KNS901" in r.stdout and "written twice" in r.stdout


def test_lint_ignore_annotation(tmp_path: Path) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text(
        BAD.replace(
            "namespace: default",
            "namespace: default\n  annotations:\n    knscale.dev/lint-ignore: KNS106,KNS111",
        )
    )
    assert knscale("lint", str(f)).returncode == 0


def test_config_autoscaler_makes_lint_judge_as_that_cluster(tmp_path: Path) -> None:
    svc = tmp_path / "svc.yaml"
    svc.write_text(GOOD.replace('"10"', '"500"'))
    cm = tmp_path / "cm.yaml"
    cm.write_text(
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: config-autoscaler\n  namespace: knative-serving\n"
        'data:\n  max-scale-limit: "100"\n  max-scale: "10"\n  _example: ignored\n'
    )
    assert knscale("lint", str(svc)).returncode == 0
    r = knscale("lint", "--config-autoscaler", str(cm), str(svc))
    assert r.returncode == 1 and "KNS107" in r.stdout


def test_config_errors_exit_2(tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\ndata:\n  stable-window: 1s\n"
    )
    svc = tmp_path / "svc.yaml"
    svc.write_text(GOOD)
    r = knscale("lint", "--config-autoscaler", str(cm), str(svc))
    assert r.returncode == 2 and "stable-window" in r.stderr and "Traceback" not in r.stderr
    settings = tmp_path / "settings.yaml"
    settings.write_text("autoscaler:\n  nope: 1\n")
    r = knscale("lint", "--config", str(settings), str(svc))
    assert r.returncode == 2 and "autoscaler.nope" in r.stderr


def test_settings_file_supplies_cluster_facts(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("autoscaler:\n  pod_autoscaler_class: hpa.autoscaling.knative.dev\n")
    svc = tmp_path / "svc.yaml"
    svc.write_text(
        GOOD.replace('autoscaling.knative.dev/max-scale: "10"', "autoscaling.knative.dev/metric: cpu")
    )
    assert knscale("lint", str(svc)).returncode == 1  # cpu is not a KPA metric
    r = knscale("lint", "--config", str(settings), str(svc))
    assert r.returncode == 0, r.stdout


def test_tab_indented_json_file_is_read_as_json(tmp_path: Path) -> None:
    doc = yaml_load(BAD)
    f = tmp_path / "svc.json"
    f.write_text(json.dumps(doc, indent="\t"))
    r = knscale("lint", str(f))
    assert r.returncode == 1 and "KNS106" in r.stdout
