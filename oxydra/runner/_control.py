"""The runner control socket: `<ws>/ipc/runner-control.sock`, framed as in the Rust runner.

Server rules:
1. connections are served one at a time (a lock), as upstream does: a request never
   races a shutdown;
2. a frame that is not a valid request gets an `error` (`invalid_request`) and the
   connection stays usable; a header announcing more than 128 KiB gets an `error` and the
   connection is closed (the stream cannot be resynchronised);
3. EOF between frames is a clean close; EOF inside a frame closes without an answer;
4. the socket file is mode 0600 and is removed when the server stops;
5. a peer the `refuse_peer` check names (the guest and every process it started, found by
   `SO_PEERCRED` and the parent chain) gets an `error` (`forbidden`) and is closed: in the
   process tier they share the operator's uid, and Landlock does not mediate connecting to
   a named socket, so file permissions alone cannot keep a shell command from asking for
   `shutdown_user`.

The client is blocking (the CLI is a one-shot program).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from oxydra.core.errors import RunnerError, RunnerNotRunningError, WireError
from oxydra.core.unixpath import unix_socket_path
from oxydra.wire.control import (
    MAX_CONTROL_FRAME_BYTES,
    ControlError,
    ControlRequest,
    ControlResponse,
    FrameError,
    decode_control_request,
    decode_control_response,
    encode_control_request,
    encode_control_response,
)
from oxydra.wire.framing import FrameTooLargeError, LengthPrefixedDecoder, encode_length_prefixed

# Placeholder hint of "not running" errors; the command line replaces it with the exact
# start command for the user's setup (`runner.cli.start_hint`).
NOT_STARTED_HINT = "start it with `oxydra runner start`"

Handler = Callable[[ControlRequest], Awaitable[ControlResponse]]
_PEERCRED = struct.Struct("3i")
FORBIDDEN = "the guest and the processes it starts may not use the runner control socket"
MAX_ANCESTRY = 4096


def peer_pid(writer: asyncio.StreamWriter) -> int | None:
    """The connecting process's pid (`SO_PEERCRED`), if the kernel says."""
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except (OSError, AttributeError):
        return None
    pid = int(_PEERCRED.unpack(raw)[0])
    return pid or None


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or below it, following `/proc/<pid>/stat` parents."""
    for _ in range(MAX_ANCESTRY):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


class ControlServer:
    """Serves `handler` on a Unix socket until `close`.

    Args:
        refuse_peer: given the peer's pid, whether to refuse it (rule 5); a peer whose pid
            cannot be read is refused too when a check is given.
    """

    def __init__(
        self, path: Path, handler: Handler, refuse_peer: Callable[[int], bool] | None = None
    ) -> None:
        self.path = path
        self.handler = handler
        self.refuse_peer = refuse_peer
        self._lock = asyncio.Lock()
        self._server: asyncio.AbstractServer | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        """Bind (a stale socket file is replaced)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with unix_socket_path(str(self.path)) as reachable:
            try:
                self._server = await asyncio.start_unix_server(self._serve, path=reachable)
            except OSError as exc:
                raise RunnerError(f"cannot listen on {self.path}: {exc.strerror}") from exc
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        """Stop listening, end open connections, and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task, writer in list(self._clients.items()):
            writer.close()  # the handler's next read sees EOF and it returns
            if task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._server is None:  # accepted just before `close`: do not serve it
            writer.close()
            return
        self._clients[task] = writer
        try:
            if self._refused(writer):
                await _send(writer, ControlError(code="forbidden", message=FORBIDDEN))
                return
            async with self._lock:
                await self._answer_all(reader, writer)
        except (ConnectionError, WireError):
            pass
        finally:
            del self._clients[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _refused(self, writer: asyncio.StreamWriter) -> bool:
        if self.refuse_peer is None:
            return False
        pid = peer_pid(writer)
        return pid is None or self.refuse_peer(pid)

    async def _answer_all(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = LengthPrefixedDecoder(MAX_CONTROL_FRAME_BYTES)
        while data := await reader.read(65536):
            try:
                frames = decoder.feed(data)
            except FrameTooLargeError as exc:
                await _send(writer, ControlError(code="invalid_request", message=str(exc)))
                return
            for raw in frames:
                await _send(writer, await self._respond(raw))

    async def _respond(self, raw: bytes) -> ControlResponse:
        try:
            request = decode_control_request(raw)
        except FrameError as exc:
            return ControlError(code="invalid_request", message=str(exc))
        try:
            return await self.handler(request)
        except Exception as exc:  # the daemon must keep serving whatever one request did
            return ControlError(code="internal", message=f"{type(exc).__name__}: {exc}")


async def _send(writer: asyncio.StreamWriter, response: ControlResponse) -> None:
    payload = encode_control_response(response)
    if len(payload) > MAX_CONTROL_FRAME_BYTES:
        payload = encode_control_response(
            ControlError(code="internal", message="response exceeds the frame limit")
        )
    writer.write(encode_length_prefixed(payload, MAX_CONTROL_FRAME_BYTES))
    await writer.drain()


def control_request(path: Path, request: ControlRequest, timeout: float = 30.0) -> ControlResponse:
    """Send one request and return the answer.

    Raises:
        RunnerNotRunningError: no daemon listens there.
        RunnerError: the daemon broke protocol or the socket failed.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            with unix_socket_path(str(path)) as reachable:
                sock.connect(reachable)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise RunnerNotRunningError(
                f"server not running (no runner daemon on {path})",
                hint=NOT_STARTED_HINT,
            ) from exc
        sock.sendall(
            encode_length_prefixed(encode_control_request(request), MAX_CONTROL_FRAME_BYTES)
        )
        return decode_control_response(_read_frame(sock))
    except (OSError, WireError) as exc:
        raise RunnerError(f"runner control socket {path}: {exc}") from exc
    finally:
        sock.close()


def _read_frame(sock: socket.socket) -> bytes:
    decoder = LengthPrefixedDecoder(MAX_CONTROL_FRAME_BYTES)
    while True:
        data = sock.recv(65536)
        if not data:
            raise WireError("the runner daemon closed the connection without answering")
        frames = decoder.feed(data)
        if frames:
            return frames[0]


def daemon_alive(path: Path) -> bool:
    """Does a daemon answer on this control socket?"""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_socket_path(str(path)) as reachable:
            sock.connect(reachable)
        return True
    except OSError:
        return False
    finally:
        sock.close()
