"""`oxydra shell-daemon`: runs shell commands for the `shell_exec` tool, over a Unix socket.

Protocol: `wire/shell.py` frames in 4-byte length-prefixed JSON, one response per request.
What we add to the Rust daemon: output streams live while the command runs (a
`stream_output` with `wait_ms` waits for the next bytes), the last chunk reports the exit
status (or `timed_out`), chunks are bounded, a command is killed with its whole process
group on timeout or `kill_session`, and a command's output is capped (with a marker) so a
runaway program cannot exhaust memory.

Every command runs through the sandbox of `security/confine.py`, as `shell_exec` does in
`ask` and `vm`: Landlock to the `--writable` directories (by default the working directory
and the temporary directory: `/shared` and `/tmp` in the sidecar), no capabilities,
`no_new_privs`, and every process it starts killed when it ends, times out or is killed.
Without Landlock commands are refused with the reason, unless `--allow-unconfined` (the
container launcher passes it: there the sidecar's mounts confine its files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from oxydra.core.errors import WireError
from oxydra.security.confine import ShellSandbox, shell_sandbox
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed
from oxydra.wire.shell import (
    MAX_SHELL_FRAME_BYTES,
    CommandAccepted,
    ExecCommand,
    FrameError,
    KillSession,
    OutputChunk,
    SessionKilled,
    SessionSpawned,
    ShellError,
    ShellRequest,
    SpawnSession,
    StreamOutput,
    TaggedFrame,
    decode_shell_request,
    encode_shell_frame,
)

if TYPE_CHECKING:
    from oxydra.security._confine_client import ConfinedProcess

CHUNK_BYTES = 8 * 1024
OUTPUT_CAP_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECS = 60
MAX_WAIT_MS = 30_000
KILL_GRACE_SECS = 2.0


@dataclass
class _Run:
    """One command's process and its buffered output."""

    process: ConfinedProcess
    chunks: deque[tuple[Literal["stdout", "stderr"], bytes]] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    captured: int = 0
    truncated: bool = False
    exit_code: int | None = None
    timed_out: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class _Session:
    shell: str
    cwd: str | None
    env: dict[str, str]
    run: _Run | None = None


class ShellDaemon:
    """Sessions and their commands; `handle` answers one request."""

    def __init__(
        self,
        sandbox: ShellSandbox | None,
        refusal: str = "",
        base_env: dict[str, str] | None = None,
    ) -> None:
        self.sandbox, self.refusal = sandbox, refusal
        self.base_env = base_env if base_env is not None else _minimal_env()
        self.sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)

    async def handle(self, request: ShellRequest) -> TaggedFrame:
        """Answer one request."""
        match request:
            case SpawnSession():
                return self._spawn(request)
            case ExecCommand():
                return await self._exec(request)
            case StreamOutput():
                return await self._stream(request)
            case KillSession():
                return await self._kill(request)

    def _spawn(self, request: SpawnSession) -> TaggedFrame:
        if request.cwd is not None and not os.path.isdir(request.cwd):
            return ShellError(
                request_id=request.request_id, message=f"cwd {request.cwd!r} is not a directory"
            )
        session_id = f"session-{next(self._ids):06d}"
        env = {**self.base_env, **(request.env or {})}
        self.sessions[session_id] = _Session(request.shell or "/bin/sh", request.cwd, env)
        return SessionSpawned(request_id=request.request_id, session_id=session_id)

    async def _exec(self, request: ExecCommand) -> TaggedFrame:
        session = self.sessions.get(request.session_id)
        if session is None:
            return ShellError(
                request_id=request.request_id, message=f"unknown session {request.session_id}"
            )
        if session.run is not None and not session.run.done.is_set():
            return ShellError(
                request_id=request.request_id, message="a command is still running in this session"
            )
        if self.sandbox is None:
            return ShellError(request_id=request.request_id, message=f"shell {self.refusal}")
        cwd = session.cwd or os.getcwd()
        process = await self.sandbox.start(
            shell=session.shell,
            command=request.command,
            cwd=cwd,
            env=session.env,
            grace=KILL_GRACE_SECS,
        )
        run = _Run(process)
        timeout = request.timeout_secs or DEFAULT_TIMEOUT_SECS
        run.tasks = [
            asyncio.create_task(_pump(run, "stdout", process.stdout)),
            asyncio.create_task(_pump(run, "stderr", process.stderr)),
        ]
        run.tasks.append(asyncio.create_task(_supervise(run, timeout)))
        session.run = run
        return CommandAccepted(request_id=request.request_id, accepted=True)

    async def _stream(self, request: StreamOutput) -> TaggedFrame:
        session = self.sessions.get(request.session_id)
        if session is None or session.run is None:
            return ShellError(
                request_id=request.request_id, message=f"no command in session {request.session_id}"
            )
        run = session.run
        limit = min(request.max_bytes or CHUNK_BYTES, CHUNK_BYTES)
        wait = min(request.wait_ms if request.wait_ms is not None else MAX_WAIT_MS, MAX_WAIT_MS)
        if not run.chunks and not run.done.is_set():
            run.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.changed.wait(), wait / 1000)
        if run.chunks:
            stream, data = run.chunks.popleft()
            if len(data) > limit:
                run.chunks.appendleft((stream, data[limit:]))
                data = data[:limit]
            return OutputChunk(
                request_id=request.request_id,
                session_id=request.session_id,
                stream=stream,
                data=data.decode("utf-8", "replace"),
                eof=False,
            )
        if run.done.is_set():
            return OutputChunk(
                request_id=request.request_id,
                session_id=request.session_id,
                stream="stdout",
                data="",
                eof=True,
                exit_code=run.exit_code,
                timed_out=run.timed_out,
            )
        return OutputChunk(
            request_id=request.request_id,
            session_id=request.session_id,
            stream="stdout",
            data="",
            eof=False,
        )

    async def _kill(self, request: KillSession) -> TaggedFrame:
        session = self.sessions.pop(request.session_id, None)
        if session is None:
            return SessionKilled(request_id=request.request_id, killed=False)
        if session.run is not None and not session.run.done.is_set():
            await _stop(session.run.process)
            await session.run.done.wait()
        return SessionKilled(request_id=request.request_id, killed=True)

    async def close(self) -> None:
        """Kill every running command."""
        for session in self.sessions.values():
            if session.run is not None and not session.run.done.is_set():
                await _stop(session.run.process)
                await session.run.done.wait()
        self.sessions.clear()


