"""MCP figures: cold start to the first listed tool, added overhead per call, request size.

Run: `python -m bench mcp` from the repository root (needs the dev extra: mcp-server-time,
mcp-server-git and the SDK). Servers run exactly as the agent runs them (confined, through
`McpHub`). Figures vary by about +-20% on a shared 2-core machine.

1. Cold start: `McpHub.start()` of one server until its tools are registered, median of 5.
2. Overhead per call: `ToolRegistry.execute` of an echo tool (codec, client, adapter, policy,
   scrubbing) minus a bare JSON line round trip to the same server program, median of 300.
3. Request body: the Chat Completions body of a one-message turn offering the built-in
   tools plus 5 servers' tools (time, git, the SDK fixture, two of ours), with every schema
   sent and in search mode (`mcp_find_tools`, forced here by a threshold of 1 byte; the
   default threshold is 24 KiB of MCP schemas).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.config.schema import AgentConfig, McpConfig, McpServerConfig  # noqa: E402
from oxydra.core.messages import Context, Message  # noqa: E402
from oxydra.security import Workspace  # noqa: E402
from oxydra.tools import (  # noqa: E402
    LocalFileBackend,
    ToolExecutionContext,
    ToolRegistry,
    default_registry,
    default_tools,
)
from oxydra.tools.mcp import McpHub  # noqa: E402
from oxydra.wire import openai_chat  # noqa: E402

BIN = Path(sys.prefix) / "bin"
SERVERS = ROOT / "tests" / "tools" / "mcp" / "servers"


def _ours(*modes: str) -> McpServerConfig:
    return McpServerConfig(
        command=sys.executable,
        args=[str(SERVERS / "misbehaving.py"), *modes],
        read_paths=[str(SERVERS)],
    )


def _configs(tmp: Path, repo: Path) -> dict[str, McpServerConfig]:
    return {
        "time": McpServerConfig(command=str(BIN / "mcp-server-time")),
        "git": McpServerConfig(
            command=str(BIN / "mcp-server-git"),
            args=["--repository", str(repo)],
            read_paths=[str(repo)],
        ),
        "sdk": McpServerConfig(
            command=sys.executable,
            args=[str(SERVERS / "sdk_server.py"), "stdio", "0", str(tmp)],
            read_paths=[str(SERVERS)],
        ),
        "ours": _ours(),
        "paged": _ours("paginate"),
    }


async def _cold_start(name: str, config: McpServerConfig, tmp: Path) -> float:
    times = []
    for _ in range(5):
        hub = McpHub(
            McpConfig(servers={name: config}), ToolRegistry(), environ=os.environ, state_dir=tmp
        )
        start = time.perf_counter()
        await hub.start()
        elapsed = time.perf_counter() - start
        assert hub.tools(), hub.status()
        await hub.stop()
        times.append(elapsed)
    return statistics.median(times)


async def _overhead(tmp: Path) -> tuple[float, float]:
    hub = McpHub(
        McpConfig(servers={"ours": _ours()}), ToolRegistry(), environ=os.environ, state_dir=tmp
    )
    await hub.start()
    ws = tmp / "ws"
    for sub in ("shared", "tmp", "vault"):
        (ws / sub).mkdir(parents=True, exist_ok=True)
    ctx = ToolExecutionContext(
        user_id="u", session_id="s", workspace=LocalFileBackend(Workspace.for_user(ws))
    )
    ours = []
    for _ in range(300):
        start = time.perf_counter()
        result = await hub.registry.execute("ours__echo", {"text": "hello"}, ctx)
        ours.append(time.perf_counter() - start)
        assert result.ok
    await hub.stop()
    return statistics.median(ours), _bare_round_trip()


def _bare_round_trip() -> float:
    process = subprocess.Popen(
        [sys.executable, str(SERVERS / "misbehaving.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    params = b'{"name":"echo","arguments":{"text":"hello"}}'
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + params + b"}\n"
    times = []
    for _ in range(300):
        start = time.perf_counter()
        process.stdin.write(call)
        process.stdin.flush()
        process.stdout.readline()
        times.append(time.perf_counter() - start)
    process.stdin.close()
    process.wait()
    return statistics.median(times)


async def _request_bodies(tmp: Path, repo: Path) -> tuple[int, int, int, int]:
    config = AgentConfig()
    sizes = []
    for threshold in (10**9, 1):  # every schema sent; search mode forced
        registry = default_registry(config, default_tools(config))
        mcp = McpConfig(servers=_configs(tmp, repo), search_threshold_bytes=threshold)
        hub = McpHub(mcp, registry, environ=os.environ, state_dir=tmp / f"s{threshold}")
        await hub.start()
        context = Context(
            provider="openai", model="gpt-4o-mini",
            messages=(Message(role="user", content="What time is it in Tokyo?"),),
            tools=tuple(registry.schemas()),
        )  # fmt: skip
        body = openai_chat.build_request(context, openai_chat.OpenAIChatProfile(), stream=True)
        sizes.append((len(msgspec.json.encode(body.body)), len(hub.tools())))
        await hub.stop()
    builtin = default_registry(config, default_tools(config)).schemas()
    context = Context(
        provider="openai", model="gpt-4o-mini",
        messages=(Message(role="user", content="What time is it in Tokyo?"),),
        tools=tuple(builtin),
    )  # fmt: skip
    base = openai_chat.build_request(context, openai_chat.OpenAIChatProfile(), stream=True)
    return sizes[0][0], sizes[1][0], len(msgspec.json.encode(base.body)), sizes[0][1]


def _repo(tmp: Path) -> Path:
    repo = tmp / "git" / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "f").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "c"], check=True, env=env)
    return repo


async def _main() -> None:
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        repo = _repo(tmp)
        for name in ("time", "git", "ours"):
            config = _configs(tmp, repo)[name]
            seconds = await _cold_start(name, config, tmp)
            print(f"cold start to first listed tool, {name}: {seconds * 1000:.0f} ms (median of 5)")
        ours, bare = await _overhead(tmp)
        print(
            f"call through the registry: {ours * 1e6:.0f} us; bare JSON line round trip: "
            f"{bare * 1e6:.0f} us; added overhead: {(ours - bare) * 1e6:.0f} us (median of 300)"
        )
        full, search, base, count = await _request_bodies(tmp, repo)
        print(
            f"request body, built-in tools only: {base} bytes; with 5 servers ({count} MCP "
            f"tools): {full} bytes all schemas, {search} bytes in search mode"
        )


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
