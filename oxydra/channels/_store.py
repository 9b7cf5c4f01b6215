"""The channels' durable state in the memory database: offsets, inbox, outbox, sessions.

Invariants (the crash story of docs/channels.md):
1. `accept` stores an inbound message and moves the channel's offset past it in one
   transaction: after a crash either both happened (the message is in the inbox and is
   answered after the restart) or neither did (the platform delivers it again, because its
   offset was never confirmed). An update id already in the inbox is not stored twice.
2. `answer` marks the inbox row answered and queues every outgoing piece of the answer in
   one transaction: an answered message always has its whole answer in the outbox.
3. An outbox row is `sent` with the platform's message id recorded once the platform
   accepted it; a restart sends only rows still `pending`, in id order.
All SQL runs on the memory store's one writer thread (`Memory.call`).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import msgspec

from oxydra.memory import Database, Memory

CHANNEL_SCHEMA = "oxydra.channels.migrations"
"""The migrations of these tables, for `Memory.open(..., schemas=...)`."""


class InboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """A stored inbound message not yet answered."""

    update_id: int
    person: str
    context_id: str
    payload: bytes
    state: str
    placeholder_id: int | None = None
    session_id: str | None = None


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """One outgoing message (or edit, or file) waiting to be delivered."""

    id: int
    context_id: str
    update_id: int | None
    kind: str
    edit_message_id: int | None
    html: str | None
    plain: str
    media: bytes | None
    attempts: int


class OutPiece(msgspec.Struct, frozen=True, kw_only=True):
    """A piece to queue: a new message, an edit of `edit_message_id`, or a file."""

    kind: str
    plain: str = ""
    html: str | None = None
    edit_message_id: int | None = None
    media: bytes | None = None


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class ChannelStore:
    """The tables of `0009_channels.sql` for one channel key (`telegram:<bot id>`)."""

    def __init__(self, memory: Memory, channel: str) -> None:
        self.memory = memory
        self.channel = channel

    # ---- ingress -----------------------------------------------------------------

    async def offset(self) -> int:
        """The last update id stored or skipped (0 before the first)."""
        return await self.memory.call(_offset, self.channel)

    async def accept(
        self, update_id: int, person: str | None, context_id: str, payload: bytes
    ) -> bool:
        """Store a message (person None: only skip it) and move the offset; see rule 1."""
        return await self.memory.call(_accept, self.channel, update_id, person, context_id, payload)

    async def open_messages(self) -> list[InboxRow]:
        """Stored messages not answered yet, oldest first (after a restart: the backlog)."""
        return await self.memory.call(_open, self.channel)

    async def mark_running(self, update_id: int, session_id: str, placeholder: int | None) -> None:
        """Remember the session and the "working" message of a message being answered."""
        await self.memory.call(_running, self.channel, update_id, session_id, placeholder)

    async def answer(self, update_id: int | None, context_id: str, pieces: list[OutPiece]) -> None:
        """Mark `update_id` answered and queue its answer; see rule 2."""
        await self.memory.call(_answer, self.channel, update_id, context_id, pieces)

    # ---- egress ------------------------------------------------------------------

    async def pending(self, limit: int = 100) -> list[OutboxRow]:
        """Outbox rows to deliver, in order."""
        return await self.memory.call(_pending, self.channel, limit)

    async def sent(self, row_id: int, message_id: int | None) -> None:
        """Record a delivered row and the platform's id for it."""
        await self.memory.call(_outcome, row_id, "sent", message_id, None)

    async def failed(self, row_id: int, error: str, *, final: bool) -> None:
        """Count a failed attempt; `final` gives up on the row."""
        state = "failed" if final else "pending"
        await self.memory.call(_outcome, row_id, state, None, error[:500])

    async def counts(self) -> dict[str, int]:
        """Outbox rows by state, and inbox rows not answered (`inbox_open`)."""
        return await self.memory.call(_counts, self.channel)

    # ---- people ------------------------------------------------------------------

    async def session_for(self, person: str, context_id: str) -> str | None:
        """The session a person's chat context is bound to."""
        return await self.memory.call(_session_for, person, self.channel, context_id)

    async def bind(self, person: str, context_id: str, session_id: str) -> None:
        """Bind a person's chat context to a session (after `/new`, `/switch`)."""
        await self.memory.call(_bind, person, self.channel, context_id, session_id)

    async def contexts_of(self, session_id: str) -> list[tuple[str, str]]:
        """`(person, context_id)` of this channel bound to a session."""
        return await self.memory.call(_contexts_of, self.channel, session_id)

    async def bound(self) -> list[tuple[str, str, str]]:
        """Every `(person, context_id, session_id)` of this channel."""
        return await self.memory.call(_bound, self.channel)

    async def spent_today(self, person: str) -> float:
        """What the person's turns cost today (UTC), in USD."""
        return await self.memory.call(_spent, person, _today())

    async def add_spend(self, person: str, cost_usd: float) -> None:
        """Add a turn's cost to the person's day."""
        await self.memory.call(_add_spend, person, _today(), cost_usd)


def _offset(db: Database, channel: str) -> int:
    row = db.query_one("SELECT last_update_id FROM channel_offsets WHERE channel = ?", (channel,))
    return int(row[0]) if row else 0


def _move(conn: sqlite3.Connection, channel: str, update_id: int) -> None:
    conn.execute(
        "INSERT INTO channel_offsets(channel, last_update_id) VALUES (?, ?) "
        "ON CONFLICT(channel) DO UPDATE SET last_update_id = CASE WHEN "
        "channel_offsets.last_update_id > excluded.last_update_id THEN "
        "channel_offsets.last_update_id ELSE excluded.last_update_id END",
        (channel, update_id),
    )


