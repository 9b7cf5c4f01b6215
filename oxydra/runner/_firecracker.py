"""The micro_vm tier: the guest in a Firecracker microVM.

The machine config is generated from `[guest_images] firecracker_oxydra_vm_config` (a
Firecracker JSON config; it must name `boot-source.kernel_image_path` and a root drive):
`machine-config` takes `[resources]` (vCPUs, memory; SMT off), `vsock` is ours
(`<ws>/ipc/oxydra-vm-vsock.sock`, CID 3), `network-interfaces` is empty unless the template
sets some (no network by default), and `boot_args` gets `oxydra.user_id=` and
`oxydra.bootstrap_b64=` (the envelope, at most 2048 base64 bytes, as upstream). Without a
template's own boot args the serial console is off (`8250.nr_uarts=0`): a guest cannot
flood the host's disk through it.

Launch: `firecracker --api-sock oxydra-vm-firecracker.sock --config-file
firecracker-oxydra-vm.json` with `<ws>/ipc` as its working directory (socket paths are
relative to it, so a deep workspace never exceeds the 108 bytes of `sun_path`), its output
appended to the oxydra-vm log files, ready when the API socket answers `GET /` (polled
every 150 ms for up to 5 s).

Not done here: a shell VM. A guest inside a microVM has no transport to a second VM's
shell daemon yet (upstream's endpoint is a host-side socket the guest cannot reach), so the
shell tool is reported unavailable (`sidecar_transport_unsupported`) instead of broken.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config.schema import AgentConfig
from oxydra.core.errors import RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.core.unixpath import unix_socket_path
from oxydra.runner._bootstrap import (
    LaunchSpec,
    build_envelope,
    credential_names,
    startup_status,
    write_bootstrap_file,
    write_private,
)
from oxydra.runner._guest import LaunchResult, ProcessGuest, log_tail, spawn_monitor

DEFAULT_BOOT_ARGS = "reboot=k panic=1 pci=off 8250.nr_uarts=0"
MAX_BOOTSTRAP_B64 = 2048
GUEST_CID = 3
READY_TIMEOUT = 5.0
READY_POLL = 0.15
API_NAME = "oxydra-vm-firecracker.sock"
VSOCK_NAME = "oxydra-vm-vsock.sock"


def find_firecracker(spec: LaunchSpec) -> Path:
    """`[guest_images] firecracker_binary`, else `firecracker` on PATH."""
    configured = spec.ctx.config.guest_images.firecracker_binary
    if configured:
        path = Path(configured).expanduser()
        path = path if path.is_absolute() else spec.ctx.base_dir / path
        if not path.is_file():
            raise RunnerError(f"[guest_images] firecracker_binary {path} does not exist")
        return path
    found = shutil.which("firecracker", path=spec.environ.get("PATH"))
    if not found:
        raise RunnerError(
            "the micro_vm tier needs Firecracker, and no `firecracker` binary was found",
            hint="set [guest_images] firecracker_binary in runner.toml, put firecracker on "
            "PATH, or choose the container tier",
        )
    return Path(found)


def load_template(spec: LaunchSpec) -> dict[str, Any]:
    """The operator's Firecracker config template (required: kernel and root drive)."""
    name = spec.ctx.config.guest_images.firecracker_oxydra_vm_config
    if not name:
        raise RunnerError(
            "the micro_vm tier needs [guest_images] firecracker_oxydra_vm_config: a "
            "Firecracker JSON config naming boot-source.kernel_image_path and a root drive"
        )
    path = Path(name).expanduser()
    path = path if path.is_absolute() else spec.ctx.base_dir / path
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read the Firecracker template {path}: {exc}") from exc
    if not isinstance(template, dict):
        raise RunnerError(f"the Firecracker template {path} is not a JSON object")
    return template


