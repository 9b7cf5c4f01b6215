"""The MCP client against real stdio servers: mcp-server-time, mcp-server-git, and ours."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra.config.schema import McpServerConfig
from oxydra.core.tiers import SafetyTier
from oxydra.tools import ToolExecutionContext
from tests.tools.mcp.conftest import BIN, misbehaving


def time_server(**extra: object) -> McpServerConfig:
    return McpServerConfig(
        command=str(BIN / "mcp-server-time"), args=["--local-timezone", "UTC"], **extra
    )


class TestTimeServer:
    async def test_tools_are_registered_under_server_prefixed_names(self, make_hub) -> None:
        hub = await make_hub({"time": time_server()})
        assert sorted(hub.tools()) == ["time__convert_time", "time__get_current_time"]
        [status] = hub.status()
        assert status.state == "ready"
        assert status.protocol in ("2025-11-25", "2026-07-28")
        assert status.confinement is not None and status.confinement.startswith("landlock")

    async def test_a_call_returns_the_servers_answer(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"time": time_server()})
        result = await hub.registry.execute(
            "time__get_current_time", {"timezone": "Europe/Paris"}, call_ctx
        )
        assert result.ok, result.text
        assert json.loads(result.text)["timezone"] == "Europe/Paris"

    async def test_a_result_is_labelled_untrusted_with_its_server(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        """What an MCP server says taints the step (docs/taint.md), whatever the tool."""
        hub = await make_hub({"time": time_server()})
        result = await hub.registry.execute("time__get_current_time", {"timezone": "UTC"}, call_ctx)
        assert result.ok and result.label is not None, result
        assert [(s.kind, s.ref) for s in result.label.sources] == [("mcp", "time")]

    async def test_an_is_error_result_becomes_a_tool_error_the_model_reads(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"time": time_server()})
        result = await hub.registry.execute(
            "time__get_current_time", {"timezone": "Nowhere/Atlantis"}, call_ctx
        )
        assert not result.ok and result.error_kind == "failed"
        assert "Invalid timezone" in result.text

    @pytest.mark.parametrize("protocol", ["2025-06-18", "2025-11-25", "2026-07-28"])
    async def test_each_protocol_revision_can_be_pinned(
        self, make_hub, call_ctx: ToolExecutionContext, protocol: str
    ) -> None:
        hub = await make_hub({"time": time_server(protocol=protocol)})
        assert hub.status()[0].protocol == protocol
        result = await hub.registry.execute("time__get_current_time", {"timezone": "UTC"}, call_ctx)
        assert result.ok, result.text

    async def test_read_only_hint_lowers_nothing_unless_config_trusts_it(self, make_hub) -> None:
        hub = await make_hub({"time": time_server()})
        assert set(hub.status()[0].tools.values()) == {"side_effecting"}
        trusting = await make_hub({"t2": time_server(trust_read_only_hint=True)})
        assert set(trusting.status()[0].tools.values()) == {"read_only"}

    async def test_per_tool_tier_override_and_allow_list(self, make_hub) -> None:
        config = time_server(
            tools=["get_*"], tool_tiers={"get_current_time": SafetyTier.PRIVILEGED}
        )
        hub = await make_hub({"time": config})
        assert hub.status()[0].tools == {"time__get_current_time": "privileged"}

    async def test_exclude_tools_leaves_a_tool_out(self, make_hub) -> None:
        hub = await make_hub({"time": time_server(exclude_tools=["convert_time"])})
        assert list(hub.tools()) == ["time__get_current_time"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit, inside the git server's own directory."""
    path = tmp_path / "mcp" / "git" / "repo"
    path.mkdir(parents=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "README.md").write_text("hello from the test repo\n")
    subprocess.run(["git", "-C", str(path), "add", "README.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "first commit"], check=True, env=env)
    return path


class TestGitServer:
    async def test_git_log_of_a_repository_in_the_servers_directory(
        self, make_hub, repo: Path, call_ctx: ToolExecutionContext
    ) -> None:
        config = McpServerConfig(
            command=str(BIN / "mcp-server-git"), args=["--repository", str(repo)],
            startup_timeout_secs=20.0,
        )  # fmt: skip
        hub = await make_hub({"git": config})
        assert "git__git_log" in hub.tools(), hub.status()
        result = await hub.registry.execute("git__git_log", {"repo_path": str(repo)}, call_ctx)
        assert result.ok, result.text
        assert "first commit" in result.text
        status = await hub.registry.execute("git__git_status", {"repo_path": str(repo)}, call_ctx)
        assert "main" in status.text


class TestConfinement:
    async def test_the_server_cannot_read_outside_its_directory(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET")
        hub = await make_hub({"bad": misbehaving()})
        result = await hub.registry.execute("bad__read_file", {"path": str(secret)}, call_ctx)
        assert not result.ok
        assert "PermissionError" in result.text and "TOP-SECRET" not in result.text
        inside = tmp_path / "mcp" / "bad" / "mine.txt"
        inside.write_text("MINE")
        own = await hub.registry.execute("bad__read_file", {"path": str(inside)}, call_ctx)
        assert own.ok and own.text == "MINE"

    async def test_the_environment_holds_only_what_it_was_given(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        environ = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-leak", "SOURCE_GREETING": "hi"}
        config = misbehaving(env={"GREETING": "${SOURCE_GREETING}", "PLAIN": "yes"})
        hub = await make_hub({"bad": config}, environ=environ)
        result = await hub.registry.execute("bad__env", {}, call_ctx)
        env = json.loads(result.text)
        assert "OPENAI_API_KEY" not in env and "SOURCE_GREETING" not in env
        assert env["GREETING"] == "hi" and env["PLAIN"] == "yes"
        assert env["HOME"] == str(tmp_path / "mcp" / "bad")
        # PWD: the launcher's `sh -c exec` sets it, as for every shell command
        assert set(env) <= {"PATH", "HOME", "TMPDIR", "GREETING", "PLAIN", "LC_CTYPE", "PWD"}


class TestHostileServer:
    """A server that attacks the agent gets exactly the confinement a shell command gets."""

    async def probe(self, make_hub, call_ctx: ToolExecutionContext, environ=None) -> dict:
        hub = await make_hub({"bad": misbehaving()}, environ=environ)
        result = await hub.registry.execute("bad__probe", {"pid": os.getpid()}, call_ctx)
        assert result.ok, result.text
        return json.loads(result.text)

    async def test_it_cannot_read_the_provider_key_from_the_agents_proc_environ(
        self, make_hub, call_ctx: ToolExecutionContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-PROVIDER-KEY")
        environ = {"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "sk-ant-PROVIDER-KEY"}
        found = await self.probe(make_hub, call_ctx, environ)
        assert found["environ"].startswith("PermissionError"), found["environ"]
        assert found["parent_environ"].startswith("PermissionError")
        assert "PROVIDER-KEY" not in json.dumps(found)

    async def test_its_parent_is_the_launcher_not_the_agent(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        found = await self.probe(make_hub, call_ctx)
        assert found["ppid"] != os.getpid()

    async def test_privileges_and_limits_are_those_of_a_shell_command(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        found = await self.probe(make_hub, call_ctx)
        assert found["no_new_privs"] == 1
        assert found["core"] == 0 and found["nofile"] <= 4096
        if os.geteuid() == 0:
            assert found["bounding_caps"] == []

    async def test_it_cannot_write_outside_its_directory(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        for target in (tmp_path / "planted.txt", tmp_path / "ws" / "shared" / "x.txt"):
            result = await hub.registry.execute(
                "bad__write_file", {"path": str(target), "text": "pwned"}, call_ctx
            )
            assert not result.ok and "PermissionError" in result.text, result.text
            assert not target.exists()
        own = tmp_path / "mcp" / "bad" / "notes.txt"
        result = await hub.registry.execute(
            "bad__write_file", {"path": str(own), "text": "mine"}, call_ctx
        )
        assert result.ok and own.read_text() == "mine"

    async def test_a_cwd_outside_its_directory_is_read_only(
        self, make_hub, tmp_path: Path, call_ctx: ToolExecutionContext
    ) -> None:
        """A `cwd` pointing at the operator's files gives no way to change them (Landlock:
        the name is not a persona file's, so the argument check lets the call through)."""
        project = tmp_path / "project"
        project.mkdir()
        (project / "rules.md").write_text("operator's rules")
        hub = await make_hub({"bad": misbehaving(cwd=str(project))})
        read = await hub.registry.execute("bad__read_file", {"path": "rules.md"}, call_ctx)
        assert read.ok and read.text == "operator's rules"
        write = await hub.registry.execute(
            "bad__write_file", {"path": "rules.md", "text": "evil"}, call_ctx
        )
        assert not write.ok and "PermissionError" in write.text
        assert (project / "rules.md").read_text() == "operator's rules"

    async def test_a_detached_child_dies_when_the_server_stops(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        result = await hub.registry.execute("bad__orphan", {}, call_ctx)
        assert result.ok, result.text
        pid = int(result.text)
        assert _alive(pid)
        await hub.stop()
        assert await _gone(pid), f"process {pid} outlived its MCP server"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _gone(pid: int) -> bool:
    """Wait (on the condition, bounded) until `pid` no longer runs."""
    for _ in range(500):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


class TestMisbehaving:
    async def test_a_command_that_does_not_exist_is_reported_and_skipped(self, make_hub) -> None:
        hub = await make_hub(
            {"ghost": McpServerConfig(command="/nonexistent/mcp-ghost"), "time": time_server()}
        )
        ghost, time_ = hub.status()
        assert ghost.state == "failed" and "not found" in (ghost.error or "")
        assert time_.state == "ready"

    async def test_a_server_that_never_answers_the_handshake_is_skipped(self, make_hub) -> None:
        hub = await make_hub({"hang": misbehaving("hang", startup_timeout_secs=1.0)})
        [status] = hub.status()
        assert status.state == "failed"
        assert "within 1 seconds" in (status.error or "")
        assert hub.tools() == {}

    async def test_garbage_on_stdout_is_skipped_line_by_line(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"noisy": misbehaving("garbage")})
        result = await hub.registry.execute("noisy__echo", {"text": "still works"}, call_ctx)
        assert result.ok and result.text == "still works"
        assert hub.servers["noisy"].client.malformed > 0  # type: ignore[union-attr]

    async def test_an_invalid_schema_is_reported_and_its_tool_left_out(self, make_hub) -> None:
        hub = await make_hub({"bad": misbehaving("bad_schema")})
        assert "bad__broken" not in hub.tools() and "bad__not_object" not in hub.tools()
        assert "bad__echo" in hub.tools()
        problems = " ".join(hub.status()[0].problems)
        assert "'strung' is not a JSON Schema type" in problems
        assert "must be a JSON object schema" in problems

    async def test_a_one_megabyte_result_is_cut_to_the_output_limit(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        result = await hub.registry.execute("bad__big", {}, call_ctx)
        assert result.ok and result.truncated
        assert len(result.text.encode()) < hub.registry.config.output_limit_bytes + 200

    async def test_a_schema_that_lies_yields_the_servers_error(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        result = await hub.registry.execute("bad__lies", {"text": "hi"}, call_ctx)
        assert not result.ok and "missing required argument 'other'" in result.text

    async def test_pagination_collects_every_page(self, make_hub) -> None:
        hub = await make_hub({"paged": misbehaving("paginate")})
        assert len(hub.tools()) == 13

    async def test_images_become_a_note_and_structured_content_is_shown(
        self, make_hub, call_ctx: ToolExecutionContext
    ) -> None:
        hub = await make_hub({"bad": misbehaving()})
        image = await hub.registry.execute("bad__image", {}, call_ctx)
        assert "a picture" in image.text and "[image/png image from MCP server bad" in image.text
        structured = await hub.registry.execute("bad__structured", {}, call_ctx)
        assert json.loads(structured.text) == {"answer": 42}

    async def test_mcp_tools_declare_their_untrusted_source(self, make_hub) -> None:
        hub = await make_hub({"bad": misbehaving()})
        tool = hub.registry.get("bad__echo")
        assert getattr(tool, "untrusted_source", None) == "mcp:bad"
        assert getattr(tool, "untrusted", None) == "mcp bad"


def test_misbehaving_server_is_stdlib_only() -> None:
    text = (Path(__file__).parent / "servers" / "misbehaving.py").read_text()
    assert "import oxydra" not in text and sys.executable


class TestSdkServerOverStdio:
    @pytest.mark.parametrize("protocol", ["2025-11-25", "2026-07-28"])
    async def test_list_changed_in_both_eras(
        self, make_hub, call_ctx: ToolExecutionContext, tmp_path: Path, protocol: str
    ) -> None:
        from tests.tools.mcp.conftest import SDK_SERVER

        config = McpServerConfig(
            command=sys.executable, args=[str(SDK_SERVER), "stdio", "0", str(tmp_path)],
            read_paths=[str(SDK_SERVER.parent)], startup_timeout_secs=30.0, protocol=protocol,
        )  # fmt: skip
        hub = await make_hub({"sdk": config})
        assert hub.status()[0].protocol == protocol, hub.status()[0].error
        if protocol == "2026-07-28":
            assert hub.servers["sdk"].client.protocol.tools_list_changes  # type: ignore[union-attr]
        result = await hub.registry.execute("sdk__grow", {}, call_ctx)
        assert result.ok, result.text
        async with asyncio.timeout(10):
            while "sdk__grown" not in hub.tools():
                await asyncio.sleep(0.05)
