"""The architecture as a test: imports only go down the layers; facades are complete."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "oxydra"

# Lower number = lower layer. A module may import its own layer or lower ones.
LAYER = {
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
    "testing": 7,
    "cli": 8,
    "__main__": 8,
    "__init__": 8,
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


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


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


@pytest.mark.parametrize("name", [m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.ispkg])
def test_facade_all_is_sorted_and_names_real_objects(name: str) -> None:
    module = importlib.import_module(f"oxydra.{name}")
    exported = getattr(module, "__all__", [])
    assert exported == sorted(exported), f"oxydra.{name}.__all__ is not sorted"
    for item in exported:
        assert hasattr(module, item), f"oxydra.{name}.__all__ names missing {item}"
