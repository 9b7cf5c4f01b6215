"""The session lifecycle every channel shares: new, list, resolve, rename, archive, delete,
export, and the audit log of each step.

`SessionBook` works on the stored records only, so `ask`, `oxydra sessions` and the `vm`
give the same answers; `GatewayCore` adds what needs live state (cancelling a running turn
before a delete, following the new session). A channel (the TUI over the gateway protocol,
Telegram, the HTTP endpoint) calls these verbs and only renders the result.

Rules:
1. A person only ever sees their own sessions. Another person's id or prefix is refused
   with exactly the words of a missing one (`session_not_found`), so ids cannot be probed.
2. Nothing rolls over implicitly: a new session is made only by an explicit `new` (or the
   first hello of a person, which binds the deterministic default session). Every new
   session records who made it, from which channel and which session they left.
3. Delete removes the record, its sub-agent sessions, the conversation and everything
   indexed from it (vectors, full-text rows); the audit row of the delete stays.
4. Archive only hides; recall and export still read an archived session. Only
   `[sessions] retain_days` deletes archived sessions idle that long (`prune`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from oxydra.core.ids import new_session_id
from oxydra.gateway._admission import RefusedError
from oxydra.gateway._export import ExportFormat, export_session
from oxydra.gateway._store import SessionData, SessionRecords
from oxydra.gateway._table import AuditEntry, SessionRecord

if TYPE_CHECKING:  # the protocol's ~100 structs wait for a client: `ask` never lists
    from oxydra.wire.gateway import SessionSummary

MAX_NAME_CHARS = 120
Action = Literal["new", "rename", "archive", "unarchive", "delete", "switch", "export"]


class SessionBook:
    """Lifecycle verbs over the stored sessions of every person (module doc)."""

    def __init__(self, store: SessionRecords, data: SessionData | None = None) -> None:
        self.store = store
        self.data = data

    async def find(self, user_id: str, id_or_prefix: str) -> SessionRecord:
        """The person's session by exact id or unique prefix (rule 1).

        Raises:
            RefusedError: `session_not_found`, also for an ambiguous prefix (it says so).
        """
        exact = await self.store.get(id_or_prefix) if id_or_prefix else None
        if exact is not None and exact.user_id == user_id:
            return exact
        matches = await self.store.find_by_prefix(user_id, id_or_prefix) if id_or_prefix else []
        if len(matches) == 1:
            return matches[0]
        what = "no session" if not matches else f"{len(matches)} sessions"
        raise RefusedError(
            f"{what} of user `{user_id}` match `{id_or_prefix}`", "session_not_found"
        )

    async def new(
        self,
        user_id: str,
        *,
        channel: str,
        display_name: str | None = None,
        agent_name: str | None = None,
        left: str | None = None,
        parent_session_id: str | None = None,
    ) -> SessionRecord:
        """Create and record a session (rule 2); `left` is the session the person leaves."""
        record = SessionRecord(
            session_id=new_session_id(),
            user_id=user_id,
            agent_name=agent_name or "default",
            display_name=clean_name(display_name),
            channel_origin=channel,
            parent_session_id=parent_session_id,
        )
        entry = audit_new(record, left)
        created = await self.store.create_many([record], [entry])
        if record.session_id not in created:
            raise RefusedError(f"session `{record.session_id}` already exists", "session_exists")
        return record

    async def rename(
        self, user_id: str, id_or_prefix: str, name: str | None, channel: str
    ) -> SessionRecord:
        """Give a session a display name (empty or None: remove it)."""
        found = await self.find(user_id, id_or_prefix)
        name = clean_name(name)
        return await self._update(found, channel, "rename", name, display_name=name)

    async def archive(
        self, user_id: str, id_or_prefix: str, channel: str, archived: bool = True
    ) -> SessionRecord:
        """Hide a session from the default listing, or show it again (rule 4)."""
        found = await self.find(user_id, id_or_prefix)
        action: Action = "archive" if archived else "unarchive"
        return await self._update(found, channel, action, None, archived=archived)

    async def _update(
        self,
        found: SessionRecord,
        channel: str,
        action: Action,
        detail: str | None,
        **fields: object,
    ) -> SessionRecord:
        entry = AuditEntry(
            user_id=found.user_id, channel=channel, action=action,
            session_id=found.session_id, detail=detail,
        )  # fmt: skip
        updated = await self.store.update(found.session_id, entry, **fields)
        if updated is None:  # deleted meanwhile
            raise RefusedError(
                f"no session of user `{found.user_id}` match `{found.session_id}`",
                "session_not_found",
            )
        return updated

    async def delete(self, user_id: str, id_or_prefix: str, channel: str) -> list[str]:
        """Delete a session and its sub-agent sessions with all their data (rule 3).

        The caller must have stopped any turn running in them. Returns the ids removed.
        """
        found = await self.find(user_id, id_or_prefix)
        doomed = [*await self.store.children(found.session_id), found.session_id]
        if self.data is not None:
            for session_id in doomed:
                await self.data.delete_session(session_id)
        entry = AuditEntry(
            user_id=user_id, channel=channel, action="delete", session_id=found.session_id,
            detail=f"{len(doomed) - 1} sub-agent sessions with it" if len(doomed) > 1 else None,
        )  # fmt: skip
        await self.store.delete(doomed, entry)
        return doomed

    async def export(
        self, user_id: str, id_or_prefix: str, fmt: ExportFormat, channel: str
    ) -> tuple[SessionRecord, str]:
        """The session's transcript (archived ones too); the read is audited."""
        found = await self.find(user_id, id_or_prefix)
        events = await self.data.recall(found.session_id) if self.data is not None else []
        entry = AuditEntry(
            user_id=user_id, channel=channel, action="export",
            session_id=found.session_id, detail=fmt,
        )  # fmt: skip
        await self.store.audit(entry)
        return found, export_session(found, events, fmt)

    async def listing(
        self, user_id: str, include_archived: bool = False, include_subagents: bool = False
    ) -> list[SessionSummary]:
        """The person's sessions, most recently active first; sub-agents under their parent."""
        records = await self.store.list_sessions(user_id, include_archived=include_archived)
        return [summary(r) for r in tree_order(records, include_subagents)]

    async def audit_log(self, user_id: str) -> list[AuditEntry]:
        """The person's lifecycle steps, newest first."""
        return await self.store.audit_log(user_id)

    async def prune(self, retain_days: int) -> list[str]:
        """Delete archived sessions idle more than `retain_days` days, with their data and
        sub-agent sessions (rule 3; audited as `delete` from channel `retention`)."""
        removed: list[str] = []
        for record in await self.store.expired(retain_days):
            removed += await self.delete(record.user_id, record.session_id, "retention")
        return removed


