"""Fixtures of the scheduler tests: a real memory database, a settable clock, runtimes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oxydra.config.schema import RuntimeConfig, SchedulerConfig
from oxydra.memory import HashedEmbedder, Memory, MemoryStore
from oxydra.runtime.ledger import CostLedger
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import EstimateCounter
from oxydra.scheduler import (
    SCHEDULE_SCHEMA,
    Cadence,
    Interval,
    ScheduleDefinition,
    ScheduleStore,
    ScheduleTable,
)
from oxydra.testing.mock_provider import MockProvider
from tests.runtime.support import FunctionTools

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now
        self.elapsed = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """Elapsed time moves with `advance` (the wall clock never jumps here)."""
        return self.elapsed

    def advance(self, **delta: float) -> datetime:
        step = timedelta(**delta)
        self.now += step
        self.elapsed += step.total_seconds()
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".oxydra" / "memory.db"


@pytest.fixture
async def memory(db_path: Path) -> AsyncIterator[Memory]:
    opened = await Memory.open(db_path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA])
    yield opened
    await opened.close()


@pytest.fixture
def store(memory: Memory) -> ScheduleStore:
    return ScheduleStore(memory)


@pytest.fixture
def table(db_path: Path) -> Iterator[ScheduleTable]:
    """The sync core on its own connection (tests that need two connections or no loop)."""
    with MemoryStore(db_path, schemas=[SCHEDULE_SCHEMA]) as opened:
        yield ScheduleTable(opened.db)


async def make_schedule(
    store: ScheduleStore,
    now: datetime,
    *,
    user: str = "alice",
    cadence: Cadence | None = None,
    goal: str = "check the build",
    **fields: Any,
) -> ScheduleDefinition:
    """A stored schedule with test-friendly defaults (interval of one hour, UTC)."""
    return await store.create(
        user_id=user,
        goal=goal,
        cadence=cadence or Interval(every_secs=3600),
        timezone=fields.pop("timezone", "UTC"),
        now=now,
        max_per_user=fields.pop("max_per_user", 50),
        min_interval_secs=fields.pop("min_interval_secs", 60),
        **fields,
    )


def scheduler_config(**fields: Any) -> SchedulerConfig:
    return SchedulerConfig(enabled=True, **fields)


def runtime(
    provider: Any, tools: FunctionTools | None = None, *, price: Any = None, **config: Any
) -> AgentRuntime:
    """A real runtime over a scripted provider, without a conversation store."""
    return AgentRuntime(
        provider=provider,
        tools=tools or FunctionTools(),
        config=RuntimeConfig(**config),
        provider_id="mock",
        model="m",
        system_prompt="You are a test.",
        ledger=CostLedger(price) if price else None,
        counter=EstimateCounter(),
    )


__all__ = ["T0", "FakeClock", "MockProvider", "make_schedule", "runtime", "scheduler_config"]
