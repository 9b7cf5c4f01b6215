"""Background delegation on a real `vm`: the parent's turn ends at once, the child outlives
a kill -9 of the `vm`, and its report reaches the parent session and the person."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, turn, until

AGENT = [
    "selection.model=parent",
    "agents.helper.system_prompt=You help.",
    "agents.helper.selection.provider=fake",
    "agents.helper.selection.model=child",
]


def background_call() -> Reply:
    arguments = {"agent_name": "helper", "goal": "find the number", "background": True}
    return Reply(tool_calls=[Call(name="delegate_to_agent", arguments=arguments)])


async def wait_for_model(llm: FakeLLM, model: str, count: int = 1) -> None:
    while sum(r.json().get("model") == model for r in llm.requests) < count:
        await asyncio.sleep(0.05)


async def job_done(workspace: Path) -> None:
    """Until the store marks the one background job done (after its report was delivered)."""
    db = workspace / ".oxydra" / "memory.db"
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT status FROM subagent_jobs").fetchall()
        if rows == [("done",)]:
            return
        await asyncio.sleep(0.05)


async def test_a_background_child_outlives_a_kill_9_and_reports_to_its_parent(
    tmp_path: Path,
) -> None:
    conversations = {
        "parent": [background_call(), Reply(text="Started it."), Reply(text="It found 42.")],
        "child": [Reply(text="." * 400, chunk=1, delay=0.1), Reply(text="The number is 42.")],
    }
    async with FakeLLM(conversations=conversations) as llm:
        vm = VmProcess(tmp_path, llm.base_url, extra=AGENT)
        endpoint = await vm.start()
        ws, ack = await client(endpoint)
        parent = ack.session.session_id
        await send(ws, turn(parent, "start the helper"))
        frames = await until(ws, terminal, timeout=60)
        assert isinstance(frames[-1], g.TurnCompleted), frames[-1]
        assert frames[-1].response.message.text == "Started it."  # did not wait for the child
        await asyncio.wait_for(wait_for_model(llm, "child"), 60)
        assert vm.proc is not None
        vm.proc.kill()  # kill -9 while the child streams
        await asyncio.to_thread(vm.proc.wait, 20)
        await ws.close()

        endpoint = await vm.start()
        try:
            # Nobody is connected when the resumed child reports (the default config runs
            # no scheduler): the notification is kept and handed over at the next hello.
            await asyncio.wait_for(job_done(vm.workspace), 60)
            ws, _ = await client(endpoint, session_id=parent)
            notes = await until(ws, lambda f: isinstance(f, g.ScheduledNotification), timeout=30)
            assert notes[-1].message == "The number is 42."
            assert notes[-1].schedule_name == "agent helper"
            await send(ws, turn(parent, "what did it find?"))
            await until(ws, terminal, timeout=60)
            sent = llm.requests[-1].json()["messages"]
        finally:
            await vm.stop()
        llm.assert_done()
    texts = [m.get("content") or "" for m in sent]
    report = next(t for t in texts if "Report of background agent 'helper'" in t)
    assert "The number is 42." in report and "find the number" in report
    assert texts.index(report) < texts.index("what did it find?")


async def test_cancel_all_cancels_a_background_child_and_a_stop_keeps_it(tmp_path: Path) -> None:
    from oxydra.gateway import SESSION_SCHEMA, MemoryJobs
    from oxydra.memory import HashedEmbedder, Memory
    from oxydra.runtime.background import BackgroundJob, BackgroundRunner
    from oxydra.runtime.brief import SubagentBrief

    memory = await Memory.open(
        tmp_path / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA]
    )
    jobs = MemoryJobs(memory)
    started = asyncio.Event()
    reports: list[str] = []

    async def forever(job: BackgroundJob) -> tuple[str, None]:
        started.set()
        await asyncio.Event().wait()
        return "never", None

    async def report(job: BackgroundJob, text: str, label: object) -> None:
        reports.append(text)

    def job(n: int) -> BackgroundJob:
        brief = SubagentBrief(agent_name="helper", goal=f"job {n}")
        return BackgroundJob(
            job_id=f"j{n}", user_id="alice", parent_session_id="p", session_id=f"c{n}",
            channel="tui", brief=brief,
        )  # fmt: skip

    try:
        runner = BackgroundRunner(jobs, per_user=2)
        runner.run_child, runner.report = forever, report
        await runner.submit(job(1))
        await started.wait()
        assert runner.cancel_user("alice") == 1
        async with asyncio.timeout(30):  # a bound on a hang, not a timing
            while runner.running:
                await asyncio.sleep(0.01)
        assert await jobs.pending() == [] and reports == []  # cancelled: never resumed

        runner = BackgroundRunner(jobs, per_user=2)
        runner.run_child = forever
        started.clear()
        await runner.submit(job(2))
        await started.wait()
        await runner.aclose()  # the vm stops: the job stays for the next start
        assert [j.job_id for j in await jobs.pending()] == ["j2"]
    finally:
        await memory.close()


async def test_background_in_a_one_turn_ask_is_refused_clearly(tmp_path: Path) -> None:
    from tests.runtime.test_ask import ask_cmd, run

    script = [background_call(), Reply(text="ran it in the foreground then")]
    async with FakeLLM(script) as llm:
        cmd = ask_cmd(llm.base_url, "--set", "agents.helper.system_prompt=You help.", "go")
        code, _, err = await run(cmd, tmp_path)
        llm.assert_done()
        feedback = llm.requests[-1].json()["messages"][-1]["content"]
    assert code == 0, err
    assert "background runs need the long-running `vm`" in feedback
