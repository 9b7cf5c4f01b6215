"""The gateway under load: a real `vm` process, the fake LLM in another, clients here.

"Runtime alone" runs the same turns in-process with the same durable store (every message
fsynced, as in `vm`), so the difference is the gateway's own cost: WebSocket, frames, fan-out.

Figures: idle RSS of `vm`; a warm turn's latency through the gateway minus the same turn run
by the runtime in-process (the gateway's added cost); then N concurrent clients (100, 1,000)
each running one turn: throughput, p50/p99 turn latency, RSS per session, frames lost.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._procs import start_fake_llm, stop
from bench._timing import percentile
from oxydra.wire import gateway as g

TOKEN = "bench-token-0123456789abcdef"
ANSWER = "The quick brown fox jumps over the lazy dog. " * 5


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start_fake(tmp: Path, steps: int) -> tuple[subprocess.Popen[str], str]:
    return start_fake_llm(tmp, [{"kind": "reply", "text": ANSWER, "chunk": 16}] * steps)


def _sets(url: str) -> list[str]:
    return [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
        "gateway.max_sessions_per_user=5000",
        "gateway.max_concurrent_turns_per_user=5000",
    ]


def _start_vm(
    tmp: Path, url: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    ws = tmp / "ws"
    cmd = [sys.executable, "-m", "oxydra", "vm", "--user-id", "bench", "--workspace-root", str(ws)]
    for item in [*_sets(url), *extra]:
        cmd += ["--set", item]
    env = {**os.environ, "HOME": str(tmp / "home"), "OXYDRA__GATEWAY__AUTH_TOKEN": TOKEN}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    marker = ws / "ipc" / "gateway-endpoint"
    while not marker.exists():
        time.sleep(0.05)
    return proc, marker.read_text().strip()


async def _connect(endpoint: str) -> tuple[Any, str]:
    from websockets.asyncio.client import connect

    ws = await connect(
        endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"}, open_timeout=60
    )
    await ws.send(
        g.encode_frame(
            g.Hello(request_id="h", protocol_version=2, user_id="bench", create_new_session=True)
        ).decode()
    )
    ack = g.decode_server_frame(await ws.recv())
    assert isinstance(ack, g.HelloAck)
    return ws, ack.session.session_id


async def _turn(ws: Any, sid: str) -> tuple[float, bool]:
    start = time.perf_counter()
    await ws.send(
        g.encode_frame(
            g.SendTurn(request_id="r", session_id=sid, turn_id=uuid.uuid4().hex, prompt="hi")
        ).decode()
    )
    seqs, text = [], ""
    while True:
        frame = g.decode_server_frame(await ws.recv())
        seqs.append(getattr(frame, "seq", None))
        if isinstance(frame, g.AssistantDelta):
            text += frame.delta
        if isinstance(frame, g.TurnCompleted | g.TurnCancelled | g.ErrorFrame):
            break
    intact = seqs == list(range(seqs[0], seqs[0] + len(seqs))) and text == ANSWER
    return time.perf_counter() - start, intact


async def _one_turn(endpoint: str) -> tuple[float, bool]:
    ws, sid = await _connect(endpoint)
    try:
        return await _turn(ws, sid)
    finally:
        await ws.close()


async def _runtime_alone(url: str, turns: int) -> list[float]:
    from oxydra.app.services import open_services
    from oxydra.config.loader import ConfigSources, load_agent_config
    from oxydra.runtime.api import TurnRequest

    with tempfile.TemporaryDirectory() as tmp:
        config = load_agent_config(
            ConfigSources(home=Path(tmp), cwd=Path(tmp), environ={}, overrides=_sets(url))
        ).config
        services = await open_services(config, user_id="u", workspace=Path(tmp), environ={})
        agent = services.agent

        async def sink(_item: object) -> None:
            return None

        times = []
        for i in range(turns):
            start = time.perf_counter()
            await agent.runtime.run_turn(
                TurnRequest(user_id="u", session_id="s", turn_id=f"t{i}", prompt="hi"), sink
            )
            times.append(time.perf_counter() - start)
        await services.aclose()
    return times


async def _load(endpoint: str, clients: int) -> tuple[float, list[float], int]:
    start = time.perf_counter()
    results = await asyncio.gather(*(_one_turn(endpoint) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    lost = sum(1 for _, intact in results if not intact)
    return elapsed, [t for t, _ in results], lost


async def _main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, url = _start_fake(tmp, 1400)
        vm, endpoint = _start_vm(tmp, url)
        try:
            await asyncio.sleep(1.0)
            idle = _rss_mib(vm.pid)
            print(f"idle vm RSS:                        {idle:7.1f} MiB")
            alone = await _runtime_alone(url, 40)
            ws, sid = await _connect(endpoint)
            through = [(await _turn(ws, sid))[0] for _ in range(40)]
            await ws.close()
            added = (statistics.median(through) - statistics.median(alone)) * 1000
            print(f"warm turn, runtime alone (median):  {statistics.median(alone) * 1000:7.2f} ms")
            print(
                f"warm turn, through the gateway:     {statistics.median(through) * 1000:7.2f} ms"
                f"  (added {added:.2f} ms)"
            )
            for clients in (100, 1000):
                before = _rss_mib(vm.pid)
                elapsed, lat, lost = await _load(endpoint, clients)
                after = _rss_mib(vm.pid)
                print(
                    f"{clients:5d} concurrent clients: {clients / elapsed:7.1f} turns/s, "
                    f"p50 {percentile(lat, 50) * 1000:6.1f} ms, "
                    f"p99 {percentile(lat, 99) * 1000:6.1f} ms, "
                    f"RSS +{(after - before) * 1024 / clients:5.1f} KiB/session, frames lost {lost}"
                )
        finally:
            stop(vm, fake)


def main() -> None:
    asyncio.run(_main())
