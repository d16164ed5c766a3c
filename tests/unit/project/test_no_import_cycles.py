"""No import cycle anywhere in knscale's packages (issue 10).

import-linter (≥2.1) has no contract for this, so the check is written over its own graph
library, grimp: build the import graph of every root package, find its strongly connected
components (Tarjan) and fail on any component with more than one module, or a module that
imports itself. Imports made only under `TYPE_CHECKING` count too: a cycle hidden from the
interpreter is still one for the reader, and is usually the sign of a type in the wrong layer.

One exclusion: the edge from a package's `__init__` to a module inside that package. Python
runs `__init__` before any submodule anyway, so a package re-exporting from its own
submodules is not a cycle between layers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping

import grimp
import pytest
from helpers.paths import REPO

# The same root packages import-linter checks, so a new top-level package (kubeapi, simulator)
# is covered as soon as it is given its contracts.
PYPROJECT = REPO / "pyproject.toml"
ROOT_PACKAGES: tuple[str, ...] = tuple(
    tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["root_packages"]
)


def _edges(graph: grimp.ImportGraph, modules: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module in modules:
        targets = set(graph.find_modules_directly_imported_by(module))
        # A package's __init__ importing its own submodules: see the module docstring.
        out[module] = {t for t in targets if not t.startswith(module + ".")}
    return out


def strongly_connected(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph has a few hundred modules; recursion is fine,
    but an iterative walk keeps the test independent of the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in edges:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    return [c for c in strongly_connected(edges) if len(c) > 1 or c[0] in edges.get(c[0], ())]


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"a"}}, [["a"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}}, [["a", "b", "c"], ["d", "e"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(cycles(edges)) == expected


def test_every_root_package_is_in_the_graph() -> None:
    assert {"knscale", "webhook", "translator", "certs", "reconciler"} <= set(ROOT_PACKAGES)


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)
    found = cycles(_edges(graph, graph.modules))
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)
