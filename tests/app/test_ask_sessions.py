"""`ask` and sessions: unknown ids refused, prefixes accepted, and one turn at a time per
session even when a `vm` serves the same workspace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, turn, until
from tests.runtime.test_ask import ask_cmd, run


async def test_an_unknown_session_is_refused_not_silently_created(tmp_path: Path) -> None:
    async with FakeLLM([]) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "--session", "nope-123", "hi"), tmp_path)
        assert llm.requests == []
    assert code == 2 and out == ""
    assert "no session of user `default` match `nope-123`" in err
    assert "leave out --session to start a new session" in err


async def test_a_new_ask_session_is_named_listed_and_continued_by_prefix(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="Noted."), Reply(text="Still here.")]) as llm:
        _, _, err = await run(ask_cmd(llm.base_url, "--name", "groceries", "milk"), tmp_path)
        session = err.split("session: ")[1].strip()
        code, out, _ = await run(ask_cmd(llm.base_url, "--session", session[:28], "and?"), tmp_path)
    assert code == 0 and out.strip() == "Still here."
    code, out, _ = await run_sessions(tmp_path, "list")
    assert code == 0 and session in out and "groceries" in out and "cli" in out


async def run_sessions(home: Path, *args: str) -> tuple[int, str, str]:
    import sys

    return await run([sys.executable, "-m", "oxydra", "sessions", *args], home)


async def test_a_vm_turn_and_an_ask_on_the_same_session_take_turns(tmp_path: Path) -> None:
    # QA: `vm` and `ask --session X` used different locks, so their turns interleaved into one
    # history (a tool result after a plain answer) that providers then refuse for good.
    def steps(name: str) -> list[Reply]:
        call = Call(name="file_write", arguments={"path": f"/shared/{name}", "content": name})
        return [Reply(text=f"{name} writes slowly", tool_calls=[call]), Reply(text=name)]

    conversations = {"vm": steps("vm"), "ask": steps("ask"), "check": [Reply(text="ok")]}
    async with FakeLLM(conversations=conversations) as llm:
        vm = VmProcess(tmp_path, llm.base_url, extra=["selection.model=vm"])
        vm.env["OXYDRA_LOG"] = "info"  # it logs when a turn waits for another process's
        endpoint = await vm.start()
        try:
            ws, ack = await client(endpoint)
            session = ack.session.session_id

            def as_model(name: str, *args: str) -> list[str]:
                return ask_cmd(
                    llm.base_url, "--user", "alice", "--workspace", str(vm.workspace),
                    "--set", f"selection.model={name}", *args,
                )  # fmt: skip

            # The ask's first answer is held until the vm's turn shows it waits for the ask's.
            answering = llm.hold("ask")
            asked = asyncio.create_task(
                run(as_model("ask", "--session", session, "q ask"), tmp_path)
            )
            deadline = asyncio.get_running_loop().time() + 60
            while not any(r.json().get("model") == "ask" for r in llm.requests):
                assert not asked.done(), asked.result()
                assert asyncio.get_running_loop().time() < deadline, "the ask sent no request"
                await asyncio.sleep(0.02)  # the ask's turn holds the session now
            await send(ws, turn(session, "q vm"))
            waiting = "waiting for a turn another process runs"
            while waiting not in (tmp_path / "vm.err").read_text():
                assert asyncio.get_running_loop().time() < deadline, "the vm's turn never waited"
                assert not any(r.json().get("model") == "vm" for r in llm.requests)
                await asyncio.sleep(0.02)
            answering.set()
            frames = await until(ws, terminal, timeout=60)
            assert isinstance(frames[-1], g.TurnCompleted), frames[-1]
            code, _, err = await asked
            assert code == 0, err
            await run(as_model("check", "--session", session, "check"), tmp_path)
            sent = llm.requests[-1].json()["messages"]
        finally:
            answering.set()
            await vm.stop()
    history = [(m["role"], m.get("content") or "") for m in sent if m["role"] != "system"]
    assert history == [
        ("user", "q ask"),
        ("assistant", "ask writes slowly"),
        ("tool", "wrote 3 bytes to /shared/ask"),
        ("assistant", "ask"),
        ("user", "q vm"),
        ("assistant", "vm writes slowly"),
        ("tool", "wrote 2 bytes to /shared/vm"),
        ("assistant", "vm"),
        ("user", "check"),
    ]


async def test_a_delegation_is_listed_under_its_parent_and_deleted_with_it(tmp_path: Path) -> None:
    call = Call(name="delegate_to_agent", arguments={"agent_name": "helper", "goal": "say hi"})
    script = [Reply(tool_calls=[call]), Reply(text="hi from the child"), Reply(text="done")]
    async with FakeLLM(script) as llm:
        cmd = ask_cmd(llm.base_url, "--set", "agents.helper.system_prompt=You help.", "go")
        code, _, err = await run(cmd, tmp_path)
        llm.assert_done()
    assert code == 0, err
    parent = err.split("session: ")[1].strip()
    _, out, _ = await run_sessions(tmp_path, "list", "--subagents")
    lines = out.splitlines()
    assert lines[0].startswith(parent)
    assert lines[1].startswith(f"  └ subagent:{parent}:") and "subagent" in lines[1]
    _, plain, _ = await run_sessions(tmp_path, "list")
    assert "subagent:" not in plain
    code, out, _ = await run_sessions(tmp_path, "delete", parent[:30])
    assert code == 0 and "and 1 sub-agent sessions" in out
    _, out, _ = await run_sessions(tmp_path, "list", "--subagents", "--all")
    assert out == "(no sessions)\n"
