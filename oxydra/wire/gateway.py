"""Gateway protocol v2: typed frames as `{"type": ..., "payload": {...}}` JSON (sans-I/O).

The frames and fields are the Rust Oxydra's (GATEWAY_PROTOCOL_VERSION = 2), so a client of
one works with the other. What we add is optional and ignorable by old peers:

* `seq` on session-scoped server frames: a per-session sequence number;
* `last_seq` in `hello`: the last number the client saw, so the server replays exactly the
  frames it missed;
* `epoch` in `hello_ack` / `session_switched` / `session_created` (and echoed in `hello`):
  which numbering `seq` belongs to; a new epoch (a restarted `vm`) starts again at 1;
* `approval_request` / `approval_response`: the tool registry's approval hook asks the user;
  a taint gate adds `reason` and the untrusted `taint_sources` in play (docs/taint.md);
* `taint` in `health_status`: the untrusted sources in the session's context (`/status`);
* `code` on `error`: a stable machine-readable reason (`turn_limit`, `bad_frame`, ...);
* `traceparent` on `send_turn`: the caller's W3C trace context, so the turn's spans join the
  caller's trace across the process boundary (a syntactically bad value is ignored);
* `usage`: after each turn, what the turn and the session so far cost (tokens, USD or
  unknown);
* `turn_queued`: a turn sent while its session (or its person's share of the `vm`) is busy
  waits in the session's lane, with its position, instead of being refused;
* session lifecycle (docs/sessions.md): `rename_session`, `archive_session`,
  `unarchive_session`, `delete_session`, `export_session` answered by `session_updated`,
  `session_deleted`, `session_export`; `session_list` rows add `parent_session_id`, `turns`
  and `cost_usd`, sub-agent sessions right after their parent.

Payloads ignore unknown fields (a newer peer may send more); the envelope does not. Fields
the Rust peer requires have no default, so `omit_defaults` never drops them.
Decoding never raises anything but `WireError`, whose text says what was wrong.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from oxydra.core.messages import Response
from oxydra.core.stream import Progress
from oxydra.wire._tagged import FrameError as FrameError
from oxydra.wire._tagged import TaggedCodec
from oxydra.wire._tagged import TaggedFrame as TaggedFrame

PROTOCOL_VERSION = 2

TurnState = Literal["running", "completed", "cancelled", "failed"]


class GatewaySession(msgspec.Struct, frozen=True, kw_only=True):
    """Which user's which session a frame belongs to."""

    user_id: str
    session_id: str


class TurnStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A turn's id and state."""

    turn_id: str
    state: TurnState


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """Inline media sent with a turn (base64 in JSON)."""

    mime_type: str
    data: bytes


# ---- client -> server ---------------------------------------------------------------


class Hello(TaggedFrame):
    """First frame of every connection."""

    TYPE: ClassVar[str] = "hello"
    request_id: str
    protocol_version: int
    user_id: str
    session_id: str | None = None
    create_new_session: bool = False
    last_seq: int | None = None
    epoch: str | None = None


class SendTurn(TaggedFrame):
    """Start a turn in the connection's session."""

    TYPE: ClassVar[str] = "send_turn"
    request_id: str
    session_id: str
    turn_id: str
    prompt: str
    attachments: list[Attachment] = []
    traceparent: str | None = None


class CancelActiveTurn(TaggedFrame):
    """Cancel the session's running turn."""

    TYPE: ClassVar[str] = "cancel_active_turn"
    request_id: str
    session_id: str
    turn_id: str = ""


class CancelAllActiveTurns(TaggedFrame):
    """Cancel every running turn of the user."""

    TYPE: ClassVar[str] = "cancel_all_active_turns"
    request_id: str


class HealthCheck(TaggedFrame):
    """Is the gateway alive?"""

    TYPE: ClassVar[str] = "health_check"
    request_id: str


class CreateSession(TaggedFrame):
    """Create a session and switch the connection to it."""

    TYPE: ClassVar[str] = "create_session"
    request_id: str
    display_name: str | None = None
    agent_name: str | None = None


class ListSessions(TaggedFrame):
    """List the user's sessions."""

    TYPE: ClassVar[str] = "list_sessions"
    request_id: str
    include_archived: bool = False
    include_subagent_sessions: bool = False


class SwitchSession(TaggedFrame):
    """Point the connection at another session (exact id or unique prefix)."""

    TYPE: ClassVar[str] = "switch_session"
    request_id: str
    session_id: str


class RenameSession(TaggedFrame):
    """Give a session (exact id or unique prefix) a display name; empty removes it."""

    TYPE: ClassVar[str] = "rename_session"
    request_id: str
    session_id: str
    display_name: str | None = None


