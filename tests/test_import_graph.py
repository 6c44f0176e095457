"""The package's floors: imports run one way, from the command line down to the contracts, with no
circle between modules (CONTRIBUTING.md, "How the code is laid out").

Every import of every module is read from its source (``ast``): function-level imports and imports
under ``if TYPE_CHECKING:`` included, since a late import is still an arrow and an annotation-only
import is still a dependency a reader has to follow (hiding a circle behind either is how circles
survive). The package root ``routing_rl`` registers the built-ins and carries the version: it is
not a floor.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "routing_rl"

FLOORS: dict[str, int] = {
    "registry": 0, "core": 0, "metrics": 0, "plots": 0,
    "data": 1,
    "network": 2,
    "agents": 3, "models": 3, "envs": 3,
    "training": 4,
    "suites": 5, "analysis": 5,
    "cli": 6, "__main__": 6,
}  # fmt: skip
"""Each top-level module or package of ``routing_rl`` and its floor: a module may import its own floor
and the floors below, never one above."""


INNER_FLOORS: dict[str, dict[str, int]] = {
    "training": {"setup": 0, "records": 1, "loop": 2},
}
"""Floors inside a package: ``training``'s configuration, then its run records, then the loop that
uses both. The package's own ``__init__`` (its public names) stands above them all."""


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("routing_rl"):
            submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
            found.update(submodules or [node.module])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("routing_rl"))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (the package root left out)."""
    modules = _module_names()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(ast.parse(path.read_text(encoding="utf-8")), modules):
            if target != name and target != "routing_rl" and target in modules:
                graph[name].add(target)
    return graph


def floor_of(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else None
    return FLOORS.get(top) if top else None


def test_every_top_level_module_has_a_floor():
    tops = {name.split(".")[1] for name in _module_names() if "." in name}
    assert tops == set(FLOORS), f"give these a floor in FLOORS: {sorted(tops - set(FLOORS))}; stale: {sorted(set(FLOORS) - tops)}"


def test_no_import_points_up_a_floor():
    upward = [f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
              if floor_of(source) is not None and floor_of(target) is not None and floor_of(target) > floor_of(source)]  # type: ignore[operator]  # fmt: skip
    assert not upward, "imports up a floor:\n" + "\n".join(sorted(upward))


def inner_floor_of(module: str) -> tuple[str, int] | None:
    """``(package, floor)`` of a module in a package with inner floors (None outside them)."""
    parts = module.split(".")
    if len(parts) < 4 or parts[1] not in INNER_FLOORS:
        return None
    floor = INNER_FLOORS[parts[1]].get(parts[2])
    return None if floor is None else (parts[1], floor)


def test_every_subpackage_of_a_floored_package_has_a_floor():
    for package, floors in INNER_FLOORS.items():
        subs = {name.split(".")[2] for name in _module_names() if name.startswith(f"routing_rl.{package}.") and len(name.split(".")) > 2}
        assert subs == set(floors), f"{package}: give these a floor in INNER_FLOORS: {sorted(subs - set(floors))}; stale: {sorted(set(floors) - subs)}"


def test_no_import_points_up_inside_a_package():
    upward = []
    for source, targets in import_graph().items():
        for target in targets:
            a, b = inner_floor_of(source), inner_floor_of(target)
            if a is not None and b is not None and a[0] == b[0] and b[1] > a[1]:
                upward.append(f"{source} -> {target}")
    assert not upward, "imports up a floor inside a package:\n" + "\n".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            connect(node)
    return found


def test_no_module_imports_itself_through_others():
    assert _cycles(import_graph()) == []


def test_packages_form_no_circle():
    by_package: dict[str, set[str]] = defaultdict(set)
    for source, targets in import_graph().items():
        for target in targets:
            a, b = (m.split(".")[1] if "." in m else m for m in (source, target))
            if a != b:
                by_package[a].add(b)
    assert _cycles(by_package) == []


@pytest.mark.parametrize(("graph", "expected"), [({"a": {"b"}, "b": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": set()}, [])])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_late_imports_and_annotation_imports_count():
    tree = ast.parse("def f():\n    from routing_rl.cli import main\nif TYPE_CHECKING:\n    from routing_rl.suites import spec\n")
    assert _imports(tree, {"routing_rl.cli": Path(), "routing_rl.suites": Path(), "routing_rl.suites.spec": Path()}) == {
        "routing_rl.cli", "routing_rl.suites.spec"}


def test_no_relative_import_hides_an_arrow():
    """The walk above reads absolute imports only, so a relative one would be an arrow it cannot see."""
    relative = [f"{name}: line {node.lineno}" for name, path in _module_names().items()
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and node.level > 0]  # fmt: skip
    assert not relative, "use absolute imports:\n" + "\n".join(relative)


def test_routers_and_models_take_their_contracts_from_the_ground_floor():
    """Routers, models and envs share a floor; the episodes and decisions they exchange live in
    ``core.contracts``, so no router or model needs the envs package."""
    sideways = [f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
                if source.split(".")[1:2] in (["agents"], ["models"]) and target.split(".")[1:2] == ["envs"]]  # fmt: skip
    assert not sideways, "\n".join(sorted(sideways))
