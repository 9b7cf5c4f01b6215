"""Scratchpad tools over the in-memory store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from oxydra.tools import InMemoryScratchpad, ToolExecutionContext, ToolRegistry
from oxydra.tools._scratchpad import scratchpad_tools


@pytest.fixture
def reg() -> ToolRegistry:
    registry = ToolRegistry()
    clock = lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)  # noqa: E731
    registry.register_all(scratchpad_tools(InMemoryScratchpad(clock)))
    return registry


async def test_write_read_clear_cycle(reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
    empty = json.loads((await reg.execute("scratchpad_read", {}, ctx)).text)
    assert empty == {"session_id": "s1", "items": [], "updated_at": None, "item_count": 0}
    written = json.loads((await reg.execute("scratchpad_write", {"items": ["a", "b"]}, ctx)).text)
    assert written["item_count"] == 2 and written["updated_at"] == "2025-01-02T03:04:05+00:00"
    assert json.loads((await reg.execute("scratchpad_read", {}, ctx)).text)["items"] == ["a", "b"]
    cleared = json.loads((await reg.execute("scratchpad_clear", {}, ctx)).text)
    assert cleared == {"cleared": True, "message": "scratchpad cleared"}
    again = json.loads((await reg.execute("scratchpad_clear", {}, ctx)).text)
    assert again["cleared"] is False


async def test_sessions_do_not_share_a_scratchpad(
    reg: ToolRegistry, ctx: ToolExecutionContext
) -> None:
    await reg.execute("scratchpad_write", {"items": ["mine"]}, ctx)
    other = json.loads(
        (await reg.execute("scratchpad_read", {}, replace(ctx, session_id="s2"))).text
    )
    assert other["items"] == []


@pytest.mark.parametrize("items", [[], ["x"] * 33, ["y" * 241], [""]])
async def test_limits_are_enforced(
    reg: ToolRegistry, ctx: ToolExecutionContext, items: list[str]
) -> None:
    assert (
        await reg.execute("scratchpad_write", {"items": items}, ctx)
    ).error_kind == "invalid_arguments"
