"""The gateway under load: a real `vm` process, the fake LLM in another, clients here.

"Runtime alone" runs the same turns in-process with the same durable store (every message
fsynced, as in `vm`), so the difference is the gateway's own cost: WebSocket, frames,
sessions, fan-out, the span store.

Figures: idle RSS of the `vm` process tree (fresh, and again after the turns); a warm turn's
latency through the gateway minus the same turn run by the runtime in-process (the gateway's
added cost), for a text turn and for a turn with one tool call (`file_write`, two model
calls), in interleaved rounds, with the CPU time per turn of each side; then N concurrent
clients (100, 1,000) each running one turn: throughput, p50/p99 turn latency, RSS per
session, frames lost.

`OXYDRA_BENCH_ROUNDS` (default 5) sets the rounds; `OXYDRA_BENCH_CLIENTS` (default
"100,1000") the load steps ("" skips them); `OXYDRA_BENCH_PYZ=dist/oxydra.pyz` runs the
`vm` from the archive (`make pyz`) instead of the venv.
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
TEXT = {"kind": "reply", "text": ANSWER, "chunk": 16}
CALL = {
    "kind": "reply",
    "tool_calls": [{"name": "file_write", "arguments": {"path": "/shared/a.txt", "content": "x"}}],
}
TEXT_BATCH, TOOL_BATCH, WARM = 8, 4, 3


def _tree(pid: int) -> list[int]:
    """`pid` and every live descendant of it."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            kids = (task / "children").read_text().split()
            todo.extend(int(k) for k in kids)
    return out


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _rss_tree(pid: int) -> tuple[float, list[str]]:
    """Summed RSS (MiB) of the process tree, and one line per process."""
    total, lines = 0.0, []
    for member in _tree(pid):
        rss = _status(member, "VmRSS") / 1024
        name = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ")[:70].decode()
        total += rss
        lines.append(f"    {member:>7} {rss:6.1f} MiB  {name}")
    return total, lines


def _cpu_tree(pid: int) -> float:
    """CPU seconds of the process tree so far (live members and reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in _tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _sets(url: str) -> list[str]:
    return [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
        "gateway.max_sessions_per_user=5000",
        "gateway.max_concurrent_turns_per_user=5000",
        "gateway.max_queued_turns_per_user=5000",
    ]


def _start_vm(
    tmp: Path, url: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    ws = tmp / "ws"
    pyz = os.environ.get("OXYDRA_BENCH_PYZ")
    start = [str(Path(sys.base_prefix) / "bin" / "python3"), "-I", pyz] if pyz else [
        sys.executable, "-m", "oxydra",
    ]  # fmt: skip
    cmd = [*start, "vm", "--user-id", "bench", "--workspace-root", str(ws)]
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
    hello = g.Hello(
        request_id=uuid.uuid4().hex, protocol_version=2, user_id="bench", create_new_session=True
    )
    await ws.send(g.encode_frame(hello).decode())
    ack = g.decode_server_frame(await ws.recv())
    assert isinstance(ack, g.HelloAck)
    return ws, ack.session.session_id


async def _turn(ws: Any, sid: str, firsts: list[float] | None = None) -> tuple[float, bool]:
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
            if not text and firsts is not None:
                firsts.append(time.perf_counter() - start)
            text += frame.delta
        if isinstance(frame, g.TurnCompleted | g.TurnCancelled | g.ErrorFrame):
            break
    numbered = None not in seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    return time.perf_counter() - start, numbered and text.endswith(ANSWER)


async def _one_turn(endpoint: str) -> tuple[float, bool]:
    ws, sid = await _connect(endpoint)
    try:
        return await _turn(ws, sid)
    finally:
        await ws.close()


class _Alone:
    """The same runtime, built by `open_services` in this process, run without a gateway."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp, self.count = url, tmp, 0
        self.firsts: list[float] = []

    async def __aenter__(self) -> _Alone:
        from oxydra.app.services import open_services
        from oxydra.config.loader import ConfigSources, load_agent_config
        from oxydra.runtime import provision_workspace

        workspace = provision_workspace(self.tmp / "alone")
        config = load_agent_config(
            ConfigSources(home=self.tmp, cwd=self.tmp, environ={}, overrides=_sets(self.url))
        ).config
        self.services = await open_services(config, user_id="u", workspace=workspace, environ={})
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.services.aclose()

    async def turn(self) -> tuple[float, float]:
        """Wall and CPU seconds of one turn."""
        from oxydra.core.stream import Text
        from oxydra.runtime.api import TurnRequest

        text: list[str] = []
        cpu, start = time.process_time(), time.perf_counter()

        async def sink(item: object) -> None:
            if isinstance(item, Text) and item.text:
                if not text:
                    self.firsts.append(time.perf_counter() - start)
                text.append(item.text)

        self.count += 1
        request = TurnRequest(user_id="u", session_id="s", turn_id=f"t{self.count}", prompt="hi")
        await self.services.agent.runtime.run_turn(request, sink)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert "".join(text).endswith(ANSWER), "runtime alone: unexpected reply"
        return wall, cpu


FIRSTS: list[float] = []


async def _through(ws: Any, sid: str) -> float:
    """Wall seconds of one turn through the gateway (its first delta's in `FIRSTS`)."""
    wall, intact = await _turn(ws, sid, FIRSTS)
    assert intact, "through the gateway: frames lost or unexpected reply"
    return wall


