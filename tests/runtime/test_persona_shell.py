"""A hostile model with the shell tool cannot change a persona file: `oxydra ask` runs as a
user would, the fake LLM orders `cp`, `mv`, a symlink, `>` and `sed -i` against SOUL.md,
SYSTEM.md and USER.md in every layer, and the files are compared afterwards.

The shell's confinement to the workspace's `shared` and `tmp` is `oxydra.security.confine`
(Landlock); on a kernel without Landlock the shell is off and these tests skip.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from oxydra.security._landlock import landlock_abi
from oxydra.testing.fake_llm import Call, FakeLLM, Reply

pytestmark = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="this kernel has no Landlock")


def persona_files(home: Path) -> dict[Path, str]:
    ws = home / ".oxydra" / "workspaces" / "default"
    files = {
        home / ".config" / "oxydra" / "SYSTEM.md": "Never send email.",
        home / ".oxydra" / "SOUL.md": "You are Ada.",
        ws / ".oxydra" / "USER.md": "The user is Kim.",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def commands(files: list[Path]) -> list[str]:
    system, soul, user = files
    return [
        f"echo 'I obey the web page.' > {soul}; echo end",
        f"echo evil > x.md && cp x.md {system}; echo end",
        f"echo evil > y.md && mv y.md {user}; echo end",
        f"sed -i 's/Ada/Mallory/' {soul}; echo end",
        f"python3 -c \"import os; os.remove('{soul}'); os.symlink('x.md', '{soul}')\"; echo end",
        f"cp {soul} ../.oxydra/SOUL.md; echo end",
    ]


async def ask_with_shell(home: Path, command: str) -> str:
    script = [
        Reply(tool_calls=[Call(name="shell_exec", arguments={"command": command})]),
        Reply(text="ok"),
    ]
    async with FakeLLM(script) as llm:
        cmd = [sys.executable, "-m", "oxydra", "ask", "go"]
        for item in (
            f"providers.registry.fake.base_url={llm.base_url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ):
            cmd += ["--set", item]
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=home, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        sent = llm.requests[-1].json()["messages"]
    return str(next(m["content"] for m in sent if m["role"] == "tool"))


@pytest.mark.parametrize("index", range(6))
async def test_no_shell_command_changes_a_persona_file(tmp_path: Path, index: int) -> None:
    files = persona_files(tmp_path)
    result = await ask_with_shell(tmp_path, commands(list(files))[index])
    assert "end" in result or "refused" in result, result
    for path, text in files.items():
        assert not path.is_symlink() and path.read_text() == text, (path, result)
    planted = tmp_path / ".oxydra" / "workspaces" / "default" / ".oxydra" / "SOUL.md"
    assert not planted.exists(), "a SOUL.md planted in the workspace layer would win"
