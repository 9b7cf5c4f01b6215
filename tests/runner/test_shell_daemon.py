"""The shell daemon over a real Unix socket, in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.security._landlock import landlock_abi
from oxydra.wire import shell
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed


class RawClient:
    """Speaks the framed protocol by hand, as any client would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = LengthPrefixedDecoder(shell.MAX_SHELL_FRAME_BYTES)
        self.pending: list[bytes] = []
        self.n = 0

    async def raw(self, payload: bytes) -> Any:
        self.writer.write(encode_length_prefixed(payload, shell.MAX_SHELL_FRAME_BYTES))
        await self.writer.drain()
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 20)
            if not data:
                raise ConnectionError("daemon closed the connection")
            self.pending += self.decoder.feed(data)
        return shell.decode_shell_response(self.pending.pop(0))

    async def call(self, frame: Any) -> Any:
        return await self.raw(shell.encode_shell_frame(frame))

    def rid(self) -> str:
        self.n += 1
        return f"r{self.n}"

    async def spawn(self, **kw: Any) -> str:
        reply = await self.call(shell.SpawnSession(request_id=self.rid(), **kw))
        assert isinstance(reply, shell.SessionSpawned), reply
        return reply.session_id

    async def run(self, sid: str, command: str, timeout: int = 20) -> tuple[list[Any], Any]:
        accepted = await self.call(
            shell.ExecCommand(
                request_id=self.rid(), session_id=sid, command=command, timeout_secs=timeout
            )
        )
        assert isinstance(accepted, shell.CommandAccepted) and accepted.accepted
        chunks = []
        while True:
            chunk = await self.call(
                shell.StreamOutput(request_id=self.rid(), session_id=sid, wait_ms=5000)
            )
            assert isinstance(chunk, shell.OutputChunk), chunk
            if chunk.eof:
                return chunks, chunk
            if chunk.data:
                chunks.append(chunk)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Path]:
    sock = tmp_path / "shell.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oxydra",
            "shell-daemon",
            "--socket",
            str(sock),
            "--writable",
            str(tmp_path),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = await asyncio.to_thread(proc.stderr.readline)
    assert "listening" in line
    yield sock
    proc.terminate()
    proc.wait(10)
    proc.stderr.close()
    assert not sock.exists(), "the daemon removes its socket on exit"


@pytest.fixture
async def client(daemon: Path) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_unix_connection(str(daemon))
    yield RawClient(reader, writer)
    writer.close()
    await writer.wait_closed()


async def test_output_and_exit_status_are_reported(client: RawClient) -> None:
    sid = await client.spawn()
    chunks, last = await client.run(sid, "echo out; echo err >&2; exit 3")
    assert "".join(c.data for c in chunks if c.stream == "stdout") == "out\n"
    assert "".join(c.data for c in chunks if c.stream == "stderr") == "err\n"
    assert last.exit_code == 3 and not last.timed_out


async def test_output_streams_while_the_command_still_runs(
    client: RawClient, tmp_path: Path
) -> None:
    sid = await client.spawn()
    gate = tmp_path / "gate"
    command = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second"
    await client.call(
        shell.ExecCommand(request_id="e", session_id=sid, command=command, timeout_secs=20)
    )
    first = await client.call(shell.StreamOutput(request_id="s", session_id=sid, wait_ms=10_000))
    assert first.data == "first\n" and not first.eof  # the command is blocked on the gate
    gate.touch()
    rest = []
    while True:
        chunk = await client.call(
            shell.StreamOutput(request_id="s", session_id=sid, wait_ms=10_000)
        )
        if chunk.eof:
            break
        rest.append(chunk.data)
    assert "".join(rest) == "second\n" and chunk.exit_code == 0


async def test_a_timeout_kills_the_whole_process_group(client: RawClient, tmp_path: Path) -> None:
    sid = await client.spawn()
    pidfile = tmp_path / "child.pid"
    _, last = await client.run(sid, f"sleep 60 & echo $! > {pidfile}; wait", timeout=1)
    assert last.timed_out and last.exit_code is not None and last.exit_code < 0
    child = int(pidfile.read_text())
    async with asyncio.timeout(10):  # the kill is sent; wait for it to land, not a fixed time
        while _alive(child):
            await asyncio.sleep(0.01)


