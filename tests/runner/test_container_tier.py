"""The container tier at the wire: the docker SDK against a loopback fake Docker Engine API."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.core.errors import RunnerError
from oxydra.runner._bootstrap import LaunchSpec, load_guest_config
from oxydra.runner._container import launch_container
from oxydra.runner._rootfs import guest_ids
from oxydra.testing.fake_docker import FakeDocker
from oxydra.wire.envelope import decode_envelope_json
from tests.runner.support import make_sandbox, parse_kv
from tests.runner.test_bootstrap import make_spec

IMAGES = {"oxydra-vm:latest", "shell-vm:latest"}
RUNTIME = "oxydra-container-alice-oxydra-vm"
SIDECAR = "oxydra-container-alice-shell-vm"
USER_TOML = """
[resources]
max_vcpus = 2
max_memory_mib = 512
max_processes = 64
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeDocker]:
    with FakeDocker(tmp_path / "docker.sock", images=set(IMAGES)) as fake:
        yield fake


def container_spec(tmp_path: Path, engine: FakeDocker, **env: str) -> LaunchSpec:
    cwd = tmp_path / "cwd"
    (cwd / ".oxydra" / "users").mkdir(parents=True)
    (cwd / ".oxydra" / "runner.toml").write_text(
        'default_tier = "container"\n[users.alice]\nconfig_path = "users/alice.toml"\n'
    )
    (cwd / ".oxydra" / "users" / "alice.toml").write_text(USER_TOML)
    environ = {
        "DOCKER_HOST": engine.url,
        "OPENAI_API_KEY": "sk-test",
        "AWS_SECRET_ACCESS_KEY": "nope",
        "OXYDRA__RUNTIME__MAX_TURNS": "3",
        **env,
    }
    spec = make_spec(tmp_path, environ, env=["SHELL_EDITOR=vi", "TZ=Europe/Paris", "X=1"])
    assert spec.ctx.user_id == "alice"
    return spec


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class TestLaunch:
    @pytest.fixture
    def launched(self, tmp_path: Path, engine: FakeDocker) -> Iterator[tuple[LaunchSpec, Any]]:
        spec = container_spec(tmp_path, engine)
        launch = launch_container(spec, load_guest_config(spec))
        try:
            yield spec, launch
        finally:
            launch.stop(grace=1)

    def test_both_containers_are_locked_down(self, launched: tuple, engine: FakeDocker) -> None:
        for name in (RUNTIME, SIDECAR):
            host = engine.created[name]["HostConfig"]
            assert not host.get("Privileged")  # the SDK sends it only when true
            assert host["ReadonlyRootfs"] is True
            assert host["CapDrop"] == ["ALL"]
            assert host["SecurityOpt"] == ["no-new-privileges:true"]
            assert host["Init"] is True
            assert host["NanoCpus"] == 2_000_000_000
            assert host["Memory"] == 512 * 1024 * 1024
            assert host["PidsLimit"] == 64
            uid, gid = guest_ids(os.environ)
            assert engine.created[name]["User"] == f"{uid}:{gid}" and uid != 0
            assert engine.created[name]["Labels"]["oxydra.user_id"] == "alice"

    def test_only_the_users_workspace_is_mounted(self, launched: tuple, engine: FakeDocker) -> None:
        spec, _ = launched
        ws = spec.workspace
        runtime = engine.created[RUNTIME]["HostConfig"]["Binds"]
        assert sorted(runtime) == sorted(
            [
                f"{ws.shared}:{ws.shared}:rw",
                f"{ws.tmp}:{ws.tmp}:rw",
                f"{ws.vault}:{ws.vault}:ro",
                f"{ws.internal}:{ws.internal}:rw",
                f"{ws.ipc}/guest:{ws.ipc}:rw",  # not the runner's ipc: no control socket
                f"{ws.logs}/guest:{ws.logs}:rw",  # nor the runner's logs
                f"{ws.ipc}/bootstrap/runner_bootstrap.json:/run/oxydra/bootstrap:ro",
            ]
        )
        sidecar = engine.created[SIDECAR]["HostConfig"]["Binds"]
        assert sorted(sidecar) == sorted(
            [
                f"{ws.shared}:/shared:rw",
                f"{ws.tmp}:/tmp:rw",
                f"{ws.ipc}/guest/shell:/ipc:rw",
                f"{ws.root}/skills:/skills:ro",  # a skill's scripts run, never change
            ]
        )
        for binds in (runtime, sidecar):
            assert not any("docker.sock" in b for b in binds)

    def test_network_policy_host_for_the_runtime_none_for_the_shell(
        self, launched: tuple, engine: FakeDocker
    ) -> None:
        assert engine.created[RUNTIME]["HostConfig"]["NetworkMode"] == "host"
        assert engine.created[SIDECAR]["HostConfig"]["NetworkMode"] == "none"

    def test_the_runtime_reads_its_envelope_from_the_bootstrap_file(
        self, launched: tuple, engine: FakeDocker
    ) -> None:
        spec, launch = launched
        body = engine.created[RUNTIME]
        assert body["Cmd"][:2] == ["oxydra", "vm"]
        assert body["Cmd"][-2:] == ["--bootstrap-file", "/run/oxydra/bootstrap"]
        env = dict(item.split("=", 1) for item in body["Env"])
        assert env["OXYDRA_BOOTSTRAP_FILE"] == "/run/oxydra/bootstrap"
        assert env["OPENAI_API_KEY"] == "sk-test" and env["OXYDRA__RUNTIME__MAX_TURNS"] == "3"
        assert env["TZ"] == "Europe/Paris" and env["X"] == "1"
        assert "AWS_SECRET_ACCESS_KEY" not in env and "SHELL_EDITOR" not in env
        path = spec.workspace.ipc / "bootstrap" / "runner_bootstrap.json"
        envelope = decode_envelope_json(path.read_bytes())
        assert envelope == launch.envelope
        assert envelope.sidecar_endpoint.address == str(
            spec.workspace.ipc / "shell" / "shell-daemon.sock"
        )
        assert envelope.startup_status.shell_available and envelope.credential_env == [
            "OPENAI_API_KEY"
        ]

    def test_shell_prefixed_entries_go_to_the_sidecar_only(
        self, launched: tuple, engine: FakeDocker
    ) -> None:
        env = dict(item.split("=", 1) for item in engine.created[SIDECAR]["Env"])
        assert env["EDITOR"] == "vi" and env["TZ"] == "Europe/Paris"
        assert "X" not in env and "OPENAI_API_KEY" not in env
        assert engine.created[SIDECAR]["Cmd"] == [
            "oxydra", "shell-daemon", "--socket", "/ipc/shell-daemon.sock",
            "--writable", "/shared", "--writable", "/tmp", "--allow-unconfined",
        ]  # fmt: skip

    def test_container_output_is_streamed_to_the_workspace_log_files(
        self, launched: tuple, engine: FakeDocker
    ) -> None:
        spec, _ = launched
        engine.emit(RUNTIME, "stdout", "gateway_endpoint=ws://127.0.0.1:9/ws\n")
        engine.emit(RUNTIME, "stderr", "a warning\n")
        engine.emit(SIDECAR, "stderr", "shell-daemon listening\n")
        out = spec.workspace.log_file("oxydra-vm", "stdout")
        err = spec.workspace.log_file("oxydra-vm", "stderr")
        side = spec.workspace.log_file("shell-vm", "stderr")
        wait_for(lambda: out.exists() and "gateway_endpoint" in out.read_text(), "stdout log")
        wait_for(lambda: err.exists() and "a warning" in err.read_text(), "stderr log")
        wait_for(lambda: side.exists() and "listening" in side.read_text(), "sidecar log")
        assert out.read_text().startswith("2026-01-01T00:00:00.000000000Z gateway_endpoint=")
        assert "a warning" not in out.read_text()

    def test_stop_stops_and_removes_both(self, launched: tuple, engine: FakeDocker) -> None:
        _, launch = launched
        launch.stop(grace=1)
        assert sorted(engine.removed) == sorted([RUNTIME, SIDECAR])
        assert launch.guest.exit_code() is not None
        stops = [p for m, p, _ in engine.requests if m == "POST" and p.endswith("/stop")]
        assert len(stops) == 2

    def test_the_guest_reports_its_exit(self, launched: tuple, engine: FakeDocker) -> None:
        _, launch = launched
        assert launch.guest.exit_code() is None
        engine.exit(RUNTIME, 3)
        assert launch.guest.wait(10) == 3


