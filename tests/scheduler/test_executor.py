"""The executor against the real runtime and store, tick by tick on a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oxydra.core.errors import ProviderTransportError
from oxydra.core.messages import Context, Message, ToolCall, UsageUpdate
from oxydra.core.stream import StreamItem
from oxydra.core.tiers import SafetyTier
from oxydra.memory import MemoryStore
from oxydra.scheduler import (
    SCHEDULE_SCHEMA,
    Interval,
    Once,
    ScheduleDefinition,
    SchedulerExecutor,
    ScheduleStore,
    ScheduleTable,
)
from oxydra.scheduler._notify import CONDITIONAL_SUFFIX
from oxydra.scheduler._rules import stamp
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.wire.gateway import ScheduledNotification
from tests.runtime.support import FunctionTools
from tests.scheduler.conftest import T0, FakeClock, make_schedule, runtime, scheduler_config


class GatedProvider(MockProvider):
    """A scripted provider whose answers wait until `gate` opens."""

    def __init__(self, steps: list[Any]) -> None:
        super().__init__(steps)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        self.waiting += 1
        await self.gate.wait()
        async for item in super().stream(context):
            yield item


class Notices:
    """A notifier that records what the gateway would be asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ScheduledNotification, str | None]] = []
        self.arrived = asyncio.Event()

    async def notify(
        self, user_id: str, frame: ScheduledNotification, session_id: str | None = None
    ) -> bool:
        self.sent.append((user_id, frame, session_id))
        self.arrived.set()
        return True

    @property
    def messages(self) -> list[str]:
        return [frame.message for _, frame, _ in self.sent]


def executor(
    store: ScheduleStore, rt: Any, clock: FakeClock, notices: Notices | None = None, **config: Any
) -> SchedulerExecutor:
    return SchedulerExecutor(
        store,
        rt,
        scheduler_config(**config),
        notifier=notices,
        clock=clock,
        monotonic=clock.monotonic,
        timeout_secs=30,
    )


async def run_due(ex: SchedulerExecutor) -> list[str]:
    started = await ex.tick()
    await ex.drain()
    return started


def call(name: str, i: int, **args: Any) -> ToolCall:
    return ToolCall(id=f"{name}-{i}", name=name, arguments=args)


