"""WASM tool isolation: what a file tool call costs in the guest vs in process.

Run from the repository root: `python -m bench wasm` (or `make bench`). Figures:
1. cold: a fresh interpreter's first guest call (import wasmtime, create the engine, compile
   the module, run), median of several processes;
2. warm: `file_read` through the registry (as the agent calls it) with the in-process jail
   and with the guest, on a small and a 100 KB file, plus the other tools; medians of many.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.security import Scrubber, Workspace  # noqa: E402
from oxydra.security.wasm import WasmWorkspace, wasm_unavailable_reason  # noqa: E402
from oxydra.tools import (  # noqa: E402
    FILE_TOOLS,
    FileBackend,
    LocalFileBackend,
    ToolExecutionContext,
    ToolRegistry,
    WasmFileBackend,
)

WARM_CALLS = 400
COLD_RUNS = 7
_COLD = """
import json, sys, time
t0 = time.perf_counter()
from oxydra.security import Workspace
from oxydra.security.wasm import WasmWorkspace
files = WasmWorkspace(Workspace.for_user(sys.argv[1]))
t1 = time.perf_counter()
import wasmtime
t2 = time.perf_counter()
files.read_text("/shared/small.txt")
t3 = time.perf_counter()
files.read_text("/shared/small.txt")
t4 = time.perf_counter()
print(json.dumps({"import_oxydra": t1 - t0, "import_wasmtime": t2 - t1,
                  "first_call": t3 - t2, "second_call": t4 - t3}))
"""


def _workspace(base: Path) -> Path:
    root = base / "alice"
    for sub in ("shared", "tmp", "vault"):
        (root / sub).mkdir(parents=True)
    (root / "shared" / "small.txt").write_text("hello from a small file\n")
    (root / "shared" / "big.txt").write_text(("x" * 99 + "\n") * 1024)
    for index in range(20):
        (root / "shared" / "docs" / f"d{index}.md").parent.mkdir(exist_ok=True)
        (root / "shared" / "docs" / f"d{index}.md").write_text("line\nneedle here\n" * 50)
    return root


def _cold(root: Path) -> None:
    runs = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _COLD, str(root)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout))
    print(f"cold, median of {COLD_RUNS} fresh processes (ms):")
    for key in ("import_oxydra", "import_wasmtime", "first_call", "second_call"):
        print(f"  {key:<16} {statistics.median(r[key] for r in runs) * 1000:8.2f}")


async def _median_us(call: Callable[[], Awaitable[object]], count: int) -> float:
    for _ in range(20):
        await call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def _warm(root: Path) -> None:
    registry = ToolRegistry(scrubber=Scrubber())
    registry.register_all(FILE_TOOLS)
    jail = Workspace.for_user(root)
    backends: dict[str, FileBackend] = {
        "process": LocalFileBackend(jail),
        "wasm": WasmFileBackend.for_workspace(jail),
    }
    calls = [
        ("file_read small", "file_read", {"path": "/shared/small.txt"}),
        ("file_read 100 KB", "file_read", {"path": "/shared/big.txt"}),
        ("file_list", "file_list", {"path": "/shared/docs"}),
        ("file_search 20 files", "file_search", {"path": "/shared/docs", "query": "needle"}),
        ("file_write small", "file_write", {"path": "/tmp/out.txt", "content": "x" * 100}),
    ]
    print(f"warm, median of {WARM_CALLS} calls through the registry (us):")
    print(f"  {'tool':<22}{'process':>10}{'wasm':>10}{'overhead':>10}")
    for label, name, args in calls:
        figures = {}
        for kind, backend in backends.items():
            ctx = ToolExecutionContext(user_id="alice", session_id="b", workspace=backend)

            async def call(
                ctx: ToolExecutionContext = ctx, name: str = name, args: dict[str, str] = args
            ) -> object:
                result = await registry.execute(name, args, ctx)
                if not result.ok:
                    raise RuntimeError(result.text)
                return result

            figures[kind] = await _median_us(call, WARM_CALLS)
        extra = figures["wasm"] - figures["process"]
        print(f"  {label:<22}{figures['process']:10.0f}{figures['wasm']:10.0f}{extra:10.0f}")


def _direct(root: Path) -> None:
    jail = Workspace.for_user(root)
    wasm = WasmWorkspace(jail)
    print(f"direct sync read_text of the small file, median of {WARM_CALLS} (us):")
    for kind, files in (("jail", jail), ("wasm", wasm)):
        times = []
        for _ in range(WARM_CALLS):
            start = time.perf_counter()
            files.read_text("/shared/small.txt")
            times.append(time.perf_counter() - start)
        print(f"  {kind:<6}{statistics.median(times) * 1e6:8.0f}")


def main() -> None:
    """Print every figure."""
    reason = wasm_unavailable_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    with tempfile.TemporaryDirectory(prefix="oxydra-bench-wasm-") as tmp:
        root = _workspace(Path(tmp))
        _cold(root)
        asyncio.run(_warm(root))
        _direct(root)


if __name__ == "__main__":
    main()
