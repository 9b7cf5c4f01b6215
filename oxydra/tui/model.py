"""The TUI's state and how keys and frames change it: pure, so it is tested without a tty.

`handle_key` returns the `Action` the app must perform (send a frame, quit...);
`apply_frame` folds a server frame into the view.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Literal

from oxydra.core.stream import ToolExecution
from oxydra.tui.client import ConnectionState
from oxydra.wire.gateway import (
    ApprovalRequest,
    AssistantDelta,
    ErrorFrame,
    HealthStatus,
    HelloAck,
    ScheduledNotification,
    ServerFrame,
    SessionCreated,
    SessionDeleted,
    SessionExport,
    SessionList,
    SessionSummary,
    SessionSwitched,
    SessionUpdated,
    TurnCancelled,
    TurnCompleted,
    TurnProgress,
    TurnQueued,
    TurnStarted,
    Usage,
    UsageTotals,
)

Role = Literal["user", "assistant", "system", "error"]
COMMANDS = frozenset(
    "new sessions switch cancel cancelall status rename archive unarchive export delete".split()
)
MAX_INPUT_ROWS = 10
MAX_HISTORY = 2000
QUIT_WINDOW_SECS = 2.0
SKILL_APPROVAL = "skill_approve"  # the approval a skill draft asks (tools.skills.APPROVAL)
SKILL_BODY_SHOWN = 4000
HELP = """\
commands (answered here, not sent to the model):
  /new [name]     start a new session
  /sessions [all] list your sessions (all: archived and sub-agents too)
  /switch <id>    continue another session (id or unique prefix)
  /rename [name]  name this session (no name: remove it)
  /archive [id]   hide a session from /sessions (/sessions all shows it)
  /unarchive <id> show it again
  /export [id]    show a session's transcript, read-only (archived ones too)
  /recall <query> bring what older sessions said about it into this one
  /delete <id>    delete a session and its data for good
  /cancel         stop the running turn (also Ctrl+C)
  /cancelall      stop every running turn of yours
  /status         connection and session health
  /help           this list
  /quit           leave (also Ctrl+D, or Ctrl+C twice)
keys: Enter sends, Alt+Enter adds a line, PgUp/PgDn scroll, y/n answer an approval"""
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class Entry:
    """One message in the pane."""

    role: Role
    text: str


@dataclass
class Action:
    """Something the app must do after a key."""

    kind: Literal["none", "send", "command", "cancel", "quit", "approve"]
    text: str = ""
    argument: str = ""
    approved: bool = False


@dataclass
class TuiState:
    """Everything the screen shows."""

    user_id: str
    entries: list[Entry] = field(default_factory=list)
    streaming: str | None = None
    input_lines: list[str] = field(default_factory=lambda: [""])
    scroll: int = 0
    connection: str = "connecting"
    session_id: str = ""
    activity: str = ""
    active_turn: str | None = None
    approval: ApprovalRequest | None = None
    cost: UsageTotals | None = None
    """What the session has cost so far (the last `usage` frame); None before any turn."""
    last_ctrl_c: float = 0.0

    def add(self, role: Role, text: str) -> None:
        """Append an entry, dropping the oldest past the cap."""
        self.entries.append(Entry(role, text))
        del self.entries[:-MAX_HISTORY]

    @property
    def input_text(self) -> str:
        """The input bar's text."""
        return "\n".join(self.input_lines)


def short_session_id(session_id: str) -> str:
    """A session id short enough for the status bar that still tells sessions apart.

    A UUIDv7 begins with its creation time, so sessions made close together share the
    start: its random end is shown. Readable ids (`runtime-<user>`) are shown whole, or
    cut in the middle when long.
    """
    if not session_id:
        return "-"
    if _UUID.fullmatch(session_id):
        return "…" + session_id[-8:]
    if len(session_id) <= 24:
        return session_id
    return session_id[:11] + "…" + session_id[-11:]


