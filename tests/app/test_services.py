"""The scheduler wired into a guest: tools in the runtime, the executor in `vm`, a real LLM
wire format (the loopback fake LLM) and the gateway delivering the notification."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from websockets.asyncio.client import connect

from oxydra.app.services import open_services
from oxydra.channels import CHANNEL_SCHEMA
from oxydra.config.schema import (
    AgentConfig,
    GatewayConfig,
    ProviderEntry,
    SchedulerConfig,
)
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._hub import Subscriber
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.memory import MemoryStore
from oxydra.runtime.factory import provision_workspace
from oxydra.scheduler import (
    SCHEDULE_SCHEMA,
    Interval,
    ScheduleDefinition,
    SchedulerExecutor,
    ScheduleTable,
)
from oxydra.scheduler._rules import stamp
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    Hello,
    ScheduledNotification,
    decode_server_frame,
    encode_frame,
)
from tests.providers.conftest import config_for

SCHEDULE_ARGS = {
    "goal": "Summarise the news headlines.",
    "cadence_type": "interval",
    "cadence_value": "3600",
    "name": "news",
    "notification": "conditional",
}

OWNERS = (SESSION_SCHEMA, SCHEDULE_SCHEMA, CHANNEL_SCHEMA)


def guest_config(llm: FakeLLM, *, enabled: bool = True, **gateway: object) -> AgentConfig:
    entry = ProviderEntry(provider_type="openai", base_url=llm.base_url, api_key="test-key")
    return msgspec.structs.replace(
        config_for({"openai": entry}),
        scheduler=SchedulerConfig(enabled=enabled, default_timezone="UTC"),
        gateway=GatewayConfig(**gateway),  # type: ignore[arg-type]
    )


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


async def next_notification(subscriber: Subscriber) -> ScheduledNotification:
    while True:
        frame = decode_server_frame(await subscriber.queue.get())
        if isinstance(frame, ScheduledNotification):
            return frame


class TestServices:
    async def test_without_the_scheduler_there_are_no_schedule_tools(
        self, llm: FakeLLM, tmp_path: Path
    ) -> None:
        services = await open_services(
            guest_config(llm, enabled=False),
            user_id="alice",
            workspace=provision_workspace(tmp_path / "ws"),
            environ={"HOME": str(tmp_path)},
        )
        try:
            names = {d.name for d in services.agent.runtime.tools.schemas()}
            assert not any(n.startswith("schedule_") for n in names)
            assert services.background == [] and services.schedules is None
        finally:
            await services.aclose()

    async def test_a_schedule_the_model_creates_runs_and_notifies_the_creating_session(
        self, llm: FakeLLM, tmp_path: Path
    ) -> None:
        llm.add(
            [
                Reply(tool_calls=[Call(name="schedule_create", arguments=SCHEDULE_ARGS)]),
                Reply(text="Done: it runs every hour."),
                Reply(text="[NOTIFY] Three headlines worth reading."),
            ]
        )
        services = await open_services(
            guest_config(llm),
            user_id="alice",
            workspace=provision_workspace(tmp_path / "ws"),
            environ={"HOME": str(tmp_path)},
        )
        try:
            runtime = services.agent.runtime
            core = GatewayCore(runtime, MemorySessionRecords(services.memory), GatewayConfig())
            channel = await core.open_session("alice", create_new=True)
            subscriber, _, _ = core.subscribe(channel, None)
            core.submit_turn(channel, "r1", "t1", "Every hour, tell me if the news matters.")
            assert channel.task is not None
            await channel.task
            [executor] = services.background
            assert isinstance(executor, SchedulerExecutor)
            executor.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
            services.start_background(core)
            frame = await asyncio.wait_for(next_notification(subscriber), 30)
            assert (frame.schedule_name, frame.message) == (
                "news",
                "Three headlines worth reading.",
            )
            run_request = llm.requests[2].json()
            prompt = run_request["messages"][-1]["content"]
            assert prompt.startswith("Summarise the news headlines.") and "[NOTIFY]" in prompt
            tools = {t["function"]["name"] for t in run_request["tools"]}
            assert {"schedule_create", "schedule_run_output"} <= tools
            llm.assert_done()
        finally:
            await services.aclose()


class TestVm:
    async def test_vm_runs_an_overdue_schedule_and_the_client_sees_the_notification(
        self, llm: FakeLLM, tmp_path: Path
    ) -> None:
        from oxydra.app.vm import serve_vm

        llm.add([Reply(text="Backup verified.")])
        workspace = provision_workspace(tmp_path / "ws")
        with MemoryStore(workspace / ".oxydra" / "memory.db", schemas=OWNERS) as db:
            past = datetime.now(UTC) - timedelta(days=3)
            ScheduleTable(db.db).create(
                ScheduleDefinition(
                    schedule_id="nightly",
                    user_id="alice",
                    name="backup",
                    goal="Verify the backup.",
                    cadence=Interval(every_secs=86400),
                    timezone="UTC",
                    created_at=stamp(past),
                    updated_at=stamp(past),
                    next_run_at=stamp(past),
                ),
                max_per_user=10,
            )
        stop = asyncio.Event()
        config = guest_config(llm, auth_token="vm-token")
        task = asyncio.create_task(
            serve_vm(
                config,
                user="alice",
                workspace=workspace,
                bind="127.0.0.1:0",
                stop=stop,
                environ={"HOME": str(tmp_path)},
            )
        )
        try:
            marker = workspace / "ipc" / "gateway-endpoint"
            async with asyncio.timeout(30):
                while not marker.exists():
                    assert not task.done(), task
                    await asyncio.sleep(0.01)
            url = marker.read_text().strip()
            async with connect(url, additional_headers={"Authorization": "Bearer vm-token"}) as ws:
                hello = Hello(request_id="h1", protocol_version=PROTOCOL_VERSION, user_id="alice")
                await ws.send(encode_frame(hello).decode())
                while True:
                    frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 30))
                    if isinstance(frame, ScheduledNotification):
                        break
            assert (frame.schedule_id, frame.message) == ("nightly", "Backup verified.")
        finally:
            stop.set()
            await task
        with MemoryStore(workspace / ".oxydra" / "memory.db", schemas=OWNERS) as db:
            [run] = ScheduleTable(db.db).runs("alice", "nightly", 5)
            assert (run.status, run.notified) == ("success", True)
            schedule = ScheduleTable(db.db).get("alice", "nightly")
            assert schedule.next_run_at is not None and schedule.next_run_at > stamp(
                datetime.now(UTC) + timedelta(hours=23)
            )
        llm.assert_done()
        assert json.loads(llm.requests[0].body)["messages"][-1]["content"] == "Verify the backup."
