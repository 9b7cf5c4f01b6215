"""The provider path's HTTP/1.1 client (`oxydra.providers._h1`) on loopback: CPU per request.

1. `requests`: sequential POSTs of a 2 KiB JSON body on one keep-alive connection, each
   answered with a small JSON body (the non-streamed call; the pool's take and give back).
2. `chunks`: one chunked response of many ~120-byte chunks (SSE-sized) read with `aiter_raw`.

CPU is the process's (`time.process_time`), the loopback server's share included: it is the
same in every run, so differences are the client's. `OXY_BENCH_H1=<path to an _h1.py>` loads
another copy of the module (say, an older commit's) to compare, in the same process shape.

Run: `python -m bench h1`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import time
from types import ModuleType

REQUESTS = 3000
CHUNKS = 20000
ROUNDS = 5
RESPONSE = b'{"id":"x","choices":[]}'
EVENT = b'data: {"choices":[{"delta":{"content":"hello there"},"index":0}]}\n\n' * 2


def _module() -> ModuleType:
    path = os.environ.get("OXY_BENCH_H1")
    if not path:
        from oxydra.providers import _h1

        return _h1
    spec = importlib.util.spec_from_file_location("bench_h1_other", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(RESPONSE), RESPONSE)
    frame = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /stream"):
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for _ in range(CHUNKS):
                    writer.write(frame)
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                continue
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            writer.write(answer)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        writer.close()


async def _round(h1: ModuleType, url: str) -> tuple[float, float]:
    client = h1.H1Client(timeout=30.0, connect_timeout=5.0)
    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 2000 + b'"}]}'
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    start = time.process_time()
    for _ in range(REQUESTS):
        response = await client.send("POST", url + "/v1/chat/completions", headers, body)
        await response.aread()
        await response.aclose()
    per_request = (time.process_time() - start) / REQUESTS
    response = await client.send("GET", url + "/stream", {})
    start = time.process_time()
    async for _ in response.aiter_raw():
        pass
    per_chunk = (time.process_time() - start) / CHUNKS
    await response.aclose()
    await client.aclose()
    return per_request, per_chunk


async def _run() -> None:
    h1 = _module()
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    results = [await _round(h1, url) for _ in range(ROUNDS)]
    server.close()
    await asyncio.sleep(0.05)  # the handlers see their connections end
    request = statistics.median(r[0] for r in results) * 1e6
    chunk = statistics.median(r[1] for r in results) * 1e6
    print(f"requests: {request:.1f} us CPU per keep-alive POST (median of {ROUNDS} x {REQUESTS})")
    print(f"chunks:   {chunk:.2f} us CPU per streamed chunk read (median of {ROUNDS} x {CHUNKS})")


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
