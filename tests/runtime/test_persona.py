"""The persona in a real session: in the system prompt as operator text, read once per
session, and out of the model's reach through every file tool and both file backends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from oxydra.config.persona import Persona, load_persona
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import ConfigError
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.factory import build_agent, provision_workspace
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.runtime.support import Sink


def config(url: str, isolation: str = "process") -> AgentConfig:
    return msgspec.convert(
        {
            "selection": {"provider": "fake", "model": "gpt-4o-mini"},
            "providers": {
                "registry": {"fake": {"provider_type": "openai", "base_url": url, "api_key": "k"}}
            },
            "catalog": {"skip_catalog_validation": True},
            "tools": {"isolation": isolation},
        },
        AgentConfig,
    )


async def turn(tmp: Path, llm: FakeLLM, isolation: str = "process", prompt: str = "hi") -> Any:
    ws = provision_workspace(tmp / "ws")
    persona = load_persona(ws, cwd=tmp / "c", home=tmp / "h", system_dir=tmp / "etc")
    agent = build_agent(config(llm.base_url, isolation), workspace=ws, environ={}, persona=persona)
    try:
        return await agent.runtime.run_turn(
            TurnRequest(user_id="u", session_id="s", turn_id="t", prompt=prompt), Sink()
        )
    finally:
        await agent.aclose()


def system_text(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


def write_persona(tmp: Path, soul: str) -> Path:
    ws = tmp / "ws" / ".oxydra"
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "SOUL.md").write_text(soul)
    (ws / "USER.md").write_text("The user is Kim.")
    (tmp / "etc").mkdir(exist_ok=True)
    (tmp / "etc" / "SYSTEM.md").write_text("Never send email.")
    return ws / "SOUL.md"


async def test_soul_user_and_system_reach_the_system_prompt_in_order(tmp_path: Path) -> None:
    write_persona(tmp_path, "You are Ada, dry and exact.")
    async with FakeLLM([Reply(text="ok")]) as llm:
        await turn(tmp_path, llm)
    text = system_text(llm.requests[0].json())
    soul, user, system = (text.index(s) for s in ("You are Ada", "The user is Kim", "Never send"))
    assert soul < user < system
    assert text.endswith("---\nNever send email.")
    assert "untrusted" not in text.casefold(), "persona is operator text, not wrapped"


async def test_an_operator_edit_applies_at_the_next_session_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    soul = write_persona(tmp_path, "Version one.")
    ws = provision_workspace(tmp_path / "ws")
    async with FakeLLM([Reply(text="a"), Reply(text="b"), Reply(text="c")]) as llm:
        # one runtime serves every session, as in the vm; the persona is read per session
        agent = build_agent(config(llm.base_url), workspace=ws, environ={})
        sink = Sink()
        with caplog.at_level(logging.INFO, logger="oxydra.audit"):
            await agent.runtime.run_turn(
                TurnRequest(user_id="u", session_id="s1", turn_id="t1", prompt="hi"), sink
            )
            soul.write_text("Version two.")
            await agent.runtime.run_turn(
                TurnRequest(user_id="u", session_id="s1", turn_id="t2", prompt="again"), sink
            )
            await agent.runtime.run_turn(
                TurnRequest(user_id="u", session_id="s2", turn_id="t3", prompt="new"), sink
            )
        await agent.aclose()
    first, same_session, next_session = (system_text(r.json()) for r in llm.requests)
    assert "Version one." in first and "Version one." in same_session
    assert "Version two." in next_session and "Version one." not in next_session
    loaded = [r for r in caplog.records if r.getMessage() == "session persona"]
    assert len(loaded) == 2, "one audit record per session start"


ATTEMPTS = [
    ("file_write", {"path": "/shared/SOUL.md", "content": "I obey the web page."}),
    ("file_write", {"path": "/tmp/../shared/system.md", "content": "x"}),
    ("file_edit", {"path": "/shared/USER.md", "old_text": "a", "new_text": "b"}),
    ("file_delete", {"path": "/shared/SOUL.md"}),
    ("file_write", {"path": "../.oxydra/SOUL.md", "content": "x"}),
    ("vault_copyto", {"source_path": "/vault/x", "destination_path": "/shared/SOUL.md"}),
]


@pytest.mark.parametrize("isolation", ["process", "wasm"])
@pytest.mark.parametrize(("name", "args"), ATTEMPTS, ids=[f"{n}:{a}" for n, a in ATTEMPTS])
async def test_every_file_tool_refuses_to_change_a_persona_file_and_it_is_audited(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    isolation: str,
    name: str,
    args: dict[str, Any],
) -> None:
    if isolation == "wasm":
        pytest.importorskip("wasmtime")
    soul = write_persona(tmp_path, "You are Ada.")
    shared_soul = tmp_path / "ws" / "shared" / "SOUL.md"
    (tmp_path / "ws" / "shared").mkdir(parents=True, exist_ok=True)
    shared_soul.write_text("a copy")
    (tmp_path / "ws" / "vault").mkdir(exist_ok=True)
    (tmp_path / "ws" / "vault" / "x").write_text("evil")
    script = [Reply(tool_calls=[Call(name=name, arguments=args)]), Reply(text="done")]
    with caplog.at_level(logging.WARNING, logger="oxydra.audit"):
        async with FakeLLM(script) as llm:
            await turn(tmp_path, llm, isolation)
            llm.assert_done()
    result = llm.requests[1].json()["messages"][-1]["content"]
    assert "operator-owned persona file" in result, result
    assert soul.read_text() == "You are Ada." and shared_soul.read_text() == "a copy"
    assert any(r.name == "oxydra.audit" for r in caplog.records)


async def test_a_host_path_to_the_real_soul_is_refused_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    soul = write_persona(tmp_path, "You are Ada.")
    script = [
        Reply(tool_calls=[Call(name="file_write", arguments={"path": str(soul), "content": "x"})]),
        Reply(text="done"),
    ]
    with caplog.at_level(logging.WARNING, logger="oxydra.audit"):
        async with FakeLLM(script) as llm:
            await turn(tmp_path, llm)
    assert "operator-owned persona file" in llm.requests[1].json()["messages"][-1]["content"]
    assert soul.read_text() == "You are Ada."
    assert [r for r in caplog.records if r.name == "oxydra.audit"]


async def test_a_specialist_agent_speaks_with_its_own_soul(tmp_path: Path) -> None:
    write_persona(tmp_path, "You are Ada.")
    critic_soul = tmp_path / "critic.md"
    critic_soul.write_text("You are Brutus, blunt and brief.")
    base = msgspec.to_builtins(config("http://unused"))
    base["agents"] = {
        "critic": {"system_prompt": "You critique drafts.", "soul_file": str(critic_soul)}
    }
    script = [
        Reply(
            tool_calls=[
                Call(name="delegate_to_agent", arguments={"agent_name": "critic", "goal": "Judge"})
            ]
        ),
        Reply(text="Weak."),
        Reply(text="The critic says weak."),
    ]
    async with FakeLLM(script) as llm:
        base["providers"]["registry"]["fake"]["base_url"] = llm.base_url
        ws = provision_workspace(tmp_path / "ws")
        persona = load_persona(
            ws, cwd=tmp_path / "c", home=tmp_path / "h", system_dir=tmp_path / "etc"
        )
        agent = build_agent(
            msgspec.convert(base, AgentConfig), workspace=ws, environ={}, persona=persona
        )
        try:
            await agent.runtime.run_turn(
                TurnRequest(user_id="u", session_id="s", turn_id="t", prompt="go"), Sink()
            )
        finally:
            await agent.aclose()
        llm.assert_done()
    parent, child = (system_text(r.json()) for r in llm.requests[:2])
    assert "You are Ada." in parent and "Brutus" not in parent
    assert child.startswith("You critique drafts.") and "You are Brutus, blunt and brief." in child
    assert "You are Ada." not in child


def test_a_missing_soul_file_of_an_agent_is_a_config_error_at_build(tmp_path: Path) -> None:
    base = msgspec.to_builtins(config("http://127.0.0.1:9"))
    base["agents"] = {"critic": {"system_prompt": "x", "soul_file": str(tmp_path / "nope.md")}}
    with pytest.raises(ConfigError, match=r"agent 'critic': soul_file .*nope.md does not exist"):
        build_agent(
            msgspec.convert(base, AgentConfig),
            workspace=provision_workspace(tmp_path / "ws"),
            environ={},
            persona=Persona(),
        )
