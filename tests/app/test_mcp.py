"""MCP end to end: the agent calls an MCP tool in a real turn; `mcp serve` under the SDK client.

Real parts: the `oxydra` CLI as a subprocess, the fake LLM on loopback, `mcp-server-time`
over stdio, and the official SDK's `ClientSession` + `stdio_client` driving `mcp serve`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from oxydra.testing.fake_llm import Call, FakeLLM, Reply

BIN = Path(sys.prefix) / "bin"


def _sets(url: str) -> list[str]:
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
    ]
    return [arg for item in sets for arg in ("--set", item)]


def _write_config(home: Path) -> None:
    config = home / ".oxydra" / "agent.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[mcp.servers.time]\n"
        f'command = "{BIN / "mcp-server-time"}"\n'
        'args = ["--local-timezone", "UTC"]\n'
        "trust_read_only_hint = true\n"
    )


async def _run(cmd: list[str], home: Path) -> tuple[int, str, str]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_turn_calls_an_mcp_tool_and_reads_its_answer(tmp_path: Path) -> None:
    _write_config(tmp_path)
    script = [
        Reply(tool_calls=[Call(name="time__get_current_time", arguments={"timezone": "UTC"})]),
        Reply(text="It is late."),
    ]
    async with FakeLLM(script) as llm:
        cmd = [sys.executable, "-m", "oxydra", "ask", "what time is it?", *_sets(llm.base_url)]
        code, out, err = await _run(cmd, tmp_path)
        llm.assert_done()
        first = llm.requests[0].json()
        second = llm.requests[1].json()
    assert code == 0, err
    assert out.strip() == "It is late."
    offered = [t["function"]["name"] for t in first["tools"]]
    assert "time__get_current_time" in offered and "time__convert_time" in offered
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    # An MCP server's answer reaches the model wrapped as untrusted, naming its server.
    _notice, opening, *body, closing = tool_message["content"].split("\n")
    assert 'source="mcp time"' in opening and closing.startswith("<<<")
    assert json.loads("\n".join(body))["timezone"] == "UTC"


async def test_mcp_list_shows_servers_tools_and_tiers(tmp_path: Path) -> None:
    _write_config(tmp_path)
    cmd = [sys.executable, "-m", "oxydra", "mcp", "list", "--json"]
    code, out, err = await _run(cmd, tmp_path)
    assert code == 0, err
    doc = json.loads(out)
    [server] = doc["servers"]
    assert server["state"] == "ready"
    assert server["tools"] == {
        "time__convert_time": "read_only",
        "time__get_current_time": "read_only",
    }
    assert doc["search_mode"] is False


async def test_mcp_import_prints_config_without_secrets(tmp_path: Path) -> None:
    source = tmp_path / "claude_desktop_config.json"
    source.write_text(
        json.dumps({"mcpServers": {"gh": {"command": "gh-mcp", "env": {"GH_TOKEN": "ghp_1"}}}})
    )
    code, out, err = await _run(
        [sys.executable, "-m", "oxydra", "mcp", "import", str(source)], tmp_path
    )
    assert code == 0, err
    assert "[mcp.servers.gh]" in out and "ghp_1" not in out and "set GH_TOKEN" in err


async def test_mcp_import_of_a_bad_file_names_it(tmp_path: Path) -> None:
    source = tmp_path / "broken.json"
    source.write_text("{not json")
    code, _, err = await _run(
        [sys.executable, "-m", "oxydra", "mcp", "import", str(source)], tmp_path
    )
    assert code == 2 and "broken.json: not valid JSON" in err


async def test_mcp_serve_answers_the_official_sdk_client(tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    script = [Reply(text="Four."), Reply(text="You asked about two plus two.")]
    async with FakeLLM(script) as llm:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "oxydra", "mcp", "serve", *_sets(llm.base_url)],
            env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
        )
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            assert init.server_info.name == "oxydra"
            tools = await session.list_tools()
            assert [t.name for t in tools.tools] == ["run_turn"]
            first = await session.call_tool(
                "run_turn", {"prompt": "two plus two?", "session": "math"}
            )
            again = await session.call_tool(
                "run_turn", {"prompt": "what did I ask?", "session": "math"}
            )
            bad = await session.call_tool("run_turn", {"prompt": ""})
        sent = llm.requests[-1].json()["messages"]
    assert not first.is_error and first.content[0].text == "Four."
    assert again.content[0].text == "You asked about two plus two."
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "two plus two?",
        "what did I ask?",
    ]
    assert bad.is_error


MISBEHAVING = Path(__file__).resolve().parents[1] / "tools" / "mcp" / "servers" / "misbehaving.py"


def _image_config(home: Path) -> None:
    config = home / ".oxydra" / "agent.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[mcp.servers.pics]\n"
        f'command = "{sys.executable}"\n'
        f'args = ["{MISBEHAVING}"]\n'
        f'read_paths = ["{MISBEHAVING.parent}"]\n'
    )


async def test_an_image_result_reaches_a_model_that_takes_images(tmp_path: Path) -> None:
    _image_config(tmp_path)
    script = [Reply(tool_calls=[Call(name="pics__image", arguments={})]), Reply(text="A PNG.")]
    async with FakeLLM(script) as llm:
        sets = [
            f"providers.registry.fake.base_url={llm.base_url}",
            "providers.registry.fake.provider_type=anthropic",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
            "selection.model=claude-3-5-haiku-latest",
        ]
        cmd = [sys.executable, "-m", "oxydra", "ask", "show me"]
        cmd += [arg for item in sets for arg in ("--set", item)]
        code, _, err = await _run(cmd, tmp_path)
        second = llm.requests[1].json()
    assert code == 0, err
    result = next(
        block
        for message in second["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    )
    kinds = [part["type"] for part in result["content"]]
    assert kinds == ["text", "image"]
    assert result["content"][1]["source"]["media_type"] == "image/png"
    assert "image/png image from MCP server pics" in result["content"][0]["text"]


async def test_an_openai_chat_model_gets_the_image_after_the_tool_message(tmp_path: Path) -> None:
    """Chat Completions takes no image in a `tool` message: a `user` message carries it."""
    _image_config(tmp_path)
    script = [Reply(tool_calls=[Call(name="pics__image", arguments={})]), Reply(text="A PNG.")]
    async with FakeLLM(script) as llm:
        cmd = [sys.executable, "-m", "oxydra", "ask", "show me", *_sets(llm.base_url)]
        code, _, err = await _run(cmd, tmp_path)
        second = llm.requests[1].json()
    assert code == 0, err
    roles = [m["role"] for m in second["messages"]]
    assert roles[-2:] == ["tool", "user"]
    tool_message, images = second["messages"][-2:]
    assert "image/png image from MCP server pics" in tool_message["content"]
    assert [p["type"] for p in images["content"]] == ["text", "image_url"]
    assert images["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_model_that_reads_no_images_gets_the_note(tmp_path: Path) -> None:
    _image_config(tmp_path)
    script = [Reply(tool_calls=[Call(name="pics__image", arguments={})]), Reply(text="Noted.")]
    async with FakeLLM(script) as llm:
        text_only = ["--set", "selection.model=gpt-3.5-turbo"]
        cmd = [sys.executable, "-m", "oxydra", "ask", "show me", *_sets(llm.base_url), *text_only]
        code, _, err = await _run(cmd, tmp_path)
        second = llm.requests[1].json()
    assert code == 0, err
    assert second["messages"][-1]["role"] == "tool"
    tool_message = second["messages"][-1]
    assert isinstance(tool_message["content"], str)
    assert "image/png image from MCP server pics" in tool_message["content"]
    assert "image_url" not in str(second)


async def test_mcp_serve_stops_a_turn_the_client_cancels(tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.shared.exceptions import MCPError

    slow = Reply(text="z" * 60, chunk=1, delay=5.0)  # about five minutes unless stopped
    async with FakeLLM([slow, Reply(text="Quick answer.")]) as llm:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "oxydra", "mcp", "serve", *_sets(llm.base_url)],
            env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
        )
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            try:
                await session.call_tool(
                    "run_turn", {"prompt": "slow", "session": "s"}, read_timeout_seconds=2.0
                )
            except MCPError:
                pass
            else:
                raise AssertionError("the slow turn should have timed out")
            quick = await session.call_tool(
                "run_turn", {"prompt": "quick", "session": "s"}, read_timeout_seconds=60.0
            )
    assert quick.content[0].text == "Quick answer."


async def test_vm_services_start_mcp_in_the_background(tmp_path: Path) -> None:
    """A server that never answers its handshake does not hold the gateway back."""
    import msgspec

    from oxydra.app.services import open_services
    from oxydra.config.schema import McpConfig, McpServerConfig, ProviderEntry
    from oxydra.runtime import provision_workspace
    from tests.providers.conftest import config_for

    hang = McpServerConfig(
        command=sys.executable,
        args=[str(MISBEHAVING), "hang"],
        read_paths=[str(MISBEHAVING.parent)],
        startup_timeout_secs=60.0,
    )
    async with FakeLLM() as llm:
        entry = ProviderEntry(provider_type="openai", base_url=llm.base_url, api_key="k")
        config = msgspec.structs.replace(
            config_for({"openai": entry}), mcp=McpConfig(servers={"hang": hang})
        )
        async with asyncio.timeout(20):  # far less than the server's 60 s handshake bound
            services = await open_services(
                config,
                user_id="alice",
                workspace=provision_workspace(tmp_path / "ws"),
                environ={"HOME": str(tmp_path)},
                mcp_background=True,
            )
        try:
            services.start_background(object())
            [starter] = services.background
            assert starter.hub.servers["hang"].state.value == "starting"
        finally:
            async with asyncio.timeout(20):
                await services.aclose()


async def test_mcp_check_warns_and_fails_on_a_server_that_did_not_start(tmp_path: Path) -> None:
    config = tmp_path / ".oxydra" / "agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[mcp]\nallow_unconfined = ["ghost"]\n\n'
        '[mcp.servers.ghost]\ncommand = "/nonexistent/ghost-mcp"\nenv = { TOKEN = "inline" }\n'
    )
    code, out, err = await _run([sys.executable, "-m", "oxydra", "mcp", "check"], tmp_path)
    assert code == 1, err
    assert "ghost  failed  stdio" in out and "not found" in out
    assert "mcp.servers.ghost.env.TOKEN: an inline value" in out
    assert "'ghost' may run without Landlock" in out
    assert "error: MCP server 'ghost' did not start" in out
