"""User notes: what the model saves with `memory_save` (sync core).

A user's notes live in the session `memory:{user_id}`, owned by that user. A note is one
event there (`{role: "user", content, tool_call_id: note_id}`) plus its chunks, whose
`note_id` column and metadata (`note_id, source, tags, created_at, updated_at,
schema_version`) make it searchable and filterable. Every read, update and delete is
keyed by both note id and user id, so one user can never reach another's note, even with
its id. An update keeps the note's id and `created_at` (upstream reset the latter).
A note written from a tainted step keeps the step's label (on its event and chunks), so
a later turn that retrieves it is tainted; an update replaces the label with its own.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from oxydra.core import Label, Message, ToolArgumentsError
from oxydra.core.provenance import decode_label
from oxydra.memory._chunks import Changes, note_rows, stamp_rows
from oxydra.memory._db import Database
from oxydra.memory._events import EventLog
from oxydra.memory._retrieval import RetrievalIndex
from oxydra.memory._text import normalize_tags, now_iso
from oxydra.memory._types import Note

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
