"""The intermediate process between the agent and a shell command (stdlib only).

The confinement server (`_confine_server.py`, a small interpreter that imports nothing of
the package) forks one intermediate per command and calls `run_call` in it; nothing is
started per command but the fork of that single-threaded server and the shell itself. The
intermediate exists so that:

1. the shell's parent is not the agent: `/proc/$PPID` names this process, whose memory and
   environment are the server's (an empty environment, no secret ever held);
2. every process the command starts stays in reach: this process is a child subreaper
   (`PR_SET_CHILD_SUBREAPER`), so a `setsid -f` or double-forked helper is reparented here,
   not to PID 1, and is killed when the call ends — the shell exits, the agent asks
   (SIGTERM), or the server dies with the agent (`PR_SET_PDEATHSIG` on both, so a kill -9
   of `vm` leaves nothing);
3. the confinement is applied in a single-threaded process, not in a `preexec_fn` of the
   threaded agent: in the forked child, `RLIMIT`s, the capability bounding set emptied
   (when root), `no_new_privs`, then Landlock, then `execve` of the shell with the
   scrubbed environment the agent sent.

The agent learns the call's fate on the report pipe: first `<pid>`, last `exit <code>`
(the shell's status, a negative signal number for a signal death, 137 when it had to be
killed). No `exit` line means the intermediate itself was killed. It exits the same way:
a signal death is re-raised on this process; 125 means the server was already gone; 126
that the sandbox could not be applied (the reason is on the command's stderr).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import time
from typing import Any

try:
    from oxydra.security import _landlock as ll
except ImportError:  # run as the intermediate: only this directory is on sys.path
    import _landlock as ll  # type: ignore[import-not-found,no-redef]

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_prctl = ctypes.CDLL(None, use_errno=True).prctl


class _Stop(Exception):
    """The agent asked to stop (SIGTERM) or died (parent-death signal)."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def run_call(
    server: int, spec_fd: int, out_fd: int, err_fd: int, report_fd: int, in_fd: int | None = None
) -> None:
    """In a child just forked by the server: run one command under its sandbox. Never returns.

    `spec_fd` holds the JSON spec (see `ShellSandbox.spec`); the command's stdout and
    stderr go to `out_fd` and `err_fd`, its stdin comes from `in_fd` (else /dev/null); the
    report pipe gets the pid first, the exit last.
    """
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != server:  # the server died before the signal was armed
            os._exit(125)
        os.setsid()  # its own session and group: the agent's last resort is `killpg`
        _report(report_fd, f"{os.getpid()}\n")
        spec: dict[str, Any] = json.loads(_read_all(spec_fd))
        _stdio(out_fd, err_fd, in_fd)
        os.chdir(spec["cwd"])
    except BaseException as exc:
        _report(err_fd, f"oxydra: cannot start the confined shell: {exc}\n")
        _report(report_fd, "exit 126\n")
        os._exit(126)
    _supervise(spec, report_fd)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    os.close(fd)
    return b"".join(parts)


