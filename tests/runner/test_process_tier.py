"""The process tier end to end: `runner start` → status → TUI probe → a turn → `runner stop`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from oxydra.security._landlock import landlock_abi
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    Hello,
    HelloAck,
    SendTurn,
    TurnCompleted,
    decode_server_frame,
    encode_frame,
)
from tests.runner.support import Sandbox, fake_llm, make_sandbox, parse_kv, provider_env

HAS_LANDLOCK = landlock_abi()[0] > 0


async def run_turn(endpoint: str, token: str, prompt: str) -> str:
    """One turn through a real websockets client speaking the gateway protocol."""
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(endpoint, additional_headers=headers) as ws:
        hello = Hello(request_id="h", protocol_version=PROTOCOL_VERSION, user_id="default")
        await ws.send(encode_frame(hello).decode())
        ack = decode_server_frame(await asyncio.wait_for(ws.recv(), 20))
        assert isinstance(ack, HelloAck)
        turn = SendTurn(
            request_id="t",
            session_id=ack.session.session_id,
            turn_id=uuid.uuid4().hex,
            prompt=prompt,
        )
        await ws.send(encode_frame(turn).decode())
        while True:
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 60))
            if isinstance(frame, TurnCompleted):
                return frame.response.message.content or ""


def _secret(root: Path) -> Path:
    path = root / "outside-secret.txt"
    path.write_text("the-host-secret-value\n")
    return path


@contextlib.contextmanager
def _started(root: Path) -> Iterator[tuple[Sandbox, dict[str, list[str]], Path]]:
    """A running process-tier guest over a fake LLM scripted for one turn."""
    command = f"cat {_secret(root)}; echo written > note.txt; cat note.txt"
    write = {"path": "/shared/w.txt", "content": "via the file tools"}
    steps = [
        {
            "kind": "reply",
            "tool_calls": [
                {"name": "shell_exec", "arguments": {"command": command}},
                {"name": "file_write", "arguments": write},
            ],
        },
        {
            "kind": "reply",
            "tool_calls": [{"name": "file_read", "arguments": {"path": "/shared/w.txt"}}],
        },
        {"kind": "reply", "text": "all done"},
    ]
    with fake_llm(root, steps) as (url, record):
        box = make_sandbox(root, **provider_env(url))
        out = box.runner("--insecure", "start")
        try:
            assert out.returncode == 0, out.stderr
            yield box, parse_kv(out.stdout), record
        finally:
            box.runner("stop")


@pytest.fixture(scope="class")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, dict[str, list[str]], Path]]:
    """One guest shared by the tests that only look at it (and the one turn it is scripted
    for): starting a guest costs seconds."""
    with _started(tmp_path_factory.mktemp("tier")) as started:
        yield started


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, list[str]], Path]]:
    """A guest of the test's own, for a test that stops it."""
    with _started(tmp_path) as started:
        yield started


@pytest.mark.skipif(not HAS_LANDLOCK, reason="this kernel has no Landlock")
class TestProcessTierEndToEnd:
    def test_start_reports_the_tier_hardening_and_the_gateway(self, running: tuple) -> None:
        box, lines, _ = running
        assert lines["mode"] == ["start"]
        assert lines["sandbox_tier"] == ["Process"]
        assert lines["hardening"] == ["landlock,no_new_privs,rlimits"]
        assert lines["shell_available"] == ["true"]
        assert lines["degraded_reason"][0].startswith("insecure_process_tier:")
        assert any("process tier" in w for w in lines["warning"])
        assert lines["gateway_endpoint"][0].startswith("ws://127.0.0.1:")
        marker = box.workspace() / "ipc" / "gateway-endpoint"
        assert marker.read_text().strip() == lines["gateway_endpoint"][0]

    def test_status_answers_over_the_control_socket(self, running: tuple) -> None:
        box, lines, _ = running
        status = parse_kv(box.runner("status").stdout)
        assert status["healthy"] == ["true"]
        assert status["hardening"] == ["landlock,no_new_privs,rlimits"]
        assert status["runtime_pid"] == lines["runtime_pid"]

    def test_tui_probe_connects_and_names_the_session(self, running: tuple) -> None:
        box, lines, _ = running
        out = box.runner("--tui", "--probe")
        assert out.returncode == 0, out.stderr
        probe = parse_kv(out.stdout)
        assert probe["mode"] == ["tui"]
        assert probe["gateway_endpoint"] == lines["gateway_endpoint"]
        assert probe["session_id"][0]
        assert probe["workspace_root"] == [str(box.workspace().resolve())]

    def test_a_turn_runs_and_the_confined_shell_cannot_read_outside(self, running: tuple) -> None:
        box, lines, record = running
        token = (box.workspace() / "ipc" / "gateway-token").read_text().strip()
        answer = asyncio.run(run_turn(lines["gateway_endpoint"][0], token, "go"))
        assert answer == "all done"
        posts = [json.loads(ln) for ln in record.read_text().splitlines()]
        posts = [p for p in posts if p["method"] == "POST"]  # not the model-list probe
        second = posts[1]["body"]
        assert "Permission denied" in second
        assert "the-host-secret-value" not in second
        assert "written" in second  # inside the workspace it may write and read
        assert (box.workspace() / "shared" / "note.txt").read_text() == "written\n"
        third = posts[2]["body"]
        assert "via the file tools" in third  # the file tools work under Landlock too
        assert (box.workspace() / "shared" / "w.txt").read_text() == "via the file tools"

    def test_a_second_start_is_refused_while_running(self, running: tuple) -> None:
        box, _, _ = running
        out = box.runner("--insecure", "start")
        assert out.returncode == 1
        assert out.stderr.startswith("runner error: ") and "already running" in out.stderr

    def test_stop_stops_the_guest_and_removes_the_marker(self, started: tuple) -> None:
        box, lines, _ = started
        out = box.runner("stop")
        assert out.returncode == 0, out.stderr
        stopped = parse_kv(out.stdout)
        assert stopped["shutdown"] == ["true"] and "already_stopped" not in stopped
        assert not (box.workspace() / "ipc" / "gateway-endpoint").exists()
        assert not (box.workspace() / "ipc" / "runner-control.sock").exists()
        pid = int(lines["runtime_pid"][0])
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
        again = box.runner("status")
        assert again.returncode == 1 and "server not running" in again.stderr


