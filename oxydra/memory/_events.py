"""The conversation log: sessions, events, state, rolling summaries, scratchpad; and notes.

Invariants:

1. `sequence` strictly increases within a session. It is assigned (or checked, when the
   caller gives one) inside the same `BEGIN IMMEDIATE` transaction that inserts the row,
   so concurrent writers, even in other processes, never collide or leave a gap.
2. A session belongs to at most one user; creating it again under another user fails.
3. A message's provenance label is stored in `provenance_json`, not in the payload (which
   keeps the Rust shape); NULL is trusted (migration 0005 labelled older web results).
4. Summaries are append-only rows with the event range they cover; the newest epoch is
   current. A write carries the epoch it read (`expected_epoch`), so of two concurrent
   summarisers only the first one wins; the event rows are never deleted by summarising.

Notes (`NoteBook`): a user's notes live in the session `memory:{user_id}`, owned by that
user. A note is one event there (`{role: "user", content, tool_call_id: note_id}`) plus its
chunks, whose `note_id` column and metadata (`note_id, source, tags, created_at, updated_at,
schema_version`) make it searchable and filterable. Every read, update and delete is keyed
by both note id and user id, so one user can never reach another's note, even with its id.
An update keeps the note's id and `created_at` (upstream reset the latter). A note written
from a tainted step keeps the step's label (on its event and chunks), so a later turn that
retrieves it is tainted; an update replaces the label with its own.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from oxydra.core import Label, MemoryStoreError, Message, ToolArgumentsError
from oxydra.core.provenance import decode_label, encode_label
from oxydra.memory._chunks import Changes, note_rows, stamp_rows
from oxydra.memory._db import Database
from oxydra.memory._retrieval import RetrievalIndex
from oxydra.memory._text import blank_media, normalize_tags, now_iso
from oxydra.memory._types import (
    ConversationRecord,
    Note,
    RestoredSession,
    ScratchpadState,
    ScratchpadWrite,
    StoredEvent,
    SummaryState,
)

SCRATCHPAD_MAX_ITEMS = 32
SCRATCHPAD_MAX_ITEM_CHARS = 240
SCRATCHPAD_MAX_JSON_BYTES = 8 * 1024
_SCRATCHPAD_KEY = "scratchpad_state"

_message_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(Message)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(dict[str, Any])

_SESSION_COLUMNS = "session_id, user_id, agent_identity, created_at, updated_at"


def _session(row: tuple[Any, ...]) -> ConversationRecord:
    return ConversationRecord(
        session_id=row[0], user_id=row[1], agent_identity=row[2], created_at=row[3],
        updated_at=row[4],
    )  # fmt: skip


def _summary(session_id: str, row: tuple[Any, ...]) -> SummaryState:
    return SummaryState(
        session_id=session_id, epoch=row[0], lower_sequence=row[1], upper_sequence=row[2],
        summary=row[3], metadata=_json_decoder.decode(row[4]), created_at=row[5],
        label=decode_label(row[6]),
    )  # fmt: skip


class EventLog:
    """Sessions and their messages in one database (sync; one thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- sessions ---------------------------------------------------------------------

    def create_session(
        self, session_id: str, *, user_id: str | None = None, agent_identity: str | None = None
    ) -> ConversationRecord:
        """Create the session, or return it when it exists (get-or-create).

        Raises:
            MemoryStoreError: the session exists and belongs to another user.
        """
        with self._db.write() as conn:
            return self.ensure_session(conn, session_id, user_id, agent_identity)

    def ensure_session(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        user_id: str | None,
        agent_identity: str | None = None,
    ) -> ConversationRecord:
        """`create_session` inside the caller's write transaction."""
        if not session_id:
            raise MemoryStoreError("a session id must not be empty")
        conn.execute(
            "INSERT INTO sessions(session_id, user_id, agent_identity) VALUES (?, ?, ?) "
            "ON CONFLICT(session_id) DO NOTHING",
            (session_id, user_id, agent_identity),
        )
        row = conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        record = _session(row)
        if user_id is not None and record.user_id not in (None, user_id):
            raise MemoryStoreError(f"session {session_id!r} belongs to another user")
        return record

    def get_session(self, session_id: str) -> ConversationRecord | None:
        """The session, or None."""
        row = self._db.query_one(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
        )
        return _session(row) if row else None

    def list_sessions(self, user_id: str, *, limit: int = 100) -> list[ConversationRecord]:
        """The user's sessions, most recently updated first."""
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = ? "
            "ORDER BY updated_at DESC, session_id DESC LIMIT ?",
            (user_id, limit),
        )
        return [_session(row) for row in rows]

    def delete_session(self, session_id: str) -> bool:
        """Delete the session with its events, state and chunks; True when it existed."""
        with self._db.write() as conn:
            cursor = conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            return cursor.rowcount > 0

    # -- events -----------------------------------------------------------------------

    def insert_event(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        message: Message,
        sequence: int | None = None,
    ) -> int:
        """Store one message inside the caller's write transaction; return its sequence.

        Raises:
            MemoryStoreError: unknown session, or `sequence` not above the last one.
        """
        row = conn.execute(
            "SELECT (SELECT max(sequence) FROM conversation_events WHERE session_id = ?), "
            "EXISTS (SELECT 1 FROM sessions WHERE session_id = ?)",
            (session_id, session_id),
        ).fetchone()
        last, exists = int(row[0] or 0), bool(row[1])
        if not exists:
            raise MemoryStoreError(f"unknown session {session_id!r}; create it first")
        if sequence is None:
            sequence = last + 1
        elif sequence <= last:
            raise MemoryStoreError(
                f"sequence {sequence} of session {session_id!r} is not above the last "
                f"stored sequence {last}"
            )
        label = encode_label(message.label)
        if message.label is not None:
            message = msgspec.structs.replace(message, label=None)
        payload = _message_encoder.encode(blank_media(message)).decode()
        conn.execute(
            "INSERT INTO conversation_events(session_id, sequence, payload_json, "
            "provenance_json) VALUES (?, ?, ?, ?)",
            (session_id, sequence, payload, label),
        )
        conn.execute(
            "UPDATE sessions SET updated_at = ? WHERE session_id = ?", (now_iso(), session_id)
        )
        return sequence

    def recall(
        self, session_id: str, *, limit: int | None = None, after_sequence: int = 0
    ) -> list[StoredEvent]:
        """Events after `after_sequence`, ascending; with `limit`, only the last `limit`."""
        sql = (
            "SELECT sequence, payload_json, created_at, provenance_json FROM conversation_events "
            "WHERE session_id = ? AND sequence > ? ORDER BY sequence DESC"
        )
        params: list[Any] = [session_id, after_sequence]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._db.query(sql, params)
        return [self._event(session_id, row) for row in reversed(rows)]

    def _event(self, session_id: str, row: tuple[Any, ...]) -> StoredEvent:
        try:
            message = _message_decoder.decode(row[1])
        except msgspec.DecodeError as exc:
            raise MemoryStoreError(
                f"memory database {self._db.path}: event {row[0]} of session {session_id!r} "
                f"is unreadable ({exc})"
            ) from exc
        label = decode_label(row[3])
        if label is not None:
            message = msgspec.structs.replace(message, label=label)
        return StoredEvent(session_id=session_id, sequence=row[0], message=message,
                           created_at=row[2])  # fmt: skip

    def last_sequence(self, session_id: str) -> int:
        """The highest stored sequence of the session (0 when none)."""
        row = self._db.query_one(
            "SELECT max(sequence) FROM conversation_events WHERE session_id = ?", (session_id,)
        )
        return int(row[0]) if row and row[0] is not None else 0

    def restore_session(self, session_id: str) -> RestoredSession | None:
        """The session with all its events and its current summary, or None."""
        session = self.get_session(session_id)
        if session is None:
            return None
        events = tuple(self.recall(session_id))
        return RestoredSession(
            session=session, events=events, summary=self.load_summary(session_id)
        )

    # -- free-form state --------------------------------------------------------------

    def get_state(self, session_id: str, key: str) -> Any:
        """The JSON value stored under `key` for the session, or None."""
        row = self._db.query_one(
            "SELECT state_json FROM session_state WHERE session_id = ?", (session_id,)
        )
        return _json_decoder.decode(row[0]).get(key) if row else None

    def set_state(self, session_id: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable `value` under `key` (None removes the key)."""
        with self._db.write() as conn:
            self._set_state(conn, session_id, key, value)

    def _set_state(self, conn: sqlite3.Connection, session_id: str, key: str, value: Any) -> None:
        row = conn.execute(
            "SELECT state_json FROM session_state WHERE session_id = ?", (session_id,)
        ).fetchone()
        state = _json_decoder.decode(row[0]) if row else {}
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
        conn.execute(
            "INSERT INTO session_state(session_id, state_json, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(session_id) DO UPDATE SET state_json = excluded.state_json, "
            "updated_at = excluded.updated_at",
            (session_id, _json_encoder.encode(state).decode(), now_iso()),
        )

    # -- scratchpad -------------------------------------------------------------------

    def read_scratchpad(self, session_id: str) -> ScratchpadState:
        """The session's scratchpad (empty when never written)."""
        value = self.get_state(session_id, _SCRATCHPAD_KEY) or {}
        return ScratchpadState(
            session_id=session_id,
            items=tuple(value.get("items", ())),
            updated_at=value.get("updated_at"),
        )

    def write_scratchpad(self, session_id: str, items: Sequence[str]) -> ScratchpadWrite:
        """Replace the scratchpad with `items` (1-32 items of 1-240 chars, JSON ≤ 8 KiB).

        Raises:
            ToolArgumentsError: the items break a limit.
        """
        cleaned = _check_scratchpad(items)
        with self._db.write() as conn:
            self._require_session(conn, session_id)
            current = self.read_scratchpad(session_id).items
            value = {"items": cleaned, "updated_at": now_iso(), "schema_version": 1}
            self._set_state(conn, session_id, _SCRATCHPAD_KEY, value)
        return ScratchpadWrite(updated=tuple(cleaned) != current, item_count=len(cleaned))

    def clear_scratchpad(self, session_id: str) -> bool:
        """Empty the scratchpad; True when it held items."""
        with self._db.write() as conn:
            had_items = bool(self.read_scratchpad(session_id).items)
            self._set_state(conn, session_id, _SCRATCHPAD_KEY, None)
        return had_items

    def _require_session(self, conn: sqlite3.Connection, session_id: str) -> None:
        found = conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,))
        if found.fetchone() is None:
            raise MemoryStoreError(f"unknown session {session_id!r}; create it first")

    # -- rolling summaries ------------------------------------------------------------

    def load_summary(self, session_id: str) -> SummaryState | None:
        """The current (highest-epoch) summary of the session, or None."""
        row = self._db.query_one(
            "SELECT epoch, lower_sequence, upper_sequence, summary, metadata_json, created_at, "
            "provenance_json FROM session_summaries WHERE session_id = ? "
            "ORDER BY epoch DESC LIMIT 1",
            (session_id,),
        )
        return _summary(session_id, row) if row else None

    def summary_history(self, session_id: str) -> list[SummaryState]:
        """Every summary of the session, oldest first."""
        rows = self._db.query(
            "SELECT epoch, lower_sequence, upper_sequence, summary, metadata_json, created_at, "
            "provenance_json FROM session_summaries WHERE session_id = ? ORDER BY epoch",
            (session_id,),
        )
        return [_summary(session_id, row) for row in rows]

    def save_summary(
        self,
        session_id: str,
        *,
        expected_epoch: int,
        summary: str,
        upper_sequence: int,
        lower_sequence: int = 1,
        metadata: dict[str, Any] | None = None,
        label: Label | None = None,
    ) -> SummaryState | None:
        """Store a summary of events `lower_sequence..upper_sequence` as epoch+1.

        Returns the stored state, or None when the write is stale: the current epoch is
        not `expected_epoch` (someone summarised first) or `upper_sequence` would move
        backwards.

        Raises:
            MemoryStoreError: the range is empty or reaches past the last stored event.
        """
        with self._db.write() as conn:
            self._require_session(conn, session_id)
            current = conn.execute(
                "SELECT epoch, upper_sequence FROM session_summaries WHERE session_id = ? "
                "ORDER BY epoch DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            epoch, upper = (current[0], current[1]) if current else (0, 0)
            if epoch != expected_epoch or upper_sequence < upper:
                return None
            self._check_range(conn, session_id, lower_sequence, upper_sequence)
            conn.execute(
                "INSERT INTO session_summaries(session_id, epoch, lower_sequence, "
                "upper_sequence, summary, metadata_json, provenance_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, epoch + 1, lower_sequence, upper_sequence, summary,
                 _json_encoder.encode(metadata or {}).decode(), encode_label(label)),
            )  # fmt: skip
        return self.load_summary(session_id)

    def _check_range(
        self, conn: sqlite3.Connection, session_id: str, lower: int, upper: int
    ) -> None:
        last = conn.execute(
            "SELECT max(sequence) FROM conversation_events WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        if lower < 1 or upper < lower or upper > int(last or 0):
            raise MemoryStoreError(
                f"summary range {lower}..{upper} of session {session_id!r} is not within its "
                f"stored events 1..{int(last or 0)}"
            )


def _check_scratchpad(items: Sequence[str]) -> list[str]:
    cleaned = [item.strip() for item in items]
    if not cleaned:
        raise ToolArgumentsError("the scratchpad needs at least one item")
    if len(cleaned) > SCRATCHPAD_MAX_ITEMS:
        raise ToolArgumentsError(f"at most {SCRATCHPAD_MAX_ITEMS} scratchpad items are allowed")
    for index, item in enumerate(cleaned):
        if not item or len(item) > SCRATCHPAD_MAX_ITEM_CHARS:
            raise ToolArgumentsError(
                f"scratchpad item {index} must have 1-{SCRATCHPAD_MAX_ITEM_CHARS} characters"
            )
    if len(_json_encoder.encode(cleaned)) > SCRATCHPAD_MAX_JSON_BYTES:
        raise ToolArgumentsError("the scratchpad must stay under 8 KiB of JSON")
    return cleaned


# ---- notes -----------------------------------------------------------------------

MAX_NOTE_CHARS = 16_000
_decode_message = msgspec.json.Decoder(Message).decode
_decode_meta = msgspec.json.Decoder(dict[str, Any]).decode


def notes_session_id(user_id: str) -> str:
    """The session holding a user's notes."""
    return f"memory:{user_id}"


def _check_content(content: str) -> str:
    if not content.strip():
        raise ToolArgumentsError("note content must not be empty")
    if len(content) > MAX_NOTE_CHARS:
        raise ToolArgumentsError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    return content


class NoteBook:
    """Per-user notes over the event log and the retrieval index."""

    def __init__(self, db: Database, events: EventLog, retrieval: RetrievalIndex) -> None:
        self._db = db
        self._events = events
        self._retrieval = retrieval

    def store_note(
        self,
        user_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note:
        """Save a new note for the user; returns it with its `note-<uuid4>` id.

        Raises:
            ToolArgumentsError: empty or oversized content, bad tags.
        """
        note = Note(
            note_id=f"note-{uuid.uuid4()}", user_id=user_id, content=_check_content(content),
            tags=normalize_tags(tags), source="memory_save", created_at=now_iso(), label=label,
        )  # fmt: skip
        return self._write(msgspec.structs.replace(note, updated_at=note.created_at), None)

    def update_note(
        self,
        user_id: str,
        note_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note | None:
        """Replace a note's content (and tags, when given); None when the user has no such note."""
        current = self.get_note(user_id, note_id)
        if current is None:
            return None
        note = msgspec.structs.replace(
            current,
            content=_check_content(content),
            tags=current.tags if tags is None else normalize_tags(tags),
            source="memory_update",
            updated_at=now_iso(),
            label=label,
        )
        return self._write(note, note_id)

    def _write(self, note: Note, replacing: str | None) -> Note:
        session = notes_session_id(note.user_id)
        rows = note_rows(
            session, note.note_id, note.content, tags=note.tags, source=note.source,
            created_at=note.created_at, updated_at=note.updated_at, label=note.label,
        )  # fmt: skip
        self._retrieval.writer.embed_rows(rows)
        message = Message(
            role="user", content=note.content, tool_call_id=note.note_id, label=note.label
        )
        with self._db.write() as conn:
            self._events.ensure_session(conn, session, note.user_id)
            removed = self._remove(conn, note.user_id, replacing) if replacing else Changes()
            sequence = self._events.insert_event(conn, session, message)
            stamp_rows(rows, sequence)
            changes = removed.merge(self._retrieval.writer.write_rows(conn, rows))
        self._retrieval.apply(changes)
        return note

    def delete_note(self, user_id: str, note_id: str) -> bool:
        """Delete the user's note; False when the user has no such note."""
        if self.get_note(user_id, note_id) is None:
            return False
        with self._db.write() as conn:
            changes = self._remove(conn, user_id, note_id)
        self._retrieval.apply(changes)
        return True

    def _remove(self, conn: sqlite3.Connection, user_id: str, note_id: str) -> Changes:
        conn.execute(
            "DELETE FROM conversation_events WHERE session_id = ? "
            "AND json_extract(payload_json, '$.tool_call_id') = ?",
            (notes_session_id(user_id), note_id),
        )
        return self._retrieval.writer.delete_where(
            conn, "c.note_id = ? AND c.user_id = ?", (note_id, user_id)
        )

    def get_note(self, user_id: str, note_id: str) -> Note | None:
        """The user's note, or None (also when the id belongs to another user)."""
        row = self._db.query_one(
            "SELECT e.payload_json, e.created_at, e.provenance_json FROM conversation_events e "
            "JOIN sessions s ON s.session_id = e.session_id "
            "WHERE e.session_id = ? AND s.user_id = ? "
            "AND json_extract(e.payload_json, '$.tool_call_id') = ?",
            (notes_session_id(user_id), user_id, note_id),
        )
        if row is None:
            return None
        meta = self._db.query_one(
            "SELECT metadata_json FROM chunks WHERE note_id = ? AND user_id = ? "
            "ORDER BY chunk_key LIMIT 1",
            (note_id, user_id),
        )
        note = _note(user_id, note_id, row[0], row[1], meta[0] if meta else "{}")
        return msgspec.structs.replace(note, label=decode_label(row[2]))

    def list_notes(self, user_id: str) -> list[Note]:
        """All of the user's notes, oldest first."""
        rows = self._db.query(
            "SELECT e.payload_json, e.created_at, "
            "(SELECT c.metadata_json FROM chunks c WHERE c.user_id = s.user_id "
            " AND c.note_id = json_extract(e.payload_json, '$.tool_call_id') "
            " ORDER BY c.chunk_key LIMIT 1), e.provenance_json "
            "FROM conversation_events e JOIN sessions s ON s.session_id = e.session_id "
            "WHERE e.session_id = ? AND s.user_id = ? ORDER BY e.sequence",
            (notes_session_id(user_id), user_id),
        )
        notes = []
        for payload, created_at, meta, provenance in rows:
            note_id = _decode_message(payload).tool_call_id
            if note_id:
                note = _note(user_id, note_id, payload, created_at, meta or "{}")
                notes.append(msgspec.structs.replace(note, label=decode_label(provenance)))
        return notes


def _note(user_id: str, note_id: str, payload: str, created_at: str, meta_json: str) -> Note:
    message = _decode_message(payload)
    meta = _decode_meta(meta_json)
    return Note(
        note_id=note_id, user_id=user_id, content=message.text,
        tags=tuple(meta.get("tags", ())), source=meta.get("source", "memory_save"),
        created_at=meta.get("created_at", created_at),
        updated_at=meta.get("updated_at", created_at),
    )  # fmt: skip
