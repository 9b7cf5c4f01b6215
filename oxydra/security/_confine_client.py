"""The agent's end of the confinement server: start it once, run each shell command through it.

`start_confined(spec)` sends the command's spec to the server (`_confine_server.py`, started
on first use and again if it died) and returns a `ConfinedProcess`: the intermediate's pid,
the command's stdout and stderr as stream readers, and its exit code once the report pipe
gives it. The agent never forks a shell itself and never waits on the intermediate (it is
the server's child): every fact comes from the report pipe.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

REQUEST = b"run"
REQUEST_STDIN = b"run+stdin"
_KILLED = -signal.SIGKILL


class ConfinedProcess:
    """One command under the sandbox, as the agent sees it.

    Attributes:
        pid: the intermediate's pid (its own session and process group).
        stdin: the agent's end of the command's input, when it was asked for (else None).
        stdout, stderr: the command's output (every process it started writes here).
        returncode: None until the report gives the exit code: the shell's, a negative
            signal number, 137 when it had to be killed, or -9 if the intermediate was.
    """

    def __init__(
        self,
        pid: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        transports: list[asyncio.BaseTransport],
        done: asyncio.Future[int],
    ) -> None:
        self.pid = pid
        self.stdin: asyncio.StreamWriter | None = None  # set when the command reads a pipe
        self.stdout, self.stderr = stdout, stderr
        self.returncode: int | None = None
        self._transports = transports
        self._done = done
        done.add_done_callback(self._record)
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # gone already, or no pidfd on this kernel
            self._pidfd = None

    def _record(self, done: asyncio.Future[int]) -> None:
        self.returncode = done.result()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    async def wait(self) -> int:
        """The exit code, once the intermediate has killed every process of the call."""
        return await asyncio.shield(self._done)

    def terminate(self) -> None:
        """Ask the intermediate to stop the command and kill its tree (SIGTERM)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the intermediate outright; the server then kills what it left behind."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if self._pidfd is not None:  # no pid-reuse race: the fd names this process
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)

    def close(self) -> None:
        """Close the output pipes (after the readers are done or abandoned)."""
        for transport in self._transports:
            transport.close()


_SERVER_MODULES = ("_landlock", "_confine_child", "_confine_server")  # each needs the previous


def boot_line() -> str:
    """Python source that loads the server (standard library only) and serves.

    From an installation it imports the modules from this directory. Inside `oxydra.pyz`
    there is no directory to put on `sys.path` (the archive's importer reads them from its
    pack), so their sources travel in the program itself.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(here):
        return f"import sys;sys.path[:0]=[{here!r}];import _confine_server;_confine_server.serve()"
    import importlib.util

    sources: dict[str, str] = {}
    for name in _SERVER_MODULES:
        spec = importlib.util.find_spec(f"oxydra.security.{name}")
        source = spec.loader.get_source(spec.name) if spec and spec.loader else None  # type: ignore[attr-defined]
        if not source:
            raise OSError(f"the confinement server's module {name} has no source here")
        sources[name] = source
    return (
        "import sys, types\n"
        f"for name, source in {sources!r}.items():\n"
        "    sys.modules[name] = module = types.ModuleType(name)\n"
        "    exec(compile(source, name + '.py', 'exec'), module.__dict__)\n"
        "sys.modules['_confine_server'].serve()\n"
    )


class _Server:
    """The running server: its process, and the agent's end of the control socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", boot_line(), str(os.getpid())],
                stdin=theirs.fileno(), stdout=subprocess.DEVNULL, env={}, cwd="/",
                start_new_session=True,
            )  # fmt: skip
        self.socket = ours
        self.owner = os.getpid()

    def usable(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def close(self, *, wait: bool) -> None:
        """Close the socket: the server sees EOF and exits (its commands are stopped)."""
        self.socket.close()
        if wait and self.owner == os.getpid():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)


_lock = threading.Lock()
_server: _Server | None = None


def _current(failed: _Server | None = None) -> _Server:
    """The server of this process; a new one if there is none, it died, or it `failed`."""
    global _server
    with _lock:
        if _server is None or _server is failed or not _server.usable():
            if _server is None:
                atexit.register(_shutdown)
            elif _server.owner == os.getpid():
                _server.close(wait=False)
            _server = _Server()
        return _server


