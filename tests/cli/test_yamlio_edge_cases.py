"""Reading edge cases: JSON PyYAML refuses, `<<` merges, unreadable directories, bytes that are not UTF-8."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from knscale import cli, positions, yamlio

P = "autoscaling.knative.dev/"

SERVICE: dict[str, Any] = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "a", "labels": {"x": "\U0001f600"}},
    "spec": {
        "template": {
            "metadata": {"annotations": {f"{P}min-scale": "5", f"{P}max-scale": "2"}},
            "spec": {"containers": [{"image": "x"}]},
        }
    },
}


def knscale(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "knscale", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def documents(items: Iterator[yamlio.Document | yamlio.ReadError]) -> list[yamlio.Document]:
    out = []
    for item in items:
        assert isinstance(item, yamlio.Document), item
        out.append(item)
    return out


# ---- #4: valid JSON that PyYAML refuses -----------------------------------------------------------


def test_surrogate_escapes_are_what_pyyaml_refuses() -> None:
    text = json.dumps(SERVICE, indent=2)
    assert "\\ud83d\\ude00" in text
    with pytest.raises(yaml.YAMLError):  # libyaml refuses them
        yaml.load(text, Loader=yamlio.Loader)


def test_json_with_surrogate_escapes_on_stdin_is_read_as_json() -> None:
    text = json.dumps(SERVICE, indent=2)
    for command in ("lint", "translate"):
        r = knscale(command, "-", stdin=text.encode())
        assert r.returncode == 1, r.stdout + r.stderr
        assert "KNS901" not in r.stdout + r.stderr
        assert f"<stdin>:{line_of(text, P + 'max-scale')}:" in r.stdout + r.stderr
        assert "KNS106" in r.stdout + r.stderr


def test_json_fallback_gives_real_positions_also_on_one_line(tmp_path: Path) -> None:
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(SERVICE, indent=2))
    r = knscale("lint", str(pretty))
    assert r.returncode == 1
    assert f"{pretty}:{line_of(pretty.read_text(), P + 'max-scale')}:11: error KNS106" in r.stdout
    # One line, several surrogate escapes before the key: the column must not shift.
    compact = dict(SERVICE, metadata={"name": "a", "labels": {"x": "\U0001f600" * 3, "y": "\ud800"}})
    one = tmp_path / "one.json"
    one.write_text(json.dumps(compact))
    r = knscale("lint", str(one))
    col = one.read_text().index(f'"{P}max-scale"') + 1
    assert f"{one}:1:{col}: error KNS106" in r.stdout


def test_json_fallback_still_finds_duplicate_keys(tmp_path: Path) -> None:
    text = json.dumps(SERVICE, indent=2).replace(
        f'"{P}max-scale": "2"', f'"{P}max-scale": "2",\n          "{P}max-scale": "9"'
    )
    f = tmp_path / "dup.json"
    f.write_text(text)
    r = knscale("lint", str(f))
    second = [n for n, line in enumerate(text.splitlines(), 1) if f"{P}max-scale" in line][1]
    assert f"{f}:{second}:11: error KNS901" in r.stdout and "written twice" in r.stdout
    r = knscale("lint", "-", stdin=text.encode())
    assert f"<stdin>:{second}:11: error KNS901" in r.stdout


def test_json_pyyaml_cannot_compose_has_unknown_positions_not_1_1(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(SERVICE))
    doc["metadata"]["labels"]["k" * 1100] = "v"  # YAML keys are at most 1024 characters
    text = json.dumps(doc, indent=2).replace(
        f'"{P}max-scale": "2"', f'"{P}max-scale": "2",\n          "{P}max-scale": "1"'
    )
    f = tmp_path / "long.json"
    f.write_text(text)
    [only] = documents(yamlio.read_path(str(f)))
    assert only.data["metadata"]["name"] == "a"
    path = "spec.template.metadata.annotations"
    assert positions.locate(only.node, path, f"{P}max-scale") == (0, 0)
    assert positions.duplicate_keys(only.node, path) == [(f"{P}max-scale", 0, 0)]
    assert positions.locate(None, path) == (0, 0)
    r = knscale("lint", str(f))
    assert r.returncode == 1
    assert f"{f}: error KNS106" in r.stdout and f"{f}: error KNS901" in r.stdout
    assert ":1:1:" not in r.stdout


def test_stdin_that_is_neither_yaml_nor_json_keeps_the_yaml_error() -> None:
    r = knscale("lint", "-", stdin=b'{"a": "\\ud83d", bad\n')
    assert r.returncode == 2
    assert r.stdout.startswith("<stdin>:1:") and "KNS901 not valid YAML" in r.stdout


def test_stdin_yaml_stream_is_not_read_as_json() -> None:
    stream = b"\n\n" + yaml.safe_dump(SERVICE).encode() + b"---\n" + yaml.safe_dump(SERVICE).encode()
    docs = documents(yamlio.read_path("-", io.BytesIO(stream)))
    assert [d.index for d in docs] == [0, 1]
    assert docs[1].data == SERVICE


# ---- #5: `<<` merge keys ----------------------------------------------------------------------------

MERGED = f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: m
  x: &common
    {P}min-scale: "1"
    {P}max-scale: "3"
spec:
  template:
    metadata:
      annotations:
        <<: *common
        {P}max-scale: "5"
    spec:
      containers:
      - image: x
"""


