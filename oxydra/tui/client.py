"""A gateway client that reconnects by itself and never loses a frame.

It keeps the last sequence number seen per session, and the `epoch` it belongs to, and
sends both in `hello` when it reconnects, so the server replays exactly what was missed. An
ack with another epoch (the `vm` restarted, or evicted the idle session) starts the count
again from 0: the old numbers mean nothing there. A create-session hello keeps its
`request_id` until acknowledged, so a retry after a timeout never creates a second session.
Reconnects back off exponentially (base 250 ms, cap 5 s) with jitter drawn uniformly from
[d/2, d], as the Rust TUI does. Frames go to the application through a queue; connection
changes arrive there too, as `ConnectionState` items.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable
from typing import Literal

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from oxydra.core.errors import ConfigError, GatewayError
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    ErrorFrame,
    Hello,
    HelloAck,
    ServerFrame,
    SessionCreated,
    SessionSwitched,
    TaggedFrame,
    decode_server_frame,
    encode_frame,
)

State = Literal["connecting", "connected", "disconnected", "refused"]


class ConnectionState(msgspec.Struct, frozen=True):
    """The client's link changed."""

    state: State
    detail: str = ""
    retry_in: float | None = None


def backoff_delays(
    base: float = 0.25, cap: float = 5.0, rand: Callable[[float, float], float] = random.uniform
) -> Callable[[int], float]:
    """Delay before reconnect attempt n (0-based): exponential, capped, jittered in [d/2, d]."""

    def delay(attempt: int) -> float:
        d = min(cap, base * (2**attempt))
        return rand(d / 2, d)

    return delay


class GatewayClient:
    """Connects, says hello, and keeps going until closed."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        user_id: str,
        session_id: str | None = None,
        *,
        create_new_session: bool = False,
        delay: Callable[[int], float] | None = None,
        rediscover: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._rediscover = rediscover
        self.token = token
        self.user_id = user_id
        self.session_id = session_id
        self.create_new_session = create_new_session
        self.events: asyncio.Queue[ServerFrame | ConnectionState] = asyncio.Queue()
        self.last_seq: dict[str, int] = {}
        self.epochs: dict[str, str] = {}
        self._hello_id = uuid.uuid4().hex
        self._delay = delay or backoff_delays()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._run(), name="gateway-client")

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def send(self, frame: TaggedFrame) -> None:
        """Send a frame now; raises GatewayError when not connected."""
        if self._ws is None:
            raise GatewayError("not connected to the gateway")
        try:
            await self._ws.send(encode_frame(frame).decode())
        except ConnectionClosed as exc:
            raise GatewayError("the connection to the gateway closed") from exc

    async def connect_once(self) -> HelloAck:
        """Connect and handshake once (for probes); raises GatewayError on failure."""
        ack = await self._open()
        return ack

    async def _open(self) -> HelloAck:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            ws = await connect(
                self.endpoint, additional_headers=headers, open_timeout=5, max_size=64 * 2**20
            )
        except InvalidStatus as exc:
            raise GatewayError(
                f"gateway refused the connection: HTTP {exc.response.status_code}"
            ) from exc
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise GatewayError(f"cannot reach the gateway at {self.endpoint}: {exc}") from exc
        hello = Hello(
            request_id=self._hello_id,
            protocol_version=PROTOCOL_VERSION,
            user_id=self.user_id,
            session_id=self.session_id,
            create_new_session=self.create_new_session and self.session_id is None,
            last_seq=self.last_seq.get(self.session_id or ""),
            epoch=self.epochs.get(self.session_id or ""),
        )
        try:
            await ws.send(encode_frame(hello).decode())
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 5))
        except (ConnectionClosed, TimeoutError, GatewayError) as exc:
            await ws.close()
            raise GatewayError(f"no hello_ack from the gateway: {exc}") from exc
        if isinstance(frame, ErrorFrame):
            await ws.close()
            raise GatewayError(f"gateway refused hello: {frame.message}")
        if not isinstance(frame, HelloAck):
            await ws.close()
            raise GatewayError(f"expected hello_ack, got {type(frame).__name__}")
        self._ws = ws
        self._hello_id = uuid.uuid4().hex
        self._remember(frame)
        return frame

    def _remember(self, frame: ServerFrame) -> None:
        if isinstance(frame, HelloAck | SessionSwitched | SessionCreated):
            # Acks name the session and its current number, but are not logged frames:
            # counting their seq as seen would skip the catch-up replay that follows.
            key = self.session_id = frame.session.session_id
            self.create_new_session = False
            if frame.epoch is not None and self.epochs.get(key) != frame.epoch:
                self.epochs[key] = frame.epoch
                self.last_seq[key] = 0
            return
        seq = getattr(frame, "seq", None)
        session = getattr(frame, "session", None)
        if seq is not None and session is not None:
            key = session.session_id
            self.last_seq[key] = max(seq, self.last_seq.get(key, 0))

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            await self.events.put(ConnectionState("connecting"))
            try:
                ack = await self._open()
            except GatewayError as exc:
                self._follow_restart()
                wait = self._delay(attempt)
                attempt += 1
                await self.events.put(ConnectionState("disconnected", str(exc), wait))
                await asyncio.sleep(wait)
                continue
            attempt = 0
            await self.events.put(ConnectionState("connected"))
            await self.events.put(ack)
            await self._read()
            self._ws = None

    def _follow_restart(self) -> None:
        """A restarted vm listens on a new port with a new token: look them up again."""
        if self._rediscover is None:
            return
        try:
            self.endpoint, self.token = self._rediscover()
        except (ConfigError, OSError):
            pass  # not back yet: the next attempt looks again

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    frame = decode_server_frame(raw)
                except GatewayError:
                    continue
                seq = getattr(frame, "seq", None)
                session = getattr(frame, "session", None)
                if seq is not None and session is not None:
                    if seq <= self.last_seq.get(session.session_id, 0):
                        continue  # already seen: never show a frame twice
                self._remember(frame)
                await self.events.put(frame)
        except ConnectionClosed:
            pass
