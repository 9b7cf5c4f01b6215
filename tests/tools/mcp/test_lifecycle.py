"""Crashes, restarts, cancellation, list changes, clashes and the prompt budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from oxydra.config.schema import ApprovalConfig, ToolsConfig
from oxydra.core.tiers import SafetyTier
from oxydra.tools import ToolExecutionContext, ToolRegistry, tool
from oxydra.tools.mcp import SEARCH_TOOL
from tests.tools.mcp.conftest import misbehaving


async def _until(predicate, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


def _has_line(path: Path) -> bool:
    """Whether the server finished writing a line to `path` (it may exist yet be empty)."""
    return path.exists() and path.read_text().endswith("\n")


class TestCrashAndRestart:
    async def test_a_crash_mid_call_fails_the_call_and_the_server_restarts(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()}, restart_backoff_secs=0.05)
        server = hub.servers["bad"]
        result = await hub.registry.execute("bad__crash", {}, call_ctx)
        assert not result.ok and "stopped" in result.text and "exit code 3" in result.text
        await _until(lambda: server.state.value == "ready" and server.restarts == 1)
        again = await hub.registry.execute("bad__echo", {"text": "back"}, call_ctx)
        assert again.ok and again.text == "back"

    async def test_a_call_while_restarting_fails_at_once_with_the_reason(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()}, restart_backoff_secs=30.0)
        await hub.registry.execute("bad__crash", {}, call_ctx)
        result = await hub.registry.execute("bad__echo", {"text": "x"}, call_ctx)
        assert not result.ok and "restarting" in result.text and "crashed" in result.text

    async def test_restarts_stop_after_the_configured_count(
        self, make_hub, call_ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        hub = await make_hub({"bad": misbehaving()}, restart_backoff_secs=0.05, restart_max=0)
        await hub.registry.execute("bad__crash", {}, call_ctx)
        server = hub.servers["bad"]
        await _until(lambda: server.state.value == "failed")
        assert "gave up after 0 restarts" in (server.error or "")


class TestCancellation:
    async def test_a_timeout_sends_notifications_cancelled(
        self, make_hub, call_ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        hub = await make_hub({"bad": misbehaving(timeout_secs=0.5)})
        result = await hub.registry.execute("bad__slow", {"seconds": 30}, call_ctx)
        assert not result.ok and "did not answer tools/call within 0.5 seconds" in result.text
        marker = tmp_path / "mcp" / "bad" / "cancelled"
        await _until(lambda: _has_line(marker))
        assert "no answer within 0.5 seconds" in marker.read_text()

    async def test_stopping_the_turn_cancels_the_call_on_the_server(
        self, make_hub, call_ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        call = asyncio.ensure_future(hub.registry.execute("bad__slow", {"seconds": 30}, call_ctx))
        await _until(lambda: _has_line(tmp_path / "mcp" / "bad" / "inflight"))  # it runs there
        call.cancel()
        async with asyncio.timeout(5):  # the call ends within a bound, not after 30 s
            results = await asyncio.gather(call, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        marker = tmp_path / "mcp" / "bad" / "cancelled"
        await _until(lambda: _has_line(marker))
        assert "the caller cancelled the request" in marker.read_text()
        after = await hub.registry.execute("bad__echo", {"text": "alive"}, call_ctx)
        assert after.ok and after.text == "alive"


class TestParallelism:
    async def _inflight(
        self, make_hub, tmp_path: Path, tier: SafetyTier, ctx: ToolExecutionContext
    ) -> int:
        from oxydra.core.messages import ToolCall
        from oxydra.runtime.registry_tools import RegistryExecutor
        from oxydra.runtime.toolrun import run_calls

        hub = await make_hub({"bad": misbehaving(safety_tier=tier)})
        executor = RegistryExecutor(hub.registry, lambda _user: ctx.workspace)
        calls = [
            ToolCall(id=f"c{i}", name="bad__slow", arguments={"seconds": 1.0}) for i in range(2)
        ]
        results = await run_calls(calls, executor, ctx)
        assert all(outcome.ok for _, outcome in results), results
        marker = tmp_path / "mcp" / "bad" / "inflight"
        return max(int(line) for line in marker.read_text().split())

    async def test_read_only_mcp_calls_run_together(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        assert await self._inflight(make_hub, tmp_path, SafetyTier.READ_ONLY, call_ctx) == 2

    async def test_side_effecting_mcp_calls_run_one_at_a_time(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        tier = SafetyTier.SIDE_EFFECTING
        assert await self._inflight(make_hub, tmp_path, tier, call_ctx) == 1


class TestListChanged:
    async def test_list_changed_registers_the_new_tool(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving("listchange")})
        before = set(hub.tools())
        await hub.registry.execute("bad__grow", {}, call_ctx)
        await _until(lambda: len(hub.tools()) == len(before) + 1)
        [new] = set(hub.tools()) - before
        assert new.startswith("bad__grown") and new in hub.registry


class TestNamesAndPolicy:
    async def test_a_name_clash_between_two_servers_is_reported(self, make_hub) -> None:
        hub = await make_hub({"one": misbehaving(), "one_": misbehaving()})
        assert "one__echo" in hub.tools()
        assert "one___echo" in hub.tools()
        registry = ToolRegistry()

        @tool(name="dup__echo")
        async def native(text: str) -> str:
            """A built-in tool.

            Args:
                text: anything.
            """
            return text

        registry.register(native)
        clash = await make_hub({"dup": misbehaving()}, registry=registry)
        assert registry.get("dup__echo") is native
        problems = " ".join(clash.status()[0].problems)
        assert "'dup__echo' is already taken by a built-in tool" in problems

    async def test_approval_always_asks_even_for_a_read_only_tier(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        registry = ToolRegistry(ToolsConfig(approval=ApprovalConfig(default="deny")))
        config = misbehaving(approval="always", safety_tier=SafetyTier.READ_ONLY)
        hub = await make_hub({"bad": config}, registry=registry)
        result = await hub.registry.execute("bad__echo", {"text": "x"}, call_ctx)
        assert result.error_kind == "denied"

    async def test_an_unset_env_reference_is_reported_naming_the_key(self, make_hub) -> None:
        hub = await make_hub({"bad": misbehaving(env={"KEY": "${NOT_SET_ANYWHERE}"})})
        [status] = hub.status()
        assert status.state == "failed"
        assert "mcp.servers.bad.env.KEY refers to ${NOT_SET_ANYWHERE}" in (status.error or "")

    async def test_a_disabled_server_is_not_started(self, make_hub) -> None:
        hub = await make_hub({"off": misbehaving(enabled=False)})
        assert hub.status()[0].state == "disabled" and hub.tools() == {}


class TestPromptBudget:
    async def test_past_the_threshold_schemas_are_found_then_sent(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        servers = {f"s{i}": misbehaving() for i in range(3)}
        hub = await make_hub(servers, search_threshold_bytes=1000)
        names = [d.name for d in hub.registry.schemas()]
        assert names == [SEARCH_TOOL]
        found = await hub.registry.execute(
            SEARCH_TOOL, {"query": "echo text back", "server": "s1"}, call_ctx
        )
        entries = msgspec.json.decode(found.text)["tools"]
        assert entries[0]["name"] == "s1__echo"
        assert "s1__echo" in [d.name for d in hub.registry.schemas()]
        direct = await hub.registry.execute("s2__echo", {"text": "deferred but callable"}, call_ctx)
        assert direct.ok

    async def test_under_the_threshold_every_schema_is_sent_and_no_search_tool(
        self, make_hub
    ) -> None:
        hub = await make_hub({"s": misbehaving()})
        names = [d.name for d in hub.registry.schemas()]
        assert SEARCH_TOOL not in names and "s__echo" in names


class TestSubAgents:
    def test_an_agent_may_list_tools_of_a_configured_mcp_server(self) -> None:
        import pytest

        from oxydra.config.schema import AgentDefinition
        from oxydra.core.errors import ConfigError
        from oxydra.runtime.delegation import check_agent_tools
        from oxydra.tools.mcp import server_prefix

        agents = {"r": AgentDefinition(tools=["time__get_current_time", "file_read"])}
        check_agent_tools(agents, ["file_read"], later=(server_prefix("time"),))
        with pytest.raises(ConfigError, match="unknown tool 'time__get_current_time'"):
            check_agent_tools(agents, ["file_read"], later=(server_prefix("git"),))

    async def test_a_default_sub_agent_sees_mcp_tools_registered_later(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        from oxydra.core.messages import ToolCall
        from oxydra.runtime.registry_tools import RegistryExecutor

        registry = ToolRegistry()
        view = RegistryExecutor(registry, lambda _user: call_ctx.workspace).without(
            {"delegate_to_agent"}
        )
        assert view.schemas() == []
        await make_hub({"late": misbehaving()}, registry=registry)
        assert "late__echo" in [d.name for d in view.schemas()]
        call = ToolCall(id="c1", name="late__echo", arguments={"text": "hi"})
        assert (await view.execute(call, call_ctx)).text == "hi"
        denied = ToolCall(id="c2", name="delegate_to_agent", arguments={})
        assert (await view.execute(denied, call_ctx)).error_kind == "unknown_tool"