def _shutdown() -> None:
    global _server
    with _lock:
        if _server is not None and _server.owner == os.getpid():
            _server.close(wait=True)
        _server = None


async def start_confined(spec: dict[str, Any], *, stdin: bool = False) -> ConfinedProcess:
    """Run one command through the server; see `ShellSandbox.spec` for `spec`.

    With `stdin`, the command reads a pipe the agent writes (`ConfinedProcess.stdin`);
    otherwise it reads /dev/null.

    Raises:
        OSError: the server could not be started or reached twice in a row.
    """
    payload = json.dumps(spec).encode()
    failed: _Server | None = None
    for _attempt in range(2):
        server = _current(failed)
        started = await _try_start(server, payload, stdin)
        if started is not None:
            return started
        failed = server
    raise OSError("the shell's confinement server could not start the command")


async def _try_start(server: _Server, payload: bytes, stdin: bool) -> ConfinedProcess | None:
    """Send the request; None when the server was gone before the command started."""
    loop = asyncio.get_running_loop()
    spec_fd = os.memfd_create("oxydra-shell-spec", os.MFD_CLOEXEC)
    pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, report
    feed = os.pipe() if stdin else None  # the command reads [0], the agent writes [1]
    sent = [spec_fd, *(w for _, w in pipes), *(feed[:1] if feed else ())]
    try:
        os.write(spec_fd, payload)  # a memfd never writes short
        try:
            socket.send_fds(server.socket, [REQUEST_STDIN if feed else REQUEST], sent)
        except OSError:
            for read_end, _ in pipes:
                os.close(read_end)
            if feed:
                os.close(feed[1])
            return None
    finally:
        for fd in sent:
            os.close(fd)
    (out_r, _), (err_r, _), (report_r, _) = pipes
    report = _Report(loop, report_r)
    files = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
    readers: list[asyncio.StreamReader] = []
    transports: list[asyncio.BaseTransport] = []
    pid: int | None = None
    try:
        for file in files:
            reader = asyncio.StreamReader(limit=1 << 20)
            protocol = asyncio.StreamReaderProtocol(reader)
            pipe, _ = await loop.connect_read_pipe(lambda p=protocol: p, file)  # type: ignore[misc]
            readers.append(reader)
            transports.append(pipe)
        pid = await asyncio.shield(report.pid)
    except BaseException:  # cancelled: the command may start anyway, so stop it if it does
        report.pid.add_done_callback(_stop_started)
        raise
    finally:
        if pid is None:
            for transport in transports:
                transport.close()
            for file in files[len(transports) :]:
                file.close()
    if pid is None:
        if feed:
            os.close(feed[1])
        return None
    writer = None
    if feed:
        writer = await _writer(loop, os.fdopen(feed[1], "wb", buffering=0))
        transports.append(writer.transport)
    process = ConfinedProcess(pid, readers[0], readers[1], transports, report.done)
    process.stdin = writer
    return process


async def _writer(loop: asyncio.AbstractEventLoop, file: Any) -> asyncio.StreamWriter:
    """An asyncio writer on the agent's end of the command's stdin pipe."""
    protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader())
    transport, _ = await loop.connect_write_pipe(lambda: protocol, file)
    return asyncio.StreamWriter(transport, protocol, None, loop)


def _stop_started(pid: asyncio.Future[int | None]) -> None:
    started = None if pid.cancelled() else pid.result()
    if started is not None:
        with contextlib.suppress(OSError):
            os.kill(started, signal.SIGTERM)


class _Report:
    """The report pipe: `<pid>` then `exit <code>`; EOF before the exit means killed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.fd = fd
        self.loop = loop
        self.pid: asyncio.Future[int | None] = loop.create_future()
        self.done: asyncio.Future[int] = loop.create_future()
        self.buffer = b""
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 256)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.buffer += data
        lines = self.buffer.split(b"\n")
        if not self.pid.done() and len(lines) > 1:
            self.pid.set_result(int(lines[0]))
        if not self.done.done() and len(lines) > 2 and lines[1].startswith(b"exit "):
            self.done.set_result(int(lines[1][5:]))
        if not data:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            if not self.pid.done():
                self.pid.set_result(None)
            if not self.done.done():
                self.done.set_result(_KILLED)
