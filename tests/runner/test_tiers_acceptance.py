"""One acceptance suite for every isolation tier, on the real thing, driven from oxydra.pyz.

For each tier: `runner start` with the default config, a turn against the fake LLM that uses
the shell and the file tools, then the hostile side — the guest cannot read a host file
outside its workspace, reach the runner's control socket, see the runner's other
credentials, or write its persona and config files; a fork bomb and a memory hog in the
shell hit their limits while the gateway keeps answering; a guest that dies is reported and
restarted; `runner stop` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    Hello,
    HelloAck,
    SendTurn,
    TurnCompleted,
    decode_server_frame,
    encode_frame,
)
from tests.runner.real_tiers import (
    build_guest_image,
    docker_engine,
    guest_cache,
    micro_vm_refusal,
)
from tests.runner.support import Sandbox, fake_llm, make_sandbox, parse_kv, provider_env
from tests.support_once import built_archive

TIERS = ["process", "container", "micro_vm"]
USER_TOML = """
[resources]
max_vcpus = 1
max_memory_mib = 384
max_processes = 64
"""
SECRET = "the-host-secret-value"
# The sleepers write nowhere, so the pipe ends with the loop's own fork errors; the group
# waits for them (5 s), so the pids are free again for the memory hog that follows.
BOMB = (
    "{ for i in $(seq 300); do sleep 5 >/dev/null 2>&1 & done; wait; } 2>&1 | tail -n 2; "
    "echo bomb-done"
)
HOG = "python3 -c 'b = bytearray(1024 * 1024 * 1024); print(len(b))'; echo hog-status=$?"


async def run_turn(endpoint: str, token: str, prompt: str) -> str:
    """One turn through a real websockets client; the answer of that turn (not a replay)."""
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {token}"}
    async with connect(endpoint, additional_headers=headers) as ws:
        hello = Hello(request_id="h", protocol_version=PROTOCOL_VERSION, user_id="default")
        await ws.send(encode_frame(hello).decode())
        ack = decode_server_frame(await asyncio.wait_for(ws.recv(), 60))
        assert isinstance(ack, HelloAck)
        turn_id = uuid.uuid4().hex
        turn = SendTurn(
            request_id="t", session_id=ack.session.session_id, turn_id=turn_id, prompt=prompt
        )
        await ws.send(encode_frame(turn).decode())
        while True:
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 180))
            if isinstance(frame, TurnCompleted) and frame.turn.turn_id == turn_id:
                return frame.response.message.content or ""


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_archive(tmp_path_factory)


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with docker_engine(Path(tmp_path_factory.mktemp("dockerd"))) as url:
        yield url


@pytest.fixture(scope="session")
def micro_vm_image(request: pytest.FixtureRequest) -> dict[str, str]:
    refusal = micro_vm_refusal()
    if refusal:
        pytest.skip(refusal)
    return build_guest_image(request.getfixturevalue("archive"), None, disk=True)


@pytest.fixture(scope="session")
def container_image(archive: Path, docker_host: str) -> dict[str, str]:
    return build_guest_image(archive, docker_host, disk=False)


@dataclass
class Started:
    box: Sandbox
    lines: dict[str, list[str]]
    record: Path
    tier: str
    secret: Path

    @property
    def workspace(self) -> Path:
        return self.box.cwd / ".oxydra" / "ws" / "default"

    def token(self) -> str:
        return (self.workspace / "ipc" / "gateway-token").read_text().strip()

    def endpoint(self) -> str:
        return (self.workspace / "ipc" / "gateway-endpoint").read_text().strip()

    def posts(self) -> list[dict[str, Any]]:
        if not self.record.exists():  # no model call yet (this worker ran no turn before)
            return []
        rows = [json.loads(ln) for ln in self.record.read_text().splitlines()]
        return [r for r in rows if r["method"] == "POST"]


def steps(secret: Path, workspace: Path, cwd: Path) -> list[dict[str, Any]]:
    probe = (
        f"cat {secret}; ls -a {workspace}/ipc; env | grep AWS_; "
        f"echo evil > {cwd}/.oxydra/agent.toml; echo evil > {workspace}/.oxydra/SYSTEM.md; "
        "echo written > note.txt; cat note.txt"
    )
    write = {"path": "/shared/w.txt", "content": "via the file tools"}
    return [
        {
            "kind": "reply",
            "tool_calls": [
                {"name": "shell_exec", "arguments": {"command": probe}},
                {"name": "file_write", "arguments": write},
            ],
        },
        {
            "kind": "reply",
            "tool_calls": [{"name": "file_read", "arguments": {"path": "/shared/w.txt"}}],
        },
        {"kind": "reply", "text": "all done"},
        {"kind": "reply", "tool_calls": [{"name": "shell_exec", "arguments": {"command": BOMB}}]},
        {"kind": "reply", "tool_calls": [{"name": "shell_exec", "arguments": {"command": HOG}}]},
        {"kind": "reply", "text": "still here"},
    ]


def user_toml(tier: str) -> str:
    """The same limits, except memory: the process tier's is RLIMIT_AS, which counts
    address space (thread stacks, malloc arenas, the WASM guest's reservation), not memory in
    use, so it needs headroom over the container's cgroup limit (docs/runner.md)."""
    if tier == "process":
        text = USER_TOML.replace("max_memory_mib = 384\n", "max_memory_mib = 1024\n")
        return text + '[behavior]\nsandbox_tier = "process"\n'
    return USER_TOML


@pytest.fixture(scope="class", params=TIERS)
def started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Started]:
    """One guest per tier for the whole class: its tests run in order, `stop` last."""
    tier = request.param
    extra: dict[str, str] = {}
    if tier == "container":
        extra["DOCKER_HOST"] = request.getfixturevalue("docker_host")
        request.getfixturevalue("container_image")
    if tier == "micro_vm":
        request.getfixturevalue("micro_vm_image")
        extra["OXYDRA_GUEST_CACHE"] = str(guest_cache())
    archive: Path = request.getfixturevalue("archive")
    tmp_path = tmp_path_factory.mktemp(f"tier-{tier}")
    secret = tmp_path / "outside-secret.txt"
    secret.write_text(SECRET + "\n")
    cwd = tmp_path / "project"
    workspace = cwd / ".oxydra" / "ws" / "default"
    with fake_llm(tmp_path, steps(secret, workspace, cwd)) as (url, record):
        box = make_sandbox(
            tmp_path, **provider_env(url), AWS_SECRET_ACCESS_KEY="runner-only", **extra
        )
        box.command = [sys.executable, "-I", str(archive)]
        box.env.pop("PYTHONPATH")
        (box.cwd / ".oxydra" / "users").mkdir(parents=True)
        (box.cwd / ".oxydra" / "runner.toml").write_text(
            f'default_tier = "{tier}"\nworkspace_root = "ws"\n'
            '[users.default]\nconfig_path = "users/default.toml"\n'
        )
        (box.cwd / ".oxydra" / "users" / "default.toml").write_text(user_toml(tier))
        (box.cwd / ".oxydra" / "agent.toml").write_text("[runtime]\nmax_turns = 8\n")
        out = box.runner("start", timeout=240)
        try:
            assert out.returncode == 0, out.stdout + out.stderr
            yield Started(box, parse_kv(out.stdout), record, tier, secret)
        finally:
            box.runner("stop", timeout=120)


