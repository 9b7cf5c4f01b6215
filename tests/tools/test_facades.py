"""The security and tools facades export every public name (sorting: tests/test_layering.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest


@pytest.mark.parametrize("package", ["oxydra.security", "oxydra.tools"])
def test_public_modules_export_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    missing = []
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.startswith("_"):
            continue
        sub = importlib.import_module(f"{package}.{info.name}")
        for name, obj in vars(sub).items():
            public = not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            if public and obj.__module__ == sub.__name__ and name not in module.__all__:
                missing.append(f"{info.name}.{name}")
    assert missing == []
