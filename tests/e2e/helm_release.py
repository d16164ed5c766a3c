"""Real helm (tools/helm/build.sh) against an e2e control plane: one release of charts/knscale."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cluster import REPO_ROOT, ControlPlane

CHART = REPO_ROOT / "charts" / "knscale"
NAMESPACE = "knscale-system"


def helm(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    path = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/helm/build.sh"), "--print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(path).is_file(), f"{path} is missing: `make e2e` builds it (tools/helm/build.sh)"
    env = {
        **cp.env(),
        "HELM_CACHE_HOME": str(cp.home / "helm-cache"),
        "HELM_CONFIG_HOME": str(cp.home / "helm"),
        "HELM_DATA_HOME": str(cp.home / "helm-data"),
    }
    done = subprocess.run(
        [path, *args, "--kubeconfig", str(cp.kubeconfig)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done
