"""The schedule tools through the tool registry: parameters, outputs, per-user scoping."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oxydra.scheduler import RunResult, ScheduleStore, schedule_tools
from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry
from tests.scheduler.conftest import T0, FakeClock, scheduler_config

NAMES = [
    "schedule_create",
    "schedule_delete",
    "schedule_edit",
    "schedule_run_output",
    "schedule_runs",
    "schedule_search",
]


@pytest.fixture
def registry(store: ScheduleStore, clock: FakeClock) -> ToolRegistry:
    config = scheduler_config(max_schedules_per_user=3, default_timezone="Europe/Berlin")
    registry = ToolRegistry()
    registry.register_all(schedule_tools(store, config, clock=clock))
    return registry


class Caller:
    """Calls tools as one user from one session, returning (ok, decoded output)."""

    def __init__(self, registry: ToolRegistry, user: str, root: Path, channel: str = "tui"):
        root.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.ctx = ToolExecutionContext(
            user_id=user,
            session_id=f"{user}-session",
            channel=channel,
            workspace=LocalFileBackend(Workspace.for_user(root)),
        )

    async def __call__(self, tool_name: str, /, **args: Any) -> tuple[bool, Any]:
        result = await self.registry.execute(tool_name, args, self.ctx)
        if not result.ok:
            return False, result.text
        return True, json.loads(result.text)


@pytest.fixture
def alice(registry: ToolRegistry, tmp_path: Path) -> Caller:
    return Caller(registry, "alice", tmp_path / "alice")


@pytest.fixture
def bob(registry: ToolRegistry, tmp_path: Path) -> Caller:
    return Caller(registry, "bob", tmp_path / "bob")


async def create(caller: Caller, **args: Any) -> dict[str, Any]:
    ok, out = await caller(
        "schedule_create",
        **{
            "goal": "summarise the news",
            "cadence_type": "interval",
            "cadence_value": "3600",
            **args,
        },
    )
    assert ok, out
    return out  # type: ignore[no-any-return]


class TestSchemas:
    def test_the_six_tools_with_the_upstream_parameters(self, registry: ToolRegistry) -> None:
        assert registry.names == NAMES
        create = registry.get("schedule_create").schema().parameters  # type: ignore[union-attr]
        assert set(create["required"]) == {"goal", "cadence_type", "cadence_value"}
        assert set(create["properties"]) == {
            "goal",
            "cadence_type",
            "cadence_value",
            "name",
            "timezone",
            "notification",
        }
        edit = registry.get("schedule_edit").schema().parameters  # type: ignore[union-attr]
        assert edit["required"] == ["schedule_id"]
        output = registry.get("schedule_run_output").schema().parameters  # type: ignore[union-attr]
        assert set(output["properties"]) == {"run_id", "offset", "max_chars"}


class TestCreate:
    async def test_create_returns_the_schedule_with_its_local_next_run(self, alice: Caller) -> None:
        out = await create(
            alice,
            name="news",
            cadence_type="cron",
            cadence_value="0 9 * * 0",
            notification="conditional",
        )
        assert out["cadence"] == {
            "type": "cron",
            "expression": "0 9 * * 0",
            "timezone": "Europe/Berlin",
        }
        assert out["next_run_at"] == "2026-03-08T08:00:00+00:00"
        assert out["next_run_local"] == "2026-03-08T09:00:00+01:00"
        assert (out["status"], out["notification_policy"]) == ("active", "conditional")

    async def test_the_origin_is_the_calling_session(
        self, alice: Caller, store: ScheduleStore
    ) -> None:
        out = await create(alice)
        stored = await store.get("alice", out["schedule_id"])
        assert (stored.channel_id, stored.channel_context_id) == ("tui", "alice-session")

    async def test_an_interval_may_be_given_as_a_number(self, alice: Caller) -> None:
        out = await create(alice, cadence_value=600)
        assert out["cadence"] == {"type": "interval", "every_secs": 600}

    @pytest.mark.parametrize(
        ("args", "needle"),
        [
            ({"cadence_value": "30"}, "below the minimum"),
            ({"cadence_type": "once", "cadence_value": "2020-01-01T00:00:00Z"}, "in the past"),
            ({"cadence_type": "cron", "cadence_value": "every day"}, "five-field"),
            ({"timezone": "Mars/Base"}, "unknown time zone"),
            ({"cadence_type": "weekly"}, "Invalid arguments"),
        ],
    )
    async def test_bad_cadences_are_arguments_errors(
        self, alice: Caller, args: dict[str, Any], needle: str
    ) -> None:
        ok, text = await alice(
            "schedule_create",
            **{"goal": "g", "cadence_type": "interval", "cadence_value": "3600", **args},
        )
        assert not ok and needle in text and text.startswith("Invalid arguments")

    async def test_the_per_user_limit(self, alice: Caller, bob: Caller) -> None:
        for _ in range(3):
            await create(alice)
        ok, text = await alice(
            "schedule_create", goal="g", cadence_type="interval", cadence_value="3600"
        )
        assert not ok and "limit reached (3 per user)" in text
        await create(bob)


class TestScoping:
    async def test_a_user_never_sees_or_changes_another_users_schedule(
        self, alice: Caller, bob: Caller
    ) -> None:
        theirs = (await create(bob, name="bob's"))["schedule_id"]
        ok, page = await alice("schedule_search")
        assert ok and page["total"] == 0 and page["schedules"] == []
        for name, args in [
            ("schedule_edit", {"name": "mine now"}),
            ("schedule_delete", {}),
            ("schedule_runs", {}),
        ]:
            ok, text = await alice(name, schedule_id=theirs, **args)
            assert not ok and f"no schedule '{theirs}'" in text
        ok, page = await bob("schedule_search")
        assert [s["name"] for s in page["schedules"]] == ["bob's"]

    async def test_run_output_of_another_users_run_is_refused(
        self, bob: Caller, alice: Caller, store: ScheduleStore
    ) -> None:
        theirs = (await create(bob))["schedule_id"]
        claimed = await store.claim_run(theirs, T0 + timedelta(hours=1))
        assert claimed is not None
        await store.record_run_and_reschedule(
            RunResult(run_id=claimed[0], status="success", output="private"),
            now=T0,
            max_run_history=20,
            auto_disable_after_failures=5,
        )
        ok, text = await alice("schedule_run_output", run_id=claimed[0])
        assert not ok and "no run" in text
        ok, out = await bob("schedule_run_output", run_id=claimed[0], max_chars=10)
        assert ok and (out["chunk"], out["max_chars"], out["total_length"]) == ("private", 200, 7)
        ok, runs = await bob("schedule_runs", schedule_id=theirs, limit=100)
        assert ok and [r["output_summary"] for r in runs["runs"]] == ["private"]


class TestSearchEditDelete:
    async def test_search_pages_with_a_hint(self, alice: Caller, clock: FakeClock) -> None:
        for i in range(3):
            clock.advance(seconds=1)
            await create(alice, name=f"job {i}")
        ok, page = await alice("schedule_search", limit=2)
        assert ok and [s["name"] for s in page["schedules"]] == ["job 2", "job 1"]
        assert (page["total"], page["remaining"]) == (3, 1)
        assert "offset=2" in page["hint"]
        ok, page = await alice("schedule_search", limit=500, name="job 0")
        assert page["limit"] == 50 and page["total"] == 1 and "hint" not in page

    async def test_edit_needs_both_cadence_fields(self, alice: Caller) -> None:
        sid = (await create(alice))["schedule_id"]
        ok, text = await alice("schedule_edit", schedule_id=sid, cadence_type="interval")
        assert not ok and "together" in text

    async def test_edit_pauses_resumes_and_retimes(self, alice: Caller, clock: FakeClock) -> None:
        sid = (await create(alice))["schedule_id"]
        ok, paused = await alice("schedule_edit", schedule_id=sid, status="paused")
        assert ok and (paused["status"], paused["next_run_at"]) == ("paused", None)
        clock.advance(minutes=30)
        ok, resumed = await alice(
            "schedule_edit",
            schedule_id=sid,
            status="active",
            cadence_type="cron",
            cadence_value="30 7 * * *",
        )
        assert ok and resumed["status"] == "active"
        assert resumed["next_run_local"] == "2026-03-02T07:30:00+01:00"
        ok, moved = await alice("schedule_edit", schedule_id=sid, timezone="Asia/Kolkata")
        assert moved["cadence"]["timezone"] == "Asia/Kolkata"
        assert moved["next_run_local"] == "2026-03-02T07:30:00+05:30"

    async def test_delete_removes_it(self, alice: Caller) -> None:
        sid = (await create(alice))["schedule_id"]
        ok, out = await alice("schedule_delete", schedule_id=sid)
        assert ok and out["deleted"] is True
        ok, text = await alice("schedule_delete", schedule_id=sid)
        assert not ok and "no schedule" in text
