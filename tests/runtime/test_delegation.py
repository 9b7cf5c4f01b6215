"""`delegate_to_agent`: specialist agents with their own prompt, tools, model and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oxydra.config.loader import ConfigSources, load_agent_config
from oxydra.core.errors import ConfigError
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.factory import build_agent, provision_workspace
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.runtime.support import Sink

AGENTS = """
[agents.researcher]
system_prompt = "You research facts. Be precise."
tools = ["file_read", "file_list"]
max_turns = 2

[agents.writer]
system_prompt_file = "{prompt_file}"

[agents.other_model]
system_prompt = "You run on another model."
[agents.other_model.selection]
provider = "fake"
model = "sub-model"
"""


def config_for(tmp: Path, url: str, extra: str = "") -> Any:
    prompt = tmp / "writer.md"
    prompt.write_text("You write tight prose.\nSecond line.")
    (tmp / ".oxydra").mkdir(exist_ok=True)
    (tmp / ".oxydra" / "agent.toml").write_text(
        f'[selection]\nprovider = "fake"\nmodel = "gpt-4o-mini"\n'
        f'[providers.registry.fake]\nprovider_type = "openai"\nbase_url = "{url}"\napi_key = "k"\n'
        f"[catalog]\nskip_catalog_validation = true\n" + AGENTS.format(prompt_file=prompt) + extra
    )
    return load_agent_config(
        ConfigSources(system_dir=tmp / "etc", home=tmp / "h", cwd=tmp, environ={})
    ).config


def delegate(agent: str, goal: str, **more: Any) -> Reply:
    return Reply(
        tool_calls=[
            Call(name="delegate_to_agent", arguments={"agent_name": agent, "goal": goal, **more})
        ]
    )


async def run(tmp: Path, llm: FakeLLM, prompt: str = "go") -> Any:
    agent = build_agent(
        config_for(tmp, llm.base_url), workspace=provision_workspace(tmp / "ws"), environ={}
    )
    try:
        return await agent.runtime.run_turn(
            TurnRequest(user_id="u", session_id="s", turn_id="t", prompt=prompt), Sink()
        )
    finally:
        await agent.aclose()


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools", [])}


async def test_a_specialist_runs_with_its_own_prompt_and_tools(tmp_path: Path) -> None:
    script = [
        delegate("researcher", "Find the capital of Norway", key_facts=["Use only facts"]),
        Reply(text="Oslo."),
        Reply(text="The researcher says Oslo."),
    ]
    async with FakeLLM(script) as llm:
        outcome = await run(tmp_path, llm)
        llm.assert_done()
    assert outcome.ok and outcome.response.message.text == "The researcher says Oslo."
    parent, child, final = (r.json() for r in llm.requests)
    assert "delegate_to_agent" in tool_names(parent)
    assert child["messages"][0] == {"role": "system", "content": "You research facts. Be precise."}
    assert "Find the capital of Norway" in child["messages"][1]["content"]
    assert "- Use only facts" in child["messages"][1]["content"]
    assert tool_names(child) == {"file_read", "file_list"}, "only the agent's tools"
    assert final["messages"][-1]["content"] == "Oslo."


async def test_the_prompt_file_is_read_and_the_agent_can_use_another_model(tmp_path: Path) -> None:
    script = [
        delegate("writer", "Write a line"),
        Reply(text="A line."),
        delegate("other_model", "Hi"),
        Reply(text="done"),
    ]
    async with FakeLLM(
        script, conversations={"sub-model": [Reply(text="from the other model")]}
    ) as llm:
        outcome = await run(tmp_path, llm)
        llm.assert_done()
    assert outcome.ok
    bodies = [r.json() for r in llm.requests]
    writer = bodies[1]
    assert writer["messages"][0]["content"] == "You write tight prose.\nSecond line."
    assert "delegate_to_agent" not in tool_names(writer), "no recursive delegation"
    assert any(b["model"] == "sub-model" for b in bodies)


async def test_the_agents_turn_limit_is_enforced(tmp_path: Path) -> None:
    loop = Reply(tool_calls=[Call(name="file_list", arguments={"path": "/shared"})])
    script = [
        delegate("researcher", "Loop forever", max_turns=5),
        loop,
        loop,
        Reply(text="gave up"),
    ]
    async with FakeLLM(script) as llm:
        outcome = await run(tmp_path, llm)
        llm.assert_done()
    assert outcome.ok
    report = llm.requests[-1].json()["messages"][-1]["content"]
    assert "stopped (max_turns)" in report, "min(request 5, agent 2) = 2 model calls"


async def test_an_unknown_agent_is_fed_back_to_the_model(tmp_path: Path) -> None:
    script = [delegate("nobody", "x"), Reply(text="ok")]
    async with FakeLLM(script) as llm:
        await run(tmp_path, llm)
    feedback = llm.requests[-1].json()["messages"][-1]["content"]
    assert (
        "invalid enum value 'nobody'" in feedback
        and "one of " in feedback
        and "researcher" in feedback
    )


def test_an_agent_listing_an_unknown_tool_is_a_config_error(tmp_path: Path) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:9", '\n[agents.bad]\ntools = ["teleport"]\n')
    with pytest.raises(ConfigError, match=r"agents\.bad\.tools: unknown tool 'teleport'"):
        build_agent(config, workspace=provision_workspace(tmp_path / "ws"), environ={})


def only_tool_call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[Call(name=name, arguments=arguments)])


class Recorder:
    def __init__(self) -> None:
        self.children: list[dict[str, str]] = []

    async def started(self, **fields: str) -> None:
        self.children.append(fields)


async def run_with(tmp: Path, llm: FakeLLM, extra: str = "", **build: Any) -> Any:
    agent = build_agent(
        config_for(tmp, llm.base_url, extra),
        workspace=provision_workspace(tmp / "ws"),
        environ={},
        **build,
    )
    try:
        return await agent.runtime.run_turn(
            TurnRequest(user_id="u", session_id="parent", turn_id="t", prompt="secret plan"),
            Sink(),
        )
    finally:
        await agent.aclose()


class TestBriefs:
    async def test_the_child_sees_only_its_brief_and_is_recorded_under_its_parent(
        self, tmp_path: Path
    ) -> None:
        script = [
            delegate(
                "researcher",
                "List the shared folder",
                key_facts=["It is small"],
                expected_output="one line per file",
                tools=["file_list"],
                max_secs=30,
            ),
            Reply(text="a.txt"),
            Reply(text="done"),
        ]
        recorder = Recorder()
        async with FakeLLM(script) as llm:
            outcome = await run_with(tmp_path, llm, child_sessions=recorder)
            llm.assert_done()
        assert outcome.ok
        child = llm.requests[1].json()
        brief = child["messages"][1]["content"]
        assert [m["role"] for m in child["messages"]] == ["system", "user"]
        assert "secret plan" not in str(child), "never the parent's history"
        assert brief.startswith("Goal: List the shared folder\n\nKey facts:\n- It is small")
        assert "Expected output: one line per file" in brief and "Tools: file_list." in brief
        assert "Budget: at most 2 model calls, 30 seconds." in brief  # the agent's max_turns
        assert tool_names(child) == {"file_list"}, "brief ∩ agent"
        [record] = recorder.children
        assert record["parent_session_id"] == "parent" and record["agent_name"] == "researcher"
        assert record["session_id"].startswith("subagent:parent:")

    async def test_a_child_calling_a_tool_outside_its_brief_is_refused(
        self, tmp_path: Path
    ) -> None:
        script = [
            delegate("researcher", "Read a file", tools=["file_list"]),
            only_tool_call("file_read", path="/shared/a.txt"),
            Reply(text="could not"),
            Reply(text="done"),
        ]
        (tmp_path / "ws" / "shared").mkdir(parents=True)
        (tmp_path / "ws" / "shared" / "a.txt").write_text("private")
        async with FakeLLM(script) as llm:
            await run_with(tmp_path, llm)
            llm.assert_done()
        refusal = llm.requests[2].json()["messages"][-1]["content"]
        assert "unknown tool 'file_read'. Available tools: file_list" in refusal
        assert "private" not in str(llm.requests[2].json())

    async def test_a_brief_asking_for_tools_the_agent_lacks_is_fed_back(
        self, tmp_path: Path
    ) -> None:
        script = [delegate("researcher", "Run it", tools=["shell_exec"]), Reply(text="ok")]
        async with FakeLLM(script) as llm:
            await run_with(tmp_path, llm)
            llm.assert_done()
        feedback = llm.requests[-1].json()["messages"][-1]["content"]
        assert "tools outside what agent 'researcher' may use: shell_exec" in feedback
        assert "it may use: file_list, file_read" in feedback

    async def test_the_agents_time_budget_stops_a_slow_child(self, tmp_path: Path) -> None:
        extra = '\n[agents.slow]\nsystem_prompt = "slow"\nmax_secs = 1\n'
        script = [
            delegate("slow", "Think hard"),
            Reply(text="thinking " * 40, chunk=4, delay=0.2),
            Reply(text="done"),
        ]
        async with FakeLLM(script) as llm:
            await run_with(tmp_path, llm, extra)
        report = llm.requests[-1].json()["messages"][-1]["content"]
        assert "The agent 'slow' stopped (deadline)" in report and "1.0s deadline" in report

    async def test_the_fan_out_limit_stops_a_runaway_turn(self, tmp_path: Path) -> None:
        extra = "\n[runtime]\nmax_subagents_per_turn = 1\n"
        script = [
            delegate("researcher", "one"),
            Reply(text="first report"),
            delegate("researcher", "two"),
            Reply(text="stopping"),
        ]
        async with FakeLLM(script) as llm:
            await run_with(tmp_path, llm, extra)
            llm.assert_done()
        feedback = llm.requests[-1].json()["messages"][-1]["content"]
        assert "already started 1 sub-agents" in feedback
        assert "max_subagents_per_turn = 1" in feedback

    async def test_a_brief_larger_than_the_childs_context_is_refused(self, tmp_path: Path) -> None:
        script = [delegate("tiny", "x" * 19_000), Reply(text="too big then")]
        async with FakeLLM(script) as llm:
            extra = (
                f'\n[providers.registry.small]\nprovider_type = "openai"\n'
                f'base_url = "{llm.base_url}"\napi_key = "k"\nmax_context_tokens = 1200\n'
                '[agents.tiny]\nsystem_prompt = "tiny"\n'
                '[agents.tiny.selection]\nprovider = "small"\nmodel = "tiny"\n'
            )
            await run_with(tmp_path, llm, extra)
            llm.assert_done()
        report = llm.requests[-1].json()["messages"][-1]["content"]
        assert "The agent 'tiny' stopped (context_too_small)" in report


def test_an_agent_that_could_delegate_is_refused_naming_the_cycle(tmp_path: Path) -> None:
    extra = '\n[agents.loop]\ntools = ["delegate_to_agent"]\n'
    config = config_for(tmp_path, "http://127.0.0.1:9", extra)
    with pytest.raises(ConfigError, match=r"agents\.loop\.tools: an agent cannot delegate"):
        build_agent(config, workspace=provision_workspace(tmp_path / "ws"), environ={})