async def _alone_batch(alone: _Alone, n: int) -> tuple[list[float], float]:
    """Wall seconds of each of `n` turns, and the CPU seconds of all of them."""
    walls, cpu = [], 0.0
    for _ in range(n):
        wall, used = await alone.turn()
        walls.append(wall)
        cpu += used
    return walls, cpu


async def _through_batch(vm: int, ws: Any, sid: str, n: int) -> tuple[list[float], float]:
    """Wall seconds of each of `n` turns, and the `vm` tree's CPU seconds for all of them
    (`/proc` counts CPU in clock ticks: only a batch's total is meaningful)."""
    cpu = _cpu_tree(vm)
    walls = [await _through(ws, sid) for _ in range(n)]
    return walls, _cpu_tree(vm) - cpu


class _Side:
    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpu, self.turns = 0.0, 0

    def add(self, result: tuple[list[float], float]) -> None:
        self.walls += result[0]
        self.cpu += result[1]
        self.turns += len(result[0])

    def wall_ms(self) -> float:
        return statistics.median(self.walls) * 1000

    def wall_p25_ms(self) -> float:
        return percentile(self.walls, 25) * 1000

    def cpu_ms(self) -> float:
        return self.cpu / self.turns * 1000


async def _rounds(
    rounds: int, batch: int, alone: _Alone, vm: int, ws: Any, sid: str
) -> tuple[_Side, _Side]:
    """Interleaved batches of each side, after a warm-up of each."""
    await _alone_batch(alone, WARM)
    await _through_batch(vm, ws, sid, WARM)
    a, t = _Side(), _Side()
    for _ in range(rounds):
        a.add(await _alone_batch(alone, batch))
        t.add(await _through_batch(vm, ws, sid, batch))
    return a, t


def _report(name: str, alone: _Side, through: _Side) -> None:
    print(
        f"warm {name} turn: runtime alone {alone.wall_ms():6.2f} ms ({alone.cpu_ms():5.2f} ms CPU),"
        f" through the gateway {through.wall_ms():6.2f} ms ({through.cpu_ms():5.2f} ms CPU of vm)"
        f"\n    added {through.wall_ms() - alone.wall_ms():5.2f} ms wall (medians),"
        f" {through.cpu_ms() - alone.cpu_ms():5.2f} ms CPU (means)  n={through.turns}"
        f"\n    lower quartiles (less moved by other load): alone {alone.wall_p25_ms():6.2f} ms,"
        f" through {through.wall_p25_ms():6.2f} ms,"
        f" added {through.wall_p25_ms() - alone.wall_p25_ms():5.2f} ms"
    )


async def _load(endpoint: str, clients: int) -> tuple[float, list[float], int]:
    start = time.perf_counter()
    results = await asyncio.gather(*(_one_turn(endpoint) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    lost = sum(1 for _, intact in results if not intact)
    return elapsed, [t for t, _ in results], lost


async def _main() -> None:
    rounds = int(os.environ.get("OXYDRA_BENCH_ROUNDS", "5"))
    loads = [int(n) for n in os.environ.get("OXYDRA_BENCH_CLIENTS", "100,1000").split(",") if n]
    text_turns = 2 * (WARM + rounds * TEXT_BATCH)
    tool_turns = 2 * (WARM + rounds * TOOL_BATCH)
    script = [TEXT] * text_turns + [CALL, TEXT] * tool_turns + [TEXT] * sum(loads)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, url = start_fake_llm(tmp, script)
        vm, endpoint = _start_vm(tmp, url)
        try:
            await asyncio.sleep(1.0)
            idle, lines = _rss_tree(vm.pid)
            print(f"idle vm RSS (process tree, fresh):  {idle:7.1f} MiB")
            print("\n".join(lines))
            async with _Alone(url, tmp) as alone:
                ws, sid = await _connect(endpoint)
                text = await _rounds(rounds, TEXT_BATCH, alone, vm.pid, ws, sid)
                first = statistics.median(alone.firsts), statistics.median(FIRSTS)
                tool = await _rounds(rounds, TOOL_BATCH, alone, vm.pid, ws, sid)
                await ws.close()
            _report("text", *text)
            print(
                f"    first delta of a text turn: runtime alone {first[0] * 1000:6.2f} ms,"
                f" through the gateway {first[1] * 1000:6.2f} ms (medians)"
            )
            _report("tool", *tool)
            await asyncio.sleep(1.0)
            idle, lines = _rss_tree(vm.pid)
            print(f"idle vm RSS (process tree, after the turns): {idle:7.1f} MiB")
            print("\n".join(lines))
            for clients in loads:
                before = _rss_tree(vm.pid)[0]
                elapsed, lat, lost = await _load(endpoint, clients)
                after = _rss_tree(vm.pid)[0]
                print(
                    f"{clients:5d} concurrent clients: {clients / elapsed:7.1f} turns/s, "
                    f"p50 {percentile(lat, 50) * 1000:6.1f} ms, "
                    f"p99 {percentile(lat, 99) * 1000:6.1f} ms, "
                    f"RSS +{(after - before) * 1024 / clients:5.1f} KiB/session, frames lost {lost}"
                )
        finally:
            stop(vm, fake)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    asyncio.run(_main())
