"""Runtime overhead per turn, and token counting throughput.

A turn here is one tool round trip plus a 200-token streamed answer against the loopback fake
LLM (in its own process, zero delay). The bare baseline does the same two streaming HTTP
exchanges with httpx and reads every SSE line; the ratio is the runtime's cost over them.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._procs import start_fake_llm

WORDS = " ".join(f"w{i}" for i in range(200))
TURNS = 60


def _fake(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    call = {
        "kind": "reply",
        "tool_calls": [{"name": "file_list", "arguments": {"path": "/shared"}}],
    }
    text = {"kind": "reply", "text": WORDS, "chunk": 4}
    return start_fake_llm(tmp, [call, text] * (3 * TURNS + 10))


async def _bare(url: str) -> list[float]:
    import httpx

    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "list files"}],
    }
    times = []
    async with httpx.AsyncClient() as client:
        for _ in range(TURNS):
            start = time.perf_counter()
            for _ in range(2):
                async with client.stream(
                    "POST",
                    url + "/v1/chat/completions",
                    json=body,
                    headers={"Authorization": "Bearer k"},
                ) as response:
                    async for _line in response.aiter_lines():
                        pass
            times.append(time.perf_counter() - start)
    return times


async def _runtime(url: str, tmp: Path, isolation: str = "auto") -> list[float]:
    from oxydra.config.loader import ConfigSources, load_agent_config
    from oxydra.runtime.api import TurnRequest
    from oxydra.runtime.factory import build_agent, provision_workspace

    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
        f"tools.isolation={isolation}",
    ]
    config = load_agent_config(ConfigSources(home=tmp, cwd=tmp, environ={}, overrides=sets)).config
    agent = build_agent(config, workspace=provision_workspace(tmp / "ws"), environ={})

    async def sink(_item: object) -> None:
        return None

    times = []
    for i in range(TURNS):
        start = time.perf_counter()
        outcome = await agent.runtime.run_turn(
            TurnRequest(user_id="u", session_id=f"s{i}", turn_id="t", prompt="list files"), sink
        )
        times.append(time.perf_counter() - start)
        assert outcome.ok, outcome.detail
    await agent.aclose()
    return times


def _tokens() -> None:
    from oxydra.runtime.tokens import load_counter

    start = time.perf_counter()
    counter = load_counter("cl100k_base")
    loaded = time.perf_counter() - start
    text = (Path(__file__).read_text() * 200)[:1_000_000]
    start = time.perf_counter()
    count = counter.count(text)
    elapsed = time.perf_counter() - start
    print(
        f"token counting: load {loaded * 1000:.0f} ms, {count / elapsed / 1e6:.2f} M tokens/s, "
        f"{len(text) / elapsed / 1e6:.1f} MB/s"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        proc, url = _fake(tmp)
        try:
            bare = statistics.median(asyncio.run(_bare(url))[5:])
            ours = statistics.median(asyncio.run(_runtime(url, tmp))[5:])
            jail = statistics.median(asyncio.run(_runtime(url, tmp, "process"))[5:])
        finally:
            proc.terminate()
            proc.wait()
    print(f"bare httpx, 2 streaming exchanges:  {bare * 1000:6.2f} ms")
    print(
        f"runtime turn (tool + 200 tokens):   {ours * 1000:6.2f} ms  ({ours / bare:.2f}x, "
        "file tool in the WASM guest)"
    )
    print(f"  same, file tool in-process jail:  {jail * 1000:6.2f} ms  ({jail / bare:.2f}x)")
    _tokens()
