"""A session's transcript as Markdown (to read) or JSON Lines (to process): pure functions.

The export is what the store holds, verbatim: untrusted text stays marked as such (its
label is written out), tool calls and results are shown with their ids, media is named,
never inlined.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxydra.core.messages import Message
from oxydra.gateway._table import SessionRecord
from oxydra.memory import StoredEvent

ExportFormat = Literal["markdown", "jsonl"]
_json = msgspec.json.Encoder()


def export_session(record: SessionRecord, events: list[StoredEvent], fmt: ExportFormat) -> str:
    """The session's transcript in `fmt`."""
    if fmt == "jsonl":
        return "".join(_json.encode(_row(record, e)).decode() + "\n" for e in events)
    return _markdown(record, events)


def _row(record: SessionRecord, event: StoredEvent) -> dict[str, Any]:
    message = event.message
    row: dict[str, Any] = {
        "session_id": record.session_id,
        "sequence": event.sequence,
        "created_at": event.created_at,
        "role": message.role,
        "text": message.text,
    }
    if message.tool_calls:
        row["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ]
    if message.tool_call_id:
        row["tool_call_id"] = message.tool_call_id
    if message.trust_label is not None:
        row["untrusted_sources"] = [str(s) for s in message.trust_label.sources]
    return row


def _markdown(record: SessionRecord, events: list[StoredEvent]) -> str:
    title = record.display_name or record.session_id
    lines = [
        f"# Session {title}",
        "",
        f"- id: `{record.session_id}`",
        f"- agent: {record.agent_name}; started from: {record.channel_origin}",
        f"- created: {record.created_at}; last active: {record.last_active_at}",
        f"- turns: {record.turns}; archived: {'yes' if record.archived else 'no'}",
    ]
    if record.parent_session_id:
        lines.append(f"- sub-agent of: `{record.parent_session_id}`")
    for event in events:
        lines += ["", _heading(event), "", *_body(event.message)]
    return "\n".join(lines) + "\n"


def _heading(event: StoredEvent) -> str:
    message = event.message
    who = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "system": "System"}
    heading = f"## {who.get(message.role, message.role)} · {event.created_at} · #{event.sequence}"
    label = message.trust_label
    if label is not None:
        heading += " · untrusted: " + ", ".join(str(s) for s in label.sources)
    return heading


def _body(message: Message) -> list[str]:
    body = [message.text] if message.text else []
    if message.tool_call_id:
        body.insert(0, f"(result of call `{message.tool_call_id}`)")
    for call in message.tool_calls:
        args = _json.encode(call.arguments).decode()
        body.append(f"- calls `{call.name}` (`{call.id}`): `{args[:2000]}`")
    return body or ["(no text)"]
