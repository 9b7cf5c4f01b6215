"""The WebSocket face of the gateway: `/ws`, bearer tokens, origin checks, frame dispatch.

Authentication happens before the upgrade: `Authorization: Bearer <token>` (never a token in
the URL), matched in constant time against the per-user tokens; the token decides the user,
and a `hello` naming another user is refused. A browser `Origin` must be allowed explicitly,
so a web page cannot drive a local gateway with a token it obtained (CVE-2026-25253 class).
A malformed frame gets an error frame; the connection stays up.

Beside `/ws`, an optional `HttpFront` (the web page, `oxydra.web`) answers plain HTTP requests
on the same port and signs browsers in with a session cookie; a browser's `/ws` upgrade is
then let in by that cookie, only from the page's own origin.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol, assert_never

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from oxydra.core.errors import GatewayError, OxydraError
from oxydra.core.log import get_logger
from oxydra.core.messages import MediaPart
from oxydra.gateway._hub import SessionChannel, Subscriber
from oxydra.gateway.core import GatewayCore, RefusedError
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    ApprovalResponse,
    ArchiveSession,
    CancelActiveTurn,
    CancelAllActiveTurns,
    ChannelStatus,
    ClientFrame,
    CreateSession,
    DeleteSession,
    ErrorFrame,
    ExportSession,
    FrameError,
    HealthCheck,
    HealthStatus,
    Hello,
    HelloAck,
    ListSessions,
    RenameSession,
    SendTurn,
    SessionCreated,
    SessionDeleted,
    SessionExport,
    SessionList,
    SessionSwitched,
    SessionUpdated,
    SwitchSession,
    TaggedFrame,
    UnarchiveSession,
    decode_client_frame,
    encode_frame,
)

_log = get_logger(__name__)

HELLO_TIMEOUT_SECS = 30
MAX_FRAME_BYTES = 64 * 1024 * 1024
CLOSE_LAGGING = 4008
LAGGING_CLOSE_SECS = 120
MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES, MAX_TOTAL_BYTES = 4, 10 * 2**20, 40 * 2**20


class HttpFront(Protocol):
    """Plain HTTP beside `/ws` on the gateway's port, and browser sign-in (the web page)."""

    def respond(self, request: Request, peer: str) -> Awaitable[Response]:
        """The answer to any request whose path is not `/ws`."""
        ...

    def browser_user(self, request: Request) -> str | None:
        """The user a browser's `/ws` upgrade is signed in as (cookie and own origin), or None."""
        ...

    def own_origin(self, request: Request) -> bool:
        """Whether the request's `Origin` is the page's own (so a browser may use `/ws`)."""
        ...


