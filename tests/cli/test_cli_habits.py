"""CLI habits of kubectl / kube-linter users: -o everywhere, -f for files, `knscale rules`,
completion, a project lint configuration, JUnit and SARIF for CI, and errors as users expect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from knscale.cli import main
from knscale.commands._ruledocs import github_anchor
from translator.core.rules import RULES

ROOT = Path(__file__).resolve().parents[2]

SVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: s
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/minscale: "1"
        autoscaling.knative.dev/minScale: "1"
        autoscaling.knative.dev/max-scale: "5"
    spec:
      containers: [{image: x}]
"""
BROKEN = SVC.replace('max-scale: "5"', 'max-scale: "0.5"').replace("name: s\n", "name: broken\n")
HPA = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: h
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
        autoscaling.knative.dev/metric: requests
        autoscaling.knative.dev/target: "5"
        autoscaling.knative.dev/max-scale: "4"
        autoscaling.knative.dev/prometheus-query: sum(rate(requests[1m]))
    spec:
      containers: [{image: x}]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository: manifests in deploy/, the working directory deeper down."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "svc.yaml").write_text(SVC)
    (tmp_path / "deploy" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "deploy" / "sub")
    return tmp_path


# ---- one output flag, -f for files ---------------------------------------------------------


def test_output_flag_and_its_old_spellings(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svc = str(project / "deploy" / "svc.yaml")
    code, new, _ = run(capsys, "lint", "-o", "json", svc)
    assert code == 0 and json.loads(new)["summary"]["warnings"] == 1
    assert run(capsys, "lint", "--format", "json", svc)[1] == new  # the old long flag
    code, old, err = run(capsys, "lint", "-f", "json", svc)  # the old short flag
    assert old == new and "-f json is the old spelling of -o json" in err
    assert run(capsys, "lint", "-o", "json", "-f", svc)[1] == new  # -f FILE, as in kubectl
    code, out, _ = run(capsys, "lint", "-o", "yaml", svc)
    assert yaml.safe_load(out) == json.loads(new)
    code, out, _ = run(capsys, "translate", "-f", svc, "-o", "json")
    assert code == 0 and json.loads(out)["kind"] == "List"


def test_no_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lint")
    assert code == 2 and "no input" in err


# ---- knscale rules, completion --------------------------------------------------------------


def test_rules_lists_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules")
    assert code == 0 and len(out.splitlines()) == len(RULES)
    assert "KNS106  error    max-scale is less than min-scale" in out.splitlines()
    code, out, _ = run(capsys, "rules", "kns106")
    assert code == 0 and out.startswith("KNS106 — max-scale is less than min-scale\nerror\n")
    assert "Bad:" in out and "Good:" in out and "#kns106--max-scale-is-less-than-min-scale" in out
    code, out, _ = run(capsys, "rules", "-o", "json", "KNS111")
    (record,) = json.loads(out)
    assert record["id"] == "KNS111" and "**Bad**" in record["help"]
    code, _, err = run(capsys, "rules", "KNS999")
    assert code == 2 and "unknown rule id KNS999" in err


def test_bash_completion_completes_commands_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, script, _ = run(capsys, "completion", "bash")
    assert code == 0

    def complete(*words: str) -> list[str]:
        line = " ".join(["knscale", *words])
        probe = (
            f"{script}\nCOMP_WORDS=(knscale {' '.join(words)}); COMP_CWORD={len(words)}; "
            f"COMP_LINE='{line}'; _knscale; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30, check=True)
        return r.stdout.split()

    assert {"lint", "translate", "inject", "rules", "completion"} <= set(complete(""))
    assert complete("lint", "-o", "") == ["text", "json", "yaml", "sarif", "github", "junit"]
    assert complete("completion", "") == ["bash", "zsh"]
    assert "--fail-on" in complete("lint", "--fa")
    code, zsh, _ = run(capsys, "completion", "zsh")
    assert zsh.startswith("#compdef knscale") and "_knscale_lint()" in zsh


# ---- .knscale.yaml ----------------------------------------------------------------------------


def test_project_file_is_found_upward_and_disables_and_overrides(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svc = str(project / "deploy" / "svc.yaml")
    code, out, _ = run(capsys, "lint", "-o", "json", svc)
    assert sorted(f["ruleId"] for f in json.loads(out)["findings"]) == ["KNS111", "KNS113"]
    (project / ".knscale.yaml").write_text("lint:\n  disable: [KNS113]\n  severity: {KNS111: error}\n")
    code, out, _ = run(capsys, "lint", "-o", "json", svc)
    findings = json.loads(out)["findings"]
    assert code == 1 and [(f["ruleId"], f["severity"]) for f in findings] == [("KNS111", "error")]
    # `disable: [all]` then `enable`; the list in `knscale rules` shows the project's view
    (project / ".knscale.yaml").write_text("lint:\n  disable: [all]\n  enable: [KNS113]\n")
    code, out, _ = run(capsys, "lint", "-o", "json", svc)
    assert [f["ruleId"] for f in json.loads(out)["findings"]] == ["KNS113"]
    code, out, _ = run(capsys, "rules")
    assert "KNS111  warning  unknown autoscaling.knative.dev key (Knative ignores it)  (disabled)" in out
    # --config names the file instead: no search
    other = project / "other.yaml"
    other.write_text("lint:\n  severity: {KNS113: warning}\n")
    code, out, _ = run(capsys, "lint", "-o", "json", "--config", str(other), svc)
    assert sorted((f["ruleId"], f["severity"]) for f in json.loads(out)["findings"]) == [
        ("KNS111", "warning"),
        ("KNS113", "warning"),
    ]


def test_project_file_may_hold_settings_too(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".knscale.yaml").write_text(
        "autoscaler:\n  max_scale_limit: 3\n  max_scale: 3\nlint:\n  disable: [KNS111]\n"
    )
    code, out, _ = run(capsys, "lint", "-o", "json", str(project / "deploy" / "svc.yaml"))
    assert code == 1 and "KNS107" in {f["ruleId"] for f in json.loads(out)["findings"]}


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("disable: [KNS777]", "'KNS777' is not a rule id"),
        ("disable: [KNS010]", "KNS010 cannot be disabled"),
        ("severity: {KNS010: warning}", "cannot be lowered"),
        ("severity: {KNS111: fatal}", "'fatal' is not error, warning or info"),
        ("ignore: [KNS111]", "unknown key 'ignore'"),
    ],
)
def test_bad_lint_section_is_a_configuration_error(
    project: Path, capsys: pytest.CaptureFixture[str], section: str, problem: str
) -> None:
    (project / ".knscale.yaml").write_text(f"lint:\n  {section}\n")
    code, _, err = run(capsys, "lint", str(project / "deploy"))
    assert code == 2 and problem in err


def test_lint_ignore_annotation_still_applies(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".knscale.yaml").write_text("lint:\n  severity: {KNS111: error}\n")
    ignored = SVC.replace("  name: s\n", "  name: s\n  annotations: {knscale.dev/lint-ignore: KNS111}\n")
    (project / "deploy" / "svc.yaml").write_text(ignored)
    code, out, _ = run(capsys, "lint", "-o", "json", str(project / "deploy"))
    assert code == 0 and [f["ruleId"] for f in json.loads(out)["findings"]] == ["KNS113"]


# ---- JUnit and SARIF ------------------------------------------------------------------------


def test_junit_report(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "deploy" / "broken.yaml").write_text(BROKEN)
    (project / "deploy" / "clean.yaml").write_text(HPA)
    code, out, _ = run(capsys, "lint", "-o", "junit", "--fail-on", "none", str(project / "deploy"))
    assert code == 0
    root = ET.fromstring(out)
    suite = root.find("testsuite")
    assert suite is not None
    cases = {Path(c.get("name", "")).name: c for c in suite.findall("testcase")}
    assert set(cases) == {"broken.yaml", "clean.yaml", "svc.yaml"} and suite.get("tests") == "3"
    assert list(cases["clean.yaml"]) == []  # passed
    failures = cases["broken.yaml"].findall("failure")
    assert {f.get("type") for f in failures} == {"error", "warning"}
    assert any((f.get("message") or "").startswith("KNS101 ") for f in failures)
    assert suite.get("failures") == str(len(failures) + len(cases["svc.yaml"].findall("failure")))


def test_sarif_rules_have_name_help_uri_and_help(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "lint", "-o", "sarif", str(project / "deploy"))
    rules = {r["id"]: r for r in json.loads(out)["runs"][0]["tool"]["driver"]["rules"]}
    headings = re.findall(r"^### (KNS\d{3} — .+)$", (ROOT / "docs" / "rules.md").read_text(), re.M)
    anchors = {github_anchor(h) for h in headings}
    for rule_id, rule in rules.items():
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["name"]), rule["name"]
        assert rule["helpUri"].split("#", 1)[1] in anchors
        assert rule["help"]["text"] and "**Bad**" in rule["help"]["markdown"], rule_id
    assert rules["KNS106"]["name"] == "MaxScaleIsLessThanMinScale"


