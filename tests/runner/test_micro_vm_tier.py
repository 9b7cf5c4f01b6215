"""The micro_vm tier at the wire: a fake `firecracker` validates and records what it is given."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.core.errors import RunnerError
from oxydra.runner._bootstrap import LaunchSpec, load_guest_config
from oxydra.runner._firecracker import launch_micro_vm
from tests.runner.support import ROOT, make_sandbox, parse_kv
from tests.runner.test_bootstrap import make_spec

FAKE_FIRECRACKER = r'''#!{python}
"""A stand-in for firecracker: check the config like the real one would, record it, serve GET /."""
import base64, json, os, signal, socket, sys, threading
sys.path.insert(0, {root!r})
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM, signal.SIGINT}})  # for sigwait
from oxydra.wire.envelope import decode_envelope_json

def fail(message):
    print("fake firecracker: " + message, file=sys.stderr, flush=True)
    sys.exit(1)

args = sys.argv[1:]
if len(args) != 4 or args[0] != "--api-sock" or args[2] != "--config-file":
    fail("usage: --api-sock PATH --config-file PATH, got %r" % args)
api, path = args[1], args[3]
config = json.load(open(path))
boot = config["boot-source"]
if not os.path.isfile(boot["kernel_image_path"]):
    fail("no kernel")
roots = [d for d in config["drives"] if d.get("is_root_device")]
if len(roots) != 1 or not os.path.isfile(roots[0]["path_on_host"]):
    fail("need one root drive")
machine = config["machine-config"]
if not (isinstance(machine["vcpu_count"], int) and 1 <= machine["vcpu_count"] <= 32):
    fail("bad vcpu_count")
if not (isinstance(machine["mem_size_mib"], int) and machine["mem_size_mib"] >= 128):
    fail("bad mem_size_mib")
if set(config["vsock"]) != {{"guest_cid", "uds_path"}} or config["vsock"]["guest_cid"] < 3:
    fail("bad vsock")
args_by_key = dict(a.split("=", 1) for a in boot["boot_args"].split() if "=" in a)
envelope = decode_envelope_json(base64.b64decode(args_by_key["oxydra.bootstrap_b64"]))
record = {{"argv": sys.argv[1:], "cwd": os.getcwd(), "config": config, "user": envelope.user_id,
          "tier": str(envelope.sandbox_tier), "token": envelope.gateway_token}}
json.dump(record, open("fake-firecracker.json", "w"))
server = socket.socket(socket.AF_UNIX)
server.bind(api)
server.listen()
def serve():
    while True:
        conn, _ = server.accept()
        conn.recv(4096)
        body = b'{{"state": "Running"}}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.close()
threading.Thread(target=serve, daemon=True).start()
marker = os.path.join(envelope.workspace_root, "ipc", "gateway-endpoint")
open(marker, "w").write("ws://127.0.0.1:7/ws\n")
signal.sigwait({{signal.SIGTERM, signal.SIGINT}})
'''


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    vm = tmp_path / "vm"
    vm.mkdir()
    kernel, rootfs = vm / "vmlinux", vm / "rootfs.ext4"
    kernel.write_bytes(b"\x7fELF kernel")
    rootfs.write_bytes(b"ext4 image")
    binary = vm / "firecracker"
    binary.write_text(FAKE_FIRECRACKER.format(python=sys.executable, root=str(ROOT)))
    binary.chmod(0o755)
    template = vm / "oxydra-vm.json"
    template.write_text(
        json.dumps(
            {
                "boot-source": {"kernel_image_path": str(kernel)},
                "drives": [
                    {"drive_id": "rootfs", "path_on_host": str(rootfs), "is_root_device": True,
                     "is_read_only": True},
                ],
                "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
            }
        )
    )  # fmt: skip
    return {"binary": binary, "template": template, "kernel": kernel}


def vm_spec(
    tmp_path: Path,
    images: dict[str, Path],
    *,
    binary: bool = True,
    template: bool = True,
    memory: int = 768,
    **env: str,
) -> LaunchSpec:
    cwd = tmp_path / "cwd"
    (cwd / ".oxydra" / "users").mkdir(parents=True, exist_ok=True)
    lines = ['default_tier = "micro_vm"', "[guest_images]"]
    if template:
        lines.append(f'firecracker_oxydra_vm_config = "{images["template"]}"')
    if binary:
        lines.append(f'firecracker_binary = "{images["binary"]}"')
    lines += ["[users.vmuser]", 'config_path = "users/vmuser.toml"']
    (cwd / ".oxydra" / "runner.toml").write_text("\n".join(lines) + "\n")
    (cwd / ".oxydra" / "users" / "vmuser.toml").write_text(
        f"[resources]\nmax_vcpus = 2\nmax_memory_mib = {memory}\n"
    )
    return make_spec(tmp_path, {"PATH": "/usr/bin:/bin", **env})


@pytest.fixture
def launched(tmp_path: Path, images: dict[str, Path]) -> Iterator[tuple[LaunchSpec, Any]]:
    spec = vm_spec(tmp_path, images)
    launch = launch_micro_vm(spec, load_guest_config(spec))
    try:
        yield spec, launch
    finally:
        launch.stop(grace=5)


class TestMachineConfig:
    def test_firecracker_gets_the_api_socket_and_the_generated_config(
        self, launched: tuple
    ) -> None:
        spec, _ = launched
        ipc = spec.workspace.ipc
        record = json.loads((ipc / "fake-firecracker.json").read_text())
        assert record["argv"] == [
            "--api-sock", "oxydra-vm-firecracker.sock",
            "--config-file", "firecracker-oxydra-vm.json",
        ]  # fmt: skip
        assert record["cwd"] == str(ipc)
        config = record["config"]
        assert config["machine-config"] == {"vcpu_count": 2, "mem_size_mib": 768, "smt": False}
        assert config["vsock"] == {"guest_cid": 3, "uds_path": "oxydra-vm-vsock.sock"}
        assert config["network-interfaces"] == []
        assert config["drives"][0]["is_read_only"] is True
        assert oct((ipc / "firecracker-oxydra-vm.json").stat().st_mode & 0o777) == "0o600"

    def test_the_envelope_travels_in_the_boot_args_and_the_serial_console_is_off(
        self, launched: tuple
    ) -> None:
        spec, _ = launched
        record = json.loads((spec.workspace.ipc / "fake-firecracker.json").read_text())
        args = record["config"]["boot-source"]["boot_args"]
        assert "8250.nr_uarts=0" in args and "oxydra.user_id=vmuser" in args
        assert record["user"] == "vmuser" and record["tier"] == "micro_vm"
        assert record["token"] == spec.token
        encoded = args.split("oxydra.bootstrap_b64=", 1)[1].split()[0]
        assert len(encoded) <= 2048
        assert json.loads(base64.b64decode(encoded))["credential_env"] == []

    def test_the_shell_is_reported_unavailable_with_the_reason(self, launched: tuple) -> None:
        _, launch = launched
        status = launch.status
        assert not status.shell_available and not status.sidecar_available
        assert [r.code for r in status.degraded_reasons] == ["sidecar_transport_unsupported"]

    def test_stop_ends_firecracker(self, launched: tuple) -> None:
        _, launch = launched
        assert launch.guest.exit_code() is None
        launch.stop(grace=5)
        assert launch.guest.exit_code() is not None


class TestFailures:
    def test_no_binary_is_a_clear_error(self, tmp_path: Path, images: dict[str, Path]) -> None:
        spec = vm_spec(tmp_path, images, binary=False, PATH=str(tmp_path / "empty"))
        with pytest.raises(RunnerError, match="needs Firecracker") as info:
            launch_micro_vm(spec, load_guest_config(spec))
        assert "firecracker_binary" in str(info.value)

    def test_firecracker_on_path_is_found(self, tmp_path: Path, images: dict[str, Path]) -> None:
        spec = vm_spec(tmp_path, images, binary=False, PATH=str(images["binary"].parent))
        launch_micro_vm(spec, load_guest_config(spec)).stop(grace=5)

    def test_no_template_is_a_clear_error(self, tmp_path: Path, images: dict[str, Path]) -> None:
        spec = vm_spec(tmp_path, images, template=False)
        with pytest.raises(RunnerError, match="firecracker_oxydra_vm_config"):
            launch_micro_vm(spec, load_guest_config(spec))

    def test_a_missing_kernel_is_reported(self, tmp_path: Path, images: dict[str, Path]) -> None:
        spec = vm_spec(tmp_path, images)
        os.unlink(images["kernel"])
        with pytest.raises(RunnerError, match="kernel"):
            launch_micro_vm(spec, load_guest_config(spec))

    def test_firecracker_refusing_the_config_is_reported_with_its_words(
        self, tmp_path: Path, images: dict[str, Path]
    ) -> None:
        spec = vm_spec(tmp_path, images, memory=64)
        with pytest.raises(RunnerError, match="bad mem_size_mib"):
            launch_micro_vm(spec, load_guest_config(spec))


def test_runner_start_and_stop_at_the_micro_vm_tier(
    tmp_path: Path, images: dict[str, Path]
) -> None:
    box = make_sandbox(tmp_path)
    (box.cwd / ".oxydra").mkdir()
    (box.cwd / ".oxydra" / "runner.toml").write_text(
        'default_tier = "micro_vm"\nworkspace_root = "ws"\n[guest_images]\n'
        f'firecracker_binary = "{images["binary"]}"\n'
        f'firecracker_oxydra_vm_config = "{images["template"]}"\n'
    )
    started = box.runner("start")
    try:
        assert started.returncode == 0, started.stderr
        lines = parse_kv(started.stdout)
        assert lines["sandbox_tier"] == ["MicroVm"]
        assert lines["shell_available"] == ["false"]
        assert lines["degraded_reason"][0].startswith("sidecar_transport_unsupported:")
        assert lines["gateway_endpoint"] == ["ws://127.0.0.1:7/ws"]
        assert parse_kv(box.runner("status").stdout)["healthy"] == ["true"]
    finally:
        stopped = box.runner("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (
        box.cwd / ".oxydra" / "ws" / "default" / "ipc" / "oxydra-vm-firecracker.sock"
    ).exists()
