"""`runner logs -f` when the daemon stops while a poll waits for its answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.core.errors import RunnerError
from oxydra.core.unixpath import unix_socket_path
from oxydra.runner import cli
from oxydra.runner._config import load_context
from oxydra.runner._workspace import UserWorkspace, provision
from oxydra.wire.control import (
    MAX_CONTROL_FRAME_BYTES,
    LogsRequest,
    LogsResponse,
    encode_control_response,
)
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed

REQUEST = LogsRequest(tail=10)


class Daemon:
    """A control socket that answers `answered` log requests, then cuts the next one off
    unanswered: as `runner stop` does to a poll queued behind it for the daemon's lock.
    With `stops`, it also stops listening (the daemon is gone); else it keeps listening."""

    def __init__(self, path: Path, *, answered: int, stops: bool) -> None:
        self.path, self.answered, self.stops = path, answered, stops
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with unix_socket_path(str(path)) as reachable:
            self.listener.bind(reachable)
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for count in range(self.answered + 1):
            conn, _ = self.listener.accept()
            with conn:
                decoder = LengthPrefixedDecoder(MAX_CONTROL_FRAME_BYTES)
                while not decoder.feed(conn.recv(65536)):
                    pass
                if count == self.answered:
                    if self.stops:
                        self.close()
                    return
                payload = encode_control_response(LogsResponse(entries=[]))
                conn.sendall(encode_length_prefixed(payload, MAX_CONTROL_FRAME_BYTES))

    def close(self) -> None:
        self.listener.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UserWorkspace]:
    monkeypatch.setattr(cli, "FOLLOW_POLL_SECS", 0.01)
    yield provision(tmp_path / "users" / "alice")


def test_a_poll_cut_off_by_the_stopping_daemon_ends_the_follow_cleanly(
    tmp_path: Path, workspace: UserWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = Daemon(workspace.control_socket, answered=2, stops=True)
    ctx = load_context(user="alice", cwd=tmp_path, home=tmp_path)
    assert cli._follow(ctx, workspace, REQUEST, set(), live=True) == 0
    daemon.thread.join(10)
    assert "(daemon exited)" in capsys.readouterr().err


def test_a_daemon_still_listening_after_breaking_a_poll_is_an_error(
    tmp_path: Path, workspace: UserWorkspace
) -> None:
    daemon = Daemon(workspace.control_socket, answered=1, stops=False)
    ctx = load_context(user="alice", cwd=tmp_path, home=tmp_path)
    try:
        with pytest.raises(RunnerError, match="without answering"):
            cli._follow(ctx, workspace, REQUEST, set(), live=True)
    finally:
        daemon.thread.join(10)
        daemon.close()
