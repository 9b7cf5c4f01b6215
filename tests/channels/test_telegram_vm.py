"""The Telegram channel inside a real `vm` process: kill -9 mid-answer, a refused token."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.fake_llm import FakeLLM, Reply
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.wire import gateway as g
from tests.channels.support import ALICE, TOKEN
from tests.gateway.support import VmProcess, client, recv, send, terminal, turn, until

USER_TOML = """\
config_version = "1.0.1"

[[people]]
id = "alice"
telegram = ["{alice}"]

[channels.telegram]
enabled = true
bot_token_env = "BOT_TOKEN"
polling_timeout_secs = 1
api_base_url = "{base}"
"""


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


def _vm(tmp: Path, llm: FakeLLM, telegram: FakeTelegram, token: str = TOKEN) -> VmProcess:
    path = tmp / "alice.toml"
    path.write_text(USER_TOML.format(alice=ALICE, base=telegram.base_url))
    vm = VmProcess(tmp, llm.base_url, extra=[])
    vm.cmd += ["--user-config", str(path)]
    vm.env["BOT_TOKEN"] = token
    return vm


async def test_a_kill_9_mid_answer_loses_and_repeats_nothing(
    tmp_path: Path, llm: FakeLLM, telegram: FakeTelegram
) -> None:
    llm.add([Reply(text="slow " * 200, delay=0.05)])
    vm = _vm(tmp_path, llm, telegram)
    await vm.start()
    try:
        update_id = telegram.user_message("what is up?", user_id=ALICE)
        await telegram.wait_for(lambda f: bool(f.sent[ALICE]) and f.sent[ALICE][0].edits >= 1)
        assert vm.proc is not None
        vm.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(vm.proc.wait, 20)
        llm.add([Reply(text="answered after the restart")])
        await vm.start()
        await telegram.wait_for(
            lambda f: any("answered after the restart" in t for t in f.texts(ALICE)), 60
        )
        [message] = telegram.sent[ALICE]  # the working message was reused, nothing repeated
        assert message.text == "answered after the restart"
        assert telegram.confirmed >= update_id
        llm.assert_done()
    finally:
        await vm.stop()


async def test_a_token_telegram_refuses_leaves_the_gateway_serving(
    tmp_path: Path, llm: FakeLLM, telegram: FakeTelegram
) -> None:
    llm.add([Reply(text="the tui still works")])
    vm = _vm(tmp_path, llm, telegram, token="1:refused")
    endpoint = await vm.start()
    try:
        ws, ack = await client(endpoint, create_new_session=True)
        await send(ws, turn(ack.session.session_id, "hello"))
        frames = await until(ws, terminal)
        assert "the tui still works" in frames[-1].response.message.text
        await send(ws, g.HealthCheck(request_id="h"))
        status = await recv(ws)
        assert isinstance(status, g.HealthStatus) and status.channels is not None
        telegram_health = status.channels["telegram"]
        assert not telegram_health.healthy and "refused the bot token" in telegram_health.detail
        await ws.close()
        log = (tmp_path / "vm.err").read_text()
        assert "Telegram refused the bot token" in log
        assert TOKEN not in log and "1:refused" not in log
    finally:
        await vm.stop()


async def test_two_vm_hosts_on_postgresql_poll_the_bot_one_at_a_time(
    tmp_path: Path, llm: FakeLLM, telegram: FakeTelegram, pg_url: str
) -> None:
    """Host a polls; host b waits in standby (no 409s, nothing answered twice) and takes
    over when a stops."""
    hosts = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        vm = _vm(tmp_path / name, llm, telegram)
        vm.cmd += ["--set", "memory.backend=postgres", "--set", f"memory.postgres_url={pg_url}"]
        hosts.append(vm)
    a, b = hosts
    llm.add([Reply(text="one from a"), Reply(text="two"), Reply(text="three")])
    await a.start()
    try:
        telegram.user_message("one", user_id=ALICE)
        await telegram.wait_for(lambda f: "one from a" in f.texts(ALICE), 60)
        await b.start()
        telegram.user_message("two", user_id=ALICE)
        await telegram.wait_for(lambda f: "two" in f.texts(ALICE), 60)
        await a.stop()  # its lease is released: b polls from now on
        telegram.user_message("three", user_id=ALICE)
        await telegram.wait_for(lambda f: "three" in f.texts(ALICE), 60)
        assert telegram.texts(ALICE) == ["one from a", "two", "three"], "each answered once"
        assert telegram.conflicts == 0, "never two long polls on the bot"
        llm.assert_done()
    finally:
        for vm in hosts:
            if vm.proc is not None and vm.proc.poll() is None:
                await vm.stop()
