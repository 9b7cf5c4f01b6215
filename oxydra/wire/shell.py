"""Shell-daemon RPC frames: `{"op": ..., "payload": {...}}` over length-prefixed framing.

The ops and fields are the Rust version's; ours add, as optional fields old peers ignore:
`exit_code` and `timed_out` on the last `stream_output` chunk (the Rust daemon never reported
the exit status), and `wait_ms` on `stream_output` so a client can wait for live output while
the command still runs instead of only after it ended.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from oxydra.wire._tagged import FrameError as FrameError
from oxydra.wire._tagged import TaggedCodec
from oxydra.wire._tagged import TaggedFrame as TaggedFrame

MAX_SHELL_FRAME_BYTES = 8 * 1024 * 1024


class SpawnSession(TaggedFrame):
    """Open a shell session (a working directory and an environment)."""

    TYPE: ClassVar[str] = "spawn_session"
    request_id: str
    shell: str | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None


class ExecCommand(TaggedFrame):
    """Start a command in a session; output is read with `stream_output`."""

    TYPE: ClassVar[str] = "exec_command"
    request_id: str
    session_id: str
    command: str
    timeout_secs: int | None = None


class StreamOutput(TaggedFrame):
    """Read the next chunk of output, waiting up to `wait_ms` for some to arrive."""

    TYPE: ClassVar[str] = "stream_output"
    request_id: str
    session_id: str
    max_bytes: int | None = None
    wait_ms: int | None = None


class KillSession(TaggedFrame):
    """Kill the session's running command (its whole process group) and close it."""

    TYPE: ClassVar[str] = "kill_session"
    request_id: str
    session_id: str


ShellRequest = SpawnSession | ExecCommand | StreamOutput | KillSession


class SessionSpawned(TaggedFrame):
    """Answer to `spawn_session`."""

    TYPE: ClassVar[str] = "spawn_session"
    request_id: str
    session_id: str


class CommandAccepted(TaggedFrame):
    """Answer to `exec_command`."""

    TYPE: ClassVar[str] = "exec_command"
    request_id: str
    accepted: bool


class OutputChunk(TaggedFrame):
    """A chunk of output; the last has `eof` and, with ours, the exit status."""

    TYPE: ClassVar[str] = "stream_output"
    request_id: str
    session_id: str
    stream: Literal["stdout", "stderr"]
    data: str
    eof: bool
    exit_code: int | None = None
    timed_out: bool = False


class SessionKilled(TaggedFrame):
    """Answer to `kill_session`."""

    TYPE: ClassVar[str] = "kill_session"
    request_id: str
    killed: bool


class ShellError(TaggedFrame):
    """A request failed."""

    TYPE: ClassVar[str] = "error"
    message: str
    request_id: str | None = None


ShellResponse = SessionSpawned | CommandAccepted | OutputChunk | SessionKilled | ShellError

_requests = TaggedCodec("op", (SpawnSession, ExecCommand, StreamOutput, KillSession), "request")
_responses = TaggedCodec(
    "op", (SessionSpawned, CommandAccepted, OutputChunk, SessionKilled, ShellError), "response"
)


def encode_shell_frame(frame: TaggedFrame) -> bytes:
    """JSON of a request or response (without the length prefix)."""
    return _requests.encode(frame)


def decode_shell_request(data: bytes) -> ShellRequest:
    """Parse a request (daemon side). Raises FrameError."""
    frame: ShellRequest = _requests.decode(data)
    return frame


def decode_shell_response(data: bytes) -> ShellResponse:
    """Parse a response (client side). Raises FrameError."""
    frame: ShellResponse = _responses.decode(data)
    return frame
