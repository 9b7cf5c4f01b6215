"""The gateway's in-process API: sessions, turns, cancellation, subscriptions.

The WebSocket server and every channel adapter drive the runtime only through this class,
so the session rules (one active turn per session, per-user limits, ownership) hold for all
of them. Nothing here knows about sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import msgspec

from oxydra.config.schema import GatewayConfig
from oxydra.core.ids import new_session_id
from oxydra.core.log import get_logger
from oxydra.core.messages import MediaPart
from oxydra.core.provenance import Label
from oxydra.core.spend import Spend
from oxydra.core.stream import MediaOut, Progress, StreamItem, Text
from oxydra.gateway._admission import CreateBatcher, RefusedError, SessionSlots, SingleFlight
from oxydra.gateway._approvals import ApprovalBroker
from oxydra.gateway._export import ExportFormat
from oxydra.gateway._hub import SessionChannel, Subscriber
from oxydra.gateway._lanes import Lanes, Ticket
from oxydra.gateway._lease import TurnLeases
from oxydra.gateway._relay import FrameRelay
from oxydra.gateway._store import SessionData, SessionRecords
from oxydra.gateway._table import AuditEntry, SessionRecord
from oxydra.gateway.lifecycle import SessionBook, audit_new, clean_name, summary
from oxydra.runtime.api import TurnOutcome, TurnRequest, TurnRunner
from oxydra.wire.gateway import (
    AssistantDelta,
    ErrorFrame,
    MediaAttachment,
    MediaFile,
    ScheduledNotification,
    SessionDeleted,
    SessionSummary,
    TurnCancelled,
    TurnCompleted,
    TurnProgress,
    TurnQueued,
    TurnStarted,
    TurnStatus,
    Usage,
    UsageTotals,
)

_log = get_logger(__name__)
TOUCH_EVERY_SECS = 30.0
REMEMBERED_HELLOS = 10_000
CATCH_UP_SECS = 5.0  # how long a client that moved hosts waits for frames it already saw
__all__ = [
    "GatewayCore",
    "NotificationOutbox",
    "NotificationRoute",
    "RefusedError",
    "default_session_id",
]


class NotificationOutbox(Protocol):
    """Keeps notifications for a user with no connected client (the scheduler's store)."""

    async def put(self, user_id: str, frame: ScheduledNotification) -> None:
        """Keep one notification."""
        ...

    async def take(self, user_id: str) -> list[ScheduledNotification]:
        """Remove and return the user's kept notifications, oldest first."""
        ...


class NotificationRoute(Protocol):
    """A channel that can reach a session's chats without following the session."""

    async def __call__(self, user_id: str, frame: ScheduledNotification, session_id: str) -> bool:
        """Deliver (durably) if the session is bound to a chat of this channel."""
        ...


def default_session_id(user_id: str) -> str:
    """The deterministic session a hello without a session binds to (Rust-compatible)."""
    return "runtime-" + re.sub(r"[^A-Za-z0-9_-]", "-", user_id)


class GatewayCore:
    """Sessions and turns of every user of this `vm`."""

    def __init__(
        self,
        runner: TurnRunner,
        store: SessionRecords,
        config: GatewayConfig,
        *,
        approval_timeout_secs: float = 300,
        subscriber_capacity: int = 4096,
        log_bytes: int = 1 << 20,
        leases: TurnLeases | None = None,
        relay: FrameRelay | None = None,
        data: SessionData | None = None,
    ) -> None:
        self.runner = runner
        self.leases = leases
        self.relay = relay
        self.store = store
        self.book = SessionBook(store, data)
        self._unflushed: dict[str, tuple[int, float | None]] = {}
        self.config = config
        self.approvals = ApprovalBroker(approval_timeout_secs)
        self.subscriber_capacity = subscriber_capacity
        self.log_bytes = log_bytes
        self._channels: dict[str, SessionChannel] = {}
        self.lanes = Lanes(
            config.max_concurrent_turns_per_user,
            config.max_concurrent_turns,
            config.max_queued_turns_per_user,
        )
        self._touched: dict[str, float] = {}
        self._flight: SingleFlight[SessionChannel] = SingleFlight()
        self._lookups: SingleFlight[SessionChannel | None] = SingleFlight()
        self._slots = SessionSlots(store.count_active, config.max_sessions_per_user)
        self._creates = CreateBatcher(store)
        self._by_request: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._janitor: asyncio.Task[None] | None = None
        self.outbox: NotificationOutbox | None = None
        self._routes: list[NotificationRoute] = []
        if relay is not None:
            relay.channels = self._channels
        self.cancel_hooks: list[Callable[[str], int]] = []
        """Called by `cancel_all` with the user: other work of theirs to cancel (background
        agents); each returns how many it cancelled."""

    def load(self) -> dict[str, float]:
        """Gauges for the metrics endpoint: sessions with a client, turns running."""
        return {
            "active_sessions": sum(1 for c in self._channels.values() if c.subscribers),
            "running_turns": self.lanes.running_total,
            "queued_turns": self.lanes.waiting,
        }

    # ---- sessions ------------------------------------------------------------------

    async def open_session(
        self,
        user_id: str,
        session_id: str | None = None,
        *,
        create_new: bool = False,
        agent_name: str | None = None,
        display_name: str | None = None,
        channel_origin: str = "tui",
        request_id: str | None = None,
        left: str | None = None,
    ) -> SessionChannel:
        """Bind to a session: a new one, a named one (live or stored), or the default one.

        No lock is held across the store's round trips (see `_admission`). A create with a
        `request_id` is idempotent: the same user repeating it (a client retrying a hello
        that timed out) gets the session the first one created. `left` is the session the
        person leaves for the new one: the audit log records the rollover.
        """
        self._start_janitor()
        if create_new:
            if request_id is None:
                return await self._create_new(
                    user_id, agent_name, display_name, channel_origin, left=left
                )
            known = self._by_request.get((user_id, request_id))
            if known is not None and (found := await self._find(user_id, known)) is not None:
                return found
            return await self._flight.run(
                ("new", user_id, request_id),
                lambda: self._create_new(
                    user_id, agent_name, display_name, channel_origin, request_id, left
                ),
            )
        if session_id is None:
            sid = default_session_id(user_id)
            return await self._flight.run(
                ("default", sid),
                lambda: self._find_or_create(user_id, sid, agent_name, channel_origin),
            )
        found = await self._find(user_id, session_id)
        if found is None:
            raise RefusedError(
                f"session `{session_id}` not found for user `{user_id}`", "session_not_found"
            )
        return found

    async def open_named(
        self,
        user_id: str,
        session_id: str,
        *,
        channel_origin: str,
        display_name: str | None = None,
        agent_name: str | None = None,
    ) -> SessionChannel:
        """Get or create the session of a deterministic id (a channel's chat context).

        Raises:
            RefusedError: the id belongs to another user, or the user is at their limit.
        """
        self._start_janitor()
        channel = await self._flight.run(
            ("default", session_id),
            lambda: self._find_or_create(
                user_id, session_id, agent_name, channel_origin, display_name
            ),
        )
        return channel

    async def _create_new(
        self,
        user_id: str,
        agent_name: str | None,
        display_name: str | None,
        channel_origin: str,
        request_id: str | None = None,
        left: str | None = None,
    ) -> SessionChannel:
        channel = await self._create(
            user_id, new_session_id(), agent_name, display_name, channel_origin, left
        )
        if request_id is not None:
            self._by_request[(user_id, request_id)] = channel.session_id
            while len(self._by_request) > REMEMBERED_HELLOS:
                self._by_request.popitem(last=False)
        return channel

    async def _find_or_create(
        self,
        user_id: str,
        session_id: str,
        agent_name: str | None,
        channel_origin: str,
        display_name: str | None = None,
    ) -> SessionChannel:
        found = await self._find(user_id, session_id)
        if found is not None:
            return found
        try:
            return await self._create(user_id, session_id, agent_name, display_name, channel_origin)
        except RefusedError as exc:
            if exc.code != "session_exists":
                raise
            again = await self._find(user_id, session_id)  # created meanwhile elsewhere
            if again is None:
                raise
            return again

    async def resolve(self, user_id: str, id_or_prefix: str) -> SessionChannel:
        """A session of the user by exact id or unique prefix (another person's: not found)."""
        found = self._channels.get(id_or_prefix)
        if found is not None and found.user_id == user_id:
            found.last_active = time.monotonic()
            return found
        record = await self.book.find(user_id, id_or_prefix)
        channel = await self._find(user_id, record.session_id)
        if channel is None:  # deleted between the two reads
            raise RefusedError(
                f"no session of user `{user_id}` match `{id_or_prefix}`", "session_not_found"
            )
        return channel

    async def list_sessions(
        self, user_id: str, include_archived: bool = False, include_subagents: bool = False
    ) -> list[SessionSummary]:
        """The user's sessions, most recently active first, sub-agents under their parent;
        with turns and cost (what is not flushed to the store yet included)."""
        rows = await self.book.listing(user_id, include_archived, include_subagents)
        return [self._with_unflushed(row) for row in rows]

    def _with_unflushed(self, row: SessionSummary) -> SessionSummary:
        turns, cost = self._unflushed.get(row.session_id, (0, None))
        if not turns:
            return row
        total = row.cost_usd if cost is None else (row.cost_usd or 0.0) + cost
        return msgspec.structs.replace(row, turns=(row.turns or 0) + turns, cost_usd=total)

    # ---- lifecycle (docs/sessions.md) --------------------------------------------------

    async def rename(
        self, user_id: str, id_or_prefix: str, name: str | None, channel: str = "tui"
    ) -> SessionSummary:
        """Rename one of the user's sessions."""
        record = await self.book.rename(user_id, id_or_prefix, name, channel)
        live = self._channels.get(record.session_id)
        if live is not None:
            live.display_name = clean_name(name)
        return self._with_unflushed(summary(record))

    async def archive(
        self, user_id: str, id_or_prefix: str, archived: bool = True, channel: str = "tui"
    ) -> SessionSummary:
        """Archive (or unarchive) one of the user's sessions; its data stays."""
        record = await self.book.archive(user_id, id_or_prefix, channel, archived)
        return self._with_unflushed(summary(record))

    async def delete(
        self, user_id: str, id_or_prefix: str, channel: str = "tui", request_id: str = ""
    ) -> list[str]:
        """Delete a session, its sub-agent sessions and all their data.

        A turn running in any of them is cancelled and awaited first; clients following
        the session get `session_deleted` and can no longer send turns to it.
        """
        record = await self.book.find(user_id, id_or_prefix)
        doomed = [*await self.store.children(record.session_id), record.session_id]
        for session_id in doomed:
            self._drop(self.lanes.cancel_session(user_id, session_id))
        tasks = [c.task for sid in doomed if (c := self._channels.get(sid)) and c.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        removed = await self.book.delete(user_id, record.session_id, channel)
        forget = getattr(self.runner, "forget", None)
        for session_id in removed:
            self._unflushed.pop(session_id, None)
            self._touched.pop(session_id, None)
            live = self._channels.pop(session_id, None)
            if forget is not None:
                forget(session_id)
            if live is not None:
                live.deleted = True
                live.publish(
                    SessionDeleted(
                        request_id=request_id, session_id=record.session_id, deleted=removed
                    )
                )
        return removed

    async def export(
        self, user_id: str, id_or_prefix: str, fmt: ExportFormat = "markdown", channel: str = "tui"
    ) -> tuple[str, str]:
        """(session id, transcript) of one of the user's sessions, read-only."""
        record, text = await self.book.export(user_id, id_or_prefix, fmt, channel)
        return record.session_id, text

    async def audit_log(self, user_id: str) -> list[AuditEntry]:
        """The user's lifecycle steps, newest first (rollovers with old -> new id)."""
        return await self.book.audit_log(user_id)

    async def _find(self, user_id: str, session_id: str) -> SessionChannel | None:
        channel = self._channels.get(session_id)
        if channel is None:
            channel = await self._lookups.run(("load", session_id), lambda: self._load(session_id))
        if channel is None or channel.user_id != user_id:
            return None
        channel.last_active = time.monotonic()
        if self.relay is not None:  # another host may have run turns of it meanwhile
            await self.relay.catch_up(channel)
        return channel

    async def _load(self, session_id: str) -> SessionChannel | None:
        record = await self.store.get(session_id)
        if record is None:
            return None
        channel = self._channels.get(session_id)  # created while the store answered
        if channel is None:
            channel = self._channels[session_id] = self._channel_from(record)
        return channel

    async def _create(
        self,
        user_id: str,
        session_id: str,
        agent_name: str | None,
        display_name: str | None,
        channel_origin: str,
        left: str | None = None,
    ) -> SessionChannel:
        await self._slots.reserve(user_id)
        record = SessionRecord(
            session_id=session_id,
            user_id=user_id,
            agent_name=agent_name or "default",
            display_name=clean_name(display_name),
            channel_origin=channel_origin,
        )
        stored = self._creates.submit(record, audit_new(record, left))
        stored.add_done_callback(
            lambda f: self._slots.settle(
                user_id, not f.cancelled() and f.exception() is None and f.result()
            )
        )
        if not await asyncio.shield(stored):
            raise RefusedError(f"session `{session_id}` already exists", "session_exists")
        channel = self._channels[session_id] = self._channel_from(record)
        return channel

    # ---- eviction ------------------------------------------------------------------

    def _start_janitor(self) -> None:
        if self.relay is not None:
            self.relay.start()
        if self._janitor is None or self._janitor.done():
            self._janitor = asyncio.create_task(self._sweep(), name="gateway-janitor")

    async def _sweep(self) -> None:
        ttl = self.config.session_idle_ttl_hours * 3600
        while True:
            await asyncio.sleep(min(60.0, max(0.25, ttl / 4)))
            self.evict_idle(ttl)

    def evict_idle(self, ttl_secs: float, now: float | None = None) -> int:
        """Drop the in-memory state of sessions idle for `ttl_secs`; returns how many.

        Idle means no client follows it and no turn runs. Its history stays in the store
        and is loaded again when a client returns (with a new `epoch`: the frame log went).
        """
        cutoff = (time.monotonic() if now is None else now) - ttl_secs
        gone = [
            sid
            for sid, c in self._channels.items()
            if c.idle and c.last_active <= cutoff and not self.lanes.queued(sid, c.user_id)
        ]
        forget = getattr(self.runner, "forget", None)
        for session_id in gone:
            del self._channels[session_id]
            self._touched.pop(session_id, None)
            if forget is not None:
                forget(session_id)
        return len(gone)

    def _channel_from(self, record: SessionRecord) -> SessionChannel:
        channel = SessionChannel(
            log_bytes=self.log_bytes,
            user_id=record.user_id,
            session_id=record.session_id,
            agent_name=record.agent_name,
            display_name=record.display_name,
            channel_origin=record.channel_origin,
        )
        if self.relay is not None:
            self.relay.attach(channel)
        return channel

    # ---- subscriptions -------------------------------------------------------------

    async def caught_up(
        self, channel: SessionChannel, last_seq: int | None, epoch: str | None = None
    ) -> None:
        """With hosts sharing frames, wait until this host has mirrored what the client saw.

        A client that moves here mid-turn may have seen frames the other host has not stored
        yet (its writer batches them): subscribing at once would count the client's
        `last_seq` as beyond this epoch and replay the whole turn. The wait is bounded; a
        host that died before storing them leaves the old answer (replay from the start).
        """
        if self.relay is None or last_seq is None or channel.seq >= last_seq:
            return
        if epoch is not None and epoch != channel.epoch:
            return
        deadline = time.monotonic() + CATCH_UP_SECS
        while True:
            await self.relay.catch_up(channel)
            if channel.seq >= last_seq or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.02)

    def subscribe(
        self, channel: SessionChannel, last_seq: int | None, epoch: str | None = None
    ) -> tuple[Subscriber, list[bytes], bool]:
        """A bounded subscriber plus the frames to replay first (see `_hub`)."""
        subscriber = Subscriber(self.subscriber_capacity)
        replay, gap = channel.subscribe(subscriber, last_seq, epoch)
        return subscriber, replay, gap

    # ---- notifications -------------------------------------------------------------

    def add_notification_route(self, route: NotificationRoute) -> None:
        """Let a channel deliver notifications of sessions no client follows."""
        self._routes.append(route)

    def attach_outbox(self, outbox: NotificationOutbox) -> None:
        """Keep notifications no client is connected for in `outbox`."""
        self.outbox = outbox

    async def notify(
        self, user_id: str, frame: ScheduledNotification, session_id: str | None = None
    ) -> bool:
        """Send a notification to the user's connected clients; keep it if there are none.

        It goes to `session_id` (where the schedule was created) when a client follows
        that session, else to a channel route that reaches the session's chat (a Telegram
        chat bound to it), else to every session of the user a client follows. Returns
        whether it was delivered; otherwise it waits in the outbox for the next hello.
        """
        origin = self._channels.get(session_id) if session_id else None
        if origin is not None and origin.user_id == user_id and origin.subscribers:
            targets = [origin]
        elif session_id is not None and await self._routed(user_id, frame, session_id):
            return True
        else:
            targets = [c for c in self._channels.values() if c.user_id == user_id and c.subscribers]
        for channel in targets:
            channel.publish(frame)
        if not targets and self.outbox is not None:
            await self.outbox.put(user_id, frame)
            # A hello during the write took the outbox before the frame was in it: hand it
            # over now (`take` removes, so a hello after the write cannot deliver it twice).
            late = [c for c in self._channels.values() if c.user_id == user_id and c.subscribers]
            if late:
                first = next((c for c in late if c.session_id == session_id), late[0])
                await self.deliver_pending(first)
                return True
        return bool(targets)

    async def _routed(self, user_id: str, frame: ScheduledNotification, session_id: str) -> bool:
        for route in self._routes:
            if await route(user_id, frame, session_id):
                return True
        return False

    async def deliver_pending(self, channel: SessionChannel) -> int:
        """Publish the notifications kept for the channel's user on it (after a hello)."""
        if self.outbox is None:
            return 0
        pending = await self.outbox.take(channel.user_id)
        for frame in pending:
            channel.publish(frame)
        return len(pending)

    # ---- turns ---------------------------------------------------------------------

    def submit_turn(
        self,
        channel: SessionChannel,
        request_id: str,
        turn_id: str,
        prompt: str,
        attachments: tuple[MediaPart, ...] = (),
        *,
        label: Label | None = None,
        owner: object | None = None,
        traceparent: str | None = None,
        max_cost_usd: float | None = None,
        tools: frozenset[str] | None = None,
        media_types: tuple[str, ...] = (),
    ) -> int:
        """Start a turn, or queue it in the session's lane (`_lanes`); returns its position
        (0: started now; n: n-th waiting in the session, announced with `turn_queued`).

        `max_cost_usd` tightens the turn's spend (a person's budget left for the day);
        `tools` limits the tools the turn may use (a person's allow-list); `media_types` are
        the files the asking channel shows (`send_media`).

        `label` marks a prompt that is not the session owner's own words (a channel passes
        `untrusted("chat", sender)` for another person in a shared chat): the turn starts
        tainted (docs/taint.md).

        `owner` is the client connection that asked; only it may answer the turn's
        approval requests (see `_approvals.py`).
        """
        if channel.deleted:
            raise RefusedError("this session was deleted; start a new one", "session_deleted")
        request = TurnRequest(
            user_id=channel.user_id,
            session_id=channel.session_id,
            turn_id=turn_id,
            prompt=prompt,
            attachments=attachments,
            agent_name=channel.agent_name,
            channel=channel.channel_origin,
            label=label,
            traceparent=traceparent[:64] if traceparent else None,
            max_cost_usd=max_cost_usd,
            tools=tools,
            media_types=media_types,
        )
        ticket = Ticket(
            channel.user_id, channel.session_id, turn_id, (channel, request_id, request, owner)
        )
        position = self.lanes.submit(ticket)
        if position == 0:
            self._start(ticket)
        else:
            channel.publish(
                TurnQueued(
                    request_id=request_id, session=channel.ref, turn_id=turn_id, position=position
                )
            )
        return position

    def _start(self, ticket: Ticket) -> None:
        channel, request_id, request, owner = ticket.payload
        turn = TurnStatus(turn_id=request.turn_id, state="running")
        channel.active_turn, channel.active_request_id = turn, request_id
        channel.task = asyncio.create_task(
            self._run_turn(channel, request_id, request, owner, ticket),
            name=f"turn-{channel.session_id}-{request.turn_id}",
        )

    @staticmethod
    def _drop(tickets: list[Ticket]) -> int:
        """Tell the followers of each waiting ticket it was cancelled without starting."""
        for ticket in tickets:
            channel, request_id, request, _ = ticket.payload
            _publish_cancelled(channel, request_id, request.turn_id)
        return len(tickets)

    async def _run_turn(
        self,
        channel: SessionChannel,
        request_id: str,
        request: TurnRequest,
        owner: object | None,
        ticket: Ticket,
    ) -> None:
        lease = (
            contextlib.nullcontext()
            if self.leases is None
            else self.leases.hold(channel.session_id, request.turn_id)
        )
        driven = False  # once the turn ran, its terminal frame is out
        try:
            async with lease:  # several hosts: waits while another host runs this session
                driven = True
                try:
                    await self._drive(channel, request_id, request, owner)
                finally:
                    if self.relay is not None:  # the next holder numbers on from these
                        await asyncio.shield(self.relay.flush())
        except asyncio.CancelledError:
            if not driven:  # cancelled while waiting for the lease
                _publish_cancelled(channel, request_id, request.turn_id)
        except Exception as exc:
            _log.exception("turn lease failed")
            if not driven:
                _publish_failed(
                    channel, request_id, request.turn_id, f"internal error: {exc}", "internal"
                )
        finally:
            channel.active_turn = channel.active_request_id = None
            channel.task = None
            for ready in self.lanes.finish(ticket):
                self._start(ready)
            await self._touch(channel.session_id)

    async def _drive(
        self,
        channel: SessionChannel,
        request_id: str,
        request: TurnRequest,
        owner: object | None,
    ) -> None:
        """Run the turn and publish its frames, ending with exactly one terminal frame."""
        turn = TurnStatus(turn_id=request.turn_id, state="running")
        sink = _FrameSink(channel, request_id, turn)
        approver = self.approvals.approver_for(channel, request_id, turn, owner)
        if self.relay is not None:  # number on from the frames other hosts stored
            await self.relay.catch_up(channel)
        try:
            channel.publish(TurnStarted(request_id=request_id, session=channel.ref, turn=turn))
            outcome = await self.runner.run_turn(request, sink, approver)
            self._count_turn(channel.session_id, outcome)
            channel.publish(self._usage(channel, request_id, request.turn_id, outcome))
            self._finish(channel, request_id, request.turn_id, outcome)
        except asyncio.CancelledError:
            _publish_cancelled(channel, request_id, request.turn_id)
        except Exception as exc:
            _log.exception("turn failed")
            _publish_failed(
                channel, request_id, request.turn_id, f"internal error: {exc}", "internal"
            )

    def _usage(
        self, channel: SessionChannel, request_id: str, turn_id: str, outcome: TurnOutcome
    ) -> Usage:
        ledger = getattr(self.runner, "ledger", None)
        total = ledger.session(channel.session_id) if ledger is not None else outcome.spend
        return Usage(
            request_id=request_id,
            session=channel.ref,
            turn_id=turn_id,
            turn=usage_totals(outcome.spend),
            total=usage_totals(total),
        )

    @staticmethod
    def _finish(
        channel: SessionChannel, request_id: str, turn_id: str, outcome: TurnOutcome
    ) -> None:
        if outcome.reason == "completed" and outcome.response is not None:
            done = TurnStatus(turn_id=turn_id, state="completed")
            channel.publish(
                TurnCompleted(
                    request_id=request_id, session=channel.ref, turn=done, response=outcome.response
                )
            )
        elif outcome.reason == "cancelled":
            _publish_cancelled(channel, request_id, turn_id)
        else:
            message = f"turn stopped ({outcome.reason}): {outcome.detail}"
            _publish_failed(channel, request_id, turn_id, message, outcome.reason)

    def _count_turn(self, session_id: str, outcome: TurnOutcome) -> None:
        turns, cost = self._unflushed.get(session_id, (0, None))
        spent = outcome.spend.cost_usd if outcome.spend.priced else None
        self._unflushed[session_id] = (
            turns + 1,
            cost if spent is None else (cost or 0.0) + spent,
        )

    async def _touch(self, session_id: str, force: bool = False) -> None:
        """Record activity, turns and cost at most every TOUCH_EVERY_SECS per session.

        `last_active_at` orders session lists; it needs no per-turn precision, and a durable
        write per turn would queue a third fsync in front of the next turn. Listings add
        what is not written yet; shutdown writes it.
        """
        now = time.monotonic()
        due = now - self._touched.get(session_id, -TOUCH_EVERY_SECS) >= TOUCH_EVERY_SECS
        if due or force:
            self._touched[session_id] = now
            turns, cost = self._unflushed.pop(session_id, (0, None))
            try:
                await self.store.touch(session_id, turns, cost)
            except BaseException:
                self._unflushed.setdefault(session_id, (turns, cost))
                raise

    def cancel(self, channel: SessionChannel, turn_id: str = "") -> None:
        """Cancel the session's running turn, or the waiting turn `turn_id` names."""
        if turn_id and (channel.active_turn is None or channel.active_turn.turn_id != turn_id):
            for ticket in self.lanes.queued(channel.session_id, channel.user_id):
                if ticket.turn_id == turn_id and self.lanes.cancel(ticket):
                    self._drop([ticket])
                    return
        if channel.task is None:
            raise RefusedError("no active turn to cancel", "no_active_turn")
        channel.task.cancel()

    async def taint_sources(self, channel: SessionChannel) -> list[str] | None:
        """The untrusted sources in the session's context (`/status`); None when trusted."""
        taint_of = getattr(self.runner, "taint_of", None)
        label = await taint_of(channel.session_id, channel.user_id) if taint_of else None
        if label is None:
            return None
        return [str(s) for s in label.sources] or ["unknown source"]

    def cancel_all(self, user_id: str) -> int:
        """Cancel every running turn of a user and empty their lanes; returns how many."""
        dropped = self._drop(self.lanes.cancel_user(user_id))
        dropped += sum(hook(user_id) for hook in self.cancel_hooks)
        tasks = [c.task for c in self._channels.values() if c.user_id == user_id and c.task]
        if not tasks and not dropped:
            raise RefusedError("no active turns to cancel", "no_active_turn")
        for task in tasks:
            task.cancel()
        return len(tasks) + dropped

    async def shutdown(self) -> None:
        """Cancel every turn and wait for them to end."""
        if self._janitor is not None:
            self._janitor.cancel()
        for user_id in {c.user_id for c in self._channels.values()}:
            self._drop(self.lanes.cancel_user(user_id))
        tasks = [c.task for c in self._channels.values() if c.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for session_id in list(self._unflushed):
            try:
                await self._touch(session_id, force=True)
            except Exception:  # the store is closing: the totals lag, nothing else is lost
                _log.warning("could not write the turn totals of session %s", session_id)
        if self.relay is not None:
            await self.relay.aclose()


def _publish_cancelled(channel: SessionChannel, request_id: str, turn_id: str) -> None:
    done = TurnStatus(turn_id=turn_id, state="cancelled")
    channel.publish(TurnCancelled(request_id=request_id, session=channel.ref, turn=done))


def _publish_failed(
    channel: SessionChannel, request_id: str, turn_id: str, message: str, code: str
) -> None:
    failed = TurnStatus(turn_id=turn_id, state="failed")
    channel.publish(
        ErrorFrame(
            message=message, request_id=request_id, session=channel.ref, turn=failed, code=code
        )
    )


class _FrameSink:
    """Maps the runtime's stream items to session frames."""

    def __init__(self, channel: SessionChannel, request_id: str, turn: TurnStatus) -> None:
        self.channel, self.request_id, self.turn = channel, request_id, turn

    async def __call__(self, item: StreamItem) -> None:
        match item:
            case Text(text=text) if text:
                self.channel.publish(
                    AssistantDelta(
                        request_id=self.request_id,
                        session=self.channel.ref,
                        turn=self.turn,
                        delta=text,
                    )
                )
            case Progress():
                self.channel.publish(
                    TurnProgress(
                        request_id=self.request_id,
                        session=self.channel.ref,
                        turn=self.turn,
                        progress=item,
                    )
                )
            case MediaOut():
                media = MediaFile(
                    file_path=item.file_path,
                    media_type=item.media_type,
                    data=item.data,
                    caption=item.caption,
                    file_name=item.file_name,
                )
                self.channel.publish(
                    MediaAttachment(
                        request_id=self.request_id, session=self.channel.ref, attachment=media
                    )
                )
            case _:
                pass


def usage_totals(spend: Spend) -> UsageTotals:
    """A `Spend` as the `usage` frame carries it; unpriced spend is unknown, not 0."""
    return UsageTotals(
        calls=spend.calls,
        input_tokens=spend.prompt_tokens,
        output_tokens=spend.completion_tokens,
        cost_usd=round(spend.cost_usd, 6) if spend.priced else None,
    )
