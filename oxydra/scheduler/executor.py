"""The executor inside `vm`: runs due schedules as bounded turns through the runtime.

Theory of operation:

1. Polling. Every `poll_interval_secs` (sooner when the next due time is nearer, or when a
   schedule was created or edited, or a run finished) the executor asks the store for
   due schedules, as many as there are free slots (`max_concurrent` minus the runs in
   flight), and claims each one. Claiming is atomic in the store, so a schedule is started
   by at most one executor, and a claimed schedule has no next run until its run ends.
2. A run is one turn of `TurnRunner.run_turn` in the session `scheduled:{schedule_id}`, on
   channel `scheduler`, with `[scheduler] max_turns` and `max_cost` (USD) as the turn's own
   limits, inside a timeout. Ticks go on while runs are in flight: a long run holds one
   slot, not the loop.
3. When a run ends, its record, the schedule's counters, status and next run (computed
   from the end time, so firings missed while down or busy are not replayed) and the
   pruned history are written in one transaction; then notifications are sent.
4. Restart. Before the first poll, runs a previous process left `running` are recorded as
   `interrupted`. With `on_interrupted = "retry_if_clean"` (the default) a run whose stored
   events show no tool call outside the read-only tier, and that was not itself such a
   retry, is due again at once: the daily 08:00 job cut at 08:00:30 still runs today.
   Otherwise it is rescheduled from now by its cadence and, under `retry_if_clean`, the
   person is told it was cut short and which tool calls it had made. A schedule that fell
   due while the process was down is due once, and runs once.
5. Shutdown (`aclose`) cancels the runs in flight and records them as `interrupted`.
7. Several hosts (a shared PostgreSQL store; the store has a `holder`): claims carry a
   lease, each poll renews the leases of this host's runs in flight and takes over runs
   whose lease expired (their host died) exactly as rule 4 handles runs of a previous
   process; at start-up only expired runs are taken, never a live host's.
6. Clock jumps. Each poll compares how far the wall clock moved with how far the monotonic
   clock did; a difference over `JUMP_TOLERANCE_SECS` is a jump, and the store re-times next
   runs (`_rules.retimed`: intervals move with the jump, crons follow the wall clock).
   Start-up applies the same rule with an unknown jump (only its bounds).

Clock and sleep are injected, so tests drive the executor tick by tick without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from oxydra.config.schema import SchedulerConfig
from oxydra.core.errors import OxydraError
from oxydra.core.log import get_logger, span
from oxydra.core.messages import ToolCall
from oxydra.core.spend import Spend
from oxydra.core.stream import StreamItem
from oxydra.core.tiers import SafetyTier
from oxydra.runtime.api import TurnRequest, TurnRunner
from oxydra.scheduler._notify import (
    failure_notice,
    goal_prompt,
    interrupted_notice,
    message_text,
    result_notification,
)
from oxydra.scheduler._store import ScheduleStore
from oxydra.scheduler._table import INTERRUPTED_TEXT
from oxydra.scheduler.cadence import parse_instant
from oxydra.scheduler.types import RunResult, RunStatus, ScheduleDefinition
from oxydra.wire.gateway import ScheduledNotification

_log = get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
JUMP_TOLERANCE_SECS = 5.0


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Notifier(Protocol):
    """Delivers notifications to connected clients (the gateway's `GatewayCore`)."""

    async def notify(
        self, user_id: str, frame: ScheduledNotification, session_id: str | None = None
    ) -> bool:
        """Send to the user's live clients, else keep it in the outbox."""
        ...


async def _discard(_item: StreamItem) -> None:
    """A scheduled run has no one watching its stream."""


class SchedulerExecutor:
    """Polls the store and runs due schedules; see the module docstring.

    Args:
        store: the schedule store.
        runner: the runtime (the same one interactive turns use).
        config: `[scheduler]`.
        notifier: the gateway; None keeps every notification in the store's outbox.
        clock: returns the current aware time.
        sleep: waits a number of seconds (between polls only).
        timeout_secs: the longest a run may take.
        tool_tier: the safety tier of a tool by name (None when unknown, which counts as
            side-effecting), to judge whether an interrupted run may be retried.
    """

    def __init__(
        self,
        store: ScheduleStore,
        runner: TurnRunner,
        config: SchedulerConfig,
        *,
        notifier: Notifier | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        timeout_secs: float = 600.0,
        tool_tier: Callable[[str], SafetyTier | None] = lambda _name: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.runner = runner
        self.config = config
        self.notifier = notifier
        self.clock = clock
        self.sleep = sleep
        self.timeout_secs = timeout_secs
        self.tool_tier = tool_tier
        self.monotonic = monotonic
        self._last_seen: tuple[datetime, float] | None = None
        self.runs: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, notifier: Notifier | None = None) -> None:
        """Start polling in the background (`Services.start_background` calls this)."""
        if notifier is not None:
            self.notifier = notifier
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self.run_forever(), name="scheduler")

    async def aclose(self) -> None:
        """Stop polling; cancel the runs in flight (they are recorded as interrupted)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in self.runs.values():
            task.cancel()
        await self.drain()

    async def run_forever(self) -> None:
        """Recover, then poll until cancelled."""
        await self.recover()
        while True:
            self.store.changed.clear()
            try:
                await self.tick()
            except Exception:
                _log.exception("scheduler poll failed; polling on")
            await self._pause()

    # ---- one poll ---------------------------------------------------------------------

    async def recover(self) -> list[ScheduleDefinition]:
        """Finish runs left `running` by a previous process; retry the clean ones (rule 4).

        On a shared store (rule 7) only runs whose lease expired are a dead process's."""
        now = self.clock()
        finished = await self._take_over(now if self.store.holder else None)
        await self.store.retime(now)
        return finished

    async def _take_over(self, expired_at: datetime | None) -> list[ScheduleDefinition]:
        now, config = self.clock(), self.config
        finished: list[ScheduleDefinition] = []
        for run in await self.store.interrupted_runs(expired_at):
            calls = await self._calls_of(run.schedule_id, run.started_at)
            clean = all(self.tool_tier(c.name) is SafetyTier.READ_ONLY for c in calls)
            retry = config.on_interrupted == "retry_if_clean" and clean and not run.was_retry
            definition = await self.store.finish_interrupted(
                run.run_id, retry=retry, output=INTERRUPTED_TEXT, now=now,
                max_run_history=config.max_run_history,
                auto_disable_after_failures=config.auto_disable_after_failures,
                expired_at=expired_at,
            )  # fmt: skip
            if definition is None:
                continue
            finished.append(definition)
            _log.warning(
                "scheduled run was interrupted",
                extra={"oxy": {"run": run.run_id, "retry": retry, "tool_calls": len(calls)}},
            )
            if not retry and config.on_interrupted == "retry_if_clean":
                await self._send(definition, interrupted_notice(definition, calls))
        return finished

    async def _calls_of(self, schedule_id: str, started_at: str) -> list[ToolCall]:
        try:
            messages = await self.store.run_events(schedule_id, started_at)
        except OxydraError:
            _log.exception("cannot read an interrupted run's events; not retrying it")
            return [ToolCall(id="?", name="(events unreadable)")]
        return [call for message in messages for call in message.tool_calls]

    async def _follow_clock(self, now: datetime) -> None:
        """Re-time next runs when the wall clock jumped since the last poll (rule 6)."""
        mono = self.monotonic()
        last, self._last_seen = self._last_seen, (now, mono)
        if last is None:
            return
        jump = (now - last[0]).total_seconds() - (mono - last[1])
        if abs(jump) > JUMP_TOLERANCE_SECS:
            moved = await self.store.retime(now, jump)
            _log.warning(
                "the wall clock jumped; re-timed schedules",
                extra={"oxy": {"jump_s": round(jump, 1), "moved": moved}},
            )

    async def tick(self) -> list[str]:
        """Claim and start due schedules up to the free slots; returns the new run ids."""
        now = self.clock()
        if self.store.holder is not None:  # rule 7, even when every slot is busy
            await self.store.renew_leases(list(self.runs), now)
            await self._take_over(now)
        room = self.config.max_concurrent - len(self.runs)
        if room <= 0:
            return []
        await self._follow_clock(now)
        started: list[str] = []
        for schedule in await self.store.due(now, room):
            claimed = await self.store.claim_run(schedule.schedule_id, now)
            if claimed is None:
                continue
            run_id, definition = claimed
            self.runs[run_id] = asyncio.create_task(
                self._run_task(run_id, definition), name=f"scheduled-{schedule.schedule_id}"
            )
            started.append(run_id)
        return started

    async def drain(self) -> None:
        """Wait until no run is in flight."""
        while self.runs:
            await asyncio.gather(*self.runs.values(), return_exceptions=True)

    async def _pause(self) -> None:
        delay = float(self.config.poll_interval_secs)
        if len(self.runs) < self.config.max_concurrent:
            upcoming = await self.store.next_due_at()
            if upcoming is not None:
                wait = (parse_instant(upcoming) - self.clock()).total_seconds()
                delay = delay if wait <= 0 else min(delay, wait)
        sleeper = asyncio.ensure_future(self.sleep(delay))
        waker = asyncio.ensure_future(self.store.changed.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (sleeper, waker):
                pending.cancel()

    # ---- one run ----------------------------------------------------------------------

    async def _run_task(self, run_id: str, schedule: ScheduleDefinition) -> None:
        try:
            await self.run_claimed(run_id, schedule)
        except asyncio.CancelledError:
            interrupted = RunResult(
                run_id=run_id, status="interrupted", output="Interrupted: the scheduler stopped."
            )
            await asyncio.shield(self._record(interrupted))
            raise
        except Exception:
            _log.exception("scheduled run failed to record", extra={"oxy": {"run": run_id}})
        finally:
            self.runs.pop(run_id, None)
            self.store.changed.set()

    async def run_claimed(self, run_id: str, schedule: ScheduleDefinition) -> RunResult:
        """Run a claimed schedule, record the result, and send what it calls for.

        The run, its turn and its deliveries are one `schedule.run` span (one trace).
        """
        with span("schedule.run", schedule=schedule.schedule_id, run=run_id) as observed:
            result = await self._run_and_notify(run_id, schedule)
            observed["status"] = result.status
            return result

    async def _run_and_notify(self, run_id: str, schedule: ScheduleDefinition) -> RunResult:
        status, output, spend = await self._execute(run_id, schedule)
        notify, output = result_notification(schedule.notification_policy, status, output)
        result = RunResult(
            run_id=run_id, status=status, output=output, turn_count=spend.calls,
            cost=spend.cost_usd, notified=notify,
        )  # fmt: skip
        updated = await self._record(result)
        if updated is None:
            return result
        if notify:
            await self._send(updated, message_text(output, run_id))
        notice = failure_notice(
            updated, status, output, notify_after_failures=self.config.notify_after_failures
        )
        if notice is not None:
            await self._send(updated, notice)
        return result

    async def _execute(
        self, run_id: str, schedule: ScheduleDefinition
    ) -> tuple[RunStatus, str, Spend]:
        request = TurnRequest(
            user_id=schedule.user_id,
            session_id=f"scheduled:{schedule.schedule_id}",
            turn_id=run_id,
            prompt=goal_prompt(schedule),
            channel="scheduler",
            max_turns=self.config.max_turns,
            max_cost_usd=self.config.max_cost,
        )
        try:
            async with asyncio.timeout(self.timeout_secs):
                outcome = await self.runner.run_turn(request, _discard)
        except TimeoutError:
            return "failed", f"Error: the run did not finish within {self.timeout_secs:g}s", Spend()
        except Exception as exc:
            _log.exception("scheduled run raised", extra={"oxy": {"run": run_id}})
            return "failed", f"Error: {exc}", Spend()
        if outcome.ok and outcome.response is not None:
            return "success", outcome.response.message.text, outcome.spend
        if outcome.reason == "cancelled":
            return "cancelled", f"Cancelled: {outcome.detail}", outcome.spend
        return (
            "failed",
            f"Error: the turn stopped ({outcome.reason}): {outcome.detail}",
            outcome.spend,
        )

    async def _record(self, result: RunResult) -> ScheduleDefinition | None:
        return await self.store.record_run_and_reschedule(
            result,
            now=self.clock(),
            max_run_history=self.config.max_run_history,
            auto_disable_after_failures=self.config.auto_disable_after_failures,
        )

    async def _send(self, schedule: ScheduleDefinition, message: str) -> None:
        frame = ScheduledNotification(
            schedule_id=schedule.schedule_id, schedule_name=schedule.name, message=message
        )
        if self.notifier is not None:
            channel = (schedule.channel_context_id or "gateway").split(":")[0]  # no chat ids
            with span("channel.deliver", channel=channel, schedule=schedule.schedule_id) as seen:
                try:
                    await self.notifier.notify(schedule.user_id, frame, schedule.channel_context_id)
                    return
                except OxydraError as exc:
                    seen["failed"] = type(exc).__name__
                    _log.exception("notification delivery failed; keeping it for later")
        await self.store.put(schedule.user_id, frame)