def _docker(url: str) -> Any:
    import docker

    return docker.DockerClient(base_url=url, timeout=60)


def _ours(client: Any) -> list[Any]:
    return client.containers.list(all=True, filters={"label": "oxydra.user_id=default"})


class TestEveryTier:
    """In order: a turn, the attacks, the tier's own checks, a guest death, `stop`."""

    def test_a_turn_uses_shell_and_files_and_the_guest_cannot_reach_the_host(
        self, started: Started
    ) -> None:
        lines = started.lines
        assert lines["shell_available"] == ["true"]
        answer = asyncio.run(run_turn(started.endpoint(), started.token(), "go"))
        assert answer == "all done"
        posts = started.posts()
        tools = posts[1]["body"]
        assert "written" in tools  # the shell works inside the workspace
        assert SECRET not in tools  # a host file outside the workspace is out of reach
        assert "runner-control.sock" not in tools and "runner.lock" not in tools
        assert "runner-only" not in tools  # nor a credential of the runner's
        assert "via the file tools" in posts[2]["body"]
        assert (started.workspace / "shared" / "w.txt").read_text() == "via the file tools"
        agent = (started.box.cwd / ".oxydra" / "agent.toml").read_text()
        assert "evil" not in agent  # its config is not writable from the guest
        assert not (started.workspace / ".oxydra" / "SYSTEM.md").exists()  # nor its persona

    def test_a_fork_bomb_and_a_memory_hog_hit_the_limits_and_the_gateway_answers(
        self, started: Started
    ) -> None:
        if started.tier == "process" and os.geteuid() == 0:
            pytest.skip("process tier as root: RLIMIT_NPROC does not bind uid 0 (docs/runner.md)")
        if len(started.posts()) < 3:  # the first turn's steps come first in the script
            asyncio.run(run_turn(started.endpoint(), started.token(), "go"))
        answer = asyncio.run(run_turn(started.endpoint(), started.token(), "attack"))
        assert answer == "still here"  # the gateway answered through both
        posts = started.posts()
        bomb, hog = posts[4]["body"], posts[5]["body"]
        assert "bomb-done" in bomb
        assert "fork" in bomb.lower() or "resource temporarily unavailable" in bomb.lower()
        assert "hog-status=0" not in hog  # killed or refused, never granted 1 GiB
        status = parse_kv(started.box.runner("status").stdout)
        assert status["healthy"] == ["true"]

    def test_the_container_runs_locked_down_without_the_runners_files(
        self, started: Started, request: pytest.FixtureRequest
    ) -> None:
        if started.tier != "container":
            pytest.skip("a container tier check")
        client = _docker(request.getfixturevalue("docker_host"))
        try:
            runtime = client.containers.get("oxydra-container-default-oxydra-vm")
            host = runtime.attrs["HostConfig"]
            assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
            assert host["PidsLimit"] == 64 and host["Memory"] == 384 * 1024 * 1024
            assert runtime.attrs["Config"]["User"] != "0:0"
            ws = started.workspace
            listing = runtime.exec_run(["ls", "-a", str(ws / "ipc"), str(ws / "logs")]).output
            assert b"runner-control.sock" not in listing and b"gateway-endpoint" in listing
            assert b"oxydra-vm.stdout.log" not in listing
            env = runtime.exec_run(["env"]).output.decode()
            assert "AWS_SECRET_ACCESS_KEY" not in env and "API_KEY=" in env
            agent = "/run/oxydra/project/.oxydra/agent.toml"  # the host's, bound read-only
            seen = runtime.exec_run(["sh", "-c", f"cat {agent}; echo x >> {agent}"])
            assert b"max_turns = 8" in seen.output  # the guest runs the checked config
            assert seen.exit_code != 0  # and cannot change it, even as the runtime itself
        finally:
            client.close()

    def test_logs_stream_to_the_workspace_and_runner_logs_reads_them(
        self, started: Started
    ) -> None:
        log = started.workspace / "logs" / "oxydra-vm.stdout.log"
        assert "gateway_endpoint=" in log.read_text()
        out = started.box.runner("logs", "--stream", "stdout")
        assert "gateway_endpoint=" in out.stdout

    def test_a_guest_that_dies_is_reported_and_restart_brings_it_back(
        self, started: Started, request: pytest.FixtureRequest
    ) -> None:
        if started.tier == "container":
            client = _docker(request.getfixturevalue("docker_host"))
            try:
                client.containers.get("oxydra-container-default-oxydra-vm").kill()
            finally:
                client.close()
        else:
            os.kill(int(started.lines["runtime_pid"][0]), signal.SIGKILL)
        status = parse_kv(started.box.runner("status").stdout)
        assert status["healthy"] == ["false"]
        again = started.box.runner("restart", timeout=240)
        assert again.returncode == 0, again.stderr
        assert parse_kv(started.box.runner("status").stdout)["healthy"] == ["true"]
        probe = started.box.runner("--tui", "--probe")
        assert probe.returncode == 0, probe.stderr  # the new gateway answers a client

    def test_stop_leaves_nothing_behind(
        self, started: Started, request: pytest.FixtureRequest
    ) -> None:
        client = (
            _docker(request.getfixturevalue("docker_host")) if started.tier == "container" else None
        )
        try:
            before = (
                ({v.id for v in client.volumes.list()}, {n.id for n in client.networks.list()})
                if client
                else None
            )
            stopped = started.box.runner("stop", timeout=120)
            assert stopped.returncode == 0, stopped.stderr
            assert not (started.workspace / "ipc" / "runner-control.sock").exists()
            assert not (started.workspace / "ipc" / "gateway-endpoint").exists()
            if client is not None:
                assert _ours(client) == []
                after = (
                    {v.id for v in client.volumes.list()},
                    {n.id for n in client.networks.list()},
                )
                assert after == before
        finally:
            if client is not None:
                client.close()