class TestRuns:
    async def test_a_one_off_runs_once_at_its_time_and_completes(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        provider = MockProvider([reply("The build is green.")])
        notices = Notices()
        ex = executor(store, runtime(provider), clock, notices)
        created = await make_schedule(
            store,
            clock.now,
            cadence=Once(at=stamp(T0 + timedelta(hours=1))),
            channel_id="tui",
            channel_context_id="sess-1",
        )
        assert await run_due(ex) == []
        clock.advance(hours=1)
        assert len(await run_due(ex)) == 1
        assert await run_due(ex) == []
        after = await store.get("alice", created.schedule_id)
        assert (after.status, after.next_run_at, after.last_run_status) == (
            "completed",
            None,
            "success",
        )
        assert notices.sent == [
            (
                "alice",
                ScheduledNotification(
                    schedule_id=created.schedule_id, message="The build is green."
                ),
                "sess-1",
            ),
        ]
        provider.assert_done()

    async def test_a_periodic_schedule_runs_in_its_own_session_each_time(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        tools = FunctionTools()

        async def probe() -> str:
            return "probed"

        tools.add("probe", probe)
        provider = MockProvider([reply("", call("probe", 0)), reply("one"), reply("two")])
        rt = runtime(provider, tools)
        ex = executor(store, rt, clock)
        created = await make_schedule(store, clock.now, cadence=Interval(every_secs=600))
        clock.advance(minutes=10)
        await run_due(ex)
        clock.advance(minutes=5)
        assert await run_due(ex) == []
        clock.advance(minutes=5)
        await run_due(ex)
        session = f"scheduled:{created.schedule_id}"
        scope = tools.calls[0][2]
        assert (scope.session_id, scope.channel, scope.user_id) == (session, "scheduler", "alice")
        history = (await rt.conversation(session, "alice")).history
        assert [m.text for m in history if m.role == "user"] == ["check the build"] * 2
        runs = await store.runs("alice", created.schedule_id)
        assert [(r.status, r.turn_count) for r in runs] == [("success", 1), ("success", 2)]
        provider.assert_done()

    async def test_a_missing_notifier_keeps_notifications_for_later(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        ex = executor(store, runtime(MockProvider([reply("kept")])), clock)
        await make_schedule(store, clock.now)
        clock.advance(hours=1)
        await run_due(ex)
        assert [f.message for f in await store.take("alice")] == ["kept"]


class TestNotificationPolicies:
    @pytest.mark.parametrize(
        ("policy", "answer", "sent", "stored"),
        [
            ("always", "Done.", ["Done."], "Done."),
            ("never", "Done.", [], "Done."),
            (
                "conditional",
                "  [NOTIFY] Disk is 95% full.",
                ["Disk is 95% full."],
                "Disk is 95% full.",
            ),
            ("conditional", "Nothing new.", [], "Nothing new."),
            ("conditional", "All fine [NOTIFY] maybe", [], "All fine [NOTIFY] maybe"),
        ],
    )
    async def test_each_policy(
        self,
        store: ScheduleStore,
        clock: FakeClock,
        policy: str,
        answer: str,
        sent: list[str],
        stored: str,
    ) -> None:
        provider = MockProvider([reply(answer)])
        notices = Notices()
        ex = executor(store, runtime(provider), clock, notices)
        created = await make_schedule(store, clock.now, notification_policy=policy)
        clock.advance(hours=1)
        await run_due(ex)
        assert notices.messages == sent
        [run] = await store.runs("alice", created.schedule_id)
        assert run.notified == bool(sent)
        assert (await store.run_output("alice", run.run_id)).chunk == stored
        prompt = provider.contexts[0].messages[-1].text
        assert prompt.endswith(CONDITIONAL_SUFFIX) == (policy == "conditional")


class TestFailures:
    async def test_a_notice_at_three_failures_and_auto_disable_at_five(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        provider = MockProvider([ProviderTransportError(f"upstream down #{i}") for i in range(5)])
        notices = Notices()
        ex = executor(store, runtime(provider), clock, notices)
        created = await make_schedule(
            store, clock.now, name="nightly", cadence=Interval(every_secs=600)
        )
        for _ in range(6):
            clock.advance(minutes=10)
            await run_due(ex)
        assert [m[:2] for m in notices.messages] == ["❌ ", "⛔ "]
        assert "'nightly' has failed 3 times" in notices.messages[0]
        assert "upstream down #2" in notices.messages[0]
        assert "disabled after 5 consecutive failures" in notices.messages[1]
        after = await store.get("alice", created.schedule_id)
        assert (after.status, after.consecutive_failures) == ("disabled", 5)
        runs = await store.runs("alice", created.schedule_id, limit=20)
        assert [r.status for r in runs] == ["failed"] * 5
        provider.assert_done()

    async def test_a_success_resets_the_count(self, store: ScheduleStore, clock: FakeClock) -> None:
        steps: list[Any] = [ProviderTransportError("x"), ProviderTransportError("y"), reply("ok")]
        provider = MockProvider([*steps, ProviderTransportError("z")])
        notices = Notices()
        ex = executor(store, runtime(provider), clock, notices)
        created = await make_schedule(
            store, clock.now, notification_policy="never", cadence=Interval(every_secs=600)
        )
        for _ in range(4):
            clock.advance(minutes=10)
            await run_due(ex)
        assert (await store.get("alice", created.schedule_id)).consecutive_failures == 1
        assert notices.sent == []

    async def test_a_run_past_its_timeout_fails_and_leaves_the_history_whole(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        provider = GatedProvider([reply("never sent")])
        rt = runtime(provider)
        ex = SchedulerExecutor(
            store, rt, scheduler_config(), clock=clock, monotonic=clock.monotonic, timeout_secs=0.01
        )
        created = await make_schedule(store, clock.now)
        clock.advance(hours=1)
        await run_due(ex)
        [run] = await store.runs("alice", created.schedule_id)
        assert run.status == "failed" and "did not finish within 0.01s" in run.output_summary
        assert (await store.get("alice", created.schedule_id)).consecutive_failures == 1


class TestLimits:
    async def test_max_turns_of_the_scheduler_bounds_a_run(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        tools = FunctionTools()

        async def again(n: str = "") -> str:
            return "again"

        tools.add("again", again)
        provider = MockProvider([reply("", call("again", i, n=str(i))) for i in range(5)])
        ex = executor(store, runtime(provider, tools, max_turns=100), clock, max_turns=2)
        created = await make_schedule(store, clock.now)
        clock.advance(hours=1)
        await run_due(ex)
        [run] = await store.runs("alice", created.schedule_id)
        assert run.status == "failed" and "max_turns" in run.output_summary
        assert len(provider.contexts) == 2 and run.turn_count == 2

    async def test_max_cost_of_the_scheduler_bounds_a_run_in_dollars(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        tools = FunctionTools()

        async def again(n: str = "") -> str:
            return "again"

        tools.add("again", again)
        usage = UsageUpdate(prompt_tokens=400, completion_tokens=100, total_tokens=500)
        provider = MockProvider(
            [reply("", call("again", i, n=str(i)), usage=usage) for i in range(3)]
        )
        rt = runtime(provider, tools, price=lambda u: (u.total_tokens or 0) * 0.0004)
        ex = executor(store, rt, clock, max_cost=0.30)
        created = await make_schedule(store, clock.now)
        clock.advance(hours=1)
        await run_due(ex)
        [run] = await store.runs("alice", created.schedule_id)
        assert run.status == "failed" and "max_cost" in run.output_summary
        assert len(provider.contexts) == 2 and run.cost == pytest.approx(0.4)


class TestConcurrency:
    async def test_at_most_max_concurrent_runs_at_once(
        self, store: ScheduleStore, clock: FakeClock, db_path: Path
    ) -> None:
        provider = GatedProvider([reply(f"r{i}") for i in range(5)])
        ex = executor(store, runtime(provider), clock, max_concurrent=2)
        for _ in range(5):
            await make_schedule(store, clock.now)
        clock.advance(hours=1)
        assert len(await ex.tick()) == 2
        await asyncio.sleep(0)
        assert await ex.tick() == []
        with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as other:
            assert len(other.db.query("SELECT 1 FROM schedule_runs WHERE status = 'running'")) == 2
        provider.gate.set()
        await ex.drain()
        assert len(await run_due(ex)) == 2
        assert len(await run_due(ex)) == 1
        provider.assert_done()

    async def test_shutdown_records_runs_in_flight_as_interrupted(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        provider = GatedProvider([reply("unused")])
        ex = executor(store, runtime(provider), clock)
        created = await make_schedule(store, clock.now)
        clock.advance(hours=1)
        await ex.tick()
        async with asyncio.timeout(30):  # a bound on a hang, not a timing
            while not provider.waiting:
                await asyncio.sleep(0)
        await ex.aclose()
        [run] = await store.runs("alice", created.schedule_id)
        assert run.status == "interrupted"
        after = await store.get("alice", created.schedule_id)
        assert after.next_run_at == stamp(clock.now + timedelta(hours=1))


class TestRestart:
    async def test_after_a_crash_nothing_runs_twice_and_a_missed_schedule_runs_once(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as crashed:
            table = ScheduleTable(crashed.db)
            in_flight = stored(table, "in-flight", next_run=T0 - timedelta(minutes=1))
            overdue = stored(table, "overdue", next_run=T0 - timedelta(days=7))
            assert table.claim_run(in_flight, "lost-run", T0) is not None
        clock.advance(hours=2)
        from oxydra.memory import HashedEmbedder, Memory

        async with await Memory.open(
            db_path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
        ) as memory:
            store = ScheduleStore(memory)
            provider = MockProvider([reply("caught up")])
            ex = executor(store, runtime(provider), clock, on_interrupted="skip")
            [recovered] = await ex.recover()
            assert recovered.schedule_id == in_flight
            started = await run_due(ex)
            assert len(started) == 1
            assert await run_due(ex) == []
            clock.advance(seconds=59)
            assert await run_due(ex) == []
            runs = {s: await store.runs("alice", s) for s in (in_flight, overdue)}
            assert [r.status for r in runs[in_flight]] == ["interrupted"]
            assert [r.status for r in runs[overdue]] == ["success"]
            later = await store.get("alice", overdue)
            assert later.next_run_at == stamp(T0 + timedelta(hours=2, minutes=1))
            provider.assert_done()


class TestInterruptedRuns:
    """A daily job cut short by a restart: run again when it changed nothing, else told."""

    async def crash_mid_run(self, db_path: Path, events: list[Message]) -> str:
        with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as crashed:
            table = ScheduleTable(crashed.db)
            schedule = stored(table, "daily", next_run=T0 - timedelta(minutes=1))
            assert table.claim_run(schedule, "lost-run", T0) is not None
        from oxydra.memory import HashedEmbedder, Memory

        async with await Memory.open(
            db_path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
        ) as memory:
            session = f"scheduled:{schedule}"
            await memory.create_session(session, user_id="alice")
            await memory.append_events(session, events)
        return schedule

    async def restart(
        self, db_path: Path, clock: FakeClock, provider: MockProvider, **config: Any
    ) -> tuple[ScheduleStore, Notices, list[str]]:
        from oxydra.memory import HashedEmbedder, Memory

        notices = Notices()
        self.memory = await Memory.open(
            db_path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
        )
        store = ScheduleStore(self.memory)
        tiers = {"file_read": SafetyTier.READ_ONLY, "file_write": SafetyTier.SIDE_EFFECTING}
        ex = SchedulerExecutor(
            store, runtime(provider), scheduler_config(**config), notifier=notices, clock=clock,
            timeout_secs=30, tool_tier=tiers.get,
        )  # fmt: skip
        await ex.recover()
        started = await run_due(ex)
        return store, notices, started

    async def test_a_run_that_only_read_is_run_again_at_start_up(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        read = call("file_read", 0, path="/shared/a.txt")
        schedule = await self.crash_mid_run(
            db_path,
            [
                Message(role="user", content="do daily"),
                Message(role="assistant", tool_calls=(read,)),
                Message(role="tool", content="...", tool_call_id=read.id),
            ],
        )
        clock.advance(seconds=30)
        provider = MockProvider([reply("daily report")])
        try:
            store, notices, started = await self.restart(db_path, clock, provider)
            assert len(started) == 1
            runs = await store.runs("alice", schedule)
            assert [r.status for r in runs] == ["success", "interrupted"]
            assert notices.messages == ["daily report"]
            provider.assert_done()
        finally:
            await self.memory.close()

    async def test_a_run_that_wrote_is_not_repeated_and_the_person_is_told_what_it_did(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        write = call("file_write", 0, path="/shared/out.txt", content="half")
        schedule = await self.crash_mid_run(
            db_path,
            [
                Message(role="user", content="do daily"),
                Message(role="assistant", tool_calls=(write,)),
            ],
        )
        provider = MockProvider([])
        try:
            store, notices, started = await self.restart(db_path, clock, provider)
            assert started == []
            [notice] = notices.messages
            assert "cut short" in notice and "file_write" in notice and "out.txt" in notice
            [run] = await store.runs("alice", schedule)
            assert run.status == "interrupted"
            later = await store.get("alice", schedule)
            assert later.next_run_at == stamp(T0 + timedelta(minutes=1))
        finally:
            await self.memory.close()

    async def test_a_retry_cut_short_again_is_not_retried_twice(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        schedule = await self.crash_mid_run(db_path, [])
        try:
            from oxydra.memory import HashedEmbedder, Memory

            async with await Memory.open(
                db_path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
            ) as memory:
                store = ScheduleStore(memory)
                ex = executor(store, runtime(GatedProvider([])), clock)
                await ex.recover()  # the clean run is due again at once
                [retry] = await ex.tick()  # ... and the retry starts, then the process dies
                ex.runs[retry].cancel()
                await asyncio.gather(*ex.runs.values(), return_exceptions=True)
            with MemoryStore(
                db_path, schemas=[SCHEDULE_SCHEMA]
            ) as crashed:  # as if killed: the retry is left running
                with crashed.db.write() as conn:
                    conn.execute(
                        "UPDATE schedule_runs SET status = 'running' WHERE run_id = ?", (retry,)
                    )
            provider = MockProvider([])
            store, notices, started = await self.restart(db_path, clock, provider)
            assert started == []
            assert notices.messages and "cut short" in notices.messages[0]
            assert schedule
        finally:
            await self.memory.close()

    async def test_skip_leaves_a_clean_run_to_its_next_time_silently(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        await self.crash_mid_run(db_path, [])
        try:
            _, notices, started = await self.restart(
                db_path, clock, MockProvider([]), on_interrupted="skip"
            )
            assert started == [] and notices.messages == []
        finally:
            await self.memory.close()


def stored(table: ScheduleTable, name: str, *, next_run: Any) -> str:
    definition = ScheduleDefinition(
        schedule_id=f"id-{name}",
        user_id="alice",
        name=name,
        goal=f"do {name}",
        cadence=Interval(every_secs=60),
        created_at=stamp(T0),
        updated_at=stamp(T0),
        next_run_at=stamp(next_run),
    )
    table.create(definition, max_per_user=10)
    return definition.schedule_id


class TestLoop:
    async def test_the_loop_recovers_polls_and_sleeps_only_until_the_next_due_time(
        self, store: ScheduleStore, clock: FakeClock
    ) -> None:
        delays: list[float] = []

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            clock.advance(seconds=seconds)

        notices = Notices()
        provider = MockProvider([reply("ran")])
        ex = SchedulerExecutor(
            store,
            runtime(provider),
            scheduler_config(poll_interval_secs=15),
            clock=clock,
            monotonic=clock.monotonic,
            sleep=sleep,
        )
        await make_schedule(store, clock.now, cadence=Interval(every_secs=100))
        ex.start(notices)
        await notices.arrived.wait()
        await ex.aclose()
        assert notices.messages == ["ran"]
        assert delays[:7] == [15, 15, 15, 15, 15, 15, 10]
