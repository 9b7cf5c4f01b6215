"""`oxydra ask` with a hostile model: the shell it is given must not reach the agent's secrets.

The attacks of issue 12 item 1, run as a user would: a real `ask` subprocess, a scripted
fake LLM telling it to run the commands, and the next request to the LLM inspected for
what came back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from oxydra.security._landlock import landlock_abi
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.runtime.test_ask import run

KEY = "sk-provider-secret-4f1d9a7c2b8e"
HAS_LANDLOCK = landlock_abi()[0] > 0


def ask_cmd(url: str, *args: str) -> list[str]:
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key_env=FAKE_API_KEY",
        "selection.provider=fake",
    ]
    cmd = [sys.executable, "-m", "oxydra", "ask", *args]
    for item in sets:
        cmd += ["--set", item]
    return cmd


async def shell_turn(tmp_path: Path, command: str, *extra: str) -> tuple[int, str, str]:
    """Let the model run `command`; return the exit code, the tool result and stderr."""
    script = [
        Reply(tool_calls=[Call(name="shell_exec", arguments={"command": command})]),
        Reply(text="done"),
    ]
    env_extra = {"FAKE_API_KEY": KEY}
    async with FakeLLM(script) as llm:
        code, _, err = await run(ask_cmd(llm.base_url, "go", *extra), tmp_path, env=env_extra)
        sent = llm.requests[-1].json()["messages"] if len(llm.requests) > 1 else []
    tool = [m for m in sent if m["role"] == "tool"]
    return code, (tool[0]["content"] if tool else ""), err


@pytest.mark.skipif(not HAS_LANDLOCK, reason="this kernel has no Landlock")
class TestAskShellIsConfined:
    async def test_the_shell_cannot_read_the_agents_environment(self, tmp_path: Path) -> None:
        command = "tr '\\0' '\\n' </proc/$PPID/environ | grep API_KEY | rev; echo end"
        code, result, err = await shell_turn(tmp_path, command)
        assert code == 0, err
        assert "end" in result
        assert KEY[::-1] not in result and KEY not in result
        assert "KEY=" not in result

    async def test_the_shell_cannot_read_any_process_environment(self, tmp_path: Path) -> None:
        command = "cat /proc/*/environ | tr '\\0' '\\n' | grep API_KEY | rev; echo end"
        code, result, err = await shell_turn(tmp_path, command)
        assert code == 0, err
        assert KEY not in result and KEY[::-1] not in result

    async def test_the_shell_has_no_secret_in_its_own_environment(self, tmp_path: Path) -> None:
        code, result, err = await shell_turn(tmp_path, "env | rev")
        assert code == 0, err
        assert "PATH" in result[::-1] or "HTAP" in result
        assert KEY[::-1] not in result

    async def test_the_shell_cannot_write_outside_the_workspace(self, tmp_path: Path) -> None:
        target = tmp_path / "pwned"
        command = (
            f"echo x > {target}; echo y > $HOME/../../pwned2; touch /tmp/ox-pwned-$$; echo end"
        )
        code, result, err = await shell_turn(tmp_path, command)
        assert code == 0, err
        assert not target.exists()
        assert not list(tmp_path.rglob("pwned2"))
        assert "end" in result

    async def test_the_shell_cannot_read_provider_credentials(self, tmp_path: Path) -> None:
        (tmp_path / ".oxydra").mkdir()
        creds = tmp_path / ".oxydra" / "providers.toml"
        entry = '[providers.registry.other]\nprovider_type = "openai"\n'
        creds.write_text(entry + 'api_key = "sk-in-the-credentials-file-9"\n')
        code, result, err = await shell_turn(tmp_path, f"rev {creds}; echo end")
        assert code == 0, err
        assert "sk-in-the-credentials-file-9"[::-1] not in result

    async def test_the_shell_writes_and_reads_inside_its_workspace(self, tmp_path: Path) -> None:
        code, result, err = await shell_turn(tmp_path, "echo hi > a.txt && cat a.txt && pwd")
        assert code == 0, err
        assert "hi" in result and result.count("shared") == 1
        shared = tmp_path / ".oxydra" / "workspaces" / "default" / "shared" / "a.txt"
        assert shared.read_text() == "hi\n"


def test_the_test_key_is_not_a_substring_of_the_environment() -> None:
    assert KEY not in "".join(os.environ.values())
