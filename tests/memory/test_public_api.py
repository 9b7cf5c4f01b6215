"""The memory package's public surface and its import cost."""

from __future__ import annotations

import subprocess
import sys

import oxydra.memory
from oxydra.memory import tools

from .conftest import ROOT


def test_all_is_sorted_and_complete() -> None:
    exported = oxydra.memory.__all__
    assert exported == sorted(exported)
    for name in exported:  # the facade is lazy: a name is bound when first used
        assert getattr(oxydra.memory, name) is not None
    public = {n for n in vars(oxydra.memory) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(oxydra.memory, n)).__name__ == "module"}
    assert set(exported) == public - modules - {"annotations"}


def test_importing_memory_loads_no_heavy_module() -> None:
    code = (
        "import sys, oxydra.memory, oxydra.memory.tools\n"
        "names = ('numpy', 'usearch', 'fastembed', 'onnxruntime')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""


def test_tools_module_exposes_specs() -> None:
    assert [t.name for t in tools.memory_tools(None)] == [  # type: ignore[arg-type]
        "memory_search", "memory_save", "memory_update", "memory_delete",
    ]  # fmt: skip
