"""The gateway's own tables: `gateway_sessions` and `channel_session_mappings`.

The gateway owns this SQL (the memory layer only provides the database, its one writer
thread and the versioned migrations, `0003_gateway_sessions`); `MemorySessionRecords` runs
it through `Memory.call`, like the scheduler runs its tables.

The gateway keeps live sessions in memory; this table is what survives a restart: a
client that reconnects with a session id after the process restarted is resumed from
here. Timestamps are set by SQL in ISO-8601 UTC with milliseconds, so "most recently
active first" is a text sort; equal timestamps fall back to the (time-ordered UUIDv7)
session id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from oxydra.core import MemoryStoreError
from oxydra.memory import Database

SESSION_SCHEMA = "oxydra.gateway.migrations"
"""The migrations of these tables, for `Memory.open(..., schemas=...)`."""

_COLUMNS = (
    "session_id, user_id, agent_name, display_name, channel_origin, parent_session_id, "
    "created_at, last_active_at, archived, turns, cost_usd"
)
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A persisted gateway session (timestamps ISO-8601 UTC)."""

    session_id: str
    user_id: str
    agent_name: str = "default"
    display_name: str | None = None
    channel_origin: str = "tui"
    parent_session_id: str | None = None
    created_at: str = ""
    last_active_at: str = ""
    archived: bool = False
    turns: int = 0
    cost_usd: float | None = None


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One lifecycle step: who did what to which session, from which channel.

    A rollover (`new` with `old_session_id`) records which session the person left.
    """

    user_id: str
    channel: str
    action: str
    session_id: str
    old_session_id: str | None = None
    detail: str | None = None
    at: str = ""


def _record(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_id=row[0], user_id=row[1], agent_name=row[2], display_name=row[3],
        channel_origin=row[4], parent_session_id=row[5], created_at=row[6],
        last_active_at=row[7], archived=bool(row[8]), turns=int(row[9]), cost_usd=row[10],
    )  # fmt: skip


class SessionTable:
    """`gateway_sessions` and `channel_session_mappings` (sync; one thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        session_id: str,
        user_id: str,
        *,
        agent_name: str = "default",
        display_name: str | None = None,
        channel_origin: str = "tui",
        parent_session_id: str | None = None,
    ) -> SessionRecord:
        """Record a new session.

        Raises:
            MemoryStoreError: the id is taken.
        """
        with self._db.write() as conn:
            taken = conn.execute(
                "SELECT 1 FROM gateway_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if taken:
                raise MemoryStoreError(f"gateway session {session_id!r} already exists")
            row = conn.execute(
                "INSERT INTO gateway_sessions(session_id, user_id, agent_name, display_name, "
                "channel_origin, parent_session_id) VALUES (?, ?, ?, ?, ?, ?) "
                f"RETURNING {_COLUMNS}",
                (session_id, user_id, agent_name, display_name, channel_origin,
                 parent_session_id),
            ).fetchone()  # fmt: skip
        return _record(row)

    def create_many(
        self,
        rows: list[tuple[str, str, str, str | None, str, str | None]],
        audit: list[AuditEntry] | None = None,
    ) -> set[str]:
        """Record several new sessions in one transaction (one fsync for a burst of hellos).

        Each row is (session_id, user_id, agent_name, display_name, channel_origin,
        parent_session_id). Returns the ids created; an id already taken is skipped, not
        raised. `audit` entries of the sessions created are written in the same transaction.
        """
        created: set[str] = set()
        with self._db.write() as conn:
            for row in rows:
                cursor = conn.execute(
                    "INSERT INTO gateway_sessions(session_id, user_id, agent_name, display_name, "
                    "channel_origin, parent_session_id) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(session_id) DO NOTHING",
                    row,
                )
                if cursor.rowcount > 0:
                    created.add(row[0])
            for entry in audit or []:
                if entry.session_id in created:
                    _insert_audit(conn, entry)
        return created

    def get_or_create(
        self, session_id: str, user_id: str, *, channel_origin: str = "tui"
    ) -> SessionRecord:
        """The session, created with defaults when missing (the per-user default session).

        Raises:
            MemoryStoreError: the id exists and belongs to another user.
        """
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO gateway_sessions(session_id, user_id, channel_origin) "
                "VALUES (?, ?, ?) ON CONFLICT(session_id) DO NOTHING",
                (session_id, user_id, channel_origin),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM gateway_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        record = _record(row)
        if record.user_id != user_id:
            raise MemoryStoreError(f"gateway session {session_id!r} belongs to another user")
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM gateway_sessions WHERE session_id = ?", (session_id,)
        )
        return _record(row) if row else None

    def list_sessions(
        self,
        user_id: str,
        *,
        include_archived: bool = False,
        include_subagents: bool = False,
        limit: int = 1000,
    ) -> list[SessionRecord]:
        """The user's sessions, most recently active first."""
        sql = f"SELECT {_COLUMNS} FROM gateway_sessions WHERE user_id = ?"
        if not include_archived:
            sql += " AND archived = 0"
        if not include_subagents:
            sql += " AND parent_session_id IS NULL"
        sql += " ORDER BY last_active_at DESC, session_id DESC LIMIT ?"
        return [_record(row) for row in self._db.query(sql, (user_id, limit))]

    def find_by_prefix(self, user_id: str, prefix: str, *, limit: int = 2) -> list[SessionRecord]:
        """The user's sessions whose id is `prefix` or starts with it (exact match first)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM gateway_sessions WHERE user_id = ? "
            "AND session_id LIKE ? ESCAPE '\\' "
            "ORDER BY session_id != ?, last_active_at DESC LIMIT ?",
            (user_id, escaped + "%", prefix, limit),
        )
        return [_record(row) for row in rows]

    def count_active(self, user_id: str) -> int:
        """How many non-archived top-level sessions the user has (for capacity checks)."""
        row = self._db.query_one(
            "SELECT count(*) FROM gateway_sessions WHERE user_id = ? AND archived = 0 "
            "AND parent_session_id IS NULL",
            (user_id,),
        )
        return int(row[0]) if row else 0

    def touch(self, session_id: str, turns: int = 0, cost_usd: float | None = None) -> bool:
        """Mark the session active now and add `turns` and their cost; False if unknown.

        An unpriced cost (None) leaves the total as it was: "unknown" is not zero.
        """
        return self._update(
            f"last_active_at = {_NOW}, turns = turns + ?, "
            "cost_usd = CASE WHEN CAST(? AS DOUBLE PRECISION) IS NULL THEN cost_usd "
            "ELSE coalesce(cost_usd, 0) + ? END",  # typed: PostgreSQL cannot infer a bare NULL
            (turns, cost_usd, cost_usd),
            session_id,
        )

    def children(self, session_id: str) -> list[str]:
        """Every descendant of a session (sub-agent sessions), deepest first."""
        rows = self._db.query(
            "WITH RECURSIVE tree(id, depth) AS (SELECT session_id, 1 FROM gateway_sessions "
            "WHERE parent_session_id = ? UNION ALL SELECT g.session_id, t.depth + 1 "
            "FROM gateway_sessions g JOIN tree t ON g.parent_session_id = t.id "
            "WHERE t.depth < 64) SELECT id FROM tree ORDER BY depth DESC",
            (session_id,),
        )
        return [str(row[0]) for row in rows]

    def delete(self, session_ids: list[str], audit: AuditEntry) -> int:
        """Delete sessions (their channel mappings go with them) and record why; how many."""
        with self._db.write() as conn:
            gone = 0
            for session_id in session_ids:
                cursor = conn.execute(
                    "DELETE FROM gateway_sessions WHERE session_id = ?", (session_id,)
                )
                gone += cursor.rowcount
            _insert_audit(conn, audit)
        return gone

    def expired(self, days: int, *, limit: int = 1000) -> list[SessionRecord]:
        """Archived top-level sessions idle more than `days` days, oldest first."""
        cutoff = datetime.now(UTC) - timedelta(days=int(days))
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM gateway_sessions WHERE archived = 1 "
            "AND parent_session_id IS NULL AND last_active_at < ? "
            "ORDER BY last_active_at LIMIT ?",
            (cutoff.strftime("%Y-%m-%dT%H:%M:%S.") + f"{cutoff.microsecond // 1000:03d}Z", limit),
        )
        return [_record(row) for row in rows]

    def audit(self, entry: AuditEntry) -> None:
        """Record one lifecycle step."""
        with self._db.write() as conn:
            _insert_audit(conn, entry)

    def audit_log(self, user_id: str, *, limit: int = 200) -> list[AuditEntry]:
        """The user's lifecycle steps, newest first."""
        rows = self._db.query(
            "SELECT user_id, channel, action, session_id, old_session_id, detail, at "
            "FROM session_audit WHERE user_id = ? ORDER BY audit_id DESC LIMIT ?",
            (user_id, limit),
        )
        names = ("user_id", "channel", "action", "session_id", "old_session_id", "detail", "at")
        return [AuditEntry(**dict(zip(names, r, strict=True))) for r in rows]

    def update_display_name(self, session_id: str, display_name: str | None) -> bool:
        """Rename the session; False if unknown."""
        return self._update("display_name = ?", (display_name,), session_id)

    def archive(self, session_id: str) -> bool:
        """Hide the session from default listings; False if unknown."""
        return self._update("archived = 1", (), session_id)

    def unarchive(self, session_id: str) -> bool:
        """Show an archived session again (a client resumed it); False if unknown."""
        return self._update("archived = 0", (), session_id)

    def update(self, session_id: str, audit: AuditEntry, **fields: Any) -> SessionRecord | None:
        """Set `display_name` / `archived` and record the step in one transaction."""
        allowed = {"display_name", "archived"}
        assert set(fields) <= allowed, fields
        with self._db.write() as conn:
            sets = ", ".join(f"{name} = ?" for name in fields)
            # `archived` is an INTEGER column on both backends; PostgreSQL takes no bool there
            values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
            row = conn.execute(
                f"UPDATE gateway_sessions SET {sets} WHERE session_id = ? RETURNING {_COLUMNS}",
                (*values, session_id),
            ).fetchone()
            if row is None:
                return None
            _insert_audit(conn, audit)
        return _record(row)

    def _update(self, assignment: str, params: tuple[Any, ...], session_id: str) -> bool:
        with self._db.write() as conn:
            cursor = conn.execute(
                f"UPDATE gateway_sessions SET {assignment} WHERE session_id = ?",
                (*params, session_id),
            )
            return cursor.rowcount > 0

    def get_channel_mapping(self, channel_id: str, channel_context_id: str) -> str | None:
        """The session an external chat context is bound to, or None."""
        row = self._db.query_one(
            "SELECT session_id FROM channel_session_mappings "
            "WHERE channel_id = ? AND channel_context_id = ?",
            (channel_id, channel_context_id),
        )
        return str(row[0]) if row else None

    def set_channel_mapping(
        self, channel_id: str, channel_context_id: str, session_id: str
    ) -> None:
        """Bind an external chat context to a session (replacing any previous binding).

        Raises:
            MemoryStoreError: the session does not exist.
        """
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO channel_session_mappings(channel_id, channel_context_id, "
                "session_id) VALUES (?, ?, ?) ON CONFLICT(channel_id, channel_context_id) "
                f"DO UPDATE SET session_id = excluded.session_id, updated_at = {_NOW}",
                (channel_id, channel_context_id, session_id),
            )


def _insert_audit(conn: Any, entry: AuditEntry) -> None:
    conn.execute(
        "INSERT INTO session_audit(user_id, channel, action, session_id, old_session_id, "
        "detail) VALUES (?, ?, ?, ?, ?, ?)",
        (entry.user_id, entry.channel, entry.action, entry.session_id, entry.old_session_id,
         entry.detail),
    )  # fmt: skip
