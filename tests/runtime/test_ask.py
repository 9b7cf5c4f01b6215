"""`oxydra ask` as a script uses it: a real subprocess against the fake LLM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from oxydra.testing.fake_llm import Call, FakeLLM, Reply


def ask_cmd(url: str, *args: str) -> list[str]:
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
    ]
    cmd = [sys.executable, "-m", "oxydra", "ask", *args]
    for item in sets:
        cmd += ["--set", item]
    return cmd


async def run(
    cmd: list[str], home: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_answer_streams_to_stdout_and_a_tool_really_runs(tmp_path: Path) -> None:
    script = [
        Reply(
            tool_calls=[
                Call(name="file_write", arguments={"path": "/shared/n.txt", "content": "42"})
            ]
        ),
        Reply(text="Saved the number."),
    ]
    async with FakeLLM(script) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "save 42"), tmp_path)
        llm.assert_done()
    assert code == 0, err
    assert out == "Saved the number.\n"
    assert "session: " in err
    written = tmp_path / ".oxydra" / "workspaces" / "default" / "shared" / "n.txt"
    assert written.read_text() == "42"


async def test_a_session_continues_with_its_history(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="Noted."), Reply(text="You said pineapple.")]) as llm:
        _, _, err = await run(ask_cmd(llm.base_url, "remember pineapple"), tmp_path)
        session = err.split("session: ")[1].strip()
        code, out, _ = await run(
            ask_cmd(llm.base_url, "--session", session, "what did I say?"), tmp_path
        )
        sent = llm.requests[-1].json()["messages"]
    assert code == 0 and out.strip() == "You said pineapple."
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "remember pineapple",
        "what did I say?",
    ]


async def test_the_question_can_come_on_stdin_and_json_events_on_stdout(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="hi")]) as llm:
        code, out, _ = await run(
            ask_cmd(llm.base_url, "--json"), tmp_path, stdin=b"hello from a pipe"
        )
        assert llm.requests[0].json()["messages"][-1]["content"] == "hello from a pipe"
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert events[0]["type"] == "progress" and events[-1]["type"] == "outcome"
    assert events[-1]["reason"] == "completed" and events[-1]["spend"]["calls"] == 1
    assert "".join(e["text"] for e in events if e["type"] == "text") == "hi"


async def test_a_budget_stop_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    looping = [
        Reply(tool_calls=[Call(name="file_list", arguments={"path": "/shared"})]) for _ in range(2)
    ]
    async with FakeLLM(looping) as llm:
        code, _, err = await run(
            ask_cmd(llm.base_url, "loop", "--set", "runtime.max_turns=2"), tmp_path
        )
    assert code == 3 and "turn stopped (max_turns)" in err


async def test_a_provider_failure_exits_4(tmp_path: Path) -> None:
    from oxydra.testing.fake_llm import Fail

    async with FakeLLM([Fail(status=401, message="bad key")]) as llm:
        code, _, err = await run(ask_cmd(llm.base_url, "hi"), tmp_path)
    assert code == 4 and "401" in err


async def test_ctrl_c_cancels_and_exits_130(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="slow " * 200, chunk=5, delay=0.05)]) as llm:
        env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
        proc = await asyncio.create_subprocess_exec(
            *ask_cmd(llm.base_url, "talk"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.read(10), 30)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
        await proc.communicate()
    assert proc.returncode == 130


async def test_no_api_key_names_the_variables_to_set(tmp_path: Path) -> None:
    code, _, err = await run([sys.executable, "-m", "oxydra", "ask", "hi"], tmp_path)
    assert code == 2 and "OPENAI_API_KEY" in err and "Traceback" not in err


async def test_an_answer_cut_at_the_output_limit_says_so_and_exits_5(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="The first half of", finish="length")]) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "explain"), tmp_path)
    assert code == 5, err
    assert out == "The first half of\n"
    assert "cut off at the model's output limit" in err


async def test_model_text_reaches_the_terminal_without_escape_sequences(tmp_path: Path) -> None:
    hostile = "Hi\x1b]52;c;UFdORUQ=\x07 there\x1b]0;PWNED\x1b\\\x1b[2J\x1b[3;1H\r\nok\x07\x9b1m"
    async with FakeLLM([Reply(text=hostile, chunk=3)]) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "hi"), tmp_path)
    assert code == 0, err
    assert out == "Hi there\nok1m\n"
