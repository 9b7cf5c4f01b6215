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