def test_overriding_a_merged_key_is_not_a_duplicate(tmp_path: Path) -> None:
    f = tmp_path / "merge.yaml"
    f.write_text(MERGED)
    r = knscale("lint", str(f))
    assert r.returncode == 0, r.stdout
    assert "written twice" not in r.stdout


def test_a_key_written_twice_next_to_a_merge_is_still_a_duplicate(tmp_path: Path) -> None:
    f = tmp_path / "merge.yaml"
    f.write_text(MERGED.replace(f'        {P}max-scale: "5"\n', f'        {P}max-scale: "5"\n' * 2))
    r = knscale("lint", str(f))
    assert r.returncode == 1
    assert f"{f}:14:9: error KNS901" in r.stdout and "written twice" in r.stdout
    assert r.stdout.count("written twice") == 1


def test_merge_of_an_anchor_inside_the_same_mapping() -> None:
    text = "a:\n  x: &c {k: 1, j: 2}\n  <<: *c\n  k: 3\nb:\n  <<: *c\n  j: 4\n  j: 5\n"
    [doc] = documents(yamlio.read_stream("m.yaml", io.StringIO(text)))
    assert doc.data["a"] == {"x": {"k": 1, "j": 2}, "k": 3, "j": 2}
    assert positions.duplicate_keys(doc.node, "a") == []
    assert positions.duplicate_keys(doc.node, "b") == [("j", 8, 3)]
    assert positions.locate(doc.node, "a", "k") == (4, 3)


# ---- #7: unreadable directories --------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.yaml").write_text("kind: x\n")
    (tmp_path / "ok" / "B.YML").write_text("kind: x\n")
    (tmp_path / "noperm").mkdir()
    (tmp_path / "noperm" / "z.yaml").write_text("kind: x\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.yaml").write_text("kind: x\n")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "dir.yaml" / "c.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.yaml").symlink_to(tmp_path / "absent.yaml")
    (tmp_path / "ok" / "loop").symlink_to(tmp_path)
    return tmp_path


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if Path(os.fsdecode(path)) == denied:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_discovery_semantics(tree: Path) -> None:
    assert list(yamlio.discover([str(tree)])) == [
        str(tree / "dir.yaml" / "c.json"),
        str(tree / "noperm" / "z.yaml"),
        str(tree / "ok" / "B.YML"),
        str(tree / "ok" / "a.yaml"),
    ]


