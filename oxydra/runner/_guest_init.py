#!/usr/bin/python3 -I
"""PID 1 of the microVM guest (copied into the rootfs as /sbin/oxydra-init; stdlib only).

The initramfs has mounted the root read-only, the workspace shares under /workspace, tmpfs
on /tmp and /run, and configured the network. This init:
1. reads the launch file the runner left at /workspace/ipc/guest-launch.json (the vm's
   argv and environment, the shell daemon's argv, the uid, the limits) and deletes it, so
   the guest's processes cannot read it back;
2. puts the shell daemon and the vm in cgroups of their own (`pids.max`, `memory.max`): a
   fork bomb or a memory hog in the shell hits its own limit, not the vm's;
3. starts both as the unprivileged uid with no supplementary groups and `no_new_privs`,
   their stdout and stderr on /dev/hvc0 and /dev/hvc1 (the host's log files);
4. relays each loopback provider port (127.0.0.1:P in the guest → the host's 127.0.0.1:P
   through QEMU's 10.0.2.2), in a child running as `nobody`;
5. reaps every orphan; on `stop <grace>` from the host (virtio-serial port `oxydra.ctl`)
   sends SIGTERM to the vm and, after the grace, SIGKILL to everyone; when the vm has
   ended, reboots, which QEMU (`-no-reboot`) turns into its own exit.
"""

import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import time

LAUNCH_FILE = "/workspace/ipc/guest-launch.json"
CGROUP = "/sys/fs/cgroup"
NOBODY = 65534
HOST_LOOPBACK = "10.0.2.2"
PR_SET_NO_NEW_PRIVS = 38
RB_AUTOBOOT = 0x01234567
_libc = ctypes.CDLL(None, use_errno=True)


def say(text):
    """A line on the console (the host's oxydra-vm stderr log)."""
    os.write(2, f"oxydra-init: {text}\n".encode())


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def setup_cgroups(launch):
    """cgroup v2 with `pids` and `memory` for two groups: `shell` and `vm`."""
    os.makedirs(CGROUP, exist_ok=True)
    if _libc.mount(b"cgroup2", CGROUP.encode(), b"cgroup2", 0, None) != 0:
        say(f"cannot mount cgroup2: errno {ctypes.get_errno()}; limits are rlimits only")
        return False
    write(f"{CGROUP}/cgroup.subtree_control", "+pids +memory")
    for name in ("shell", "vm"):
        os.makedirs(f"{CGROUP}/{name}", exist_ok=True)
        limits = launch.get(f"{name}_limits") or {}
        for key in ("pids.max", "memory.max"):
            if limits.get(key):
                write(f"{CGROUP}/{name}/{key}", str(limits[key]))
        if limits.get("memory.max"):
            write(f"{CGROUP}/{name}/memory.swap.max", "0")
    return True


def spawn(argv, env, launch, group, cwd, grouped):
    """Fork a child that joins `group`, drops to the guest uid, and execs `argv`."""
    out = os.open("/dev/hvc0", os.O_WRONLY | os.O_NOCTTY)
    err = os.open("/dev/hvc1", os.O_WRONLY | os.O_NOCTTY)
    pid = os.fork()
    if pid == 0:
        try:
            if grouped:
                write(f"{CGROUP}/{group}/cgroup.procs", str(os.getpid()))
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.setsid()
            os.setgroups([])
            os.setgid(launch["gid"])
            os.setuid(launch["uid"])
            _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        except BaseException as exc:
            say(f"cannot start {argv[0]}: {exc}")
        os._exit(127)
    os.close(out)
    os.close(err)
    return pid


def relay(ports):
    """Forward 127.0.0.1:P to the host's loopback port P, for each P (one thread-free loop)."""
    sel = selectors.DefaultSelector()
    for port in ports:
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(64)
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ, ("accept", port))
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    while True:
        for key, _ in sel.select():
            kind, data = key.data
            if kind == "accept":
                _accept(sel, key.fileobj, data)
            else:
                _pump(sel, key.fileobj, data)


def _accept(sel, lsock, port):
    try:
        inner, _ = lsock.accept()
    except OSError:
        return
    try:
        outer = socket.create_connection((HOST_LOOPBACK, port), timeout=10)
    except OSError:
        inner.close()
        return
    for sock in (inner, outer):
        sock.setblocking(False)
    sel.register(inner, selectors.EVENT_READ, ("pump", outer))
    sel.register(outer, selectors.EVENT_READ, ("pump", inner))


def _pump(sel, src, dst):
    try:
        data = src.recv(65536)
        if data:
            dst.setblocking(True)
            dst.sendall(data)
            dst.setblocking(False)
            return
    except OSError:
        pass
    for sock in (src, dst):
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()


def control_port():
    """The fd of the host's control port (virtio-serial `oxydra.ctl`), or None."""
    base = "/sys/class/virtio-ports"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(f"{base}/{name}/name") as fh:
                if fh.read().strip() == "oxydra.ctl":
                    return os.open(f"/dev/{name}", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
    return None


def supervise(vm, ctl):
    """Reap children until the vm ends or the host says stop; then end everything."""
    deadline = None
    pending = b""
    while True:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == vm:
                say(f"the vm exited ({os.waitstatus_to_exitcode(status)})")
                return
        if ctl is not None:
            try:
                pending += os.read(ctl, 256)
            except BlockingIOError:
                pass
            except OSError:
                ctl = None
            if b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                words = line.decode("ascii", "replace").split()
                if words[:1] == ["stop"] and deadline is None:
                    grace = float(words[1]) if len(words) > 1 else 10.0
                    deadline = time.monotonic() + grace
                    os.kill(vm, signal.SIGTERM)
        if deadline is not None and time.monotonic() > deadline:
            say("the vm did not stop within its grace; killing it")
            return
        time.sleep(0.05)


def main():
    with open(LAUNCH_FILE) as fh:
        launch = json.load(fh)
    os.unlink(LAUNCH_FILE)
    grouped = setup_cgroups(launch)
    os.makedirs("/run/oxydra/shell", exist_ok=True)
    os.chown("/run/oxydra/shell", launch["uid"], launch["gid"])
    os.chmod("/run/oxydra/shell", 0o700)
    if launch.get("loopback_ports"):
        if os.fork() == 0:
            try:
                relay(launch["loopback_ports"])
            finally:
                os._exit(1)
    if launch.get("shell_argv"):
        spawn(
            launch["shell_argv"], launch["shell_env"], launch, "shell", "/workspace/shared", grouped
        )
    vm = spawn(launch["vm_argv"], launch["env"], launch, "vm", "/workspace", grouped)
    say(f"started the vm (pid {vm})")
    supervise(vm, control_port())
    os.kill(-1, signal.SIGKILL)  # from PID 1: every other process
    os.sync()
    _libc.reboot(RB_AUTOBOOT)


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:
        say(f"failed: {exc!r}")
    finally:
        os.sync()
        _libc.reboot(RB_AUTOBOOT)
        sys.exit(1)
