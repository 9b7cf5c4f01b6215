"""Lazy package facades: a name is imported from its module the first time it is used.

A facade that imports every submodule up front makes `from oxydra.security import
ShellSandbox` load the SSRF guard, httpx and the taint policy too; `ask` paid for most of
the package that way. Each facade lists its names and modules; `lazy_getattr` gives it the
module `__getattr__` (PEP 562) that imports on first use and caches the value. Type
checkers read the same names from an `if TYPE_CHECKING:` block beside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(namespace: dict[str, Any], names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for the facade whose `globals()` is `namespace`.

    `names` maps each public name to the module that defines it.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__


class LazyModule:
    """A module imported at its first attribute use: `httpx = LazyModule("httpx")`.

    For a heavy dependency an idle server does not call: httpx and httpcore, with the
    standard library's `http.client`, `email` and `urllib.request` they load, are ~5 MiB of
    an idle `vm`; its first provider call or fetch imports them. Type checkers read the real
    module from an `if TYPE_CHECKING:` import beside it.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("_module")
        if module is None:  # import_module returns the module once it is fully run
            module = importlib.import_module(self._name)
            # later reads are plain attribute reads (a turn reads httpx's names often)
            self.__dict__.update(vars(module), _name=self._name, _module=module)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
