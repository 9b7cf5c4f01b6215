"""The confinement server: forks one intermediate per shell command (stdlib only).

Starting a fresh interpreter for every command cost tens of milliseconds of CPU per call
(over 100 ms from the archive); forking this small process costs about one. The agent
starts it once, lazily, as `python -I -S -c <boot> <agent pid>` with an empty environment
(see `_confine_client.py`); the boot line puts this directory first on `sys.path`, so
nothing of the package is imported and the server never holds a secret.

Protocol: the control socket (a `SOCK_SEQPACKET` socketpair, on fd 0) carries one datagram
per command, `b"run"` with four descriptors: the spec (a memfd holding JSON), the command's
stdout and stderr pipes, and the report pipe; `b"run+stdin"` adds a fifth, the read end of
the command's stdin (an MCP server speaks JSON-RPC on it; a shell command gets /dev/null).
The server forks; the child becomes the intermediate (`_confine_child.run_call`). The
server answers nothing: the intermediate reports on its pipe. EOF on the socket (the agent
closed it or died) ends the server.

Lifetime: `PR_SET_PDEATHSIG` (SIGKILL) ties the server to the agent; each intermediate's own
parent-death signal (SIGTERM) then makes it stop its command and kill its tree. The server is
a child subreaper too: if an intermediate is killed outright (without Landlock's signal
scoping a command can `kill -9 $PPID`), what it leaves is reparented here and killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

try:
    from oxydra.security import _confine_child as child
except ImportError:  # run as the server: only this directory is on sys.path
    import _confine_child as child  # type: ignore[import-not-found,no-redef]

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
REQUEST = b"run"
FDS_PER_REQUEST = {REQUEST: 4, b"run+stdin": 5}
MAX_FDS = max(FDS_PER_REQUEST.values())

_prctl = ctypes.CDLL(None, use_errno=True).prctl
_live: set[int] = set()


def serve() -> None:
    """Serve the control socket on fd 0 until EOF; argv[1] is the agent's pid."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(sys.argv[1]):  # the agent died before the signal was armed
        os._exit(125)
    _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 16, MAX_FDS)
        except ConnectionError:
            os._exit(0)
        if not message and not fds:
            os._exit(0)  # the agent closed its end
        if FDS_PER_REQUEST.get(message) != len(fds):
            for fd in fds:
                os.close(fd)
            continue
        _fork_call(control, fds)


def _fork_call(control: socket.socket, fds: list[int]) -> None:
    server = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGCHLD,))
    try:
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGCHLD,))
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # SIGPIPE stays ignored, as in
                signal.signal(signal.SIGHUP, signal.SIG_DFL)  # any interpreter; the shell resets it
                control.close()
                for fd in fds:
                    os.set_inheritable(fd, False)
                child.run_call(server, *fds)
            finally:
                os._exit(126)
        _live.add(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGCHLD,))
        for fd in fds:
            os.close(fd)


def _reap(signum: int, frame: object) -> None:
    """Reap every exited child, then kill what an intermediate may have left here."""
    reaped = False
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        _live.discard(pid)
        reaped = True
    if reaped:
        _kill_orphans()


def _kill_orphans() -> None:
    """SIGKILL every child that is not a running intermediate (reparented leftovers).

    An intermediate kills its whole tree before it exits, so normally there is none; the
    listing needs `/proc` (without it nothing is done, as before this server existed).
    """
    me = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{me}/task")
    except OSError:
        return
    for tid in tasks:
        try:
            with open(f"/proc/{me}/task/{tid}/children") as fh:
                pids = [int(p) for p in fh.read().split()]
        except OSError:
            continue
        for pid in pids:
            if pid not in _live:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


if __name__ == "__main__":
    serve()