def test_an_unreadable_directory_is_a_read_error(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny(monkeypatch, tree / "noperm")
    found = list(yamlio.discover([str(tree)]))
    assert yamlio.ReadError(str(tree / "noperm"), 0, 0, "cannot read directory: Permission denied") in found
    assert str(tree / "ok" / "a.yaml") in found and str(tree / "noperm" / "z.yaml") not in found
    deny(monkeypatch, tree)
    assert list(yamlio.discover([str(tree)])) == [
        yamlio.ReadError(str(tree), 0, 0, "cannot read directory: Permission denied")
    ]


def test_lint_of_an_unreadable_directory_exits_2(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deny(monkeypatch, tree / "noperm")
    assert cli.main(["lint", "--fail-on", "none", str(tree)]) == 2
    out = capsys.readouterr().out
    assert f"{tree / 'noperm'}: error KNS901 cannot read directory: Permission denied" in out


# ---- #9: bytes that are not UTF-8 ------------------------------------------------------------------

NON_UTF8 = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: \xff\xfe\n"


def test_non_utf8_file_and_stdin_give_line_and_column_on_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_bytes(NON_UTF8)
    r = knscale("lint", str(f))
    assert r.returncode == 2
    assert r.stdout.splitlines()[0].startswith(f"{f}:4:9: error KNS901 not UTF-8 text: invalid byte 0xff;")
    assert len(r.stdout.splitlines()) == 1
    r = knscale("lint", "-", stdin=NON_UTF8)
    assert r.returncode == 2
    assert r.stdout.startswith("<stdin>:4:9: error KNS901 not UTF-8 text: invalid byte 0xff;")
    assert len(r.stdout.splitlines()) == 1
    r = knscale("translate", "-", stdin=NON_UTF8)
    assert r.returncode == 2 and "<stdin>:4:9: error KNS901 not UTF-8 text" in r.stderr


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])
def test_non_utf8_far_into_a_stream_and_after_multibyte_characters(prefix: bytes) -> None:
    big = b"".join(b"k%d: \xc3\xa9t\xc3\xa9\n" % i for i in range(20000))  # several parser reads
    data = prefix + big + b"last: \xc3\xa9\xc3\xa9 \xff\n"
    [err] = list(yamlio.read_stream("s", io.BytesIO(data)))
    assert err == yamlio.ReadError("s", 20001, 10, "not UTF-8 text: invalid byte 0xff")
    # A cut-off sequence: libyaml points at the byte after the lead byte (here the line break).
    [err] = list(yamlio.read_stream("s", io.BytesIO(data.replace(b"\xff", b"\xc3"))))
    assert err == yamlio.ReadError("s", 20001, 11, "not UTF-8 text: invalid trailing UTF-8 octet")


def test_a_control_character_is_located_too() -> None:
    [err] = list(yamlio.read_stream("s", io.BytesIO("a: 1\nb: é\x01\n".encode())))
    assert err == yamlio.ReadError("s", 2, 5, "not valid YAML: control characters are not allowed (U+0001)")


def test_a_helm_charts_templates_are_not_walked(tmp_path: Path) -> None:
    """`knscale lint .` over a repository: chart templates are Go templates (`{{ … }}`), linted as
    `helm template` output instead; the chart's other YAML (values.yaml) is still read."""
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "dep.yaml").write_text("metadata:\n  name: {{ .Release.Name }}\n")
    (tmp_path / "templates").mkdir()  # not in a chart: an ordinary directory
    (tmp_path / "templates" / "x.yaml").write_text("a: 1\n")
    assert list(yamlio.discover([str(tmp_path)])) == [
        str(chart / "Chart.yaml"),
        str(chart / "values.yaml"),
        str(tmp_path / "templates" / "x.yaml"),
    ]
    assert cli.main(["lint", str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("apiVersion: v2\nname: c\nversion: 0.1.0\n", False),  # a Helm Chart.yaml
        ("kind: Service\nmetadata:\n  name: s\n", True),
        ("apiVersion: serving.knative.dev/v1\nmetadata:\n  name: s\n", True),
        ("kind: 3\napiVersion: v1\n", True),
    ],
)
def test_kns902_is_for_documents_that_mean_to_be_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, flagged: bool
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    assert cli.main(["lint", str(manifest)]) == (1 if flagged else 0)
    assert ("KNS902" in capsys.readouterr().out) is flagged