class ArchiveSession(TaggedFrame):
    """Hide a session from the default listing (its data stays, recall still reads it)."""

    TYPE: ClassVar[str] = "archive_session"
    request_id: str
    session_id: str


class UnarchiveSession(TaggedFrame):
    """Show an archived session in the default listing again."""

    TYPE: ClassVar[str] = "unarchive_session"
    request_id: str
    session_id: str


class DeleteSession(TaggedFrame):
    """Delete one of the user's sessions for good (a running turn is cancelled first)."""

    TYPE: ClassVar[str] = "delete_session"
    request_id: str
    session_id: str


class ExportSession(TaggedFrame):
    """A session's transcript, read-only (archived sessions too)."""

    TYPE: ClassVar[str] = "export_session"
    request_id: str
    session_id: str
    format: Literal["markdown", "jsonl"] = "markdown"


class ApprovalResponse(TaggedFrame):
    """The user's answer to an `approval_request` (our addition)."""

    TYPE: ClassVar[str] = "approval_response"
    request_id: str
    approval_id: str
    approved: bool
    reason: str | None = None


ClientFrame = (
    Hello
    | SendTurn
    | CancelActiveTurn
    | CancelAllActiveTurns
    | HealthCheck
    | CreateSession
    | ListSessions
    | SwitchSession
    | ApprovalResponse
    | RenameSession
    | ArchiveSession
    | UnarchiveSession
    | DeleteSession
    | ExportSession
)

# ---- server -> client ---------------------------------------------------------------


class HelloAck(TaggedFrame):
    """The handshake succeeded; names the session the connection is bound to."""

    TYPE: ClassVar[str] = "hello_ack"
    request_id: str
    protocol_version: int
    session: GatewaySession
    active_turn: TurnStatus | None = None
    seq: int | None = None
    epoch: str | None = None


class TurnStarted(TaggedFrame):
    """A turn acquired its slot and is running."""

    TYPE: ClassVar[str] = "turn_started"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    seq: int | None = None


class TurnQueued(TaggedFrame):
    """A turn waits in its session's lane (our addition): `position` 1 is next.

    It starts with `turn_started` when its slot comes, or ends with `turn_cancelled`
    without starting when it is cancelled while waiting.
    """

    TYPE: ClassVar[str] = "turn_queued"
    request_id: str
    session: GatewaySession
    turn_id: str
    position: int
    seq: int | None = None


class AssistantDelta(TaggedFrame):
    """A piece of the answer's text."""

    TYPE: ClassVar[str] = "assistant_delta"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    delta: str
    seq: int | None = None


class TurnProgress(TaggedFrame):
    """What the runtime is doing (nested `kind`, as the Rust version sends it)."""

    TYPE: ClassVar[str] = "turn_progress"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    progress: Progress
    seq: int | None = None


class TurnCompleted(TaggedFrame):
    """The turn ended with a final answer."""

    TYPE: ClassVar[str] = "turn_completed"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    response: Response
    seq: int | None = None


class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens and money of a turn or a session; `cost_usd` None means unknown (no price)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class Usage(TaggedFrame):
    """What the turn that is ending cost, and the session so far (just before its end frame)."""

    TYPE: ClassVar[str] = "usage"
    request_id: str
    session: GatewaySession
    turn_id: str
    turn: UsageTotals
    total: UsageTotals
    seq: int | None = None


class TurnCancelled(TaggedFrame):
    """The turn was cancelled."""

    TYPE: ClassVar[str] = "turn_cancelled"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    seq: int | None = None


class ErrorFrame(TaggedFrame):
    """Something failed; the connection stays up."""

    TYPE: ClassVar[str] = "error"
    message: str
    request_id: str | None = None
    session: GatewaySession | None = None
    turn: TurnStatus | None = None
    code: str | None = None
    seq: int | None = None


class ChannelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One external channel's health in `health_status` (ours): Telegram polling, outbox."""

    healthy: bool
    detail: str = ""


class HealthStatus(TaggedFrame):
    """Answer to `health_check`."""

    TYPE: ClassVar[str] = "health_status"
    request_id: str
    healthy: bool
    session: GatewaySession | None = None
    active_turn: TurnStatus | None = None
    startup_status: dict[str, Any] | None = None
    message: str | None = None
    taint: list[str] | None = None
    channels: dict[str, ChannelStatus] | None = None


class ScheduledNotification(TaggedFrame):
    """A scheduled run wants the user told something."""

    TYPE: ClassVar[str] = "scheduled_notification"
    schedule_id: str
    message: str
    schedule_name: str | None = None
    seq: int | None = None


