"""The schedule store on a real database file: round trips, ownership, claims, history."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oxydra.core.errors import SchedulerError
from oxydra.memory import HashedEmbedder, Memory, MemoryStore
from oxydra.scheduler import (
    SCHEDULE_SCHEMA,
    Cron,
    Interval,
    Once,
    RunResult,
    ScheduleFilters,
    SchedulePatch,
    ScheduleStore,
    ScheduleTable,
)
from oxydra.scheduler._rules import stamp
from oxydra.wire.gateway import ScheduledNotification
from tests.scheduler.conftest import T0, FakeClock, make_schedule

HISTORY = {"max_run_history": 3, "auto_disable_after_failures": 5}


def raw_rows(db_path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL on a connection of its own (as another process would)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class TestRoundTrips:
    async def test_a_created_schedule_reads_back_identical(self, store: ScheduleStore) -> None:
        created = await make_schedule(
            store,
            T0,
            cadence=Cron(expression="0 9 * * 1-5", timezone="Asia/Kolkata"),
            timezone="Asia/Kolkata",
            name="standup",
            notification_policy="conditional",
            channel_id="tui",
            channel_context_id="sess-1",
        )
        assert await store.get("alice", created.schedule_id) == created
        assert created.next_run_at == "2026-03-02T03:30:00+00:00"
        assert (created.status, created.consecutive_failures) == ("active", 0)

    async def test_cadences_are_stored_in_the_rust_json_shape(
        self, store: ScheduleStore, db_path: Path
    ) -> None:
        await make_schedule(store, T0, cadence=Interval(every_secs=120))
        await make_schedule(store, T0, cadence=Once(at="2026-03-02T00:00:00+00:00"))
        rows = raw_rows(db_path, "SELECT cadence_json FROM schedules ORDER BY rowid")
        assert [json.loads(r[0]) for r in rows] == [
            {"type": "interval", "every_secs": 120},
            {"type": "once", "at": "2026-03-02T00:00:00+00:00"},
        ]

    async def test_a_bad_cadence_is_refused_before_anything_is_stored(
        self, store: ScheduleStore
    ) -> None:
        with pytest.raises(SchedulerError, match="below the minimum"):
            await make_schedule(store, T0, cadence=Interval(every_secs=10))
        assert (await store.search("alice", ScheduleFilters()))[1] == 0

    async def test_the_per_user_limit_ignores_completed_and_other_users(
        self, store: ScheduleStore, db_path: Path
    ) -> None:
        first = await make_schedule(store, T0, max_per_user=2)
        await make_schedule(store, T0, max_per_user=2)
        await make_schedule(store, T0, user="bob", max_per_user=2)
        with pytest.raises(SchedulerError, match="limit reached"):
            await make_schedule(store, T0, max_per_user=2)
        await store.edit(
            "alice", first.schedule_id, SchedulePatch(status="paused"), now=T0, min_interval_secs=60
        )
        with pytest.raises(SchedulerError, match="limit reached"):
            await make_schedule(store, T0, max_per_user=2)
        raw_rows(
            db_path,
            "UPDATE schedules SET status = 'completed' WHERE schedule_id = ?",
            (first.schedule_id,),
        )
        await make_schedule(store, T0, max_per_user=2)


class TestOwnership:
    @pytest.fixture
    async def bobs(self, store: ScheduleStore) -> str:
        return (await make_schedule(store, T0, user="bob")).schedule_id

    async def test_another_users_schedule_looks_missing_everywhere(
        self, store: ScheduleStore, bobs: str
    ) -> None:
        calls = [
            store.get("alice", bobs),
            store.edit("alice", bobs, SchedulePatch(name="x"), now=T0, min_interval_secs=60),
            store.delete("alice", bobs),
            store.runs("alice", bobs),
        ]
        for call in calls:
            with pytest.raises(SchedulerError, match="no schedule"):
                await call
        assert (await store.get("bob", bobs)).name is None

    async def test_another_users_run_output_is_not_readable(
        self, store: ScheduleStore, bobs: str
    ) -> None:
        claimed = await store.claim_run(bobs, T0 + timedelta(hours=1))
        assert claimed is not None
        run_id, _ = claimed
        await store.record_run_and_reschedule(
            RunResult(run_id=run_id, status="success", output="secret"), now=T0, **HISTORY
        )
        with pytest.raises(SchedulerError, match="no run"):
            await store.run_output("alice", run_id)
        assert (await store.run_output("bob", run_id)).chunk == "secret"

    async def test_search_only_lists_the_callers_schedules(
        self, store: ScheduleStore, bobs: str
    ) -> None:
        mine = await make_schedule(store, T0)
        found, total = await store.search("alice", ScheduleFilters())
        assert [s.schedule_id for s in found] == [mine.schedule_id] and total == 1


class TestSearch:
    @pytest.fixture(params=["sqlite", "postgres"])
    async def memory(self, request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Memory]:
        """Search on either store (PostgreSQL's LIKE minds case, SQLite's does not)."""
        target: Any = db_path
        if request.param == "postgres":
            from oxydra.memory._pg import PgDatabase

            target = PgDatabase(request.getfixturevalue("pg_url"))
        opened = await Memory.open(target, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA])
        yield opened
        await opened.close()

    @pytest.fixture
    async def many(self, store: ScheduleStore, clock: FakeClock) -> list[str]:
        ids = []
        for i in range(7):
            cadence = (
                Interval(every_secs=600) if i % 2 else Cron(expression="0 9 * * *", timezone="UTC")
            )
            created = await make_schedule(
                store,
                clock.advance(seconds=1),
                cadence=cadence,
                name=f"job_{i}%",
                notification_policy="never" if i == 3 else "always",
            )
            ids.append(created.schedule_id)
        return ids

    async def test_pages_are_newest_first_with_a_total(
        self, store: ScheduleStore, many: list[str]
    ) -> None:
        page, total = await store.search("alice", ScheduleFilters(limit=3, offset=2))
        assert total == 7
        assert [s.schedule_id for s in page] == list(reversed(many))[2:5]

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (ScheduleFilters(name="JOB_3"), [3]),
            (ScheduleFilters(name="_5%"), [5]),
            (ScheduleFilters(cadence_type="interval"), [5, 3, 1]),
            (ScheduleFilters(notification="never"), [3]),
            (ScheduleFilters(status="paused"), []),
        ],
    )
    async def test_filters(
        self, store: ScheduleStore, many: list[str], filters: ScheduleFilters, expected: list[int]
    ) -> None:
        page, total = await store.search("alice", filters)
        assert [s.schedule_id for s in page] == [many[i] for i in expected]
        assert total == len(expected)


class TestClaims:
    async def test_due_lists_active_schedules_most_overdue_first(
        self, store: ScheduleStore
    ) -> None:
        late = await make_schedule(store, T0 - timedelta(hours=3))
        early = await make_schedule(store, T0 - timedelta(hours=1))
        paused = await make_schedule(store, T0 - timedelta(hours=5))
        await store.edit(
            "alice",
            paused.schedule_id,
            SchedulePatch(status="paused"),
            now=T0,
            min_interval_secs=60,
        )
        await make_schedule(store, T0)  # due an hour from now
        due = await store.due(T0, 10)
        assert [s.schedule_id for s in due] == [late.schedule_id, early.schedule_id]
        assert [s.schedule_id for s in await store.due(T0, 1)] == [late.schedule_id]

    async def test_a_claimed_run_is_running_and_no_longer_due(
        self, store: ScheduleStore, db_path: Path
    ) -> None:
        created = await make_schedule(store, T0 - timedelta(hours=1))
        claimed = await store.claim_run(created.schedule_id, T0)
        assert claimed is not None
        assert await store.due(T0, 10) == []
        assert await store.claim_run(created.schedule_id, T0) is None
        rows = raw_rows(db_path, "SELECT status, finished_at FROM schedule_runs")
        assert rows == [("running", None)]

    async def test_a_schedule_not_yet_due_cannot_be_claimed(self, store: ScheduleStore) -> None:
        created = await make_schedule(store, T0)
        assert await store.claim_run(created.schedule_id, T0 + timedelta(minutes=59)) is None

    async def test_two_connections_claiming_at_once_start_one_run(
        self, store: ScheduleStore, db_path: Path
    ) -> None:
        created = await make_schedule(store, T0 - timedelta(hours=1))

        def claim_elsewhere() -> object:
            with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as other:
                return ScheduleTable(other.db).claim_run(created.schedule_id, "run-b", T0)

        results = await asyncio.gather(
            store.claim_run(created.schedule_id, T0, run_id="run-a"),
            asyncio.to_thread(claim_elsewhere),
        )
        assert sum(r is not None for r in results) == 1

    async def test_an_edit_during_a_run_does_not_allow_a_second_run(
        self, store: ScheduleStore
    ) -> None:
        created = await make_schedule(store, T0 - timedelta(hours=1))
        assert await store.claim_run(created.schedule_id, T0) is not None
        await store.edit(
            "alice",
            created.schedule_id,
            SchedulePatch(cadence=Interval(every_secs=60)),
            now=T0 - timedelta(minutes=5),
            min_interval_secs=60,
        )
        assert len(await store.due(T0, 10)) == 1
        assert await store.claim_run(created.schedule_id, T0) is None


class TestRecording:
    async def run_once(
        self,
        store: ScheduleStore,
        schedule_id: str,
        at: FakeClock,
        status: str = "success",
        output: str = "ok",
    ) -> str:
        claimed = await store.claim_run(schedule_id, at())
        assert claimed is not None
        result = RunResult(
            run_id=claimed[0], status=status, output=output, turn_count=2, cost=0.01, notified=True
        )  # type: ignore[arg-type]
        await store.record_run_and_reschedule(result, now=at.advance(seconds=30), **HISTORY)
        return claimed[0]

    async def test_finishing_updates_the_run_and_reschedules_from_the_end(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        created = await make_schedule(store, clock.now - timedelta(hours=1))
        run_id = await self.run_once(store, created.schedule_id, clock, output="é" * 400)
        after = await store.get("alice", created.schedule_id)
        assert after.next_run_at == stamp(clock.now + timedelta(hours=1))
        assert (after.last_run_at, after.last_run_status) == (stamp(T0), "success")
        [run] = await store.runs("alice", created.schedule_id)
        assert (run.run_id, run.status, run.turn_count, run.cost, run.notified) == (
            run_id,
            "success",
            2,
            0.01,
            True,
        )
        assert run.finished_at == stamp(clock.now) and run.output_summary.endswith("...")
        full = await store.run_output("alice", run_id, 0, 8000)
        assert full.chunk == "é" * 400 and full.total_length == 800 and full.remaining == 0

    async def test_history_is_pruned_to_the_newest_runs(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        created = await make_schedule(
            store, clock.now - timedelta(hours=1), cadence=Interval(every_secs=60)
        )
        ids = []
        for _ in range(5):
            ids.append(await self.run_once(store, created.schedule_id, clock))
            clock.advance(minutes=2)
        runs = await store.runs("alice", created.schedule_id, limit=20)
        assert [r.run_id for r in runs] == list(reversed(ids))[:3]

    async def test_failures_count_up_and_disable_the_schedule(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        created = await make_schedule(
            store, clock.now - timedelta(hours=1), cadence=Interval(every_secs=60)
        )
        for _ in range(5):
            await self.run_once(store, created.schedule_id, clock, status="failed")
            clock.advance(minutes=2)
        after = await store.get("alice", created.schedule_id)
        assert (after.status, after.consecutive_failures, after.next_run_at) == (
            "disabled",
            5,
            None,
        )

    async def test_a_run_is_finished_only_once(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        created = await make_schedule(store, clock.now - timedelta(hours=1))
        claimed = await store.claim_run(created.schedule_id, clock.now)
        assert claimed is not None
        result = RunResult(run_id=claimed[0], status="failed", output="Error: x")
        assert await store.record_run_and_reschedule(result, now=clock.now, **HISTORY)
        assert await store.record_run_and_reschedule(result, now=clock.now, **HISTORY) is None
        assert (await store.get("alice", created.schedule_id)).consecutive_failures == 1

    async def test_a_schedule_deleted_during_its_run_is_not_recreated(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        created = await make_schedule(store, clock.now - timedelta(hours=1))
        claimed = await store.claim_run(created.schedule_id, clock.now)
        assert claimed is not None
        await store.delete("alice", created.schedule_id)
        result = RunResult(run_id=claimed[0], status="success", output="done")
        assert await store.record_run_and_reschedule(result, now=clock.now, **HISTORY) is None

    async def test_recovery_marks_runs_left_running_as_interrupted(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as crashed:
            table = ScheduleTable(crashed.db)
            schedule = due_schedule_via_sync_core(table)
            assert table.claim_run(schedule, "lost-run", T0) is not None
        with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as restarted:
            table = ScheduleTable(restarted.db)
            [after] = table.recover(now=T0 + timedelta(hours=6), **HISTORY)
            assert after.last_run_status == "interrupted" and after.consecutive_failures == 0
            assert after.next_run_at == stamp(T0 + timedelta(hours=7))
            [run] = table.runs("alice", schedule, 5)
            assert (run.status, run.finished_at) == ("interrupted", stamp(T0 + timedelta(hours=6)))
            assert table.recover(now=T0 + timedelta(hours=7), **HISTORY) == []


def due_schedule_via_sync_core(table: ScheduleTable) -> str:
    """A due interval schedule created through the sync core."""
    from oxydra.scheduler import ScheduleDefinition

    definition = ScheduleDefinition(
        schedule_id="sched-1",
        user_id="alice",
        name=None,
        goal="g",
        cadence=Interval(every_secs=3600),
        created_at=stamp(T0),
        updated_at=stamp(T0),
        next_run_at=stamp(T0 - timedelta(minutes=1)),
    )
    table.create(definition, max_per_user=10)
    return definition.schedule_id


class TestOutbox:
    async def test_kept_notifications_are_handed_out_once_in_order(
        self, store: ScheduleStore
    ) -> None:
        for i in range(3):
            await store.put("alice", ScheduledNotification(schedule_id=f"s{i}", message=f"m{i}"))
        await store.put("bob", ScheduledNotification(schedule_id="b", message="bob's"))
        taken = await store.take("alice")
        assert [(f.schedule_id, f.message) for f in taken] == [
            ("s0", "m0"),
            ("s1", "m1"),
            ("s2", "m2"),
        ]
        assert await store.take("alice") == []
        assert [f.message for f in await store.take("bob")] == ["bob's"]

    async def test_only_the_newest_200_are_kept(self, table: ScheduleTable) -> None:
        for i in range(205):
            table.put_notification("alice", "s", None, f"m{i}")
        taken = table.take_notifications("alice")
        assert len(taken) == 200 and taken[0][2] == "m5" and taken[-1][2] == "m204"


class TestErrors:
    async def test_database_failures_surface_as_store_errors_never_sqlite3(
        self, store: ScheduleStore, db_path: Path
    ) -> None:
        from oxydra.core.errors import MemoryStoreError

        raw_rows(db_path, "DROP TABLE scheduled_notifications")
        with pytest.raises(MemoryStoreError) as caught:
            await store.take("alice")
        assert not isinstance(caught.value, sqlite3.Error)
        assert isinstance(caught.value.__cause__, sqlite3.Error)
