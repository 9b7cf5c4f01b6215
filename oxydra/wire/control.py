"""Runner control socket frames: `{"op": ..., "payload": {...}}`, length-prefixed, 128 KiB max.

The ops and fields are the Rust runner's (`<ws>/ipc/runner-control.sock`): `health_check`,
`shutdown_user` and `logs` in; `health_status`, `shutdown_status`, `logs` and `error` out.
Ours adds, as optional fields, `hardening` and `degraded_reasons` on `health_status` so
`runner status` can say what confinement a process-tier guest runs under.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from oxydra.wire._tagged import FrameError as FrameError
from oxydra.wire._tagged import TaggedCodec, TaggedFrame

MAX_CONTROL_FRAME_BYTES = 128 * 1024
MAX_LOG_PAYLOAD_BYTES = 120 * 1024
MAX_LOG_TAIL = 1000

LogRole = Literal["runtime", "sidecar", "all"]
LogStream = Literal["stdout", "stderr", "both"]
ErrorCode = Literal["invalid_request", "unknown_user", "forbidden", "internal"]


class HealthCheckRequest(TaggedFrame):
    """Is the user's guest up, and with what capabilities?"""

    TYPE: ClassVar[str] = "health_check"


class ShutdownUser(TaggedFrame):
    """Stop the user's guest; the daemon exits after answering."""

    TYPE: ClassVar[str] = "shutdown_user"
    user_id: str


class LogsRequest(TaggedFrame):
    """The last lines of the guest's log files."""

    TYPE: ClassVar[str] = "logs"
    role: LogRole = "runtime"
    stream: LogStream = "both"
    tail: int | None = None
    since: str | None = None
    format: Literal["text", "json"] = "text"


ControlRequest = HealthCheckRequest | ShutdownUser | LogsRequest


class ControlHealth(TaggedFrame):
    """Answer to `health_check`."""

    TYPE: ClassVar[str] = "health_status"
    user_id: str
    healthy: bool
    sandbox_tier: str
    shell_available: bool
    browser_available: bool
    shutdown: bool
    startup_status: dict[str, Any] | None = None
    message: str | None = None
    log_dir: str | None = None
    runtime_pid: int | None = None
    runtime_container_name: str | None = None
    sidecar_available: bool = False
    hardening: list[str] = []
    degraded_reasons: list[str] = []


class ShutdownStatus(TaggedFrame):
    """Answer to `shutdown_user`."""

    TYPE: ClassVar[str] = "shutdown_status"
    user_id: str
    shutdown: bool
    already_stopped: bool = False
    message: str | None = None


class LogEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One log line and where it came from."""

    source: Literal["process_file", "docker_api"]
    role: Literal["runtime", "sidecar"]
    stream: Literal["stdout", "stderr"]
    message: str
    timestamp: str | None = None


class LogsResponse(TaggedFrame):
    """Answer to `logs`."""

    TYPE: ClassVar[str] = "logs"
    entries: list[LogEntry]
    truncated: bool = False
    warnings: list[str] = []


class ControlError(TaggedFrame):
    """A request failed."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str


ControlResponse = ControlHealth | ShutdownStatus | LogsResponse | ControlError

_requests = TaggedCodec("op", (HealthCheckRequest, ShutdownUser, LogsRequest), "request")
_responses = TaggedCodec(
    "op", (ControlHealth, ShutdownStatus, LogsResponse, ControlError), "response"
)


def encode_control_request(frame: ControlRequest) -> bytes:
    """JSON of a request (without the length prefix)."""
    return _requests.encode(frame)


def encode_control_response(frame: ControlResponse) -> bytes:
    """JSON of a response (without the length prefix)."""
    return _responses.encode(frame)


def decode_control_request(data: bytes) -> ControlRequest:
    """Parse a request (daemon side). Raises FrameError."""
    frame: ControlRequest = _requests.decode(data)
    return frame


def decode_control_response(data: bytes) -> ControlResponse:
    """Parse a response (client side). Raises FrameError."""
    frame: ControlResponse = _responses.decode(data)
    return frame
