"""The WASM runtime is created once per process even when warm-up and calls race for it.

Before the fix, the warm-up thread and a tool call could each build an engine; a module
compiled in one was then instantiated in the other's linker ("cross-`Engine` instantiation
is not currently supported"). Each child process below starts cold, starts the real warm-up
path (`WasmFileBackend.start_warming`) and at once runs file writes and reads from several
threads, as the turn loop does when the model calls `file_write` and `file_read` together.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("wasmtime")

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
import asyncio, sys
from oxydra.security import Workspace
from oxydra.tools import WasmFileBackend

async def main(root):
    backend = WasmFileBackend.for_workspace(Workspace.for_user(root))
    backend.start_warming()

    async def one(i):
        await backend.write_bytes(f"/shared/f{i}.txt", b"x%d" % i)
        text, _ = await backend.read_text(f"/shared/f{i}.txt", max_bytes=100)
        assert text == f"x{i}", text

    await asyncio.gather(*(one(i) for i in range(6)))

asyncio.run(main(sys.argv[1]))
print("ok")
"""
RUNS = 6


def test_warm_up_racing_first_calls_never_mixes_engines(tmp_path: Path) -> None:
    failures = []
    for run in range(RUNS):
        root = tmp_path / f"ws{run}"
        for sub in ("shared", "tmp", "vault"):
            (root / sub).mkdir(parents=True)
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(root)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0 or out.stdout.strip() != "ok":
            failures.append(out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"])
    assert not failures, failures
