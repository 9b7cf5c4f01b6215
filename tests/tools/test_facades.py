"""The security and tools facades export a sorted, complete `__all__`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


@pytest.mark.parametrize("package", ["oxydra.security", "oxydra.tools"])
def test_all_is_sorted_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert list(module.__all__) == sorted(module.__all__, key=_isort_key)
    assert all(hasattr(module, name) for name in module.__all__)


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