def _accept(
    db: Database,
    channel: str,
    update_id: int,
    person: str | None,
    context_id: str,
    payload: bytes,
) -> bool:
    with db.write() as conn:
        stored = False
        if person is not None:
            cursor = conn.execute(
                "INSERT INTO channel_inbox(channel, update_id, person, context_id, "
                "payload_json) VALUES (?, ?, ?, ?, ?) ON CONFLICT(channel, update_id) DO NOTHING",
                (channel, update_id, person, context_id, payload.decode()),
            )
            stored = cursor.rowcount == 1
        _move(conn, channel, update_id)
        return stored


def _open(db: Database, channel: str) -> list[InboxRow]:
    rows = db.query(
        "SELECT update_id, person, context_id, payload_json, state, placeholder_id, session_id "
        "FROM channel_inbox WHERE channel = ? AND state != 'answered' ORDER BY update_id",
        (channel,),
    )
    return [
        InboxRow(
            update_id=r[0],
            person=r[1],
            context_id=r[2],
            payload=r[3].encode(),
            state=r[4],
            placeholder_id=r[5],
            session_id=r[6],
        )
        for r in rows
    ]


def _running(
    db: Database, channel: str, update_id: int, session_id: str, placeholder: int | None
) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE channel_inbox SET state = 'running', session_id = ?, "
            "placeholder_id = coalesce(?, placeholder_id) WHERE channel = ? AND update_id = ?",
            (session_id, placeholder, channel, update_id),
        )


def _answer(
    db: Database, channel: str, update_id: int | None, context_id: str, pieces: list[OutPiece]
) -> None:
    with db.write() as conn:
        if update_id is not None:
            conn.execute(
                "UPDATE channel_inbox SET state = 'answered', "
                "answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE channel = ? AND update_id = ?",
                (channel, update_id),
            )
        conn.executemany(
            "INSERT INTO channel_outbox(channel, context_id, update_id, kind, edit_message_id, "
            "html, plain, media_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    channel,
                    context_id,
                    update_id,
                    p.kind,
                    p.edit_message_id,
                    p.html,
                    p.plain,
                    p.media.decode() if p.media is not None else None,
                )
                for p in pieces
            ],
        )


def _pending(db: Database, channel: str, limit: int) -> list[OutboxRow]:
    rows = db.query(
        "SELECT id, context_id, update_id, kind, edit_message_id, html, plain, media_json, "
        "attempts FROM channel_outbox WHERE channel = ? AND state = 'pending' ORDER BY id LIMIT ?",
        (channel, limit),
    )
    return [
        OutboxRow(
            id=r[0],
            context_id=r[1],
            update_id=r[2],
            kind=r[3],
            edit_message_id=r[4],
            html=r[5],
            plain=r[6],
            media=r[7].encode() if r[7] else None,
            attempts=r[8],
        )
        for r in rows
    ]


def _outcome(
    db: Database, row_id: int, state: str, message_id: int | None, error: str | None
) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE channel_outbox SET state = ?, sent_message_id = ?, error = ?, "
            "attempts = attempts + 1, sent_at = CASE WHEN ? = 'sent' THEN "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END WHERE id = ?",
            (state, message_id, error, state, row_id),
        )


def _counts(db: Database, channel: str) -> dict[str, int]:
    found = {"pending": 0, "sent": 0, "failed": 0}
    for state, count in db.query(
        "SELECT state, count(*) FROM channel_outbox WHERE channel = ? GROUP BY state", (channel,)
    ):
        found[state] = count
    row = db.query_one(
        "SELECT count(*) FROM channel_inbox WHERE channel = ? AND state != 'answered'", (channel,)
    )
    found["inbox_open"] = int(row[0]) if row else 0
    return found


def _session_for(db: Database, person: str, channel: str, context_id: str) -> str | None:
    row = db.query_one(
        "SELECT session_id FROM person_sessions WHERE person = ? AND channel = ? "
        "AND context_id = ?",
        (person, channel, context_id),
    )
    return str(row[0]) if row else None


def _bind(db: Database, person: str, channel: str, context_id: str, session_id: str) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO person_sessions(person, channel, context_id, session_id) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(person, channel, context_id) DO UPDATE SET "
            "session_id = excluded.session_id, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            (person, channel, context_id, session_id),
        )


def _contexts_of(db: Database, channel: str, session_id: str) -> list[tuple[str, str]]:
    rows = db.query(
        "SELECT person, context_id FROM person_sessions WHERE channel = ? AND session_id = ? "
        "ORDER BY updated_at DESC",
        (channel, session_id),
    )
    return [(r[0], r[1]) for r in rows]


def _bound(db: Database, channel: str) -> list[tuple[str, str, str]]:
    rows = db.query(
        "SELECT person, context_id, session_id FROM person_sessions WHERE channel = ? "
        "ORDER BY updated_at DESC LIMIT 500",
        (channel,),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def _spent(db: Database, person: str, day: str) -> float:
    row = db.query_one(
        "SELECT cost_usd FROM person_spend WHERE person = ? AND day = ?", (person, day)
    )
    return float(row[0]) if row else 0.0


def _add_spend(db: Database, person: str, day: str, cost: float) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO person_spend(person, day, cost_usd) VALUES (?, ?, ?) "
            "ON CONFLICT(person, day) DO UPDATE SET "
            "cost_usd = person_spend.cost_usd + excluded.cost_usd",
            (person, day, cost),
        )
