"""A scheduled run as telemetry: its ledger row names the schedule; a failed delivery counts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.errors import ChannelError
from oxydra.core.log import set_span_hook
from oxydra.core.messages import UsageUpdate
from oxydra.observability import start_observability
from oxydra.observability._store import db_path as obs_db
from oxydra.observability._store import load_trace, open_db
from oxydra.scheduler import Once, SchedulerExecutor, ScheduleStore
from oxydra.scheduler._rules import stamp
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.wire.gateway import ScheduledNotification
from tests.scheduler.conftest import T0, FakeClock, make_schedule, runtime, scheduler_config


class Unreachable:
    """A notifier whose channel is down."""

    async def notify(
        self, user_id: str, frame: ScheduledNotification, session_id: str | None = None
    ) -> bool:
        raise ChannelError("telegram: 502 Bad Gateway")


async def test_a_scheduled_run_is_a_ledger_row_and_a_failed_delivery_is_counted(
    store: ScheduleStore, clock: FakeClock, tmp_path: Path
) -> None:
    obs = start_observability(ObservabilityConfig(), workspace=tmp_path / "ws", environ={})
    try:
        usage = UsageUpdate(prompt_tokens=40, completion_tokens=4)
        provider = MockProvider([reply("The build is green.", usage=usage)])
        ex = SchedulerExecutor(
            store,
            runtime(provider),
            scheduler_config(),
            notifier=Unreachable(),
            clock=clock,
            timeout_secs=30,
        )
        created = await make_schedule(
            store,
            clock.now,
            cadence=Once(at=stamp(T0 + timedelta(minutes=5))),
            channel_id="telegram",
            channel_context_id="telegram:4242",
        )
        clock.advance(minutes=5)
        (run_id,) = await ex.tick()
        await ex.drain()
        obs.flush()
        text = obs.registry.render()
    finally:
        set_span_hook(None)
        await obs.aclose()
    assert 'oxydra_channel_delivery_failures_total{channel="telegram"} 1' in text
    db = open_db(obs_db(tmp_path / "ws"), readonly=True)
    db.row_factory = sqlite3.Row
    (row,) = db.execute("SELECT * FROM usage").fetchall()
    assert (row["schedule"], row["turn_id"], row["input_tokens"]) == (
        created.schedule_id, run_id, 40,
    )  # fmt: skip
    spans = load_trace(db, run_id) or []
    names = [s.name for s in spans]
    assert f"oxydra.schedule.run {created.schedule_id}" in names
    assert "oxydra.channel.deliver telegram" in names