class ChildSessionRecorder:
    """Records each delegation's session under its parent (`runtime.delegation.ChildSessions`).

    A parent that is not a recorded session (a scheduled run's) gets no tree: the child is
    still run and stored, only not listed.
    """

    def __init__(self, store: SessionRecords) -> None:
        self.store = store

    async def started(
        self, *, user_id: str, parent_session_id: str, session_id: str, agent_name: str
    ) -> None:
        """Record the child session (audit: `new`, from the parent)."""
        parent = await self.store.get(parent_session_id)
        if parent is None or parent.user_id != user_id:
            return
        record = SessionRecord(
            session_id=session_id,
            user_id=user_id,
            agent_name=agent_name,
            channel_origin="subagent",
            parent_session_id=parent_session_id,
        )
        entry = msgspec.structs.replace(audit_new(record, parent_session_id), detail="sub-agent")
        await self.store.create_many([record], [entry])


def audit_new(record: SessionRecord, left: str | None) -> AuditEntry:
    """The audit row of a new session: a rollover when the person left another one."""
    return AuditEntry(
        user_id=record.user_id,
        channel=record.channel_origin,
        action="new",
        session_id=record.session_id,
        old_session_id=left,
        detail=record.display_name,
    )


def clean_name(name: str | None) -> str | None:
    """A display name on one line, without control characters, at most 120 characters."""
    if name is None:
        return None
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in name).split())
    return cleaned[:MAX_NAME_CHARS] or None


def summary(record: SessionRecord) -> SessionSummary:
    """A stored session as one row of `session_list`."""
    from oxydra.wire.gateway import SessionSummary

    fields = msgspec.structs.asdict(record)
    fields.pop("user_id")
    return msgspec.convert(fields, SessionSummary)


def tree_order(records: list[SessionRecord], include_subagents: bool) -> list[SessionRecord]:
    """Top-level sessions in the given order, each followed by its sub-agent sessions."""
    top = [r for r in records if r.parent_session_id is None]
    if not include_subagents:
        return top
    known = {r.session_id for r in records}
    kids: dict[str, list[SessionRecord]] = {}
    for r in records:
        if r.parent_session_id is not None:
            parent = r.parent_session_id if r.parent_session_id in known else ""
            kids.setdefault(parent, []).append(r)
    ordered: list[SessionRecord] = []

    def walk(record: SessionRecord, depth: int) -> None:
        ordered.append(record)
        if depth < 64:
            for child in kids.get(record.session_id, []):
                walk(child, depth + 1)

    for record in top:
        walk(record, 0)
    ordered += kids.get("", [])  # orphans (a parent deleted or not listed) at the end
    return ordered