class TestFailures:
    def test_no_engine_is_a_clear_error(self, tmp_path: Path, engine: FakeDocker) -> None:
        spec = container_spec(tmp_path, engine, DOCKER_HOST=f"unix://{tmp_path}/none.sock")
        with pytest.raises(RunnerError, match=r"docker: .*none\.sock"):
            launch_container(spec, load_guest_config(spec))

    def test_a_missing_runtime_image_is_pulled(self, tmp_path: Path, engine: FakeDocker) -> None:
        engine.images.discard("oxydra-vm:latest")
        engine.pullable.add("oxydra-vm:latest")
        spec = container_spec(tmp_path, engine)
        launch_container(spec, load_guest_config(spec)).stop(grace=1)
        assert ("POST", "/images/create", {"fromImage": ["oxydra-vm"], "tag": ["latest"]}) in (
            engine.requests
        )

    def test_an_unpullable_runtime_image_fails_before_anything_starts(
        self, tmp_path: Path, engine: FakeDocker
    ) -> None:
        engine.images.discard("oxydra-vm:latest")
        spec = container_spec(tmp_path, engine)
        with pytest.raises(RunnerError, match="oxydra-vm:latest") as caught:
            launch_container(spec, load_guest_config(spec))
        assert "runner image build" in str(caught.value)
        assert engine.created == {} and engine.removed == []

    def test_a_missing_shell_image_degrades_instead_of_failing(
        self, tmp_path: Path, engine: FakeDocker
    ) -> None:
        engine.images.discard("shell-vm:latest")
        spec = container_spec(tmp_path, engine)
        launch = launch_container(spec, load_guest_config(spec))
        try:
            status = launch.status
            assert not status.shell_available and not status.sidecar_available
            assert [r.code for r in status.degraded_reasons] == ["sidecar_unavailable"]
            assert launch.envelope.sidecar_endpoint is None
        finally:
            launch.stop(grace=1)

    def test_a_leftover_container_of_the_same_name_is_replaced(
        self, tmp_path: Path, engine: FakeDocker
    ) -> None:
        spec = container_spec(tmp_path, engine)
        config = load_guest_config(spec)
        launch_container(spec, config)  # never stopped: as after a crash of the runner
        launch = launch_container(spec, config)
        launch.stop(grace=1)
        assert engine.removed.count(RUNTIME) == 2


