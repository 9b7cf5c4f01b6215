"""The control socket at the wire: framing, bad frames, the blocking client."""

from __future__ import annotations

import asyncio
import contextlib
import stat
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.core.errors import RunnerError
from oxydra.runner._control import ControlServer, control_request, daemon_alive
from oxydra.wire.control import (
    MAX_CONTROL_FRAME_BYTES,
    ControlError,
    ControlHealth,
    ControlRequest,
    ControlResponse,
    HealthCheckRequest,
    LogsRequest,
    LogsResponse,
    ShutdownStatus,
    ShutdownUser,
    decode_control_request,
    decode_control_response,
    encode_control_request,
    encode_control_response,
)
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed

HEALTH = ControlHealth(
    user_id="alice",
    healthy=True,
    sandbox_tier="process",
    shell_available=True,
    browser_available=False,
    shutdown=False,
    hardening=["landlock"],
)


async def handler(request: ControlRequest) -> ControlResponse:
    match request:
        case HealthCheckRequest():
            return HEALTH
        case ShutdownUser():
            return ShutdownStatus(user_id=request.user_id, shutdown=True)
        case LogsRequest():
            raise RuntimeError("disk on fire")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ControlServer]:
    srv = ControlServer(tmp_path / "runner-control.sock", handler)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = LengthPrefixedDecoder(MAX_CONTROL_FRAME_BYTES)
        self.frames: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> ControlResponse | None:
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                return None
            self.frames += self.decoder.feed(data)
        return decode_control_response(self.frames.pop(0))


_open: list[RawConnection] = []


async def connect(server: ControlServer) -> RawConnection:
    conn = RawConnection(*await asyncio.open_unix_connection(str(server.path)))
    _open.append(conn)
    return conn


@pytest.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    yield
    while _open:
        conn = _open.pop()
        conn.writer.close()
        with contextlib.suppress(ConnectionError):
            await conn.writer.wait_closed()


class TestServer:
    async def test_the_socket_is_private(self, server: ControlServer) -> None:
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o600

    async def test_requests_on_one_connection_are_answered_in_order(
        self, server: ControlServer
    ) -> None:
        conn = await connect(server)
        await conn.send(
            encode_length_prefixed(encode_control_request(HealthCheckRequest()), 1 << 20)
            + encode_length_prefixed(encode_control_request(ShutdownUser(user_id="a")), 1 << 20)
        )
        assert await conn.answer() == HEALTH
        assert await conn.answer() == ShutdownStatus(user_id="a", shutdown=True)

    @pytest.mark.parametrize(
        ("payload", "needle"),
        [
            (b"not json", "JSON"),
            (b'{"op": "reboot_host", "payload": {}}', "unknown request frame op 'reboot_host'"),
            (b'{"op": "shutdown_user", "payload": {}}', "user_id"),
            (b'{"op": "logs", "payload": {"role": "kernel"}}', "invalid logs frame"),
            (b'{"op": "health_check", "payload": {}, "extra": 1}', "JSON"),
            (b'{"op": "logs", "payload": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nests deeper"),
        ],
    )
    async def test_a_malformed_frame_gets_invalid_request_and_the_connection_survives(
        self, server: ControlServer, payload: bytes, needle: str
    ) -> None:
        conn = await connect(server)
        await conn.send(encode_length_prefixed(payload, 1 << 20))
        answer = await conn.answer()
        assert isinstance(answer, ControlError) and answer.code == "invalid_request"
        assert needle in answer.message
        await conn.send(
            encode_length_prefixed(encode_control_request(HealthCheckRequest()), 1 << 20)
        )
        assert await conn.answer() == HEALTH

    async def test_an_oversized_header_is_refused_and_the_connection_closed(
        self, server: ControlServer
    ) -> None:
        conn = await connect(server)
        await conn.send(struct.pack(">I", MAX_CONTROL_FRAME_BYTES + 1))
        answer = await conn.answer()
        assert isinstance(answer, ControlError) and "limit" in answer.message
        assert await conn.answer() is None

    async def test_eof_inside_a_frame_closes_without_an_answer(self, server: ControlServer) -> None:
        conn = await connect(server)
        await conn.send(struct.pack(">I", 50) + b'{"op"')
        conn.writer.write_eof()
        assert await conn.answer() is None
        # the server goes on serving others
        fresh = await connect(server)
        await fresh.send(
            encode_length_prefixed(encode_control_request(HealthCheckRequest()), 1 << 20)
        )
        assert await fresh.answer() == HEALTH

    async def test_a_failing_handler_becomes_an_internal_error(self, server: ControlServer) -> None:
        conn = await connect(server)
        await conn.send(encode_length_prefixed(encode_control_request(LogsRequest()), 1 << 20))
        answer = await conn.answer()
        assert isinstance(answer, ControlError) and answer.code == "internal"
        assert "disk on fire" in answer.message

    async def test_close_removes_the_socket_and_ends_open_connections(self, tmp_path: Path) -> None:
        srv = ControlServer(tmp_path / "c.sock", handler)
        await srv.start()
        conn = await connect(srv)
        await conn.send(
            encode_length_prefixed(encode_control_request(HealthCheckRequest()), 1 << 20)
        )
        assert await conn.answer() == HEALTH
        await srv.close()
        assert not srv.path.exists()
        assert await conn.answer() is None


class TestClient:
    async def test_the_blocking_client_round_trips(self, server: ControlServer) -> None:
        answer = await asyncio.to_thread(control_request, server.path, HealthCheckRequest())
        assert answer == HEALTH
        assert await asyncio.to_thread(daemon_alive, server.path)

    def test_no_socket_means_server_not_running(self, tmp_path: Path) -> None:
        with pytest.raises(RunnerError, match="server not running"):
            control_request(tmp_path / "none.sock", HealthCheckRequest())
        assert not daemon_alive(tmp_path / "none.sock")

    async def test_a_socket_path_longer_than_sun_path_still_works(self, tmp_path: Path) -> None:
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        deep.mkdir(parents=True)
        srv = ControlServer(deep / "runner-control.sock", handler)
        await srv.start()
        try:
            assert len(str(srv.path)) > 108
            answer = await asyncio.to_thread(control_request, srv.path, HealthCheckRequest())
            assert answer == HEALTH
        finally:
            await srv.close()


class TestFrames:
    @pytest.mark.parametrize(
        "frame",
        [
            HealthCheckRequest(),
            ShutdownUser(user_id="u"),
            LogsRequest(role="all", tail=5, since="x"),
        ],
        ids=lambda f: f.TYPE,
    )
    def test_requests_round_trip(self, frame: ControlRequest) -> None:
        assert decode_control_request(encode_control_request(frame)) == frame

    @pytest.mark.parametrize(
        "frame",
        [HEALTH, ShutdownStatus(user_id="u", shutdown=True), LogsResponse(entries=[]),
         ControlError(code="unknown_user", message="m")],
        ids=lambda f: f.TYPE,
    )  # fmt: skip
    def test_responses_round_trip(self, frame: ControlResponse) -> None:
        assert decode_control_response(encode_control_response(frame)) == frame

    def test_health_check_is_a_unit_request_as_upstream_sends_it(self) -> None:
        assert decode_control_request(b'{"op": "health_check"}') == HealthCheckRequest()
