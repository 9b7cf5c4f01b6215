"""The configurator's view of the host: memory, following a guest's logs, starting runners."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec


def host_memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


FOLLOW_POLL_SECS = 1.0
KEEPALIVE_SECS = 15.0


async def follow_logs(workspace: Any, request: Any, docker: bool) -> AsyncIterator[bytes]:
    """Server-sent events: each new log line as `data: <json>`, a comment now and then.

    The files are re-read every `FOLLOW_POLL_SECS` (as `runner logs -f` does); a line already
    sent is not sent again. The stream ends when the client goes (the write fails).
    """
    from oxydra.runner._logs import read_logs

    seen: set[int] = set()
    quiet = 0.0
    encode = msgspec.json.encode
    while True:
        answer = await asyncio.to_thread(read_logs, workspace, request, docker=docker)
        sent = False
        for entry in answer.entries:
            key = hash((entry.timestamp, entry.role, entry.stream, entry.message))
            if key not in seen:
                seen.add(key)
                sent = True
                yield b"data: " + encode(entry) + b"\n\n"
        if len(seen) > 10_000:
            seen.clear()
        quiet = 0.0 if sent else quiet + FOLLOW_POLL_SECS
        if quiet >= KEEPALIVE_SECS:
            quiet = 0.0
            yield b": keepalive\n\n"
        await asyncio.sleep(FOLLOW_POLL_SECS)


def spawn(argv: list[str]) -> int:
    """`oxydra runner <argv>` detached in its own process group (as the Rust runner does)."""
    from oxydra.runner._selfcmd import self_command, self_environment

    proc = subprocess.Popen(
        [*self_command("runner"), *argv],
        env=self_environment(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid
