"""`ScheduleTable`: the scheduler's SQL (sync; runs on the memory store's worker thread).

Theory of operation:

1. Every public method is one transaction on the memory database (`Database`), so each
   read-decide-write step (create under the per-user limit, edit, claim, finish) is atomic
   against another executor or process on the same file (writes take `BEGIN IMMEDIATE`).
2. Ownership: every user-facing call names the user, and a schedule of another user is
   reported exactly like a missing one, so ids cannot be probed.
3. Claiming a run inserts it as `running` and clears the schedule's `next_run_at` in one
   transaction, after checking that the schedule is still due and has no running run: two
   executors can never both start the same run, and the due index stops returning it.
4. Finishing a run (`finish_run`) updates the run, the schedule's counters, status and next
   run (the rules in `_rules.py`), and prunes the history, in one transaction. A run that
   is no longer `running` (already finished or recovered) is left alone.
5. At start-up every `running` run was in flight when the previous process stopped. The
   executor lists them (`interrupted_runs`) and finishes each as `interrupted`
   (`finish_interrupted`), either rescheduled by its cadence or, to be retried, due at
   once. A run that was itself such a retry says so in its stored output, so a run is
   retried at most once. `recover` finishes them all without retrying.
6. Several hosts on one PostgreSQL store: a claim locks the schedule row `FOR UPDATE SKIP
   LOCKED` and records the claiming host and a lease expiry on the run. Hosts renew the
   leases of their runs in flight; a `running` run whose lease expired belongs to a dead
   host and is listed (`interrupted_runs(expired_at=...)`) and finished as in rule 5 by
   whichever live host gets to it first (the re-check inside `finish_interrupted` makes
   that exactly one).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import msgspec

from oxydra.core.errors import SchedulerError
from oxydra.memory import Database
from oxydra.scheduler._rules import (
    after_run,
    apply_patch,
    retimed,
    slice_output,
    stamp,
    summarize,
)
from oxydra.scheduler.cadence import parse_instant
from oxydra.scheduler.types import (
    Cadence,
    OutputChunk,
    RunResult,
    ScheduleDefinition,
    ScheduleFilters,
    SchedulePatch,
    ScheduleRun,
)

SCHEDULE_SCHEMA = "oxydra.scheduler.migrations"
"""The migrations of these tables, for `Memory.open(..., schemas=...)`."""

_COLUMNS = (
    "schedule_id, user_id, name, goal, cadence_json, timezone, notification_policy, status, "
    "created_at, updated_at, next_run_at, last_run_at, last_run_status, consecutive_failures, "
    "channel_id, channel_context_id"
)
_RUN_COLUMNS = (
    "run_id, schedule_id, started_at, finished_at, status, output_summary, turn_count, cost, "
    "notified"
)
_cadence_decoder = msgspec.json.Decoder(Cadence)
_encoder = msgspec.json.Encoder()
INTERRUPTED_TEXT = (
    "Interrupted: the process stopped while this run was in flight; it was not retried."
)
RETRIED_TEXT = (
    "Interrupted: the process stopped while this run was in flight; it had made no "
    "side-effecting tool call, so it runs again at start-up."
)
MAX_PENDING_NOTIFICATIONS = 200


class InterruptedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run left `running` by a previous process.

    Attributes:
        run_id: the run.
        schedule_id: its schedule.
        started_at: when it was claimed (RFC 3339, whole seconds).
        was_retry: the run before it was interrupted and retried, so this one was the retry.
    """

    run_id: str
    schedule_id: str
    started_at: str
    was_retry: bool


def _definition(row: tuple[Any, ...]) -> ScheduleDefinition:
    return ScheduleDefinition(
        schedule_id=row[0], user_id=row[1], name=row[2], goal=row[3],
        cadence=_cadence_decoder.decode(row[4]), timezone=row[5], notification_policy=row[6],
        status=row[7], created_at=row[8], updated_at=row[9], next_run_at=row[10],
        last_run_at=row[11], last_run_status=row[12], consecutive_failures=row[13],
        channel_id=row[14], channel_context_id=row[15],
    )  # fmt: skip


def _run(row: tuple[Any, ...]) -> ScheduleRun:
    return ScheduleRun(
        run_id=row[0], schedule_id=row[1], started_at=row[2], finished_at=row[3],
        status=row[4], output_summary=row[5], turn_count=row[6], cost=row[7],
        notified=bool(row[8]),
    )  # fmt: skip


def _missing(schedule_id: str) -> SchedulerError:
    return SchedulerError(f"no schedule {schedule_id!r} found for this user")


class ScheduleTable:
    """`schedules`, `schedule_runs` and `scheduled_notifications` (sync; one thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- the user's schedules ---------------------------------------------------------

    def create(self, definition: ScheduleDefinition, *, max_per_user: int) -> ScheduleDefinition:
        """Insert a new schedule unless the user is at the limit (completed ones don't count).

        Raises:
            SchedulerError: the user already has `max_per_user` schedules.
        """
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT count(*) FROM schedules WHERE user_id = ? AND status != 'completed'",
                (definition.user_id,),
            ).fetchone()
            if row[0] >= max_per_user:
                raise SchedulerError(
                    f"schedule limit reached ({max_per_user} per user); delete or let some "
                    "complete first"
                )
            self._write(conn, definition, insert=True)
        return definition

    def get(self, user_id: str, schedule_id: str) -> ScheduleDefinition:
        """The user's schedule.

        Raises:
            SchedulerError: no such schedule of this user.
        """
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ? AND user_id = ?",
            (schedule_id, user_id),
        )
        if row is None:
            raise _missing(schedule_id)
        return _definition(row)

    def search(
        self, user_id: str, filters: ScheduleFilters
    ) -> tuple[list[ScheduleDefinition], int]:
        """One page of the user's schedules, newest first, and how many match in all."""
        where, params = _filter_sql(user_id, filters)
        with self._db.read() as conn:
            total = conn.execute(f"SELECT count(*) FROM schedules WHERE {where}", params)
            count = int(total.fetchone()[0])
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE {where} "
                "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (*params, filters.limit, filters.offset),
            ).fetchall()
        return [_definition(r) for r in rows], count

    def edit(
        self,
        user_id: str,
        schedule_id: str,
        patch: SchedulePatch,
        *,
        now: datetime,
        min_interval_secs: int,
    ) -> ScheduleDefinition:
        """Apply an edit by the rules of `_rules.apply_patch`.

        Raises:
            SchedulerError: not the user's schedule, or the edit is invalid.
        """
        with self._db.write() as conn:
            current = self._get_in(conn, user_id, schedule_id)
            updated = apply_patch(current, patch, now=now, min_interval_secs=min_interval_secs)
            self._write(conn, updated, insert=False)
        return updated

    def delete(self, user_id: str, schedule_id: str) -> None:
        """Delete the user's schedule and its run history.

        Raises:
            SchedulerError: not the user's schedule.
        """
        with self._db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM schedules WHERE schedule_id = ? AND user_id = ?",
                (schedule_id, user_id),
            )
            if cursor.rowcount == 0:
                raise _missing(schedule_id)

    def runs(self, user_id: str, schedule_id: str, limit: int) -> list[ScheduleRun]:
        """The schedule's latest runs, newest first (summaries, not full output)."""
        with self._db.read() as conn:
            self._get_in(conn, user_id, schedule_id)
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ? "
                "ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (schedule_id, limit),
            ).fetchall()
        return [_run(r) for r in rows]

    def run_output(self, user_id: str, run_id: str, offset: int, max_chars: int) -> OutputChunk:
        """A slice of a run's full output (see `_rules.slice_output`).

        Raises:
            SchedulerError: no such run of this user's schedules.
        """
        row = self._db.query_one(
            "SELECT r.output, r.output_summary FROM schedule_runs r "
            "JOIN schedules s ON s.schedule_id = r.schedule_id "
            "WHERE r.run_id = ? AND s.user_id = ?",
            (run_id, user_id),
        )
        if row is None:
            raise SchedulerError(f"no run {run_id!r} found for this user")
        text = row[0] if row[0] is not None else row[1] or ""
        chunk, start, remaining, total = slice_output(text, offset, max_chars)
        return OutputChunk(
            run_id=run_id, offset=start, max_chars=max_chars, chunk=chunk,
            remaining=remaining, total_length=total,
        )  # fmt: skip

    # ---- the executor -----------------------------------------------------------------

    def due(self, now: datetime, limit: int) -> list[ScheduleDefinition]:
        """Active schedules whose next run is at or before `now`, most overdue first."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM schedules WHERE status = 'active' "
            "AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT ?",
            (stamp(now), limit),
        )
        return [_definition(r) for r in rows]

    def next_due_at(self) -> str | None:
        """The earliest next run of any active schedule."""
        row = self._db.query_one(
            "SELECT min(next_run_at) FROM schedules "
            "WHERE status = 'active' AND next_run_at IS NOT NULL"
        )
        return row[0] if row else None

    def retime(self, now: datetime, jump_secs: float) -> int:
        """Move next runs after a wall-clock jump (`_rules.retimed`); returns how many moved."""
        moved = 0
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT schedule_id, cadence_json, next_run_at FROM schedules "
                "WHERE status = 'active' AND next_run_at IS NOT NULL"
            ).fetchall()
            for schedule_id, cadence_json, next_run_at in rows:
                cadence = _cadence_decoder.decode(cadence_json)
                wanted = retimed(cadence, parse_instant(next_run_at), now, jump_secs)
                if wanted is not None:
                    conn.execute(
                        "UPDATE schedules SET next_run_at = ? WHERE schedule_id = ?",
                        (wanted, schedule_id),
                    )
                    moved += 1
        return moved

    def claim_run(
        self,
        schedule_id: str,
        run_id: str,
        now: datetime,
        holder: str | None = None,
        lease_until: float | None = None,
    ) -> ScheduleDefinition | None:
        """Start a run of a due schedule (rule 3); None when it is no longer due or running.

        On PostgreSQL the schedule row is locked `FOR UPDATE SKIP LOCKED`: hosts claiming at
        once skip each other's rows instead of queueing, and the one that gets it re-checks
        that it is still due. `holder` and `lease_until` record who runs it (rule 7).
        """
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgres" else ""
        with self._db.claim() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ? AND status = 'active' "
                f"AND next_run_at IS NOT NULL AND next_run_at <= ?{lock}",
                (schedule_id, stamp(now)),
            ).fetchone()
            if row is None or self._running_in(conn, schedule_id):
                return None
            conn.execute(
                "INSERT INTO schedule_runs(run_id, schedule_id, started_at, status, "
                "lease_holder, lease_until) VALUES (?, ?, ?, 'running', ?, ?)",
                (run_id, schedule_id, stamp(now), holder, lease_until),
            )
            conn.execute(
                "UPDATE schedules SET next_run_at = NULL WHERE schedule_id = ?", (schedule_id,)
            )
        return _definition(row)

    def renew_leases(self, run_ids: list[str], holder: str, lease_until: float) -> int:
        """Extend this host's leases on its runs in flight; how many it still holds."""
        if not run_ids:
            return 0
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE schedule_runs SET lease_until = ? WHERE status = 'running' "
                "AND lease_holder = ? AND run_id IN (SELECT value FROM json_each(?, '$'))",
                (lease_until, holder, _encoder.encode(run_ids).decode()),
            )
            return int(cursor.rowcount)

    def finish_run(
        self,
        result: RunResult,
        *,
        now: datetime,
        max_run_history: int,
        auto_disable_after_failures: int,
    ) -> ScheduleDefinition | None:
        """Record a run's end and reschedule (rule 4); None if the run or schedule is gone."""
        with self._db.write() as conn:
            return self._finish_in(
                conn, result, now=now, max_run_history=max_run_history,
                auto_disable_after_failures=auto_disable_after_failures,
            )  # fmt: skip

    def recover(
        self, *, now: datetime, max_run_history: int, auto_disable_after_failures: int
    ) -> list[ScheduleDefinition]:
        """Finish every `running` run as `interrupted` (rule 5); the schedules after it."""
        with self._db.write() as conn:
            running = conn.execute(
                "SELECT run_id FROM schedule_runs WHERE status = 'running'"
            ).fetchall()
            recovered = [
                self._finish_in(
                    conn,
                    RunResult(run_id=r[0], status="interrupted", output=INTERRUPTED_TEXT),
                    now=now,
                    max_run_history=max_run_history,
                    auto_disable_after_failures=auto_disable_after_failures,
                )
                for r in running
            ]
        return [d for d in recovered if d is not None]

    def interrupted_runs(self, expired_at: float | None = None) -> list[InterruptedRun]:
        """The runs a previous process left `running` (rule 5); with `expired_at`, only
        those whose lease ended before it (a dead host's, rule 7)."""
        found: list[InterruptedRun] = []
        sql = "SELECT run_id, schedule_id, started_at FROM schedule_runs WHERE status = 'running'"
        params: tuple[float, ...] = ()
        if expired_at is not None:
            sql += " AND (lease_until IS NULL OR lease_until < ?)"
            params = (expired_at,)
        for run_id, schedule_id, started_at in self._db.query(sql, params):
            before = self._db.query_one(
                "SELECT status, output_summary FROM schedule_runs WHERE schedule_id = ? "
                "AND run_id != ? AND status != 'running' ORDER BY started_at DESC, rowid DESC "
                "LIMIT 1",
                (schedule_id, run_id),
            )
            was_retry = before is not None and tuple(before) == ("interrupted", RETRIED_TEXT)
            run = InterruptedRun(
                run_id=run_id, schedule_id=schedule_id, started_at=started_at, was_retry=was_retry
            )
            found.append(run)
        return found

    def finish_interrupted(
        self,
        run_id: str,
        *,
        retry: bool,
        output: str,
        now: datetime,
        max_run_history: int,
        auto_disable_after_failures: int,
        expired_at: float | None = None,
    ) -> ScheduleDefinition | None:
        """Finish an interrupted run; with `retry`, an active schedule is due at once.

        With `expired_at`, only while its lease is still expired: a host that renewed it
        in the meantime is alive and keeps its run.
        """
        with self._db.write() as conn:
            if (
                expired_at is not None
                and not conn.execute(
                    "SELECT 1 FROM schedule_runs WHERE run_id = ? AND status = 'running' "
                    "AND (lease_until IS NULL OR lease_until < ?)",
                    (run_id, expired_at),
                ).fetchone()
            ):
                return None
            before = conn.execute(
                "SELECT s.status FROM schedules s JOIN schedule_runs r "
                "ON r.schedule_id = s.schedule_id WHERE r.run_id = ?",
                (run_id,),
            ).fetchone()
            result = RunResult(
                run_id=run_id, status="interrupted", output=RETRIED_TEXT if retry else output
            )
            definition = self._finish_in(
                conn, result, now=now, max_run_history=max_run_history,
                auto_disable_after_failures=auto_disable_after_failures,
            )  # fmt: skip
            if retry and definition is not None and before and before[0] == "active":
                due = stamp(now)
                conn.execute(
                    "UPDATE schedules SET status = 'active', next_run_at = ? WHERE schedule_id = ?",
                    (due, definition.schedule_id),
                )
                definition = msgspec.structs.replace(definition, status="active", next_run_at=due)
        return definition

    # ---- notifications no client has seen yet -----------------------------------------

    def put_notification(
        self, user_id: str, schedule_id: str, schedule_name: str | None, message: str
    ) -> None:
        """Keep a notification for the user's next client (the oldest beyond 200 dropped)."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO scheduled_notifications(user_id, schedule_id, schedule_name, "
                "message) VALUES (?, ?, ?, ?)",
                (user_id, schedule_id, schedule_name, message),
            )
            conn.execute(
                "DELETE FROM scheduled_notifications WHERE user_id = ? AND notification_id NOT "
                "IN (SELECT notification_id FROM scheduled_notifications WHERE user_id = ? "
                "ORDER BY notification_id DESC LIMIT ?)",
                (user_id, user_id, MAX_PENDING_NOTIFICATIONS),
            )

    def take_notifications(self, user_id: str) -> list[tuple[str, str | None, str]]:
        """Remove and return the user's kept notifications, oldest first."""
        with self._db.write() as conn:
            rows = conn.execute(
                "DELETE FROM scheduled_notifications WHERE user_id = ? "
                "RETURNING notification_id, schedule_id, schedule_name, message",
                (user_id,),
            ).fetchall()
        return [(r[1], r[2], r[3]) for r in sorted(rows)]

    # ---- helpers ----------------------------------------------------------------------

    def _get_in(
        self, conn: sqlite3.Connection, user_id: str, schedule_id: str
    ) -> ScheduleDefinition:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ? AND user_id = ?",
            (schedule_id, user_id),
        ).fetchone()
        if row is None:
            raise _missing(schedule_id)
        return _definition(row)

    @staticmethod
    def _running_in(conn: sqlite3.Connection, schedule_id: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM schedule_runs WHERE schedule_id = ? AND status = 'running'",
                (schedule_id,),
            ).fetchone()
            is not None
        )

    @staticmethod
    def _write(conn: sqlite3.Connection, d: ScheduleDefinition, *, insert: bool) -> None:
        values = (
            d.user_id, d.name, d.goal, _encoder.encode(d.cadence).decode(), d.timezone,
            d.notification_policy, d.status, d.created_at, d.updated_at, d.next_run_at,
            d.last_run_at, d.last_run_status, d.consecutive_failures, d.channel_id,
            d.channel_context_id,
        )  # fmt: skip
        if insert:
            conn.execute(
                f"INSERT INTO schedules({_COLUMNS}) VALUES (?{', ?' * 15})",
                (d.schedule_id, *values),
            )
            return
        conn.execute(
            "UPDATE schedules SET user_id = ?, name = ?, goal = ?, cadence_json = ?, "
            "timezone = ?, notification_policy = ?, status = ?, created_at = ?, updated_at = ?, "
            "next_run_at = ?, last_run_at = ?, last_run_status = ?, consecutive_failures = ?, "
            "channel_id = ?, channel_context_id = ? WHERE schedule_id = ?",
            (*values, d.schedule_id),
        )

    def _finish_in(
        self,
        conn: sqlite3.Connection,
        result: RunResult,
        *,
        now: datetime,
        max_run_history: int,
        auto_disable_after_failures: int,
    ) -> ScheduleDefinition | None:
        found = conn.execute(
            "SELECT schedule_id, started_at FROM schedule_runs "
            "WHERE run_id = ? AND status = 'running'",
            (result.run_id,),
        ).fetchone()
        if found is None:
            return None
        schedule_id, started_at = found
        conn.execute(
            "UPDATE schedule_runs SET finished_at = ?, status = ?, output_summary = ?, "
            "output = ?, turn_count = ?, cost = ?, notified = ? WHERE run_id = ?",
            (stamp(now), result.status, summarize(result.output), result.output,
             result.turn_count, result.cost, int(result.notified), result.run_id),
        )  # fmt: skip
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ?", (schedule_id,)
        ).fetchone()
        current = _definition(row)
        change = after_run(
            current, result.status, now=now,
            auto_disable_after_failures=auto_disable_after_failures,
        )  # fmt: skip
        updated = msgspec.structs.replace(
            current,
            status=change.status,
            next_run_at=change.next_run_at,
            consecutive_failures=change.consecutive_failures,
            last_run_at=started_at,
            last_run_status=result.status,
        )
        self._write(conn, updated, insert=False)
        conn.execute(
            "DELETE FROM schedule_runs WHERE schedule_id = ? AND status != 'running' AND "
            "run_id NOT IN (SELECT run_id FROM schedule_runs WHERE schedule_id = ? "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?)",
            (schedule_id, schedule_id, max_run_history),
        )
        return updated


def _filter_sql(user_id: str, filters: ScheduleFilters) -> tuple[str, tuple[Any, ...]]:
    clauses, params = ["user_id = ?"], [user_id]
    if filters.name:
        escaped = filters.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not
        clauses.append("lower(coalesce(name, '')) LIKE lower(?) ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if filters.status:
        clauses.append("status = ?")
        params.append(filters.status)
    if filters.cadence_type:
        clauses.append("json_extract(cadence_json, '$.type') = ?")
        params.append(filters.cadence_type)
    if filters.notification:
        clauses.append("notification_policy = ?")
        params.append(filters.notification)
    return " AND ".join(clauses), tuple(params)
