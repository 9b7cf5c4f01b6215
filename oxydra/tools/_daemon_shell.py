"""`DaemonShellSession`: `shell_exec` over the shell daemon's socket (the container tier).

One connection and one daemon session, opened lazily on the first command and reused:
`spawn_session` once, then per command `exec_command` and `stream_output` (waiting for live
output) until the chunk with `eof`, which carries the exit status. Output is capped like
the local session's (the rest is read and dropped so the daemon never stalls).

Failure handling:
- connecting retries every 500 ms for up to `connect_timeout` (the sidecar may still be
  starting, as upstream allows 30 s);
- when the calling task is cancelled (the user stopped the turn) the connection is
  abandoned, since an answer may be in flight on it, and the command's daemon session is
  killed (`kill_session`) over a connection of its own; the next command gets a fresh
  session;
- if the connection breaks or the daemon answers out of turn, the connection is dropped
  (the next command reconnects and respawns) and the call fails with a `ToolError` saying
  the output was lost, rather than returning something partial as if it were complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math

from oxydra.core.errors import ToolError, WireError
from oxydra.core.unixpath import unix_socket_path
from oxydra.tools._shell import OUTPUT_LIMIT, ShellOutput
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed
from oxydra.wire.shell import (
    MAX_SHELL_FRAME_BYTES,
    CommandAccepted,
    ExecCommand,
    KillSession,
    OutputChunk,
    SessionKilled,
    SessionSpawned,
    ShellError,
    ShellResponse,
    SpawnSession,
    StreamOutput,
    decode_shell_response,
    encode_shell_frame,
)

POLL_MS = 250
CONNECT_RETRY_SECS = 0.5


class _Link:
    """One connection to the daemon: send a request, read exactly one answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = LengthPrefixedDecoder(MAX_SHELL_FRAME_BYTES)
        self.pending: list[bytes] = []

    async def call(
        self, request: SpawnSession | ExecCommand | StreamOutput | KillSession
    ) -> ShellResponse:
        self.writer.write(
            encode_length_prefixed(encode_shell_frame(request), MAX_SHELL_FRAME_BYTES)
        )
        await self.writer.drain()
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the shell daemon closed the connection")
            self.pending += self.decoder.feed(data)
        answer = decode_shell_response(self.pending.pop(0))
        if answer.request_id not in (request.request_id, None):
            raise WireError(f"answer to {answer.request_id}, expected {request.request_id}")
        return answer

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class DaemonShellSession:
    """A `ShellSession` whose commands run in the shell daemon.

    Args:
        socket_path: the daemon's Unix socket.
        cwd: working directory inside the daemon's sandbox (None: the daemon's own).
        env: extra variables for the daemon session.
        connect_timeout: how long to keep retrying the first connection.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        connect_timeout: float = 30.0,
        output_limit: int = OUTPUT_LIMIT,
    ) -> None:
        self.socket_path = socket_path
        self.cwd = cwd
        self.env = env
        self.connect_timeout = connect_timeout
        self.output_limit = output_limit
        self._link: _Link | None = None
        self._session: str | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Future[None] | None = None

    def _rid(self, kind: str) -> str:
        return f"{kind}-{next(self._ids):06d}"

    async def run(self, command: str, *, timeout: float) -> ShellOutput:
        """See `ShellSession.run`."""
        async with self._lock:
            try:
                return await self._run(command, timeout)
            except asyncio.CancelledError:
                self._abandon()  # an answer may be in flight: never reuse this connection
                raise
            except (ConnectionError, OSError, WireError) as exc:
                await self._drop()
                raise ToolError(
                    f"shell daemon connection failed, command output lost: {exc}"
                ) from exc

    async def _run(self, command: str, timeout: float) -> ShellOutput:
        link, session = await self._ready()
        accepted = await link.call(
            ExecCommand(
                request_id=self._rid("exec"),
                session_id=session,
                command=command,
                timeout_secs=max(1, math.ceil(timeout)),
            )
        )
        if isinstance(accepted, ShellError) or not isinstance(accepted, CommandAccepted):
            raise ToolError(f"shell daemon refused the command: {_message(accepted)}")
        return await self._collect(link, session)

    async def _collect(self, link: _Link, session: str) -> ShellOutput:
        parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        size, truncated = 0, False
        while True:
            chunk = await link.call(
                StreamOutput(request_id=self._rid("stream"), session_id=session, wait_ms=POLL_MS)
            )
            if not isinstance(chunk, OutputChunk):
                raise WireError(f"expected output, got {_message(chunk)}")
            room = self.output_limit - size
            if len(chunk.data) > room:
                truncated = True
            kept = chunk.data[: max(room, 0)]
            parts[chunk.stream].append(kept)
            size += len(kept)
            if chunk.eof:
                return _output(
                    parts, chunk.exit_code, truncated=truncated, timed_out=chunk.timed_out
                )

    async def _ready(self) -> tuple[_Link, str]:
        if self._link is None:
            self._link = await self._connect()
        if self._session is None:
            answer = await self._link.call(
                SpawnSession(request_id=self._rid("spawn"), cwd=self.cwd, env=self.env)
            )
            if not isinstance(answer, SessionSpawned):
                raise ToolError(f"shell daemon could not open a session: {_message(answer)}")
            self._session = answer.session_id
        return self._link, self._session

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while True:
            try:
                with unix_socket_path(self.socket_path) as reachable:
                    reader, writer = await asyncio.open_unix_connection(reachable)
                return _Link(reader, writer)
            except OSError as exc:
                if loop.time() >= deadline:
                    raise ToolError(
                        f"shell daemon at {self.socket_path} unreachable: {exc}"
                    ) from exc
                await asyncio.sleep(CONNECT_RETRY_SECS)

    async def _kill(self, link: _Link, session: str) -> None:
        answer = await link.call(KillSession(request_id=self._rid("kill"), session_id=session))
        self._session = None
        if not isinstance(answer, SessionKilled):
            await self._drop()

    def _abandon(self) -> None:
        """Drop the connection without waiting, and kill its command from a new one."""
        if self._link is not None:
            self._link.writer.close()
        if self._session is not None:
            self._reaper = asyncio.ensure_future(self._kill_detached(self._session))
        self._link, self._session = None, None

    async def _kill_detached(self, session: str) -> None:
        with contextlib.suppress(ConnectionError, OSError, WireError, ToolError):
            link = await self._connect()
            try:
                await link.call(KillSession(request_id=self._rid("kill"), session_id=session))
            finally:
                await link.close()

    async def _drop(self) -> None:
        link, self._link, self._session = self._link, None, None
        if link is not None:
            await link.close()

    async def close(self) -> None:
        """Kill the daemon session (if any) and close the connection."""
        async with self._lock:
            if self._reaper is not None:
                await self._reaper
            if self._link is not None and self._session is not None:
                with contextlib.suppress(ConnectionError, OSError, WireError):
                    await self._kill(self._link, self._session)
            await self._drop()


def _message(frame: ShellResponse) -> str:
    return frame.message if isinstance(frame, ShellError) else type(frame).__name__


def _output(
    parts: dict[str, list[str]],
    exit_code: int | None,
    *,
    truncated: bool,
    timed_out: bool = False,
) -> ShellOutput:
    return ShellOutput(
        stdout="".join(parts["stdout"]),
        stderr="".join(parts["stderr"]),
        exit_code=exit_code,
        timed_out=timed_out,
        truncated=truncated,
    )