class TestStartRefusals:
    def test_no_provider_key_names_the_variables_and_the_local_server_recipe(
        self, tmp_path: Path
    ) -> None:
        box = make_sandbox(tmp_path)
        out = box.runner("--insecure", "start")
        assert out.returncode == 1
        assert out.stderr.startswith("runner error: no API key for provider 'openai'")
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "API_KEY"):
            assert name in out.stderr
        assert "providers.registry.ollama.base_url" in out.stderr
        assert "providers.toml" in out.stderr and "make demo" in out.stderr

    def test_the_local_server_command_of_that_message_runs_as_printed(self, tmp_path: Path) -> None:
        import shlex
        import subprocess

        box = make_sandbox(tmp_path)  # no key at all
        message = box.runner("--insecure", "start").stderr
        line = next(ln for ln in message.splitlines() if "selection.provider=ollama" in ln)
        command = shlex.split(line.strip())
        assert "runner" in command and "oxydra" in " ".join(command[:3])
        out = subprocess.run(
            command, cwd=box.cwd, env=box.env, capture_output=True, text=True, timeout=90
        )
        try:
            assert out.returncode == 0, out.stderr
            assert parse_kv(out.stdout)["gateway_endpoint"]
        finally:
            box.runner("stop")

    def test_without_runner_toml_the_sandbox_must_be_chosen(self, tmp_path: Path) -> None:
        out = make_sandbox(tmp_path).runner("start")
        assert out.returncode == 1 and "--insecure" in out.stderr

    def test_the_process_tier_from_config_still_needs_insecure(self, tmp_path: Path) -> None:
        box = make_sandbox(tmp_path, API_KEY="k")
        (box.cwd / ".oxydra").mkdir()
        (box.cwd / ".oxydra" / "runner.toml").write_text('default_tier = "process"\n')
        out = box.runner("start")
        assert out.returncode == 1 and "needs --insecure" in out.stderr

    def test_a_rust_user_file_choosing_the_process_tier_starts_with_a_warning(
        self, tmp_path: Path
    ) -> None:
        with fake_llm(tmp_path, []) as (url, _):
            box = make_sandbox(tmp_path, **provider_env(url))
            config = box.cwd / ".oxydra"
            (config / "users").mkdir(parents=True)
            (config / "runner.toml").write_text(
                'config_version = "1.0.1"\ndefault_tier = "container"\n'
                '[users.alice]\nconfig_path = "users/alice.toml"\n'
            )
            (config / "users" / "alice.toml").write_text(
                'config_version = "1.0.1"\n[behavior]\nsandbox_tier = "process"\n'
            )
            out = box.runner("start")
            try:
                assert out.returncode == 0, out.stderr
                lines = parse_kv(out.stdout)
                assert lines["sandbox_tier"] == ["Process"]
                assert any("process tier" in w for w in lines["warning"])
                assert "sandbox_tier" in lines["degraded_reason"][0]
            finally:
                box.runner("stop")

    def test_the_status_hint_is_a_command_that_starts_it_as_printed(self, tmp_path: Path) -> None:
        import shlex
        import subprocess

        with fake_llm(tmp_path, []) as (url, _):
            box = make_sandbox(tmp_path, **provider_env(url))
            out = box.runner("status")
            assert out.returncode == 1
            command = out.stderr.split("start it with `", 1)[1].split("`", 1)[0]
            assert "--insecure" in command  # no runner.toml: start would refuse without it
            started = subprocess.run(
                shlex.split(command), cwd=box.cwd, env=box.env, capture_output=True,
                text=True, timeout=90,
            )  # fmt: skip
            try:
                assert started.returncode == 0, started.stderr
                assert parse_kv(box.runner("status").stdout)["healthy"] == ["true"]
            finally:
                box.runner("stop")

    def test_stop_without_a_daemon_says_server_not_running(self, tmp_path: Path) -> None:
        out = make_sandbox(tmp_path).runner("stop")
        assert out.returncode == 1
        assert out.stderr.startswith("runner error: server not running")

    def test_tui_without_a_guest_says_how_to_start_one(self, tmp_path: Path) -> None:
        out = make_sandbox(tmp_path).runner("--tui", "--probe")
        assert out.returncode == 1 and "no running guest" in out.stderr