def machine_config(
    template: dict[str, Any], spec: LaunchSpec, envelope_json: bytes
) -> dict[str, Any]:
    """The Firecracker config for this user's guest (see the module docstring)."""
    config = copy.deepcopy(template)
    boot = config.setdefault("boot-source", {})
    kernel = boot.get("kernel_image_path")
    if not kernel or not Path(kernel).is_file():
        raise RunnerError(
            f"Firecracker kernel {kernel!r} (boot-source.kernel_image_path) not found"
        )
    roots = [d for d in config.get("drives", []) if d.get("is_root_device")]
    if len(roots) != 1 or not Path(roots[0].get("path_on_host", "")).is_file():
        raise RunnerError("the Firecracker template needs exactly one existing root drive")
    encoded = base64.b64encode(envelope_json).decode()
    if len(encoded) > MAX_BOOTSTRAP_B64:
        raise RunnerError(f"the bootstrap envelope is {len(encoded)} base64 bytes (max 2048)")
    args = boot.get("boot_args") or DEFAULT_BOOT_ARGS
    boot["boot_args"] = f"{args} oxydra.user_id={spec.ctx.user_id} oxydra.bootstrap_b64={encoded}"
    res, machine = spec.ctx.user.resources, config.setdefault("machine-config", {})
    machine["vcpu_count"] = res.max_vcpus or machine.get("vcpu_count", 1)
    machine["mem_size_mib"] = res.max_memory_mib or machine.get("mem_size_mib", 1024)
    machine.setdefault("smt", False)
    cid = (config.get("vsock") or {}).get("guest_cid", GUEST_CID)
    config["vsock"] = {"guest_cid": cid, "uds_path": VSOCK_NAME}
    config.setdefault("network-interfaces", [])
    return config


def launch_micro_vm(spec: LaunchSpec, config: AgentConfig) -> LaunchResult:
    """Generate the machine config, start Firecracker, wait for its API socket.

    Raises:
        RunnerError: no binary, no template, missing kernel/rootfs, or Firecracker failed.
    """
    binary = find_firecracker(spec)
    template = load_template(spec)
    degraded = [
        (
            "sidecar_transport_unsupported",
            "a micro_vm guest has no transport to a shell VM yet; shell tool disabled",
        )
    ]
    status = startup_status(SandboxTier.MICRO_VM, shell=False, sidecar=False, degraded=degraded)
    envelope = build_envelope(spec, status, credential_names(config, spec.guest_environ))
    write_bootstrap_file(spec.workspace, envelope)
    machine = machine_config(template, spec, msgspec.json.encode(envelope))
    ipc = spec.workspace.ipc
    config_path = ipc / "firecracker-oxydra-vm.json"
    write_private(config_path, json.dumps(machine, indent=2).encode())
    api = ipc / API_NAME
    for stale in (api, ipc / VSOCK_NAME):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    argv = [str(binary), "--api-sock", API_NAME, "--config-file", config_path.name]
    guest = _spawn(spec, argv)
    _wait_ready(guest, api, spec)
    sockets = (api, ipc / VSOCK_NAME)
    return LaunchResult(guest=guest, envelope=envelope, closers=[lambda: _remove(sockets)])


def _remove(paths: tuple[Path, ...]) -> None:
    """Firecracker leaves its sockets behind when it is stopped."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _spawn(spec: LaunchSpec, argv: list[str]) -> ProcessGuest:
    popen = spawn_monitor(spec.workspace, spec.environ, argv, "Firecracker")
    return ProcessGuest(popen, "oxydra-vm")


def _wait_ready(guest: ProcessGuest, api: Path, spec: LaunchSpec) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if guest.exit_code() is not None:
            tail = log_tail(spec.workspace.log_file("oxydra-vm", "stderr"))
            raise RunnerError(f"Firecracker exited with status {guest.exit_code()}:\n{tail}")
        if _api_answers(api):
            return
        time.sleep(READY_POLL)
    guest.stop(grace=1)
    raise RunnerError(f"Firecracker's API socket {api} did not answer within {READY_TIMEOUT:g}s")


def _api_answers(api: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        with unix_socket_path(str(api)) as reachable:
            sock.connect(reachable)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1 2")
    except OSError:
        return False
    finally:
        sock.close()
