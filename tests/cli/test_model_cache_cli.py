"""The model cache through the CLI: `knscale lint` names a bad claim (KNS046) where it is written,
`knscale inject` prints the pod with the claim, the cache script and the read-only entry mount."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knscale.cli import main
from translator.injection.cache_script import cache_key

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    knscale.dev/inject-model: "true"
    knscale.dev/model-uri: s3://models/resnet/
    knscale.dev/model-cache: {claim}
spec:
  containers:
  - name: app
    image: app:1
"""


def test_lint_shows_kns040_at_the_annotation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.format(claim="Bad_Claim"))
    code = main(["lint", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{path}:8:5: error KNS046 Pod p: metadata.annotations[knscale.dev/model-cache]" in out
    assert "not a valid PersistentVolumeClaim name" in out


def test_inject_prints_the_cached_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.format(claim="model-cache"))
    assert main(["inject", "-f", str(path)]) == 0
    pod = yaml.safe_load(capsys.readouterr().out)
    spec = pod["spec"]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "model-cache"}
    assert spec["containers"][0]["volumeMounts"][0]["subPath"] == cache_key("s3://models/resnet/")
    assert spec["initContainers"][0]["command"][:2] == ["python3", "-c"]
