"""A kill -9 of `vm` in the middle of a shell call (issue 24 item 2), with a real `vm` process.

What must hold: no process the call started outlives the `vm` (the command, and a helper
it detached with `setsid -f`), and after a restart the history says the truth about the
call: interrupted, may have run, started at a recorded time — not "Not executed".
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.security._landlock import landlock_abi
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, turn, until

pytestmark = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="the shell needs Landlock")
COMMAND = (
    "echo ran > ran.txt; setsid -f sh -c 'echo $$ > helper.pid; exec sleep 300';"
    " echo $$ > sh.pid; sleep 300"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def _pid_in(path: Path, seconds: float = 120) -> int:
    """The pid the shell wrote to `path`, once the whole line is there.

    `echo $$ > f` creates the file before it writes to it, so existence alone can show an
    empty file. The deadline only bounds a hang; under load the wait is as long as it takes.
    """
    deadline = time.monotonic() + seconds
    while True:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        assert time.monotonic() < deadline, f"{path} never held a pid ({text!r})"
        await asyncio.sleep(0.05)


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


async def test_after_a_kill_9_mid_tool_nothing_survives_and_the_history_tells_the_truth(
    tmp_path: Path, llm: FakeLLM
) -> None:
    llm.add([Reply(tool_calls=[Call(name="shell_exec", arguments={"command": COMMAND})])])
    vm = VmProcess(tmp_path, llm.base_url)
    endpoint = await vm.start()
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "run it"))
    shared = vm.workspace / "shared"
    pids = [await _pid_in(shared / name) for name in ("sh.pid", "helper.pid")]
    assert all(_alive(p) for p in pids)
    assert vm.proc is not None
    vm.proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(vm.proc.wait, 60)
    deadline = time.monotonic() + 60  # the intermediate's parent-death signal, then its grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [p for p in pids if _alive(p)] == [], "a process of the call outlived its vm"
    assert (shared / "ran.txt").read_text() == "ran\n"  # the command did run

    llm.add([Reply(text="I will check first.")])
    endpoint = await vm.start()
    try:
        again, _ = await client(endpoint, session_id=sid)
        await send(again, turn(sid, "what happened?"))
        frames = await until(again, terminal, timeout=60)
        assert isinstance(frames[-1], g.TurnCompleted)
    finally:
        await vm.stop()
    messages = llm.requests[-1].json()["messages"]
    result = next(m["content"] for m in messages if m["role"] == "tool")
    assert "Not executed" not in result
    assert "may have run" in result
    assert re.search(r"started at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result), result
