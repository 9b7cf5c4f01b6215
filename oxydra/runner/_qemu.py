"""The micro_vm tier without Firecracker: QEMU's `microvm` machine on KVM.

What the guest gets (the image from `runner image build`, in `<cache>/<build id>/`):
- the kernel booted through its PVH entry (the uncompressed `vmlinux`, as Firecracker does),
  the initramfs of `_kernel.py`, the ext4 rootfs read-only;
- the workspace as five virtio-9p shares under /workspace (`shared`, `tmp`, `vault`
  read-only, `.oxydra`, and `ipc/guest/` as its `ipc`) — never the runner's `ipc/` (control
  socket, lock), its logs, nor anything else of the host;
- `[resources]`: vCPUs (`-smp`), memory (`-m`), and `max_processes` as the shell's
  `pids.max` (the guest init's cgroups: `_guest_init.py`);
- QEMU user networking: the guest's gateway (port 8790 inside) forwarded from a free
  loopback port of the host, and each loopback provider port of the agent config relayed
  from the guest's 127.0.0.1 to the host's;
- stdout and stderr on two virtio consoles appended to the `oxydra-vm` log files, the
  kernel's console to the stderr log;
- a control port (virtio-serial `oxydra.ctl`, a Unix socket in `ipc/`): `stop <grace>` asks
  the guest init for a clean shutdown; QEMU is killed if it has not exited by then.
QEMU runs with its seccomp sandbox (`-sandbox on`, no spawning, no privilege changes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    write_private,
)
from oxydra.runner._container import give_to_guest, guest_ipc, guest_logs, route_env
from oxydra.runner._guest import LaunchResult, ProcessGuest, spawn_monitor
from oxydra.runner._rootfs import WORKSPACE_SHARES, guest_ids
from oxydra.runner._workspace import UserWorkspace
from oxydra.wire.envelope import SidecarEndpoint, validate_envelope

GUEST_ROOT = Path("/workspace")
GUEST_GATEWAY_PORT = 8790
SHELL_SOCKET = "/run/oxydra/shell/shell-daemon.sock"
CONTROL_NAME = "qemu-ctl.sock"
DEFAULT_MEMORY_MIB = 1024
READY_TIMEOUT = 180.0  # a cold boot plus the vm's imports, on a loaded host
BOOT_ARGS = "console=ttyS0 reboot=t panic=-1 quiet"


def guest_workspace() -> UserWorkspace:
    """The workspace as the guest sees it (the envelope's paths)."""
    return UserWorkspace(
        root=GUEST_ROOT, shared=GUEST_ROOT / "shared", tmp=GUEST_ROOT / "tmp",
        vault=GUEST_ROOT / "vault",
    )  # fmt: skip


def host_shares(spec: LaunchSpec) -> dict[str, Path]:
    """9p tag → the host directory behind it (see WORKSPACE_SHARES for the guest side)."""
    ws = spec.workspace
    shares = {"shared": ws.shared, "tmp": ws.tmp, "vault": ws.vault}
    shares |= {"internal": ws.internal, "ipc": guest_ipc(spec), "logs": guest_logs(spec)}
    assert shares.keys() == WORKSPACE_SHARES.keys()  # the initramfs mounts exactly these
    return shares


def loopback_ports(config: AgentConfig) -> list[int]:
    """The selected provider's port when it is on this machine's loopback (a local model)."""
    entry = config.providers.registry.get(config.selection.provider)
    url = urlsplit((entry.base_url if entry else None) or "")
    local = url.hostname in ("127.0.0.1", "localhost", "::1") and url.port
    return [url.port] if local and url.port else []


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the gateway's forward."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_file(spec: LaunchSpec, config: AgentConfig, credentials: list[str]) -> dict[str, Any]:
    """What the guest init starts, as whom, with which limits (`_guest_init.py`)."""
    uid, gid = guest_ids(spec.environ)
    runtime_env, shell_env = route_env(spec.ctx.extra_env)
    env = {k: v for k, v in spec.environ.items() if k.startswith("OXYDRA_")}
    for name in ("OXYDRA_GATEWAY_TOKEN", "OXYDRA_BOOTSTRAP_FILE", "OXYDRA_GUEST_CACHE"):
        env.pop(name, None)
    env.update((k, spec.environ[k]) for k in credentials)
    env.update(runtime_env)
    env.setdefault("TZ", spec.ctx.user.behavior.timezone)
    env |= {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/oxydra-home",
        "OXYDRA__GATEWAY__BIND": f"0.0.0.0:{GUEST_GATEWAY_PORT}",
        "TIKTOKEN_CACHE_DIR": str(GUEST_ROOT / ".oxydra" / "cache" / "tiktoken"),
    }  # fmt: skip
    vm = ["/usr/local/bin/oxydra", "vm", "--user-id", spec.ctx.user_id]
    vm += ["--workspace-root", str(GUEST_ROOT), "--bootstrap-file", "/workspace/ipc/bootstrap.json"]
    for item in spec.ctx.overrides:
        vm += ["--set", item]
    shell = ["/usr/local/bin/oxydra", "shell-daemon", "--socket", SHELL_SOCKET]
    shell += ["--writable", "/workspace/shared", "--writable", "/workspace/tmp"]
    shell += ["--allow-unconfined"]  # Landlock where the guest kernel has it; the VM confines
    memory = (spec.ctx.user.resources.max_memory_mib or DEFAULT_MEMORY_MIB) * 1024 * 1024
    return {
        "uid": uid, "gid": gid, "env": env, "vm_argv": vm,
        "shell_argv": shell if _shell_wanted(spec, config) else None,
        "shell_env": {"PATH": env["PATH"], "HOME": "/workspace/shared", "TZ": env["TZ"],
                      **shell_env},
        "shell_limits": {"pids.max": spec.ctx.user.resources.max_processes or 512,
                         "memory.max": memory // 2},
        "vm_limits": {"pids.max": 512},
        "loopback_ports": loopback_ports(config),
    }  # fmt: skip


def _shell_wanted(spec: LaunchSpec, config: AgentConfig) -> bool:
    return spec.ctx.user.behavior.shell_enabled is not False and config.tools.shell.enabled


def qemu_argv(spec: LaunchSpec, image: Path, qemu: str, host_port: int, ctl: Path) -> list[str]:
    """The QEMU command line (see the module docstring)."""
    res, logs = spec.ctx.user.resources, spec.workspace
    out = logs.log_file("oxydra-vm", "stdout")
    err = logs.log_file("oxydra-vm", "stderr")
    argv = [qemu, "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on", "-accel", "kvm"]
    argv += ["-cpu", "host", "-smp", str(res.max_vcpus or 1)]
    argv += ["-m", str(res.max_memory_mib or DEFAULT_MEMORY_MIB)]
    argv += ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
    argv += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    argv += ["-kernel", str(image / "vmlinux"), "-initrd", str(image / "initramfs.cpio.gz")]
    argv += ["-append", BOOT_ARGS]
    argv += ["-chardev", f"file,id=con,path={err},append=on", "-serial", "chardev:con"]
    argv += ["-drive", f"id=root,file={image / 'rootfs.ext4'},format=raw,if=none,readonly=on"]
    argv += ["-device", "virtio-blk-device,drive=root"]
    argv += ["-netdev", f"user,id=net,hostfwd=tcp:127.0.0.1:{host_port}-:{GUEST_GATEWAY_PORT}"]
    argv += ["-device", "virtio-net-device,netdev=net"]
    for n, (tag, path) in enumerate(host_shares(spec).items()):
        ro = ",readonly=on" if tag == "vault" else ""
        argv += ["-fsdev", f"local,id=fs{n},path={path},security_model=none{ro}"]
        argv += ["-device", f"virtio-9p-device,fsdev=fs{n},mount_tag={tag}"]
    argv += ["-device", "virtio-serial-device"]
    argv += ["-chardev", f"file,id=out,path={out},append=on", "-device", "virtconsole,chardev=out"]
    argv += ["-chardev", f"file,id=err,path={err},append=on", "-device", "virtconsole,chardev=err"]
    argv += ["-chardev", f"socket,id=ctl,path={ctl},server=on,wait=off"]
    argv += ["-device", "virtserialport,chardev=ctl,name=oxydra.ctl"]
    return argv


class QemuGuest(ProcessGuest):
    """The QEMU process; `stop` first asks the guest init to shut down cleanly."""

    def __init__(self, popen: subprocess.Popen[bytes], ctl: Path, log: Path) -> None:
        super().__init__(popen, "oxydra-vm")
        self.ctl = ctl
        self.log = log

    def exit_code(self) -> int | None:
        """See `Guest.exit_code`; a VM that KVM refused to run counts as ended.

        On a KVM internal error QEMU pauses the VM and stays up, so the runner would wait
        for a gateway that never comes; it is killed instead, and its error is in the log.
        """
        code = self.popen.poll()
        if code is None and _kvm_refused(self.log):
            self.popen.kill()
            code = self.popen.wait()
        return code

    def stop(self, grace: float = 10.0) -> None:
        """`stop <grace>` on the control port, then SIGTERM/SIGKILL if QEMU is still up."""
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    with unix_socket_path(str(self.ctl)) as reachable:
                        sock.connect(reachable)
                    sock.sendall(f"stop {grace:g}\n".encode())
                finally:
                    sock.close()
            self.wait(grace + 5)
        super().stop(grace=2)


def launch_qemu(spec: LaunchSpec, config: AgentConfig, image: Path) -> LaunchResult:
    """Boot the user's guest in a QEMU microVM from `image` (checked by the caller).

    Raises:
        RunnerError: no QEMU, no usable /dev/kvm, or QEMU could not start.
    """
    qemu = shutil.which("qemu-system-x86_64", path=spec.environ.get("PATH"))
    if qemu is None:
        raise RunnerError(
            "the micro_vm tier needs qemu-system-x86_64 (or Firecracker)",
            hint="apt-get install qemu-system-x86, or set [guest_images] firecracker_binary",
        )
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise RunnerError("the micro_vm tier needs /dev/kvm, and it is missing or not ours")
    credentials = credential_names(config, spec.guest_environ)
    shell = _shell_wanted(spec, config)
    endpoint = SidecarEndpoint(transport="unix", address=SHELL_SOCKET) if shell else None
    status = startup_status(SandboxTier.MICRO_VM, shell=shell, sidecar=shell, degraded=[])
    envelope = build_envelope(replace(spec, workspace=guest_workspace()), status, credentials,
                              endpoint)  # fmt: skip
    ipc = guest_ipc(spec)
    for stale in ("gateway-endpoint", "guest-launch.json", "bootstrap.json"):
        with contextlib.suppress(FileNotFoundError):
            (ipc / stale).unlink()
    for path in (spec.workspace.shared, spec.workspace.tmp, spec.workspace.vault,
                 spec.workspace.internal):  # fmt: skip
        give_to_guest(path, spec.environ)
    validate_envelope(envelope)
    write_private(ipc / "bootstrap.json", msgspec.json.encode(envelope), mode=0o400)
    give_to_guest(ipc / "bootstrap.json", spec.environ)
    launch = json.dumps(launch_file(spec, config, credentials)).encode()
    write_private(ipc / "guest-launch.json", launch, mode=0o400)
    ctl = spec.workspace.ipc / CONTROL_NAME
    with contextlib.suppress(FileNotFoundError):
        ctl.unlink()
    host_port = free_port()
    guest = _spawn(spec, qemu_argv(spec, image, qemu, host_port, ctl), ctl)
    return LaunchResult(
        guest=guest, envelope=envelope, guest_marker=ipc / "gateway-endpoint",
        host_endpoint=lambda _: f"ws://127.0.0.1:{host_port}/ws",
        ready_timeout=READY_TIMEOUT, closers=[lambda: _remove(ctl)],
    )  # fmt: skip


def _kvm_refused(log: Path) -> bool:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 65536))
            return b"KVM internal error" in fh.read()
    except OSError:
        return False


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _spawn(spec: LaunchSpec, argv: list[str], ctl: Path) -> QemuGuest:
    popen = spawn_monitor(spec.workspace, spec.environ, argv, "QEMU")
    return QemuGuest(popen, ctl, spec.workspace.log_file("oxydra-vm", "stderr"))