# ---- errors as users expect -----------------------------------------------------------------


def test_missing_paths_globs_and_directories(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lint", "absent.yaml")
    assert code == 2 and "absent.yaml: error KNS901 no such file or directory; fix: check the path" in out
    assert "parses as YAML" not in out
    code, out, _ = run(capsys, "lint", str(project / "deploy" / "*.yml"))
    assert code == 2 and "no file matches this pattern" in out
    code, out, _ = run(capsys, "lint", "-o", "json", str(project / "deploy" / "*.yaml"))
    assert code == 0 and json.loads(out)["summary"]["files"] == 1
    code, out, _ = run(capsys, "lint", str(project / "deploy" / "sub"))
    assert code == 2 and "no YAML or JSON file in this directory" in out
    code, _, err = run(capsys, "translate", str(project / "nowhere" / "*.yaml"))
    assert code == 2 and "no file matches this pattern" in err


def test_fix_hint_after_a_question_and_summary_words(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, err = run(capsys, "lint", str(project / "deploy"))
    line = next(x for x in out.splitlines() if "KNS111" in x)
    assert "?;" not in line and "did you mean autoscaling.knative.dev/min-scale? Fix: rename it" in line
    assert err.strip() == "knscale lint: 0 errors, 1 warning, 1 info in 1 file, 1 document"
    assert {"warning", "info"} == {x.split(": ", 2)[1].split()[0] for x in out.splitlines()}


@pytest.mark.parametrize(
    "command",
    [
        "rules | head -1",
        "lint -o json {dir} {dir} {dir} {dir} {dir} {dir} {dir} {dir} | head -c 10",
        "completion bash | head -1",
    ],
)
def test_output_piped_into_head_ends_quietly(tmp_path: Path, command: str) -> None:
    for i in range(300):
        (tmp_path / f"s{i}.yaml").write_text(SVC)
    knscale = f"{sys.executable} -m knscale"
    r = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {knscale} {command.format(dir=tmp_path)}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": ""},
    )
    assert r.stdout
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr
    assert r.returncode in (0, 141)


# ---- translate over directories, in kubectl's namespace --------------------------------------


def test_translate_directories_and_namespace(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "deploy" / "hpa.yaml").write_text(HPA)
    code, out, err = run(capsys, "translate", str(project / "deploy"))
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [
        ("ScaledObject", "default"),
        ("KpaSettings", "default"),
    ]
    assert docs[0]["spec"]["triggers"][0]["metadata"]["namespace"] == "default"
    code, out, _ = run(capsys, "translate", "-n", "ml", "-o", "json", str(project / "deploy" / "hpa.yaml"))
    (so,) = json.loads(out)["items"]
    assert so["metadata"]["namespace"] == "ml" and so["spec"]["triggers"][0]["metadata"]["namespace"] == "ml"
    # a namespace written in the manifest wins, as with kubectl
    (project / "deploy" / "hpa.yaml").write_text(HPA.replace("name: h\n", "name: h\n  namespace: team\n"))
    code, out, _ = run(capsys, "translate", "-n", "ml", "-o", "json", str(project / "deploy" / "hpa.yaml"))
    assert json.loads(out)["items"][0]["spec"]["triggers"][0]["metadata"]["namespace"] == "team"
