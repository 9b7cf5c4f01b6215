"""The MCP client over HTTP against servers built with the official SDK's own classes.

SDK 2.3.0 (this venv) serves Streamable HTTP and the legacy SSE transport; SDK 1.30.0 runs
from its own venv (see conftest). Every server listens on 127.0.0.1, which the SSRF guard
refuses unless the egress allow-list opens it: the tests open it explicitly.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from oxydra.config.schema import McpServerConfig
from oxydra.tools import ToolExecutionContext

LOOPBACK = ["127.0.0.1"]


def http(url: str, **extra: object) -> McpServerConfig:
    fields: dict[str, object] = {"startup_timeout_secs": 20.0, "timeout_secs": 10.0}
    return McpServerConfig(url=url, **(fields | extra))  # type: ignore[arg-type]


class TestStreamableHttp:
    async def test_tools_list_and_call_over_streamable_http(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url)}, egress_allowlist=LOOPBACK)
        [status] = hub.status()
        assert status.state == "ready", status.error
        assert {"sdk__add", "sdk__slow", "sdk__fail", "sdk__version"} <= set(hub.tools())
        result = await hub.registry.execute("sdk__add", {"a": 2, "b": 40}, call_ctx)
        assert result.ok and result.text == "42"
        version = await hub.registry.execute("sdk__version", {}, call_ctx)
        assert version.text == "2"

    @pytest.mark.parametrize("protocol", ["2025-11-25", "2026-07-28"])
    async def test_both_eras_over_http(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext, protocol: str
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url, protocol=protocol)}, egress_allowlist=LOOPBACK)
        assert hub.status()[0].protocol == protocol, hub.status()[0].error
        result = await hub.registry.execute("sdk__add", {"a": 1, "b": 1}, call_ctx)
        assert result.ok and result.text == "2"

    async def test_a_failing_tool_and_bad_arguments_are_tool_errors(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url)}, egress_allowlist=LOOPBACK)
        failed = await hub.registry.execute("sdk__fail", {}, call_ctx)
        assert not failed.ok and "Error executing tool fail" in failed.text
        bad = await hub.registry.execute("sdk__add", {"a": "two"}, call_ctx)
        assert not bad.ok

    @pytest.mark.parametrize("protocol", ["2025-11-25", "2026-07-28"])
    async def test_a_timeout_cancels_the_call_on_the_server(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext, tmp_path: Path, protocol: str
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        config = http(url, timeout_secs=0.5, protocol=protocol)
        hub = await make_hub({"sdk": config}, egress_allowlist=LOOPBACK)
        result = await hub.registry.execute("sdk__slow", {"seconds": 30}, call_ctx)
        assert result.error_kind == "timeout" and "within 0.5 seconds" in result.text
        async with asyncio.timeout(10):
            while not (tmp_path / "cancelled").exists():
                await asyncio.sleep(0.05)

    async def test_an_ended_session_is_started_again_and_the_call_retried(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url, protocol="2025-11-25")}, egress_allowlist=LOOPBACK)
        first = sdk_http.processes[0]
        first.terminate()
        first.wait(10)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        sdk_http(sys.executable, "streamable-http", port)
        result = await hub.registry.execute("sdk__add", {"a": 20, "b": 22}, call_ctx)
        assert result.ok and result.text == "42", result.text

    @pytest.mark.parametrize("protocol", ["2025-11-25", "2026-07-28"])
    async def test_list_changed_over_http_registers_the_new_tool(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext, protocol: str
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url, protocol=protocol)}, egress_allowlist=LOOPBACK)
        assert "sdk__grown" not in hub.tools()
        result = await hub.registry.execute("sdk__grow", {}, call_ctx)
        assert result.ok, result.text
        async with asyncio.timeout(10):
            while "sdk__grown" not in hub.tools():
                await asyncio.sleep(0.05)
        grown = await hub.registry.execute("sdk__grown", {}, call_ctx)
        assert grown.text == "grown"


class TestLegacySse:
    async def test_the_legacy_http_sse_transport(
        self, make_hub, sdk_http, call_ctx: ToolExecutionContext
    ) -> None:
        url = sdk_http(sys.executable, "sse")
        hub = await make_hub({"old": http(url)}, egress_allowlist=LOOPBACK)
        [status] = hub.status()
        assert status.state == "ready", status.error
        result = await hub.registry.execute("old__add", {"a": 3, "b": 4}, call_ctx)
        assert result.ok and result.text == "7"


class TestSsrf:
    async def test_a_private_address_is_refused_without_an_allow_list_entry(
        self, make_hub, sdk_http
    ) -> None:
        url = sdk_http(sys.executable, "streamable-http")
        hub = await make_hub({"sdk": http(url)})
        [status] = hub.status()
        assert status.state == "failed"
        assert "refused to fetch from 127.0.0.1" in (status.error or "")
        assert hub.tools() == {}

    @pytest.mark.parametrize(
        "url",
        [
            "http://169.254.169.254/mcp",
            "http://10.0.0.8/mcp",
            "http://[::1]:9/mcp",
            "http://0x7f000001/mcp",
            "http://localhost:9/mcp",
        ],
    )
    async def test_private_and_metadata_urls_are_refused(self, make_hub, url: str) -> None:
        hub = await make_hub({"evil": http(url, startup_timeout_secs=5.0)})
        [status] = hub.status()
        assert status.state == "failed" and "refused" in (status.error or ""), status.error


class TestSdkMajorOne:
    async def test_a_server_on_sdk_1x_over_streamable_http(
        self, make_hub, sdk_http, mcp1_python: str, call_ctx: ToolExecutionContext
    ) -> None:
        url = sdk_http(mcp1_python, "streamable-http")
        hub = await make_hub({"v1": http(url)}, egress_allowlist=LOOPBACK)
        [status] = hub.status()
        assert status.state == "ready", status.error
        assert status.protocol == "2025-11-25"
        version = await hub.registry.execute("v1__version", {}, call_ctx)
        assert version.text == "1"
        result = await hub.registry.execute("v1__add", {"a": 5, "b": 6}, call_ctx)
        assert result.text == "11"

    async def test_a_server_on_sdk_1x_over_stdio(
        self, make_hub, mcp1_python: str, call_ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        from tests.tools.mcp.conftest import SDK_SERVER

        venv = str(Path(mcp1_python).parent.parent)
        config = McpServerConfig(
            command=mcp1_python, args=[str(SDK_SERVER), "stdio", "0", str(tmp_path)],
            read_paths=[str(SDK_SERVER.parent), venv], startup_timeout_secs=30.0,
        )  # fmt: skip
        hub = await make_hub({"v1": config})
        assert hub.status()[0].state == "ready", hub.status()[0].error
        result = await hub.registry.execute("v1__version", {}, call_ctx)
        assert result.text == "1"