async def test_kill_session_stops_a_running_command(client: RawClient, tmp_path: Path) -> None:
    sid = await client.spawn(cwd=str(tmp_path))
    await client.call(
        shell.ExecCommand(request_id="e", session_id=sid, command="sleep 60; echo no")
    )
    killed = await client.call(shell.KillSession(request_id="k", session_id=sid))
    assert isinstance(killed, shell.SessionKilled) and killed.killed
    gone = await client.call(shell.StreamOutput(request_id="s", session_id=sid))
    assert isinstance(gone, shell.ShellError)


async def test_sessions_keep_their_cwd_and_env(client: RawClient, tmp_path: Path) -> None:
    sid = await client.spawn(cwd=str(tmp_path), env={"GREETING": "hej"})
    chunks, _ = await client.run(sid, 'pwd; echo "$GREETING"')
    assert "".join(c.data for c in chunks) == f"{tmp_path}\nhej\n"


async def test_many_sessions_run_concurrently(daemon: Path) -> None:
    async def one(i: int) -> str:
        reader, writer = await asyncio.open_unix_connection(str(daemon))
        c = RawClient(reader, writer)
        sid = await c.spawn()
        chunks, last = await c.run(sid, f"sleep 0.2; echo {i}")
        writer.close()
        await writer.wait_closed()
        assert last.exit_code == 0
        return "".join(x.data for x in chunks)

    results = await asyncio.gather(*(one(i) for i in range(20)))
    assert results == [f"{i}\n" for i in range(20)]


async def test_large_output_comes_in_bounded_chunks_and_is_capped(client: RawClient) -> None:
    sid = await client.spawn()
    chunks, last = await client.run(sid, "head -c 3000000 /dev/zero | tr '\\0' 'x'")
    assert all(len(c.data) <= 8192 for c in chunks)
    text = "".join(c.data for c in chunks)
    assert text.count("x") == 1024 * 1024 and "[output truncated at 1048576 bytes]" in text
    assert last.exit_code == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"op":"format_disk","payload":{}}',
        b'{"op":"exec_command","payload":{"request_id":"q"}}',
        b'{"op":"exec_command","payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_stays(
    client: RawClient, payload: bytes
) -> None:
    reply = await client.raw(payload)
    assert isinstance(reply, shell.ShellError)
    assert isinstance(await client.call(shell.SpawnSession(request_id="ok")), shell.SessionSpawned)


async def test_unknown_session_is_an_error(client: RawClient) -> None:
    reply = await client.call(
        shell.ExecCommand(request_id="x", session_id="session-999999", command="ls")
    )
    assert isinstance(reply, shell.ShellError) and "unknown session" in reply.message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().split()
    return stat[2] != "Z"


async def test_a_setsid_helper_dies_with_its_command(client: RawClient, tmp_path: Path) -> None:
    sid = await client.spawn(cwd=str(tmp_path))
    command = "setsid -f sh -c 'echo $$ > helper.pid; exec sleep 300'; sleep 0.3; echo ok"
    _, last = await client.run(sid, command)
    assert last.exit_code == 0
    helper = int((tmp_path / "helper.pid").read_text())
    for _ in range(200):
        if not _alive(helper):
            break
        await asyncio.sleep(0.05)
    assert not _alive(helper)


@pytest.mark.skipif(landlock_abi()[0] <= 0, reason="this kernel has no Landlock")
async def test_commands_cannot_write_outside_the_writable_dirs(
    client: RawClient, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    sid = await client.spawn(cwd=str(tmp_path))
    chunks, _last = await client.run(sid, f"echo x > {outside}/f; cat /proc/$PPID/environ")
    assert not (outside / "f").exists()
    assert "Permission denied" in "".join(c.data for c in chunks)


async def test_without_a_sandbox_every_command_is_refused_with_the_reason() -> None:
    from oxydra.runner.shell_daemon import ShellDaemon

    daemon = ShellDaemon(None, "off: the kernel has no Landlock")
    spawned = await daemon.handle(shell.SpawnSession(request_id="s"))
    assert isinstance(spawned, shell.SessionSpawned)
    refused = await daemon.handle(
        shell.ExecCommand(request_id="e", session_id=spawned.session_id, command="id")
    )
    assert isinstance(refused, shell.ShellError)
    assert refused.message == "shell off: the kernel has no Landlock"
