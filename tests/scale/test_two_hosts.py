"""Two real `vm` processes sharing one PostgreSQL database (docs/postgres.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.fake_llm import FakeLLM, Reply
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, turn, until


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


def _pg(url: str) -> list[str]:
    return ["memory.backend=postgres", f"memory.postgres_url={url}"]


@pytest.fixture
async def hosts(
    tmp_path: Path, llm: FakeLLM, pg_url: str
) -> AsyncIterator[tuple[VmProcess, VmProcess]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = VmProcess(tmp_path / "a", llm.base_url, extra=_pg(pg_url))
    b = VmProcess(tmp_path / "b", llm.base_url, extra=_pg(pg_url))
    a.endpoint = await a.start()  # type: ignore[attr-defined]
    b.endpoint = await b.start()  # type: ignore[attr-defined]
    yield a, b
    for host in (a, b):
        if host.proc and host.proc.poll() is None:
            await host.stop()


async def test_a_session_started_on_one_host_continues_on_the_other(
    hosts: tuple[VmProcess, VmProcess], llm: FakeLLM
) -> None:
    a, b = hosts
    llm.add([Reply(text="noted: the boat is blue")])
    ws, ack = await client(a.endpoint, create_new_session=True)  # type: ignore[attr-defined]
    sid = ack.session.session_id
    await send(ws, turn(sid, "remember: the boat is blue"))
    assert isinstance((await until(ws, terminal))[-1], g.TurnCompleted)
    await ws.close()

    llm.add([Reply(text="it is blue")])
    ws2, ack2 = await client(b.endpoint, session_id=sid)  # type: ignore[attr-defined]
    assert ack2.session.session_id == sid
    await send(ws2, turn(sid, "what colour is the boat?"))
    assert isinstance((await until(ws2, terminal))[-1], g.TurnCompleted)
    history = llm.requests[-1]
    assert "the boat is blue" in str(history), "host b saw host a's conversation"
    await ws2.close()


async def test_concurrent_turns_of_one_session_on_two_hosts_run_one_after_the_other(
    hosts: tuple[VmProcess, VmProcess], llm: FakeLLM
) -> None:
    """Host A runs a slow turn; the same session's turn sent to host B waits for A's lease
    (it starts only after A's turn completed) and then sees A's answer in its history."""
    a, b = hosts
    ws_a, ack = await client(a.endpoint, create_new_session=True)  # type: ignore[attr-defined]
    sid = ack.session.session_id
    llm.add([Reply(text="first answer " * 20, chunk=4, delay=0.02), Reply(text="second")])
    await send(ws_a, turn(sid, "first"))
    await until(ws_a, lambda f: isinstance(f, g.AssistantDelta))
    ws_b, _ = await client(b.endpoint, session_id=sid)  # type: ignore[attr-defined]
    await send(ws_b, turn(sid, "second", "tb"))
    done_a = await until(ws_a, terminal)
    assert isinstance(done_a[-1], g.TurnCompleted)
    frames_b = await until(ws_b, lambda f: terminal(f) and f.turn.turn_id == "tb")
    assert isinstance(frames_b[-1], g.TurnCompleted)
    ended = [f.turn.turn_id for f in frames_b if terminal(f)]
    assert ended == [done_a[-1].turn.turn_id, "tb"], "B's client saw A's turn end, then its own"
    assert len(llm.requests) == 2
    second = str(llm.requests[1].json())
    assert "first answer" in second, "B's turn ran after A's and saw its answer"
    await ws_a.close()
    await ws_b.close()


async def test_a_turn_on_one_host_streams_to_a_client_of_the_other(
    hosts: tuple[VmProcess, VmProcess], llm: FakeLLM
) -> None:
    """Frames reach host B's client through the store and LISTEN/NOTIFY, with the same
    session-wide numbers and epoch host A's client sees."""
    a, b = hosts
    ws_a, ack_a = await client(a.endpoint, create_new_session=True)  # type: ignore[attr-defined]
    sid = ack_a.session.session_id
    ws_b, ack_b = await client(b.endpoint, session_id=sid, last_seq=0)  # type: ignore[attr-defined]
    assert ack_b.epoch == ack_a.epoch
    llm.add([Reply(text="one two three four five six", chunk=4, delay=0.01)])
    await send(ws_a, turn(sid, "count"))
    seen_a = await until(ws_a, terminal)
    seen_b = await until(ws_b, terminal)
    assert [f.seq for f in seen_b] == [f.seq for f in seen_a]
    text = "".join(f.delta for f in seen_b if isinstance(f, g.AssistantDelta))
    assert text == "one two three four five six"
    assert isinstance(seen_b[-1], g.TurnCompleted)
    await ws_a.close()
    await ws_b.close()


async def test_a_client_moving_to_the_other_host_mid_turn_loses_and_repeats_nothing(
    hosts: tuple[VmProcess, VmProcess], llm: FakeLLM
) -> None:
    a, b = hosts
    words = [f"w{i} " for i in range(120)]
    llm.add([Reply(text="".join(words), chunk=4, delay=0.01)])
    ws, ack = await client(a.endpoint, create_new_session=True)  # type: ignore[attr-defined]
    sid = ack.session.session_id
    await send(ws, turn(sid, "long answer"))
    seen = await until(ws, lambda f: isinstance(f, g.AssistantDelta) and f.seq >= 12)
    await ws.close()
    last = seen[-1].seq
    ws2, _ = await client(b.endpoint, session_id=sid, last_seq=last, epoch=ack.epoch)  # type: ignore[attr-defined]
    rest = await until(ws2, terminal)
    every = seen + rest
    assert [f.seq for f in every] == list(range(every[0].seq, every[-1].seq + 1)), (
        "no gap, no repeat"
    )
    text = "".join(f.delta for f in every if isinstance(f, g.AssistantDelta))
    assert text == "".join(words)
    await ws2.close()
