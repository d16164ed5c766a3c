"""docs/install.md keeps up with what it documents: the support matrix names the versions the e2e
suite pins (tests/e2e/versions.env), the values table names every value of charts/knscale, and
README keeps its two-command quick start and links the install and comparison pages."""

from __future__ import annotations

import re
from typing import Any

import yaml
from helpers.paths import REPO

ROOT = REPO
INSTALL = (ROOT / "docs/install.md").read_text()


def _versions() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z0-9_]+)=(\S+)$", (ROOT / "tests/e2e/versions.env").read_text(), re.MULTILINE)
    return dict(pairs)


def test_support_matrix_names_the_versions_e2e_proves() -> None:
    versions = _versions()
    matrix = INSTALL.split("## Support matrix", 1)[1].split("\n## ", 1)[0]
    for key in (
        "K8S_VERSION",
        "ETCD_VERSION",
        "KWOK_VERSION",
        "KN_VERSION",
        "KNATIVE_SERVING_VERSION",
        "KEDA_VERSION",
    ):
        assert versions[key].removeprefix("v") in matrix, (key, versions[key])


def _paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in {"config"} and not path.endswith("resources"):
            out |= _paths(value, f"{path}.")
        else:
            out.add(path)
    return out


def test_values_table_names_every_chart_value() -> None:
    values = yaml.safe_load((ROOT / "charts/knscale/values.yaml").read_text())
    table = INSTALL.split("| value | default | what it does |", 1)[1].split("\n\n", 1)[0]
    cells = " ".join(re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE))
    named = set(re.findall(r"`([\w.]+)`", cells))
    expanded = set()
    for cell in re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE):
        names = re.findall(r"`([\w.]+)`", cell)
        if names:  # "`webhook.nodeSelector`, `.tolerations`" style: a leading dot continues the first name
            head = names[0].rsplit(".", 1)[0]
            expanded |= {f"{head}{n}" if n.startswith(".") else n for n in names}
    missing = {p for p in _paths(values) if p not in named | expanded}
    assert not missing, f"docs/install.md's values table misses {sorted(missing)}"


def test_readme_quick_start_is_two_commands_and_links_the_install_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in quick.strip().splitlines()] == [["make", "run"], ["make", "test"]]
    docs = readme.split("## Documentation", 1)[1]
    for page in ("docs/install.md", "docs/comparison.md"):
        assert f"]({page})" in docs and (ROOT / page).is_file()
