"""Runtime overhead per turn, and token counting throughput.

A turn here is one tool round trip plus a 200-token streamed answer against the loopback fake
LLM (in its own process, zero delay). The bare baseline does the same two streaming HTTP
exchanges with httpx and reads every SSE line; the ratio is the runtime's cost over them.
Each figure is the median per turn of wall time and of this process's CPU time (the fake
LLM runs in its own process, so its work counts in neither), after five warm-up turns.
"""

from __future__ import annotations

import asyncio
import os
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


Times = list[tuple[float, float]]  # (wall, CPU) seconds per turn


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    now = _clock()
    return now[0] - start[0], now[1] - start[1]


async def _bare(url: str) -> Times:
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
            start = _clock()
            for _ in range(2):
                async with client.stream(
                    "POST",
                    url + "/v1/chat/completions",
                    json=body,
                    headers={"Authorization": "Bearer k"},
                ) as response:
                    async for _line in response.aiter_lines():
                        pass
            times.append(_since(start))
    return times


async def _runtime(url: str, tmp: Path, isolation: str = "auto") -> Times:
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
        start = _clock()
        outcome = await agent.runtime.run_turn(
            TurnRequest(user_id="u", session_id=f"s{i}", turn_id="t", prompt="list files"), sink
        )
        times.append(_since(start))
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


def _median(times: Times) -> tuple[float, float]:
    kept = times[5:]
    return statistics.median(t[0] for t in kept), statistics.median(t[1] for t in kept)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        proc, url = _fake(tmp)
        try:
            bare = _median(asyncio.run(_bare(url)))
            ours = _median(asyncio.run(_runtime(url, tmp)))
            jail = _median(asyncio.run(_runtime(url, tmp, "process")))
        finally:
            proc.terminate()
            proc.wait()
    print(f"load average {os.getloadavg()[0]:.2f}; per turn: wall, CPU (ratio to bare)")
    rows = [
        ("bare httpx, 2 streaming exchanges", bare),
        ("runtime turn, file tool in the WASM guest", ours),
        ("runtime turn, file tool in-process jail", jail),
    ]
    for label, (wall, cpu) in rows:
        print(
            f"  {label:42s} {wall * 1000:6.2f} ms ({wall / bare[0]:.2f}x)  "
            f"{cpu * 1000:6.2f} ms CPU ({cpu / bare[1]:.2f}x)"
        )
    _tokens()
