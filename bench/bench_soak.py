"""Soak: a real `vm` serving turns for a long time; does its memory stay flat?

Clients here, each in a loop: open a new session, run `TURNS_PER_SESSION` turns, leave it.
Left sessions go idle and `[gateway] session_idle_ttl_hours` (set to 10 s here) evicts their
in-memory state, as real users starting new chats would need. Every turn is checked: its
frames numbered without a gap and its text complete, so "frames lost" is counted, not assumed.

Figures: turns, turns/s, RSS of `vm` after warm-up (the first fifth of the run, at least
30 s: imports, caches and the allocator reaching the load's high-water mark) and at the
end, growth between them and over the second half, and frames lost.
Duration: OXYDRA_SOAK_SECS (default 60; the figure in docs comes from a 600 s run).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._procs import stop
from bench.bench_gateway import ANSWER, TOKEN, _rss_mib, _start_fake, _start_vm
from oxydra.wire import gateway as g

CLIENTS = 16
TURNS_PER_SESSION = 25
TTL_HOURS = 10 / 3600


async def _session(endpoint: str) -> tuple[Any, str]:
    from websockets.asyncio.client import connect

    ws = await connect(
        endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"}, open_timeout=60
    )
    hello = g.Hello(
        request_id=uuid.uuid4().hex, protocol_version=2, user_id="bench", create_new_session=True
    )
    await ws.send(g.encode_frame(hello).decode())
    ack = g.decode_server_frame(await ws.recv())
    assert isinstance(ack, g.HelloAck), ack
    return ws, ack.session.session_id


async def _turn(ws: Any, sid: str) -> bool:
    send = g.SendTurn(request_id="r", session_id=sid, turn_id=uuid.uuid4().hex, prompt="hi")
    await ws.send(g.encode_frame(send).decode())
    seqs, text = [], ""
    while True:
        frame = g.decode_server_frame(await ws.recv())
        seqs.append(frame.seq)  # type: ignore[union-attr]
        if isinstance(frame, g.AssistantDelta):
            text += frame.delta
        if isinstance(frame, g.TurnCompleted | g.TurnCancelled | g.ErrorFrame):
            break
    return seqs == list(range(seqs[0], seqs[0] + len(seqs))) and text == ANSWER


async def _client(endpoint: str, until: float, counts: dict[str, int]) -> None:
    while time.monotonic() < until:
        ws, sid = await _session(endpoint)
        try:
            for _ in range(TURNS_PER_SESSION):
                ok = await _turn(ws, sid)
                counts["turns"] += 1
                counts["lost"] += 0 if ok else 1
                if time.monotonic() >= until:
                    break
        finally:
            await ws.close()
        counts["sessions"] += 1


async def _main(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, url = _start_fake(tmp, int(seconds * 400) + 1000)
        vm, endpoint = _start_vm(
            tmp,
            url,
            (
                f"gateway.session_idle_ttl_hours={TTL_HOURS}",
                "gateway.max_sessions_per_user=1000000",
            ),
        )
        counts = {"turns": 0, "lost": 0, "sessions": 0}
        try:
            await asyncio.sleep(1.0)
            start = time.monotonic()
            until = start + seconds
            warm_at = start + max(30.0, seconds / 5)
            tasks = [asyncio.create_task(_client(endpoint, until, counts)) for _ in range(CLIENTS)]
            warm = peak = 0.0
            samples: list[tuple[float, float]] = []
            while not all(t.done() for t in tasks):
                await asyncio.sleep(1.0)
                rss = _rss_mib(vm.pid)
                samples.append((time.monotonic() - start, rss))
                if not warm and time.monotonic() >= warm_at:
                    warm = rss
                peak = max(peak, rss)
            await asyncio.gather(*tasks)
            end = _rss_mib(vm.pid)
            elapsed = time.monotonic() - start
            warm = warm or samples[0][1]
            print(f"soak {elapsed:.0f} s, {CLIENTS} clients, new session every "
                  f"{TURNS_PER_SESSION} turns, idle TTL {TTL_HOURS * 3600:.0f} s")  # fmt: skip
            print(f"turns {counts['turns']} ({counts['turns'] / elapsed:.1f}/s), "
                  f"sessions {counts['sessions']}, frames lost {counts['lost']}")  # fmt: skip
            print(f"vm RSS after warm-up {warm:.1f} MiB, end {end:.1f} MiB, peak {peak:.1f} MiB, "
                  f"growth {(end - warm) / warm * 100:+.1f} %")  # fmt: skip
            half = next(r for t, r in samples if t >= elapsed / 2)
            grew = (end - half) / half * 100
            print(f"second half: {half:.1f} -> {end:.1f} MiB, growth {grew:+.1f} %")
            marks = samples[:: max(1, len(samples) // 10)]
            print("RSS over time: " + ", ".join(f"{t:.0f}s {r:.0f}" for t, r in marks))
        finally:
            stop(vm, fake)


def main() -> None:
    asyncio.run(_main(float(os.environ.get("OXYDRA_SOAK_SECS", "60"))))


if __name__ == "__main__":
    main()