async def _pump(
    run: _Run, stream: Literal["stdout", "stderr"], reader: asyncio.StreamReader
) -> None:
    while True:
        data = await reader.read(CHUNK_BYTES)
        if not data:
            return
        room = OUTPUT_CAP_BYTES - run.captured
        if room <= 0:
            if not run.truncated:
                run.truncated = True
                marker = f"\n[output truncated at {OUTPUT_CAP_BYTES} bytes]\n".encode()
                run.chunks.append((stream, marker))
                run.changed.set()
            continue
        run.captured += min(room, len(data))
        run.chunks.append((stream, data[:room]))
        run.changed.set()


async def _supervise(run: _Run, timeout: float) -> None:
    try:
        await asyncio.wait_for(run.process.wait(), timeout)
    except TimeoutError:
        run.timed_out = True
        await _stop(run.process)
    await asyncio.gather(*run.tasks[:2], return_exceptions=True)
    run.process.close()
    run.exit_code = run.process.returncode
    run.done.set()
    run.changed.set()


async def _stop(process: ConfinedProcess) -> None:
    """Ask the command's intermediate to stop (it kills the whole tree); force it if stuck."""
    process.terminate()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECS + 3)
    process.kill()
    await process.wait()


def _minimal_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TERM", "USER")
    return {k: os.environ[k] for k in keep if k in os.environ}


async def serve_connection(
    daemon: ShellDaemon, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer requests on one connection until it closes; a bad frame gets an error."""
    decoder = LengthPrefixedDecoder(MAX_SHELL_FRAME_BYTES)
    try:
        while data := await reader.read(65536):
            for raw in decoder.feed(data):
                response = await _answer(daemon, raw)
                writer.write(
                    encode_length_prefixed(encode_shell_frame(response), MAX_SHELL_FRAME_BYTES)
                )
                await writer.drain()
    except (WireError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _answer(daemon: ShellDaemon, raw: bytes) -> TaggedFrame:
    try:
        request = decode_shell_request(raw)
    except FrameError as exc:
        return ShellError(request_id=exc.request_id, message=str(exc))
    try:
        return await daemon.handle(request)
    except OSError as exc:
        return ShellError(request_id=request.request_id, message=f"cannot run: {exc}")


async def serve(
    socket_path: str,
    stop: asyncio.Event | None = None,
    *,
    writable: list[str] | None = None,
    allow_unconfined: bool = False,
) -> None:
    """Listen on a Unix socket (a stale file is removed) until `stop` is set."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    dirs = writable or [os.getcwd(), tempfile.gettempdir()]
    sandbox, why = shell_sandbox(dirs, allow_unconfined=allow_unconfined)
    daemon = ShellDaemon(sandbox, why)
    server = await asyncio.start_unix_server(
        lambda r, w: serve_connection(daemon, r, w), path=socket_path
    )
    os.chmod(socket_path, 0o600)
    print(f"shell-daemon listening on {socket_path}; shell {why}", file=sys.stderr, flush=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    await daemon.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)


def run_shell_daemon(args: argparse.Namespace) -> int:
    """Entry of the `shell-daemon` mode."""
    asyncio.run(serve(args.socket, writable=args.writable, allow_unconfined=args.allow_unconfined))
    return 0
