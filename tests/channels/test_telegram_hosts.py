"""Hosts sharing one store run one bot: only the holder of its lease polls and answers.

Two long polls on one bot end each other (Telegram answers the older one 409, which the fake
does too), and two outbox senders would deliver a piece twice; with the lease the second
host waits in standby and takes over when the first stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.gateway import TurnLeases
from oxydra.memory import Memory
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.testing.mock_provider import reply
from tests.channels.support import ALICE, TOKEN, rig


@pytest.fixture
def store(either_store: Memory) -> Memory:
    """The store both hosts share."""
    return either_store


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    telegram = await FakeTelegram(TOKEN).start()
    yield telegram
    await telegram.close()


def host(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def lease_of(memory: Memory, holder: str) -> Any:
    leases = TurnLeases(memory, holder, lease_secs=3)
    return lambda key: leases.hold(key, "poller")


async def polled(condition: Any, timeout: float = 20) -> None:
    """Wait until `condition()` holds (checked every 10 ms, up to `timeout` seconds)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def settled(store: Any) -> None:
    """Until every stored message is answered and every piece delivered (a host that stops
    before that leaves the rest to the next holder, which answers it again: tested in
    test_telegram.py's restart tests)."""
    async with asyncio.timeout(20):
        while True:
            counts = await store.counts()
            if counts["inbox_open"] == 0 and counts["pending"] == 0:
                return
            await asyncio.sleep(0.02)


def answers(fake: FakeTelegram) -> list[str]:
    """Alice's messages but the channel's notes (working, queued)."""
    return [sent.text for sent in fake.sent[ALICE] if not sent.text.startswith("⏳")]


async def test_one_host_polls_and_the_other_takes_over_when_it_stops(
    tmp_path: Path, store: Memory, fake: FakeTelegram
) -> None:
    a_dir, b_dir = host(tmp_path, "a"), host(tmp_path, "b")
    a_lease, b_lease = lease_of(store, "host-a"), lease_of(store, "host-b")
    async with rig(
        a_dir, [reply("A one"), reply("A two")], memory=store, fake=fake, lease=a_lease
    ) as a:
        async with rig(
            b_dir, [reply("B three")], memory=store, fake=fake, lease=b_lease, wait_ready=False
        ) as b:
            await polled(lambda: b.channel.standby)
            standby = await b.channel.health_check()
            assert standby.healthy and "standby" in standby.detail
            fake.user_message("one", user_id=ALICE)
            await fake.wait_for(lambda f: "A one" in answers(f))
            fake.user_message("two", user_id=ALICE)
            await fake.wait_for(lambda f: "A two" in answers(f))
            assert not b.channel.ready.is_set(), "host b never started polling"
            assert a.channel.store is not None
            await settled(a.channel.store)

            await a.channel.aclose()  # host a stops: its lease is released
            await asyncio.wait_for(b.channel.ready.wait(), 30)
            fake.user_message("three", user_id=ALICE)
            await fake.wait_for(lambda f: "B three" in answers(f))
            assert (await b.channel.health_check()).healthy
    assert answers(fake) == ["A one", "A two", "B three"], "each message answered once"
    assert fake.conflicts == 0, "no two long polls on the bot at once"


async def test_without_the_lease_two_hosts_end_each_others_polls(
    tmp_path: Path, store: Memory, fake: FakeTelegram
) -> None:
    """The control: what the lease prevents (the fake answers 409 as Telegram does)."""
    a_dir, b_dir = host(tmp_path, "a"), host(tmp_path, "b")
    async with rig(a_dir, memory=store, fake=fake), rig(b_dir, memory=store, fake=fake):
        await fake.wait_for(lambda f: f.conflicts > 0)
