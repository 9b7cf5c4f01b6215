"""Turn locks across processes: two holders of a session take turns; a killed holder's lock
goes with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oxydra.runtime.turnlock import SessionLocks


async def test_two_holders_of_one_session_take_turns(tmp_path: Path) -> None:
    waited: list[str] = []
    first, second = SessionLocks(tmp_path), SessionLocks(tmp_path, on_wait=waited.append)
    order: list[str] = []

    async def turn(locks: SessionLocks, name: str, gate: asyncio.Event | None) -> None:
        async with locks.hold("s"):
            order.append(f"{name} in")
            if gate is not None:
                await gate.wait()
            order.append(f"{name} out")

    gate = asyncio.Event()
    one = asyncio.create_task(turn(first, "one", gate))
    await asyncio.sleep(0.01)
    two = asyncio.create_task(turn(second, "two", None))
    await asyncio.sleep(0.1)
    assert order == ["one in"] and waited == ["s"]
    gate.set()
    await asyncio.wait_for(asyncio.gather(one, two), 10)
    assert order == ["one in", "one out", "two in", "two out"]


async def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from oxydra.runtime.turnlock import SessionLocks

        async def main():
            async with SessionLocks(Path({str(tmp_path)!r})).hold("s"):
                print("held", flush=True)
                await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    with subprocess.Popen(  # the holder never outlives the test, whatever fails
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            waited: list[str] = []
            locks = SessionLocks(tmp_path, on_wait=waited.append)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_enter(locks, "s"), 0.3)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    await asyncio.wait_for(_enter(locks, "s"), 10)
    assert waited == ["s"]


async def _enter(locks: SessionLocks, session: str) -> None:
    async with locks.hold(session):
        pass