def test_runner_start_status_logs_stop_with_the_container_tier(tmp_path: Path) -> None:
    """The whole command line against the fake engine; the fake plays the guest's marker."""
    box = make_sandbox(tmp_path, API_KEY="k")
    (box.cwd / ".oxydra").mkdir()
    (box.cwd / ".oxydra" / "runner.toml").write_text(
        'default_tier = "container"\nworkspace_root = "ws"\n'
    )
    workspace = box.cwd / ".oxydra" / "ws" / "default"

    def guest_comes_up(name: str, body: dict[str, Any]) -> None:
        if name.endswith("oxydra-vm"):  # the guest sees ipc/guest/ as its ipc/
            (workspace / "ipc" / "guest" / "gateway-endpoint").write_text("ws://127.0.0.1:9/ws\n")

    with FakeDocker(tmp_path / "d.sock", images=set(IMAGES), on_start=guest_comes_up) as fake:
        box.env["DOCKER_HOST"] = fake.url
        started = box.runner("start")
        try:
            assert started.returncode == 0, started.stderr
            lines = parse_kv(started.stdout)
            assert lines["sandbox_tier"] == ["Container"]
            assert lines["runtime_container_name"] == ["oxydra-container-default-oxydra-vm"]
            assert lines["shell_available"] == ["true"]
            assert lines["gateway_endpoint"] == ["ws://127.0.0.1:9/ws"]
            fake.emit("oxydra-container-default-oxydra-vm", "stderr", "hello from the guest\n")
            log = workspace / "logs" / "oxydra-vm.stderr.log"
            wait_for(lambda: log.exists() and "hello" in log.read_text(), "the log pump")
            logs = box.runner("logs", "--stream", "stderr")
            assert "[docker_api][runtime][stderr] hello from the guest" in logs.stdout
            status = parse_kv(box.runner("status").stdout)
            assert status["healthy"] == ["true"]
            assert status["runtime_container_name"] == ["oxydra-container-default-oxydra-vm"]
        finally:
            stopped = box.runner("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert sorted(fake.removed) == [
            "oxydra-container-default-oxydra-vm",
            "oxydra-container-default-shell-vm",
        ]
