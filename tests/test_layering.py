"""The architecture as a test: imports only go down the layers, nothing imports in a circle,
and every package states its public names.

Every import counts, wherever it is written: at module level, inside a function (a lazy
import is still a dependency) and under `if TYPE_CHECKING:` (a type is one too).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "oxydra"

# Lower number = lower layer. A module may import its own layer or lower ones, and no import
# may close a cycle, between packages or between modules.
LAYER = {
    "_lazy": 0,
    "_phases": 0,
    "core": 0,
    "wire": 1,
    "config": 2,
    "catalog": 2,
    "security": 2,
    "providers": 3,
    "tools": 3,
    "memory": 3,
    "observability": 3,
    "runtime": 4,
    "scheduler": 4,
    "gateway": 5,
    "channels": 5,
    "runner": 6,
    "tui": 6,
    "web": 6,
    "app": 7,
    "testing": 8,
    "commands": 9,
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}
FORBIDDEN_LOW = {
    "asyncio",
    "httpx",
    "websockets",
    "sqlite3",
    "blessed",
    "docker",
    "wasmtime",
    "usearch",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _dotted(path: Path) -> str:
    parts = ("oxydra", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_dotted(p): p for p in _modules()}


def _resolve(name: str) -> str:
    """The module an imported name lives in: `oxydra.a.b.Thing` → `oxydra.a.b`."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path) -> list[str]:
    """Absolute names imported by `path`; `from pkg import sub` yields `pkg.sub` when it is a
    module, else `pkg`. Relative imports are resolved against the module's package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names += [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
    return names


def _internal_edges() -> Iterator[tuple[str, str]]:
    for module, path in MODULES.items():
        for name in _imports(path):
            if name.startswith("oxydra."):
                target = _resolve(name)
                if target != module:
                    yield module, target


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down_the_layers(path: Path) -> None:
    room = _room(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "oxydra" and len(parts) > 1:
            target = parts[1]
            assert LAYER[target] <= LAYER[room], f"{room} (layer {LAYER[room]}) imports {name}"
        if LAYER[room] <= 1:
            assert parts[0] not in FORBIDDEN_LOW, f"{room} must stay sans-I/O but imports {name}"


def test_every_room_has_a_layer() -> None:
    rooms = {_room(p) for p in _modules()}
    assert rooms <= set(LAYER)


def test_no_two_packages_import_each_other() -> None:
    edges = {(_package_of(a), _package_of(b)) for a, b in _internal_edges()}
    edges = {(a, b) for a, b in edges if a != b}
    assert _cycles(edges) == []


def test_no_module_imports_itself_in_a_circle() -> None:
    assert _cycles(set(_internal_edges())) == []


class TestCycleFinder:
    """The cycle check itself can fail."""

    def test_finds_a_cycle_within_one_layer(self) -> None:
        edges = {("runtime", "scheduler"), ("scheduler", "runtime"), ("runtime", "core")}
        assert _cycles(edges) == [["runtime", "scheduler"]]

    def test_finds_a_long_cycle_and_ignores_a_diamond(self) -> None:
        edges = {("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"), ("d", "f"), ("e", "g")}
        edges |= {("f", "g")}
        assert _cycles(edges) == [["a", "b", "c"]]


def _packages() -> list[str]:
    found = ["oxydra"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="oxydra."):
        if info.ispkg:
            found.append(info.name)
    return sorted(found)


def _public_names(module: types.ModuleType) -> set[str]:
    """What the facade binds for others: public names that are not submodules or
    `from __future__` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


@pytest.mark.parametrize("name", _packages())
def test_facade_all_is_sorted_complete_and_names_real_objects(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    unlisted = _public_names(module) - set(exported)
    assert not unlisted, f"{name} binds public names missing from __all__: {sorted(unlisted)}"


def test_every_package_is_checked() -> None:
    on_disk = {_dotted(p) for p in _modules() if p.name == "__init__.py"}
    assert on_disk == set(_packages())
