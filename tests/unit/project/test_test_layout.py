"""The test tree keeps its shape: unit tests mirror the packages, and no test module imports
another one (shared code lives in tests/helpers, fixtures in conftest.py) — an import between
test modules works only when pytest happened to put the other directory on sys.path first."""

from __future__ import annotations

import ast

from helpers.paths import REPO, TESTS

PACKAGES = {
    "translator",
    "reconciler",
    "webhook",
    "certs",
    "kubeapi",
    "knscale",
    "simulator",
    "fuzz",
    "project",
}


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [
                f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[-1].startswith("test_")
            ]
    assert offenders == []


def test_unit_tests_mirror_the_packages() -> None:
    top = {p.name for p in (TESTS / "unit").iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert top <= PACKAGES, top - PACKAGES
    assert not list((TESTS / "unit").glob("test_*.py")), "unit tests belong in their package's folder"
