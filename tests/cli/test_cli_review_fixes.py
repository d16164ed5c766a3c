"""Regressions from a review of `knscale lint` / `knscale translate` (findings #3, #10, #11, #12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from knscale.cli import main

SVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: s
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
        autoscaling.knative.dev/metric: cpu
        autoscaling.knative.dev/target: "80"
        autoscaling.knative.dev/max-scale: "3"
    spec:
      containers: [{image: x, resources: {requests: {cpu: 100m}}}]
"""
DUP_SVC = SVC.replace('max-scale: "3"\n', 'max-scale: "3"\n        autoscaling.knative.dev/max-scale: "30"\n')


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- #3: a --config / --config-autoscaler file of the wrong shape is a clean error, exit 2 ----

BAD_CONFIGS = [
    ("--config-autoscaler", b"apiVersion: v1\nkind: List\nitems: 5\n", "items must be a list, got int"),
    (
        "--config-autoscaler",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: [x]\ndata: {}\n",
        "metadata must be a map",
    ),
    (
        "--config-autoscaler",
        b"kind: ConfigMap\nmetadata: {name: config-autoscaler}\ndata: [x]\n",
        "data must be a map",
    ),
    ("--config-autoscaler", b"\xff\xfe\xff", "not UTF-8"),
    ("--config-autoscaler", b"stable-window: 2020-13-45\n", "not valid YAML"),
    ("--config", b"\xff\xfe\xff", "not UTF-8"),
    ("--config", b"kind: ConfigMap\ndata: [x]\n", "data must be a map, got list"),
    ("--config", b"kind: ConfigMap\ndata: {config.yaml: 5}\n", "data['config.yaml'] must be a string"),
    ("--config", b"kind: ConfigMap\ndata: {config.yaml: 'a: 2020-13-45'}\n", "is not valid YAML"),
    ("--config", b"autoscaler: 2020-13-45\n", "not valid YAML"),
]


@pytest.mark.parametrize("command", ["lint", "translate"])
@pytest.mark.parametrize(
    ("flag", "content", "problem"),
    BAD_CONFIGS,
    ids=[
        "autoscaler-list-items-int",
        "autoscaler-metadata-list",
        "autoscaler-data-list",
        "autoscaler-not-utf8",
        "autoscaler-impossible-date",
        "config-not-utf8",
        "config-configmap-data-list",
        "config-configmap-data-value-int",
        "config-configmap-inner-impossible-date",
        "config-impossible-date",
    ],
)
def test_config_file_of_wrong_shape_is_invalid_configuration_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, flag: str, content: bytes, problem: str
) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_bytes(content)
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    code, out, err = run(capsys, command, flag, str(cfg), str(svc))
    assert code == 2, err
    assert err.startswith("knscale: invalid configuration:\n"), err
    assert f"{cfg}: " in err and problem in err, err
    assert out == ""


def test_config_file_list_with_no_items_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("apiVersion: v1\nkind: List\nitems: ~\n")
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    code, _, err = run(capsys, "lint", "--config-autoscaler", str(cfg), str(svc))
    assert code == 0, err


# --- #10: translate refuses an object with an annotation key written twice, as lint does ------


def test_translate_does_not_render_an_object_with_a_duplicate_annotation_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text(DUP_SVC)
    code, out, err = run(capsys, "lint", str(f))
    assert code == 1
    lint_line = next(line for line in out.splitlines() if "KNS901" in line)
    assert lint_line.startswith(f"{f}:13:9: error KNS901 ") and "written twice" in lint_line

    code, out, err = run(capsys, "translate", str(f))
    assert code == 1
    assert out == ""
    # translate judges the object in the namespace it renders it for (`default`, as kubectl)
    assert lint_line.replace("Service s:", "Service default/s:") in err.splitlines()

    code, out, _ = run(capsys, "translate", "-o", "json", str(f))
    assert code == 1 and json.loads(out)["items"] == []


def test_translate_duplicate_key_in_a_list_item_spares_the_other_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = yaml.safe_load(SVC)
    good["metadata"]["name"] = "good"
    dup_item = "\n".join("  " + line if line else line for line in DUP_SVC.splitlines())
    f = tmp_path / "list.yaml"
    f.write_text(
        "apiVersion: v1\nkind: List\nitems:\n- " + dup_item.lstrip() + "\n- " + json.dumps(good) + "\n"
    )
    code, out, err = run(capsys, "translate", str(f))
    assert code == 1
    assert f"{f}:16:11: error KNS901 " in err and "written twice" in err
    rendered = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in rendered] == ["good-00001"]


def test_translate_without_duplicates_still_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text(SVC)
    code, out, err = run(capsys, "translate", str(f))
    assert code == 0, err
    assert yaml.safe_load(out)["kind"] == "ScaledObject"


# --- #11: SARIF artifactLocation.uri is percent-encoded; github file= keeps the plain path -----


def test_sarif_uri_is_percent_encoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sp ace").mkdir()
    f = tmp_path / "sp ace" / "a#1%.yaml"
    f.write_text(DUP_SVC)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "lint", "-f", "sarif", "sp ace/a#1%.yaml")
    assert code == 1
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for result in json.loads(out)["runs"][0]["results"]
        for loc in result["locations"]
    }
    assert uris == {"sp%20ace/a%231%25.yaml"}

    code, out, _ = run(capsys, "lint", "-f", "github", "sp ace/a#1%.yaml")
    assert code == 1
    assert out.startswith("::error file=sp ace/a#1%25.yaml,line=13,")


# --- #12: text format: one finding is one line, whatever a key holds -------------------------


@pytest.mark.parametrize("command", ["lint", "translate"])
@pytest.mark.parametrize(("written", "shown"), [("\\n", "\\n"), ("\\r", "\\r"), ("\\r\\n", "\\r\\n")])
def test_text_format_escapes_line_breaks_in_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, written: str, shown: str
) -> None:
    f = tmp_path / "nl.yaml"
    key = f"autoscaling.knative.dev/min{written}fake.yaml:1:1: error KNS999 x"
    f.write_text(SVC.replace('max-scale: "3"\n', f'max-scale: "3"\n        "{key}": "1"\n'))
    _, out, err = run(capsys, command, str(f))
    text = out if command == "lint" else err
    lines = [line for line in text.split("\n") if line and not line.startswith("knscale ")]
    kns111 = [line for line in lines if "KNS111" in line]
    assert len(kns111) == 1, text
    assert kns111[0].startswith(f"{f}:13:9: warning KNS111 ")
    assert f"autoscaling.knative.dev/min{shown}fake.yaml:1:1: error KNS999 x" in kns111[0]
    assert "\r" not in text
    assert all(line.startswith(f"{f}:") for line in lines), lines