def handle_key(state: TuiState, key: str, now: float | None = None) -> Action:
    """Apply a key (blessed key name or character) to the state."""
    now = time.monotonic() if now is None else now
    if state.approval is not None and key.lower() in ("y", "n"):
        return Action("approve", argument=state.approval.approval_id, approved=key.lower() == "y")
    match key:
        case "KEY_CTRL_C":
            return _ctrl_c(state, now)
        case "KEY_CTRL_D" | "KEY_CTRL_Q":
            return Action("quit")
        case "KEY_ENTER":
            return _submit(state)
        case "KEY_ALT_ENTER":
            if len(state.input_lines) < MAX_INPUT_ROWS:
                state.input_lines.append("")
        case "KEY_BACKSPACE" | "KEY_DELETE":
            _backspace(state)
        case "KEY_PGUP":
            state.scroll += 10
        case "KEY_PGDOWN":
            state.scroll = max(0, state.scroll - 10)
        case "KEY_UP":
            state.scroll += 1
        case "KEY_DOWN":
            state.scroll = max(0, state.scroll - 1)
        case _ if len(key) == 1 and key.isprintable():
            state.input_lines[-1] += key
    return Action("none")


def _ctrl_c(state: TuiState, now: float) -> Action:
    if state.active_turn is not None and now - state.last_ctrl_c > QUIT_WINDOW_SECS:
        state.last_ctrl_c = now
        return Action("cancel")
    if now - state.last_ctrl_c <= QUIT_WINDOW_SECS or state.active_turn is None:
        return Action("quit")
    return Action("none")


def _backspace(state: TuiState) -> None:
    if state.input_lines[-1]:
        state.input_lines[-1] = state.input_lines[-1][:-1]
    elif len(state.input_lines) > 1:
        state.input_lines.pop()


def _submit(state: TuiState) -> Action:
    text = state.input_text.strip()
    state.input_lines = [""]
    state.scroll = 0
    if not text:
        return Action("none")
    if text.startswith("/"):
        name, _, argument = text[1:].partition(" ")
        if name in COMMANDS:
            return Action("command", text=name, argument=argument.strip())
        if name == "recall" and argument.strip():
            state.add("user", text)
            return Action("send", text=recall_prompt(argument.strip()))
        if name in ("help", "?"):
            state.add("system", HELP)
            return Action("none")
        if name in ("quit", "exit"):
            return Action("quit")
    state.add("user", text)
    return Action("send", text=text)


def recall_prompt(query: str) -> str:
    """What `/recall <query>` asks the agent (it answers with `session_search`)."""
    return (
        f"Search my older sessions for: {query}\n"
        "Use session_search, then bring the relevant excerpts into this conversation, "
        "each with its session id and date."
    )