class SessionCreated(TaggedFrame):
    """A session was created and the connection switched to it."""

    TYPE: ClassVar[str] = "session_created"
    request_id: str
    session: GatewaySession
    agent_name: str
    display_name: str | None = None
    epoch: str | None = None


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One row of `session_list`."""

    session_id: str
    agent_name: str
    channel_origin: str
    created_at: str
    last_active_at: str
    archived: bool
    display_name: str | None = None
    parent_session_id: str | None = None
    turns: int | None = None
    cost_usd: float | None = None


class SessionList(TaggedFrame):
    """Answer to `list_sessions`, most recently active first."""

    TYPE: ClassVar[str] = "session_list"
    request_id: str
    sessions: list[SessionSummary]


class SessionSwitched(TaggedFrame):
    """The connection now follows another session."""

    TYPE: ClassVar[str] = "session_switched"
    request_id: str
    session: GatewaySession
    active_turn: TurnStatus | None = None
    seq: int | None = None
    epoch: str | None = None


class SessionUpdated(TaggedFrame):
    """A session was renamed, archived or unarchived (our addition)."""

    TYPE: ClassVar[str] = "session_updated"
    request_id: str
    action: Literal["renamed", "archived", "unarchived"]
    session: SessionSummary


class SessionDeleted(TaggedFrame):
    """A session and its sub-agent sessions were deleted; sent to everyone following it."""

    TYPE: ClassVar[str] = "session_deleted"
    request_id: str
    session_id: str
    deleted: list[str]
    seq: int | None = None


class SessionExport(TaggedFrame):
    """A session's transcript (answer to `export_session`)."""

    TYPE: ClassVar[str] = "session_export"
    request_id: str
    session_id: str
    format: Literal["markdown", "jsonl"]
    content: str


class MediaFile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A file delivered to the user."""

    file_path: str
    media_type: Literal["photo", "audio", "document", "voice", "video"]
    data: bytes
    caption: str | None = None
    file_name: str | None = None


class MediaAttachment(TaggedFrame):
    """A tool sent the user a file."""

    TYPE: ClassVar[str] = "media_attachment"
    request_id: str
    session: GatewaySession
    attachment: MediaFile
    seq: int | None = None


class ApprovalRequest(TaggedFrame):
    """A tool call waits for the user's yes or no (our addition)."""

    TYPE: ClassVar[str] = "approval_request"
    request_id: str
    session: GatewaySession
    turn: TurnStatus
    approval_id: str
    tool_name: str
    arguments: dict[str, Any]
    safety_tier: str
    expires_in_secs: int
    seq: int | None = None
    reason: str | None = None
    taint_sources: list[str] | None = None


ServerFrame = (
    HelloAck
    | TurnStarted
    | AssistantDelta
    | TurnProgress
    | TurnCompleted
    | TurnCancelled
    | ErrorFrame
    | HealthStatus
    | ScheduledNotification
    | SessionCreated
    | SessionList
    | SessionSwitched
    | MediaAttachment
    | ApprovalRequest
    | Usage
    | SessionUpdated
    | SessionDeleted
    | SessionExport
    | TurnQueued
)

CLIENT_TYPES: dict[str, type[TaggedFrame]] = {
    c.TYPE: c
    for c in (
        Hello,
        SendTurn,
        CancelActiveTurn,
        CancelAllActiveTurns,
        HealthCheck,
        CreateSession,
        ListSessions,
        SwitchSession,
        ApprovalResponse,
        RenameSession,
        ArchiveSession,
        UnarchiveSession,
        DeleteSession,
        ExportSession,
    )
}
SERVER_TYPES: dict[str, type[TaggedFrame]] = {
    c.TYPE: c
    for c in (
        HelloAck,
        TurnStarted,
        AssistantDelta,
        TurnProgress,
        TurnCompleted,
        TurnCancelled,
        ErrorFrame,
        HealthStatus,
        ScheduledNotification,
        SessionCreated,
        SessionList,
        SessionSwitched,
        MediaAttachment,
        ApprovalRequest,
        Usage,
        SessionUpdated,
        SessionDeleted,
        SessionExport,
        TurnQueued,
    )
}


_client_codec = TaggedCodec("type", tuple(CLIENT_TYPES.values()), "client")
_server_codec = TaggedCodec("type", tuple(SERVER_TYPES.values()), "server")


def encode_frame(frame: TaggedFrame) -> bytes:
    """The JSON text of a frame, envelope included."""
    return _client_codec.encode(frame)


def decode_client_frame(data: str | bytes) -> ClientFrame:
    """Parse a frame a client sent.

    Raises:
        FrameError: naming what was wrong (bad JSON, unknown type, bad field).
    """
    frame: ClientFrame = _client_codec.decode(data)
    return frame


def decode_server_frame(data: str | bytes) -> ServerFrame:
    """Parse a frame a server sent (for clients: the TUI, channel adapters, tests)."""
    frame: ServerFrame = _server_codec.decode(data)
    return frame
