"""Hello latency with 1,000 clients on one real `vm` (the fake LLM in another process).

* at 1,000 clients: a load process holds 1,000 connected clients, which keep reconnecting
  with creating hellos (each every 5 s: 200 hellos/s), while a probe here, with its own
  idle event loop, measures 500 creating hellos on fresh connections. This is the figure:
  a user's hello while 1,000 others are connected and busy.
* burst: 1,000 clients send a creating `hello` at the same instant, from one client
  process (the worst case; client and server share the machine's two cores, so it
  measures the client's own queue as much as the server; session creation used to be
  serialised under one lock: 703 ms p50 at 200 clients, timeouts at 1,000);
* retry: every burst hello repeated with its `request_id`, which must create nothing.
Figures: p50 / p99 / max hello→ack latency; sessions stored (must equal distinct hellos).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._procs import stop
from bench._timing import percentile
from bench.bench_gateway import TOKEN, _start_fake, _start_vm
from oxydra.wire import gateway as g

CLIENTS = 1000


async def _open(endpoint: str) -> Any:
    from websockets.asyncio.client import connect

    return await connect(
        endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"}, open_timeout=120
    )


async def _hello(ws: Any, request_id: str) -> float:
    hello = g.Hello(
        request_id=request_id, protocol_version=2, user_id="bench", create_new_session=True
    )
    start = time.perf_counter()
    await ws.send(g.encode_frame(hello).decode())
    ack = g.decode_server_frame(await asyncio.wait_for(ws.recv(), 60))
    elapsed = time.perf_counter() - start
    assert isinstance(ack, g.HelloAck), ack
    return elapsed


async def _open_all(endpoint: str, count: int) -> list[Any]:
    sockets: list[Any] = []
    for first in range(0, count, 100):
        sockets += await asyncio.gather(*(_open(endpoint) for _ in range(first, first + 100)))
    return sockets


def _line(name: str, latencies: list[float]) -> str:
    ms = [t * 1000 for t in latencies]
    return (
        f"{name:8s} {len(ms):5d} hellos: p50 {percentile(ms, 50):6.1f} ms, "
        f"p99 {percentile(ms, 99):6.1f} ms, max {max(ms):6.1f} ms"
    )


async def _probe(endpoint: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        ws = await _open(endpoint)
        times.append(await _hello(ws, uuid.uuid4().hex))
        await ws.close()
        await asyncio.sleep(0.01)
    return times


async def _load(endpoint: str, clients: int, seconds: float) -> None:
    """The load process: `clients` connected clients re-helloing every 5 s until `seconds`."""
    until = time.monotonic() + seconds
    hellos = 0

    async def one(index: int) -> None:
        nonlocal hellos
        await asyncio.sleep(5.0 * index / clients)
        while time.monotonic() < until:
            ws = await _open(endpoint)
            await _hello(ws, uuid.uuid4().hex)
            hellos += 1
            await asyncio.sleep(5.0)
            await ws.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    print(f"load: {hellos} hellos", flush=True)


def _sessions(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM gateway_sessions").fetchone()[0])


async def _main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, url = _start_fake(tmp, 10)
        vm, endpoint = _start_vm(tmp, url, ("gateway.max_sessions_per_user=1000000",))
        try:
            await asyncio.sleep(1.0)
            sockets = await _open_all(endpoint, CLIENTS)
            ids = [uuid.uuid4().hex for _ in sockets]
            pairs = zip(sockets, ids, strict=True)
            burst = await asyncio.gather(*(_hello(ws, rid) for ws, rid in pairs))
            print(_line("burst", list(burst)), flush=True)
            await asyncio.gather(*(ws.close() for ws in sockets))
            retry_sockets = await _open_all(endpoint, CLIENTS)
            retry = await asyncio.gather(
                *(_hello(ws, rid) for ws, rid in zip(retry_sockets, ids, strict=True))
            )
            print(_line("retry", list(retry)), flush=True)
            await asyncio.gather(*(ws.close() for ws in retry_sockets))
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.bench_hello", "load", endpoint, str(CLIENTS), "40"],
                stdout=subprocess.PIPE,
                text=True,
            )
            await asyncio.sleep(10.0)  # all 1,000 connected and cycling
            probe = await _probe(endpoint, 500)
            print(_line("at 1000", probe), flush=True)
            out, _ = load.communicate(timeout=120)
            background = int(out.split()[1]) if out.startswith("load:") else 0
            print(f"        (meanwhile the 1,000 load clients made {background} hellos)")
            db = next((tmp / "ws").rglob("memory.db"), None)
            if db is not None:
                distinct = CLIENTS + len(probe) + background
                print(f"sessions stored: {_sessions(db)} for {distinct} distinct hellos")
        finally:
            stop(vm, fake)


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        asyncio.run(_load(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        main()