def apply_frame(state: TuiState, frame: ServerFrame | ConnectionState) -> None:
    """Fold a server frame (or a connection change) into the state."""
    match frame:
        case ConnectionState(state=link, detail=detail, retry_in=retry):
            state.connection = link if retry is None else f"{link} (retry in {retry:.1f}s)"
            if detail and link == "disconnected":
                state.activity = detail
        case HelloAck() | SessionSwitched() | SessionCreated():
            if state.session_id != frame.session.session_id:
                state.cost = None
            state.session_id = frame.session.session_id
            running = getattr(frame, "active_turn", None)
            state.active_turn = running.turn_id if running else None
            if not isinstance(frame, HelloAck):
                state.add("system", f"session {state.session_id}")
        case TurnQueued():
            state.activity = f"queued: #{frame.position} in this session's line"
        case TurnStarted():
            state.active_turn, state.streaming, state.activity = frame.turn.turn_id, "", "thinking"
        case AssistantDelta():
            state.streaming = (state.streaming or "") + frame.delta
        case TurnProgress():
            state.activity = frame.progress.message
            streamed = state.streaming
            if isinstance(frame.progress.kind, ToolExecution) and streamed:
                # The next model call's text starts a new line, not glued to this one.
                state.streaming = streamed if streamed.endswith("\n") else streamed + "\n"
        case TurnCompleted():
            final = frame.response.message.text or ""
            streamed = (state.streaming or "").rstrip("\n")
            # The completion carries only the last model call's text; what the model said
            # before its tools is in the stream, which ends with that text when it is whole.
            text = streamed if streamed and streamed.endswith(final) else final or streamed
            _end_turn(state, Entry("assistant", text))
        case TurnCancelled():
            _end_turn(state, Entry("system", "turn cancelled"))
        case ErrorFrame():
            if frame.turn is not None:
                _end_turn(state, Entry("error", frame.message))
            else:
                state.add("error", frame.message)
        case ScheduledNotification():
            name = frame.schedule_name or frame.schedule_id
            state.add("system", f"[scheduled: {name}] {frame.message}")
        case SessionList():
            state.add("system", "sessions:\n" + ("\n".join(map(_row, frame.sessions)) or "(none)"))
        case SessionUpdated():
            row = frame.session
            state.add("system", f"session {row.session_id} {frame.action}: {_row(row)}")
        case SessionDeleted():
            gone = frame.session_id
            more = f" with {len(frame.deleted) - 1} sub-agent sessions" * (len(frame.deleted) > 1)
            state.add("system", f"session {gone} deleted{more}")
            if gone == state.session_id:
                state.add("system", "this session is gone: /new or /switch <id> to go on")
        case SessionExport():
            state.add("system", f"transcript of {frame.session_id} (read-only):\n{frame.content}")
        case HealthStatus():
            taint = "untrusted: " + ", ".join(frame.taint) if frame.taint else "trusted"
            cost = state.cost
            spent = "-" if cost is None else ("unknown" if cost.cost_usd is None else cost.cost_usd)
            tokens = 0 if cost is None else cost.input_tokens + cost.output_tokens
            state.add(
                "system",
                f"status: healthy={frame.healthy} session={state.session_id} "
                f"turn={state.active_turn or '-'} cost_usd={spent} tokens={tokens} "
                f"context={taint} {frame.message or ''}".rstrip()
                + "".join(
                    f"\n  {name}: {'ok' if c.healthy else 'UNHEALTHY'} {c.detail}".rstrip()
                    for name, c in sorted((frame.channels or {}).items())
                ),
            )
        case Usage() if frame.session.session_id == state.session_id:
            state.cost = frame.total
        case ApprovalRequest():
            state.approval = frame
            state.activity = f"approve {frame.tool_name}? [y/n]"
            if frame.tool_name == SKILL_APPROVAL:
                state.add("system", _skill_approval(frame))
            elif frame.taint_sources:
                state.add(
                    "system",
                    f"approval needed: {frame.tool_name}({_compact(frame.arguments)})\n"
                    f"untrusted content in play: {', '.join(frame.taint_sources)}\n"
                    f"{frame.reason or ''}".rstrip(),
                )
        case _:
            pass


def _skill_approval(frame: ApprovalRequest) -> str:
    """What the operator approves: the draft itself (name, description, body, hash)."""
    args = frame.arguments
    body = str(args.get("body", ""))
    if len(body) > SKILL_BODY_SHOWN:
        body = body[:SKILL_BODY_SHOWN] + f"\n...[{len(body) - SKILL_BODY_SHOWN} more characters]"
    lines = [
        f"skill approval: {args.get('name')} — {args.get('description')}",
        f"sha256 {str(args.get('sha256', ''))[:16]}; {frame.reason or ''}".rstrip("; "),
        body,
    ]
    if frame.taint_sources:
        lines.append(f"untrusted content in play: {', '.join(frame.taint_sources)}")
    lines.append("[y] activates it from the next session, [n] leaves it an inactive draft")
    return "\n".join(lines)


def _row(s: SessionSummary) -> str:
    """One session as a listing line: sub-agents indented under their parent."""
    cost = "-" if s.cost_usd is None else f"${s.cost_usd:.4f}"
    line = (
        f"{s.session_id}  {s.display_name or '-'}  {s.channel_origin}  {s.last_active_at}  "
        f"turns {s.turns or 0}  {cost}" + ("  [archived]" if s.archived else "")
    )
    return ("  └ " + line) if s.parent_session_id else line


def _compact(arguments: dict[str, object]) -> str:
    """The call's arguments, exactly, on one line (the person approves this call)."""
    return json.dumps(arguments, ensure_ascii=False)[:2000]


def _end_turn(state: TuiState, entry: Entry) -> None:
    if state.streaming and entry.role != "assistant":
        state.add("assistant", state.streaming)
    state.add(entry.role, entry.text)
    state.streaming, state.active_turn, state.activity = None, None, ""
    state.approval = None