def _stdio(out_fd: int, err_fd: int, in_fd: int | None) -> None:
    """Stdin from `in_fd` or /dev/null, stdout and stderr to the agent's pipes; nothing else."""
    source = os.open(os.devnull, os.O_RDONLY) if in_fd is None else in_fd
    os.dup2(source, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    for fd in (source, out_fd, err_fd):
        if fd > 2:
            os.close(fd)


def _report(fd: int, line: str) -> None:
    try:
        os.write(fd, line.encode())
    except OSError:  # the reader is gone: the call ends the same way
        pass


def _supervise(spec: dict[str, Any], report_fd: int) -> None:
    """Fork the shell, wait for it, stop it if asked, kill what is left, report, exit."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    scoped = int(spec.get("abi", 0)) >= 6 and _scope_own_signals()
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # no _Stop between fork and exec
    shell = os.fork()
    if shell == 0:
        os.close(report_fd)
        _exec_shell(spec)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    status: int | None = None
    try:
        status = _wait_for(shell)
    except _Stop:
        _ignore_stop_signals()
        status = _terminate(shell, float(spec.get("grace", 2.0)), scoped)
    _ignore_stop_signals()
    _kill_tree(shell, scoped)
    _report(report_fd, f"exit {_exit_code(status)}\n")
    _exit_like(status)


def _scope_own_signals() -> bool:
    """Enter a Landlock domain that only scopes signals (ABI 6), for `kill(-1)`.

    From inside its own domain a process can signal only itself and the processes of its
    domain and the domains nested in it: exactly its descendants, whatever session they
    moved to and whether or not `/proc` is readable (a process-tier guest has no `/proc`).
    `kill(-1, sig)` then reaches every descendant and nothing else. The file rights of
    this process are left as they were (no file access is handled by this ruleset).
    """
    attr = ll._RulesetAttr(0, 0, ll.SCOPE_SIGNAL)
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    fd = ll._syscall(ll._CREATE_RULESET, ctypes.byref(attr), size, 0)
    if fd < 0:
        return False
    try:
        if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return bool(ll._syscall(ll._RESTRICT_SELF, fd, 0) == 0)
    finally:
        os.close(fd)


def _exec_shell(spec: dict[str, Any]) -> None:
    """In the forked child: confine, then become the shell. Never returns."""
    try:
        for signum in (*_STOP_SIGNALS, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        os.setpgid(0, 0)  # its own group: the last resort of `_signal_all`
        for limit, value in spec.get("rlimits", []):
            _setrlimit(limit, value)
        if os.geteuid() == 0:
            _drop_capabilities()
        if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if spec.get("rules") is not None:
            rules = [ll.PathRule(path, access) for path, access in spec["rules"]]
            ll.Ruleset.build(rules, int(spec["abi"])).enforce()
        os.chdir(spec["cwd"])
        shell = spec["shell"]
        os.execve(shell, [shell, "-c", spec["command"]], spec["env"])
    except BaseException as exc:
        os.write(2, f"oxydra: cannot start the confined shell: {exc}\n".encode())
    os._exit(126)


def _setrlimit(limit: int, value: int) -> None:
    import resource

    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def _drop_capabilities() -> None:
    """Empty the bounding set, so the root shell `execve` starts has no capability at all.

    Without CAP_SYS_PTRACE a process cannot read a non-dumpable process's environment or
    memory even as the same uid 0, nor (without CAP_KILL) signal other users' processes.
    """
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:  # past the kernel's last capability
                return
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")


def _wait_for(shell: int) -> int:
    """Reap children (orphans reparented here too) until the shell itself exits."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == shell:
            return status


def _terminate(shell: int, grace: float, scoped: bool) -> int | None:
    """SIGTERM to every descendant, then up to `grace` seconds for the shell to exit."""
    _signal_all(shell, signal.SIGTERM, scoped)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == shell:
            return status
        if pid == 0:
            time.sleep(0.02)
    return None


def _kill_tree(shell: int, scoped: bool) -> None:
    """SIGKILL every descendant until none is left.

    As a subreaper, a process whose parent dies is reparented here, so "no child left"
    (ECHILD) means no descendant is left. A process forked after a round of signals is
    caught on the next round, once its killed parent is gone.
    """
    while True:
        if not _signal_all(shell, signal.SIGKILL, scoped):
            _reap_what_exited()
            return
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _signal_all(shell: int, signum: int, scoped: bool) -> bool:
    """Signal every descendant: `kill(-1)` in our own domain, else a `/proc` listing.

    Returns False when neither works (no Landlock ABI 6 and no readable `/proc`): then
    only the shell's process group is signalled and a `setsid` helper can escape.
    """
    if scoped:
        _signal(-1, signum)
        return True
    try:
        pids = _descendants()
    except OSError as exc:
        if signum == signal.SIGKILL:
            os.write(2, f"oxydra: cannot list the command's processes: {exc}\n".encode())
        _signal(-shell, signum)
        return False
    for pid in pids:
        _signal(pid, signum)
    return True


def _reap_what_exited() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _descendants() -> list[int]:
    """Every process below this one, from `/proc/<pid>/task/<tid>/children`.

    Raises:
        OSError: `/proc` cannot be read here (then no descendant can be listed).
    """
    os.listdir(f"/proc/{os.getpid()}/task")
    found: list[int] = []
    queue = [os.getpid()]
    while queue:
        pid = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    children = [int(c) for c in fh.read().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _ignore_stop_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _exit_code(status: int | None) -> int:
    """What the agent reports: the shell's code, minus its signal, or 137 if it was killed."""
    if status is None:
        return 137
    return os.waitstatus_to_exitcode(status)


def _exit_like(status: int | None) -> None:
    """Exit with the shell's status; a signal death is reproduced on this process."""
    if status is None:
        os._exit(137)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status))
