"""`oxydra store migrate`: a single-host SQLite store moves to PostgreSQL and back without
loss — every table's row count and SHA-256 match, and search finds the same things."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from oxydra.app.schemas import OWNER_SCHEMAS
from oxydra.core import Message
from oxydra.gateway._table import SessionTable
from oxydra.memory import MemoryStore
from oxydra.memory._pg import PgDatabase
from oxydra.memory._transfer import fingerprint
from oxydra.scheduler import Interval, ScheduleTable
from oxydra.scheduler.types import RunResult, ScheduleDefinition

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = OWNER_SCHEMAS  # what `oxydra store` opens with


def _fill(path: Path) -> None:
    with MemoryStore(path, schemas=SCHEMAS) as store:
        store.events.create_session("s1", user_id="alice")
        store.append_events(
            "s1",
            [
                Message(role="user", content="the invoice for the boat repair is INV-2231"),
                Message(role="assistant", content="noted, I will remind you on Friday"),
            ],
        )
        store.events.save_summary("s1", expected_epoch=0, summary="boat invoice", upper_sequence=2)
        store.events.write_scratchpad("s1", ["pay INV-2231"])
        store.notes.store_note("alice", "prefers email over phone", tags=["contact"])
        sessions = SessionTable(store.db)
        sessions.create("g-parent", "alice")
        sessions.create("g-child", "alice", parent_session_id="g-parent")
        table = ScheduleTable(store.db)
        now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

        definition = ScheduleDefinition(
            schedule_id="sch1", user_id="alice", name="daily", goal="check mail",
            cadence=Interval(every_secs=3600), timezone="UTC",
            created_at="2026-03-01T12:00:00+00:00", updated_at="2026-03-01T12:00:00+00:00",
            next_run_at="2026-03-01T12:00:00+00:00",
        )  # fmt: skip
        table.create(definition, max_per_user=50)
        table.claim_run("sch1", "run1", now)
        table.finish_run(
            RunResult(run_id="run1", status="success", output="all quiet", cost=0.0123),
            now=now, max_run_history=20, auto_disable_after_failures=5,
        )  # fmt: skip
        table.put_notification("alice", "sch1", "daily", "all quiet")


def _store(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxydra", "store", *args, "--workspace", str(cwd / "ws")],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_sqlite_to_postgres_and_back_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "ws" / ".oxydra" / "memory.db"
    _fill(source)
    with MemoryStore(source, schemas=SCHEMAS) as store:
        original = fingerprint(store.db)
        found = [h.text for h in store.retrieval.search("boat invoice", user_id="alice")]
    assert original["chunks_vec"].rows >= 3 and original["schedule_runs"].rows == 1

    status = _store("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "backend: sqlite" in status.stdout and "schedule_runs: 1 rows" in status.stdout

    to_pg = _store("migrate", "--to", pg_url, cwd=tmp_path)
    assert to_pg.returncode == 0, to_pg.stderr
    assert "match the source" in to_pg.stdout and 'backend = "postgres"' in to_pg.stdout
    with MemoryStore(PgDatabase(pg_url), schemas=SCHEMAS) as pg:
        assert fingerprint(pg.db) == original
        assert [h.text for h in pg.retrieval.search("boat invoice", user_id="alice")][:1] == (
            found[:1]
        )
        pg.events.create_session("s2", user_id="alice")  # identities continue past the copy
        pg.notes.store_note("alice", "a new note after the move")

    back = tmp_path / "back" / "memory.db"
    again = _store("migrate", "--to", str(back), "--set", "memory.backend=postgres",
                   "--set", f"memory.postgres_url={pg_url}", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    with MemoryStore(back, schemas=SCHEMAS) as returned:
        assert returned.events.get_session("s2") is not None
        assert [n.content for n in returned.notes.list_notes("alice")] == [
            "prefers email over phone",
            "a new note after the move",
        ]
        assert fingerprint(returned.db)["schedule_runs"] == original["schedule_runs"]


def test_migrating_into_a_store_that_holds_data_is_refused(tmp_path: Path, pg_url: str) -> None:
    _fill(tmp_path / "ws" / ".oxydra" / "memory.db")
    with MemoryStore(PgDatabase(pg_url), schemas=SCHEMAS) as pg:
        pg.events.create_session("already-here", user_id="bob")
    done = _store("migrate", "--to", pg_url, cwd=tmp_path)
    assert done.returncode == 1 and "already holds data (1 rows in sessions)" in done.stderr
    assert "Traceback" not in done.stderr
