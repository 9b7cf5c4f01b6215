"""Cost of one confined `shell_exec` command, next to a bare `/bin/sh -c true` subprocess.

Both run `true` from a live asyncio process. The confined figure is `LocalShellSession.run`:
the request to the confinement server, its fork of the intermediate, the sandbox (Landlock,
`no_new_privs`, rlimits, capabilities) in the shell's fork, the tree sweep and the report.
The first call also starts the server; it is shown apart.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

CALLS = 40


async def _bare() -> list[float]:
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", "true")
        await proc.wait()
        times.append(time.perf_counter() - start)
    return times


async def _confined(tmp: Path) -> tuple[float, list[float], float]:
    from oxydra.security import _landlock as ll
    from oxydra.security.confine import ShellSandbox
    from oxydra.tools import LocalShellSession

    for name in ("shared", "tmp"):
        (tmp / name).mkdir()
    writable = (str(tmp / "shared"), str(tmp / "tmp"))
    session = LocalShellSession(
        writable[0],
        sandbox=ShellSandbox(writable=writable, abi=max(ll.landlock_abi()[0], 0)),
        tmp=writable[1],
    )
    start = time.perf_counter()
    await session.run("true", timeout=30)
    first = time.perf_counter() - start
    cpu = _cpu()
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        out = await session.run("true", timeout=30)
        times.append(time.perf_counter() - start)
        assert out.exit_code == 0, out
    return first, times, (_cpu() - cpu) / CALLS


def _cpu() -> float:
    """CPU seconds of this process (the server's forks are not our children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        bare = statistics.median(asyncio.run(_bare()))
        first, times, cpu = asyncio.run(_confined(Path(name)))
    ours = statistics.median(times)
    print(f"bare /bin/sh -c true (asyncio subprocess): {bare * 1000:6.2f} ms")
    print(f"confined shell_exec, per call:             {ours * 1000:6.2f} ms  ({ours / bare:.1f}x)")
    print(f"  agent CPU per call:                      {cpu * 1000:6.2f} ms")
    print(f"  first call (starts the server):          {first * 1000:6.2f} ms")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
