"""The durable side: the per-turn usage ledger and the span trees of the last N turns.

One SQLite file, `<workspace>/.oxydra/observability.db` (WAL). The guest writes through
`StoreWriter`, a daemon thread fed by a bounded queue: a turn hands its rows over and never
waits on the disk; when the queue is full the row is dropped and counted (`dropped`), as a
slow disk must not slow the agent. The thread writes in batches, one transaction each.
Readers (`oxydra usage`, `oxydra trace`) open the file read-only, so they work while the
guest runs.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from oxydra.observability._records import SpanRecord, TurnUsage

DB_NAME = "observability.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    turn_id TEXT NOT NULL, started_at REAL NOT NULL, duration_s REAL NOT NULL,
    person TEXT NOT NULL, session TEXT NOT NULL, agent TEXT NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, channel TEXT NOT NULL, schedule TEXT NOT NULL, outcome TEXT NOT NULL,
    trace_id TEXT NOT NULL, calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL, unpriced_calls INTEGER NOT NULL,
    priced_cost_usd REAL NOT NULL, cost_usd REAL
);
CREATE INDEX IF NOT EXISTS usage_started ON usage (started_at);
CREATE TABLE IF NOT EXISTS traces (
    turn_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, recorded_at REAL NOT NULL,
    spans BLOB NOT NULL
);
"""
_USAGE_FIELDS = TurnUsage.__struct_fields__
_spans_encoder = msgspec.json.Encoder()
_spans_decoder = msgspec.json.Decoder(list[SpanRecord])


def db_path(workspace: Path) -> Path:
    """Where a workspace keeps its ledger and span store."""
    return workspace / ".oxydra" / DB_NAME


def open_db(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store; the writer creates the schema, readers only read."""
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False
    )  # handed to the writer
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


def insert_usage(db: sqlite3.Connection, row: TurnUsage) -> None:
    """Append one ledger row."""
    values = [getattr(row, f) for f in _USAGE_FIELDS]
    columns = ", ".join((*_USAGE_FIELDS, "cost_usd"))
    marks = ", ".join("?" * (len(values) + 1))
    db.execute(f"INSERT INTO usage ({columns}) VALUES ({marks})", [*values, row.cost_usd])


def insert_trace(
    db: sqlite3.Connection, turn_ids: Iterable[str], spans: list[SpanRecord], keep: int
) -> None:
    """Store a finished trace under each of its turns' ids; keep only the last `keep` turns."""
    blob = _spans_encoder.encode(spans)
    trace_id = spans[0].trace_id if spans else ""
    now = time.time()
    for turn_id in turn_ids:
        db.execute(
            "INSERT OR REPLACE INTO traces (turn_id, trace_id, recorded_at, spans) "
            "VALUES (?, ?, ?, ?)",
            (turn_id, trace_id, now, blob),
        )
    db.execute(
        "DELETE FROM traces WHERE rowid NOT IN "
        "(SELECT rowid FROM traces ORDER BY recorded_at DESC, rowid DESC LIMIT ?)",
        (keep,),
    )


def load_trace(db: sqlite3.Connection, turn_id: str) -> list[SpanRecord] | None:
    """The spans stored for a turn (a unique id prefix is enough), or None."""
    exact = db.execute("SELECT spans FROM traces WHERE turn_id = ?", (turn_id,)).fetchone()
    if exact is not None:
        return _spans_decoder.decode(exact[0])
    rows = db.execute(
        "SELECT spans FROM traces WHERE turn_id LIKE ? ESCAPE '\\' LIMIT 2",
        (_like_prefix(turn_id),),
    ).fetchall()
    return _spans_decoder.decode(rows[0][0]) if len(rows) == 1 else None


def recent_turns(db: sqlite3.Connection, limit: int = 20) -> list[tuple[str, float]]:
    """(turn id, recorded at) of the newest stored traces."""
    return db.execute(
        "SELECT turn_id, recorded_at FROM traces ORDER BY recorded_at DESC LIMIT ?", (limit,)
    ).fetchall()


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class StoreWriter:
    """The one thread that writes the store (see the module docstring).

    Rows wait in a deque; the thread wakes every `interval` seconds (or on `flush`) and
    writes what is there in one transaction. Appending never signals the thread, so a turn
    does not hand the interpreter to it: a wake-up per turn cost more than the row itself.
    """

    def __init__(
        self, path: Path, *, keep_turns: int, max_pending: int = 4096, interval: float = 0.5
    ) -> None:
        self.path = path
        self.keep_turns = keep_turns
        self.max_pending = max_pending
        self.interval = interval
        self.dropped = 0
        self._pending: collections.deque[tuple[str, object]] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._db = open_db(path)
        self._thread = threading.Thread(target=self._run, name="oxydra-obs-store", daemon=True)
        self._thread.start()

    def usage(self, row: TurnUsage) -> None:
        """Queue one ledger row."""
        self._put(("usage", row))

    def trace(
        self, turn_ids: list[str], spans: list[Any], convert: Callable[[Any], SpanRecord]
    ) -> None:
        """Queue one finished trace; `convert` makes each span a record on this thread."""
        if self.keep_turns and turn_ids:
            self._put(("trace", (turn_ids, spans, convert)))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown)."""
        done = threading.Event()
        self._pending.append(("flush", done))
        self._wake.set()
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _put(self, item: tuple[str, object]) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
        else:
            self._pending.append(item)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                self._db.close()
                return

    def _drain(self) -> None:
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        flushes = [p for kind, p in batch if kind == "flush"]
        rows = [item for item in batch if item[0] != "flush"]
        if rows:
            try:
                self._db.execute("BEGIN")
                for kind, payload in rows:
                    self._write(kind, payload)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self.dropped += len(rows)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        for done in flushes:
            assert isinstance(done, threading.Event)
            done.set()

    def _write(self, kind: str, payload: object) -> None:
        if kind == "usage":
            assert isinstance(payload, TurnUsage)
            insert_usage(self._db, payload)
        else:
            assert isinstance(payload, tuple)
            turn_ids, spans, convert = payload
            insert_trace(self._db, turn_ids, [convert(s) for s in spans], self.keep_turns)