class GatewayServer:
    """Serves the gateway protocol over WebSocket for one `GatewayCore`."""

    def __init__(
        self,
        core: GatewayCore,
        tokens: Mapping[str, str],
        *,
        allowed_origins: list[str] | None = None,
        startup_status: dict[str, Any] | None = None,
        front: HttpFront | None = None,
        channel_health: Callable[[], Awaitable[dict[str, ChannelStatus]]] | None = None,
    ) -> None:
        self.core = core
        self.front = front
        self.channel_health = channel_health  # the vm's chat channels, for `health_status`
        self._tokens = dict(tokens)  # token -> user id
        self.allowed_origins = set(allowed_origins or [])
        self.startup_status = startup_status
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address."""
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._check_request,
            max_size=MAX_FRAME_BYTES,
            ping_interval=20,
            ping_timeout=20,
        )
        sock = next(iter(self._server.sockets))
        address = sock.getsockname()
        return address[0], address[1]

    async def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def user_for(self, headers: Headers) -> str | None:
        """The user a request's bearer token belongs to, or None."""
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                found = user
        return found

    def connecting_user(self, request: Request) -> str | None:
        """Who an upgrade to `/ws` authenticates as: a bearer token, else a browser's cookie."""
        user = self.user_for(request.headers)
        if user is None and self.front is not None:
            user = self.front.browser_user(request)
        return user

    def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response] | None:
        if request.path.split("?", 1)[0] != "/ws":
            if self.front is None:
                return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
            peer = connection.remote_address
            return self.front.respond(request, str(peer[0]) if peer else "")
        if request.method != "GET":
            return connection.respond(HTTPStatus.METHOD_NOT_ALLOWED, "use GET to upgrade\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.allowed_origins:
            if self.front is None or not self.front.own_origin(request):
                return connection.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        if self.connecting_user(request) is None:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bearer token required\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        user_id = self.connecting_user(ws.request) if ws.request else None
        if user_id is None:  # the browser session ended between the check and now
            await ws.close(1008, "signed out")
            return
        by_cookie = ws.request is not None and self.user_for(ws.request.headers) is None
        conn = _Connection(self, ws, user_id, by_cookie=by_cookie)
        try:
            await conn.run()
        except ConnectionClosed:
            pass
        finally:
            conn.detach()


class _Connection:
    """One client connection: handshake, then frames in and session frames out."""

    def __init__(
        self, server: GatewayServer, ws: ServerConnection, user_id: str, *, by_cookie: bool = False
    ) -> None:
        self.server, self.core, self.ws, self.user_id = server, server.core, ws, user_id
        self.by_cookie = by_cookie  # a browser: its sign-in is checked again on every frame
        self.channel: SessionChannel | None = None
        self.subscriber: Subscriber | None = None
        self.pump: asyncio.Task[None] | None = None

    async def send(self, frame: TaggedFrame) -> None:
        await self.ws.send(encode_frame(frame).decode())

    async def error(self, message: str, request_id: str | None = None, code: str = "") -> None:
        session = self.channel.ref if self.channel else None
        await self.send(
            ErrorFrame(message=message, request_id=request_id, session=session, code=code or None)
        )

    async def run(self) -> None:
        hello = await self._handshake()
        if hello is None:
            return
        async for raw in self.ws:
            if self.by_cookie and not self._still_signed_in():
                await self.ws.close(1008, "signed out")
                return
            try:
                frame = decode_client_frame(raw)
            except FrameError as exc:
                await self.error(str(exc), exc.request_id, "bad_frame")
                continue
            try:
                await self._dispatch(frame)
            except OxydraError as exc:  # a refusal, or the store failing: said, not a drop
                default = "refused" if isinstance(exc, GatewayError) else "internal"
                await self.error(
                    str(exc), getattr(frame, "request_id", None), getattr(exc, "code", default)
                )

    def _still_signed_in(self) -> bool:
        """A browser's session may have ended (sign-out, expiry) since it connected."""
        front, request = self.server.front, self.ws.request
        return front is not None and request is not None and front.browser_user(request) is not None

    async def _handshake(self) -> Hello | None:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), HELLO_TIMEOUT_SECS)
            frame = decode_client_frame(raw)
        except TimeoutError:
            await self._refuse("expected hello as first frame (none within 30 s)")
            return None
        except FrameError as exc:
            await self._refuse(f"expected hello as first frame: {exc}", exc.request_id)
            return None
        if not isinstance(frame, Hello):
            await self._refuse("expected hello as first frame", getattr(frame, "request_id", None))
            return None
        if frame.protocol_version != PROTOCOL_VERSION:
            await self._refuse(
                f"unsupported protocol version {frame.protocol_version} "
                f"(this gateway speaks {PROTOCOL_VERSION})",
                frame.request_id,
            )
            return None
        if frame.user_id != self.user_id:
            await self._refuse("hello names a user this token does not belong to", frame.request_id)
            return None
        try:
            channel = await self.core.open_session(
                self.user_id,
                frame.session_id,
                create_new=frame.create_new_session,
                request_id=frame.request_id,
            )
        except OxydraError as exc:
            await self._refuse(exc.message, frame.request_id)
            return None
        request_id = frame.request_id
        await self._attach(
            channel,
            frame.last_seq,
            lambda c: HelloAck(
                request_id=request_id,
                protocol_version=PROTOCOL_VERSION,
                session=c.ref,
                active_turn=c.active_turn,
                seq=c.seq,
                epoch=c.epoch,
            ),
            frame.epoch,
        )
        await self.core.deliver_pending(channel)
        return frame

    async def _refuse(self, message: str, request_id: str | None = None) -> None:
        await self.error(message, request_id, "handshake")
        await self.ws.close(1008, message[:120])

    async def _attach(
        self,
        channel: SessionChannel,
        last_seq: int | None,
        ack: Callable[[SessionChannel], TaggedFrame],
        epoch: str | None = None,
    ) -> None:
        """Follow `channel`: acknowledge, replay what the client missed, then stream live."""
        self.detach()
        await self.core.caught_up(channel, last_seq, epoch)
        self.channel = channel
        subscriber, replay, gap = self.core.subscribe(channel, last_seq, epoch)
        self.subscriber = subscriber
        await self.send(ack(channel))
        if gap:
            await self.error(
                "some frames are no longer kept; replaying what is", None, "replay_gap"
            )
        for data in replay:
            await self.ws.send(data.decode())
        self.pump = asyncio.create_task(self._pump(subscriber))

    async def _pump(self, subscriber: Subscriber) -> None:
        """Send the subscriber's frames in order until the connection or subscription ends.

        A subscriber that overflowed gets what it had queued, then a 4008 close.
        """
        queue = subscriber.queue
        try:
            while True:
                if subscriber.overflowed.is_set() and queue.empty():
                    await self._close_lagging()
                    return
                first = await queue.get()
                if queue.empty():
                    await self.ws.send(first, text=True)  # frames are UTF-8 JSON already
                    continue
                burst = [first]
                while not queue.empty():
                    burst.append(queue.get_nowait())
                await self._send_burst(burst)
        except ConnectionClosed:
            return

    async def _send_burst(self, frames: list[bytes]) -> None:
        """Send frames published together (the deltas of one network chunk) in one write.

        One socket write instead of one per frame: the client wakes once for the burst, and
        the turn's stream is not held up by a system call per delta. Each frame stays its
        own WebSocket message, in order.
        """
        ws = self.ws
        async with ws.send_context():
            for data in frames:
                ws.protocol.send_text(data)
            ws.transport.write(b"".join(ws.protocol.data_to_send()))

    async def _close_lagging(self) -> None:
        """Close with 4008 so the client reconnects with `last_seq` and is replayed the rest.

        The close frame queues behind what is already buffered for the slow client, so it is
        given `LAGGING_CLOSE_SECS` to read up to it before the connection is dropped.
        """
        self.ws.close_timeout = LAGGING_CLOSE_SECS
        await self.ws.close(CLOSE_LAGGING, "too slow: reconnect with last_seq")

    def detach(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            self.pump = None
        if self.channel is not None and self.subscriber is not None:
            self.channel.unsubscribe(self.subscriber)
        self.subscriber = None

    async def _dispatch(self, frame: ClientFrame) -> None:
        channel = self.channel
        assert channel is not None
        match frame:
            case SendTurn():
                self._check_session(frame.session_id)
                parts = _validated_attachments(frame)
                self.core.submit_turn(
                    channel,
                    frame.request_id,
                    frame.turn_id,
                    frame.prompt,
                    parts,
                    owner=self,
                    traceparent=frame.traceparent,
                )
            case CancelActiveTurn():
                self._check_session(frame.session_id)
                self.core.cancel(channel, frame.turn_id)
            case CancelAllActiveTurns():
                self.core.cancel_all(self.user_id)
            case HealthCheck():
                await self.send(
                    HealthStatus(
                        request_id=frame.request_id,
                        healthy=True,
                        session=channel.ref,
                        active_turn=channel.active_turn,
                        startup_status=self.server.startup_status,
                        message="tui gateway ready",
                        taint=await self.core.taint_sources(channel),
                        channels=await self.server.channel_health()
                        if self.server.channel_health is not None
                        else None,
                    )
                )
            case CreateSession():
                new = await self.core.open_session(
                    self.user_id,
                    create_new=True,
                    agent_name=frame.agent_name,
                    display_name=frame.display_name,
                    request_id=frame.request_id,
                    left=channel.session_id,
                )
                request_id = frame.request_id
                await self._attach(
                    new,
                    None,
                    lambda c: SessionCreated(
                        request_id=request_id,
                        session=c.ref,
                        agent_name=c.agent_name,
                        display_name=c.display_name,
                        epoch=c.epoch,
                    ),
                )
            case ListSessions():
                sessions = await self.core.list_sessions(
                    self.user_id, frame.include_archived, frame.include_subagent_sessions
                )
                await self.send(SessionList(request_id=frame.request_id, sessions=sessions))
            case SwitchSession():
                target = await self.core.resolve(self.user_id, frame.session_id)
                request_id = frame.request_id
                await self._attach(
                    target,
                    None,
                    lambda c: SessionSwitched(
                        request_id=request_id,
                        session=c.ref,
                        active_turn=c.active_turn,
                        seq=c.seq,
                        epoch=c.epoch,
                    ),
                )
            case ApprovalResponse():
                answer = self.core.approvals.answer(
                    self.user_id, frame.approval_id, frame.approved, answerer=self
                )
                if answer == "unknown":
                    raise RefusedError(
                        f"no pending approval `{frame.approval_id}`", "unknown_approval"
                    )
                if answer == "not_owner":
                    raise RefusedError(
                        "only the client that started the turn may answer its approvals",
                        "approval_not_owner",
                    )
            case Hello():
                raise RefusedError("hello already negotiated on this connection", "hello_repeated")
            case _:
                await self._lifecycle(frame)

    async def _lifecycle(
        self,
        frame: RenameSession | ArchiveSession | UnarchiveSession | DeleteSession | ExportSession,
    ) -> None:
        """The lifecycle verbs beyond upstream's (docs/sessions.md); same rules as the core's."""
        user, rid = self.user_id, frame.request_id
        match frame:
            case RenameSession():
                row = await self.core.rename(user, frame.session_id, frame.display_name)
                await self.send(SessionUpdated(request_id=rid, action="renamed", session=row))
            case ArchiveSession() | UnarchiveSession():
                archived = isinstance(frame, ArchiveSession)
                row = await self.core.archive(user, frame.session_id, archived)
                await self.send(
                    SessionUpdated(
                        request_id=rid, action="archived" if archived else "unarchived", session=row
                    )
                )
            case DeleteSession():
                removed = await self.core.delete(user, frame.session_id, request_id=rid)
                if self.channel is None or not self.channel.deleted:  # else it came published
                    await self.send(
                        SessionDeleted(request_id=rid, session_id=removed[-1], deleted=removed)
                    )
            case ExportSession():
                session_id, text = await self.core.export(user, frame.session_id, frame.format)
                await self.send(
                    SessionExport(
                        request_id=rid, session_id=session_id, format=frame.format, content=text
                    )
                )
            case _:
                assert_never(frame)

    def _check_session(self, session_id: str) -> None:
        assert self.channel is not None
        if session_id != self.channel.session_id:
            raise RefusedError("session_id does not match active session", "session_mismatch")


def _validated_attachments(frame: SendTurn) -> tuple[Any, ...]:
    items = frame.attachments
    if len(items) > MAX_ATTACHMENTS:
        raise RefusedError(f"at most {MAX_ATTACHMENTS} attachments per turn", "attachments")
    total = 0
    for item in items:
        if len(item.data) > MAX_ATTACHMENT_BYTES:
            raise RefusedError("an attachment is larger than 10 MiB", "attachments")
        total += len(item.data)
        kind, _, sub = item.mime_type.partition("/")
        allowed = all(c.isalnum() or c in "/.+_-" for c in item.mime_type)
        if not kind or not sub or len(item.mime_type) > 255 or not allowed:
            raise RefusedError(f"bad attachment mime type {item.mime_type!r}", "attachments")
    if total > MAX_TOTAL_BYTES:
        raise RefusedError("attachments exceed 40 MiB in total", "attachments")
    return tuple(MediaPart(mime_type=a.mime_type, data=a.data) for a in items)
