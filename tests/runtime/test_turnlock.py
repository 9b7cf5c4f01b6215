"""Turn locks across processes: one byte of one file per session, dropped with its holder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oxydra.runtime.turnlock import LOCK_FILE, SessionLocks


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
    first.close()
    second.close()


async def test_other_sessions_do_not_wait_and_make_no_files(tmp_path: Path) -> None:
    first, second = SessionLocks(tmp_path), SessionLocks(tmp_path, on_wait=pytest.fail)
    async with first.hold("a"):
        for n in range(50):
            async with second.hold(f"b{n}"):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]
    first.close()
    second.close()


async def test_two_sessions_on_one_byte_still_exclude_each_other(tmp_path: Path) -> None:
    locks, other = SessionLocks(tmp_path), SessionLocks(tmp_path)
    locks.offset_for = lambda _session: 7  # type: ignore[method-assign]  # a forced meeting
    other.offset_for = lambda _session: 7  # type: ignore[method-assign]
    async with locks.hold("a"):
        waiting = asyncio.create_task(_enter(locks, "b"))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # same description, same byte: b waits for a
    await asyncio.wait_for(waiting, 10)
    async with locks.hold("a"):  # b released the byte: a is free again, also for others
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_enter(other, "c"), 0.2)
    await asyncio.wait_for(_enter(other, "c"), 10)
    locks.close()
    other.close()


async def _enter(locks: SessionLocks, session: str) -> None:
    async with locks.hold(session):
        pass


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
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    waited: list[str] = []
    locks = SessionLocks(tmp_path, on_wait=waited.append)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_enter(locks, "s"), 0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    await asyncio.wait_for(_enter(locks, "s"), 10)
    assert waited == ["s"]
    locks.close()
