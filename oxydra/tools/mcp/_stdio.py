"""The stdio transport: newline-delimited JSON-RPC over a child's stdin/stdout.

stdout is read in chunks through `LineSplitter` (a line over the limit drops the server);
each line is decoded on its own, so garbage on stdout costs one `Malformed` event, not the
connection. stderr is drained continuously (a full pipe would block the server) and its last
lines are kept for the report when the server dies. Closing follows the spec's order: close
stdin, wait, SIGTERM the process group, wait, SIGKILL it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import Callable

from oxydra.core.errors import ToolError, WireError
from oxydra.core.log import get_logger
from oxydra.security._confine_client import ConfinedProcess
from oxydra.wire.mcp import Event, LineSplitter, decode_messages

_log = get_logger(__name__)
STDERR_LINES = 20
_GRACE_SECS = 2.0


class StdioTransport:
    """One running stdio server.

    Args:
        process: the started child (pipes on all three streams, own session).
        name: the server's configured name (for logs).
        on_event: called with every decoded inbound message.
        on_close: called once with the reason when stdout ends or the framing broke.
    """

    def __init__(
        self,
        process: ConfinedProcess,
        *,
        name: str,
        on_event: Callable[[Event], None],
        on_close: Callable[[str], None],
        max_line_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.process = process
        self.name = name
        self._on_event = on_event
        self._on_close = on_close
        self._splitter = LineSplitter(max_line_bytes=max_line_bytes)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"mcp-{name}-stdout"),
            asyncio.create_task(self._read_stderr(), name=f"mcp-{name}-stderr"),
        ]
        self._write_lock = asyncio.Lock()

    async def send(self, data: bytes, **_hints: object) -> None:
        """Write one message and its newline."""
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            raise ToolError(f"MCP server '{self.name}' is not running")
        async with self._write_lock:
            try:
                stdin.write(data + b"\n")
                await stdin.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise ToolError(f"MCP server '{self.name}' closed its input: {exc}") from exc

    def negotiated(self, version: str | None, *, modern: bool) -> None:
        """stdio carries no per-message protocol headers."""

    async def abort(self, request_id: int | str) -> None:
        """Nothing to abort on stdio: `notifications/cancelled` is the signal."""

    async def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        reason = "the server closed its output"
        try:
            while chunk := await stdout.read(64 * 1024):
                for line in self._splitter.feed(chunk):
                    for event in decode_messages(line):
                        self._on_event(event)
            for line in self._splitter.feed_eof():
                for event in decode_messages(line):
                    self._on_event(event)
        except WireError as exc:
            reason = f"the server broke the stdio framing: {exc}"
            await self._terminate()
        code = await self.process.wait()
        tail = " | ".join(self.stderr_tail)
        self._on_close(f"{reason} (exit code {code})" + (f"; stderr: {tail}" if tail else ""))

    async def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        with contextlib.suppress(ValueError, ConnectionError):
            while line := await stderr.readline():
                text = line.decode("utf-8", "replace").rstrip()[:500]
                if text:
                    self.stderr_tail.append(text)
                    _log.debug("mcp %s stderr: %s", self.name, text)

    async def close(self) -> None:
        """Close stdin, then SIGTERM and SIGKILL the group if the server lingers."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        if not await self._exited(_GRACE_SECS):
            await self._terminate()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers the server left behind
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.process.close()

    async def _terminate(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            if await self._exited(_GRACE_SECS):
                return

    async def _exited(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self.process.wait()
        except TimeoutError:
            return False
        return True
