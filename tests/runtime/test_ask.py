"""`oxydra ask` as a script uses it: a real subprocess against the fake LLM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

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
    assert events[0]["type"] == "progress" and events[-2]["type"] == "outcome"
    assert events[-2]["reason"] == "completed" and events[-2]["spend"]["calls"] == 1
    assert "".join(e["text"] for e in events if e["type"] == "text") == "hi"
    timing = events[-1]
    assert timing["type"] == "timing"
    names = [p["name"] for p in timing["phases"]]
    for name in ("interpreter", "arguments", "imports", "config", "store", "prompt"):
        assert name in names
    for name in ("persistence", "connect", "first_byte", "stream", "exit"):
        assert name in names
    assert "tools" not in names  # no tool ran
    assert all(p["cpu_ms"] >= 0 and p["wall_ms"] >= 0 for p in timing["phases"])
    cpu = sum(p["cpu_ms"] for p in timing["phases"])
    assert timing["cpu_ms"] == pytest.approx(cpu, abs=0.01)
    assert timing["modules"] == sum(p["modules"] for p in timing["phases"])


async def test_only_json_output_carries_the_timing_record(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="hi")]) as llm:
        code, out, _ = await run(ask_cmd(llm.base_url, "hello"), tmp_path)
    assert code == 0 and out == "hi\n"


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


async def test_text_from_successive_model_calls_is_not_glued_together(tmp_path: Path) -> None:
    # A model that says something, calls a tool, then answers: "Let me look." and "It is 42."
    # must not reach the user as "Let me look.It is 42.".
    script = [
        Reply(
            text="Let me look.",
            tool_calls=[Call(name="file_list", arguments={"path": "/shared"})],
        ),
        Reply(text="It is 42."),
    ]
    async with FakeLLM(script) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "what is it?"), tmp_path)
        llm.assert_done()
    assert code == 0, err
    assert out == "Let me look.\nIt is 42.\n"


async def test_the_local_shell_tells_the_model_to_use_relative_paths(tmp_path: Path) -> None:
    # The local shell runs in the host folder behind /shared; `cat /shared/x` fails there,
    # so the description the model reads must not promise it /shared.
    script = [
        Reply(tool_calls=[Call(name="shell_exec", arguments={"command": "cat /shared/x.txt"})]),
        Reply(text="ok"),
    ]
    async with FakeLLM(script) as llm:
        code, _, err = await run(ask_cmd(llm.base_url, "go"), tmp_path)
        tools = {t["function"]["name"]: t for t in llm.requests[0].json()["tools"]}
        result = [m for m in llm.requests[-1].json()["messages"] if m["role"] == "tool"]
    assert code == 0, err
    if "shell_exec" not in tools:
        pytest.skip("no Landlock here: the shell is off, nothing to describe")
    described = tools["shell_exec"]["function"]["description"]
    assert "relative" in described and "do not exist" in described
    assert "No such file" in result[0]["content"]  # what the description warns about


async def test_two_asks_continuing_one_session_at_once_take_turns(tmp_path: Path) -> None:
    # Without a per-session lock the two turns interleave into one history (a tool result
    # after a plain assistant message), which providers then refuse for good.
    def steps(name: str) -> list[Reply]:
        call = Call(name="file_write", arguments={"path": f"/shared/{name}", "content": name})
        return [Reply(text=f"{name} writes", tool_calls=[call]), Reply(text=name)]

    conversations = {"seed": [Reply(text="seeded")], "one": steps("one"), "two": steps("two")}
    conversations["check"] = [Reply(text="checked")]
    async with FakeLLM(conversations=conversations) as llm:

        def as_model(name: str, *args: str) -> list[str]:
            return ask_cmd(llm.base_url, *args, "--set", f"selection.model={name}")

        _, _, err = await run(as_model("seed", "seed"), tmp_path)
        session = err.split("session: ")[1].strip()
        # The first ask's answer is held until the second shows it waits for that turn.
        answering = llm.hold("one")
        try:
            one = asyncio.create_task(run(as_model("one", "--session", session, "q one"), tmp_path))
            deadline = asyncio.get_running_loop().time() + 60
            while not any(r.json().get("model") == "one" for r in llm.requests):
                assert not one.done(), one.result()
                assert asyncio.get_running_loop().time() < deadline, "the first ask sent nothing"
                await asyncio.sleep(0.02)
            two = await asyncio.create_subprocess_exec(
                *as_model("two", "--session", session, "q two"),
                env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert two.stderr is not None
            told = await asyncio.wait_for(two.stderr.readline(), 60)
            assert told == b"oxydra ask: waiting for the session's running turn to end\n", told
            assert not any(r.json().get("model") == "two" for r in llm.requests)
            answering.set()
            out, _ = await asyncio.wait_for(two.communicate(), 60)
            assert two.returncode == 0 and out.decode().strip() == "two writes\ntwo", out
            assert (await one)[0] == 0, one.result()
        finally:
            answering.set()
        await run(as_model("check", "--session", session, "check"), tmp_path)
        sent = llm.requests[-1].json()["messages"]
    history = [(m["role"], m.get("content") or "") for m in sent if m["role"] != "system"]
    assert history[2:] == [
        ("user", "q one"),
        ("assistant", "one writes"),
        ("tool", "wrote 3 bytes to /shared/one"),
        ("assistant", "one"),
        ("user", "q two"),
        ("assistant", "two writes"),
        ("tool", "wrote 3 bytes to /shared/two"),
        ("assistant", "two"),
        ("user", "check"),
    ]


async def test_an_empty_question_is_a_usage_error_not_an_empty_message(tmp_path: Path) -> None:
    # Providers refuse an empty user message (Anthropic: 400), and it would stay in the session.
    async with FakeLLM([]) as llm:
        piped = await run(ask_cmd(llm.base_url), tmp_path, stdin=b"\n")
        blank = await run(ask_cmd(llm.base_url, "   "), tmp_path)
        assert llm.requests == []
    for code, out, err in (piped, blank):
        assert code == 2 and out == ""
        assert "the question is empty" in err and "Traceback" not in err


async def test_model_text_reaches_the_terminal_without_escape_sequences(tmp_path: Path) -> None:
    hostile = "Hi\x1b]52;c;UFdORUQ=\x07 there\x1b]0;PWNED\x1b\\\x1b[2J\x1b[3;1H\r\nok\x07\x9b1m"
    async with FakeLLM([Reply(text=hostile, chunk=3)]) as llm:
        code, out, err = await run(ask_cmd(llm.base_url, "hi"), tmp_path)
    assert code == 0, err
    assert out == "Hi there\nok1m\n"


async def test_both_streams_into_one_pipe_keep_the_answer_on_its_own_line(
    tmp_path: Path,
) -> None:
    """`ask ... 2>&1 | tee log`: the answer's final newline comes before the session line."""
    async with FakeLLM([Reply(text="no newline at the end")]) as llm:
        proc = await asyncio.create_subprocess_exec(
            *ask_cmd(llm.base_url, "hi"),
            env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    assert proc.returncode == 0, lines
    assert lines[0] == "no newline at the end"
    assert lines[1].startswith("session: ")
